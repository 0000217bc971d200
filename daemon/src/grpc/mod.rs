//! The gRPC adapter: the only module that knows tonic and the generated proto types.
//! [`serve`] wires the `timbre.v1.Timbre` service, `grpc.health.v1` and reflection, with
//! TLS and the bearer-token interceptor as [`Security`] says.

mod auth;
mod convert;
mod security;
mod service;
mod status;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use timbre_proto::v1::timbre_server::TimbreServer;
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;

use crate::engine::Engine;

pub use auth::{Tokens, TokensError};
pub use security::{Security, SecurityError};
pub use service::{classify_source, recommend_request, ClassifySource, TimbreService};

/// Serve on an already bound listener until `shutdown` resolves, then finish in-flight calls.
/// The Timbre service and reflection pass through the token interceptor; health does not.
pub async fn serve(
    engine: Arc<Engine>,
    listener: TcpListener,
    security: Security,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    let server_settings = &engine.settings().server;
    let max_request = (server_settings.max_request_mib as usize).saturating_mul(1 << 20);
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<TimbreServer<TimbreService>>().await;
    let reflection = server_settings.reflection;
    let reflection_v1 = reflection.then(|| {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(timbre_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .expect("the embedded descriptor sets are valid")
    });
    // Older tools (grpcurl before 1.9, many IDE plugins) only speak v1alpha.
    let reflection_v1alpha = reflection.then(|| {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(timbre_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()
            .expect("the embedded descriptor sets are valid")
    });
    let auth = security.authenticator();
    let timbre = TimbreServer::new(TimbreService::new(engine.clone()))
        .max_decoding_message_size(max_request)
        .max_encoding_message_size(64 << 20);

    // Each open call holds its buffers (an idle ClassifyStream its window): a connection
    // may not hold more than this many at once.
    let mut server = tonic::transport::Server::builder().max_concurrent_streams(server_settings.max_concurrent_streams);
    if let Some(tls) = security.tls {
        server = server.tls_config(tls)?;
    }
    server
        .add_service(health_service)
        .add_optional_service(reflection_v1.map(|s| InterceptedService::new(s, auth.clone())))
        .add_optional_service(reflection_v1alpha.map(|s| InterceptedService::new(s, auth.clone())))
        .add_service(InterceptedService::new(timbre, auth))
        // Nagle off: small replies otherwise wait ~40 ms for an ACK (bench/README.md, Daemon).
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), shutdown)
        .await
}

/// Bind `addr`; a clear error names the address when it is taken or not allowed.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}
