//! Command-line definitions.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Shown at the end of `secret-rotator --help`: what the exit code means.
const EXIT_CODES: &str = "\
Exit codes:
  0   ok
  1   a rotation failed, or check --remote / plan found problems
  64  command-line misuse (unknown flag, unknown secret name)
  69  AWS unreachable or no AWS credentials (nothing was changed)
  78  invalid configuration (nothing was changed)

Examples:
  secret-rotator check --config /etc/secret-rotator
  secret-rotator plan
  secret-rotator rotate api-db --dry-run
  RUST_LOG=debug secret-rotator rotate api-db";

const CHECK_HELP: &str = "\
Examples:
  secret-rotator check                       # the files only, no AWS call
  secret-rotator check --remote              # also read every secret and describe every ECS service
  secret-rotator check --config ./conf.d     # another directory

Exit codes: 0 ok, 1 a remote problem, 69 AWS unreachable / no credentials, 78 invalid configuration.";

const PLAN_HELP: &str = "\
STATUS is one of: ok, due, overdue, unreadable (see the numbered notes below the table),
outside window (the next opening is shown in UTC and in the window's time zone).

Examples:
  secret-rotator plan                  # fits 80 columns
  secret-rotator plan --wide           # every column: last rotated, overdue by, window, consumers
  secret-rotator plan --json | jq '.[] | select(.status != \"ok\")'

Exit codes: 0 ok, 1 some secret could not be read, 69 AWS unreachable / no credentials, 78 invalid configuration.";

const ROTATE_HELP: &str = "\
Examples:
  secret-rotator rotate api-db --dry-run     # read-only: what would be done
  secret-rotator rotate api-db               # rotate now, progress on stderr
  secret-rotator rotate api-db --json        # the result as JSON on stdout
  secret-rotator --log-format json rotate api-db   # progress as JSON log events only

A run that stopped half-way is resumed, never repeated: after a failed redeploy, running
the same command again redeploys without making a new value.

Exit codes: 0 rotated (or dry run), 1 the rotation failed, 64 unknown secret name,
69 AWS unreachable / no credentials, 78 invalid configuration.";

const GROUP_HELP: &str = "\
A [[group]] rotates its secrets in the listed order (dev, staging, prod): a stage starts
once the stage before it is confirmed (every consumer stable) and its soak has passed; a
failing stage halts the stages after it. Progress is read from the secrets themselves.

Examples:
  secret-rotator group api-db status           # each stage's state and expected start
  secret-rotator group api-db status --json
  secret-rotator group api-db hold --reason 'INC-42 freeze'   # no stage starts
  secret-rotator group api-db resume           # a running daemon notices within 5 minutes

The hold is a tag on the first member (secret-rotator:group-hold): every replica sees it
and a restart keeps it. A stage already in progress is finished while held (its target
may accept only the new value by then).

Exit codes: 0 ok, 1 a member could not be read or tagged, 64 unknown group,
69 AWS unreachable / no credentials, 78 invalid configuration.";

const RUN_HELP: &str = "\
Serves on [daemon] listen (default 127.0.0.1:9464):
  /metrics   Prometheus metrics (prefix secret_rotator_)
  /healthz   200 while the scheduler loop is alive
  /readyz    200 once due times are loaded and Secrets Manager answered the last check

Signals: SIGHUP reloads the configuration (an invalid new one is refused and the old one
kept; see the metric secret_rotator_config_last_reload_successful), SIGTERM/SIGINT stop gracefully
(no new rotation; rotations in flight stop at a safe point). systemd Type=notify.

Logs go to stderr; RUST_LOG filters them (default info), e.g.
  RUST_LOG=secret_rotator=debug secret-rotator run --log-format json

Examples:
  secret-rotator run --config /etc/secret-rotator

Exit codes: 0 stopped cleanly, 69 cannot start (port in use, no AWS credentials), 78 invalid configuration.";

#[derive(Debug, Parser)]
#[command(
    name = "secret-rotator",
    version,
    about = "Rotates AWS Secrets Manager secrets on schedule and redeploys the ECS services that use them",
    after_help = EXIT_CODES
)]
pub struct Cli {
    /// Directory of *.toml configuration files, read in name order.
    #[arg(long, global = true, value_name = "DIR", env = "SECRET_ROTATOR_CONFIG", default_value = crate::config::DEFAULT_DIR)]
    pub config: PathBuf,

    /// Log format: text for people, json for log pipelines (with json, `rotate` writes
    /// its progress as JSON events too).
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
    #[command(after_help = RUN_HELP)]
    Run,
    /// Validate the configuration; with --remote also resolve every secret and service.
    #[command(after_help = CHECK_HELP)]
    Check {
        /// Also check that every secret and ECS service exists, is readable and can be redeployed,
        /// and that every consumer command's programs exist and are executable.
        #[arg(long)]
        remote: bool,
    },
    /// Show when each secret was last rotated and when it is due (read-only).
    #[command(after_help = PLAN_HELP)]
    Plan {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Show every column (wider than 80 characters).
        #[arg(long)]
        wide: bool,
    },
    /// Show, hold or resume a rotation group (secrets rotated one after another).
    #[command(after_help = GROUP_HELP)]
    Group {
        /// The group's `name` in the configuration.
        name: String,
        #[command(subcommand)]
        action: GroupAction,
    },
    /// Rotate one secret now, with progress on stderr.
    #[command(after_help = ROTATE_HELP)]
    Rotate {
        /// The secret's `name` in the configuration.
        name: String,
        /// Make read calls only and print what would be done.
        #[arg(long)]
        dry_run: bool,
        /// Rotate a [[group]] stage although the group is held or it is not its turn.
        #[arg(long)]
        out_of_turn: bool,
        /// Print the result as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum GroupAction {
    /// Each stage's state, last confirmed rotation and expected start.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Stop the group: no stage starts until `resume`.
    Hold {
        /// Why, kept in the tag (letters, digits, spaces and _ . : / = + - @).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Lift a hold: the stage whose turn it is starts.
    Resume,
}
