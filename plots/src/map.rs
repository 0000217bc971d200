//! A library as a map: one point per track at its 2-D position in an embedding space (see
//! [`crate::project`]), coloured by a label (genre, or any tag), with a legend.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::font::FAMILY;
use crate::{render, Painting, PlotError};

#[derive(Debug, Clone, PartialEq)]
pub struct MapPoint<'a> {
    pub x: f32,
    pub y: f32,
    /// Empty: unlabelled, drawn grey.
    pub label: &'a str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Map<'a> {
    pub title: &'a str,
    pub points: &'a [MapPoint<'a>],
}

/// What was drawn: the size and, in legend order, each label's colour and number of points.
#[derive(Debug, Clone, PartialEq)]
pub struct Drawn {
    pub width: u32,
    pub height: u32,
    pub legend: Vec<(String, RGBColor, usize)>,
}

const WIDTH: u32 = 1100;
const HEIGHT: u32 = 800;
const LEGEND: u32 = 240;
/// Labels with their own colour; the rest share "other" (a map of 200 colours says nothing).
pub const MAX_COLOURS: usize = 20;
const UNLABELLED: &str = "(no label)";
const OTHER: &str = "(other labels)";

/// 20 colours that stay apart from each other (Tableau 20).
const PALETTE: [(u8, u8, u8); MAX_COLOURS] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
    (174, 199, 232),
    (255, 187, 120),
    (152, 223, 138),
    (255, 152, 150),
    (197, 176, 213),
    (196, 156, 148),
    (247, 182, 210),
    (199, 199, 199),
    (219, 219, 141),
    (158, 218, 229),
];
const GREY: RGBColor = RGBColor(190, 190, 190);

pub fn draw(map: &Map<'_>, path: &Path) -> Result<Drawn, PlotError> {
    if map.points.is_empty() {
        return Err(PlotError::Empty(format!("{}: no points", map.title)));
    }
    if map.points.iter().any(|p| !p.x.is_finite() || !p.y.is_finite()) {
        return Err(PlotError::Empty(format!("{}: a point is not finite", map.title)));
    }
    render(path, &Picture { map, legend: legend(map.points) })
}

/// The most common labels get colours, in order of size; then "other" and "no label", grey.
fn legend(points: &[MapPoint<'_>]) -> Vec<(String, RGBColor, usize)> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for p in points {
        *counts.entry(p.label).or_default() += 1;
    }
    let unlabelled = counts.remove("").unwrap_or(0);
    let mut labels: Vec<(&str, usize)> = counts.into_iter().collect();
    labels.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut out: Vec<(String, RGBColor, usize)> = labels
        .iter()
        .take(MAX_COLOURS)
        .enumerate()
        .map(|(i, &(label, n))| {
            let (r, g, b) = PALETTE[i];
            (label.to_string(), RGBColor(r, g, b), n)
        })
        .collect();
    let other: usize = labels.iter().skip(MAX_COLOURS).map(|l| l.1).sum();
    if other > 0 {
        out.push((OTHER.to_string(), GREY, other));
    }
    if unlabelled > 0 {
        out.push((UNLABELLED.to_string(), GREY, unlabelled));
    }
    out
}

struct Picture<'a> {
    map: &'a Map<'a>,
    legend: Vec<(String, RGBColor, usize)>,
}

impl Picture<'_> {
    fn colour(&self, label: &str) -> RGBColor {
        let key = if label.is_empty() { UNLABELLED } else { label };
        self.legend.iter().find(|(l, ..)| l == key).map_or(GREY, |(_, c, _)| *c)
    }
}

impl Painting for Picture<'_> {
    type Drawn = Drawn;

    fn size(&self) -> (u32, u32) {
        (WIDTH, HEIGHT)
    }

    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, plotters::coord::Shift>) -> Result<Drawn, String> {
        let fail = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(fail)?;
        let (plot, side) = root.split_horizontally(WIDTH - LEGEND);
        let (min_x, max_x) = bounds(self.map.points.iter().map(|p| p.x));
        let (min_y, max_y) = bounds(self.map.points.iter().map(|p| p.y));
        let mut chart = ChartBuilder::on(&plot)
            .caption(self.map.title, (FAMILY, 20))
            .margin(16)
            .x_label_area_size(30)
            .y_label_area_size(40)
            .build_cartesian_2d(min_x..max_x, min_y..max_y)
            .map_err(fail)?;
        chart
            .configure_mesh()
            .light_line_style(RGBColor(235, 235, 235))
            .label_style((FAMILY, 12))
            .x_desc("first component")
            .y_desc("second component")
            .draw()
            .map_err(fail)?;
        // Grey first, so coloured points are on top.
        let mut order: Vec<&MapPoint<'_>> = self.map.points.iter().collect();
        order.sort_by_key(|p| self.colour(p.label) != GREY);
        chart
            .draw_series(order.iter().map(|p| Circle::new((p.x, p.y), 3, self.colour(p.label).mix(0.85).filled())))
            .map_err(fail)?;

        let style = TextStyle::from((FAMILY, 13).into_font()).color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center));
        for (i, (label, colour, n)) in self.legend.iter().enumerate() {
            let y = 60 + 24 * i as i32;
            side.draw(&Circle::new((16, y), 6, colour.filled())).map_err(fail)?;
            let shown: String = label.chars().take(22).collect();
            side.draw(&Text::new(format!("{shown} ({n})"), (30, y), style.clone())).map_err(fail)?;
        }
        Ok(Drawn { width: WIDTH, height: HEIGHT, legend: self.legend.clone() })
    }
}

/// The range of `values` with a 5 % margin (and some width when they are all equal).
fn bounds(values: impl Iterator<Item = f32>) -> (f32, f32) {
    let (lo, hi) = values.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let pad = ((hi - lo) * 0.05).max(1e-3);
    (lo - pad, hi + pad)
}
