//! The connection to the daemon.

use std::time::Duration;

use timbre_proto::v1::timbre_client::TimbreClient;
use tonic::transport::{Channel, Endpoint};

use crate::error::{chain, Error};

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
pub async fn connect(addr: &str) -> Result<Channel, Error> {
    let endpoint = Endpoint::from_shared(addr.to_string())
        .map_err(|e| Error::InvalidAddr { addr: addr.to_string(), reason: chain(&e) })?
        .connect_timeout(Duration::from_secs(10));
    endpoint.connect().await.map_err(|e| Error::Unreachable { addr: addr.to_string(), reason: chain(&e) })
}

/// The `timbre.v1.Timbre` client on `channel`. Requests have no size limit here: the daemon
/// enforces its own and answers with a status naming it.
pub fn timbre(channel: Channel) -> TimbreClient<Channel> {
    TimbreClient::new(channel).max_decoding_message_size(MAX_REPLY_BYTES).max_encoding_message_size(usize::MAX)
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
        let error = connect(&addr).await.expect_err("nothing listens");
        let text = error.to_string();
        assert!(matches!(error, Error::Unreachable { .. }), "{error:?}");
        assert!(text.starts_with(&format!("cannot reach timbred at {addr}: ")), "{text}");
        assert!(text.to_lowercase().contains("refused"), "says why: {text}");
        assert!(text.ends_with("(is it running? start it with `timbred serve`)"), "{text}");
        assert_eq!(error.exit_status(), 2);
    }

    #[tokio::test]
    async fn a_malformed_addr_is_named() {
        let error = connect("http://exa mple:1").await.expect_err("not a URL");
        assert!(matches!(error, Error::InvalidAddr { .. }), "{error:?}");
        assert!(error.to_string().starts_with("invalid --addr http://exa mple:1: "), "{error}");
    }
}
