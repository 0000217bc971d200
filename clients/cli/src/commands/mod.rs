//! One module per command. Each takes the [`Ctx`] and its arguments, makes its calls and
//! prints through [`crate::text`] or [`crate::json`].

mod classify;
pub mod example;
pub mod health;
mod live;
mod map;
mod path;
mod playlist;
mod plugins;
mod recommend;
mod scan;
mod track;
mod tracks;

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Outcome};
use crate::flags::Command;

pub use classify::classify_request;
pub use playlist::playlist_request;
pub use recommend::{recommend_filter, recommend_request};

/// What every command needs: the connection and where output goes.
pub struct Ctx<'a> {
    /// The daemon's address, as connected to.
    pub addr: String,
    pub channel: crate::client::Connection,
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
    /// `--json`.
    pub json: bool,
    pub stderr_is_terminal: bool,
    pub catch_ctrl_c: bool,
}

impl Ctx<'_> {
    /// One JSON value on its own line.
    pub fn print_json(&mut self, value: &serde_json::Value) -> Result<(), Error> {
        writeln!(self.out, "{value}")?;
        Ok(())
    }

    /// A failure that does not stop the command: `timbre: WHAT: WHY` on stderr.
    pub fn complain(&mut self, what: &str, why: &str) {
        let _ = writeln!(self.err, "timbre: {what}: {why}");
    }
}

pub async fn run(ctx: &mut Ctx<'_>, command: Command) -> Result<Outcome, Error> {
    match command {
        Command::Health => health::run(ctx).await,
        Command::Classify(args) => classify::run(ctx, &args).await,
        Command::Scan(args) => scan::run(ctx, &args).await,
        Command::Tracks(args) => tracks::run(ctx, &args).await,
        Command::Track(args) => track::run(ctx, &args).await,
        Command::Plugins => plugins::run(ctx).await,
        Command::Live(args) => live::run(ctx, &args).await,
        Command::Recommend(args) => recommend::run(ctx, &args).await,
        Command::Playlist(args) => playlist::run(ctx, &args).await,
        Command::Path(args) => path::run(ctx, &args).await,
        Command::Map(args) => map::run(ctx, &args).await,
        Command::Generate(args) => {
            crate::generate::write::<crate::Cli>(args.what, "timbre", ctx.out)?;
            Ok(Outcome::Success)
        }
    }
}

/// Resolves on Ctrl-C when `catch` is set, never otherwise. Create it once per command and
/// poll it by reference: a fresh one could miss a Ctrl-C that came in between.
pub async fn interrupted(catch: bool) {
    if catch && tokio::signal::ctrl_c().await.is_ok() {
        return;
    }
    std::future::pending::<()>().await
}

/// `path` made absolute against the working directory (symlinks kept, no check that it
/// exists: the daemon resolves it on its side), as the UTF-8 string the proto carries.
pub fn absolute_path(path: &Path) -> Result<String, Error> {
    let absolute = std::path::absolute(path)
        .map_err(|e| Error::Local(format!("{}: cannot make absolute: {e}", path.display())))?;
    absolute
        .into_os_string()
        .into_string()
        .map_err(|p| Error::Local(format!("{}: not UTF-8, which the API cannot carry", p.to_string_lossy())))
}
