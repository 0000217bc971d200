//! The validation split: by track, stratified by label, seeded.

use timbre_rng::SplitMix64;

/// Which tracks go where, as indices into the caller's track list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TrackSplit {
    pub train: Vec<usize>,
    pub validation: Vec<usize>,
}

/// Split tracks (given by their class index, in a fixed order) so that about `fraction` of each
/// class's tracks are held out. A class with at least two tracks gives at least one to each
/// side; a class with a single track keeps it for training. A track is one unit: its segments
/// all go to the same side, which is the point of splitting by track.
pub(crate) fn split_tracks(track_labels: &[u32], n_classes: usize, fraction: f64, seed: u64) -> TrackSplit {
    let mut rng = SplitMix64::new(seed);
    let mut train = Vec::new();
    let mut validation = Vec::new();
    for class in 0..n_classes {
        let mut tracks: Vec<usize> = (0..track_labels.len()).filter(|&t| track_labels[t] as usize == class).collect();
        rng.shuffle(&mut tracks);
        let count = tracks.len();
        let held_out = if count < 2 { 0 } else { ((fraction * count as f64).round() as usize).clamp(1, count - 1) };
        validation.extend_from_slice(&tracks[..held_out]);
        train.extend_from_slice(&tracks[held_out..]);
    }
    train.sort_unstable();
    validation.sort_unstable();
    TrackSplit { train, validation }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_stratified_disjoint_complete_and_seeded() {
        // 3 classes with 10, 5 and 1 tracks.
        let labels: Vec<u32> = [vec![0; 10], vec![1; 5], vec![2; 1]].concat();
        let split = split_tracks(&labels, 3, 0.2, 42);
        let count = |side: &[usize], class: u32| side.iter().filter(|&&t| labels[t] == class).count();
        assert_eq!((count(&split.validation, 0), count(&split.validation, 1), count(&split.validation, 2)), (2, 1, 0));
        let mut all: Vec<usize> = split.train.iter().chain(&split.validation).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..16).collect::<Vec<_>>());
        assert_eq!(split, split_tracks(&labels, 3, 0.2, 42));
        assert_ne!(split.validation, split_tracks(&labels, 3, 0.2, 43).validation);
    }
}
