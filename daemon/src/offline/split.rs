//! `timbred split`: a train / validation / test split of a labelled folder, by file and
//! stratified by label, written as `relative/path<TAB>split` lines. Every model is trained
//! and evaluated on the same split, so their held-out figures and their ensemble compare.

use std::collections::BTreeMap;
use std::path::Path;

use super::eval::{labelled_files, EvalError};

#[derive(Debug, Clone, Copy)]
pub struct SplitOptions {
    pub validation: f64,
    pub test: f64,
    pub seed: u64,
}

/// `(relative path, split)` for every audio file under `data_dir`, sorted by path.
pub fn split(data_dir: &Path, options: SplitOptions) -> Result<Vec<(String, &'static str)>, EvalError> {
    let mut by_label: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (file, label) in labelled_files(data_dir)? {
        let relative = file.strip_prefix(data_dir).unwrap_or(&file).to_string_lossy().into_owned();
        by_label.entry(label).or_default().push(relative);
    }
    let mut rng = SplitMix64(options.seed);
    let mut out = Vec::new();
    for files in by_label.values_mut() {
        // Fisher–Yates over the sorted list: the same seed gives the same split anywhere.
        for i in (1..files.len()).rev() {
            let j = (rng.next() % (i as u64 + 1)) as usize;
            files.swap(i, j);
        }
        let n = files.len() as f64;
        let test = (n * options.test).round() as usize;
        let validation = (n * options.validation).round() as usize;
        for (i, file) in files.iter().enumerate() {
            let which = if i < test {
                "test"
            } else if i < test + validation {
                "val"
            } else {
                "train"
            };
            out.push((file.clone(), which));
        }
    }
    out.sort();
    Ok(out)
}

/// SplitMix64: tiny, and stable across platforms and versions, unlike a library RNG.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_stratified_deterministic_and_by_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        for label in ["a", "b"] {
            std::fs::create_dir(dir.path().join(label)).expect("mkdir");
            for i in 0..20 {
                std::fs::write(dir.path().join(label).join(format!("{label}.{i:03}.flac")), b"x").expect("write");
            }
        }
        let options = SplitOptions { validation: 0.15, test: 0.15, seed: 3 };
        let first = split(dir.path(), options).expect("split");
        assert_eq!(first, split(dir.path(), options).expect("split"), "same seed, same split");
        assert_ne!(first, split(dir.path(), SplitOptions { seed: 4, ..options }).expect("split"));
        assert_eq!(first.len(), 40, "every file exactly once");
        for label in ["a/", "b/"] {
            let count = |s: &str| first.iter().filter(|(f, w)| f.starts_with(label) && *w == s).count();
            assert_eq!((count("test"), count("val"), count("train")), (3, 3, 14), "{label}");
        }
    }
}
