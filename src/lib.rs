//! secret-rotator: rotates AWS Secrets Manager secrets on schedule, redeploys the ECS
//! services that read them, and waits until those services really run the new value.
//!
//! This crate is the binary's side: the AWS adapters (`aws`), the target kinds
//! (`targets`, one folder each), the operator programs they and the consumer commands run
//! (`process`), the CLI and its commands, the daemon's process wiring
//! (signals, HTTP, systemd), logging and Prometheus metrics. What to do and when lives in
//! `rotator-core`, re-exported below under the same paths (`config` adds `load_dir` with
//! every target kind of this binary).
// Unsafe only for the one allocator call of `daemon::memory` (allowed there alone).
#![deny(unsafe_code)]

pub mod aws;
pub mod cli;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod ha;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod process;
pub mod stores;
pub mod targets;

pub use rotator_core::{clock, due, error, failpoints, ids, random, rotation, schedule, telemetry};

/// Process exit codes (sysexits.h where one fits).
pub mod exit {
    pub const OK: i32 = 0;
    /// A rotation failed, or `check --remote` found problems.
    pub const FAILURE: i32 = 1;
    /// Command-line misuse.
    pub const USAGE: i32 = 64;
    /// AWS could not be reached or credentials are missing.
    pub const UNAVAILABLE: i32 = 69;
    /// The configuration is invalid.
    pub const CONFIG: i32 = 78;
}
