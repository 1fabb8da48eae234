//! secret-rotator: rotates AWS Secrets Manager secrets on schedule, redeploys the ECS
//! services that read them, and waits until those services really run the new value.
#![forbid(unsafe_code)]

pub mod aws;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod due;
pub mod error;
pub mod failpoints;
pub mod ha;
pub mod ids;
pub mod logging;
pub mod metrics;
pub mod rotation;
pub mod schedule;

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
