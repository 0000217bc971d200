//! The gRPC API of timbre, the audio analysis daemon: the Rust code generated
//! from `proto/timbre/v1/*.proto` (prost messages plus tonic client and
//! server), and the encoded descriptor set for gRPC reflection.
//!
//! This crate holds definitions only. The daemon's `grpc` module implements
//! [`v1::timbre_server::Timbre`]; clients use [`v1::timbre_client::TimbreClient`].
//! A breaking change to the API goes into a new `v2` module and package.

/// Package `timbre.v1`: the `Timbre` service and its messages.
pub mod v1 {
    tonic::include_proto!("timbre.v1");
}

/// The encoded `google.protobuf.FileDescriptorSet` of every `timbre.*` proto,
/// with comments, for registering with `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("timbre_descriptor");

#[cfg(test)]
mod tests {
    use prost::Message as _;
    use prost_types::{FileDescriptorSet, MethodDescriptorProto, ServiceDescriptorProto};

    use super::FILE_DESCRIPTOR_SET;

    fn timbre_service() -> ServiceDescriptorProto {
        let set = FileDescriptorSet::decode(FILE_DESCRIPTOR_SET)
            .expect("FILE_DESCRIPTOR_SET should decode as a FileDescriptorSet");
        set.file
            .into_iter()
            .filter(|file| file.package() == "timbre.v1")
            .flat_map(|file| file.service)
            .find(|service| service.name() == "Timbre")
            .expect("the descriptor set should hold service timbre.v1.Timbre")
    }

    fn method<'a>(service: &'a ServiceDescriptorProto, name: &str) -> Option<&'a MethodDescriptorProto> {
        service.method.iter().find(|method| method.name() == name)
    }

    /// Removing or renaming a method breaks every client: it needs a `v2`.
    #[test]
    fn timbre_service_keeps_its_methods() {
        let service = timbre_service();
        let missing: Vec<&str> = [
            "Classify",
            "ClassifyStream",
            "Recommend",
            "Playlist",
            "Scan",
            "GetTrack",
            "ListTracks",
            "ListPlugins",
            "WatchLive",
        ]
        .into_iter()
        .filter(|name| method(&service, name).is_none())
        .collect();
        assert!(missing.is_empty(), "timbre.v1.Timbre lacks methods {missing:?}");
    }

    /// Changing whether a method streams is as breaking as removing it.
    #[test]
    fn timbre_service_keeps_its_streaming_shape() {
        let service = timbre_service();
        for (name, client_streaming, server_streaming) in [
            ("Classify", false, false),
            ("ClassifyStream", true, true),
            ("Recommend", false, false),
            ("Playlist", false, false),
            ("Scan", false, true),
            ("GetTrack", false, false),
            ("ListTracks", false, false),
            ("ListPlugins", false, false),
            ("WatchLive", false, true),
        ] {
            let Some(method) = method(&service, name) else {
                continue; // reported by `timbre_service_keeps_its_methods`
            };
            assert_eq!(
                (method.client_streaming(), method.server_streaming()),
                (client_streaming, server_streaming),
                "timbre.v1.Timbre/{name}: (client_streaming, server_streaming)"
            );
        }
    }

    /// Reflection clients show the proto comments only if source info is kept.
    #[test]
    fn descriptor_set_keeps_comments() {
        let set = FileDescriptorSet::decode(FILE_DESCRIPTOR_SET)
            .expect("FILE_DESCRIPTOR_SET should decode as a FileDescriptorSet");
        let file = set
            .file
            .iter()
            .find(|file| file.name() == "timbre/v1/timbre.proto")
            .expect("the descriptor set should hold timbre/v1/timbre.proto");
        assert!(file.source_code_info.is_some(), "timbre/v1/timbre.proto lost its source info");
    }
}
