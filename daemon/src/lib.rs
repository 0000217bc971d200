//! timbre's engine. The `timbred` binary is a thin layer of flags over this library,
//! and the tests and benchmarks link it directly.
//!
//! Data flows through the modules in this order:
//! [`pipeline`] (decode → resample → segment → features, via plugins from
//! [`plugin_host`]) and out through [`offline`] commands; [`sources`] turns live capture
//! devices and network streams into blocks of PCM.

pub mod camelot;
pub mod catalogue;
pub mod config;
pub mod engine;
pub mod grpc;
pub mod index;
pub mod library;
pub mod live;
pub mod logging;
pub mod models;
pub mod npy;
pub mod offline;
pub mod pipeline;
pub mod plugin_host;
pub mod recommend;
pub mod serve;
pub mod sources;
pub mod tagging;
pub mod workers;
