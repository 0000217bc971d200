use std::path::Path;

use crate::confusion::{self, Confusion};
use crate::map::{self, Map, MapPoint};
use crate::project::pca_2d;
use crate::{Format, PlotError};

fn labels(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// The contents of every `<text>` element.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            t.split_once('>').and_then(|(_, rest)| rest.split_once("</text>")).map(|(body, _)| body.trim().to_string())
        })
        .collect()
}

fn png_pixel(path: &Path, x: u32, y: u32) -> [u8; 3] {
    let image = image::open(path).unwrap().to_rgb8();
    image.get_pixel(x, y).0
}

#[test]
fn a_confusion_png_has_its_size_and_every_count_in_its_cell() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cnn.png");
    let names = labels(&["blues", "classical", "a label far too long to fit"]);
    let counts = vec![vec![7, 1, 0], vec![0, 13, 0], vec![2, 2, 1]];
    let drawn =
        confusion::draw(&Confusion { title: "cnn: test split", labels: &names, counts: &counts }, &path).unwrap();
    let image = image::open(&path).unwrap();
    assert_eq!((image.width(), image.height()), (drawn.width, drawn.height));
    let expected: Vec<Vec<String>> = counts.iter().map(|r| r.iter().map(|c| c.to_string()).collect()).collect();
    assert_eq!(drawn.cells, expected);
    for i in 0..3 {
        assert_eq!(drawn.cells[i][i], counts[i][i].to_string(), "the diagonal as drawn");
    }
    // Shading follows the row's share: classical's diagonal (13/13) is darker than an empty
    // cell of the same row. Sample a corner of each cell, away from the digits.
    let layout_probe = |row: u32, col: u32| {
        let (w, h) = (drawn.width, drawn.height);
        // The matrix sits 90 px from the right and 50 px from the bottom, cells of 54 px.
        let left = w - 90 - 3 * 54;
        let top = h - 50 - 3 * 54;
        png_pixel(&path, left + col * 54 + 4, top + row * 54 + 4)
    };
    let full = layout_probe(1, 1);
    let empty = layout_probe(1, 0);
    assert!(
        full.iter().map(|&c| c as u32).sum::<u32>() < empty.iter().map(|&c| c as u32).sum::<u32>(),
        "{full:?} vs {empty:?}"
    );
}

#[test]
fn a_confusion_svg_names_every_label_and_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.svg");
    let names = labels(&["jazz", "metal"]);
    let counts = vec![vec![41, 3], vec![5, 37]];
    let drawn = confusion::draw(&Confusion { title: "head", labels: &names, counts: &counts }, &path).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains(&format!("width=\"{}\"", drawn.width)), "{}", &svg[..100]);
    let texts = svg_texts(&svg);
    for needle in ["jazz", "metal", "41", "37", "3", "5", "predicted"] {
        assert!(texts.iter().any(|t| t == needle), "the SVG lacks the text {needle}: {texts:?}");
    }
}

#[test]
fn bad_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let names = labels(&["a", "b"]);
    let square = vec![vec![1, 0], vec![0, 1]];
    let err = confusion::draw(&Confusion { title: "t", labels: &names, counts: &square }, &dir.path().join("x.jpg"));
    assert!(matches!(err, Err(PlotError::Format(_))), "{err:?}");
    let ragged = vec![vec![1, 0], vec![0]];
    let err = confusion::draw(&Confusion { title: "t", labels: &names, counts: &ragged }, &dir.path().join("x.png"));
    assert!(matches!(err, Err(PlotError::Empty(_))), "{err:?}");
    let nan = [MapPoint { x: f32::NAN, y: 0.0, label: "a" }];
    assert!(map::draw(&Map { title: "t", points: &nan }, &dir.path().join("m.png")).is_err());
    assert_eq!(Format::from_path(Path::new("a/B.SVG")).unwrap(), Format::Svg);
}

#[test]
fn a_map_colours_the_largest_labels_and_counts_every_point() {
    let dir = tempfile::tempdir().unwrap();
    let mut points = Vec::new();
    let names: Vec<String> = (0..25).map(|i| format!("label{i:02}")).collect();
    for (i, name) in names.iter().enumerate() {
        for j in 0..(30 - i) {
            points.push(MapPoint { x: i as f32 + j as f32 * 0.01, y: (i % 5) as f32, label: name });
        }
    }
    points.push(MapPoint { x: 0.0, y: 0.0, label: "" });
    for file in ["map.png", "map.svg"] {
        let drawn = map::draw(&Map { title: "cnn space", points: &points }, &dir.path().join(file)).unwrap();
        assert_eq!(drawn.legend.iter().map(|l| l.2).sum::<usize>(), points.len());
        assert_eq!(drawn.legend[0].0, "label00", "the largest first");
        assert_eq!(drawn.legend.len(), map::MAX_COLOURS + 2, "20 colours, then other and unlabelled");
        assert_eq!(drawn.legend[map::MAX_COLOURS].2, (20..25).map(|i| 30 - i).sum::<usize>());
    }
    let image = image::open(dir.path().join("map.png")).unwrap();
    assert_eq!((image.width(), image.height()), (1100, 800));
    let svg = std::fs::read_to_string(dir.path().join("map.svg")).unwrap();
    let texts = svg_texts(&svg);
    assert!(texts.iter().any(|t| t == "label00 (30)") && texts.iter().any(|t| t == "(no label) (1)"), "{texts:?}");
}

#[test]
fn two_components_recover_the_spread_of_the_data() {
    // Points along a line in 6-D plus a smaller spread along another direction: the first
    // component orders them along the line, the second along the other direction.
    let rows: Vec<Vec<f32>> = (0..50)
        .map(|i| {
            let t = i as f32 - 25.0;
            let s = if i % 2 == 0 { 1.0 } else { -1.0 };
            vec![t, t, 0.0, 0.0, s, 3.0]
        })
        .collect();
    let xy = pca_2d(&rows);
    assert!(xy.windows(2).all(|w| w[1][0] > w[0][0]), "first component is the line");
    let scale = (2.0f32).sqrt();
    assert!((xy[49][0] - xy[0][0] - 49.0 * scale).abs() < 1e-2, "distances kept along it: {:?} {:?}", xy[0], xy[49]);
    assert!(xy.iter().enumerate().all(|(i, p)| (p[1].abs() - 1.0).abs() < 0.1 && (p[1] > 0.0) == (i % 2 == 0)));
    assert_eq!(pca_2d(&rows), xy, "deterministic");
}
