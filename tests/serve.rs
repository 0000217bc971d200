//! `timbred serve` as a process: health, reflection, ListPlugins, clean shutdown.

use std::process::Command;

use timbre_proto::v1 as pb;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;

use crate::util::{run, target_dir, text, Daemon};

pub fn timbre_cli() -> Command {
    let binary = target_dir().join("timbre");
    assert!(binary.is_file(), "{} is missing: run `cargo build --workspace` first", binary.display());
    Command::new(binary)
}

#[test]
fn the_daemon_serves_health_plugins_and_reflection_and_stops_on_sigterm() {
    let daemon = Daemon::start();

    let health = run(timbre_cli().args(["--addr", &daemon.addr, "health"]));
    assert!(health.status.success());
    assert!(text(&health.stdout).contains("SERVING"));

    let plugins = run(timbre_cli().args(["--addr", &daemon.addr, "--json", "plugins"]));
    assert!(plugins.status.success());
    let listing: serde_json::Value = serde_json::from_slice(&plugins.stdout).expect("JSON");
    let mel = listing["plugins"].as_array().expect("plugins").iter().find(|p| p["name"] == "mel").cloned();
    assert_eq!(mel.expect("mel is served")["kind"], "PLUGIN_KIND_FEATURE");

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        // Reflection lists the services, so generic tools (grpcurl, IDEs) can call them.
        let channel =
            tonic::transport::Channel::from_shared(daemon.addr.clone()).expect("uri").connect().await.expect("connect");
        let mut reflection = ServerReflectionClient::new(channel);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut responses =
            reflection.server_reflection_info(tokio_stream::iter([request])).await.expect("reflection").into_inner();
        let response = responses.message().await.expect("stream").expect("one response");
        let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
            panic!("unexpected {response:?}")
        };
        let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
        assert!(names.contains(&"timbre.v1.Timbre") && names.contains(&"grpc.health.v1.Health"), "{names:?}");

        // A request without what it needs is refused with the field named.
        let mut client = pb::timbre_client::TimbreClient::connect(daemon.addr.clone()).await.expect("connect");
        let status = client.recommend(pb::RecommendRequest::default()).await.expect_err("no example");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().contains("positive"), "{}", status.message());
    });
    drop(runtime);

    assert!(daemon.stop().success(), "SIGTERM is a clean shutdown");
}

#[test]
fn a_client_that_never_hangs_up_does_not_keep_the_daemon_from_stopping() {
    let daemon = Daemon::start_with(&["--shutdown-grace", "1"], &[]);
    let addr = daemon.addr.trim_start_matches("http://").to_string();
    let _idle = std::net::TcpStream::connect(&addr).expect("connect");
    let status = daemon.stop();
    assert!(status.success(), "{status:?}");
}

#[test]
fn the_client_names_the_address_it_cannot_reach() {
    let output = run(timbre_cli().args(["--addr", "http://127.0.0.1:9", "health"]));
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("cannot reach timbred at http://127.0.0.1:9"));
}

#[test]
fn a_second_daemon_on_the_same_data_directory_is_refused_with_the_first_ones_pid() {
    let data = tempfile::tempdir().expect("tempdir");
    let data_dir = data.path().to_str().expect("utf-8");
    let first = Daemon::start_with(&["--data-dir", data_dir], &[]);
    let output = run(crate::util::timbred().args(["serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir]));
    assert_eq!(output.status.code(), Some(2), "refused");
    let stderr = text(&output.stderr);
    assert!(stderr.contains(&format!("another timbred (pid {})", first.child.id())), "{stderr}");
    assert!(stderr.contains(data_dir), "{stderr}");
    assert!(first.stop().success());
    // The lock goes with the process: a new daemon starts.
    assert!(Daemon::start_with(&["--data-dir", data_dir], &[]).stop().success());
}

#[test]
fn a_damaged_library_database_stops_start_up_with_the_recovery_command() {
    let data = tempfile::tempdir().expect("tempdir");
    let data_dir = data.path().to_str().expect("utf-8");
    assert!(Daemon::start_with(&["--data-dir", data_dir], &[]).stop().success());
    let database = data.path().join("library.sqlite3");
    // Scribble over every page after the header page: the schema's b-trees are garbage now.
    let mut bytes = std::fs::read(&database).expect("read");
    assert!(bytes.len() > 4096, "the library has more than its header page");
    for (i, byte) in bytes[4096..].iter_mut().enumerate() {
        *byte = (i * 7919 % 251) as u8;
    }
    std::fs::write(&database, bytes).expect("write");
    let output = run(crate::util::timbred().args(["serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir]));
    assert_eq!(output.status.code(), Some(2), "refused");
    let stderr = text(&output.stderr);
    assert!(stderr.contains("is damaged") && stderr.contains(".recover"), "{stderr}");
    assert!(stderr.contains(&database.display().to_string()), "{stderr}");
}
