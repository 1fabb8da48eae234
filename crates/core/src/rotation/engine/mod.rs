//! The rotation state machine.
//!
//! start/resume -> create -> set -> test -> finish -> redeploy -> wait -> revoke -> tag.
//!
//! Where a run stopped is read back from the store, never from local state (`phase.rs`):
//! - AWSPENDING on AWSCURRENT's version: finish stopped half-way; remove the label, deploy.
//! - AWSPENDING on one of our tokens: resume at set with the stored value (or, on a retry
//!   after a failure, drop it and start a new attempt with a fresh value).
//! - AWSPENDING on a version that is not ours: another tool's rotation. If it is younger
//!   than `phase::FOREIGN_PENDING_GRACE` we back off (it may be running now); if older,
//!   or of unknown age, it is abandoned: we take AWSPENDING off it (the version stays) and
//!   rotate. Never "fail forever".
//! - No AWSPENDING, AWSCURRENT is ours and the `deployed-version` tag differs: the value
//!   was finished but consumers were not confirmed stable; redeploy and wait.
//! - Nothing of ours in flight and AWSCURRENT is not the version the caller meant to
//!   replace: someone else rotated it already; nothing is done.
//!
//! The last-rotated tag is written only once consumers are stable, so a rotation whose
//! redeploy failed stays due and is retried (as a redeploy, not a new value). Consumers
//! restarted by command (`restart.rs`) run beside the ECS redeploy and wait; nothing
//! records that they ran, so a resumed redeploy runs them again.
//!
//! This file holds [`Engine`] and the order of the steps (`Rotation::run`); each step is a
//! method of the `Rotation` context (`context.rs`) in its own file (see `rotation/mod.rs`).

mod context;
mod create;
mod dry_run;
mod error;
mod finish;
mod phase;
mod redeploy;
mod report;
mod restart;
mod revoke;
mod set_test;
mod start;
mod wait;

pub use error::RotationError;
pub use report::{Outcome, Report};
pub use restart::CommandVerdicts;

use super::coordinator::{Coordinator, DEFAULT_COALESCE};
use super::deploy::Deployer;
use super::process::ProgramRunner;
use super::restart::CommandVerdict;
use super::restart::Restarts;
use super::store::{SecretStore, Select, AWSPENDING, AWSPREVIOUS};
use super::target::{self, TargetClients, TargetEnv};
use super::wait::ServiceVerdict;
use super::{Observer, Step};
use crate::clock::Clock;
use crate::config::consumer::argv_text;
use crate::config::SecretConfig;
use crate::error::AwsError;
use crate::ids::{ServiceRef, VersionId};
use crate::telemetry::{NoTelemetry, Telemetry};
use chrono::{DateTime, Utc};
use context::{Progress, Rotation};
use create::Created;
use error::aws;
use phase::Phase;
use secrecy::SecretString;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// The target of the engine's log lines, whichever step file logs them: what operators
/// filter on (`RUST_LOG=rotator_core::rotation::engine=...`) and what the text and JSON
/// logs have always shown.
const LOG_TARGET: &str = module_path!();

/// Default deadline of one step's call outside the process (a store call, a target's set,
/// test or revoke, an UpdateService): `[daemon] step_timeout`.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(300);
/// Steps with a store or ECS budget of one step timeout each: start (describe, precheck),
/// create, finish, redeploy, done (tag), and the wait's slack beyond `stable_timeout`.
const STORE_STEPS: u32 = 6;
/// Steps that run the target (set, test, revoke), each with the target's budget.
const TARGET_STEPS: u32 = 3;

#[derive(Clone, Debug, Default)]
pub struct RotateOptions {
    /// A retry after a failure: do not resume an unfinished pending value, make a new one.
    pub fresh: bool,
    /// Read calls only; report what would be done.
    pub dry_run: bool,
    /// The AWSCURRENT version this rotation is meant to replace (the daemon passes what it
    /// saw when it found the secret due). If a fresh rotation finds another version
    /// current, someone else rotated it already: nothing is done.
    pub replaces: Option<VersionId>,
    /// The caller found the secret due only to finish a rotation whose value is already
    /// current (due status `Unfinished` with the value current). If the store shows
    /// nothing left to finish, another replica finished it: nothing is done (a fresh
    /// rotation would replace a value minutes old).
    pub resume_only: bool,
}

/// Rotates secrets: the staging protocol (AWSPENDING -> AWSCURRENT -> AWSPREVIOUS) over a
/// secret store, the target that must learn the value, and the consumers that must be
/// redeployed (ECS) or restarted by command to read it.
///
/// An engine holds no state about rotations: each [`Engine::rotate`] reads where the
/// secret stands from the store, so a run is safe to crash at any point, to run again,
/// and to run from two replicas at once (deterministic version tokens; see the module
/// documentation). Every call outside the process has a deadline
/// ([`Engine::with_step_timeout`]), and so has the whole run
/// ([`Engine::rotation_deadline`]).
pub struct Engine<S, D> {
    pub store: S,
    pub deployer: Arc<D>,
    /// Every forced deployment and stability poll goes through it (shared deployments,
    /// batched polls); built from the fields here, rebuilt by the builders.
    coordinator: Coordinator<D>,
    /// Runs of each consumer command (shared by rotations asking within the coalescing
    /// window); rebuilt by the builders like the coordinator.
    restarts: Restarts,
    /// Runs the consumer commands (`redeploy = [{ command = [...] }]`); None: they fail.
    pub runner: Option<Arc<dyn ProgramRunner>>,
    /// Force requests for one service (and runs of one consumer command) within this
    /// share one deployment (one run).
    pub redeploy_coalesce: Duration,
    /// Deployment events are received ([`crate::rotation::coordinator::listen`]): the
    /// safety poll beside them. None: rollouts are followed by polling only.
    pub event_safety_poll: Option<Duration>,
    pub clock: Arc<dyn Clock>,
    /// The clients target kinds need (IAM for access keys), given by the binary or a
    /// test; the core builds none.
    pub clients: TargetClients,
    /// Deadline of each call outside the process ([`DEFAULT_STEP_TIMEOUT`]).
    pub step_timeout: Duration,
    /// Where measurements go (the scheduler and leases report through the same sink).
    pub telemetry: Arc<dyn Telemetry>,
}

impl<S: SecretStore, D: Deployer> Engine<S, D> {
    /// Without [`Engine::with_target_client`] a target kind that needs a client (IAM for
    /// access keys) fails with a clear error (there is no default client: the binary
    /// passes its own); without [`Engine::with_telemetry`] nothing is measured.
    pub fn new(store: S, deployer: D, clock: Arc<dyn Clock>) -> Self {
        let deployer = Arc::new(deployer);
        let telemetry: Arc<dyn Telemetry> = Arc::new(NoTelemetry);
        Self {
            store,
            coordinator: Coordinator::with_events(
                deployer.clone(),
                DEFAULT_COALESCE,
                DEFAULT_STEP_TIMEOUT,
                telemetry.clone(),
                None,
                clock.clone(),
            ),
            deployer,
            restarts: Restarts::new(None, DEFAULT_COALESCE),
            runner: None,
            redeploy_coalesce: DEFAULT_COALESCE,
            event_safety_poll: None,
            clock,
            clients: TargetClients::default(),
            step_timeout: DEFAULT_STEP_TIMEOUT,
            telemetry,
        }
    }

    /// A new coordinator from the settings (builders run before any rotation).
    fn rebuilt(mut self) -> Self {
        self.coordinator = Coordinator::with_events(
            self.deployer.clone(),
            self.redeploy_coalesce,
            self.step_timeout,
            self.telemetry.clone(),
            self.event_safety_poll,
            self.clock.clone(),
        );
        self.restarts = Restarts::new(self.runner.clone(), self.redeploy_coalesce);
        self
    }

    /// Runs the consumer commands through `runner` (the binary's runs real processes).
    pub fn with_program_runner(mut self, runner: Arc<dyn ProgramRunner>) -> Self {
        self.runner = Some(runner);
        self.rebuilt()
    }

    /// Rollouts are followed by deployment events (fed to [`Engine::coordinator`] by
    /// [`crate::rotation::coordinator::listen`]) and a safety poll this often.
    pub fn with_deploy_events(mut self, safety_poll: Duration) -> Self {
        self.event_safety_poll = Some(safety_poll);
        self.rebuilt()
    }

    pub fn with_telemetry(mut self, t: Arc<dyn Telemetry>) -> Self {
        self.telemetry = t;
        self.rebuilt()
    }

    /// Rotations reaching the redeploy of one service within `d` of each other share one
    /// forced deployment (`[daemon] redeploy_coalesce`).
    pub fn with_redeploy_coalesce(mut self, d: Duration) -> Self {
        self.redeploy_coalesce = d;
        self.rebuilt()
    }

    /// The deploy coordinator (for callers forcing outside a rotation).
    pub fn coordinator(&self) -> &Coordinator<D> {
        &self.coordinator
    }

    /// Adds a client a target kind looks up by type (see [`TargetClients`]).
    pub fn with_target_client<T: std::any::Any + Send + Sync>(mut self, client: T) -> Self {
        self.clients.insert(client);
        self
    }

    /// The deadline of each call outside the process (`[daemon] step_timeout`).
    pub fn with_step_timeout(mut self, d: Duration) -> Self {
        self.step_timeout = d;
        self.rebuilt()
    }

    /// The budget of a target step (set, test, revoke): the step timeout, or longer when
    /// the target says so (a command's own timeout plus the time to report it).
    fn target_budget(&self, cfg: &SecretConfig) -> Duration {
        target::step_budget(&cfg.target, self.step_timeout)
    }

    /// The overall deadline of one rotation: the sum of the per-step budgets plus the
    /// consumers' timeout (the stable timeout, or a consumer command's when longer).
    /// Each step has its own deadline too; this one also bounds a step made of several
    /// calls that each answer just in time.
    pub fn rotation_deadline(&self, cfg: &SecretConfig) -> Duration {
        self.step_timeout * STORE_STEPS
            + self.target_budget(cfg) * TARGET_STEPS
            + cfg.consumers_timeout()
            + self.redeploy_coalesce
    }

    /// Runs one call outside the process under a deadline; a timeout fails `step`.
    ///
    /// `make` builds the call's future, boxed here in a plain function so that no step's
    /// frame holds it: debug builds copy a future through the stack frame that builds it,
    /// AWS SDK futures are large, and with them inline a rotation used most of the
    /// daemon's 8 MiB worker stack (and overflowed it once split into steps).
    fn timed<'f, T: 'f, F>(
        &self,
        step: Step,
        after: Duration,
        make: impl FnOnce() -> F,
    ) -> impl Future<Output = Result<T, RotationError>> + 'f
    where
        F: Future<Output = T> + Send + 'f,
    {
        let f = context::boxed(make);
        async move {
            tokio::time::timeout(after, f)
                .await
                .map_err(|_| RotationError::Timeout { step, after })
        }
    }

    /// A store (or ECS) call under the step timeout, its error attributed to `step`.
    fn call<'f, T: 'f, F>(
        &self,
        step: Step,
        make: impl FnOnce() -> F,
    ) -> impl Future<Output = Result<T, RotationError>> + 'f
    where
        F: Future<Output = Result<T, AwsError>> + Send + 'f,
    {
        let timed = self.timed(step, self.step_timeout, make);
        async move { timed.await?.map_err(aws(step)) }
    }

    fn target_env<'a>(&'a self, cfg: &'a SecretConfig) -> TargetEnv<'a> {
        TargetEnv {
            cfg,
            store: &self.store,
            clients: &self.clients,
            clock: self.clock.as_ref(),
        }
    }

    fn note(
        &self,
        obs: &dyn Observer,
        cfg: &SecretConfig,
        step: Step,
        version: Option<&VersionId>,
        detail: &str,
    ) {
        let v = version.map(|v| v.as_str()).unwrap_or("-");
        tracing::info!(secret = %cfg.name, secret_id = %cfg.secret.id, step = %step, version = v, "{detail}");
        obs.step(&cfg.name, step, detail);
    }

    /// Rotates one secret now (or resumes its interrupted rotation).
    ///
    /// `Ok` is a run that did not fail: a success, a dry run, or "already rotated" (see
    /// [`Outcome`]); `Err` names the failed step, and its [`RotationError::outcome`]
    /// tells a failure from a rolled-back or stalled redeploy.
    pub async fn rotate(
        &self,
        cfg: &SecretConfig,
        opts: RotateOptions,
        obs: &dyn Observer,
    ) -> Result<Report, RotationError> {
        let progress = Progress::new(obs);
        let deadline = self.rotation_deadline(cfg);
        // Boxed, like every call outside the process (see `timed`): on the caller's stack
        // the state machine's future overflowed worker threads in debug builds.
        match tokio::time::timeout(deadline, Box::pin(self.start(cfg, opts, &progress))).await {
            Ok(r) => r,
            Err(_) => Err(RotationError::Deadline {
                step: progress.reached(),
                after: deadline,
            }),
        }
    }
}

/// The order of the steps, from the phase detected at the start.
impl<S: SecretStore, D: Deployer> Rotation<'_, S, D> {
    async fn run(mut self, phase: Phase) -> Result<Report, RotationError> {
        if self.opts.dry_run {
            return self.dry_run(phase).await;
        }
        match phase {
            Phase::Fresh => {
                // Consumers that cannot be redeployed are found before anything changes.
                self.precheck().await?;
                self.new_rotation().await
            }
            Phase::Foreign { version } => {
                self.precheck().await?;
                self.take_over_foreign(&version).await?;
                self.new_rotation().await
            }
            Phase::Retry {
                version,
                next_attempt,
            } => {
                self.drop_pending(&version).await?;
                self.create_then_finish(next_attempt).await
            }
            Phase::Resume { version } => {
                self.report.resumed = Some("set".into());
                self.note(
                    Step::Start,
                    Some(&version),
                    "resuming: our pending version exists",
                );
                // Its stored value, never a new one: it may already be set on the target.
                let (_, value) = self
                    .call(Step::Start, || {
                        self.store()
                            .get_value(self.secret(), Select::Version(&version, AWSPENDING))
                    })
                    .await?;
                self.set_then_finish(version, value).await
            }
            Phase::FinishPending { version } => {
                self.report.resumed = Some("finish".into());
                self.report.previous = self.meta.version_with(AWSPREVIOUS).cloned();
                self.note(
                    Step::Finish,
                    Some(&version),
                    "resuming: removing AWSPENDING from the current version",
                );
                self.remove_pending(&version).await?;
                self.report.version = Some(version.clone());
                self.deploy_then_done(version, None, None).await
            }
            Phase::Deploy { version } => {
                self.report.resumed = Some("redeploy".into());
                self.report.previous = self.meta.version_with(AWSPREVIOUS).cloned();
                self.note(
                    Step::Redeploy,
                    Some(&version),
                    "resuming: the value is current but consumers were not confirmed stable",
                );
                self.report.version = Some(version.clone());
                let moved_before = self.meta.last_changed;
                self.deploy_then_done(version, moved_before, None).await
            }
        }
    }

    async fn new_rotation(self) -> Result<Report, RotationError> {
        self.note(Step::Start, Some(&self.current), "starting a new rotation");
        self.create_then_finish(0).await
    }

    /// Create (from token attempt `first_attempt`), then the rest.
    async fn create_then_finish(self, first_attempt: u32) -> Result<Report, RotationError> {
        match self.create(first_attempt).await? {
            Created::Pending { version, value } => self.set_then_finish(version, value).await,
            Created::AlreadyRotated => Ok(self.rotated_meanwhile()),
        }
    }

    /// Set, test and finish our pending version, then the rest.
    async fn set_then_finish(
        mut self,
        version: VersionId,
        value: SecretString,
    ) -> Result<Report, RotationError> {
        self.set(&version, &value).await?;
        self.test(&version, &value).await?;
        self.finish(&version).await?;
        self.report.version = Some(version.clone());
        self.deploy_then_done(version, None, Some(value)).await
    }

    /// Redeploys, waits, revokes and records the rotation as done. `moved_before`, when
    /// given (a resumed run), is a time no earlier than the AWSCURRENT move: ECS consumers
    /// already stable on a deployment created after it are not forced again (consumer
    /// commands always run again: nothing records when they last ran). `value`, when the
    /// run holds it, masks the consumer commands' output.
    async fn deploy_then_done(
        mut self,
        version: VersionId,
        moved_before: Option<DateTime<Utc>>,
        value: Option<SecretString>,
    ) -> Result<Report, RotationError> {
        let cfg = self.cfg;
        if !cfg.redeploy.is_empty() {
            // The ECS consumers and the commands side by side, each on its own timeout.
            let ecs = async {
                if !cfg.has_services() {
                    return BTreeMap::new();
                }
                let done: BTreeMap<ServiceRef, ()> = match moved_before {
                    Some(t) => self.stable_after(t).await,
                    None => BTreeMap::new(),
                };
                let forcing = self.redeploy(&version, &done).await;
                self.wait(&version, forcing, done).await
            };
            let commands = self.restart_commands(&version, value);
            let (verdicts, commands) =
                futures::future::join(Box::pin(ecs), Box::pin(commands)).await;
            self.report.services = verdicts
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            self.report.commands = commands
                .iter()
                .map(|(k, v)| (argv_text(&k.command), v.clone()))
                .collect();
            let ecs_ok = verdicts.values().all(|v| *v == ServiceVerdict::Stable);
            if !ecs_ok || !commands.values().all(CommandVerdict::is_ok) {
                // No revoke: the old value must keep working for whatever still runs on it.
                return Err(RotationError::Consumers {
                    step: Step::Wait,
                    verdicts,
                    commands,
                });
            }
        }
        if target::has_revoke(&cfg.target) {
            self.revoke(&version).await?;
        }
        self.done(&version).await
    }
}
