//! `timbre plugins`: the plugins the daemon loaded and those it refused.

use timbre_proto::v1 as pb;

use super::Ctx;
use crate::client;
use crate::error::{Error, Outcome};
use crate::{json, text};

pub async fn run(ctx: &mut Ctx<'_>) -> Result<Outcome, Error> {
    let response = client::timbre(ctx.channel.clone()).list_plugins(pb::ListPluginsRequest {}).await?.into_inner();
    if ctx.json {
        ctx.print_json(&json::plugins(&response))?;
    } else {
        write!(ctx.out, "{}", text::plugins(&response))?;
    }
    Ok(Outcome::Success)
}
