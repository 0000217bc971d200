//! `timbre`: talk to a running `timbred` over gRPC.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use timbre_cli::{Cli, Io};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let (mut stdout, mut stderr) = (std::io::stdout(), std::io::stderr());
    let io = Io {
        out: &mut stdout,
        err: &mut stderr,
        stderr_is_terminal: std::io::stderr().is_terminal(),
        catch_ctrl_c: true,
    };
    match timbre_cli::run(cli, io).await {
        Ok(outcome) => ExitCode::from(outcome.exit_status()),
        Err(error) => {
            if !error.is_silent() {
                let _ = writeln!(std::io::stderr(), "timbre: {error}");
            }
            ExitCode::from(error.exit_status())
        }
    }
}
