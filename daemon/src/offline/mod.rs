//! Commands that need no server: `features`, `analyze`, `eval`, `plugins`.
//! Each processes files independently; one bad file is reported and the batch goes on.

pub mod analyze;
pub mod eval;
pub mod features;
pub mod head;
pub mod library_head;
mod metrics;
pub mod neighbours;
mod parallel;
pub mod plots;
pub mod split;
pub mod train;

pub use parallel::for_each_file;
