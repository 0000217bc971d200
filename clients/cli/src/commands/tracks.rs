//! `timbre tracks`: the library's tracks, page after page, as a table or JSON lines.

use timbre_proto::v1 as pb;

use super::Ctx;
use crate::client;
use crate::error::{Error, Outcome};
use crate::flags::TracksArgs;
use crate::{json, text};

pub async fn run(ctx: &mut Ctx<'_>, args: &TracksArgs) -> Result<Outcome, Error> {
    let mut client = client::timbre(ctx.channel.clone());
    let mut request = list_request(args);
    let mut table = Vec::new();
    let mut shown = 0u64;
    let (total, more) = loop {
        let page = client.list_tracks(request.clone()).await?.into_inner();
        shown += page.tracks.len() as u64;
        if ctx.json {
            // Streamed page by page: a big library needs no memory here.
            for track in &page.tracks {
                ctx.print_json(&json::track(track))?;
            }
        } else {
            // The table's columns fit its widest cell, so it waits for every row.
            table.extend(page.tracks);
        }
        if page.next_page_token.is_empty() || !args.every_page() {
            break (page.total, !page.next_page_token.is_empty());
        }
        if page.next_page_token == request.page_token {
            return Err(Error::Incomplete(format!(
                "the daemon sent page token {:?} twice; stopping after {shown} tracks",
                page.next_page_token
            )));
        }
        request.page_token = page.next_page_token;
    };
    if !ctx.json {
        if table.is_empty() {
            let _ = writeln!(ctx.err, "timbre: no tracks{}", if filtered(args) { " match" } else { " in the library" });
        } else {
            write!(ctx.out, "{}", text::tracks_table(&table, args.model.as_deref()))?;
        }
    }
    if more {
        let _ = writeln!(ctx.err, "timbre: showed {shown} of {total} tracks; --all fetches every page");
    }
    Ok(Outcome::Success)
}

/// The first page's request; the filters stay the same on every page, as the proto asks.
pub fn list_request(args: &TracksArgs) -> pb::ListTracksRequest {
    pb::ListTracksRequest {
        page_size: args.page_size.unwrap_or(0),
        page_token: String::new(),
        genre: args.genre.clone().unwrap_or_default(),
        model: args.model.clone().unwrap_or_default(),
        label: args.label.clone().unwrap_or_default(),
        bpm: args.bpm.map(|(min, max)| pb::BpmRange { min, max, octaves: args.bpm_octaves }),
        embedding_model: String::new(),
    }
}

fn filtered(args: &TracksArgs) -> bool {
    args.genre.is_some() || args.model.is_some() || args.label.is_some() || args.bpm.is_some()
}
