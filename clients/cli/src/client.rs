//! The connection to the daemon: plain or TLS, with the bearer token on every call.

use std::path::Path;
use std::time::Duration;

use timbre_proto::v1::timbre_client::TimbreClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::error::{chain, Error};

/// The connection every command talks through.
pub type Connection = InterceptedService<Channel, BearerToken>;

/// The `timbre.v1.Timbre` client on a [`Connection`].
pub type Client = TimbreClient<Connection>;

/// Adds `authorization: Bearer <token>` to every call when there is a token.
#[derive(Clone, Default)]
pub struct BearerToken(Option<MetadataValue<Ascii>>);

impl BearerToken {
    /// `--token` / TIMBRE_TOKEN as metadata; the value is marked sensitive, so it stays out of
    /// HTTP/2 debug logs.
    pub fn new(token: Option<&str>) -> Result<BearerToken, Error> {
        let Some(token) = token.map(str::trim) else {
            return Ok(BearerToken(None));
        };
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::Local(
                "--token (TIMBRE_TOKEN): a token is printable ASCII without spaces (it travels in an HTTP header)"
                    .into(),
            ));
        }
        let mut value: MetadataValue<Ascii> =
            format!("Bearer {token}").parse().expect("printable ASCII is a valid metadata value");
        value.set_sensitive(true);
        Ok(BearerToken(Some(value)))
    }
}

impl tonic::service::Interceptor for BearerToken {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// Largest reply accepted (tonic's default is 4 MiB): a long file's per-segment predictions
/// or a big page of tracks can exceed that.
const MAX_REPLY_BYTES: usize = 64 << 20;

/// `--addr` as a URL: a bare `host:port` means `http://host:port`.
pub fn normalize_addr(addr: &str) -> String {
    let addr = addr.trim();
    if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

/// Connects to the daemon at `addr` (already normalized), failing fast when nothing listens.
/// An `https://` address is TLS, trusting `ca_cert` (PEM) when given, else the system's roots.
pub async fn connect(addr: &str, token: BearerToken, ca_cert: Option<&Path>) -> Result<Connection, Error> {
    let mut endpoint = Endpoint::from_shared(addr.to_string())
        .map_err(|e| Error::InvalidAddr { addr: addr.to_string(), reason: chain(&e) })?
        .connect_timeout(Duration::from_secs(10));
    if addr.starts_with("https://") {
        let tls = match ca_cert {
            Some(file) => {
                let pem =
                    std::fs::read(file).map_err(|e| Error::Local(format!("--ca-cert {}: {e}", file.display())))?;
                ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem))
            }
            None => ClientTlsConfig::new().with_native_roots(),
        };
        let shown = ca_cert.map_or("the system's roots".to_string(), |f| format!("--ca-cert {}", f.display()));
        endpoint = endpoint.tls_config(tls).map_err(|e| Error::Local(format!("TLS with {shown}: {}", chain(&e))))?;
    } else if ca_cert.is_some() {
        return Err(Error::Local(format!("--ca-cert is for TLS: give an https:// --addr (not {addr})")));
    }
    let channel = endpoint.connect().await.map_err(|e| {
        let (addr, reason) = (addr.to_string(), chain(&e));
        // rustls says "invalid peer certificate: UnknownIssuer" and the like.
        if reason.contains("peer certificate") {
            Error::Untrusted { addr, reason }
        } else {
            Error::Unreachable { addr, reason }
        }
    })?;
    Ok(InterceptedService::new(channel, token))
}

/// The `timbre.v1.Timbre` client on `connection`. Requests have no size limit here: the
/// daemon enforces its own and answers with a status naming it.
pub fn timbre(connection: Connection) -> Client {
    TimbreClient::new(connection).max_decoding_message_size(MAX_REPLY_BYTES).max_encoding_message_size(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_host_port_means_http() {
        assert_eq!(normalize_addr("127.0.0.1:50051"), "http://127.0.0.1:50051");
        assert_eq!(normalize_addr(" http://h:1 "), "http://h:1");
        assert_eq!(normalize_addr("https://h:443"), "https://h:443");
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable_and_named() {
        // A port that was free a moment ago: nothing listens there now.
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port());
        let addr = format!("http://127.0.0.1:{}", port.expect("a free port"));
        let error = connect(&addr, BearerToken::default(), None).await.expect_err("nothing listens");
        let text = error.to_string();
        assert!(matches!(error, Error::Unreachable { .. }), "{error:?}");
        assert!(text.starts_with(&format!("cannot reach timbred at {addr}: ")), "{text}");
        assert!(text.to_lowercase().contains("refused"), "says why: {text}");
        assert!(text.ends_with("(is it running? start it with `timbred serve`)"), "{text}");
        assert_eq!(error.exit_status(), 2);
    }

    #[tokio::test]
    async fn a_malformed_addr_is_named() {
        let error = connect("http://exa mple:1", BearerToken::default(), None).await.expect_err("not a URL");
        assert!(matches!(error, Error::InvalidAddr { .. }), "{error:?}");
        assert!(error.to_string().starts_with("invalid --addr http://exa mple:1: "), "{error}");
    }

    #[test]
    fn a_token_is_sent_as_bearer_metadata_and_checked_first() {
        use tonic::service::Interceptor;
        let mut token = BearerToken::new(Some(" s3cret ")).expect("a good token");
        let request = token.call(tonic::Request::new(())).expect("passes");
        assert_eq!(request.metadata().get("authorization").expect("set"), "Bearer s3cret");
        let request = BearerToken::default().call(tonic::Request::new(())).expect("passes");
        assert!(request.metadata().get("authorization").is_none());
        for bad in ["", "two words", "caf\u{e9}"] {
            let error = BearerToken::new(Some(bad)).err().expect("refused");
            assert!(error.to_string().starts_with("--token"), "{error}");
        }
    }

    #[tokio::test]
    async fn a_ca_certificate_needs_an_https_address() {
        let error = connect("http://127.0.0.1:9", BearerToken::default(), Some(Path::new("ca.pem")))
            .await
            .expect_err("plain http");
        assert!(error.to_string().contains("https://"), "{error}");
        let error = connect("https://127.0.0.1:9", BearerToken::default(), Some(Path::new("/no/such/ca.pem")))
            .await
            .expect_err("no file");
        assert!(error.to_string().contains("/no/such/ca.pem"), "{error}");
    }
}
