//! `timbred split`: a train / validation / test split of a labelled folder, by file and
//! stratified by label ([`timbre_rng::split`]), written as `relative/path<TAB>split` lines.
//! Every model is trained and evaluated on the same split, so their held-out figures and their
//! ensemble compare; the Python training reads this output rather than splitting itself.

use std::fmt::Write as _;
use std::path::Path;

use timbre_rng::split::{Fractions, Side, RULE};

use super::eval::{labelled_files, EvalError};

#[derive(Debug, Clone, Copy)]
pub struct SplitOptions {
    pub fractions: Fractions,
    pub seed: u64,
}

/// `(relative path, side)` for every audio file under `data_dir`, sorted by path.
pub fn split(data_dir: &Path, options: SplitOptions) -> Result<Vec<(String, Side)>, EvalError> {
    let files: Vec<(String, String)> = labelled_files(data_dir)?
        .into_iter()
        .map(|(file, label)| (file.strip_prefix(data_dir).unwrap_or(&file).to_string_lossy().into_owned(), label))
        .collect();
    let items: Vec<(&str, &str)> = files.iter().map(|(file, label)| (file.as_str(), label.as_str())).collect();
    let sides = timbre_rng::split::split(&items, options.fractions, options.seed);
    let mut lines: Vec<(String, Side)> = files.into_iter().map(|(file, _)| file).zip(sides).collect();
    lines.sort();
    Ok(lines)
}

/// The split file: two `#` lines (the options and the rule; nothing about where the data
/// folder is, so the same data give the same file from anywhere), then `PATH<TAB>SPLIT` lines.
pub fn to_tsv(lines: &[(String, Side)], options: SplitOptions) -> String {
    let Fractions { validation, test } = options.fractions;
    let mut out = format!(
        "# timbred split --test {test} --validation {validation} --seed {}: PATH<TAB>SPLIT, paths relative to the data folder\n# rule: {RULE}\n",
        options.seed
    );
    for (file, side) in lines {
        let _ = writeln!(out, "{file}\t{side}");
    }
    out
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
        let options = SplitOptions { fractions: Fractions::default(), seed: 3 };
        let first = split(dir.path(), options).expect("split");
        assert_eq!(first, split(dir.path(), options).expect("split"), "same seed, same split");
        assert_ne!(first, split(dir.path(), SplitOptions { seed: 4, ..options }).expect("split"));
        assert_eq!(first.len(), 40, "every file exactly once");
        for label in ["a/", "b/"] {
            let count = |s: Side| first.iter().filter(|(f, w)| f.starts_with(label) && *w == s).count();
            assert_eq!((count(Side::Test), count(Side::Val), count(Side::Train)), (3, 3, 14), "{label}");
        }
        let tsv = to_tsv(&first, options);
        assert!(tsv.starts_with("# timbred split --test 0.15 --validation 0.15 --seed 3: "), "{tsv}");
        assert_eq!(tsv.lines().filter(|l| !l.starts_with('#')).count(), 40);
        assert!(tsv.contains(&format!("\n{}\t{}\n", first[0].0, first[0].1)), "{tsv}");
        assert!(!tsv.contains(&dir.path().display().to_string()), "the file does not depend on the data's location");
    }
}
