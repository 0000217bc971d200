//! Exposing `timbred`: bearer tokens, TLS (with a CA made here), the refusal to serve a
//! network openly, reflection off, and the limit on calls per connection.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use timbre_proto::v1 as pb;
use timbre_proto::v1::timbre_client::TimbreClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::ServerReflectionRequest;

use crate::serve::timbre_cli;
use crate::util::{run, runtime, text, timbred, Daemon};

const TOKEN: &str = "correct-horse-battery-staple";

/// A tokens file holding [`TOKEN`], with `mode`.
fn tokens_file(dir: &Path, mode: u32) -> PathBuf {
    let path = dir.join("tokens");
    std::fs::write(&path, format!("# the players\n{TOKEN}\n")).expect("write tokens");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    path
}

/// ListPlugins, with `authorization: Bearer TOKEN` when there is a token.
async fn list_plugins(channel: Channel, token: Option<&str>) -> Result<pb::ListPluginsResponse, tonic::Status> {
    let mut request = tonic::Request::new(pb::ListPluginsRequest {});
    if let Some(token) = token {
        request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("ascii"));
    }
    TimbreClient::new(channel).list_plugins(request).await.map(tonic::Response::into_inner)
}

async fn list_services(channel: Channel) -> Result<(), tonic::Status> {
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses =
        ServerReflectionClient::new(channel).server_reflection_info(tokio_stream::iter([request])).await?;
    responses.get_mut().message().await.map(|_| ())
}

async fn plain(addr: &str) -> Channel {
    Channel::from_shared(addr.to_string()).expect("uri").connect().await.expect("connect")
}

#[test]
fn with_tokens_every_call_but_health_needs_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = tokens_file(dir.path(), 0o600);
    let daemon = Daemon::start_with(&["--auth-token-file", tokens.to_str().expect("utf-8")], &[]);
    assert!(daemon.log().contains("TLS off; bearer tokens: 1"), "the start-up line says so: {}", daemon.log());

    runtime().block_on(async {
        let channel = plain(&daemon.addr).await;
        let status = list_plugins(channel.clone(), None).await.expect_err("no token");
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
        let status = list_plugins(channel.clone(), Some("wrong-token")).await.expect_err("wrong token");
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
        let plugins = list_plugins(channel.clone(), Some(TOKEN)).await.expect("the token is accepted");
        assert!(plugins.plugins.iter().any(|p| p.name == "mel"));
        // Reflection describes the API: it wants the token too.
        let status = list_services(channel.clone()).await.expect_err("reflection without a token");
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    });

    // Health stays open, for supervisors and load balancers.
    let health = run(timbre_cli().args(["--addr", &daemon.addr, "health"]));
    assert!(health.status.success() && text(&health.stdout).contains("SERVING"));

    let refused = run(timbre_cli().args(["--addr", &daemon.addr, "plugins"]).env_remove("TIMBRE_TOKEN"));
    assert_eq!(refused.status.code(), Some(2));
    let error = text(&refused.stderr);
    assert!(
        error.contains("UNAUTHENTICATED") && error.contains("--token") && error.contains("TIMBRE_TOKEN"),
        "{error}"
    );
    let with_flag = run(timbre_cli().args(["--addr", &daemon.addr, "--token", TOKEN, "plugins"]));
    assert!(with_flag.status.success() && text(&with_flag.stdout).contains("mel"));
    let with_env = run(timbre_cli().args(["--addr", &daemon.addr, "plugins"]).env("TIMBRE_TOKEN", TOKEN));
    assert!(with_env.status.success());
    assert!(daemon.stop().success());
}

/// A CA, and certificates it signed for 127.0.0.1 and localhost, written as PEM files.
struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client: (String, String),
}

fn make_pki(dir: &Path) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, "timbre test CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA");

    let leaf = |name: &str, usage: ExtendedKeyUsagePurpose| {
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).expect("names");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages.push(usage);
        let key = KeyPair::generate().expect("key");
        (params.signed_by(&key, &*ca).expect("signed").pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf("timbred", ExtendedKeyUsagePurpose::ServerAuth);
    let write = |name: &str, pem: &str| {
        let path = dir.join(name);
        std::fs::write(&path, pem).expect("write pem");
        path
    };
    Pki {
        ca: write("ca.pem", &ca.pem()),
        server_cert: write("server.pem", &server_cert),
        server_key: write("server.key", &server_key),
        client: leaf("a player", ExtendedKeyUsagePurpose::ClientAuth),
    }
}

async fn tls_channel(
    addr: &str,
    ca: &Path,
    identity: Option<&(String, String)>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(std::fs::read(ca).expect("ca")));
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Channel::from_shared(addr.to_string()).expect("uri").tls_config(tls)?.connect().await
}

#[test]
fn over_tls_with_a_ca_made_here() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = make_pki(dir.path());
    let tokens = tokens_file(dir.path(), 0o600);
    let config = dir.path().join("timbre.toml");
    std::fs::write(
        &config,
        format!(
            "[server.tls]\ncert = {:?}\nkey = {:?}\n[server.auth]\ntokens_file = {:?}\n",
            pki.server_cert, pki.server_key, tokens
        ),
    )
    .expect("write config");
    let daemon = Daemon::start_with(&["--config", config.to_str().expect("utf-8")], &[]);
    assert!(daemon.addr.starts_with("https://"), "{}", daemon.log());
    assert!(daemon.log().contains("TLS on; bearer tokens: 1"), "{}", daemon.log());

    runtime().block_on(async {
        let channel = tls_channel(&daemon.addr, &pki.ca, None).await.expect("a TLS connection");
        let status = list_plugins(channel.clone(), None).await.expect_err("no token");
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
        list_plugins(channel, Some(TOKEN)).await.expect("over TLS with the token");

        // Plain HTTP/2 to a TLS port gets nowhere.
        let plaintext = daemon.addr.replace("https://", "http://");
        let channel = Channel::from_shared(plaintext).expect("uri").connect().await;
        let answered = match channel {
            Ok(channel) => list_plugins(channel, Some(TOKEN)).await.is_ok(),
            Err(_) => false,
        };
        assert!(!answered, "a plaintext client must not be served");
    });

    let cli = |args: &[&str]| run(timbre_cli().args(["--addr", &daemon.addr]).args(args).env_remove("TIMBRE_TOKEN"));
    let ca = pki.ca.to_str().expect("utf-8");
    let served = cli(&["--ca-cert", ca, "--token", TOKEN, "plugins"]);
    assert!(served.status.success() && text(&served.stdout).contains("mel"), "{}", text(&served.stderr));
    // Without the CA the daemon's certificate is not trusted (the system's roots do not know it).
    let untrusted = cli(&["--token", TOKEN, "plugins"]);
    assert_eq!(untrusted.status.code(), Some(2));
    let error = text(&untrusted.stderr);
    assert!(error.contains("cannot trust timbred") && error.contains("--ca-cert"), "{error}");
    let no_token = cli(&["--ca-cert", ca, "plugins"]);
    assert_eq!(no_token.status.code(), Some(2));
    assert!(text(&no_token.stderr).contains("--token"), "{}", text(&no_token.stderr));
    assert!(daemon.stop().success());
}

#[test]
fn with_a_client_ca_only_clients_with_a_certificate_it_signed_are_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = make_pki(dir.path());
    let config = dir.path().join("timbre.toml");
    std::fs::write(
        &config,
        format!("[server.tls]\ncert = {:?}\nkey = {:?}\nclient_ca = {:?}\n", pki.server_cert, pki.server_key, pki.ca),
    )
    .expect("write config");
    let daemon = Daemon::start_with(&["--config", config.to_str().expect("utf-8")], &[]);
    assert!(daemon.log().contains("TLS on, client certificates required; bearer tokens: off"), "{}", daemon.log());
    runtime().block_on(async {
        let channel = tls_channel(&daemon.addr, &pki.ca, Some(&pki.client)).await.expect("connect");
        list_plugins(channel, None).await.expect("a client with a certificate");
        // Without one, the handshake (or, with TLS 1.3, the first call) fails.
        let refused = match tls_channel(&daemon.addr, &pki.ca, None).await {
            Ok(channel) => list_plugins(channel, None).await.is_err(),
            Err(_) => true,
        };
        assert!(refused, "a client without a certificate must not be served");
    });
    assert!(daemon.stop().success());
}

/// Runs `command`, which should stop at start-up; a daemon that serves instead is killed
/// after a generous minute (so the test fails rather than hangs).
fn refused_at_start(command: &mut std::process::Command) -> std::process::Output {
    use std::process::Stdio;
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("timbred starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().expect("kill");
            let output = child.wait_with_output().expect("wait");
            panic!("timbred served instead of refusing:\n{}", text(&output.stderr));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().expect("output");
    eprintln!("stderr:\n{}", text(&output.stderr));
    output
}

#[test]
fn a_network_address_needs_tokens_or_insecure_listen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let serve = |args: &[&str]| {
        refused_at_start(
            timbred().args(["serve", "--listen", "0.0.0.0:0", "--data-dir"]).arg(dir.path().join("data")).args(args),
        )
    };
    let refused = serve(&[]);
    assert_eq!(refused.status.code(), Some(2));
    let error = text(&refused.stderr);
    assert!(error.contains("refusing to listen on 0.0.0.0:0 without bearer tokens"), "{error}");
    assert!(error.contains("--auth-token-file") && error.contains("--insecure-listen"), "says what to do: {error}");

    // A tokens file others may read, or one without tokens, is refused, naming it.
    let open = tokens_file(dir.path(), 0o644);
    let refused = serve(&["--auth-token-file", open.to_str().expect("utf-8")]);
    assert_eq!(refused.status.code(), Some(2));
    let error = text(&refused.stderr);
    assert!(error.contains(&open.display().to_string()) && error.contains("chmod 600"), "{error}");
    let empty = dir.path().join("empty-tokens");
    std::fs::write(&empty, "\n").expect("write");
    std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let refused = serve(&["--auth-token-file", empty.to_str().expect("utf-8")]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(text(&refused.stderr).contains(&empty.display().to_string()), "{}", text(&refused.stderr));

    // Told explicitly, it serves, and says what that means.
    let daemon = Daemon::start_on("0.0.0.0:0", &["--insecure-listen"], &[]);
    assert!(daemon.log().contains("without bearer tokens (--insecure-listen)"), "{}", daemon.log());
    assert!(daemon.stop().success());
    // With tokens it needs no flag.
    let tokens = tokens_file(dir.path(), 0o600);
    let daemon = Daemon::start_on("0.0.0.0:0", &["--auth-token-file", tokens.to_str().expect("utf-8")], &[]);
    assert!(daemon.log().contains("without TLS"), "a warning about tokens in clear text: {}", daemon.log());
    assert!(daemon.stop().success());
}

#[test]
fn reflection_can_be_turned_off_and_calls_per_connection_are_limited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("timbre.toml");
    std::fs::write(&config, "[server]\nreflection = false\nmax_concurrent_streams = 1\n").expect("write config");
    let daemon = Daemon::start_with(&["--config", config.to_str().expect("utf-8")], &[]);
    runtime().block_on(async {
        let channel = plain(&daemon.addr).await;
        let status = list_services(channel.clone()).await.expect_err("no reflection");
        assert_eq!(status.code(), tonic::Code::Unimplemented, "{status:?}");

        // One ClassifyStream held open takes the connection's only stream...
        let (chunks, receiver) = tokio::sync::mpsc::channel::<pb::AudioChunk>(1);
        let stream = TimbreClient::new(channel.clone())
            .classify_stream(tokio_stream::wrappers::ReceiverStream::new(receiver))
            .await
            .expect("ClassifyStream");
        // ... so a second call on that connection waits (a bound on waiting, not a timing
        // measurement: without the limit it would be answered at once) ...
        let waiting = tokio::spawn(list_plugins(channel.clone(), None));
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(!waiting.is_finished(), "a second call was served while the only stream was taken");
        // ... while another connection is served.
        list_plugins(plain(&daemon.addr).await, None).await.expect("another connection");
        // Once the stream ends, the waiting call goes through.
        drop(chunks);
        drop(stream);
        let answered = tokio::time::timeout(Duration::from_secs(60), waiting).await;
        answered.expect("answered once the stream ended").expect("task").expect("ListPlugins");
    });
    assert!(daemon.stop().success());
}
