//! Recommendation: "more like these" and playlists, over one model's embedding space.
//!
//! Examples are library tracks (their stored embeddings) or audio analysed on the fly and not
//! stored. Queries go to the vector index ([`crate::index`]), which [`keeper`] keeps in line
//! with the library. Variety is traded for similarity by maximal marginal relevance.

use std::path::PathBuf;

use crate::engine::{Engine, EngineError};
use crate::index::{dot, normalised, Filter, Hit, Query, Strategy};
use crate::library::TrackRecord;
use crate::pipeline::AudioInput;

/// One example of a request.
#[derive(Debug, Clone)]
pub enum Example {
    Track(i64),
    Path(PathBuf),
    /// Analysed on the fly, not stored.
    Audio(AudioInput),
}

/// Which tracks may come back: the index's filter, plus the seed's artist and album.
#[derive(Debug, Clone, Default)]
pub struct RecommendFilter {
    pub filter: Filter,
    pub exclude_seed_artist: bool,
    pub exclude_seed_album: bool,
}

#[derive(Debug, Clone, Default)]
pub struct RecommendRequest {
    pub positive: Vec<Example>,
    pub negative: Vec<Example>,
    /// The embedding space (a model name); `None`: the configured default.
    pub model: Option<String>,
    /// 0: the configured default.
    pub limit: usize,
    pub filter: RecommendFilter,
    /// In [0, 1]: 0 is similarity alone.
    pub diversity: f32,
    pub strategy: Strategy,
}

#[derive(Debug, Clone, Default)]
pub struct PlaylistRequest {
    pub seed: Option<Example>,
    pub length: usize,
    pub model: Option<String>,
    pub no_repeat_artist: bool,
    pub filter: RecommendFilter,
}

/// A track and how well it matches.
#[derive(Debug, Clone)]
pub struct Recommendation {
    pub track: TrackRecord,
    pub score: f32,
}

/// An example resolved: its embedding in the space, and the library track when it is one.
struct Resolved {
    vector: Vec<f32>,
    track: Option<TrackRecord>,
}

/// Candidates fetched per wanted result when re-ranking for diversity.
const DIVERSITY_POOL: usize = 4;

impl Engine {
    /// The space searched when a request names none.
    pub fn default_space(&self) -> Result<String, EngineError> {
        let configured = &self.settings().recommend.model;
        let models = self.model_names();
        if !configured.is_empty() {
            return match models.contains(configured) {
                true => Ok(configured.clone()),
                false => Err(EngineError::NotFound(format!(
                    "recommend.model = '{configured}' is not a loaded model (loaded: {})",
                    models.join(", ")
                ))),
            };
        }
        // The best shipped model (docs/EVALUATION.md), else the first one loaded.
        let best = models.iter().find(|m| *m == "cnn").or(models.first());
        best.cloned().ok_or_else(|| EngineError::NotFound("no models are loaded".into()))
    }

    fn space(&self, model: Option<&str>) -> Result<String, EngineError> {
        match model {
            Some(model) => Ok(self.check_models(&[model.to_string()])?.expect("one model")[0].clone()),
            None => self.default_space(),
        }
    }

    async fn resolve(&self, example: &Example, space: &str) -> Result<Resolved, EngineError> {
        let track = match example {
            Example::Track(id) => self.track(Some(*id), None).await?,
            Example::Path(path) => {
                let path = self.library_path(path)?;
                self.track(None, Some(&path)).await?
            }
            Example::Audio(input) => {
                let analysis = self.classify(input.clone(), &[space.to_string()]).await?;
                let prediction = analysis.predictions.into_iter().find(|p| p.model == space);
                let vector = prediction.map(|p| p.embedding).unwrap_or_default();
                return Ok(Resolved { vector, track: None });
            }
        };
        let vector = track.predictions.iter().find(|p| p.version.model == space).map(|p| p.embedding.clone());
        match vector {
            Some(vector) if !vector.is_empty() => Ok(Resolved { vector, track: Some(track) }),
            _ => Err(EngineError::FailedPrecondition(format!(
                "track {} ({}) has no '{space}' embedding yet (state: {:?}{})",
                track.id,
                track.path,
                track.state,
                if track.error.is_empty() { String::new() } else { format!(": {}", track.error) }
            ))),
        }
    }

    async fn resolve_all(&self, examples: &[Example], space: &str) -> Result<Vec<Resolved>, EngineError> {
        let mut resolved = Vec::with_capacity(examples.len());
        for example in examples {
            resolved.push(self.resolve(example, space).await?);
        }
        Ok(resolved)
    }

    /// Library tracks like the positive examples and unlike the negative ones.
    pub async fn recommend(&self, request: RecommendRequest) -> Result<Vec<Recommendation>, EngineError> {
        if request.positive.is_empty() {
            return Err(EngineError::InvalidArgument("positive: at least one example is required".into()));
        }
        if !(0.0..=1.0).contains(&request.diversity) {
            return Err(EngineError::InvalidArgument(format!("diversity: {} is not in [0, 1]", request.diversity)));
        }
        let settings = &self.settings().recommend;
        let limit = if request.limit == 0 { settings.default_limit } else { request.limit.min(settings.max_limit) };
        let space = self.space(request.model.as_deref())?;
        let positive = self.resolve_all(&request.positive, &space).await?;
        let negative = self.resolve_all(&request.negative, &space).await?;
        let seeds: Vec<&TrackRecord> = positive.iter().filter_map(|r| r.track.as_ref()).collect();
        let mut filter = index_filter(&request.filter, &seeds)?;
        // Library examples are never recommended back.
        filter.exclude_tracks.extend(positive.iter().chain(&negative).filter_map(|r| r.track.as_ref().map(|t| t.id)));

        let diverse = request.diversity > 0.0;
        let query = Query {
            space,
            positive: positive.into_iter().map(|r| r.vector).collect(),
            negative: negative.into_iter().map(|r| r.vector).collect(),
            strategy: request.strategy,
            limit: if diverse { limit * DIVERSITY_POOL } else { limit },
            filter,
            with_vectors: diverse,
        };
        let mut hits = self.query_index(query).await?;
        if diverse {
            hits = maximal_marginal_relevance(hits, limit, request.diversity);
        }
        self.with_tracks(hits).await
    }

    /// A chain of tracks from a seed: each next one close to the one before it and to the seed.
    pub async fn playlist(&self, request: PlaylistRequest) -> Result<Vec<Recommendation>, EngineError> {
        let seed = request.seed.ok_or_else(|| EngineError::InvalidArgument("seed: required".into()))?;
        let settings = &self.settings().recommend;
        let length =
            if request.length == 0 { settings.default_length } else { request.length.min(settings.max_length) };
        let space = self.space(request.model.as_deref())?;
        let seed = self.resolve(&seed, &space).await?;
        let seeds: Vec<&TrackRecord> = seed.track.iter().collect();
        let base_filter = index_filter(&request.filter, &seeds)?;
        let mut chosen: Vec<i64> = seed.track.iter().map(|t| t.id).collect();
        let mut previous = normalised(&seed.vector);
        let mut previous_artist = seed.track.as_ref().map(|t| t.tags.artist.clone()).unwrap_or_default();
        let mut playlist = Vec::with_capacity(length);
        while playlist.len() < length {
            let mut filter = base_filter.clone();
            filter.exclude_tracks.extend(&chosen);
            if request.no_repeat_artist && !previous_artist.trim().is_empty() {
                filter.exclude_artists.push(previous_artist.clone());
            }
            // Near the previous track and the seed alike: the walk cannot drift away.
            let query = Query {
                space: space.clone(),
                positive: vec![previous.clone(), seed.vector.clone()],
                negative: Vec::new(),
                strategy: Strategy::AverageVector,
                limit: 1,
                filter,
                with_vectors: true,
            };
            let Some(hit) = self.query_index(query).await?.into_iter().next() else { break };
            let vector = normalised(hit.vector.as_deref().unwrap_or_default());
            let score = dot(&previous, &vector);
            chosen.push(hit.track_id);
            // Gone from the library since the index answered: skip it (it stays excluded).
            let Some(track) = self.stored_tracks(vec![hit.track_id]).await?.pop().flatten() else { continue };
            previous = vector;
            previous_artist = track.tags.artist.clone();
            playlist.push(Recommendation { track, score });
        }
        Ok(playlist)
    }

    async fn query_index(&self, query: Query) -> Result<Vec<Hit>, EngineError> {
        let index = self.index().ok_or_else(|| {
            EngineError::Unavailable(
                "the vector index is not available yet (starting, or its server is unreachable; see the daemon log)"
                    .into(),
            )
        })?;
        Ok(index.query(query).await?)
    }

    /// Hits with their library tracks, in order; a track removed meanwhile is left out.
    async fn with_tracks(&self, hits: Vec<Hit>) -> Result<Vec<Recommendation>, EngineError> {
        let tracks = self.stored_tracks(hits.iter().map(|h| h.track_id).collect()).await?;
        let found = hits.into_iter().zip(tracks);
        Ok(found.filter_map(|(hit, track)| Some(Recommendation { track: track?, score: hit.score })).collect())
    }
}

fn index_filter(filter: &RecommendFilter, seeds: &[&TrackRecord]) -> Result<Filter, EngineError> {
    let durations =
        [("min_duration_s", filter.filter.min_duration_s), ("max_duration_s", filter.filter.max_duration_s)];
    for (name, value) in durations {
        if value.is_some_and(|v| v.is_nan() || v < 0.0) {
            return Err(EngineError::InvalidArgument(format!("filter.{name}: must be a non-negative number")));
        }
    }
    let mut index_filter = filter.filter.clone();
    for seed in seeds {
        if filter.exclude_seed_artist && !seed.tags.artist.trim().is_empty() {
            index_filter.exclude_artists.push(seed.tags.artist.clone());
        }
        if filter.exclude_seed_album && !seed.tags.album.trim().is_empty() {
            index_filter.exclude_albums.push(seed.tags.album.clone());
        }
    }
    Ok(index_filter)
}

/// Greedy maximal marginal relevance: each next pick maximises
/// `(1 − λ)·score − λ·(highest cosine to a track already picked)`. Scores stay the index's.
fn maximal_marginal_relevance(candidates: Vec<Hit>, limit: usize, lambda: f32) -> Vec<Hit> {
    let vectors: Vec<Vec<f32>> =
        candidates.iter().map(|h| normalised(h.vector.as_deref().unwrap_or_default())).collect();
    let mut left: Vec<usize> = (0..candidates.len()).collect();
    let mut picked: Vec<usize> = Vec::with_capacity(limit);
    while picked.len() < limit && !left.is_empty() {
        let value = |i: usize| {
            let redundancy = picked.iter().map(|&j| dot(&vectors[i], &vectors[j])).fold(f32::NEG_INFINITY, f32::max);
            let redundancy = if picked.is_empty() { 0.0 } else { redundancy };
            (1.0 - lambda) * candidates[i].score - lambda * redundancy
        };
        let (position, _) = left
            .iter()
            .enumerate()
            .map(|(position, &i)| (position, value(i)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .expect("left is not empty");
        picked.push(left.remove(position));
    }
    let mut candidates: Vec<Option<Hit>> = candidates.into_iter().map(Some).collect();
    picked.into_iter().filter_map(|i| candidates[i].take()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(id: i64, score: f32, vector: [f32; 2]) -> Hit {
        Hit { track_id: id, score, vector: Some(vector.to_vec()) }
    }

    #[test]
    fn diversity_zero_keeps_the_ranking_and_diversity_one_spreads_out() {
        // Two near-duplicates on top, a different track a little lower.
        let candidates = vec![hit(1, 0.99, [1.0, 0.0]), hit(2, 0.98, [0.999, 0.04]), hit(3, 0.90, [0.6, 0.8])];
        let ids = |hits: Vec<Hit>| hits.into_iter().map(|h| h.track_id).collect::<Vec<_>>();
        assert_eq!(ids(maximal_marginal_relevance(candidates.clone(), 2, 0.0)), [1, 2]);
        assert_eq!(ids(maximal_marginal_relevance(candidates.clone(), 2, 0.5)), [1, 3]);
        assert_eq!(ids(maximal_marginal_relevance(candidates, 5, 0.5)).len(), 3, "never more than the candidates");
    }
}
