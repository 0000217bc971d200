//! `timbred serve`: the daemon's life, from start-up to a clean stop.
//!
//! Start: read the certificates and tokens and refuse to serve a network openly, bind (so a
//! taken port fails before anything slow), load plugins and models, open the library, serve,
//! then catch up with the library and follow it.
//! Reload (SIGHUP, or a change under a model path): new and changed model folders join the
//! catalogue without a restart ([`Engine::reload_models`]).
//! Stop (SIGINT/SIGTERM): stop accepting calls, let calls and analyses in flight finish
//! within the grace period, store their results, checkpoint the database.

use std::time::Duration;

use crate::config::Loaded;
use crate::engine::{Engine, StartError};
use crate::grpc::{Security, SecurityError};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Bind(#[from] std::io::Error),
    #[error(transparent)]
    Security(#[from] SecurityError),
    #[error(transparent)]
    Engine(#[from] StartError),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error(transparent)]
    Lock(#[from] crate::library::lock::LockError),
}

/// How the line `timbred serve` writes to stderr once it serves begins; the address follows.
pub const SERVING_LINE: &str = "timbred: serving timbre.v1 on ";

/// The URL to connect to, from a line of `timbred serve`'s stderr: `https://ADDRESS` when it
/// serves TLS, `http://ADDRESS` otherwise; `None` for any other line.
pub fn served_url(line: &str) -> Option<String> {
    let rest = line.strip_prefix(SERVING_LINE)?;
    let address = rest.split_whitespace().next()?;
    let scheme = if rest.contains("TLS on") { "https" } else { "http" };
    Some(format!("{scheme}://{address}"))
}

pub async fn run(loaded: Loaded) -> Result<(), ServeError> {
    let settings = loaded.settings.clone();
    let grace = Duration::from_secs_f64(settings.server.shutdown_grace_s);
    let mut signals = ShutdownSignals::install()?;
    // Before the "serving" line too: a SIGHUP's default action would end the daemon.
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let security = Security::load(&settings.server, settings.listen_addr())?;
    // Before binding: a second daemon on the same library is told so, not "address in use".
    let _lock = crate::library::lock::DataDirLock::acquire(&settings.library.data_dir)?;
    let listener = crate::grpc::bind(settings.listen_addr()).await?;
    let local = listener.local_addr()?;
    // Everything a client can ask about is started before the address is announced.
    let engine = Engine::start(loaded).await?;
    let plugins = engine.registry().plugins().iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ");
    let roots: Vec<String> = engine.scanner().roots().iter().map(|r| r.display().to_string()).collect();
    // Tests and supervisors read this line to learn the port when the address ends in :0
    // ([`served_url`] reads it back).
    eprintln!(
        "{SERVING_LINE}{local} ({}; plugins: {plugins}; models: {}; library: {})",
        security.describe(),
        engine.model_names().join(", "),
        if roots.is_empty() { "no roots".to_string() } else { roots.join(", ") }
    );

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut server = tokio::spawn(crate::grpc::serve(engine.clone(), listener, security, async {
        let _ = stopped.await;
    }));
    loop {
        tokio::select! {
            // Before a signal, the server only returns on a transport error.
            joined = &mut server => {
                engine.shutdown().await;
                return Ok(joined.expect("the server task does not panic")?);
            }
            _ = signals.received() => break,
            // SIGHUP: look at the model folders again, as a daemon rereads its configuration.
            Some(()) = hangup.recv() => {
                eprintln!("timbred: SIGHUP: reloading the models");
                let engine = engine.clone();
                tokio::task::spawn_blocking(move || engine.reload_models());
            }
        }
    }
    eprintln!("timbred: shutting down; calls and analyses in flight have {} s to finish", grace.as_secs_f64());
    let _ = stop.send(());
    let finish = async {
        let served = server.await;
        engine.shutdown().await;
        served
    };
    match tokio::time::timeout(grace, finish).await {
        Ok(joined) => joined.expect("the server task does not panic")?,
        Err(_) => eprintln!("timbred: still busy after {} s; exiting anyway", grace.as_secs_f64()),
    }
    eprintln!("timbred: stopped");
    Ok(())
}

/// SIGINT and SIGTERM, listened for from creation on: a signal that arrives after the
/// "serving" line is printed is never lost to the default action.
struct ShutdownSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(ShutdownSignals { interrupt: signal(SignalKind::interrupt())?, terminate: signal(SignalKind::terminate())? })
    }

    async fn received(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_serving_line_gives_the_url_to_connect_to() {
        let line =
            format!("{SERVING_LINE}127.0.0.1:4711 (plaintext on loopback; plugins: mel; models: cnn; library: /m)");
        assert_eq!(served_url(&line).as_deref(), Some("http://127.0.0.1:4711"));
        let tls = format!("{SERVING_LINE}[::]:50051 (TLS on every interface; plugins: ; models: ; library: no roots)");
        assert_eq!(served_url(&tls).as_deref(), Some("https://[::]:50051"));
        assert_eq!(served_url("timbred: loaded model cnn"), None);
    }
}
