//! The gRPC adapter: the only module that knows tonic and the generated proto types.
//! [`serve`] wires the `timbre.v1.Timbre` service, `grpc.health.v1` and reflection.

mod convert;
mod service;
mod status;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use timbre_proto::v1::timbre_server::TimbreServer;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

use crate::engine::Engine;

pub use service::{classify_source, recommend_request, ClassifySource, TimbreService};

/// Serve on an already bound listener until `shutdown` resolves, then finish in-flight calls.
pub async fn serve(
    engine: Arc<Engine>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    let max_request = (engine.settings().server.max_request_mib as usize).saturating_mul(1 << 20);
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<TimbreServer<TimbreService>>().await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(timbre_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("the embedded descriptor sets are valid");
    // Older tools (grpcurl before 1.9, many IDE plugins) only speak v1alpha.
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(timbre_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .expect("the embedded descriptor sets are valid");

    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            TimbreServer::new(TimbreService::new(engine))
                .max_decoding_message_size(max_request)
                .max_encoding_message_size(64 << 20),
        )
        // Nagle off: small replies otherwise wait ~40 ms for an ACK (bench/README.md, Daemon).
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), shutdown)
        .await
}

/// Bind `addr`; a clear error names the address when it is taken or not allowed.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}
