//! Recommendation: "more like these" and playlists, over one model's embedding space.
//!
//! Examples are library tracks (their stored embeddings) or audio analysed on the fly and not
//! stored. Queries go to the vector index ([`crate::index`]), which the index keeper keeps in
//! line with the library. Variety is traded for similarity by maximal marginal relevance.
//!
//! Tempo and key filters are index filters like the others (the index holds each track's
//! tempo and key), so a filtered query still answers its full `limit` when enough tracks pass.
//! The harmonic filter is turned into the keys that mix with a reference key
//! ([`Camelot::compatible`]): for `recommend`, the key given in the request or else the keys
//! of the positive examples (any of them); for `playlist` and `path`, the track before each
//! step, so that every transition is one a DJ could mix.
//!
//! A [`Recommender`] needs a library, an index and a worker pool (for audio examples), not
//! the engine: tests build one over an embedded index without any plugin.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::camelot::Camelot;
use crate::config::RecommendSettings;
use crate::engine::read_store;
use crate::engine::{find_track, library_path, stored_tracks, EngineError, TrackKey};
use crate::index::keeper::SharedIndex;
use crate::index::{dot, normalised, tempo_and_key, Filter, Hit, Query, Strategy};
use crate::library::{Listen, Store, TrackRecord};
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

/// Which tracks may come back: the index's filter (with its tempo range), plus the seed's
/// artist and album and the harmonic filter.
#[derive(Debug, Clone, Default)]
pub struct RecommendFilter {
    pub filter: Filter,
    pub exclude_seed_artist: bool,
    pub exclude_seed_album: bool,
    /// Only tracks whose key mixes with the reference key: the same, the relative key, or a
    /// Camelot neighbour (see the module documentation for the reference).
    pub harmonic: bool,
    /// The reference key as the request gives it ("A minor", "8A"); `None`: the examples'.
    pub key: Option<String>,
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
    pub history: History,
}

/// What a request takes from the listening history ([`Recommender::record_listen`]); each
/// part is optional and off by default.
#[derive(Debug, Clone, Copy, Default)]
pub struct History {
    /// Leave out tracks played within the recent window.
    pub exclude_recent: bool,
    /// The recent window in seconds; `None`: `recommend.recent_window_s`.
    pub recent_window_s: Option<f64>,
    /// Tracks whose latest listen was a quick skip (`recommend.quick_skip_s`) are negative
    /// examples.
    pub skips_as_negative: bool,
    /// Tracks played through are positive examples, once per play (a replay weighs more).
    pub plays_as_positive: bool,
}

impl History {
    fn used(&self) -> bool {
        self.exclude_recent || self.skips_as_negative || self.plays_as_positive
    }
}

/// What the history says for one request: track ids, the latest first.
#[derive(Debug, Default)]
struct FromHistory {
    recent: Vec<i64>,
    /// With repeats: one entry per play through (at most [`MAX_REPLAY_WEIGHT`]).
    positive: Vec<i64>,
    negative: Vec<i64>,
}

/// A track played through more often than this weighs no more.
const MAX_REPLAY_WEIGHT: usize = 3;

/// One listening event as a request gives it.
#[derive(Debug, Clone)]
pub struct ListenRequest {
    /// A library track (by id or path); audio is not a track.
    pub track: Example,
    /// Unix ms when it started playing; `None`: now.
    pub at_ms: Option<i64>,
    pub played_s: f64,
    pub skipped: bool,
}

/// A request for a path between two tracks.
#[derive(Debug, Clone, Default)]
pub struct PathRequest {
    pub from: Option<Example>,
    pub to: Option<Example>,
    /// Points the path passes near, in order.
    pub waypoints: Vec<Example>,
    /// Tracks between the two ends (which are not part of the path).
    pub length: usize,
    pub model: Option<String>,
    pub no_repeat_artist: bool,
    pub filter: RecommendFilter,
}

#[derive(Debug, Clone, Default)]
pub struct PlaylistRequest {
    pub seed: Option<Example>,
    pub length: usize,
    pub model: Option<String>,
    pub no_repeat_artist: bool,
    pub filter: RecommendFilter,
    pub history: History,
}

/// A track and how well it matches.
#[derive(Debug, Clone)]
pub struct Recommendation {
    pub track: TrackRecord,
    pub score: f32,
}

/// An example resolved: its embedding in the space, the library track when it is one, and
/// its key (stored, or measured when the audio was analysed) when known.
struct Resolved {
    vector: Vec<f32>,
    track: Option<TrackRecord>,
    key: Option<Camelot>,
}

impl Resolved {
    /// How an error names this example.
    fn name(&self) -> String {
        match &self.track {
            Some(track) => format!("track {} ({})", track.id, track.path),
            None => "the uploaded audio".into(),
        }
    }
}

/// Candidates fetched per wanted result when re-ranking for diversity.
const DIVERSITY_POOL: usize = 4;

/// Candidates a path step chooses among.
const PATH_CANDIDATES: usize = 32;

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

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
                let (_, key) = tempo_and_key(&analysis.descriptors);
                return Ok(Resolved { vector, track: None, key });
            }
        };
        let vector = track.predictions.iter().find(|p| p.version.model == space).map(|p| p.embedding.clone());
        match vector {
            Some(vector) if !vector.is_empty() => {
                let (_, key) = tempo_and_key(&track.descriptors);
                Ok(Resolved { vector, track: Some(track), key })
            }
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
        if request.positive.is_empty() && !request.history.plays_as_positive {
            return Err(EngineError::NoPositiveExample);
        }
        if !(0.0..=1.0).contains(&request.diversity) {
            return Err(EngineError::Diversity(request.diversity));
        }
        let settings = &self.settings;
        let limit = if request.limit == 0 { settings.default_limit } else { request.limit.min(settings.max_limit) };
        let space = self.space(request.model.as_deref())?;
        let history = self.history(&request.history).await?;
        let positive = self.resolve_all(&request.positive, &space).await?;
        let negative = self.resolve_all(&request.negative, &space).await?;
        let seeds: Vec<&TrackRecord> = positive.iter().filter_map(|r| r.track.as_ref()).collect();
        let mut filter = index_filter(&request.filter, &seeds)?;
        if request.filter.harmonic {
            let reference = match explicit_key(&request.filter)? {
                Some(key) => vec![key],
                None => positive.iter().map(|r| r.key.ok_or_else(|| no_key(r))).collect::<Result<_, _>>()?,
            };
            if reference.is_empty() {
                // Only history positives: there is no example whose key could be meant.
                return Err(EngineError::NoReferenceKey("the request (its examples come from the history)".into()));
            }
            filter.keys = reference.into_iter().flat_map(Camelot::compatible).collect();
        }
        // Library examples are never recommended back.
        filter.exclude_tracks.extend(positive.iter().chain(&negative).filter_map(|r| r.track.as_ref().map(|t| t.id)));
        filter.exclude_tracks.extend(&history.recent);
        let explicit: Vec<i64> = positive.iter().filter_map(|r| r.track.as_ref().map(|t| t.id)).collect();
        let mut positive: Vec<Vec<f32>> = positive.into_iter().map(|r| r.vector).collect();
        let mut negative: Vec<Vec<f32>> = negative.into_iter().map(|r| r.vector).collect();
        positive.extend(self.history_vectors(&history.positive, &space).await?);
        let negatives: Vec<i64> = history.negative.iter().copied().filter(|id| !explicit.contains(id)).collect();
        negative.extend(self.history_vectors(&negatives, &space).await?);
        if positive.is_empty() {
            return Err(EngineError::NoPositiveExample);
        }

        let diverse = request.diversity > 0.0;
        let query = Query {
            space,
            positive,
            negative,
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
        let mut base_filter = index_filter(&request.filter, &seeds)?;
        // Each next track mixes with the one before it; the first with the seed (or the key
        // the request gives).
        let mut previous_key = previous_key(&request.filter, &seed)?;
        let history = self.history(&request.history).await?;
        base_filter.exclude_tracks.extend(&history.recent);
        // The listener's taste (played through) pulls the walk as a third anchor; quick skips
        // push it away.
        let taste = mean(&self.history_vectors(&history.positive, &space).await?);
        let avoid = self.history_vectors(&history.negative, &space).await?;
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
            if let Some(key) = previous_key {
                filter.keys = key.compatible().to_vec();
            }
            // Near the previous track and the seed alike: the walk cannot drift away.
            let mut positive = vec![previous.clone(), seed.vector.clone()];
            positive.extend(taste.clone());
            let query = Query {
                space: space.clone(),
                positive,
                negative: avoid.clone(),
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
            // The index only gave a track with a key; one re-described meanwhile keeps the last.
            previous_key = previous_key.and(tempo_and_key(&track.descriptors).1).or(previous_key);
            playlist.push(Recommendation { track, score });
        }
        Ok(playlist)
    }

    /// A sequence of tracks from one track to another: step `i` of `n` is the unused track
    /// nearest the point `i / (n + 1)` of the way along the route through the waypoints,
    /// weighed with closeness to the previous step, and chosen among those nearer the next
    /// anchor than the previous step was (when there is one), so each leg closes in on its end.
    pub async fn path(&self, request: PathRequest) -> Result<Vec<Recommendation>, EngineError> {
        let from = request.from.ok_or(EngineError::NoEndpoint("from"))?;
        let to = request.to.ok_or(EngineError::NoEndpoint("to"))?;
        let settings = &self.settings;
        let length =
            if request.length == 0 { settings.default_length } else { request.length.min(settings.max_length) };
        let space = self.space(request.model.as_deref())?;
        let from = self.resolve(&from, &space).await?;
        let to = self.resolve(&to, &space).await?;
        let waypoints = self.resolve_all(&request.waypoints, &space).await?;
        let ends: Vec<&TrackRecord> = from.track.iter().chain(to.track.iter()).collect();
        let mut base_filter = index_filter(&request.filter, &ends)?;
        let mut previous_key = previous_key(&request.filter, &from)?;
        let mut anchors = vec![&from];
        anchors.extend(waypoints.iter());
        anchors.push(&to);
        base_filter.exclude_tracks.extend(anchors.iter().filter_map(|a| a.track.as_ref().map(|t| t.id)));
        let anchors: Vec<Vec<f32>> = anchors.iter().map(|a| normalised(&a.vector)).collect();
        let legs = anchors.len() - 1;

        let mut chosen: Vec<i64> = Vec::new();
        let mut previous = anchors[0].clone();
        let mut previous_artist = from.track.as_ref().map(|t| t.tags.artist.clone()).unwrap_or_default();
        // Each step with its leg and vector, to order each leg once walked.
        let mut path: Vec<(usize, Vec<f32>, TrackRecord)> = Vec::with_capacity(length);
        for step in 1..=length {
            let along = step as f32 / (length + 1) as f32 * legs as f32;
            let leg = (along.floor() as usize).min(legs - 1);
            let u = along - leg as f32;
            let (start, end) = (&anchors[leg], &anchors[leg + 1]);
            let target = normalised(&start.iter().zip(end).map(|(a, b)| (1.0 - u) * a + u * b).collect::<Vec<_>>());
            let mut filter = base_filter.clone();
            filter.exclude_tracks.extend(&chosen);
            if request.no_repeat_artist && !previous_artist.trim().is_empty() {
                filter.exclude_artists.push(previous_artist.clone());
            }
            if let Some(key) = previous_key {
                filter.keys = key.compatible().to_vec();
            }
            let query = Query {
                space: space.clone(),
                positive: vec![target.clone(), target.clone(), previous.clone()],
                negative: Vec::new(),
                strategy: Strategy::AverageVector,
                limit: PATH_CANDIDATES,
                filter,
                with_vectors: true,
            };
            let candidates: Vec<(Hit, Vec<f32>)> = self
                .query_index(query)
                .await?
                .into_iter()
                .map(|hit| {
                    let vector = normalised(hit.vector.as_deref().unwrap_or_default());
                    (hit, vector)
                })
                .collect();
            let closer = dot(&previous, end);
            let value = |v: &[f32]| dot(v, &target) + 0.5 * dot(v, &previous);
            let best = |progressing: bool| {
                candidates
                    .iter()
                    .filter(|(_, v)| !progressing || dot(v, end) > closer)
                    .max_by(|a, b| value(&a.1).total_cmp(&value(&b.1)))
            };
            let Some((hit, vector)) = best(true).or_else(|| best(false)) else { break };
            chosen.push(hit.track_id);
            let Some(track) = stored_tracks(&self.store, vec![hit.track_id]).await?.pop().flatten() else { continue };
            previous = vector.clone();
            previous_artist = track.tags.artist.clone();
            previous_key = previous_key.and(tempo_and_key(&track.descriptors).1).or(previous_key);
            path.push((leg, vector.clone(), track));
        }
        // Where no unused track was nearer the leg's end than the step before (real music
        // clusters), a step may have fallen back: within each leg, order by closeness to its
        // end, so each leg closes in on it all the same. Not with the harmonic filter: each
        // step was chosen to mix with the one before it, and reordering would break that.
        if previous_key.is_none() {
            path.sort_by(|a, b| {
                a.0.cmp(&b.0).then(dot(&a.1, &anchors[a.0 + 1]).total_cmp(&dot(&b.1, &anchors[b.0 + 1])))
            });
        }
        let mut previous = anchors[0].clone();
        let mut out = Vec::with_capacity(path.len());
        for (_, vector, track) in path {
            out.push(Recommendation { track, score: dot(&previous, &vector) });
            previous = vector;
        }
        Ok(out)
    }

    /// Record a listening event for a library track.
    pub async fn record_listen(&self, request: ListenRequest) -> Result<Listen, EngineError> {
        if !request.played_s.is_finite() || request.played_s < 0.0 {
            return Err(EngineError::PlayedTime(request.played_s));
        }
        let track = match &request.track {
            Example::Track(id) => find_track(&self.store, TrackKey::Id(*id)).await?,
            Example::Path(path) => {
                let path = library_path(&self.roots, path)?;
                find_track(&self.store, TrackKey::Path(path)).await?
            }
            Example::Audio(_) => return Err(EngineError::TrackNotFound(TrackKey::None)),
        };
        let listen = Listen {
            track_id: track.id,
            at_ms: request.at_ms.unwrap_or_else(now_ms),
            played_s: request.played_s,
            skipped: request.skipped,
        };
        let store = self.store.clone();
        let stored = listen.clone();
        read_store("recording a listen", move || store.record_listen(&stored)).await?;
        Ok(listen)
    }

    /// What the history says for a request: read only when the request uses it.
    async fn history(&self, history: &History) -> Result<FromHistory, EngineError> {
        if !history.used() {
            return Ok(FromHistory::default());
        }
        if let Some(window) = history.recent_window_s {
            if !window.is_finite() || window < 0.0 {
                return Err(EngineError::RecentWindow(window));
            }
        }
        let settings = &self.settings;
        let window_ms = (history.recent_window_s.unwrap_or(settings.recent_window_s) * 1000.0) as i64;
        let lookback_ms = (settings.history_lookback_s * 1000.0) as i64;
        let now = now_ms();
        let store = self.store.clone();
        let since = now.saturating_sub(window_ms.max(lookback_ms));
        let listens = read_store("reading the listening history", move || store.listens_since(since)).await?;
        Ok(from_history(&listens, history, now - window_ms, settings.quick_skip_s, settings.history_examples))
    }

    /// The embeddings in `space` of these tracks, in order; tracks gone or without one are
    /// left out (the history outlives analyses).
    async fn history_vectors(&self, ids: &[i64], space: &str) -> Result<Vec<Vec<f32>>, EngineError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut unique = ids.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let tracks = stored_tracks(&self.store, unique.clone()).await?;
        let vectors: HashMap<i64, Vec<f32>> = unique
            .into_iter()
            .zip(tracks)
            .filter_map(|(id, track)| {
                let prediction = track?.predictions.into_iter().find(|p| p.version.model == space)?;
                (!prediction.embedding.is_empty()).then_some((id, prediction.embedding))
            })
            .collect();
        Ok(ids.iter().filter_map(|id| vectors.get(id).cloned()).collect())
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

/// The history's verdicts, from listens the latest first: a track is recent when it was
/// played at or after `recent_since_ms`; negative when its latest listen was a skip within
/// `quick_skip_s`; otherwise positive once per play through.
fn from_history(
    listens: &[Listen],
    history: &History,
    recent_since_ms: i64,
    quick_skip_s: f64,
    max_examples: usize,
) -> FromHistory {
    let mut out = FromHistory::default();
    let mut latest_seen: Vec<i64> = Vec::new();
    let mut plays: HashMap<i64, usize> = HashMap::new();
    let mut order: Vec<i64> = Vec::new();
    for listen in listens {
        let id = listen.track_id;
        if history.exclude_recent && listen.at_ms >= recent_since_ms && !out.recent.contains(&id) {
            out.recent.push(id);
        }
        let first = !latest_seen.contains(&id);
        if first {
            latest_seen.push(id);
            if listen.skipped && listen.played_s <= quick_skip_s {
                if history.skips_as_negative && out.negative.len() < max_examples {
                    out.negative.push(id);
                }
                plays.insert(id, usize::MAX);
                continue;
            }
        }
        if !listen.skipped {
            let count = plays.entry(id).or_insert(0);
            if *count == 0 {
                order.push(id);
            }
            if *count != usize::MAX {
                *count += 1;
            }
        }
    }
    if history.plays_as_positive {
        for id in order.into_iter().take(max_examples) {
            let times = plays[&id];
            out.positive.extend(std::iter::repeat_n(id, times.min(MAX_REPLAY_WEIGHT)));
        }
    }
    out
}

/// The normalised mean of some vectors, if there are any.
fn mean(vectors: &[Vec<f32>]) -> Option<Vec<f32>> {
    let first = vectors.first()?;
    let mut sum = vec![0.0; first.len()];
    for v in vectors.iter().map(|v| normalised(v)) {
        sum.iter_mut().zip(&v).for_each(|(s, x)| *s += x);
    }
    Some(normalised(&sum))
}

/// The reference key the request gives, checked; `None` when it gives none.
fn explicit_key(filter: &RecommendFilter) -> Result<Option<Camelot>, EngineError> {
    match filter.key.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => Camelot::parse(text).map(Some).ok_or_else(|| EngineError::BadKey(text.to_string())),
    }
}

fn no_key(example: &Resolved) -> EngineError {
    EngineError::NoReferenceKey(example.name())
}

/// Where a walk's harmonic filter starts: the request's key, else the first example's.
/// `None` without the harmonic filter.
fn previous_key(filter: &RecommendFilter, first: &Resolved) -> Result<Option<Camelot>, EngineError> {
    let explicit = explicit_key(filter)?;
    if !filter.harmonic {
        return Ok(None);
    }
    explicit.or(first.key).map(Some).ok_or_else(|| no_key(first))
}

/// A tempo range must have an end, ends that are tempos, and its low end at most its high one.
fn check_bpm(filter: &Filter) -> Result<(), EngineError> {
    let Some(range) = filter.bpm else { return Ok(()) };
    let bad = |reason: String| Err(EngineError::BadBpmRange(reason));
    for (name, value) in [("min", range.min), ("max", range.max)] {
        if let Some(value) = value {
            // 0 is allowed (an open low end written out), as `ListTracks` and the client allow it.
            if !value.is_finite() || value < 0.0 {
                return bad(format!("{name} {value} is not a tempo (a non-negative number of beats per minute)"));
            }
        }
    }
    match (range.min, range.max) {
        (None, None) => bad("the range is empty: give min, max or both".into()),
        (Some(min), Some(max)) if min > max => bad(format!("min {min} is above max {max}")),
        _ => Ok(()),
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
    check_bpm(&filter.filter)?;
    // A malformed key is refused even where the filter does not use it.
    explicit_key(filter)?;
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
