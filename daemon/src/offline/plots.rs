//! Pictures of offline results: a confusion matrix as PNG (or SVG), with what was drawn kept
//! beside the numbers, so a picture can be checked against the data that drew it.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::metrics::Confusion;

/// A picture written, and the text of each cell as drawn (row = true label).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plot {
    pub file: PathBuf,
    pub width: u32,
    pub height: u32,
    pub cells: Vec<Vec<String>>,
}

pub fn confusion(title: &str, confusion: &Confusion, path: &Path) -> Result<Plot, timbre_plots::PlotError> {
    let picture = timbre_plots::confusion::Confusion { title, labels: &confusion.labels, counts: &confusion.matrix };
    let drawn = timbre_plots::confusion::draw(&picture, path)?;
    Ok(Plot { file: path.to_path_buf(), width: drawn.width, height: drawn.height, cells: drawn.cells })
}

/// A PNG's width and height, from its header; `None` when it is not a PNG.
pub fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let ihdr = bytes.strip_prefix(b"\x89PNG\r\n\x1a\n")?;
    if ihdr.get(4..8)? != b"IHDR" {
        return None;
    }
    let word = |at: usize| ihdr.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    Some((word(8)?, word(12)?))
}
