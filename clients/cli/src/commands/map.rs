//! `timbre map`: the library as a 2-D map of one embedding space. The tracks come page by
//! page with their embeddings (`ListTracksRequest.embedding_model`); the projection (PCA) and
//! the drawing are timbre-plots', here in the client.

use std::path::Path;

use timbre_plots::map::{self, Drawn, Map, MapPoint};
use timbre_proto::v1 as pb;

use super::Ctx;
use crate::client;
use crate::error::{Error, Outcome};
use crate::flags::{ColorBy, MapArgs};

pub async fn run(ctx: &mut Ctx<'_>, args: &MapArgs) -> Result<Outcome, Error> {
    let mut client = client::timbre(ctx.channel.clone());
    // Only the tracks the model analysed, each with its embedding.
    let mut request = pb::ListTracksRequest {
        page_size: args.page_size,
        model: args.model.clone(),
        embedding_model: args.model.clone(),
        ..Default::default()
    };
    let (mut rows, mut labels) = (Vec::new(), Vec::new());
    loop {
        let page = client.list_tracks(request.clone()).await?.into_inner();
        for track in page.tracks {
            if !track.embedding.is_empty() {
                labels.push(colour_of(&track, &args.color_by));
                rows.push(track.embedding);
            }
        }
        if page.next_page_token.is_empty() {
            break;
        }
        if page.next_page_token == request.page_token {
            return Err(Error::Incomplete(format!("the daemon sent page token {:?} twice", page.next_page_token)));
        }
        request.page_token = page.next_page_token;
    }
    if rows.is_empty() {
        return Err(Error::Local(format!(
            "no library track has a '{}' embedding (is that model loaded, and the library analysed?)",
            args.model
        )));
    }
    let by = match &args.color_by {
        ColorBy::Genre => "genre tag".to_string(),
        ColorBy::Artist => "artist".to_string(),
        ColorBy::Album => "album".to_string(),
        ColorBy::Label(model) => format!("{model}'s label"),
    };
    let title = format!("{} tracks in the {} space, by {by}", rows.len(), args.model);
    let drawn = draw(&rows, &labels, &title, &args.out)?;
    if ctx.json {
        let legend: Vec<serde_json::Value> =
            drawn.legend.iter().map(|(label, _, n)| serde_json::json!({ "label": label, "tracks": n })).collect();
        ctx.print_json(&serde_json::json!({
            "out": args.out.display().to_string(),
            "model": args.model,
            "tracks": rows.len(),
            "width": drawn.width,
            "height": drawn.height,
            "legend": legend,
        }))?;
    } else {
        let legend: Vec<String> = drawn.legend.iter().map(|(label, _, n)| format!("{label} {n}")).collect();
        writeln!(ctx.out, "wrote {} ({} × {}): {title}", args.out.display(), drawn.width, drawn.height)?;
        writeln!(ctx.out, "legend: {}", legend.join(", "))?;
    }
    Ok(Outcome::Success)
}

/// The label that colours `track`; empty (drawn grey) when it has none.
pub fn colour_of(track: &pb::Track, by: &ColorBy) -> String {
    let tags = track.tags.clone().unwrap_or_default();
    match by {
        ColorBy::Genre => tags.genre.trim().to_string(),
        ColorBy::Artist => tags.artist.trim().to_string(),
        ColorBy::Album => tags.album.trim().to_string(),
        // Labels come most probable first.
        ColorBy::Label(model) => track
            .predictions
            .iter()
            .find(|p| &p.model == model)
            .and_then(|p| p.labels.first())
            .map(|l| l.name.clone())
            .unwrap_or_default(),
    }
}

/// Each row projected to its first two principal components and drawn with its label.
pub fn draw(rows: &[Vec<f32>], labels: &[String], title: &str, out: &Path) -> Result<Drawn, Error> {
    // One model gives one length; anything else cannot share the projection.
    let dim = rows.first().map_or(0, Vec::len);
    let (rows, labels): (Vec<Vec<f32>>, Vec<&str>) =
        rows.iter().zip(labels).filter(|(r, _)| r.len() == dim).map(|(r, l)| (r.clone(), l.as_str())).unzip();
    let xy = timbre_plots::project::pca_2d(&rows);
    let points: Vec<MapPoint<'_>> = xy.iter().zip(&labels).map(|(&[x, y], &label)| MapPoint { x, y, label }).collect();
    map::draw(&Map { title, points: &points }, out).map_err(|e| Error::Local(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(genre: &str, model: &str, top: &str) -> pb::Track {
        pb::Track {
            tags: Some(pb::TrackTags { genre: genre.into(), artist: "A".into(), ..Default::default() }),
            predictions: vec![pb::ModelPrediction {
                model: model.into(),
                labels: vec![
                    pb::Label { name: top.into(), probability: 0.9 },
                    pb::Label { name: "x".into(), probability: 0.1 },
                ],
                segments: vec![],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_point_is_coloured_by_a_tag_or_a_models_top_label() {
        let t = track(" Rock ", "genre", "metal");
        assert_eq!(colour_of(&t, &ColorBy::Genre), "Rock");
        assert_eq!(colour_of(&t, &ColorBy::Artist), "A");
        assert_eq!(colour_of(&t, &ColorBy::Album), "");
        assert_eq!(colour_of(&t, &ColorBy::Label("genre".into())), "metal");
        assert_eq!(colour_of(&t, &ColorBy::Label("cnn".into())), "", "a model that did not label it: no label");
    }

    /// The map is a PNG (or SVG) of the size drawn, and its legend counts every track.
    #[test]
    fn the_map_is_a_picture_of_every_track_with_its_legend() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut rng = 1u64;
        let mut noise = || {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (rng >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let (mut rows, mut labels) = (Vec::new(), Vec::new());
        for (l, label) in ["jazz", "metal", ""].iter().enumerate() {
            for _ in 0..(10 + l) {
                rows.push((0..8).map(|d| if d == l { 3.0 } else { 0.0 } + noise()).collect::<Vec<f32>>());
                labels.push(label.to_string());
            }
        }
        let png = dir.path().join("map.png");
        let drawn = draw(&rows, &labels, "test", &png).expect("drawn");
        let bytes = std::fs::read(&png).expect("png");
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let size = (
            u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]),
            u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]),
        );
        assert_eq!(size, (drawn.width, drawn.height));
        let legend: Vec<(&str, usize)> = drawn.legend.iter().map(|(l, _, n)| (l.as_str(), *n)).collect();
        assert_eq!(legend, [("metal", 11), ("jazz", 10), ("(no label)", 12)]);
        let svg = dir.path().join("map.svg");
        draw(&rows, &labels, "test", &svg).expect("drawn");
        let text = std::fs::read_to_string(&svg).expect("svg");
        assert!(text.starts_with("<svg") && text.contains("metal") && text.contains("jazz"), "an SVG with its legend");
    }
}
