//! Compiles the `timbre.*` protos into Rust (prost messages, tonic client and
//! server) and an encoded `FileDescriptorSet` for gRPC reflection.
//!
//! Parsing is done by `protox`, in pure Rust, so building needs no `protoc`.

use std::path::PathBuf;

/// Every proto file, relative to this crate's root (which is also the
/// include root, so `timbre/v1/timbre.proto` is imported under that name).
/// A new file must be added here.
const PROTOS: &[&str] = &["timbre/v1/timbre.proto"];

/// Name of the descriptor set in `OUT_DIR`; `src/lib.rs` includes it.
const DESCRIPTOR_SET: &str = "timbre_descriptor.bin";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }

    let manifest_dir = PathBuf::from(env_var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(env_var("OUT_DIR")?);

    // Source info keeps the proto comments: prost turns them into doc
    // comments, and reflection clients can show them.
    let mut compiler = protox::Compiler::new([&manifest_dir])?;
    compiler
        .include_imports(true)
        .include_source_info(true)
        .open_files(PROTOS.iter().map(|proto| manifest_dir.join(proto)))?;

    fs_err::write(out_dir.join(DESCRIPTOR_SET), compiler.encode_file_descriptor_set())?;

    tonic_prost_build::configure().build_client(true).build_server(true).compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}

fn env_var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|err| format!("{name}: {err}; run this build script through cargo"))
}
