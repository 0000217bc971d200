//! An HTTP (Icecast) stream, decoded by symphonia as the bytes arrive. A dropped connection,
//! a stall or the end of the body ends the run; the supervisor in `mod.rs` reconnects.

use std::time::Duration;

use symphonia::core::io::ReadOnlySource;
use symphonia::core::formats::probe::Hint;

use super::{Output, PcmBlock, SourceError};
use crate::pipeline::Decoder;

/// A server that sends nothing for this long is treated as gone.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Checked when the config is read, so a bad URL is a config error rather than endless retries.
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    if url.starts_with("https://") {
        return Err(format!("{url}: https is not supported (this build has no TLS); use the stream's http:// URL"));
    }
    let uri: ureq::http::Uri = url.parse().map_err(|e| format!("{url}: not a valid URL: {e}"))?;
    if uri.scheme_str() != Some("http") || uri.host().is_none() {
        return Err(format!("{url}: expected an http://host/… URL"));
    }
    Ok(())
}

pub(super) fn run(name: &str, url: &str, out: &Output) -> Result<(), SourceError> {
    let http_error = |reason: String| SourceError::Http { url: url.to_string(), reason };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_recv_response(Some(READ_TIMEOUT))
        .timeout_per_read(Some(READ_TIMEOUT))
        .build()
        .into();
    // Icecast interleaves song titles into the audio unless told not to.
    let response = agent.get(url).header("Icy-MetaData", "0").call().map_err(|e| http_error(e.to_string()))?;
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = response.into_body().into_reader();
    let hint = hint(content_type.as_deref(), url);
    let mut decoder = Decoder::from_stream(url, Box::new(ReadOnlySource::new(body)), hint)?;
    tracing::info!(
        source = %name,
        "live source \"{name}\": streaming {url} ({}, {})",
        content_type.as_deref().unwrap_or("no Content-Type"),
        decoder.info().codec
    );
    while !out.stopped() {
        let Some(samples) = decoder.next_mono()? else {
            return Err(SourceError::Ended { url: url.to_string() });
        };
        let sample_rate = decoder.info().sample_rate;
        if !out.send(PcmBlock { samples, sample_rate }) {
            break;
        }
    }
    Ok(())
}

/// A format hint from the Content-Type (Icecast always sends one), else the URL's extension.
/// The content still decides: the hint only orders symphonia's guesses.
fn hint(content_type: Option<&str>, url: &str) -> Hint {
    let mut hint = Hint::new();
    let mime = content_type.map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    let extension = match mime.as_deref() {
        Some("audio/mpeg" | "audio/mp3" | "audio/mpeg3" | "audio/x-mpeg") => Some("mp3"),
        Some("audio/ogg" | "application/ogg" | "audio/vorbis" | "audio/x-vorbis+ogg") => Some("ogg"),
        Some("audio/aac" | "audio/aacp" | "audio/x-aac" | "audio/x-hx-aac-adts") => Some("aac"),
        Some("audio/flac" | "audio/x-flac") => Some("flac"),
        Some("audio/wav" | "audio/x-wav" | "audio/wave") => Some("wav"),
        _ => None,
    };
    if let Some(mime) = &mime {
        hint.mime_type(mime);
    }
    let from_url = || {
        let path = url.split(['?', '#']).next().unwrap_or(url);
        path.rsplit_once('.').map(|(_, ext)| ext).filter(|ext| !ext.contains('/'))
    };
    if let Some(extension) = extension.or_else(from_url) {
        hint.with_extension(extension);
    }
    hint
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_urls_are_accepted() {
        assert!(check_url("http://127.0.0.1:8000/stream.mp3").is_ok());
        assert!(check_url("https://radio.example/stream").expect_err("https").contains("no TLS"));
        assert!(check_url("ftp://radio.example/a.mp3").expect_err("ftp").contains("http://host"));
        assert!(check_url("radio.example/a.mp3").is_err());
        assert!(check_url("http://").is_err());
    }
}
