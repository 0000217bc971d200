//! Commands that need no server: `features`, `analyze`, `plugins`.
//! Each processes files independently; one bad file is reported and the batch goes on.

pub mod analyze;
pub mod features;
mod parallel;
pub mod plugins;

pub use parallel::for_each_file;
