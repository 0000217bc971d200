//! `timbre.v1.Timbre`: each handler validates, converts, makes one engine call, converts back.

use std::path::PathBuf;
use std::sync::Arc;

use timbre_proto::v1 as pb;
use timbre_proto::v1::timbre_server::Timbre;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::convert;
use super::status::bounded;
use crate::engine::{Engine, EngineError, TrackKey};
use crate::index::Strategy;
use crate::library::TrackFilter;
use crate::pipeline::decode::downmix;
use crate::pipeline::validate::{check_sample_rate, check_samples};
use crate::pipeline::AudioInput;
use crate::recommend::{Example, ListenRequest, PathRequest, PlaylistRequest, RecommendRequest};
use crate::sources::Windower;

/// Tracks per `ListTracks` page when the client does not say, and at most.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

pub struct TimbreService {
    engine: Arc<Engine>,
}

impl TimbreService {
    pub fn new(engine: Arc<Engine>) -> Self {
        TimbreService { engine }
    }
}

type Stream<T> = ReceiverStream<Result<T, Status>>;

/// A `TrackRef` as a recommendation example; `field` names it in errors.
fn example(reference: pb::TrackRef, field: &str, max_seconds: f64) -> Result<Example, Status> {
    use pb::track_ref::Track;
    match reference.track {
        Some(Track::TrackId(id)) => Ok(Example::Track(track_id(id)?)),
        Some(Track::Path(path)) => Ok(Example::Path(PathBuf::from(path))),
        Some(Track::Audio(audio)) => {
            let input = match audio.source {
                Some(pb::audio_input::Source::Encoded(bytes)) if !bytes.is_empty() => {
                    let name = if audio.filename_hint.is_empty() { field.to_string() } else { audio.filename_hint };
                    AudioInput::Encoded { name, bytes: bytes.into() }
                }
                Some(pb::audio_input::Source::Pcm(pcm)) => pcm_input(pcm, &format!("{field}.audio.pcm"), max_seconds)?,
                _ => return Err(Status::invalid_argument(format!("{field}.audio: encoded bytes or pcm are required"))),
            };
            Ok(Example::Audio(input))
        }
        None => Err(Status::invalid_argument(format!("{field}: one of track_id, path or audio is required"))),
    }
}

/// A proto track id (u64) as the library's (SQLite rowids are i64): larger ones name no track.
fn track_id(id: u64) -> Result<i64, Status> {
    i64::try_from(id).map_err(|_| Status::not_found(format!("no track with id {id}")))
}

/// Client PCM as mono samples, checked against the contract and the configured length limit.
fn pcm_input(pcm: pb::Pcm, field: &str, max_seconds: f64) -> Result<AudioInput, Status> {
    let sample_rate = pcm.sample_rate;
    Ok(AudioInput::Pcm { name: "pcm".into(), samples: mono(pcm, field, max_seconds)?.into(), sample_rate })
}

/// The samples of client PCM, checked and mixed down to mono.
fn mono(pcm: pb::Pcm, field: &str, max_seconds: f64) -> Result<Vec<f32>, Status> {
    check_sample_rate(pcm.sample_rate).map_err(|e| Status::invalid_argument(format!("{field}.sample_rate: {e}")))?;
    if pcm.channels == 0 {
        return Err(Status::invalid_argument(format!("{field}.channels: must be non-zero")));
    }
    check_samples(&pcm.samples, 0).map_err(|e| Status::invalid_argument(format!("{field}.samples: {e}")))?;
    let channels = pcm.channels as usize;
    if pcm.samples.is_empty() || !pcm.samples.len().is_multiple_of(channels) {
        return Err(Status::invalid_argument(format!(
            "{field}.samples: {} samples is not a non-zero multiple of {channels} channels",
            pcm.samples.len()
        )));
    }
    let seconds = (pcm.samples.len() / channels) as f64 / pcm.sample_rate as f64;
    if seconds > max_seconds {
        return Err(Status::invalid_argument(format!(
            "{field}: {seconds:.1} s of audio is more than the limit of {max_seconds} s (server.max_audio_seconds)"
        )));
    }
    Ok(downmix(&pcm.samples, channels))
}

/// Where the audio of a `Classify` request comes from, once checked.
#[derive(Debug)]
pub enum ClassifySource {
    /// A library path; the engine resolves it and refuses anything outside the roots.
    Path(String),
    /// Uploaded bytes or client PCM.
    Audio(AudioInput),
}

/// What `Classify` checks before the engine sees the request: a source is given, an upload
/// is not empty, PCM keeps to its contract and to `max_seconds`.
pub fn classify_source(
    source: Option<pb::classify_request::Source>,
    filename_hint: String,
    max_seconds: f64,
) -> Result<ClassifySource, Status> {
    match source {
        None => Err(Status::invalid_argument("source: one of path, encoded or pcm is required")),
        Some(pb::classify_request::Source::Path(path)) => Ok(ClassifySource::Path(path)),
        Some(pb::classify_request::Source::Encoded(bytes)) => {
            if bytes.is_empty() {
                return Err(Status::invalid_argument("encoded: the uploaded file is empty"));
            }
            let name = if filename_hint.is_empty() { "upload".into() } else { filename_hint };
            Ok(ClassifySource::Audio(AudioInput::Encoded { name, bytes: bytes.into() }))
        }
        Some(pb::classify_request::Source::Pcm(pcm)) => Ok(ClassifySource::Audio(pcm_input(pcm, "pcm", max_seconds)?)),
    }
}

/// A `Recommend` request checked and converted for the engine, which checks the rest against
/// the library (the model, the examples, the filter).
pub fn recommend_request(request: pb::RecommendRequest, max_seconds: f64) -> Result<RecommendRequest, Status> {
    let examples = |refs: Vec<pb::TrackRef>, field: &str| {
        refs.into_iter()
            .enumerate()
            .map(|(i, r)| example(r, &format!("{field}[{i}]"), max_seconds))
            .collect::<Result<Vec<_>, Status>>()
    };
    let strategy = match pb::RecommendStrategy::try_from(request.strategy) {
        Ok(pb::RecommendStrategy::BestScore) => Strategy::BestScore,
        Ok(_) => Strategy::AverageVector,
        Err(_) => return Err(Status::invalid_argument(format!("strategy: unknown value {}", request.strategy))),
    };
    Ok(RecommendRequest {
        positive: examples(request.positive, "positive")?,
        negative: examples(request.negative, "negative")?,
        model: (!request.model.is_empty()).then_some(request.model),
        limit: request.limit as usize,
        filter: request.filter.map(convert::recommend_filter).unwrap_or_default(),
        diversity: request.diversity,
        strategy,
        history: convert::history(request.history),
    })
}

#[tonic::async_trait]
impl Timbre for TimbreService {
    async fn classify(&self, request: Request<pb::ClassifyRequest>) -> Result<Response<pb::ClassifyResponse>, Status> {
        let request = request.into_inner();
        let max_seconds = self.engine.settings().server.max_audio_seconds;
        let (input, path) = match classify_source(request.source, request.filename_hint, max_seconds)? {
            ClassifySource::Path(path) => {
                let resolved = self.engine.library_path(&PathBuf::from(&path))?;
                (AudioInput::File(resolved), path)
            }
            ClassifySource::Audio(input) => (input, String::new()),
        };
        let analysis = self.engine.classify(input, &request.models).await?;
        Ok(Response::new(convert::classify_response(
            &analysis,
            path,
            &request.models,
            request.top_k as usize,
            request.include_segments,
        )))
    }

    type ClassifyStreamStream = Stream<pb::ClassifyResponse>;

    async fn classify_stream(
        &self,
        request: Request<Streaming<pb::AudioChunk>>,
    ) -> Result<Response<Self::ClassifyStreamStream>, Status> {
        let mut chunks = request.into_inner();
        let engine = self.engine.clone();
        let (out, stream) = mpsc::channel(8);
        tokio::spawn(async move {
            if let Err(status) = classify_windows(&engine, &mut chunks, &out).await {
                let _ = out.send(Err(status)).await;
            }
        });
        Ok(Response::new(ReceiverStream::new(stream)))
    }

    async fn recommend(
        &self,
        request: Request<pb::RecommendRequest>,
    ) -> Result<Response<pb::RecommendResponse>, Status> {
        let max_seconds = self.engine.settings().server.max_audio_seconds;
        let recommendations =
            self.engine.recommender().recommend(recommend_request(request.into_inner(), max_seconds)?).await?;
        let kinds = self.engine.model_kinds();
        Ok(Response::new(pb::RecommendResponse {
            tracks: recommendations.into_iter().map(|r| convert::recommended(r, &kinds)).collect(),
        }))
    }

    async fn playlist(&self, request: Request<pb::PlaylistRequest>) -> Result<Response<pb::PlaylistResponse>, Status> {
        let request = request.into_inner();
        let max_seconds = self.engine.settings().server.max_audio_seconds;
        let seed = request.seed.ok_or_else(|| Status::invalid_argument("seed: required"))?;
        let playlist = self
            .engine
            .recommender()
            .playlist(PlaylistRequest {
                seed: Some(example(seed, "seed", max_seconds)?),
                length: request.length as usize,
                model: (!request.model.is_empty()).then_some(request.model),
                no_repeat_artist: request.no_repeat_artist,
                filter: request.filter.map(convert::recommend_filter).unwrap_or_default(),
                history: convert::history(request.history),
            })
            .await?;
        let kinds = self.engine.model_kinds();
        Ok(Response::new(pb::PlaylistResponse {
            tracks: playlist.into_iter().map(|r| convert::recommended(r, &kinds)).collect(),
        }))
    }

    async fn path(&self, request: Request<pb::PathRequest>) -> Result<Response<pb::PathResponse>, Status> {
        let request = request.into_inner();
        let max_seconds = self.engine.settings().server.max_audio_seconds;
        let from = request.from.ok_or_else(|| Status::invalid_argument("from: required"))?;
        let to = request.to.ok_or_else(|| Status::invalid_argument("to: required"))?;
        let waypoints = request
            .waypoints
            .into_iter()
            .enumerate()
            .map(|(i, w)| example(w, &format!("waypoints[{i}]"), max_seconds))
            .collect::<Result<Vec<_>, Status>>()?;
        let path = self
            .engine
            .recommender()
            .path(PathRequest {
                from: Some(example(from, "from", max_seconds)?),
                to: Some(example(to, "to", max_seconds)?),
                waypoints,
                length: request.length as usize,
                model: (!request.model.is_empty()).then_some(request.model),
                no_repeat_artist: request.no_repeat_artist,
                filter: request.filter.map(convert::recommend_filter).unwrap_or_default(),
            })
            .await?;
        let kinds = self.engine.model_kinds();
        Ok(Response::new(pb::PathResponse {
            tracks: path.into_iter().map(|r| convert::recommended(r, &kinds)).collect(),
        }))
    }

    async fn record_listen(
        &self,
        request: Request<pb::RecordListenRequest>,
    ) -> Result<Response<pb::RecordListenResponse>, Status> {
        use pb::record_listen_request::Track;
        let request = request.into_inner();
        let track = match request.track {
            Some(Track::TrackId(id)) => Example::Track(track_id(id)?),
            Some(Track::Path(path)) => Example::Path(PathBuf::from(path)),
            None => return Err(Status::invalid_argument("track: one of track_id or path is required")),
        };
        let at_ms = (request.at_unix_ms != 0).then_some(request.at_unix_ms);
        let listen = self
            .engine
            .recommender()
            .record_listen(ListenRequest { track, at_ms, played_s: request.played_s, skipped: request.skipped })
            .await?;
        Ok(Response::new(pb::RecordListenResponse { track_id: listen.track_id as u64, at_unix_ms: listen.at_ms }))
    }

    type ScanStream = Stream<pb::ScanProgress>;

    async fn scan(&self, request: Request<pb::ScanRequest>) -> Result<Response<Self::ScanStream>, Status> {
        let request = request.into_inner();
        let scanner = self.engine.scanner().clone();
        if scanner.roots().is_empty() && request.roots.is_empty() {
            return Err(Status::failed_precondition(
                "no library roots are configured: start timbred with --root DIR or set library.roots",
            ));
        }
        let roots = if request.roots.is_empty() {
            scanner.roots().to_vec()
        } else {
            request
                .roots
                .iter()
                .map(|r| self.engine.library_path(&PathBuf::from(r)))
                .collect::<Result<_, EngineError>>()?
        };
        let (progress, mut updates) = tokio::sync::watch::channel(Default::default());
        let (out, stream) = mpsc::channel(16);
        let scan = tokio::spawn(async move { scanner.scan_resolved(roots, request.full, progress).await });
        tokio::spawn(async move {
            // Forward each new state; when the client goes away, `updates` is dropped with this
            // task, and the scan sees no receiver left and stops.
            while updates.changed().await.is_ok() {
                let state = updates.borrow_and_update().clone();
                let finished = state.finished;
                if out.send(Ok(state.into())).await.is_err() || finished {
                    break;
                }
            }
            drop(updates);
            if let Ok(Err(error)) = scan.await {
                let _ = out.send(Err(error.into())).await;
            }
        });
        Ok(Response::new(ReceiverStream::new(stream)))
    }

    async fn get_track(&self, request: Request<pb::GetTrackRequest>) -> Result<Response<pb::Track>, Status> {
        let track = match request.into_inner().track {
            Some(pb::get_track_request::Track::TrackId(id)) => self.engine.track(TrackKey::Id(track_id(id)?)).await?,
            Some(pb::get_track_request::Track::Path(path)) => {
                self.engine.track(TrackKey::Path(PathBuf::from(path))).await?
            }
            None => return Err(Status::invalid_argument("track: one of track_id or path is required")),
        };
        Ok(Response::new(convert::track(track, &self.engine.model_kinds())))
    }

    async fn list_tracks(
        &self,
        request: Request<pb::ListTracksRequest>,
    ) -> Result<Response<pb::ListTracksResponse>, Status> {
        let request = request.into_inner();
        // Tokens are track ids this server issued: positive integers.
        let after: i64 = if request.page_token.is_empty() {
            0
        } else {
            request.page_token.parse::<u64>().ok().and_then(|id| i64::try_from(id).ok()).ok_or_else(|| {
                let token = bounded(format!("'{}'", request.page_token));
                Status::invalid_argument(format!("page_token: {token} is not a token this server issued"))
            })?
        };
        let limit = match request.page_size as usize {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        };
        let text = |s: String| (!s.is_empty()).then_some(s);
        let bpm = request.bpm.unwrap_or_default();
        let filter = TrackFilter {
            genre: text(request.genre),
            model: text(request.model),
            label: text(request.label),
            bpm_min: bpm.min,
            bpm_max: bpm.max,
            bpm_octaves: bpm.octaves,
        };
        let embedding_model = request.embedding_model;
        let (tracks, total) = self.engine.list_tracks(filter, after, limit).await?;
        let kinds = self.engine.model_kinds();
        let next_page_token = if tracks.len() == limit {
            tracks.last().map(|t| t.id.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListTracksResponse {
            tracks: tracks.into_iter().map(|t| convert::track_with_embedding(t, &embedding_model, &kinds)).collect(),
            next_page_token,
            total,
        }))
    }

    async fn list_plugins(
        &self,
        _: Request<pb::ListPluginsRequest>,
    ) -> Result<Response<pb::ListPluginsResponse>, Status> {
        Ok(Response::new(self.engine.catalogue().into()))
    }

    type WatchLiveStream = Stream<pb::LivePrediction>;

    async fn watch_live(
        &self,
        request: Request<pb::WatchLiveRequest>,
    ) -> Result<Response<Self::WatchLiveStream>, Status> {
        let source = request.into_inner().source;
        let mut predictions = self.engine.watch_live((!source.is_empty()).then_some(source.as_str()))?;
        let (out, stream) = mpsc::channel(16);
        tokio::spawn(async move {
            loop {
                let prediction = match predictions.recv().await {
                    Ok(prediction) => prediction,
                    // A slow client misses windows rather than holding up the others.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "a WatchLive client fell behind");
                        continue;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                };
                if !source.is_empty() && prediction.source != source {
                    continue;
                }
                if out.send(Ok(prediction.as_ref().into())).await.is_err() {
                    break; // the client went away
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(stream)))
    }
}

/// `ClassifyStream`: cut the client's PCM into windows and answer one response per window.
async fn classify_windows(
    engine: &Engine,
    chunks: &mut Streaming<pb::AudioChunk>,
    out: &mpsc::Sender<Result<pb::ClassifyResponse, Status>>,
) -> Result<(), Status> {
    let Some(first) = chunks.message().await? else { return Ok(()) };
    let config = first.config.clone().unwrap_or_default();
    engine.check_models(&config.models)?;
    let window_s = if config.window_s == 0.0 { engine.default_window_s() } else { config.window_s };
    crate::sources::check_window_s("config.window_s", window_s).map_err(Status::invalid_argument)?;
    let max_seconds = engine.settings().server.max_audio_seconds;
    let mut windower = Windower::new(window_s, window_s);
    let mut format: Option<(u32, u32)> = None;
    let mut index = 0u32;
    let mut next = Some(first);
    let mut is_first = true;
    while let Some(chunk) = next {
        if !is_first && chunk.config.is_some() {
            return Err(Status::invalid_argument("config: only the first chunk may carry a config"));
        }
        is_first = false;
        if let Some(pcm) = chunk.pcm {
            let this = (pcm.sample_rate, pcm.channels);
            let expected = *format.get_or_insert(this);
            if expected != this {
                return Err(Status::invalid_argument(format!(
                    "pcm: every chunk must have the first chunk's sample_rate and channels {expected:?}, not {this:?}"
                )));
            }
            let sample_rate = pcm.sample_rate;
            let samples = mono(pcm, "pcm", max_seconds)?;
            for window in windower.push(&samples, sample_rate) {
                let response = classify_window(engine, window, index, windower.elapsed_s(), &config).await?;
                if out.send(Ok(response)).await.is_err() {
                    return Ok(()); // the client went away
                }
                index += 1;
            }
        }
        next = chunks.message().await?;
    }
    // Half-closed: the trailing partial window, when it holds enough audio.
    if let Some(window) = windower.finish() {
        let response = classify_window(engine, window, index, windower.elapsed_s(), &config).await?;
        let _ = out.send(Ok(response)).await;
    }
    Ok(())
}

async fn classify_window(
    engine: &Engine,
    window: crate::sources::Window,
    index: u32,
    elapsed_s: f64,
    config: &pb::ClassifyStreamConfig,
) -> Result<pb::ClassifyResponse, Status> {
    let input =
        AudioInput::Pcm { name: "stream".into(), samples: window.samples.into(), sample_rate: window.sample_rate };
    let analysis = engine.classify(input, &config.models).await?;
    let predictions = convert::window_predictions(
        &analysis,
        index,
        window.start_s,
        window.end_s,
        &config.models,
        config.top_k as usize,
    );
    Ok(pb::ClassifyResponse { path: String::new(), duration_s: elapsed_s, predictions, descriptors: None })
}
