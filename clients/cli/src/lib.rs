//! `timbre`, the command-line client of `timbred`: the command line ([`flags`]), one module
//! per command ([`commands`]), and their output as text ([`text`]) or JSON ([`json`]).
//!
//! `main.rs` only parses the command line, calls [`run`] and turns its result into an exit
//! status, so everything here runs in tests against an in-process server.

pub mod client;
pub mod commands;
pub mod error;
pub mod flags;
pub mod generate;
pub mod json;
pub mod m3u;
pub mod progress;
pub mod text;

use std::io::Write;

pub use error::{Error, Outcome};
pub use flags::Cli;

/// Where a command's output goes, and what it may assume about the terminal.
pub struct Io<'a> {
    /// Results: text or JSON lines.
    pub out: &'a mut dyn Write,
    /// Progress and per-item failures.
    pub err: &'a mut dyn Write,
    /// Whether stderr is a terminal (progress bars) or a file or pipe (plain lines).
    pub stderr_is_terminal: bool,
    /// Whether Ctrl-C ends `scan` and `live` cleanly; off in tests.
    pub catch_ctrl_c: bool,
}

/// Connects to the daemon and runs the command.
pub async fn run(cli: Cli, io: Io<'_>) -> Result<Outcome, Error> {
    // Completions and the man page need no daemon: answer before connecting.
    if let flags::Command::Generate(args) = &cli.command {
        generate::write::<Cli>(args.what, "timbre", io.out)?;
        return Ok(Outcome::Success);
    }
    let addr = client::normalize_addr(&cli.addr);
    let token = client::BearerToken::new(cli.token.as_deref())?;
    let channel = client::connect(&addr, token, cli.ca_cert.as_deref()).await?;
    let mut ctx = commands::Ctx {
        addr: addr.clone(),
        channel,
        out: io.out,
        err: io.err,
        json: cli.json,
        stderr_is_terminal: io.stderr_is_terminal,
        catch_ctrl_c: io.catch_ctrl_c,
    };
    let outcome = commands::run(&mut ctx, cli.command).await.map_err(|e| e.with_addr(&addr))?;
    ctx.out.flush()?;
    Ok(outcome)
}
