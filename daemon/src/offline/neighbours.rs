//! `timbred eval-neighbours`: how good the embeddings are for recommendation (report 003's
//! evaluation). Every labelled file is analysed and indexed in the embedded vector index;
//! then, for each track and each embedding space, the share of its 5 and 10 nearest
//! neighbours (the track itself left out) that carry its genre label.

use std::collections::BTreeMap;

use serde::Serialize;

use super::eval::{labelled_predictions, EvalError, EvalRequest};
use crate::index::{EmbeddedConfig, EmbeddedIndex, Filter, IndexError, IndexPoint, Query, SpaceVector, VectorIndex};
use crate::models::ModelCatalog;
use crate::pipeline::TrackPrediction;
use crate::plugin_host::PluginRegistry;

#[derive(Debug, Clone, Serialize)]
pub struct NeighboursReport {
    pub tracks: usize,
    /// Expected agreement of a random neighbour: Σ_g (n_g / N)·((n_g − 1) / (N − 1)).
    pub chance: f64,
    pub spaces: Vec<SpaceReport>,
    pub failed: Vec<(std::path::PathBuf, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SpaceReport {
    pub space: String,
    pub dimension: usize,
    /// Mean share of the 5 nearest neighbours with the track's genre.
    pub top5: f64,
    pub top10: f64,
    /// The same, per genre.
    pub per_genre: BTreeMap<String, (f64, f64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum NeighboursError {
    #[error(transparent)]
    Eval(#[from] EvalError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

pub fn run(
    registry: &PluginRegistry,
    catalog: &ModelCatalog,
    request: &EvalRequest,
    progress: impl FnMut(usize, usize) + Send,
) -> Result<NeighboursReport, NeighboursError> {
    let (results, failed) = labelled_predictions(registry, catalog, request, progress)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    // Heads give labels, not an embedding.
    let spaces: Vec<String> = catalog.feature_models().map(|m| m.spec.name().to_string()).collect();
    let report = runtime.block_on(evaluate(&results, &spaces))?;
    Ok(NeighboursReport { failed, ..report })
}

async fn evaluate(
    results: &[(String, Vec<TrackPrediction>)],
    spaces: &[String],
) -> Result<NeighboursReport, IndexError> {
    // Never flushed, so nothing is written at this path.
    let unused = std::env::temp_dir().join(format!("timbre-eval-neighbours-{}.timbre-ix", std::process::id()));
    let index = EmbeddedIndex::open(&unused, EmbeddedConfig { exact_limit: 0, ..Default::default() })?;
    let points = results
        .iter()
        .enumerate()
        .map(|(id, (_, predictions))| IndexPoint {
            track_id: id as i64,
            path: String::new(),
            // No tag: the label is what is measured, so nothing may filter on it.
            genre: String::new(),
            artist: String::new(),
            album: String::new(),
            duration_s: 0.0,
            vectors: predictions
                .iter()
                .filter(|p| !p.embedding.is_empty())
                .map(|p| SpaceVector { space: p.model.clone(), vector: p.embedding.clone(), label: String::new() })
                .collect(),
            bpm: None,
            key: None,
        })
        .collect();
    index.upsert(points).await?;

    let n = results.len();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (label, _) in results {
        *counts.entry(label).or_default() += 1;
    }
    let chance = if n > 1 {
        counts.values().map(|&c| (c as f64 / n as f64) * ((c as f64 - 1.0) / (n as f64 - 1.0))).sum()
    } else {
        0.0
    };

    let mut reports = Vec::new();
    for space in spaces {
        let mut per_genre: BTreeMap<String, (f64, f64, usize)> = BTreeMap::new();
        let mut dimension = 0;
        for (id, (label, predictions)) in results.iter().enumerate() {
            let Some(prediction) = predictions.iter().find(|p| &p.model == space) else { continue };
            dimension = prediction.embedding.len();
            let query = Query {
                space: space.clone(),
                positive: vec![prediction.embedding.clone()],
                limit: 10,
                filter: Filter { exclude_tracks: vec![id as i64], ..Default::default() },
                ..Default::default()
            };
            let hits = index.query(query).await?;
            let same = |k: usize| {
                let top = &hits[..k.min(hits.len())];
                top.iter().filter(|h| results[h.track_id as usize].0 == *label).count() as f64 / k as f64
            };
            let entry = per_genre.entry(label.clone()).or_default();
            entry.0 += same(5);
            entry.1 += same(10);
            entry.2 += 1;
        }
        let tracks: usize = per_genre.values().map(|e| e.2).sum();
        let total =
            |pick: fn(&(f64, f64, usize)) -> f64| per_genre.values().map(pick).sum::<f64>() / tracks.max(1) as f64;
        reports.push(SpaceReport {
            space: space.clone(),
            dimension,
            top5: total(|e| e.0),
            top10: total(|e| e.1),
            per_genre: per_genre.iter().map(|(g, e)| (g.clone(), (e.0 / e.2 as f64, e.1 / e.2 as f64))).collect(),
        });
    }
    Ok(NeighboursReport { tracks: n, chance, spaces: reports, failed: Vec::new() })
}
