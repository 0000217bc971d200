//! Who may talk to the daemon, and how: TLS, bearer tokens, and the refusal to serve a
//! network openly. Everything is read and checked before the address is bound.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use super::auth::{Authenticator, Tokens, TokensError};
use crate::config::ServerSettings;

/// A TLS handshake that takes longer is dropped, so a silent client cannot hold a connection.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error(
        "refusing to listen on {addr} without bearer tokens: anyone who can reach that address could call \
         every RPC (read and rescan the library, upload audio). Give tokens with --auth-token-file FILE \
         (server.auth.tokens_file), listen on a loopback address such as 127.0.0.1, or pass \
         --insecure-listen (server.insecure_listen = true) if every host that can reach it is trusted"
    )]
    Exposed { addr: SocketAddr },
    #[error(transparent)]
    Tokens(#[from] TokensError),
    #[error("{key} {}: {source}", path.display())]
    Read { key: &'static str, path: PathBuf, source: std::io::Error },
    #[error("TLS with server.tls.cert {} and server.tls.key {}: {reason}", cert.display(), key.display())]
    Tls { cert: PathBuf, key: PathBuf, reason: String },
}

/// What `serve` needs to apply the configured security.
pub struct Security {
    pub(super) tls: Option<ServerTlsConfig>,
    client_certificates: bool,
    pub(super) tokens: Option<Arc<Tokens>>,
}

impl Security {
    /// Reads the certificates and the tokens file, and refuses a non-loopback address without
    /// tokens unless `server.insecure_listen` says so.
    pub fn load(server: &ServerSettings, addr: SocketAddr) -> Result<Security, SecurityError> {
        let tokens = if server.auth.enabled() { Some(Arc::new(Tokens::load(&server.auth.tokens_file)?)) } else { None };
        let exposed = !addr.ip().is_loopback();
        if exposed && tokens.is_none() {
            if !server.insecure_listen {
                return Err(SecurityError::Exposed { addr });
            }
            tracing::warn!(
                "serving {addr} without bearer tokens (--insecure-listen): anyone who can reach it can call every RPC"
            );
        }
        if exposed && tokens.is_some() && !server.tls.enabled() {
            tracing::warn!("serving {addr} without TLS: bearer tokens cross the network in clear text");
        }
        let tls = &server.tls;
        let tls_config = if tls.enabled() {
            let identity = Identity::from_pem(read("server.tls.cert", &tls.cert)?, read("server.tls.key", &tls.key)?);
            let mut config = ServerTlsConfig::new().identity(identity).timeout(TLS_HANDSHAKE_TIMEOUT);
            if !tls.client_ca.as_os_str().is_empty() {
                config = config.client_ca_root(Certificate::from_pem(read("server.tls.client_ca", &tls.client_ca)?));
            }
            // Built once here so a bad certificate or key fails start-up with the files named.
            tonic::transport::Server::builder().tls_config(config.clone()).map_err(|e| SecurityError::Tls {
                cert: tls.cert.clone(),
                key: tls.key.clone(),
                reason: chain(&e),
            })?;
            Some(config)
        } else {
            None
        };
        Ok(Security { tls: tls_config, client_certificates: !tls.client_ca.as_os_str().is_empty(), tokens })
    }

    pub(super) fn authenticator(&self) -> Authenticator {
        Authenticator::new(self.tokens.clone())
    }

    /// For the start-up line: "TLS on, client certificates required; bearer tokens: 2".
    pub fn describe(&self) -> String {
        let tls = match (&self.tls, self.client_certificates) {
            (None, _) => "TLS off",
            (Some(_), false) => "TLS on",
            (Some(_), true) => "TLS on, client certificates required",
        };
        match &self.tokens {
            Some(tokens) => format!("{tls}; bearer tokens: {}", tokens.len()),
            None => format!("{tls}; bearer tokens: off"),
        }
    }
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, SecurityError> {
    std::fs::read(path).map_err(|source| SecurityError::Read { key, path: path.to_path_buf(), source })
}

/// An error and its sources, joined by ": " (tonic's own message is only "transport error").
fn chain(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        parts.push(cause.to_string());
        source = cause.source();
    }
    parts.join(": ")
}
