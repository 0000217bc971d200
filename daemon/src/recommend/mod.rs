//! Recommendation: "more like these" and playlists, over one model's embedding space.
//!
//! Examples are library tracks (their stored embeddings) or audio analysed on the fly and not
//! stored. Queries go to the vector index ([`crate::index`]), which the index keeper keeps in
//! line with the library. Variety is traded for similarity by maximal marginal relevance.
//!
//! A [`Recommender`] needs a library, an index and a worker pool (for audio examples), not
//! the engine: tests build one over an embedded index without any plugin.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::RecommendSettings;
use crate::engine::{find_track, library_path, stored_tracks, EngineError, TrackKey};
use crate::index::keeper::SharedIndex;
use crate::index::{dot, normalised, Filter, Hit, Query, Strategy};
use crate::library::{Store, TrackRecord};
use crate::pipeline::AudioInput;
use crate::workers::{Priority, WorkerPool};

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

/// Recommendation over one library and its index.
pub struct Recommender {
    store: Arc<Store>,
    index: SharedIndex,
    /// Analyses audio examples (never stored).
    pool: Arc<WorkerPool>,
    /// The loaded models: the embedding spaces there are.
    spaces: Vec<String>,
    /// Library roots (canonical): a path example must lie under one.
    roots: Vec<PathBuf>,
    settings: RecommendSettings,
    max_audio_seconds: f64,
}

impl Recommender {
    pub fn new(
        store: Arc<Store>,
        index: SharedIndex,
        pool: Arc<WorkerPool>,
        spaces: Vec<String>,
        roots: Vec<PathBuf>,
        settings: RecommendSettings,
        max_audio_seconds: f64,
    ) -> Self {
        Recommender { store, index, pool, spaces, roots, settings, max_audio_seconds }
    }

    /// The space searched when a request names none: `recommend.model`, else the first of
    /// `recommend.preferred` that is loaded, else the first model loaded.
    pub fn default_space(&self) -> Result<String, EngineError> {
        let configured = &self.settings.model;
        if !configured.is_empty() {
            return match self.spaces.contains(configured) {
                true => Ok(configured.clone()),
                false => Err(EngineError::DefaultModelNotLoaded {
                    configured: configured.clone(),
                    loaded: self.spaces.clone(),
                }),
            };
        }
        let preferred = self.settings.preferred.iter().find(|p| self.spaces.contains(p));
        preferred.or(self.spaces.first()).cloned().ok_or(EngineError::NoModels)
    }

    fn space(&self, model: Option<&str>) -> Result<String, EngineError> {
        match model {
            Some(model) if self.spaces.iter().any(|s| s == model) => Ok(model.to_string()),
            Some(model) => Err(EngineError::UnknownModel { name: model.to_string(), loaded: self.spaces.clone() }),
            None => self.default_space(),
        }
    }

    async fn resolve(&self, example: &Example, space: &str) -> Result<Resolved, EngineError> {
        let track = match example {
            Example::Track(id) => find_track(&self.store, TrackKey::Id(*id)).await?,
            Example::Path(path) => {
                let path = library_path(&self.roots, path)?;
                find_track(&self.store, TrackKey::Path(path)).await?
            }
            Example::Audio(input) => {
                let models = Some(vec![space.to_string()]);
                let max_seconds = Some(self.max_audio_seconds);
                let analysis = self.pool.analyze(input.clone(), models, Priority::Interactive, max_seconds).await?;
                let prediction = analysis.predictions.into_iter().find(|p| p.model == space);
                let vector = prediction.map(|p| p.embedding).unwrap_or_default();
                return Ok(Resolved { vector, track: None });
            }
        };
        let vector = track.predictions.iter().find(|p| p.version.model == space).map(|p| p.embedding.clone());
        match vector {
            Some(vector) if !vector.is_empty() => Ok(Resolved { vector, track: Some(track) }),
            _ => Err(EngineError::NoEmbedding {
                track_id: track.id,
                path: track.path,
                space: space.to_string(),
                state: track.state,
                error: track.error,
            }),
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
            return Err(EngineError::NoPositiveExample);
        }
        if !(0.0..=1.0).contains(&request.diversity) {
            return Err(EngineError::Diversity(request.diversity));
        }
        let settings = &self.settings;
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
        let seed = request.seed.ok_or(EngineError::NoSeed)?;
        let settings = &self.settings;
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
            let Some(track) = stored_tracks(&self.store, vec![hit.track_id]).await?.pop().flatten() else { continue };
            previous = vector;
            previous_artist = track.tags.artist.clone();
            playlist.push(Recommendation { track, score });
        }
        Ok(playlist)
    }

    async fn query_index(&self, query: Query) -> Result<Vec<Hit>, EngineError> {
        let index = self.index.get().ok_or(EngineError::IndexUnavailable)?;
        Ok(index.query(query).await?)
    }

    /// Hits with their library tracks, in order; a track removed meanwhile is left out.
    async fn with_tracks(&self, hits: Vec<Hit>) -> Result<Vec<Recommendation>, EngineError> {
        let tracks = stored_tracks(&self.store, hits.iter().map(|h| h.track_id).collect()).await?;
        let found = hits.into_iter().zip(tracks);
        Ok(found.filter_map(|(hit, track)| Some(Recommendation { track: track?, score: hit.score })).collect())
    }
}

fn index_filter(filter: &RecommendFilter, seeds: &[&TrackRecord]) -> Result<Filter, EngineError> {
    let durations =
        [("min_duration_s", filter.filter.min_duration_s), ("max_duration_s", filter.filter.max_duration_s)];
    for (name, value) in durations {
        if value.is_some_and(|v| v.is_nan() || v < 0.0) {
            return Err(EngineError::NegativeDuration(name));
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
mod over_an_index;

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
