//! Conversions between engine types and `timbre.v1` messages, all in one place.

use timbre_proto::v1 as pb;

use crate::offline::plugins::PluginListing;
use crate::plugin_host::PluginKind;

impl From<PluginListing> for pb::ListPluginsResponse {
    fn from(listing: PluginListing) -> Self {
        pb::ListPluginsResponse {
            plugins: listing
                .plugins
                .into_iter()
                .map(|p| pb::PluginInfo {
                    kind: pb::PluginKind::from(p.kind) as i32,
                    name: p.name,
                    version: p.version,
                    abi_major: p.abi_major,
                    abi_minor: p.abi_minor,
                    file: p.file,
                    metadata_json: p.metadata.to_string(),
                })
                .collect(),
            refused: listing
                .refused
                .into_iter()
                .map(|r| pb::RefusedPlugin { file: r.file, reason: r.reason })
                .collect(),
        }
    }
}

impl From<PluginKind> for pb::PluginKind {
    fn from(kind: PluginKind) -> Self {
        match kind {
            PluginKind::Feature => pb::PluginKind::Feature,
            PluginKind::Classifier => pb::PluginKind::Classifier,
        }
    }
}
