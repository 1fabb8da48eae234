//! The one-shot commands. Each returns an exit code; `main` only dispatches.

pub mod check;
pub mod plan;
pub mod rotate;

use crate::aws::{ecs::AwsEcs, secrets::AwsSecrets, AwsContext};
use crate::config::{Config, ConfigErrors};
use crate::error::{AwsError, ErrorClass};
use crate::rotation::lease::fence::Fenced;

/// Prints every configuration error, one per line, and returns the config exit code.
pub fn report_config_errors(e: &ConfigErrors) -> i32 {
    for err in &e.0 {
        eprintln!("{err}");
    }
    eprintln!(
        "error: {} problem(s) in the configuration; nothing was changed",
        e.0.len()
    );
    crate::exit::CONFIG
}

pub async fn aws_clients(cfg: &Config) -> (AwsSecrets, AwsEcs) {
    let ctx = AwsContext::load(&cfg.aws).await;
    (AwsSecrets::new(ctx.clone()), AwsEcs::new(ctx))
}

/// The engine with real AWS clients, all from one SDK configuration (`[aws]` region,
/// profile and the default credential chain), IAM/STS included.
///
/// Every write goes through [`Fenced`]: with `[ha] lock_table` set, a write is refused
/// unless the rotation holds the secret's lease (see `crate::ha`).
pub async fn aws_engine(
    cfg: &Config,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
) -> crate::rotation::Engine<Fenced<AwsSecrets>, Fenced<AwsEcs>> {
    let ctx = AwsContext::load(&cfg.aws).await;
    let leased = cfg.ha.enabled();
    crate::rotation::Engine::new(
        Fenced::new(AwsSecrets::new(ctx.clone()), leased),
        Fenced::new(AwsEcs::new(ctx.clone()), leased),
        clock,
    )
    .with_iam(std::sync::Arc::new(Fenced::new(
        crate::aws::iam::AwsIam::new(ctx),
        leased,
    )))
    .with_step_timeout(cfg.daemon.step_timeout)
}

/// When every secret failed the same way for a reason retrying will not fix (no
/// credentials, endpoint unreachable), that one line is the whole story.
pub fn common_setup_error<'a>(
    errors: impl IntoIterator<Item = &'a AwsError>,
) -> Option<&'a AwsError> {
    let mut it = errors.into_iter();
    let first = it.next()?;
    let setup = matches!(
        first.class,
        ErrorClass::Setup | ErrorClass::Transient | ErrorClass::AccessDenied
    );
    (setup && it.all(|e| e.info.code == first.info.code)).then_some(first)
}
