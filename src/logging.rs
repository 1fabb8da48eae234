//! tracing-subscriber set-up: text for people, JSON for machines, RUST_LOG to filter.
//!
//! Field names are one vocabulary across logs, metrics and JSON output: `secret` (the
//! configured name), `secret_id`, `cluster` and `service` (separate, as in the metrics),
//! `step`, `version` (always the new version), `outcome` (the metric's values) and
//! durations as numbers of seconds (`*_seconds`).

use crate::cli::LogFormat;
use tracing_subscriber::EnvFilter;

/// The AWS SDK's own logs: its credential chain alone writes kilobytes of warnings when no
/// credentials exist, before the one line that matters (which we print ourselves). They
/// stay available through RUST_LOG (e.g. `RUST_LOG=aws_config=debug`).
const SDK_QUIET: &str = "aws_config=off,aws_smithy_runtime=off,aws_smithy_runtime_api=off,\
aws_smithy_http_client=off,aws_sdk_secretsmanager=error,aws_sdk_ecs=error,aws_sdk_iam=error,\
aws_sdk_sts=error,hyper=off,hyper_util=off,rustls=off";

/// The filter used when RUST_LOG is not set: `default_level` for everything we log, the
/// SDK quiet.
pub fn default_filter(default_level: &str) -> String {
    format!("{default_level},{SDK_QUIET}")
}

pub fn init(format: LogFormat, default_level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(default_filter(default_level)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => {
            use std::io::IsTerminal;
            builder
                .with_ansi(std::io::stderr().is_terminal())
                .try_init()
        }
    };
}
