//! A confusion matrix as a picture: rows are the true labels, columns the predicted ones, each
//! cell its count, shaded by its share of the row (so a small class reads as well as a large
//! one), with the row's recall at its end.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::font::FAMILY;
use crate::{render, Painting, PlotError};

#[derive(Debug, Clone, PartialEq)]
pub struct Confusion<'a> {
    pub title: &'a str,
    pub labels: &'a [String],
    /// `counts[true][predicted]`.
    pub counts: &'a [Vec<usize>],
}

/// What was drawn: the image size and the text written in each cell, row by row.
#[derive(Debug, Clone, PartialEq)]
pub struct Drawn {
    pub width: u32,
    pub height: u32,
    pub cells: Vec<Vec<String>>,
}

const CELL: u32 = 54;
const FONT: u32 = 14;
/// Labels longer than this are shortened with an ellipsis, so the picture keeps its shape.
const MAX_LABEL_CHARS: usize = 16;

/// Draws `matrix` to `path` (`.png` or `.svg`).
pub fn draw(matrix: &Confusion<'_>, path: &Path) -> Result<Drawn, PlotError> {
    let n = matrix.labels.len();
    if n == 0 {
        return Err(PlotError::Empty(format!("{}: no labels", matrix.title)));
    }
    if matrix.counts.len() != n || matrix.counts.iter().any(|row| row.len() != n) {
        return Err(PlotError::Empty(format!("{}: the counts are not {n} × {n}", matrix.title)));
    }
    render(path, &Picture { matrix, layout: Layout::new(matrix.labels) })
}

struct Layout {
    left: u32,
    top: u32,
    n: u32,
}

impl Layout {
    fn new(labels: &[String]) -> Layout {
        let longest = labels.iter().map(|l| short(l).chars().count()).max().unwrap_or(1) as u32;
        // About 0.6 em per character of DejaVu Sans.
        Layout { left: 40 + longest * FONT * 6 / 10, top: 70 + longest * FONT * 6 / 10, n: labels.len() as u32 }
    }

    fn size(&self) -> (u32, u32) {
        (self.left + self.n * CELL + 90, self.top + self.n * CELL + 50)
    }

    fn cell(&self, row: usize, col: usize) -> (i32, i32) {
        ((self.left + col as u32 * CELL) as i32, (self.top + row as u32 * CELL) as i32)
    }
}

struct Picture<'a> {
    matrix: &'a Confusion<'a>,
    layout: Layout,
}

impl Painting for Picture<'_> {
    type Drawn = Drawn;

    fn size(&self) -> (u32, u32) {
        self.layout.size()
    }

    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, plotters::coord::Shift>) -> Result<Drawn, String> {
        let (m, l) = (self.matrix, &self.layout);
        let fail = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(fail)?;
        let text = |size: u32| TextStyle::from((FAMILY, size).into_font()).color(&BLACK);
        let centred = |size: u32| text(size).pos(Pos::new(HPos::Center, VPos::Center));
        root.draw(&Text::new(m.title.to_string(), (10, 10), text(FONT + 4).pos(Pos::new(HPos::Left, VPos::Top))))
            .map_err(fail)?;

        let mut cells = Vec::with_capacity(m.labels.len());
        for (row, counts) in m.counts.iter().enumerate() {
            let total: usize = counts.iter().sum();
            let mut written = Vec::with_capacity(counts.len());
            for (col, &count) in counts.iter().enumerate() {
                let share = if total == 0 { 0.0 } else { count as f64 / total as f64 };
                let (x, y) = l.cell(row, col);
                let colour = shade(share);
                root.draw(&Rectangle::new([(x, y), (x + CELL as i32, y + CELL as i32)], colour.filled()))
                    .map_err(fail)?;
                root.draw(&Rectangle::new([(x, y), (x + CELL as i32, y + CELL as i32)], RGBColor(200, 200, 200)))
                    .map_err(fail)?;
                let label = count.to_string();
                let ink = if share > 0.5 { WHITE } else { BLACK };
                let centre = (x + CELL as i32 / 2, y + CELL as i32 / 2);
                root.draw(&Text::new(label.clone(), centre, centred(FONT).color(&ink))).map_err(fail)?;
                written.push(label);
            }
            // The row's recall, after the last column.
            let (x, y) = l.cell(row, counts.len());
            let recall = if total == 0 {
                "–".to_string()
            } else {
                format!("{:.0} %", 100.0 * counts[row] as f64 / total as f64)
            };
            root.draw(&Text::new(
                recall,
                (x + 8, y + CELL as i32 / 2),
                text(FONT - 2).pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(fail)?;
            // Row label, right-aligned against the matrix.
            root.draw(&Text::new(
                short(&m.labels[row]),
                (l.left as i32 - 8, y + CELL as i32 / 2),
                text(FONT).pos(Pos::new(HPos::Right, VPos::Center)),
            ))
            .map_err(fail)?;
            cells.push(written);
        }
        for (col, label) in m.labels.iter().enumerate() {
            // Column labels written upwards, so long names do not collide.
            let (x, _) = l.cell(0, col);
            let style = text(FONT).transform(FontTransform::Rotate270).pos(Pos::new(HPos::Left, VPos::Center));
            root.draw(&Text::new(short(label), (x + CELL as i32 / 2, l.top as i32 - 8), style)).map_err(fail)?;
        }
        let (_, bottom) = l.cell(m.labels.len(), 0);
        let middle = (l.left + l.n * CELL / 2) as i32;
        root.draw(&Text::new("predicted".to_string(), (middle, bottom + 24), centred(FONT))).map_err(fail)?;
        root.draw(&Text::new("true ↓".to_string(), (10, l.top as i32 - 16), text(FONT - 2))).map_err(fail)?;
        let (width, height) = l.size();
        Ok(Drawn { width, height, cells })
    }
}

/// White for 0, a deep blue for 1.
fn shade(share: f64) -> RGBColor {
    let mix =
        |from: u8, to: u8| (f64::from(from) + (f64::from(to) - f64::from(from)) * share.clamp(0.0, 1.0)).round() as u8;
    RGBColor(mix(247, 8), mix(251, 48), mix(255, 107))
}

fn short(label: &str) -> String {
    if label.chars().count() <= MAX_LABEL_CHARS {
        label.to_string()
    } else {
        let mut s: String = label.chars().take(MAX_LABEL_CHARS - 1).collect();
        s.push('…');
        s
    }
}
