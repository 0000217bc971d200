//! Payload filters of a query, the same for every backend. Strings compare
//! case-insensitively: the index stores them folded ([`fold`]) and folds the filter's.

use std::collections::HashSet;

/// Which tracks a query may return. All set conditions must hold; the default lets every
/// track through.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Only tracks whose genre tag, or whose top label in the query's space, is one of these.
    /// Empty: any genre.
    pub genres: Vec<String>,
    /// Leave out tracks by these artists.
    pub exclude_artists: Vec<String>,
    /// Leave out tracks from these albums (by album title).
    pub exclude_albums: Vec<String>,
    /// Leave out tracks shorter than this, in seconds.
    pub min_duration_s: Option<f64>,
    /// Leave out tracks longer than this, in seconds.
    pub max_duration_s: Option<f64>,
    /// Leave out these tracks (the examples themselves, tracks already in a playlist).
    pub exclude_tracks: Vec<i64>,
}

/// The form a payload string is stored and compared in: trimmed, lower case.
pub fn fold(s: &str) -> String {
    s.trim().to_lowercase()
}

/// A filter with its strings folded, empty strings dropped and duplicates removed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Folded {
    pub genres: Vec<String>,
    pub exclude_artists: Vec<String>,
    pub exclude_albums: Vec<String>,
    pub min_duration_s: Option<f64>,
    pub max_duration_s: Option<f64>,
    pub exclude_tracks: HashSet<i64>,
}

fn fold_all(values: &[String]) -> Vec<String> {
    let mut out: Vec<String> = values.iter().map(|v| fold(v)).filter(|v| !v.is_empty()).collect();
    out.sort();
    out.dedup();
    out
}

impl Filter {
    pub(crate) fn folded(&self) -> Folded {
        Folded {
            genres: fold_all(&self.genres),
            exclude_artists: fold_all(&self.exclude_artists),
            exclude_albums: fold_all(&self.exclude_albums),
            min_duration_s: self.min_duration_s.filter(|d| d.is_finite()),
            max_duration_s: self.max_duration_s.filter(|d| d.is_finite()),
            exclude_tracks: self.exclude_tracks.iter().copied().collect(),
        }
    }

    /// True when the filter lets every track through.
    pub fn is_empty(&self) -> bool {
        let f = self.folded();
        f.genres.is_empty()
            && f.exclude_artists.is_empty()
            && f.exclude_albums.is_empty()
            && f.min_duration_s.is_none()
            && f.max_duration_s.is_none()
            && f.exclude_tracks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_folded_and_empty_ones_dropped() {
        let filter = Filter {
            genres: vec![" Hip Hop".into(), "hip hop".into(), "".into()],
            exclude_artists: vec!["  ".into()],
            min_duration_s: Some(f64::NAN),
            ..Default::default()
        };
        let folded = filter.folded();
        assert_eq!(folded.genres, ["hip hop"]);
        assert!(folded.exclude_artists.is_empty());
        assert_eq!(folded.min_duration_s, None);
        assert!(!filter.is_empty());
        assert!(Filter { exclude_artists: vec![" ".into()], ..Default::default() }.is_empty());
    }
}
