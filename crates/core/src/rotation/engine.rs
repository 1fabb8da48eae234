//! The rotation state machine.
//!
//! start/resume -> create -> set -> test -> finish -> redeploy -> wait -> revoke -> tag.
//!
//! Where a run stopped is read back from the store, never from local state:
//! - AWSPENDING on AWSCURRENT's version: finish stopped half-way; remove the label, deploy.
//! - AWSPENDING on one of our tokens: resume at set with the stored value (or, on a retry
//!   after a failure, drop it and start a new attempt with a fresh value).
//! - AWSPENDING on a version that is not ours: another tool's rotation. If it is younger
//!   than [`FOREIGN_PENDING_GRACE`] we back off (it may be running now); if older, or of
//!   unknown age, it is abandoned: we take AWSPENDING off it (the version stays) and rotate.
//!   Never "fail forever".
//! - No AWSPENDING, AWSCURRENT is ours and the `deployed-version` tag differs: the value
//!   was finished but consumers were not confirmed stable; redeploy and wait.
//!
//! The last-rotated tag is written only once consumers are stable, so a rotation whose
//! redeploy failed stays due and is retried (as a redeploy, not a new value).

use super::deploy::{stable_since, Deployer, Described, Forced, DESCRIBE_BATCH};
use super::generate::{generate, GenerateError};
use super::store::*;
use super::target::{self, TargetClients, TargetEnv, TargetError};
use super::token::{attempt_of, token, MAX_ATTEMPTS};
use super::wait::{wait_stable, ServiceVerdict};
use super::{Observer, Step};
use crate::clock::Clock;
use crate::config::SecretConfig;
use crate::error::{AwsError, ErrorClass};
use crate::ids::{SecretName, SecretRef, ServiceRef, VersionId};
use crate::telemetry::{NoTelemetry, Telemetry};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// A foreign AWSPENDING younger than this may belong to a rotation running right now.
pub const FOREIGN_PENDING_GRACE: Duration = Duration::from_secs(3600);
/// Forced deployments started at once per rotation.
const DEPLOY_CONCURRENCY: usize = 8;
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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    /// Nothing was changed (dry run).
    DryRun,
    /// Another rotator already replaced the expected version; nothing was done.
    AlreadyRotated,
    Failed,
    RolledBack,
    Stalled,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::DryRun => "dry_run",
            Outcome::AlreadyRotated => "already_rotated",
            Outcome::Failed => "failed",
            Outcome::RolledBack => "rolled_back",
            Outcome::Stalled => "stalled",
        }
    }
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    pub secret: SecretName,
    pub outcome: Outcome,
    /// The version that is (or would become) AWSCURRENT.
    pub version: Option<VersionId>,
    pub previous: Option<VersionId>,
    /// Where this run picked up an earlier, interrupted rotation.
    pub resumed: Option<String>,
    pub services: BTreeMap<String, ServiceVerdict>,
    /// Dry run: what would be done, in order.
    pub plan: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error("{step}: {source}")]
    Aws { step: Step, source: AwsError },
    /// A call outside the process did not answer within the step deadline.
    #[error("{step}: timed out after {}", crate::config::duration::format(*.after))]
    Timeout { step: Step, after: Duration },
    /// The whole rotation ran past its overall deadline (see [`Engine::rotation_deadline`]).
    #[error("{step}: the rotation did not finish within its overall deadline of {}", crate::config::duration::format(*.after))]
    Deadline { step: Step, after: Duration },
    #[error("the secret is scheduled for deletion")]
    Deleted,
    #[error("the secret has no AWSCURRENT version")]
    NoCurrent,
    #[error("another rotation is in progress: version {version} carries AWSPENDING and is not ours (created {age} ago; it is taken over once older than {})", crate::config::duration::format(FOREIGN_PENDING_GRACE))]
    ForeignPending { version: VersionId, age: String },
    #[error("create: {0}")]
    Generate(#[from] GenerateError),
    #[error("create: json_key \"{key}\": {why}")]
    Json { key: String, why: String },
    #[error("{step}: {source}")]
    Target { step: Step, source: TargetError },
    #[error(
        "test: the pending version read back differs from the value written (digest mismatch)"
    )]
    Mismatch,
    #[error("create: no free client request token after {MAX_ATTEMPTS} attempts")]
    Exhausted,
    /// Another rotator replaced the version this run meant to replace (internal: `rotate`
    /// turns it into an `AlreadyRotated` report).
    #[error("already rotated by another rotator")]
    AlreadyRotated,
    #[error("{step}: {}", summary(.verdicts))]
    Consumers {
        step: Step,
        verdicts: BTreeMap<ServiceRef, ServiceVerdict>,
    },
}

impl RotationError {
    /// The outcome label for metrics.
    pub fn outcome(&self) -> Outcome {
        match self {
            RotationError::Consumers { verdicts, .. } => {
                if verdicts
                    .values()
                    .any(|v| matches!(v, ServiceVerdict::RolledBack { .. }))
                {
                    Outcome::RolledBack
                } else if verdicts
                    .values()
                    .any(|v| matches!(v, ServiceVerdict::Stalled { .. }))
                {
                    Outcome::Stalled
                } else {
                    Outcome::Failed
                }
            }
            _ => Outcome::Failed,
        }
    }

    /// Where the error happened.
    pub fn step(&self) -> Step {
        match self {
            RotationError::Aws { step, .. }
            | RotationError::Timeout { step, .. }
            | RotationError::Deadline { step, .. }
            | RotationError::Target { step, .. }
            | RotationError::Consumers { step, .. } => *step,
            RotationError::Mismatch => Step::Test,
            RotationError::Deleted
            | RotationError::NoCurrent
            | RotationError::ForeignPending { .. } => Step::Start,
            _ => Step::Create,
        }
    }
}

fn summary(v: &BTreeMap<ServiceRef, ServiceVerdict>) -> String {
    let bad: Vec<String> = v
        .iter()
        .filter(|(_, v)| **v != ServiceVerdict::Stable)
        .map(|(s, v)| format!("{s} {v}"))
        .collect();
    format!(
        "{} of {} services not stable: {}",
        bad.len(),
        v.len(),
        bad.join("; ")
    )
}

fn aws(step: Step) -> impl FnOnce(AwsError) -> RotationError {
    move |source| RotationError::Aws { step, source }
}

fn digest(v: &SecretString) -> [u8; 32] {
    Sha256::digest(v.expose_secret().as_bytes()).into()
}

/// Where the stored state says this rotation stands.
enum Phase {
    Fresh,
    Resume {
        version: VersionId,
        /// The attempt number when the token derivation recognises it (None: recognised
        /// by the pending-version tag only, after AWSCURRENT changed underneath).
        attempt: Option<u32>,
    },
    /// Finish moved AWSCURRENT but did not remove AWSPENDING.
    FinishPending {
        version: VersionId,
    },
    /// Finished, consumers not confirmed stable.
    Deploy {
        version: VersionId,
    },
    Foreign {
        version: VersionId,
    },
}

pub struct Engine<S, D> {
    pub store: S,
    pub deployer: D,
    pub clock: Arc<dyn Clock>,
    /// The clients target kinds need (IAM for access keys), given by the binary or a
    /// test; the core builds none.
    pub clients: TargetClients,
    /// Deadline of each call outside the process ([`DEFAULT_STEP_TIMEOUT`]).
    pub step_timeout: Duration,
    /// Where measurements go (the scheduler and leases report through the same sink).
    pub telemetry: Arc<dyn Telemetry>,
}

/// Passes progress on and remembers the step reached (for the overall-deadline error).
struct Progress<'a> {
    inner: &'a dyn Observer,
    step: std::sync::Mutex<Step>,
}

impl Observer for Progress<'_> {
    fn step(&self, secret: &SecretName, step: Step, detail: &str) {
        if let Ok(mut s) = self.step.lock() {
            *s = step;
        }
        self.inner.step(secret, step, detail);
    }
    fn service_progress(
        &self,
        svc: &ServiceRef,
        j: &super::deploy::Judgement,
        running: i32,
        desired: i32,
    ) {
        self.inner.service_progress(svc, j, running, desired);
    }
}

impl<S: SecretStore, D: Deployer> Engine<S, D> {
    /// Without [`Engine::with_target_client`] a target kind that needs a client (IAM for
    /// access keys) fails with a clear error (there is no default client: the binary
    /// passes its own); without [`Engine::with_telemetry`] nothing is measured.
    pub fn new(store: S, deployer: D, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            deployer,
            clock,
            clients: TargetClients::default(),
            step_timeout: DEFAULT_STEP_TIMEOUT,
            telemetry: Arc::new(NoTelemetry),
        }
    }

    pub fn with_telemetry(mut self, t: Arc<dyn Telemetry>) -> Self {
        self.telemetry = t;
        self
    }

    /// Adds a client a target kind looks up by type (see [`TargetClients`]).
    pub fn with_target_client<T: std::any::Any + Send + Sync>(mut self, client: T) -> Self {
        self.clients.insert(client);
        self
    }

    /// The deadline of each call outside the process (`[daemon] step_timeout`).
    pub fn with_step_timeout(mut self, d: Duration) -> Self {
        self.step_timeout = d;
        self
    }

    /// The budget of a target step (set, test, revoke): the step timeout, or longer when
    /// the target says so (a command's own timeout plus the time to report it).
    fn target_budget(&self, cfg: &SecretConfig) -> Duration {
        target::step_budget(&cfg.target, self.step_timeout)
    }

    /// The overall deadline of one rotation: the sum of the per-step budgets plus the
    /// stable timeout. Each step has its own deadline too; this one also bounds a step
    /// made of several calls that each answer just in time.
    pub fn rotation_deadline(&self, cfg: &SecretConfig) -> Duration {
        self.step_timeout * STORE_STEPS
            + self.target_budget(cfg) * TARGET_STEPS
            + cfg.stable_timeout
    }

    /// Runs one call outside the process under a deadline; a timeout fails `step`.
    async fn timed<T>(
        &self,
        step: Step,
        after: Duration,
        f: impl Future<Output = T>,
    ) -> Result<T, RotationError> {
        tokio::time::timeout(after, f)
            .await
            .map_err(|_| RotationError::Timeout { step, after })
    }

    /// A store (or ECS) call under the step timeout, its error attributed to `step`.
    async fn call<T>(
        &self,
        step: Step,
        f: impl Future<Output = Result<T, AwsError>>,
    ) -> Result<T, RotationError> {
        self.timed(step, self.step_timeout, f)
            .await?
            .map_err(aws(step))
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

    fn phase(&self, meta: &SecretMeta, current: &VersionId) -> Phase {
        let pending = meta.version_with(AWSPENDING);
        // Our versions: the token derivation (while AWSCURRENT is the version it was
        // derived from), or the pending-version tag written before the put (which still
        // holds when someone changed AWSCURRENT during set/test).
        let marker = meta.pending_version_tag();
        let current_is_ours = marker.as_ref() == Some(current)
            || meta
                .version_with(AWSPREVIOUS)
                .is_some_and(|prev| attempt_of(&meta.arn, prev, current).is_some());
        match pending {
            // Only our own finish that stopped half-way; another tool's leftover label on
            // AWSCURRENT is not a rotation (finishing it would report an old value as new).
            Some(p) if p == current && current_is_ours => {
                Phase::FinishPending { version: p.clone() }
            }
            Some(p) if p == current => Phase::Fresh,
            Some(p) => match attempt_of(&meta.arn, current, p) {
                Some(attempt) => Phase::Resume {
                    version: p.clone(),
                    attempt: Some(attempt),
                },
                None if marker.as_ref() == Some(p) => Phase::Resume {
                    version: p.clone(),
                    attempt: None,
                },
                None => Phase::Foreign { version: p.clone() },
            },
            None => {
                if current_is_ours && meta.deployed_version_tag().as_ref() != Some(current) {
                    Phase::Deploy {
                        version: current.clone(),
                    }
                } else {
                    Phase::Fresh
                }
            }
        }
    }

    /// Rotates one secret now (or resumes its interrupted rotation).
    pub async fn rotate(
        &self,
        cfg: &SecretConfig,
        opts: RotateOptions,
        obs: &dyn Observer,
    ) -> Result<Report, RotationError> {
        let progress = Progress {
            inner: obs,
            step: std::sync::Mutex::new(Step::Start),
        };
        let deadline = self.rotation_deadline(cfg);
        let result =
            // Boxed: the state machine's future is large (every step inline); on the
            // caller's stack it overflowed worker threads in debug builds.
            match tokio::time::timeout(deadline, Box::pin(self.rotate_inner(cfg, opts, &progress)))
                .await
            {
                Ok(r) => r,
                Err(_) => Err(RotationError::Deadline {
                    step: progress.step.lock().map(|s| *s).unwrap_or(Step::Start),
                    after: deadline,
                }),
            };
        match result {
            Err(RotationError::AlreadyRotated) => {
                self.note(
                    obs,
                    cfg,
                    Step::Done,
                    None,
                    "already rotated by another rotator; nothing to do",
                );
                Ok(Report {
                    secret: cfg.name.clone(),
                    outcome: Outcome::AlreadyRotated,
                    version: None,
                    previous: None,
                    resumed: None,
                    services: BTreeMap::new(),
                    plan: Vec::new(),
                })
            }
            other => other,
        }
    }

    async fn rotate_inner(
        &self,
        cfg: &SecretConfig,
        opts: RotateOptions,
        obs: &dyn Observer,
    ) -> Result<Report, RotationError> {
        let s = &cfg.secret;
        let meta = self.call(Step::Start, self.store.describe(s)).await?;
        if meta.deleted {
            return Err(RotationError::Deleted);
        }
        if meta.rotation_enabled {
            tracing::warn!(secret = %cfg.name, "AWS-native rotation is also enabled on this secret; two rotators will fight over AWSPENDING");
        }
        let current = meta
            .version_with(AWSCURRENT)
            .cloned()
            .ok_or(RotationError::NoCurrent)?;
        let mut report = Report {
            secret: cfg.name.clone(),
            outcome: Outcome::Success,
            version: None,
            previous: Some(current.clone()),
            resumed: None,
            services: BTreeMap::new(),
            plan: Vec::new(),
        };
        let mut phase = self.phase(&meta, &current);
        if let (Phase::Fresh, Some(expected)) = (&phase, &opts.replaces) {
            if *expected != current {
                self.note(
                    obs,
                    cfg,
                    Step::Done,
                    Some(&current),
                    "already rotated by another rotator; nothing to do",
                );
                report.outcome = Outcome::AlreadyRotated;
                report.version = Some(current);
                return Ok(report);
            }
        }

        if opts.dry_run {
            return self.dry_run(cfg, &meta, &current, phase, report).await;
        }

        // Consumers that cannot be redeployed are found before anything changes.
        if matches!(phase, Phase::Fresh | Phase::Foreign { .. }) {
            self.precheck(cfg).await?;
        }

        if let Phase::Foreign { version } = &phase {
            self.take_over_foreign(cfg, s, version).await?;
            phase = Phase::Fresh;
        }
        let fresh = opts.fresh && target::fresh_value_on_retry(&cfg.target);
        if let (Phase::Resume { version, attempt }, true) = (&phase, fresh) {
            // A retry after a failure gets a fresh value: a value a target refused once
            // would likely be refused again.
            self.note(
                obs,
                cfg,
                Step::Create,
                Some(version),
                "dropping the failed attempt's pending value",
            );
            self.call(
                Step::Create,
                self.store.update_stage(s, AWSPENDING, None, Some(version)),
            )
            .await?;
            let next = attempt.map_or(0, |a| a + 1);
            let (version, value) = self.create(cfg, s, &meta, &current, next, obs).await?;
            return self
                .after_create(cfg, s, &current, version, value, report, obs)
                .await;
        }

        match phase {
            Phase::Fresh => {
                self.note(
                    obs,
                    cfg,
                    Step::Start,
                    Some(&current),
                    "starting a new rotation",
                );
                let (version, value) = self.create(cfg, s, &meta, &current, 0, obs).await?;
                self.after_create(cfg, s, &current, version, value, report, obs)
                    .await
            }
            Phase::Resume { version, .. } => {
                report.resumed = Some("set".into());
                self.note(
                    obs,
                    cfg,
                    Step::Start,
                    Some(&version),
                    "resuming: our pending version exists",
                );
                // Its stored value, never a new one: it may already be set on the target.
                let (_, value) = self
                    .call(
                        Step::Start,
                        self.store
                            .get_value(s, Select::Version(&version, AWSPENDING)),
                    )
                    .await?;
                self.after_create(cfg, s, &current, version, value, report, obs)
                    .await
            }
            Phase::FinishPending { version } => {
                report.resumed = Some("finish".into());
                report.previous = meta.version_with(AWSPREVIOUS).cloned();
                self.note(
                    obs,
                    cfg,
                    Step::Finish,
                    Some(&version),
                    "resuming: removing AWSPENDING from the current version",
                );
                self.remove_pending(s, &version).await?;
                report.version = Some(version.clone());
                self.deploy_and_tag(cfg, s, &version, None, report, obs)
                    .await
            }
            Phase::Deploy { version } => {
                report.resumed = Some("redeploy".into());
                report.previous = meta.version_with(AWSPREVIOUS).cloned();
                self.note(
                    obs,
                    cfg,
                    Step::Redeploy,
                    Some(&version),
                    "resuming: the value is current but consumers were not confirmed stable",
                );
                report.version = Some(version.clone());
                self.deploy_and_tag(cfg, s, &version, meta.last_changed, report, obs)
                    .await
            }
            Phase::Foreign { .. } => unreachable!("handled above"),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn after_create(
        &self,
        cfg: &SecretConfig,
        s: &SecretRef,
        current: &VersionId,
        version: VersionId,
        value: SecretString,
        mut report: Report,
        obs: &dyn Observer,
    ) -> Result<Report, RotationError> {
        let env = self.target_env(cfg);
        self.note(
            obs,
            cfg,
            Step::Set,
            Some(&version),
            &format!("target {}", cfg.target.kind()),
        );
        let budget = self.target_budget(cfg);
        self.timed(Step::Set, budget, target::set(&env, &value))
            .await?
            .map_err(|e| RotationError::Target {
                step: Step::Set,
                source: e,
            })?;
        crate::failpoint!("after-set");

        self.note(
            obs,
            cfg,
            Step::Test,
            Some(&version),
            "reading the pending version back",
        );
        let (read_version, read) = self
            .call(
                Step::Test,
                self.store
                    .get_value(s, Select::Version(&version, AWSPENDING)),
            )
            .await?;
        if read_version != version || digest(&read) != digest(&value) {
            return Err(RotationError::Mismatch);
        }
        self.timed(Step::Test, budget, target::test(&env, &value))
            .await?
            .map_err(|e| RotationError::Target {
                step: Step::Test,
                source: e,
            })?;
        crate::failpoint!("after-test");

        self.note(obs, cfg, Step::Finish, Some(&version), "moving AWSCURRENT");
        self.move_current(s, &version, current).await?;
        crate::failpoint!("after-move-current");
        self.remove_pending(s, &version).await?;
        crate::failpoint!("after-remove-pending");
        report.version = Some(version.clone());
        self.deploy_and_tag(cfg, s, &version, None, report, obs)
            .await
    }

    /// Makes the new value and writes it as AWSPENDING under a deterministic token.
    async fn create(
        &self,
        cfg: &SecretConfig,
        s: &SecretRef,
        meta: &SecretMeta,
        current: &VersionId,
        first_attempt: u32,
        obs: &dyn Observer,
    ) -> Result<(VersionId, SecretString), RotationError> {
        let value = self.new_value(cfg, s).await?;
        for attempt in first_attempt..MAX_ATTEMPTS {
            let tok = token(&meta.arn, current, attempt);
            // The marker goes first: once the put has landed, the pending version is
            // recognisably ours even if AWSCURRENT changes before the finish (the token
            // derivation then no longer matches), so nobody drops a value that may
            // already be set on the target. A crash between the two leaves a marker
            // naming a version that does not exist or holds no AWSPENDING: harmless, the
            // next run writes its own marker before its own put. Secrets Manager has no
            // per-version tags; one secret-level tag is enough as only one version can
            // carry AWSPENDING.
            self.call(
                Step::Create,
                self.store
                    .tag(s, &[(TAG_PENDING_VERSION, tok.as_str().to_owned())]),
            )
            .await?;
            match self
                .timed(
                    Step::Create,
                    self.step_timeout,
                    self.store.put_pending(s, &tok, &value),
                )
                .await?
            {
                Ok(v) => {
                    self.note(
                        obs,
                        cfg,
                        Step::Create,
                        Some(&v),
                        &format!("wrote the pending version (attempt {attempt})"),
                    );
                    crate::failpoint!("after-create");
                    return Ok((v, value));
                }
                Err(e) if e.class == ErrorClass::Conflict => {
                    // The token is taken: by a replica that just wrote it (then it carries
                    // AWSPENDING and we join that rotation) or by an abandoned attempt.
                    let now = self.call(Step::Create, self.store.describe(s)).await?;
                    if now.version_with(AWSCURRENT) != Some(current) {
                        // Another rotator finished while we generated: writing another
                        // pending version now would start a second rotation.
                        return Err(RotationError::AlreadyRotated);
                    }
                    if now.version_with(AWSPENDING) == Some(&tok) {
                        self.note(
                            obs,
                            cfg,
                            Step::Create,
                            Some(&tok),
                            "another rotator wrote this version; joining it",
                        );
                        let (_, v) = self
                            .call(
                                Step::Create,
                                self.store.get_value(s, Select::Version(&tok, AWSPENDING)),
                            )
                            .await?;
                        return Ok((tok, v));
                    }
                }
                Err(e) => return Err(aws(Step::Create)(e)),
            }
        }
        Err(RotationError::Exhausted)
    }

    async fn new_value(
        &self,
        cfg: &SecretConfig,
        s: &SecretRef,
    ) -> Result<SecretString, RotationError> {
        if target::makes_value(&cfg.target) {
            return self
                .timed(
                    Step::Create,
                    self.step_timeout,
                    target::create_value(&self.target_env(cfg)),
                )
                .await?
                .map_err(|e| RotationError::Target {
                    step: Step::Create,
                    source: e,
                });
        }
        let generated = generate(&cfg.generate)?;
        let Some(key) = &cfg.json_key else {
            return Ok(generated);
        };
        let (_, current) = self
            .call(
                Step::Create,
                self.store.get_value(s, Select::Stage(AWSCURRENT)),
            )
            .await?;
        let mut doc = json_object(cfg, key, &current)?;
        let Some(obj) = doc.as_object_mut() else {
            return Err(RotationError::Json {
                key: key.clone(),
                why: "the current value is not a JSON object".into(),
            });
        };
        obj.insert(
            key.clone(),
            serde_json::Value::String(generated.expose_secret().to_owned()),
        );
        let out = serde_json::to_string(&doc).map_err(|_| RotationError::Json {
            key: key.clone(),
            why: "cannot serialize".into(),
        })?;
        Ok(SecretString::from(out))
    }

    async fn move_current(
        &self,
        s: &SecretRef,
        version: &VersionId,
        current: &VersionId,
    ) -> Result<(), RotationError> {
        match self
            .timed(
                Step::Finish,
                self.step_timeout,
                self.store
                    .update_stage(s, AWSCURRENT, Some(version), Some(current)),
            )
            .await?
        {
            Ok(()) => Ok(()),
            Err(e) => {
                // A replica may have moved it already; that is success.
                let meta = self.call(Step::Finish, self.store.describe(s)).await?;
                if meta.version_with(AWSCURRENT) == Some(version) {
                    Ok(())
                } else {
                    Err(aws(Step::Finish)(e))
                }
            }
        }
    }

    async fn remove_pending(
        &self,
        s: &SecretRef,
        version: &VersionId,
    ) -> Result<(), RotationError> {
        match self
            .timed(
                Step::Finish,
                self.step_timeout,
                self.store.update_stage(s, AWSPENDING, None, Some(version)),
            )
            .await?
        {
            Ok(()) => Ok(()),
            Err(e) => {
                let meta = self.call(Step::Finish, self.store.describe(s)).await?;
                if meta.version_with(AWSPENDING).is_none() {
                    Ok(())
                } else {
                    Err(aws(Step::Finish)(e))
                }
            }
        }
    }

    async fn take_over_foreign(
        &self,
        cfg: &SecretConfig,
        s: &SecretRef,
        version: &VersionId,
    ) -> Result<(), RotationError> {
        let versions = self.call(Step::Start, self.store.versions(s)).await?;
        let created = versions
            .iter()
            .find(|v| &v.id == version)
            .and_then(|v| v.created);
        if let Some(created) = created {
            let age = (self.clock.now() - created).to_std().unwrap_or_default();
            if age < FOREIGN_PENDING_GRACE {
                return Err(RotationError::ForeignPending {
                    version: version.clone(),
                    age: crate::config::duration::format(Duration::from_secs(age.as_secs())),
                });
            }
        }
        tracing::warn!(secret = %cfg.name, pending_version = %version, "taking over an abandoned AWSPENDING left by another tool");
        self.call(
            Step::Start,
            self.store.update_stage(s, AWSPENDING, None, Some(version)),
        )
        .await
    }

    /// Checks that every consumer exists and can be force-redeployed, before any change.
    async fn precheck(&self, cfg: &SecretConfig) -> Result<(), RotationError> {
        let mut verdicts = BTreeMap::new();
        let mut bad = false;
        for (cluster, services) in group_by_cluster(&cfg.redeploy) {
            for chunk in services.chunks(DESCRIBE_BATCH) {
                let names: Vec<_> = chunk.iter().map(|s| s.service.clone()).collect();
                let states = self
                    .call(
                        Step::Start,
                        self.deployer.describe(cfg.account(), &cluster, &names),
                    )
                    .await?;
                for (svc, st) in chunk.iter().zip(states) {
                    let v = match st {
                        Described::Missing(r) => ServiceVerdict::Missing { reason: r },
                        Described::Found(state) if state.status != "ACTIVE" => {
                            ServiceVerdict::Missing {
                                reason: format!("service status is {}", state.status),
                            }
                        }
                        Described::Found(state) if !state.forceable() => {
                            ServiceVerdict::NotForceable {
                                controller: state.controller.unwrap_or_default(),
                            }
                        }
                        Described::Found(_) => ServiceVerdict::Stable,
                    };
                    bad |= v != ServiceVerdict::Stable;
                    verdicts.insert((*svc).clone(), v);
                }
            }
        }
        if bad {
            return Err(RotationError::Consumers {
                step: Step::Start,
                verdicts,
            });
        }
        Ok(())
    }

    /// Redeploys, waits, revokes and records the rotation as done. `moved_before`, when
    /// given (a resumed run), is a time no earlier than the AWSCURRENT move: consumers
    /// already stable on a deployment created after it are not forced again.
    async fn deploy_and_tag(
        &self,
        cfg: &SecretConfig,
        s: &SecretRef,
        version: &VersionId,
        moved_before: Option<DateTime<Utc>>,
        mut report: Report,
        obs: &dyn Observer,
    ) -> Result<Report, RotationError> {
        if !cfg.redeploy.is_empty() {
            let done = match moved_before {
                Some(t) => self.stable_after(cfg, t).await,
                None => BTreeMap::new(),
            };
            let verdicts = self.redeploy(cfg, version, done, obs).await?;
            report.services = verdicts
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            if verdicts.values().any(|v| *v != ServiceVerdict::Stable) {
                // No revoke: the old value must keep working for whatever still runs on it.
                return Err(RotationError::Consumers {
                    step: Step::Wait,
                    verdicts,
                });
            }
        }
        if target::has_revoke(&cfg.target) {
            self.revoke(cfg, s, version, obs).await?;
        }
        let now = self
            .clock
            .now()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        self.call(
            Step::Done,
            self.store.tag(
                s,
                &[
                    (TAG_LAST_ROTATED, now),
                    (TAG_DEPLOYED_VERSION, version.as_str().to_owned()),
                ],
            ),
        )
        .await?;
        self.note(obs, cfg, Step::Done, Some(version), "rotation complete");
        report.outcome = Outcome::Success;
        Ok(report)
    }

    /// Step 8. Any error reading what to revoke is a failed revoke (retried and alerted,
    /// the rotation stays due): a throttle, AccessDenied or KMS error must never look like
    /// "no previous value", or the old credential would stay valid after a "success".
    async fn revoke(
        &self,
        cfg: &SecretConfig,
        s: &SecretRef,
        version: &VersionId,
        obs: &dyn Observer,
    ) -> Result<(), RotationError> {
        self.note(
            obs,
            cfg,
            Step::Revoke,
            Some(version),
            "revoking the previous value",
        );
        let read = self
            .timed(
                Step::Revoke,
                self.step_timeout,
                self.store.get_value(s, Select::Stage(AWSPREVIOUS)),
            )
            .await?;
        let previous = match read {
            Ok((_, v)) => Some(v),
            Err(e) if e.class == ErrorClass::NotFound => {
                // Only a secret that lists no AWSPREVIOUS version has nothing to revoke; a
                // not-found read of a listed one (a read racing the stage move) is an error.
                let meta = self.call(Step::Revoke, self.store.describe(s)).await?;
                if meta.version_with(AWSPREVIOUS).is_some() {
                    return Err(aws(Step::Revoke)(e));
                }
                tracing::info!(secret = %cfg.name, "no AWSPREVIOUS version: nothing to revoke");
                None
            }
            Err(e) => return Err(aws(Step::Revoke)(e)),
        };
        let (_, value) = self
            .call(
                Step::Revoke,
                self.store
                    .get_value(s, Select::Version(version, AWSCURRENT)),
            )
            .await?;
        self.timed(
            Step::Revoke,
            self.target_budget(cfg),
            target::revoke(&self.target_env(cfg), &value, previous.as_ref()),
        )
        .await?
        .map_err(|e| RotationError::Target {
            step: Step::Revoke,
            source: e,
        })
    }

    /// The consumers already stable on a deployment created after `moved_before`.
    ///
    /// `moved_before` is the secret's LastChangedDate as read at the start of this run, in
    /// the Deploy phase (AWSCURRENT already on our version). AWS documents it as the last
    /// time the secret was modified in any way, so it is never earlier than the stage move
    /// that made our version current, and a deployment ECS created after it started its
    /// tasks after the move: they read the new value. The version's CreatedDate would not
    /// do: it is the put time, before set/test and the move, and a deployment between put
    /// and move read the old value. A later change (a tag) only makes this conservative.
    /// Any doubt (no date, no createdAt, a describe error) means "force again".
    async fn stable_after(
        &self,
        cfg: &SecretConfig,
        moved_before: DateTime<Utc>,
    ) -> BTreeMap<ServiceRef, ()> {
        let mut done = BTreeMap::new();
        for (cluster, services) in group_by_cluster(&cfg.redeploy) {
            for chunk in services.chunks(DESCRIBE_BATCH) {
                let names: Vec<_> = chunk.iter().map(|s| s.service.clone()).collect();
                let states = match self
                    .call(
                        Step::Redeploy,
                        self.deployer.describe(cfg.account(), &cluster, &names),
                    )
                    .await
                {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(secret = %cfg.name, %cluster, error = %e, "cannot tell which consumers are already stable; forcing them all");
                        continue;
                    }
                };
                for (svc, st) in chunk.iter().zip(states) {
                    if let Described::Found(state) = st {
                        if stable_since(&state, moved_before) {
                            tracing::info!(secret = %cfg.name, service = %svc, "already stable on a deployment started after the value became current; not forced again");
                            done.insert((*svc).clone(), ());
                        }
                    }
                }
            }
        }
        done
    }

    /// Forces a new deployment of every consumer and waits for the verdicts. A resumed run
    /// forces again rather than adopt a deployment it did not see start: only a deployment
    /// started after AWSCURRENT moved is sure to read the new value, and that moment is not
    /// recorded anywhere. (A deployment someone starts after ours supersedes it; the waiter
    /// follows that one, so two rotators forcing at once do not fail each other.)
    async fn redeploy(
        &self,
        cfg: &SecretConfig,
        version: &VersionId,
        done: BTreeMap<ServiceRef, ()>,
        obs: &dyn Observer,
    ) -> Result<BTreeMap<ServiceRef, ServiceVerdict>, RotationError> {
        let account = cfg.account();
        let todo: Vec<&ServiceRef> = cfg
            .redeploy
            .iter()
            .filter(|s| !done.contains_key(*s))
            .collect();
        self.note(
            obs,
            cfg,
            Step::Redeploy,
            Some(version),
            &format!(
                "forcing a new deployment of {} services ({} already stable on the new value)",
                todo.len(),
                done.len()
            ),
        );
        let jobs: Vec<BoxFuture<'_, (ServiceRef, Result<Forced, AwsError>)>> = todo
            .into_iter()
            .map(|svc| Box::pin(self.force(account, svc)) as BoxFuture<'_, _>)
            .collect();
        let results: Vec<_> = futures::stream::iter(jobs)
            .buffer_unordered(DEPLOY_CONCURRENCY)
            .collect()
            .await;
        crate::failpoint!("after-update-service");
        let mut verdicts = BTreeMap::new();
        let mut started = Vec::new();
        for (svc, r) in results {
            match r {
                Ok(d) => {
                    tracing::info!(secret = %cfg.name, cluster = %svc.cluster, service = %svc.service, deployment = %d.id, "deployment started");
                    started.push((svc, d));
                }
                Err(e) => {
                    let v = match e.class {
                        ErrorClass::NotFound => ServiceVerdict::Missing {
                            reason: e.to_string(),
                        },
                        ErrorClass::Invalid
                            if e.info
                                .message
                                .as_deref()
                                .unwrap_or("")
                                .contains("deployment controller") =>
                        {
                            ServiceVerdict::NotForceable {
                                controller: e.to_string(),
                            }
                        }
                        _ => ServiceVerdict::Failed {
                            error: e.to_string(),
                        },
                    };
                    verdicts.insert(svc, v);
                }
            }
        }
        self.note(
            obs,
            cfg,
            Step::Wait,
            Some(version),
            &format!("waiting for {} deployments to be stable", started.len()),
        );
        let t0 = tokio::time::Instant::now();
        let waited = wait_stable(&self.deployer, account, &started, cfg.stable_timeout, obs).await;
        let secs = t0.elapsed().as_secs_f64();
        for v in waited.values() {
            self.telemetry.wait_finished(v.label(), secs);
        }
        verdicts.extend(waited);
        verdicts.extend(done.into_keys().map(|s| (s, ServiceVerdict::Stable)));
        for (svc, v) in &verdicts {
            self.telemetry.redeploy_finished(&cfg.name, svc, v.label());
            if *v == ServiceVerdict::Stable {
                tracing::info!(secret = %cfg.name, cluster = %svc.cluster, service = %svc.service, outcome = v.label(), "service stable on the new deployment");
            } else {
                tracing::warn!(secret = %cfg.name, cluster = %svc.cluster, service = %svc.service, outcome = v.label(), detail = %v, "service not stable");
            }
        }
        Ok(verdicts)
    }

    async fn force(
        &self,
        account: &crate::ids::Account,
        svc: &ServiceRef,
    ) -> (ServiceRef, Result<Forced, AwsError>) {
        let r =
            match tokio::time::timeout(self.step_timeout, self.deployer.force_deploy(account, svc))
                .await
            {
                Ok(r) => r,
                Err(_) => Err(AwsError::new(
                    ErrorClass::Transient,
                    "UpdateService",
                    "Timeout",
                    format!(
                        "timed out after {}",
                        crate::config::duration::format(self.step_timeout)
                    ),
                )),
            };
        (svc.clone(), r)
    }

    async fn dry_run(
        &self,
        cfg: &SecretConfig,
        meta: &SecretMeta,
        current: &VersionId,
        phase: Phase,
        mut report: Report,
    ) -> Result<Report, RotationError> {
        let mut plan = Vec::new();
        match &phase {
            Phase::Fresh => plan.push(target::describe_create(cfg).unwrap_or_else(|| format!("generate a new value ({} characters{}) and write it as AWSPENDING", cfg.generate.length, cfg.json_key.as_ref().map(|k| format!(", into JSON key \"{k}\"")).unwrap_or_default()))),
            Phase::Resume { version, .. } => plan.push(format!("resume: our pending version {version} exists; continue with it")),
            Phase::FinishPending { version } => plan.push(format!("resume: remove AWSPENDING from current version {version}")),
            Phase::Deploy { version } => plan.push(format!("resume: version {version} is current; consumers not confirmed stable")),
            Phase::Foreign { version } => plan.push(format!("a foreign AWSPENDING is on {version}: back off if younger than {}, else take it over", crate::config::duration::format(FOREIGN_PENDING_GRACE))),
        }
        if matches!(
            phase,
            Phase::Fresh | Phase::Resume { .. } | Phase::Foreign { .. }
        ) {
            if let Some(key) = &cfg.json_key {
                // Read-only check that the current value is a JSON object with the key.
                let (_, cur) = self
                    .call(
                        Step::Create,
                        self.store.get_value(&cfg.secret, Select::Stage(AWSCURRENT)),
                    )
                    .await?;
                json_object(cfg, key, &cur)?;
            }
            plan.push(format!("set: target {}", cfg.target.kind()));
            plan.push("test: read the pending version back and compare digests".into());
            plan.push(format!("finish: move AWSCURRENT from {current} to the new version (AWSPREVIOUS follows), remove AWSPENDING"));
        }
        self.precheck(cfg).await?;
        if !cfg.redeploy.is_empty() {
            let names: Vec<String> = cfg.redeploy.iter().map(|s| s.to_string()).collect();
            plan.push(format!(
                "redeploy (force new deployment): {}",
                names.join(", ")
            ));
            plan.push(format!(
                "wait until stable (timeout {})",
                crate::config::duration::format(cfg.stable_timeout)
            ));
        }
        if target::has_revoke(&cfg.target) {
            plan.push(target::describe_revoke(&cfg.target));
        }
        plan.push(format!("tag {TAG_LAST_ROTATED} and {TAG_DEPLOYED_VERSION}"));
        let _ = meta;
        report.outcome = Outcome::DryRun;
        report.plan = plan;
        Ok(report)
    }
}

/// The current value as a JSON object that has `key` (or may get it: `json_key_create`).
/// Errors name the secret, the key and the keys that exist, never a value.
fn json_object(
    cfg: &SecretConfig,
    key: &str,
    current: &SecretString,
) -> Result<serde_json::Value, RotationError> {
    let jerr = |why: String| RotationError::Json {
        key: key.to_owned(),
        why,
    };
    let doc: serde_json::Value = serde_json::from_str(current.expose_secret())
        .map_err(|_| jerr("the current value is not JSON".into()))?;
    let Some(obj) = doc.as_object() else {
        return Err(jerr("the current value is not a JSON object".into()));
    };
    if !cfg.json_key_create && !obj.contains_key(key) {
        const SHOWN: usize = 50;
        let mut keys: Vec<String> = obj
            .keys()
            .take(SHOWN)
            .map(|k| format!("\"{}\"", k.escape_debug()))
            .collect();
        if obj.len() > SHOWN {
            keys.push(format!("and {} more", obj.len() - SHOWN));
        }
        return Err(jerr(format!(
            "secret {} ({}) has no such key; its keys are {}. Fix json_key, or set json_key_create = true to add the key",
            cfg.name,
            cfg.secret.id,
            if keys.is_empty() { "none".to_owned() } else { keys.join(", ") }
        )));
    }
    Ok(doc)
}

fn group_by_cluster(
    services: &[ServiceRef],
) -> BTreeMap<crate::ids::ClusterName, Vec<&ServiceRef>> {
    let mut m: BTreeMap<_, Vec<&ServiceRef>> = BTreeMap::new();
    for s in services {
        m.entry(s.cluster.clone()).or_default().push(s);
    }
    m
}
