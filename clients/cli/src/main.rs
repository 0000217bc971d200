//! `timbre`: talk to a running `timbred` over gRPC.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use timbre_proto::v1 as pb;
use timbre_proto::v1::timbre_client::TimbreClient;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// timbre: ask a running timbred what your music sounds like.
#[derive(Debug, Parser)]
#[command(name = "timbre", version, max_term_width = 100)]
struct Cli {
    /// Address of the daemon.
    #[arg(long, global = true, env = "TIMBRE_ADDR", default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check that the daemon is up and serving (exit 0 when it is).
    Health,
    /// List the daemon's plugins, and any it refused with the reason.
    Plugins,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("timbre: {error:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<bool> {
    let channel = Channel::from_shared(cli.addr.clone())
        .with_context(|| format!("invalid --addr {}", cli.addr))?
        .connect()
        .await
        .with_context(|| format!("cannot reach timbred at {} (is `timbred serve` running?)", cli.addr))?;
    match cli.command {
        Command::Health => {
            let request = HealthCheckRequest { service: "timbre.v1.Timbre".into() };
            let status =
                HealthClient::new(channel).check(request).await.context("health check failed")?.into_inner().status();
            let serving = status == ServingStatus::Serving;
            if cli.json {
                println!("{}", serde_json::json!({ "addr": cli.addr, "status": status.as_str_name() }));
            } else {
                println!("{}: {}", cli.addr, status.as_str_name());
            }
            Ok(serving)
        }
        Command::Plugins => {
            let response = TimbreClient::new(channel).list_plugins(pb::ListPluginsRequest {}).await?.into_inner();
            if cli.json {
                let plugins: Vec<_> = response
                    .plugins
                    .iter()
                    .map(|p| {
                        serde_json::json!({
                            "name": p.name, "kind": p.kind().as_str_name(), "version": p.version,
                            "abi": format!("{}.{}", p.abi_major, p.abi_minor), "file": p.file,
                        })
                    })
                    .collect();
                let refused: Vec<_> = response
                    .refused
                    .iter()
                    .map(|r| serde_json::json!({ "file": r.file, "reason": r.reason }))
                    .collect();
                println!("{}", serde_json::json!({ "plugins": plugins, "refused": refused }));
            } else {
                for p in &response.plugins {
                    println!(
                        "{:<12} {:<24} {:<8} abi {}.{}  {}",
                        p.name,
                        p.kind().as_str_name(),
                        p.version,
                        p.abi_major,
                        p.abi_minor,
                        p.file
                    );
                }
                for r in &response.refused {
                    println!("refused      {}: {}", r.file, r.reason);
                }
            }
            Ok(true)
        }
    }
}
