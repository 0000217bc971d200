//! The train / val / test split by file, stratified by label: the one split of the project.
//! `timbred split` writes it, pca-knn training holds its validation tracks out with it, and
//! the Python training reads `timbred split`'s output. It is the rule the shipped models were
//! split by (`plugins/models/split.tsv`), first written in Python with numpy: the shuffle is
//! numpy's ([`crate::numpy`]) and counts round half to even, as Python's `round` does.

use std::collections::BTreeMap;

use crate::numpy::Pcg64;

/// The rule, in words, for split files and model cards.
pub const RULE: &str = "by file (track id), never by segment; stratified by label: each label's files, sorted by \
path, are shuffled with numpy.random.default_rng([seed, crc32(label)]).permutation; the first round(test n) go to \
test, the next round(validation n) to val, the rest to train (round half to even; at least one file each in val and \
test, when that fraction is not 0, for a label with 3 or more files; at least one file stays in train)";

/// One side of the split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    Train,
    Val,
    Test,
}

impl Side {
    pub const ALL: [Side; 3] = [Side::Train, Side::Val, Side::Test];

    /// As split files write it: `train`, `val` or `test`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Train => "train",
            Side::Val => "val",
            Side::Test => "test",
        }
    }
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The fractions of each label's files held out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fractions {
    pub validation: f64,
    pub test: f64,
}

impl Default for Fractions {
    /// 15 % validation, 15 % test: the split of the shipped models.
    fn default() -> Self {
        Fractions { validation: 0.15, test: 0.15 }
    }
}

/// The side of each `(id, label)` item, in the order given. An id is a file (a track): all
/// of its segments go to the side it is given. The result depends on the seed and the set of
/// items, not on their order; a label's files move only when that label's files change.
pub fn split(items: &[(&str, &str)], fractions: Fractions, seed: u64) -> Vec<Side> {
    let mut by_label: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (index, (_, label)) in items.iter().enumerate() {
        by_label.entry(label).or_default().push(index);
    }
    let mut sides = vec![Side::Train; items.len()];
    for (label, mut members) in by_label {
        members.sort_by_key(|&i| items[i].0);
        let n = members.len();
        let order = Pcg64::new(&[seed, u64::from(crc32fast::hash(label.as_bytes()))]).permutation(n);
        let held_out = |fraction: f64| {
            let count = (fraction * n as f64).round_ties_even() as usize;
            if n >= 3 && fraction > 0.0 {
                count.max(1)
            } else {
                count
            }
        };
        // Never every file of a label: validation gives way first, then test.
        let n_test = held_out(fractions.test).min(n - 1);
        let n_validation = held_out(fractions.validation).min(n - 1 - n_test);
        for (position, &member) in order.iter().enumerate() {
            sides[members[member]] = if position < n_test {
                Side::Test
            } else if position < n_test + n_validation {
                Side::Val
            } else {
                Side::Train
            };
        }
    }
    sides
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(counts: &[(&str, usize)]) -> Vec<(String, String)> {
        counts
            .iter()
            .flat_map(|&(label, n)| (0..n).map(move |i| (format!("{label}/{label}.{i:05}.flac"), label.to_string())))
            .collect()
    }

    fn sides_of(files: &[(String, String)], fractions: Fractions, seed: u64) -> BTreeMap<String, Side> {
        let items: Vec<(&str, &str)> = files.iter().map(|(f, l)| (f.as_str(), l.as_str())).collect();
        files.iter().map(|(f, _)| f.clone()).zip(split(&items, fractions, seed)).collect()
    }

    fn count(sides: &BTreeMap<String, Side>, label: &str, side: Side) -> usize {
        sides.iter().filter(|(f, s)| f.starts_with(&format!("{label}/")) && **s == side).count()
    }

    #[test]
    fn split_is_stratified_seeded_and_independent_of_the_order() {
        let all = files(&[("blues", 43), ("classical", 85), ("jazz", 3)]);
        let a = sides_of(&all, Fractions::default(), 0);
        let reversed: Vec<_> = all.iter().rev().cloned().collect();
        assert_eq!(a, sides_of(&reversed, Fractions::default(), 0), "independent of the listing order");
        assert_ne!(a, sides_of(&all, Fractions::default(), 1));
        for label in ["blues", "classical", "jazz"] {
            assert!(Side::ALL.iter().all(|&s| count(&a, label, s) > 0), "{label} is in every split");
        }
        // 85 × 0.15 = 12.75 → 13; 43 × 0.15 = 6.45 → 6; 3 files: one each.
        let counts = |label| Side::ALL.map(|s| count(&a, label, s));
        assert_eq!(counts("classical"), [59, 13, 13]);
        assert_eq!(counts("blues"), [31, 6, 6]);
        assert_eq!(counts("jazz"), [1, 1, 1]);
        // Adding a label does not move the files of the others.
        let b = sides_of(&[all.clone(), files(&[("rock", 40)])].concat(), Fractions::default(), 0);
        assert!(a.iter().all(|(f, s)| b[f] == *s));
    }

    #[test]
    fn counts_round_half_to_even_as_python_does() {
        // 0.15 × 30 = 4.5 → 4 (not 5); 0.15 × 50 = 7.5 → 8.
        let a = sides_of(&files(&[("a", 30), ("b", 50)]), Fractions::default(), 0);
        assert_eq!((count(&a, "a", Side::Test), count(&a, "b", Side::Test)), (4, 8));
    }

    #[test]
    fn a_zero_fraction_holds_nothing_out() {
        // pca-knn's validation split: 20 % validation, no test.
        let fractions = Fractions { validation: 0.2, test: 0.0 };
        let a = sides_of(&files(&[("a", 10), ("b", 5), ("c", 1), ("d", 3)]), fractions, 42);
        let counts = |label| Side::ALL.map(|s| count(&a, label, s));
        assert_eq!([counts("a"), counts("b"), counts("c"), counts("d")], [[8, 2, 0], [4, 1, 0], [1, 0, 0], [2, 1, 0]]);
    }

    #[test]
    fn a_label_always_keeps_a_file_to_train_on() {
        // 0.9 × 3 rounds to 3 and 0.9 × 2 to 2; 0.5 × 3 = 1.5 rounds to 2 (half to even).
        let high = Fractions { validation: 0.9, test: 0.0 };
        let a = sides_of(&files(&[("a", 3), ("b", 2), ("c", 1)]), high, 0);
        let counts = |label| Side::ALL.map(|s| count(&a, label, s));
        assert_eq!([counts("a"), counts("b"), counts("c")], [[1, 2, 0], [1, 1, 0], [1, 0, 0]]);
        let both = Fractions { validation: 0.5, test: 0.5 };
        let a = sides_of(&files(&[("a", 3)]), both, 0);
        assert_eq!(Side::ALL.map(|s| count(&a, "a", s)), [1, 0, 2], "test first, then validation gives way");
    }

    #[test]
    fn the_shuffle_is_numpys_permutation() {
        // np.random.default_rng([0, zlib.crc32(b"blues")]).permutation(12) is
        // [11, 0, 9, 7, 1, 5, 4, 3, 6, 2, 8, 10]: files 11 and 0 (round(1.8) = 2) go to test,
        // 9 and 7 to val.
        let a = sides_of(&files(&[("blues", 12)]), Fractions::default(), 0);
        let side = |i: usize| a[&format!("blues/blues.{i:05}.flac")];
        assert_eq!(
            [side(11), side(0), side(9), side(7), side(1), side(10)],
            [Side::Test, Side::Test, Side::Val, Side::Val, Side::Train, Side::Train]
        );
    }
}
