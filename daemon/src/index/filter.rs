//! Payload filters of a query, the same for every backend. Strings compare
//! case-insensitively: the index stores them folded ([`fold`]) and folds the filter's.

use std::collections::HashSet;

use crate::camelot::Camelot;

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
    /// Only tracks whose tempo is in this range; tracks without a tempo are left out.
    pub bpm: Option<BpmRange>,
    /// Only tracks in one of these keys (the harmonic filter, expanded by the caller into the
    /// keys that mix); tracks without a key are left out. Empty: any key, or none.
    pub keys: Vec<Camelot>,
}

/// A tempo range in BPM, inclusive; an absent end is open.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BpmRange {
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Also accept half or double a tempo in range: tempo estimates are often an octave off,
    /// and a DJ mixes a 65 BPM track into a 130 BPM set in double time.
    pub octaves: bool,
}

impl BpmRange {
    /// Whether a track at `bpm` passes.
    pub fn contains(&self, bpm: f64) -> bool {
        let within = |t: f64| self.min.is_none_or(|lo| t >= lo) && self.max.is_none_or(|hi| t <= hi);
        within(bpm) || (self.octaves && (within(bpm * 2.0) || within(bpm / 2.0)))
    }

    /// The ranges of stored tempo that pass, for a backend that can only compare the stored
    /// value: the range itself, and with `octaves` half and double it (exact in binary
    /// floating point, so these agree with [`BpmRange::contains`]).
    pub fn stored_ranges(&self) -> Vec<(Option<f64>, Option<f64>)> {
        let mut ranges = vec![(self.min, self.max)];
        if self.octaves {
            ranges.push((self.min.map(|v| v / 2.0), self.max.map(|v| v / 2.0)));
            ranges.push((self.min.map(|v| v * 2.0), self.max.map(|v| v * 2.0)));
        }
        ranges
    }
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
    pub bpm: Option<BpmRange>,
    /// Sorted, without duplicates.
    pub keys: Vec<Camelot>,
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
            bpm: self.bpm,
            keys: {
                let mut keys = self.keys.clone();
                keys.sort();
                keys.dedup();
                keys
            },
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
            && f.bpm.is_none()
            && f.keys.is_empty()
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
        assert!(!Filter { bpm: Some(BpmRange::default()), ..Default::default() }.is_empty());
    }

    #[test]
    fn a_bpm_range_with_octaves_takes_half_and_double_time() {
        let range = BpmRange { min: Some(120.0), max: Some(130.0), octaves: false };
        assert!(range.contains(120.0) && range.contains(130.0) && range.contains(125.5));
        assert!(!range.contains(119.9) && !range.contains(62.5) && !range.contains(250.0));
        let octaves = BpmRange { octaves: true, ..range };
        assert!(octaves.contains(62.5) && octaves.contains(250.0) && octaves.contains(60.0));
        assert!(!octaves.contains(90.0) && !octaves.contains(131.0) && !octaves.contains(270.0));
        let open = BpmRange { min: Some(170.0), max: None, octaves: false };
        assert!(open.contains(1000.0) && !open.contains(169.0));
        for bpm in [59.9, 60.0, 62.0, 65.0, 66.0, 90.0, 120.0, 125.0, 130.0, 131.0, 240.0, 250.0, 260.0, 261.0] {
            let stored = octaves
                .stored_ranges()
                .iter()
                .any(|&(lo, hi)| lo.is_none_or(|lo| bpm >= lo) && hi.is_none_or(|hi| bpm <= hi));
            assert_eq!(stored, octaves.contains(bpm), "{bpm}");
        }
    }
}
