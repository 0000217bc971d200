//! End-to-end tests: the real `timbred` binary and real plugin libraries.
//! One test binary (ripgrep's layout), declared in daemon/Cargo.toml as `e2e`.

mod util;

mod auth;
mod classify;
mod cli;
mod client;
mod decode;
mod descriptors;
mod examples;
mod hostile;
mod learn;
mod library;
mod mixing;
mod live;
mod models;
mod plugins;
mod recommend;
mod serve;
mod sources;
