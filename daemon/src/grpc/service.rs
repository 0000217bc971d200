//! `timbre.v1.Timbre`: each handler validates, converts, makes one engine call, converts back.

use std::sync::Arc;

use timbre_proto::v1 as pb;
use timbre_proto::v1::timbre_server::Timbre;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::engine::Engine;

pub struct TimbreService {
    engine: Arc<Engine>,
}

impl TimbreService {
    pub fn new(engine: Arc<Engine>) -> Self {
        TimbreService { engine }
    }
}

/// An RPC of the published contract whose engine side is not built yet. Clients get
/// UNIMPLEMENTED with a message saying so, never a wrong answer.
fn not_built_yet(rpc: &str, arrives_with: &str) -> Status {
    Status::unimplemented(format!(
        "{rpc} is part of timbre.v1 but not served by this timbred yet; it arrives with {arrives_with}"
    ))
}

type Stream<T> = ReceiverStream<Result<T, Status>>;

#[tonic::async_trait]
impl Timbre for TimbreService {
    async fn classify(&self, _: Request<pb::ClassifyRequest>) -> Result<Response<pb::ClassifyResponse>, Status> {
        Err(not_built_yet("Classify", "the classifier plugins"))
    }

    type ClassifyStreamStream = Stream<pb::ClassifyResponse>;

    async fn classify_stream(
        &self,
        _: Request<Streaming<pb::AudioChunk>>,
    ) -> Result<Response<Self::ClassifyStreamStream>, Status> {
        Err(not_built_yet("ClassifyStream", "the classifier plugins"))
    }

    async fn recommend(&self, _: Request<pb::RecommendRequest>) -> Result<Response<pb::RecommendResponse>, Status> {
        Err(not_built_yet("Recommend", "the vector index"))
    }

    async fn playlist(&self, _: Request<pb::PlaylistRequest>) -> Result<Response<pb::PlaylistResponse>, Status> {
        Err(not_built_yet("Playlist", "the vector index"))
    }

    type ScanStream = Stream<pb::ScanProgress>;

    async fn scan(&self, _: Request<pb::ScanRequest>) -> Result<Response<Self::ScanStream>, Status> {
        Err(not_built_yet("Scan", "the library store"))
    }

    async fn get_track(&self, _: Request<pb::GetTrackRequest>) -> Result<Response<pb::Track>, Status> {
        Err(not_built_yet("GetTrack", "the library store"))
    }

    async fn list_tracks(&self, _: Request<pb::ListTracksRequest>) -> Result<Response<pb::ListTracksResponse>, Status> {
        Err(not_built_yet("ListTracks", "the library store"))
    }

    async fn list_plugins(
        &self,
        _: Request<pb::ListPluginsRequest>,
    ) -> Result<Response<pb::ListPluginsResponse>, Status> {
        Ok(Response::new(self.engine.plugins().into()))
    }

    type WatchLiveStream = Stream<pb::LivePrediction>;

    async fn watch_live(&self, _: Request<pb::WatchLiveRequest>) -> Result<Response<Self::WatchLiveStream>, Status> {
        Err(not_built_yet("WatchLive", "live capture"))
    }
}
