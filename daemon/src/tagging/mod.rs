//! Writing what the library learnt about a track into its file's tags: genre, mood, tempo,
//! key and ReplayGain, taken from the stored analysis (never a new one). Each write is
//! recorded in the library with the values it replaced, so it can be undone.
//!
//! [`slots`] says where each tag lives per format; [`write`] makes the file change safe.

pub mod slots;
pub mod write;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::library::store::{FileStat, Store, StoreError, TrackRecord, TrackState};
use slots::{Family, Slot, TagFile};

/// The `[tagging]` configuration section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaggingSettings {
    /// Let the daemon tag each track as soon as its analysis is stored.
    pub write: bool,
    /// The fields written: genre, mood, bpm, key, replaygain.
    pub fields: Vec<Field>,
    pub genre: FieldSettings,
    pub mood: FieldSettings,
    pub bpm: FieldSettings,
    pub key: FieldSettings,
    pub replaygain: FieldSettings,
}

impl Default for TaggingSettings {
    fn default() -> Self {
        let descriptors = |min_confidence| FieldSettings {
            source: "descriptors".into(),
            min_confidence,
            tag: String::new(),
            policy: Policy::Fill,
        };
        TaggingSettings {
            write: false,
            fields: Field::ALL.to_vec(),
            genre: FieldSettings {
                source: "genre".into(),
                min_confidence: 0.5,
                tag: String::new(),
                policy: Policy::Fill,
            },
            // Moods are rare among the Million Song Dataset's tags, so musicnn-msd gives them
            // small probabilities: a few hundredths for a clearly mellow or beautiful track,
            // under 0.01 for most. 0.2 would never write one.
            mood: FieldSettings {
                source: "musicnn-msd".into(),
                min_confidence: 0.02,
                tag: String::new(),
                policy: Policy::Fill,
            },
            bpm: descriptors(0.0),
            key: descriptors(0.0),
            replaygain: descriptors(0.0),
        }
    }
}

/// One field's rules.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSettings {
    /// genre: the model whose top class is written; mood: the model whose mood tags are; bpm,
    /// key and replaygain: "descriptors" (the descriptor plugins' stored values).
    pub source: String,
    /// Below this the field is not written: the top class's probability (genre), each mood
    /// tag's (mood), the tempo's confidence (bpm), the key's strength (key).
    pub min_confidence: f64,
    /// The tag's name; empty: the format's standard one. A custom name is a TXXX frame in
    /// ID3v2, a field in Vorbis comments, a `----:com.apple.iTunes:` atom in MP4.
    pub tag: String,
    pub policy: Policy,
}

/// What happens to a value already in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Overwrite it.
    Replace,
    /// Keep it and add timbre's values that are not there yet (genre, mood); for the
    /// single-valued fields this is `fill`.
    Append,
    /// Write only where the file has none.
    Fill,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Field {
    Genre,
    Mood,
    Bpm,
    Key,
    Replaygain,
}

impl Field {
    pub const ALL: [Field; 5] = [Field::Genre, Field::Mood, Field::Bpm, Field::Key, Field::Replaygain];

    pub fn name(self) -> &'static str {
        match self {
            Field::Genre => "genre",
            Field::Mood => "mood",
            Field::Bpm => "bpm",
            Field::Key => "key",
            Field::Replaygain => "replaygain",
        }
    }
}

/// The mood tags among musicnn-msd's labels (its others are genres, eras and instruments).
pub const MOOD_LABELS: &[&str] =
    &["chill", "Mellow", "happy", "sad", "beautiful", "party", "sexy", "catchy", "easy listening"];

impl TaggingSettings {
    fn field(&self, field: Field) -> &FieldSettings {
        match field {
            Field::Genre => &self.genre,
            Field::Mood => &self.mood,
            Field::Bpm => &self.bpm,
            Field::Key => &self.key,
            Field::Replaygain => &self.replaygain,
        }
    }

    /// Errors as (key, value, reason), for the configuration's error.
    pub fn validate(&self) -> Result<(), (String, String, String)> {
        for field in Field::ALL {
            let f = self.field(field);
            let key = |k: &str| format!("tagging.{}.{k}", field.name());
            if f.min_confidence.is_nan() || !(0.0..=1.0).contains(&f.min_confidence) {
                return Err((key("min_confidence"), f.min_confidence.to_string(), "must be in [0, 1]".into()));
            }
            if f.source.trim().is_empty() {
                return Err((key("source"), String::new(), "must name a model, or descriptors".into()));
            }
            if matches!(field, Field::Bpm | Field::Key | Field::Replaygain) && f.source != "descriptors" {
                return Err((key("source"), f.source.clone(), "only \"descriptors\" gives this field".into()));
            }
            if field == Field::Replaygain && !f.tag.is_empty() {
                return Err((key("tag"), f.tag.clone(), "ReplayGain has standard names only".into()));
            }
            if f.tag.contains(['=', '\0', '~']) || f.tag.chars().any(|c| c.is_control()) {
                return Err((key("tag"), f.tag.clone(), "not a usable tag name".into()));
            }
        }
        Ok(())
    }
}

/// One tag of a field: ReplayGain is four.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    Genre,
    Mood,
    Bpm,
    Key,
    TrackGain,
    TrackPeak,
    AlbumGain,
    AlbumPeak,
}

impl Item {
    fn of(field: Field) -> &'static [Item] {
        match field {
            Field::Genre => &[Item::Genre],
            Field::Mood => &[Item::Mood],
            Field::Bpm => &[Item::Bpm],
            Field::Key => &[Item::Key],
            Field::Replaygain => &[Item::TrackGain, Item::TrackPeak, Item::AlbumGain, Item::AlbumPeak],
        }
    }

    fn replaygain_name(self) -> Option<&'static str> {
        Some(match self {
            Item::TrackGain => "REPLAYGAIN_TRACK_GAIN",
            Item::TrackPeak => "REPLAYGAIN_TRACK_PEAK",
            Item::AlbumGain => "REPLAYGAIN_ALBUM_GAIN",
            Item::AlbumPeak => "REPLAYGAIN_ALBUM_PEAK",
            _ => return None,
        })
    }

    /// Where this tag goes in `family`; `custom` is the configured name, if any.
    fn slot(self, family: Family, custom: &str) -> Slot {
        if let Some(name) = self.replaygain_name() {
            return match family {
                Family::Id3v2 => Slot::Id3User(name.into()),
                Family::Vorbis => Slot::Vorbis(name.into()),
                // Lower case, as iTunes-era taggers (foobar2000, Picard) write them.
                Family::Mp4 => Slot::Mp4Freeform(name.to_ascii_lowercase()),
            };
        }
        if !custom.is_empty() {
            return match family {
                Family::Id3v2 => Slot::Id3User(custom.into()),
                Family::Vorbis => Slot::Vorbis(custom.into()),
                Family::Mp4 => Slot::Mp4Freeform(custom.into()),
            };
        }
        let (id3, vorbis, mp4) = match self {
            Item::Genre => ("TCON", "GENRE", Slot::Mp4Atom("\u{a9}gen".into())),
            Item::Mood => ("TMOO", "MOOD", Slot::Mp4Freeform("MOOD".into())),
            Item::Bpm => ("TBPM", "BPM", Slot::Mp4Atom("tmpo".into())),
            _ => ("TKEY", "INITIALKEY", Slot::Mp4Freeform("initialkey".into())),
        };
        match family {
            Family::Id3v2 => Slot::Id3Text(id3.into()),
            Family::Vorbis => Slot::Vorbis(vorbis.into()),
            Family::Mp4 => mp4,
        }
    }

    /// timbre's values for this tag from the stored analysis; `None`: nothing confident
    /// enough (or nothing stored), so the tag is left alone.
    fn values(self, track: &TrackRecord, rules: &FieldSettings) -> Option<Vec<String>> {
        let summary = track.summary();
        let confident = |confidence: Option<f64>| confidence.unwrap_or(0.0) >= rules.min_confidence;
        let prediction = || track.predictions.iter().find(|p| p.version.model == rules.source);
        let value = match self {
            Item::Genre => {
                let p = prediction()?;
                let (label, _) = p
                    .labels
                    .iter()
                    .zip(&p.probabilities)
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .filter(|(_, probability)| f64::from(**probability) >= rules.min_confidence)?;
                return Some(vec![label.clone()]);
            }
            Item::Mood => {
                let p = prediction()?;
                let mut moods: Vec<(&String, f32)> = p
                    .labels
                    .iter()
                    .zip(p.probabilities.iter().copied())
                    .filter(|(label, probability)| {
                        MOOD_LABELS.contains(&label.as_str()) && f64::from(*probability) >= rules.min_confidence
                    })
                    .collect();
                moods.sort_by(|a, b| b.1.total_cmp(&a.1));
                return (!moods.is_empty()).then(|| moods.into_iter().map(|(label, _)| label.clone()).collect());
            }
            Item::Bpm => {
                summary.bpm.filter(|_| confident(summary.bpm_confidence)).map(|bpm| format!("{}", bpm.round()))
            }
            Item::Key => summary.key.as_deref().filter(|_| confident(summary.key_strength)).and_then(initial_key),
            Item::TrackGain => summary.replaygain_track_gain_db.map(|db| format!("{db:.2} dB")),
            Item::TrackPeak => summary.replaygain_track_peak.map(|peak| format!("{peak:.6}")),
            Item::AlbumGain => track.album_gain_db.map(|db| format!("{db:.2} dB")),
            Item::AlbumPeak => track.album_gain_db.and(track.album_peak).map(|peak| format!("{peak:.6}")),
        };
        value.filter(|v| !v.is_empty() && v != "NaN" && !v.contains("inf")).map(|v| vec![v])
    }
}

/// "A minor" → "Am", "C# major" → "C#": the ID3 TKEY notation players and DJ software read.
fn initial_key(name: &str) -> Option<String> {
    let (tonic, mode) = name.split_once(' ')?;
    match mode {
        "minor" => Some(format!("{tonic}m")),
        "major" => Some(tonic.to_string()),
        _ => None,
    }
}

/// One tag's change, as printed, recorded and undone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagChange {
    pub field: Field,
    /// As players show it ("TCON", "REPLAYGAIN_TRACK_GAIN", "©gen").
    pub tag: String,
    pub slot: Slot,
    /// Empty: the tag was absent.
    pub old: Vec<String>,
    /// Empty: the tag is removed.
    pub new: Vec<String>,
}

/// What tagging a file did, or would do.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub path: String,
    pub changes: Vec<TagChange>,
    /// The file was rewritten (false for a dry run, or when nothing changes).
    pub written: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TagError {
    #[error("{}: not in the library; let the daemon analyse it first (`timbre scan {}`)", path.display(), path.display())]
    NotInLibrary { path: PathBuf },
    #[error("{}: not analysed ({state}); nothing to write yet", path.display())]
    NotAnalysed { path: PathBuf, state: String },
    #[error("{}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
    #[error(transparent)]
    Write(#[from] write::WriteError),
    #[error("{}: {source}", path.display())]
    Store { path: PathBuf, source: StoreError },
    #[error(transparent)]
    Library(#[from] StoreError),
}

/// Tags files from the library's stored analysis.
pub struct Tagger {
    settings: TaggingSettings,
    fields: Vec<Field>,
}

impl Tagger {
    /// `fields` overrides `tagging.fields` when not empty.
    pub fn new(settings: TaggingSettings, fields: &[Field]) -> Self {
        let fields = if fields.is_empty() { settings.fields.clone() } else { fields.to_vec() };
        Tagger { settings, fields }
    }

    /// What writing `track`'s tags would change in its file.
    pub fn plan(&self, track: &TrackRecord) -> Result<Vec<TagChange>, TagError> {
        let path = Path::new(&track.path);
        let file = TagFile::read(path).map_err(|reason| TagError::File { path: path.into(), reason })?;
        let mut changes = Vec::new();
        for field in Field::ALL.into_iter().filter(|f| self.fields.contains(f)) {
            let rules = self.settings.field(field);
            for item in Item::of(field) {
                let Some(ours) = item.values(track, rules) else { continue };
                let slot = item.slot(file.family(), &rules.tag);
                let old = file.get(&slot);
                let multi = matches!(item, Item::Genre | Item::Mood);
                let new = match rules.policy {
                    Policy::Replace => ours,
                    Policy::Fill => {
                        if old.is_empty() {
                            ours
                        } else {
                            continue;
                        }
                    }
                    Policy::Append if !multi => {
                        if old.is_empty() {
                            ours
                        } else {
                            continue;
                        }
                    }
                    Policy::Append => {
                        let mut all = old.clone();
                        for value in ours {
                            if !all.iter().any(|v| v.eq_ignore_ascii_case(&value)) {
                                all.push(value);
                            }
                        }
                        all
                    }
                };
                if new != old {
                    changes.push(TagChange { field, tag: slot.display(), slot, old, new });
                }
            }
        }
        Ok(changes)
    }

    /// Write `track`'s tags (or only plan them, for a dry run) and record the write.
    pub fn tag(&self, store: &Store, track: &TrackRecord, dry_run: bool) -> Result<FileReport, TagError> {
        self.tag_with_hook(store, track, dry_run, &|_, _, _| Ok(()))
    }

    /// [`Tagger::tag`] with a hook into the rewrite (tests).
    pub fn tag_with_hook(
        &self,
        store: &Store,
        track: &TrackRecord,
        dry_run: bool,
        hook: write::Hook<'_>,
    ) -> Result<FileReport, TagError> {
        if track.state != TrackState::Analysed {
            let state = match track.state {
                TrackState::Failed => format!("its analysis failed: {}", track.error),
                _ => "waiting for analysis".to_string(),
            };
            return Err(TagError::NotAnalysed { path: track.path.clone().into(), state });
        }
        let changes = self.plan(track)?;
        let mut report = FileReport { path: track.path.clone(), changes, written: false };
        if dry_run || report.changes.is_empty() {
            return Ok(report);
        }
        apply(store, track, &report.changes, hook)?;
        let fields = serde_json::to_string(&report.changes).expect("changes serialise");
        store
            .record_tag_write(track.id, &track.path, &fields)
            .map_err(|source| TagError::Store { path: track.path.clone().into(), source })?;
        report.written = true;
        Ok(report)
    }
}

/// Rewrite `track`'s file with `changes` applied, check that the copy reads back as
/// intended with every picture kept, and store the file's new size, mtime and tags.
fn apply(store: &Store, track: &TrackRecord, changes: &[TagChange], hook: write::Hook<'_>) -> Result<(), TagError> {
    let path = Path::new(&track.path);
    let pictures = TagFile::read(path).map(|f| f.picture_count()).unwrap_or(0);
    let edit = |copy: &Path| {
        let mut file = TagFile::read(copy)?;
        for change in changes {
            file.set(&change.slot, &change.new);
        }
        let mut out = std::fs::File::options().read(true).write(true).open(copy).map_err(|e| e.to_string())?;
        file.save_to(&mut out)
    };
    let check = |copy: &Path| {
        let file = TagFile::read(copy).map_err(|e| format!("the rewritten copy: {e}"))?;
        for change in changes {
            let found = file.get(&change.slot);
            if found != change.new {
                return Err(format!("{} reads back as {found:?}, not {:?}", change.tag, change.new));
            }
        }
        if file.picture_count() != pictures {
            return Err(format!("the copy has {} pictures, the original {pictures}", file.picture_count()));
        }
        Ok(())
    };
    let hash = write::rewrite(path, edit, check, hook)?;
    // The library learns the new stat and tags now; the daemon's watcher, if one runs,
    // sees the same audio digest and only refreshes them again.
    let stat = std::fs::metadata(path).map(|m| FileStat::of(&m));
    if let Ok(stat) = stat {
        store
            .refresh_file(track.id, stat, &hash, &crate::library::tags::read(path))
            .map_err(|source| TagError::Store { path: path.into(), source })?;
    }
    Ok(())
}

/// Put back what the latest write into `track`'s file replaced. Returns what it changed,
/// or `None` when no write of timbre's stands.
pub fn undo(store: &Store, track: &TrackRecord, dry_run: bool) -> Result<Option<FileReport>, TagError> {
    let path = Path::new(&track.path);
    let store_error = |source| TagError::Store { path: path.into(), source };
    let Some(write) = store.latest_tag_write(track.id).map_err(store_error)? else { return Ok(None) };
    let written: Vec<TagChange> = serde_json::from_str(&write.fields)
        .map_err(|e| TagError::File { path: path.into(), reason: format!("its recorded write is unreadable: {e}") })?;
    let file = TagFile::read(path).map_err(|reason| TagError::File { path: path.into(), reason })?;
    // From what the file holds now back to what it held before the write.
    let changes: Vec<TagChange> = written
        .into_iter()
        .map(|c| TagChange { old: file.get(&c.slot), new: c.old, ..c })
        .filter(|c| c.old != c.new)
        .collect();
    let mut report = FileReport { path: track.path.clone(), changes, written: false };
    if dry_run {
        return Ok(Some(report));
    }
    if !report.changes.is_empty() {
        apply(store, track, &report.changes, &|_, _, _| Ok(()))?;
        report.written = true;
    }
    store.mark_tag_write_undone(write.id).map_err(store_error)?;
    Ok(Some(report))
}

#[cfg(test)]
mod tests {
    use lofty::ogg::OggPictureStorage as _;

    use super::*;
    use crate::library::store::{ModelVersion, StoredPrediction, Tags};
    use crate::pipeline::descriptors::DescriptorResult;

    const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/sample.flac");

    /// A library holding one analysed FLAC whose file has GENRE=Rock and a picture.
    fn library(dir: &Path) -> (Store, TrackRecord) {
        use lofty::file::AudioFile as _;
        let path = dir.join("song.flac");
        std::fs::copy(SAMPLE, &path).expect("copy");
        let mut file = lofty::flac::FlacFile::read_from(
            &mut std::fs::File::open(&path).expect("open"),
            lofty::config::ParseOptions::new(),
        )
        .expect("parse");
        let mut comments = lofty::ogg::tag::VorbisComments::default();
        comments.push("GENRE".into(), "Rock".into());
        comments.push("TITLE".into(), "Kept".into());
        file.set_vorbis_comments(comments);
        // A 1x1 PNG: lofty reads its size for the FLAC picture block.
        let png = "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8ffff3f0005fe02fea7d6a4b00000000049454e44ae426082";
        let png: Vec<u8> =
            (0..png.len()).step_by(2).map(|i| u8::from_str_radix(&png[i..i + 2], 16).expect("hex")).collect();
        let picture = lofty::picture::Picture::unchecked(png)
            .pic_type(lofty::picture::PictureType::CoverFront)
            .mime_type(lofty::picture::MimeType::Png)
            .build();
        file.insert_picture(picture, None).expect("picture");
        let mut out = std::fs::File::options().read(true).write(true).open(&path).expect("open rw");
        file.save_to(&mut out, lofty::config::WriteOptions::default()).expect("save");

        let store = Store::open(&dir.join("library.sqlite3")).expect("open");
        let stat = FileStat::of(&std::fs::metadata(&path).expect("stat"));
        let hash = crate::library::audio_hash::audio_hash(&path).expect("hash");
        let id = store.insert(path.to_str().expect("UTF-8"), stat, &hash, &Tags::default()).expect("insert");
        let version = |model: &str| ModelVersion {
            model: model.into(),
            model_version: "1".into(),
            feature_version: "mel".into(),
        };
        let prediction = |model: &str, labels: &[&str], probabilities: Vec<f32>| StoredPrediction {
            version: version(model),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            probabilities,
            embedding: vec![1.0],
            segments: 1,
            analysed_at_ms: 0,
        };
        let predictions = [
            prediction("genre", &["jazz", "metal"], vec![0.8, 0.2]),
            prediction("musicnn-msd", &["rock", "chill", "sad", "happy"], vec![0.9, 0.4, 0.3, 0.01]),
        ];
        store.save_analysis(id, 3.0, &predictions).expect("save");
        let values = [
            ("bpm", 121.6),
            ("bpm_confidence", 0.9),
            ("key_tonic", 9.0),
            ("key_mode", 1.0),
            ("key_strength", 0.7),
            ("replaygain_track_gain_db", -6.523),
            ("replaygain_track_peak", 0.9885471),
        ];
        let descriptors = DescriptorResult {
            plugin: "descriptors".into(),
            version: "1".into(),
            values: values.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
            state: Vec::new(),
            error: None,
        };
        store.save_descriptors(id, &[descriptors]).expect("save");
        let track = store.track(id).expect("read").expect("present");
        (store, track)
    }

    fn comments(path: &str) -> lofty::ogg::tag::VorbisComments {
        use lofty::file::AudioFile as _;
        let file = lofty::flac::FlacFile::read_from(
            &mut std::fs::File::open(path).expect("open"),
            lofty::config::ParseOptions::new(),
        )
        .expect("parse");
        file.vorbis_comments().cloned().unwrap_or_default()
    }

    fn all(tags: &lofty::ogg::tag::VorbisComments, key: &str) -> Vec<String> {
        tags.get_all(key).map(String::from).collect()
    }

    #[test]
    fn tags_are_written_by_policy_recorded_and_undone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, track) = library(dir.path());
        let original = std::fs::read(&track.path).expect("read");
        let mut settings = TaggingSettings::default();
        settings.mood.min_confidence = 0.25;
        let tagger = Tagger::new(settings.clone(), &[]);

        let dry = tagger.tag(&store, &track, true).expect("dry run");
        assert!(!dry.written && !dry.changes.is_empty());
        assert!(dry.changes.iter().all(|c| c.field != Field::Genre), "fill keeps the file's genre");
        assert_eq!(std::fs::read(&track.path).expect("read"), original, "a dry run changes nothing");

        let report = tagger.tag(&store, &track, false).expect("write");
        assert!(report.written);
        let tags = comments(&track.path);
        assert_eq!(all(&tags, "GENRE"), ["Rock"]);
        assert_eq!(all(&tags, "MOOD"), ["chill", "sad"], "above the threshold, most probable first");
        assert_eq!(all(&tags, "BPM"), ["122"]);
        assert_eq!(all(&tags, "INITIALKEY"), ["Am"]);
        assert_eq!(all(&tags, "REPLAYGAIN_TRACK_GAIN"), ["-6.52 dB"]);
        assert_eq!(all(&tags, "REPLAYGAIN_TRACK_PEAK"), ["0.988547"]);
        assert_eq!(all(&tags, "TITLE"), ["Kept"]);
        assert_eq!(tags.pictures().len() + picture_blocks(&track.path), 1, "the picture is kept");

        let appended = TaggingSettings {
            genre: FieldSettings { policy: Policy::Append, ..settings.genre.clone() },
            ..settings.clone()
        };
        let track = store.track(track.id).expect("read").expect("present");
        Tagger::new(appended, &[Field::Genre]).tag(&store, &track, false).expect("append");
        assert_eq!(all(&comments(&track.path), "GENRE"), ["Rock", "jazz"]);

        let undone = undo(&store, &track, false).expect("undo").expect("a write to undo");
        assert!(undone.written);
        assert_eq!(all(&comments(&track.path), "GENRE"), ["Rock"], "the latest write undone first");
        undo(&store, &track, false).expect("undo").expect("a second write to undo");
        let tags = comments(&track.path);
        assert_eq!((all(&tags, "GENRE"), all(&tags, "BPM"), all(&tags, "MOOD")), (vec!["Rock".into()], vec![], vec![]));
        assert_eq!(all(&tags, "TITLE"), ["Kept"]);
        assert!(undo(&store, &track, false).expect("undo").is_none(), "nothing left to undo");
        let stored = store.track(track.id).expect("read").expect("present");
        assert_eq!(stored.content_hash, track.content_hash, "the audio never changed");
        assert_eq!(stored.stat, FileStat::of(&std::fs::metadata(&track.path).expect("stat")), "the library follows");
    }

    /// FLAC pictures live in their own blocks, which lofty keeps on the file, not the tag.
    fn picture_blocks(path: &str) -> usize {
        use lofty::file::AudioFile as _;
        let file = lofty::flac::FlacFile::read_from(
            &mut std::fs::File::open(path).expect("open"),
            lofty::config::ParseOptions::new(),
        )
        .expect("parse");
        file.pictures().len()
    }

    /// A failed rewrite records nothing: an undo must not "restore" values never written.
    #[test]
    fn a_failed_write_names_the_file_and_records_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, track) = library(dir.path());
        let original = std::fs::read(&track.path).expect("read");
        let full = |_: write::Stage, _: &Path, _: &Path| Err(std::io::Error::from_raw_os_error(28));
        let error = Tagger::new(TaggingSettings::default(), &[])
            .tag_with_hook(&store, &track, false, &full)
            .expect_err("disk full")
            .to_string();
        assert!(error.contains("song.flac"), "{error}");
        assert_eq!(std::fs::read(&track.path).expect("read"), original);
        assert!(store.latest_tag_write(track.id).expect("read").is_none());
    }

    #[test]
    fn keys_are_written_as_players_read_them() {
        assert_eq!(initial_key("A minor").as_deref(), Some("Am"));
        assert_eq!(initial_key("C# major").as_deref(), Some("C#"));
        assert_eq!(initial_key("nonsense"), None);
    }
}
