//! Pictures of timbre's results, drawn in Rust (plotters), as PNG or SVG by the file's
//! extension: a model's confusion matrix ([`confusion`]) and a library as a 2-D map of one
//! embedding space, coloured by label ([`map`], projected by [`project`]).
//!
//! Text uses the embedded DejaVu Sans (`fonts/`, Bitstream Vera licence), so a PNG has its
//! labels on a machine without fonts. Every drawing returns what it drew (the numbers written
//! in the cells, the points per label), so tests check a picture against its data.

pub mod confusion;
mod font;
pub mod map;
pub mod project;

#[cfg(test)]
mod tests;

use std::path::Path;

/// What a file's extension asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Png,
    Svg,
}

impl Format {
    pub fn from_path(path: &Path) -> Result<Format, PlotError> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("png") => Ok(Format::Png),
            Some("svg") => Ok(Format::Svg),
            _ => Err(PlotError::Format(path.display().to_string())),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("{0}: a plot is written as .png or .svg")]
    Format(String),
    #[error("cannot draw {path}: {message}")]
    Draw { path: String, message: String },
    #[error("nothing to draw: {0}")]
    Empty(String),
}

impl PlotError {
    fn draw(path: &Path, error: impl std::fmt::Display) -> PlotError {
        PlotError::Draw { path: path.display().to_string(), message: error.to_string() }
    }
}

/// A picture that can be painted on any plotters backend.
trait Painting {
    /// What was drawn, for the caller and for tests.
    type Drawn;
    fn size(&self) -> (u32, u32);
    fn paint<DB: plotters::prelude::DrawingBackend>(
        &self,
        root: &plotters::prelude::DrawingArea<DB, plotters::coord::Shift>,
    ) -> Result<Self::Drawn, String>;
}

/// Paints `picture` in the format `path` asks for, and saves it.
fn render<P: Painting>(path: &Path, picture: &P) -> Result<P::Drawn, PlotError> {
    use plotters::prelude::*;
    font::register();
    fn finish<DB: DrawingBackend, P: Painting>(path: &Path, picture: &P, backend: DB) -> Result<P::Drawn, PlotError> {
        let root = backend.into_drawing_area();
        let drawn = picture.paint(&root).map_err(|e| PlotError::draw(path, e))?;
        root.present().map_err(|e| PlotError::draw(path, e))?;
        Ok(drawn)
    }
    match Format::from_path(path)? {
        Format::Png => finish(path, picture, BitMapBackend::new(path, picture.size())),
        Format::Svg => finish(path, picture, SVGBackend::new(path, picture.size())),
    }
}
