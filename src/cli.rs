//! Command-line definitions.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "secret-rotator",
    version,
    about = "Rotates AWS Secrets Manager secrets on schedule and redeploys the ECS services that use them"
)]
pub struct Cli {
    /// Directory of *.toml configuration files, read in name order.
    #[arg(long, global = true, env = "SECRET_ROTATOR_CONFIG", default_value = crate::config::DEFAULT_DIR)]
    pub config: PathBuf,

    /// Log format: text for people, json for log pipelines.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: rotate every secret when due, until stopped.
    Run,
    /// Validate the configuration; with --remote also resolve every secret and service.
    Check {
        /// Also check that every secret and ECS service exists, is readable and can be redeployed.
        #[arg(long)]
        remote: bool,
    },
    /// Show when each secret was last rotated and when it is due (read-only).
    Plan {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Rotate one secret now, with progress on stderr.
    Rotate {
        /// The secret's `name` in the configuration.
        name: String,
        /// Make read calls only and print what would be done.
        #[arg(long)]
        dry_run: bool,
        /// Print the result as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}
