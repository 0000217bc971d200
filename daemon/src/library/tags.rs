//! Tags read from audio files (lofty). A file without tags, or with tags lofty cannot
//! parse, simply has empty tags: tags never stop a track from being analysed.

use std::path::Path;

use lofty::config::ParseOptions;
use lofty::file::TaggedFileExt;
use lofty::probe::Probe;
use lofty::tag::Accessor;

use super::store::Tags;

pub fn read(path: &Path) -> Tags {
    match try_read(path) {
        Ok(tags) => tags,
        Err(error) => {
            tracing::debug!(path = %path.display(), "no tags read: {error}");
            Tags::default()
        }
    }
}

fn try_read(path: &Path) -> Result<Tags, lofty::error::FileParseError> {
    // Properties (duration, bit rate) come from the decoder; only the tags are wanted here.
    let file = Probe::open(path)?.options(ParseOptions::new().read_properties(false)).read()?;
    let Some(tag) = file.primary_tag().or_else(|| file.first_tag()) else {
        return Ok(Tags::default());
    };
    let text = |value: Option<std::borrow::Cow<'_, str>>| value.map(|v| v.trim().to_string()).unwrap_or_default();
    Ok(Tags {
        title: text(tag.title()),
        artist: text(tag.artist()),
        album: text(tag.album()),
        genre: text(tag.genre()),
    })
}
