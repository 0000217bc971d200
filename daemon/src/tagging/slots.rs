//! Where each tag lives in each format, and reading and writing it with lofty's concrete tag
//! types (not its generic `Tag`, which drops what it cannot map): ID3v2 frames in MP3,
//! Vorbis comments in FLAC and Ogg, `ilst` atoms in MP4. Everything else in the file (other
//! frames, pictures, ID3v1 and APE tags, FLAC blocks) is read and written back as it was.

use std::borrow::Cow;
use std::fs::File;
use std::path::Path;

use lofty::config::{ParseOptions, WriteOptions};
use lofty::file::{AudioFile, FileType};
use lofty::flac::FlacFile;
use lofty::id3::v2::{Frame, FrameId, Id3v2Tag, Id3v2Version, TextInformationFrame};
use lofty::mp4::{Atom, AtomData, AtomIdent, DataType, Ilst, Mp4File};
use lofty::mpeg::MpegFile;
use lofty::ogg::tag::VorbisComments;
use lofty::ogg::{OggPictureStorage as _, OpusFile, VorbisFile};
use lofty::TextEncoding;
use serde::{Deserialize, Serialize};

/// The tag families timbre writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Id3v2,
    Vorbis,
    Mp4,
}

/// One tag's place in a file. Stored with each write, so an undo puts values back where
/// they were written whatever the configuration says by then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Slot {
    /// A text frame: TCON, TBPM, TKEY, TMOO.
    Id3Text(String),
    /// A TXXX frame, by description.
    Id3User(String),
    /// A Vorbis comment field (names are case-insensitive).
    Vorbis(String),
    /// An `ilst` atom by four-character code, `©` as itself: "©gen", "tmpo".
    Mp4Atom(String),
    /// A `----:com.apple.iTunes:<name>` freeform atom (names matched case-insensitively).
    Mp4Freeform(String),
}

impl Slot {
    /// As players and tag editors show it: "TCON", "TXXX:REPLAYGAIN_TRACK_GAIN", "GENRE",
    /// "©gen", "----:com.apple.iTunes:replaygain_track_gain".
    pub fn display(&self) -> String {
        match self {
            Slot::Id3Text(id) | Slot::Vorbis(id) | Slot::Mp4Atom(id) => id.clone(),
            Slot::Id3User(name) => format!("TXXX:{name}"),
            Slot::Mp4Freeform(name) => format!("----:{ITUNES}:{name}"),
        }
    }
}

const ITUNES: &str = "com.apple.iTunes";

/// The tag family lofty finds in `path` (by content, the extension only a hint), if timbre
/// writes that format.
pub fn family_of(path: &Path) -> Result<(FileType, Family), String> {
    let probe = lofty::probe::Probe::open(path).and_then(|p| p.guess_file_type().map_err(Into::into));
    let file_type = probe.map_err(|e| e.to_string())?.file_type();
    match file_type {
        Some(t @ FileType::Mpeg) => Ok((t, Family::Id3v2)),
        Some(t @ (FileType::Flac | FileType::Vorbis | FileType::Opus)) => Ok((t, Family::Vorbis)),
        Some(t @ FileType::Mp4) => Ok((t, Family::Mp4)),
        Some(other) => Err(format!("timbre does not write tags into {other:?} files (MP3, FLAC, Ogg and M4A only)")),
        None => Err("not a recognised audio format".into()),
    }
}

/// A file's tags, read once, edited in memory, written once.
pub enum TagFile {
    Mpeg(MpegFile),
    Flac(FlacFile),
    Vorbis(VorbisFile),
    Opus(OpusFile),
    Mp4(Mp4File),
}

impl TagFile {
    pub fn read(path: &Path) -> Result<TagFile, String> {
        let (file_type, _) = family_of(path)?;
        let mut file = File::open(path).map_err(|e| e.to_string())?;
        // Properties are not needed, and a quirk in them must not stop a tag write.
        let options = ParseOptions::new().read_properties(false);
        let parsed = match file_type {
            FileType::Mpeg => MpegFile::read_from(&mut file, options).map(TagFile::Mpeg),
            FileType::Flac => FlacFile::read_from(&mut file, options).map(TagFile::Flac),
            FileType::Vorbis => VorbisFile::read_from(&mut file, options).map(TagFile::Vorbis),
            FileType::Opus => OpusFile::read_from(&mut file, options).map(TagFile::Opus),
            _ => Mp4File::read_from(&mut file, options).map(TagFile::Mp4),
        };
        parsed.map_err(|e| format!("cannot read its tags: {e}"))
    }

    pub fn family(&self) -> Family {
        match self {
            TagFile::Mpeg(_) => Family::Id3v2,
            TagFile::Flac(_) | TagFile::Vorbis(_) | TagFile::Opus(_) => Family::Vorbis,
            TagFile::Mp4(_) => Family::Mp4,
        }
    }

    /// The values in `slot`; empty when it is absent.
    pub fn get(&self, slot: &Slot) -> Vec<String> {
        match self {
            TagFile::Mpeg(f) => f.id3v2().map(|t| id3_get(t, slot)).unwrap_or_default(),
            TagFile::Flac(f) => f.vorbis_comments().map(|t| vorbis_get(t, slot)).unwrap_or_default(),
            TagFile::Vorbis(f) => vorbis_get(f.vorbis_comments(), slot),
            TagFile::Opus(f) => vorbis_get(f.vorbis_comments(), slot),
            TagFile::Mp4(f) => f.ilst().map(|t| mp4_get(t, slot)).unwrap_or_default(),
        }
    }

    /// Set `slot` to `values`; no values removes it.
    pub fn set(&mut self, slot: &Slot, values: &[String]) {
        match self {
            TagFile::Mpeg(f) => {
                if f.id3v2().is_none() {
                    f.set_id3v2(Id3v2Tag::new());
                }
                id3_set(f.id3v2_mut().expect("set above"), slot, values);
            }
            TagFile::Flac(f) => {
                if f.vorbis_comments().is_none() {
                    f.set_vorbis_comments(VorbisComments::new());
                }
                vorbis_set(f.vorbis_comments_mut().expect("set above"), slot, values);
            }
            TagFile::Vorbis(f) => vorbis_set(f.vorbis_comments_mut(), slot, values),
            TagFile::Opus(f) => vorbis_set(f.vorbis_comments_mut(), slot, values),
            TagFile::Mp4(f) => {
                if f.ilst().is_none() {
                    f.set_ilst(Ilst::new());
                }
                mp4_set(f.ilst_mut().expect("set above"), slot, values);
            }
        }
    }

    /// Write every tag back into `file` (the temporary copy).
    pub fn save_to(&self, file: &mut File) -> Result<(), String> {
        let mut options = WriteOptions::default();
        let saved = match self {
            TagFile::Mpeg(f) => {
                // A v2.3 tag stays v2.3: it is there for players that read nothing newer.
                // New tags are v2.4, lofty's default and the current version.
                if f.id3v2().is_some_and(|t| t.original_version() == Id3v2Version::V3) {
                    options = options.use_id3v23(true);
                }
                f.save_to(file, options)
            }
            TagFile::Flac(f) => f.save_to(file, options),
            TagFile::Vorbis(f) => f.save_to(file, options),
            TagFile::Opus(f) => f.save_to(file, options),
            TagFile::Mp4(f) => f.save_to(file, options),
        };
        saved.map_err(|e| format!("cannot write its tags: {e}"))
    }

    /// Embedded pictures, counted, for the check that a write kept them all.
    pub fn picture_count(&self) -> usize {
        match self {
            TagFile::Mpeg(f) => {
                f.id3v2().map_or(0, |t| t.into_iter().filter(|frame| frame.id().as_str() == "APIC").count())
            }
            TagFile::Flac(f) => f.pictures().len() + f.vorbis_comments().map_or(0, |t| t.pictures().len()),
            TagFile::Vorbis(f) => f.vorbis_comments().pictures().len(),
            TagFile::Opus(f) => f.vorbis_comments().pictures().len(),
            TagFile::Mp4(f) => f.ilst().and_then(|t| t.pictures().map(Iterator::count)).unwrap_or(0),
        }
    }
}

fn split_nul(value: &str) -> impl Iterator<Item = String> + '_ {
    value.split('\0').map(str::trim).filter(|v| !v.is_empty()).map(String::from)
}

fn id3_get(tag: &Id3v2Tag, slot: &Slot) -> Vec<String> {
    match slot {
        Slot::Id3Text(id) => match FrameId::new(id.as_str()) {
            Ok(id) => tag.get_texts(&id).map(|v| v.flat_map(split_nul).collect()).unwrap_or_default(),
            Err(_) => Vec::new(),
        },
        Slot::Id3User(name) => user_text(tag, name).map(|v| split_nul(v).collect()).unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// A TXXX frame's text, its description matched without regard to case (taggers disagree on
/// REPLAYGAIN_TRACK_GAIN vs replaygain_track_gain).
fn user_text<'a>(tag: &'a Id3v2Tag, name: &str) -> Option<&'a str> {
    tag.into_iter().find_map(|frame| match frame {
        Frame::UserText(f) if f.description.eq_ignore_ascii_case(name) => Some(&*f.content),
        _ => None,
    })
}

fn id3_set(tag: &mut Id3v2Tag, slot: &Slot, values: &[String]) {
    match slot {
        Slot::Id3Text(id) => {
            let Ok(id) = FrameId::new(id.clone()) else { return };
            let _ = tag.remove(&id).count();
            if !values.is_empty() {
                // NUL-separated is ID3v2.4's multi-value; lofty rewrites it for a v2.3 tag.
                let frame = TextInformationFrame::new(id, TextEncoding::UTF8, values.join("\0"));
                tag.insert(Frame::Text(frame));
            }
        }
        Slot::Id3User(name) => {
            let existing: Vec<String> = (&*tag)
                .into_iter()
                .filter_map(|frame| match frame {
                    Frame::UserText(f) if f.description.eq_ignore_ascii_case(name) => Some(f.description.to_string()),
                    _ => None,
                })
                .collect();
            for description in existing {
                tag.remove_user_text(&description);
            }
            if !values.is_empty() {
                tag.insert_user_text(name.clone(), values.join("\0"));
            }
        }
        _ => {}
    }
}

fn vorbis_get(tag: &VorbisComments, slot: &Slot) -> Vec<String> {
    match slot {
        Slot::Vorbis(key) => tag.get_all(key).map(str::trim).filter(|v| !v.is_empty()).map(String::from).collect(),
        _ => Vec::new(),
    }
}

fn vorbis_set(tag: &mut VorbisComments, slot: &Slot, values: &[String]) {
    let Slot::Vorbis(key) = slot else { return };
    let _ = tag.remove(key).count();
    // One field per value: how Vorbis comments hold several.
    for value in values {
        tag.push(key.clone(), value.clone());
    }
}

fn fourcc(code: &str) -> Option<[u8; 4]> {
    // "©" is one byte (0xA9) in a FOURCC: the code is Latin-1.
    let bytes: Vec<u8> = code.chars().map(|c| u8::try_from(c as u32).ok()).collect::<Option<_>>()?;
    bytes.try_into().ok()
}

fn mp4_matches(atom: &Atom<'_>, slot: &Slot) -> bool {
    match (atom.ident(), slot) {
        (AtomIdent::Fourcc(code), Slot::Mp4Atom(want)) => fourcc(want).is_some_and(|want| *code == want),
        (AtomIdent::Freeform { mean, name }, Slot::Mp4Freeform(want)) => {
            mean == ITUNES && name.eq_ignore_ascii_case(want)
        }
        _ => false,
    }
}

fn mp4_get(tag: &Ilst, slot: &Slot) -> Vec<String> {
    let Some(atom) = tag.into_iter().find(|atom| mp4_matches(atom, slot)) else { return Vec::new() };
    atom.data()
        .filter_map(|data| match data {
            AtomData::UTF8(text) | AtomData::UTF16(text) => Some(text.trim().to_string()),
            AtomData::SignedInteger(n) => Some(n.to_string()),
            AtomData::UnsignedInteger(n) => Some(n.to_string()),
            // tmpo as iTunes writes it: a big-endian integer of one to four bytes.
            AtomData::Unknown { code: DataType::BeSignedInteger, data } if (1..=4).contains(&data.len()) => {
                Some(data.iter().fold(0i64, |n, b| (n << 8) | i64::from(*b)).to_string())
            }
            _ => None,
        })
        .filter(|v| !v.is_empty())
        .collect()
}

fn mp4_set(tag: &mut Ilst, slot: &Slot, values: &[String]) {
    tag.retain(|atom| !mp4_matches(atom, slot));
    let ident = match slot {
        Slot::Mp4Atom(code) => match fourcc(code) {
            Some(code) => AtomIdent::Fourcc(code),
            None => return,
        },
        Slot::Mp4Freeform(name) => AtomIdent::Freeform { mean: Cow::Borrowed(ITUNES), name: Cow::Owned(name.clone()) },
        _ => return,
    };
    let data: Vec<AtomData> = if matches!(slot, Slot::Mp4Atom(code) if code == "tmpo") {
        // tmpo is a 16-bit integer, never text.
        values
            .iter()
            .filter_map(|v| v.parse::<f64>().ok())
            .map(|bpm| AtomData::Unknown {
                code: DataType::BeSignedInteger,
                data: (bpm.round().clamp(0.0, f64::from(u16::MAX)) as u16).to_be_bytes().to_vec(),
            })
            .take(1)
            .collect()
    } else {
        values.iter().map(|v| AtomData::UTF8(v.clone())).collect()
    };
    if let Some(atom) = Atom::from_collection(ident, data) {
        tag.insert(atom);
    }
}
