//! `timbred train head --from-library`: a head learnt from the user's own labels, over the
//! embeddings the library already holds (no audio is decoded). Labels come from a tag field
//! (genre, artist, album) or a `PATH<TAB>LABEL` file; spellings of one label are merged
//! (`Hip-Hop`, `hiphop`, `Hip Hop`), labels with too few tracks are dropped and said so.
//! The tracks are split by artist where artists are tagged (no artist on both sides), the
//! head is trained on one side by the same trainer as `train head`, scored on the other, and
//! written as a model folder with its card and a picture of its confusion matrix.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use timbre_head::{card, train, write_head_folder, Example, FolderSpec, Holdout, TrainOptions, TrainReport};
use timbre_rng::split::{Fractions, Side};

use super::metrics::{ClassScores, Confusion};
use crate::library::embeddings::for_each_track;
use crate::library::{StoreError, Tags};

/// Where a track's label comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum LabelSource {
    /// A tag field: `genre`, `artist` or `album`.
    Tag(TagField),
    /// `PATH<TAB>LABEL` lines; a path is a library path, or the end of one.
    File(PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagField {
    Genre,
    Artist,
    Album,
}

impl TagField {
    pub fn parse(name: &str) -> Option<TagField> {
        match name {
            "genre" => Some(TagField::Genre),
            "artist" => Some(TagField::Artist),
            "album" => Some(TagField::Album),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TagField::Genre => "genre",
            TagField::Artist => "artist",
            TagField::Album => "album",
        }
    }

    fn of(self, tags: &Tags) -> &str {
        match self {
            TagField::Genre => &tags.genre,
            TagField::Artist => &tags.artist,
            TagField::Album => &tags.album,
        }
    }
}

#[derive(Debug, Clone)]
pub struct LibraryHeadRequest {
    /// The library database (`library.db` in the daemon's data folder).
    pub database: PathBuf,
    pub labels: LabelSource,
    pub embedding: String,
    pub out_dir: PathBuf,
    pub name: String,
    pub version: String,
    /// Labels with fewer tracks than this are dropped.
    pub min_tracks: usize,
    /// Shares of each label's artists (or tracks) held out: to score the head, and to choose
    /// its classifier.
    pub test: f64,
    pub validation: f64,
    pub seed: u64,
    /// The command line, for the card.
    pub command: String,
}

/// A label left out, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dropped {
    pub label: String,
    pub tracks: usize,
    pub reason: String,
}

/// One label as trained: its display name, the spellings merged into it, and its tracks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelCount {
    pub label: String,
    pub spellings: Vec<String>,
    pub tracks: usize,
    pub test_tracks: usize,
}

/// The head's score on the held-out tracks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub tracks: usize,
    pub accuracy: f64,
    /// Always answering the most common training label.
    pub chance_majority: f64,
    /// Guessing uniformly among the labels.
    pub chance_uniform: f64,
    pub per_label: BTreeMap<String, ClassScores>,
    pub confusion: Confusion,
}

#[derive(Debug, Clone, Serialize)]
pub struct LibraryHeadOutcome {
    pub database: PathBuf,
    pub source: String,
    pub embedding: String,
    /// Library tracks with an embedding of `embedding`.
    pub library_tracks: usize,
    /// Of those, tracks with no label.
    pub unlabelled: usize,
    pub labels: Vec<LabelCount>,
    pub dropped: Vec<Dropped>,
    /// `artist` when the split kept each artist on one side, else `track`.
    pub split_by: String,
    pub report: TrainReport,
    pub evaluation: Evaluation,
    pub train_seconds: f64,
    pub out_dir: PathBuf,
    /// The confusion matrix picture, in the model folder, with the cells as drawn.
    pub confusion_png: Option<super::plots::Plot>,
    /// The held-out tracks' paths (left out of the JSON: thousands of lines).
    #[serde(skip)]
    pub held_out: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LibraryHeadError {
    #[error("the library database {} does not exist (is --data-dir the daemon's data folder?)", .0.display())]
    NoDatabase(PathBuf),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read the labels file {}: {reason}", path.display())]
    LabelsFile { path: PathBuf, reason: String },
    #[error("no library track has a '{0}' embedding; let the daemon analyse the library with that model first")]
    NoEmbeddings(String),
    #[error("fewer than two labels have at least {min} tracks (kept: {kept:?}); dropped: {dropped}")]
    TooFewLabels { min: usize, kept: Vec<String>, dropped: String },
    #[error("no track is held out for testing: every label needs at least 3 artists (or untagged tracks)")]
    NoTest,
    #[error(transparent)]
    Train(#[from] timbre_head::TrainError),
    #[error("track {track}: {source}")]
    Predict { track: String, source: timbre_head::PredictError },
    #[error(transparent)]
    Write(#[from] timbre_head::FolderError),
    #[error("cannot write {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// The key spellings of one label share: lower case, letters and digits only, so `Hip-Hop`,
/// `hip hop` and `HipHop` meet. A label of punctuation alone has no key (no label).
pub fn label_key(label: &str) -> String {
    label.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// The name shown for a label: its most common spelling, trimmed; the first in sort order of
/// equally common ones, so the name is the same on every run.
fn display_name(spellings: &BTreeMap<String, usize>) -> String {
    spellings.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))).map(|(s, _)| s.clone()).unwrap_or_default()
}

/// One library track with its label's key and its spelling.
struct Row {
    path: String,
    artist: String,
    key: String,
    spelling: String,
    embedding: Vec<f32>,
}

/// Labels from a `PATH<TAB>LABEL` file, keyed by path; `#` lines and blank lines are skipped.
fn read_labels_file(path: &Path) -> Result<Vec<(String, String)>, LibraryHeadError> {
    let fail = |reason: String| LibraryHeadError::LabelsFile { path: path.to_path_buf(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let mut lines = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (file, label) =
            line.split_once('\t').ok_or_else(|| fail(format!("line {}: expected PATH<TAB>LABEL", n + 1)))?;
        lines.push((file.trim().to_string(), label.trim().to_string()));
    }
    Ok(lines)
}

/// The label a file gives a library path: the exact path, else a relative path that ends it
/// at a folder boundary.
fn label_from_file<'a>(labels: &'a [(String, String)], exact: &'a HashMap<&str, &str>, path: &str) -> Option<&'a str> {
    if let Some(label) = exact.get(path) {
        return Some(label);
    }
    labels
        .iter()
        .filter(|(file, _)| !file.starts_with('/'))
        .find(|(file, _)| path.ends_with(file.as_str()) && path[..path.len() - file.len()].ends_with('/'))
        .map(|(_, label)| label.as_str())
}

pub fn train_from_library(request: &LibraryHeadRequest) -> Result<LibraryHeadOutcome, LibraryHeadError> {
    if !request.database.is_file() {
        return Err(LibraryHeadError::NoDatabase(request.database.clone()));
    }
    let file_labels = match &request.labels {
        LabelSource::File(path) => read_labels_file(path)?,
        LabelSource::Tag(_) => Vec::new(),
    };
    let exact: HashMap<&str, &str> = file_labels.iter().map(|(f, l)| (f.as_str(), l.as_str())).collect();

    // One pass over the stored embeddings: nothing is decoded.
    let (mut rows, mut library_tracks, mut unlabelled) = (Vec::new(), 0usize, 0usize);
    for_each_track(&request.database, |track| {
        let Some(embedding) = track.embeddings.into_iter().find(|e| e.model == request.embedding) else {
            return true;
        };
        library_tracks += 1;
        let spelling = match &request.labels {
            LabelSource::Tag(field) => field.of(&track.tags).trim().to_string(),
            LabelSource::File(_) => label_from_file(&file_labels, &exact, &track.path).unwrap_or("").to_string(),
        };
        let key = label_key(&spelling);
        if key.is_empty() {
            unlabelled += 1;
        } else {
            rows.push(Row {
                path: track.path,
                artist: label_key(&track.tags.artist),
                key,
                spelling,
                embedding: embedding.embedding,
            });
        }
        true
    })?;
    if library_tracks == 0 {
        return Err(LibraryHeadError::NoEmbeddings(request.embedding.clone()));
    }

    // Merge spellings; keep labels with enough tracks.
    let mut spellings: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for row in &rows {
        *spellings.entry(row.key.clone()).or_default().entry(row.spelling.clone()).or_default() += 1;
    }
    let names: HashMap<String, String> = spellings.iter().map(|(k, s)| (k.to_string(), display_name(s))).collect();
    let mut dropped = Vec::new();
    let mut kept: Vec<String> = Vec::new();
    for (key, spelt) in &spellings {
        let tracks: usize = spelt.values().sum();
        if tracks < request.min_tracks {
            dropped.push(Dropped {
                label: names[key].clone(),
                tracks,
                reason: format!("{tracks} tracks, fewer than --min-tracks {}", request.min_tracks),
            });
        } else {
            kept.push(key.clone());
        }
    }
    if kept.len() < 2 {
        return Err(LibraryHeadError::TooFewLabels {
            min: request.min_tracks,
            kept: kept.iter().map(|k| names[k].clone()).collect(),
            dropped: dropped.iter().map(|d| format!("{} ({})", d.label, d.reason)).collect::<Vec<_>>().join(", "),
        });
    }
    rows.retain(|r| kept.contains(&r.key));
    for row in &mut rows {
        row.spelling = names[&row.key].clone();
    }

    // Split by artist where one is tagged: an artist's tracks sound alike, so an artist on
    // both sides would flatter the score. Each group is filed under its most common label.
    let split_by_artist = rows.iter().any(|r| !r.artist.is_empty());
    let group =
        |r: &Row| if r.artist.is_empty() { format!("track:{}", r.path) } else { format!("artist:{}", r.artist) };
    let mut group_labels: BTreeMap<String, BTreeMap<&str, usize>> = BTreeMap::new();
    for row in &rows {
        *group_labels.entry(group(row)).or_default().entry(&row.spelling).or_default() += 1;
    }
    let groups: Vec<(String, &str)> = group_labels
        .iter()
        .map(|(g, labels)| {
            let label = labels.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))).map_or("", |(l, _)| *l);
            (g.clone(), label)
        })
        .collect();
    let items: Vec<(&str, &str)> = groups.iter().map(|(g, l)| (g.as_str(), *l)).collect();
    let fractions = Fractions { validation: request.validation, test: request.test };
    let sides: HashMap<&str, Side> =
        items.iter().map(|(g, _)| *g).zip(timbre_rng::split::split(&items, fractions, request.seed)).collect();
    let side = |r: &Row| sides[group(r).as_str()];

    let training: Vec<&Row> = rows.iter().filter(|r| side(r) != Side::Test).collect();
    let testing: Vec<&Row> = rows.iter().filter(|r| side(r) == Side::Test).collect();
    if testing.is_empty() {
        return Err(LibraryHeadError::NoTest);
    }
    let examples: Vec<Example<'_>> =
        training.iter().map(|r| Example { track: &r.path, label: &r.spelling, embedding: &r.embedding }).collect();
    let validation: Vec<String> = training.iter().filter(|r| side(r) == Side::Val).map(|r| r.path.clone()).collect();
    let holdout = if validation.is_empty() {
        Holdout::Stratified { fraction: 0.2, seed: request.seed }
    } else {
        Holdout::Tracks(validation)
    };
    let started = Instant::now();
    let (head, report) = train(&examples, &TrainOptions { holdout, ..TrainOptions::default() })?;
    let train_seconds = started.elapsed().as_secs_f64();

    // Score on the tracks (and artists) it never saw.
    let labels = head.labels().to_vec();
    let mut pairs = Vec::new();
    for row in &testing {
        let p = head
            .predict(&row.embedding)
            .map_err(|source| LibraryHeadError::Predict { track: row.path.clone(), source })?;
        let best = crate::pipeline::classify::top(&p).unwrap_or(0);
        let truth = labels.iter().position(|l| *l == row.spelling).unwrap_or(0);
        pairs.push((truth, best));
    }
    let confusion = Confusion::new(&labels, pairs);
    let most_common_training = report.train_tracks.iter().zip(&report.holdout_tracks).map(|(a, b)| a + b);
    let majority =
        most_common_training.enumerate().max_by_key(|&(i, n)| (n, std::cmp::Reverse(i))).map_or(0, |(i, _)| i);
    let evaluation = Evaluation {
        tracks: testing.len(),
        accuracy: confusion.accuracy(),
        chance_majority: confusion.matrix[majority].iter().sum::<usize>() as f64 / testing.len() as f64,
        chance_uniform: 1.0 / labels.len() as f64,
        per_label: confusion.per_class(),
        confusion,
    };

    let label_counts: Vec<LabelCount> = labels
        .iter()
        .map(|label| {
            let key = label_key(label);
            LabelCount {
                label: label.clone(),
                spellings: spellings.get(key.as_str()).map(|s| s.keys().cloned().collect()).unwrap_or_default(),
                tracks: rows.iter().filter(|r| &r.spelling == label).count(),
                test_tracks: testing.iter().filter(|r| &r.spelling == label).count(),
            }
        })
        .collect();
    let source = match &request.labels {
        LabelSource::Tag(field) => format!("the library's {} tags", field.name()),
        LabelSource::File(path) => format!("the labels in {}", path.display()),
    };
    let outcome = LibraryHeadOutcome {
        database: request.database.clone(),
        source,
        embedding: request.embedding.clone(),
        library_tracks,
        unlabelled,
        labels: label_counts,
        dropped,
        split_by: if split_by_artist { "artist" } else { "track" }.into(),
        report,
        evaluation,
        train_seconds,
        out_dir: request.out_dir.clone(),
        confusion_png: None,
        held_out: testing.iter().map(|r| r.path.clone()).collect(),
    };

    let data = format!(
        "{} of the {} tracks of the library {} with a `{}` embedding, labelled by {}",
        rows.len(),
        library_tracks,
        request.database.display(),
        request.embedding,
        outcome.source
    );
    let provenance = card::Provenance {
        name: &request.name,
        upstream: &request.embedding,
        data: &data,
        command: &request.command,
        seconds: train_seconds,
    };
    let mut text = card::card(&provenance, &outcome.report);
    text.push_str(&card_sections(&outcome, request));
    let description = format!(
        "a head over the {} embedding, from {}: {}",
        request.embedding, outcome.source, outcome.report.classifier
    );
    let comment = format!("Written by `timbred train head --from-library`. Retrain:\n  {}", request.command);
    write_head_folder(
        &head,
        &request.out_dir,
        &FolderSpec {
            name: &request.name,
            version: &request.version,
            description: &description,
            upstream: &request.embedding,
            card: &text,
            comment: &comment,
        },
    )?;
    let mut outcome = outcome;
    let title = format!("{}: held-out tracks", request.name);
    match super::plots::confusion(&title, &outcome.evaluation.confusion, &request.out_dir.join(CONFUSION_PNG)) {
        Ok(plot) => outcome.confusion_png = Some(plot),
        // The head is what matters; a picture that cannot be drawn is only a warning.
        Err(error) => tracing::warn!("{error}"),
    }
    let json = serde_json::to_string_pretty(&outcome).unwrap_or_default();
    std::fs::write(request.out_dir.join(EVALUATION_JSON), json + "\n")
        .map_err(|source| LibraryHeadError::Io { path: request.out_dir.join(EVALUATION_JSON), source })?;
    Ok(outcome)
}

/// The confusion matrix of the held-out tracks, beside the head.
pub const CONFUSION_PNG: &str = "confusion.png";
/// The outcome as JSON (the numbers the picture was drawn from), beside the head.
pub const EVALUATION_JSON: &str = "evaluation.json";

/// The card's data and evaluation sections.
fn card_sections(outcome: &LibraryHeadOutcome, request: &LibraryHeadRequest) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n## Data\n\nFrom the library `{}`: {} tracks with a `{}` embedding, {} of them without a label. Spellings that \
         differ only in case, spaces or punctuation are one label. Split by {} (at most one side per {}): of each \
         label's {}s, {:.0} % held out to score the head and {:.0} % to choose its classifier, seed {}.\n",
        outcome.database.display(),
        outcome.library_tracks,
        outcome.embedding,
        outcome.unlabelled,
        outcome.split_by,
        outcome.split_by,
        outcome.split_by,
        100.0 * request.test,
        100.0 * request.validation,
        request.seed
    );
    let _ = writeln!(out, "| label | spellings | tracks | held out |\n| --- | --- | ---: | ---: |");
    for l in &outcome.labels {
        let _ = writeln!(out, "| {} | {} | {} | {} |", l.label, l.spellings.join(", "), l.tracks, l.test_tracks);
    }
    if outcome.dropped.is_empty() {
        let _ = writeln!(out, "\nNo label was dropped.");
    } else {
        let _ = writeln!(out, "\nDropped:\n");
        for d in &outcome.dropped {
            let _ = writeln!(out, "- {}: {}", d.label, d.reason);
        }
    }
    let e = &outcome.evaluation;
    let _ = writeln!(
        out,
        "\n## Held-out evaluation\n\nTrained without the held-out tracks, then scored on them: **{:.1} %** of {} \
         tracks (chance: {:.1} % always answering the most common label, {:.1} % guessing uniformly).\n",
        100.0 * e.accuracy,
        e.tracks,
        100.0 * e.chance_majority,
        100.0 * e.chance_uniform
    );
    let _ = writeln!(out, "| label | precision | recall | held-out tracks |\n| --- | ---: | ---: | ---: |");
    for (label, s) in &e.per_label {
        let _ = writeln!(out, "| {label} | {:.2} | {:.2} | {} |", s.precision, s.recall, s.support);
    }
    let _ = writeln!(
        out,
        "\n![confusion matrix of the held-out tracks]({CONFUSION_PNG})\n\nThe numbers: `{EVALUATION_JSON}`."
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_label_share_a_key() {
        for spelling in ["Hip-Hop", "hiphop", "Hip Hop", " HIP_HOP ", "hip-hop."] {
            assert_eq!(label_key(spelling), "hiphop", "{spelling}");
        }
        assert_eq!(label_key("R&B"), "rb");
        assert_eq!(label_key("Rock"), "rock");
        assert_eq!(label_key(" - "), "", "punctuation alone is no label");
        let mut counts = BTreeMap::new();
        counts.insert("hiphop".to_string(), 2);
        counts.insert("Hip-Hop".to_string(), 2);
        counts.insert("Hip Hop".to_string(), 1);
        assert_eq!(display_name(&counts), "Hip-Hop", "the most common spelling, ties in sort order");
    }

    #[test]
    fn a_labels_file_names_exact_paths_or_their_ends() {
        let labels =
            vec![("/m/a/x.flac".to_string(), "rock".to_string()), ("b/y.flac".to_string(), "jazz".to_string())];
        let exact: HashMap<&str, &str> = labels.iter().map(|(f, l)| (f.as_str(), l.as_str())).collect();
        assert_eq!(label_from_file(&labels, &exact, "/m/a/x.flac"), Some("rock"));
        assert_eq!(label_from_file(&labels, &exact, "/m/b/y.flac"), Some("jazz"));
        assert_eq!(label_from_file(&labels, &exact, "/m/bb/y.flac"), None, "only at a folder boundary");
        assert_eq!(label_from_file(&labels, &exact, "/n/a/x.flac"), None);
    }

    /// A library of `labels` × `artists` × `tracks` tracks whose embeddings cluster by label,
    /// with the label spelt differently by different artists.
    fn library(dir: &Path, labels: &[(&str, &[&str])], artists: usize, tracks: usize) -> PathBuf {
        use crate::library::{FileStat, ModelVersion, Store, StoredPrediction};
        let database = dir.join("library.db");
        let store = Store::open(&database).expect("store");
        let mut rng = timbre_rng::SplitMix64::new(7);
        let dim = 16;
        let version = ModelVersion { model: "emb".into(), model_version: "1".into(), feature_version: "f".into() };
        for (l, (name, spellings)) in labels.iter().enumerate() {
            for a in 0..artists {
                for t in 0..tracks {
                    let path = format!("/m/{name}/{a}/{t}.flac");
                    let tags = Tags {
                        artist: format!("{name} artist {a}"),
                        genre: spellings[a % spellings.len()].to_string(),
                        ..Tags::default()
                    };
                    let id = store.insert(&path, FileStat { size: 1, mtime_ns: 1 }, &path, &tags).expect("insert");
                    let embedding: Vec<f32> =
                        (0..dim).map(|d| if d == l { 1.0 } else { 0.0 } + 0.6 * (rng.unit() as f32 - 0.5)).collect();
                    let prediction = StoredPrediction {
                        version: version.clone(),
                        labels: vec!["x".into()],
                        probabilities: vec![1.0],
                        embedding,
                        segments: 1,
                        analysed_at_ms: 0,
                    };
                    store.save_analysis(id, 30.0, &[prediction]).expect("save");
                }
            }
        }
        database
    }

    fn request(database: PathBuf, out: &Path) -> LibraryHeadRequest {
        LibraryHeadRequest {
            database,
            labels: LabelSource::Tag(TagField::Genre),
            embedding: "emb".into(),
            out_dir: out.to_path_buf(),
            name: "mine".into(),
            version: "1.0.0".into(),
            min_tracks: 5,
            test: 0.2,
            validation: 0.2,
            seed: 0,
            command: "timbred train head --from-library".into(),
        }
    }

    #[test]
    fn a_head_from_library_tags_merges_spellings_drops_rare_labels_and_keeps_artists_on_one_side() {
        let dir = tempfile::tempdir().expect("tempdir");
        let labels: &[(&str, &[&str])] = &[
            ("hiphop", &["Hip-Hop", "hiphop", "Hip Hop"]),
            ("rock", &["Rock"]),
            ("jazz", &["jazz", "Jazz"]),
            ("polka", &["Polka"]),
        ];
        let database = library(dir.path(), labels, 5, 3);
        // Polka: one artist with three tracks, below --min-tracks.
        let store = crate::library::Store::open(&database).expect("store");
        for id in (1..=store.count().expect("count") as i64).rev() {
            let track = store.track(id).expect("read").expect("track");
            if track.tags.genre == "Polka" && !track.tags.artist.ends_with(" 0") {
                store.remove(id).expect("remove");
            }
        }
        drop(store);
        let out = dir.path().join("models/mine");
        let outcome = train_from_library(&request(database, &out)).expect("trained");
        let names: Vec<&str> = outcome.labels.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(
            names,
            ["Hip-Hop", "Rock", "jazz"],
            "one label per spelling family, named by its commonest spelling"
        );
        assert_eq!(outcome.labels[0].spellings, ["Hip Hop", "Hip-Hop", "hiphop"]);
        assert_eq!(outcome.labels[0].tracks, 15);
        assert_eq!(
            outcome.dropped,
            [Dropped { label: "Polka".into(), tracks: 3, reason: "3 tracks, fewer than --min-tracks 5".into() }]
        );
        assert_eq!(outcome.split_by, "artist");
        // No artist on both sides: an artist's three tracks are all held out, or none is.
        let artist = |path: &str| path.rsplit_once('/').map(|(a, _)| a.to_string()).unwrap_or_default();
        for held in &outcome.held_out {
            let same = outcome.held_out.iter().filter(|p| artist(p) == artist(held)).count();
            assert_eq!(same, 3, "{held}: every track of its artist is held out");
        }
        let e = &outcome.evaluation;
        assert_eq!(e.tracks, outcome.held_out.len());
        assert_eq!(e.confusion.total(), e.tracks);
        assert!(e.accuracy > e.chance_majority + 0.3, "{e:?}");
        // The folder the daemon loads, with a card that says where the labels came from.
        let card = std::fs::read_to_string(out.join("CARD.md")).expect("card");
        assert!(
            card.contains("genre tags") && card.contains("Polka: 3 tracks") && card.contains(CONFUSION_PNG),
            "{card}"
        );
        let (_, head) = timbre_head::load_head_folder(&out).expect("loads");
        assert_eq!(head.labels(), ["Hip-Hop", "Rock", "jazz"]);
        // The picture shows the numbers: each cell as drawn is the count in the matrix.
        let plot = outcome.confusion_png.as_ref().expect("a picture");
        let counts: Vec<Vec<String>> =
            e.confusion.matrix.iter().map(|row| row.iter().map(usize::to_string).collect()).collect();
        assert_eq!(plot.cells, counts);
        let png = std::fs::read(out.join(CONFUSION_PNG)).expect("png");
        assert_eq!(super::super::plots::png_size(&png), Some((plot.width, plot.height)));
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join(EVALUATION_JSON)).expect("json")).expect("JSON");
        assert_eq!(json["evaluation"]["confusion"]["matrix"], serde_json::json!(e.confusion.matrix));
    }

    #[test]
    fn too_few_labels_left_is_an_error_naming_the_dropped_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let database = library(dir.path(), &[("rock", &["Rock"]), ("jazz", &["Jazz"])], 1, 3);
        let error = train_from_library(&request(database, &dir.path().join("out"))).expect_err("too few");
        let text = error.to_string();
        assert!(text.contains("Rock (3 tracks") && text.contains("Jazz (3 tracks"), "{text}");
    }
}
