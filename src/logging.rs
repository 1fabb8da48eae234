//! tracing-subscriber set-up: text for people, JSON for machines, RUST_LOG to filter.
//!
//! Field names are one vocabulary across logs, metrics and JSON output: `secret` (the
//! configured name), `secret_id`, `cluster` and `service` (separate, as in the metrics),
//! `step`, `version` (always the new version), `outcome` (the metric's values) and
//! durations as numbers of seconds (`*_seconds`).
//!
//! Libraries that log through `log` (tokio-postgres) are bridged in (tracing-log), but
//! tokio-postgres's debug records quote whole statements, `ALTER ROLE ... PASSWORD
//! 'SCRAM-SHA-256$...'` included: they are dropped above INFO whatever RUST_LOG says.

use crate::cli::LogFormat;
use tracing::Level;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
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

/// Targets whose records above INFO may quote secret material.
const QUIET_ABOVE_INFO: &[&str] = &["tokio_postgres"];

fn may_quote_secrets(m: &tracing::Metadata<'_>) -> bool {
    *m.level() > Level::INFO
        && QUIET_ABOVE_INFO
            .iter()
            .any(|t| m.target() == *t || m.target().starts_with(&format!("{t}::")))
}

/// The rotation core logs under its crate's name (`rotator_core::...`): every directive
/// for `secret_rotator` (RUST_LOG or the default) applies to the core too, so
/// `RUST_LOG=secret_rotator=debug` shows the whole program as it always did.
fn with_core_alias(directives: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for d in directives
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        out.push(d.to_owned());
        if let Some(rest) = d.strip_prefix("secret_rotator") {
            if rest.is_empty()
                || rest.starts_with("::")
                || rest.starts_with('=')
                || rest.starts_with('[')
            {
                out.push(format!("rotator_core{rest}"));
            }
        }
    }
    out.join(",")
}

pub fn init(format: LogFormat, default_level: &str) {
    let directives = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default_filter(default_level));
    let filter = EnvFilter::try_new(with_core_alias(&directives))
        .unwrap_or_else(|_| EnvFilter::new(default_filter(default_level)));
    let quiet = filter_fn(|m| !may_quote_secrets(m));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .finish()
            .with(quiet)
            .try_init(),
        LogFormat::Text => {
            use std::io::IsTerminal;
            builder
                .with_ansi(std::io::stderr().is_terminal())
                .finish()
                .with(quiet)
                .try_init()
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_for_the_binary_cover_the_core() {
        assert_eq!(
            with_core_alias("warn,secret_rotator::rotation=error"),
            "warn,secret_rotator::rotation=error,rotator_core::rotation=error"
        );
        assert_eq!(
            with_core_alias("secret_rotator=debug"),
            "secret_rotator=debug,rotator_core=debug"
        );
        assert_eq!(
            with_core_alias("secret_rotatorx=debug"),
            "secret_rotatorx=debug"
        );
        assert_eq!(with_core_alias("aws_config=off"), "aws_config=off");
    }

    #[test]
    fn tokio_postgres_statements_are_never_logged() {
        use tracing::callsite::Identifier;
        struct Cs;
        impl tracing::callsite::Callsite for Cs {
            fn set_interest(&self, _: tracing::subscriber::Interest) {}
            fn metadata(&self) -> &tracing::Metadata<'_> {
                unimplemented!()
            }
        }
        static CS: Cs = Cs;
        let meta = |target: &'static str, level| {
            tracing::Metadata::new(
                "e",
                target,
                level,
                None,
                None,
                None,
                tracing::field::FieldSet::new(&[], Identifier(&CS)),
                tracing::metadata::Kind::EVENT,
            )
        };
        assert!(may_quote_secrets(&meta(
            "tokio_postgres::query",
            Level::DEBUG
        )));
        assert!(may_quote_secrets(&meta("tokio_postgres", Level::TRACE)));
        assert!(!may_quote_secrets(&meta("tokio_postgres", Level::WARN)));
        assert!(!may_quote_secrets(&meta(
            "tokio_postgres_rustls",
            Level::DEBUG
        )));
        assert!(!may_quote_secrets(&meta("secret_rotator", Level::TRACE)));
    }
}
