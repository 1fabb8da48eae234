//! The one-shot commands. Each returns an exit code; `main` only dispatches.

pub mod check;
pub mod group;
pub mod plan;
pub mod rotate;

use crate::aws::{ecs::AwsEcs, AwsContext};
use crate::config::{Config, ConfigErrors};
use crate::error::{AwsError, ErrorClass};
use crate::rotation::lease::fence::Fenced;
use crate::stores::Stores;
use crate::targets::iam::WithIam;

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

/// The SDK configuration, with credentials checked before any call. Without credentials
/// it prints one line and returns the "unavailable" exit code: every command that talks to
/// AWS fails the same way, before it changes anything.
pub async fn connect(cfg: &Config) -> Result<AwsContext, i32> {
    let ctx = AwsContext::load(&cfg.aws).await;
    if !needs_aws(cfg) {
        return Ok(ctx);
    }
    match ctx.check_credentials(&cfg.aws).await {
        Ok(()) => Ok(ctx),
        Err(e) => {
            let msg = e.info.message.as_deref().unwrap_or("no AWS credentials");
            eprintln!("error: {msg}");
            Err(crate::exit::UNAVAILABLE)
        }
    }
}

/// Whether anything in the configuration calls AWS: a secret in Secrets Manager, an ECS
/// consumer, an IAM target, the lease table or the events queue. A configuration of
/// Alibaba/IBM secrets with command consumers runs without AWS credentials.
pub fn needs_aws(cfg: &Config) -> bool {
    cfg.ha.lock_table.is_some()
        || cfg.events.queue_url.is_some()
        || cfg.secrets.iter().any(|s| {
            s.secret.store.kind() == crate::ids::StoreKind::Aws
                || s.has_services()
                || s.target.kind()
                    == <crate::targets::iam::IamAccessKey as crate::config::TargetKind>::NAME
        })
}

pub async fn aws_clients(cfg: &Config) -> (Stores, AwsEcs) {
    clients(cfg, AwsContext::load(&cfg.aws).await)
}

/// The secret stores the configuration uses (AWS, and Alibaba/IBM when a secret names
/// them) and ECS.
pub fn clients(cfg: &Config, ctx: AwsContext) -> (Stores, AwsEcs) {
    (crate::stores::stores(cfg, ctx.clone()), AwsEcs::new(ctx))
}

/// The daemon's engine: real AWS clients, all from one SDK configuration (`[aws]`
/// region, profile and the default credential chain), IAM/STS included, and with
/// `[events]` the queue's reader feeding its deploy coordinator.
///
/// Every write goes through [`Fenced`]: with `[ha] lock_table` set, a write is refused
/// unless the rotation holds the secret's lease (see `crate::ha`).
pub async fn aws_engine(
    cfg: &Config,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
) -> crate::rotation::Engine<Fenced<Stores>, Fenced<AwsEcs>> {
    let ctx = AwsContext::load(&cfg.aws).await;
    let engine = engine(cfg, ctx.clone(), clock);
    let Some(source) = events(cfg, &ctx) else {
        return engine;
    };
    let engine = engine.with_deploy_events(cfg.events.safety_poll);
    let coordinator = engine.coordinator().clone();
    // Runs for the life of the process; its failures only fall back to polling. A
    // panic (a bug) must not leave the coordinator trusting events that no longer come.
    tokio::spawn(async move {
        let listen = crate::rotation::coordinator::listen(
            source,
            coordinator.clone(),
            std::future::pending(),
        );
        if futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(listen))
            .await
            .is_err()
        {
            tracing::error!("the deployment events reader panicked; following rollouts by polling");
            coordinator.set_events_live(false);
        }
    });
    engine
}

pub fn engine(
    cfg: &Config,
    ctx: AwsContext,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
) -> crate::rotation::Engine<Fenced<Stores>, Fenced<AwsEcs>> {
    let leased = cfg.ha.enabled();
    crate::rotation::Engine::new(
        Fenced::new(crate::stores::stores(cfg, ctx.clone()), leased),
        Fenced::new(AwsEcs::new(ctx.clone()), leased),
        clock,
    )
    .with_iam(std::sync::Arc::new(Fenced::new(
        crate::targets::iam::aws::AwsIam::new(ctx),
        leased,
    )))
    .with_program_runner(std::sync::Arc::new(crate::process::Processes))
    .with_step_timeout(cfg.daemon.step_timeout)
    .with_redeploy_coalesce(cfg.daemon.redeploy_coalesce)
    .with_telemetry(crate::metrics::telemetry())
}

/// The `[events]` queue's reader, if one is configured.
pub fn events(cfg: &Config, ctx: &AwsContext) -> Option<crate::aws::events::SqsEvents> {
    let url = cfg.events.queue_url.as_ref()?;
    let account = crate::ids::Account::new(
        cfg.events
            .region
            .clone()
            .or_else(|| region_of_queue(url))
            .or_else(|| cfg.aws.region.clone()),
        cfg.aws.role_arn.clone(),
    );
    Some(crate::aws::events::SqsEvents::new(
        ctx.clone(),
        account,
        url,
    ))
}

/// The region in an AWS queue URL (`https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`).
fn region_of_queue(url: &str) -> Option<crate::ids::Region> {
    let host = url.split("://").nth(1)?.split('/').next()?;
    let mut parts = host.split('.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("sqs"), Some(r), Some("amazonaws")) => Some(crate::ids::Region::new(r.to_string())),
        _ => None,
    }
}

/// AWS could not be reached at all, or is not set up (credentials, endpoint): retrying the
/// same command will not help until that is fixed. Exit code 69.
pub fn is_unreachable(e: &AwsError) -> bool {
    match e.class {
        ErrorClass::Setup => true,
        ErrorClass::Transient => matches!(e.code(), Some("DispatchFailure" | "Timeout")),
        // Credentials that AWS does not accept at all are no credentials.
        ErrorClass::AccessDenied => matches!(
            e.code(),
            Some(
                "UnrecognizedClientException"
                    | "InvalidClientTokenId"
                    | "ExpiredTokenException"
                    | "InvalidSignatureException"
                    | "SignatureDoesNotMatch"
            )
        ),
        _ => false,
    }
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

/// The exit code for a failure shared by every secret: 69 when AWS is unreachable or not
/// set up, 1 otherwise (e.g. access denied everywhere: AWS answered).
pub fn common_failure_code(e: &AwsError) -> i32 {
    if is_unreachable(e) {
        crate::exit::UNAVAILABLE
    } else {
        crate::exit::FAILURE
    }
}
