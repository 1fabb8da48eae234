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

use super::deploy::{Deployer, Described, DESCRIBE_BATCH};
use super::generate::{generate, GenerateError};
use super::store::*;
use super::target::{self, IamApi, TargetEnv, TargetError};
use super::token::{attempt_of, token, MAX_ATTEMPTS};
use super::wait::{wait_stable, ServiceVerdict};
use super::{Observer, Step};
use crate::clock::Clock;
use crate::config::SecretConfig;
use crate::error::{AwsError, ErrorClass};
use crate::ids::{DeploymentId, SecretName, SecretRef, ServiceRef, VersionId};
use futures::future::BoxFuture;
use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// A foreign AWSPENDING younger than this may belong to a rotation running right now.
pub const FOREIGN_PENDING_GRACE: Duration = Duration::from_secs(3600);
/// Forced deployments started at once per rotation.
const DEPLOY_CONCURRENCY: usize = 8;

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
        attempt: u32,
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
    /// IAM and STS for the `iam-access-key` target.
    pub iam: Arc<dyn IamApi>,
}

impl<S: SecretStore, D: Deployer> Engine<S, D> {
    /// The IAM client defaults to one loaded from the environment on first use; give the
    /// process's own with [`Engine::with_iam`] (or a fake in tests).
    pub fn new(store: S, deployer: D, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            deployer,
            clock,
            iam: Arc::new(crate::aws::iam::AwsIam::from_environment()),
        }
    }

    pub fn with_iam(mut self, iam: Arc<dyn IamApi>) -> Self {
        self.iam = iam;
        self
    }

    fn target_env<'a>(&'a self, cfg: &'a SecretConfig) -> TargetEnv<'a, S> {
        TargetEnv {
            cfg,
            store: &self.store,
            iam: self.iam.as_ref(),
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
        match pending {
            Some(p) if p == current => Phase::FinishPending { version: p.clone() },
            Some(p) => match attempt_of(&meta.arn, current, p) {
                Some(attempt) => Phase::Resume {
                    version: p.clone(),
                    attempt,
                },
                None => Phase::Foreign { version: p.clone() },
            },
            None => {
                let ours = meta
                    .version_with(AWSPREVIOUS)
                    .is_some_and(|prev| attempt_of(&meta.arn, prev, current).is_some());
                if ours && meta.deployed_version_tag().as_ref() != Some(current) {
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
        match self.rotate_inner(cfg, opts, obs).await {
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
        let meta = self.store.describe(s).await.map_err(aws(Step::Start))?;
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
            self.store
                .update_stage(s, AWSPENDING, None, Some(version))
                .await
                .map_err(aws(Step::Create))?;
            let next = attempt + 1;
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
                let (_, value) = self
                    .store
                    .get_value(s, Select::Version(&version, AWSPENDING))
                    .await
                    .map_err(aws(Step::Start))?;
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
                self.deploy_and_tag(cfg, s, &version, report, obs).await
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
                self.deploy_and_tag(cfg, s, &version, report, obs).await
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
        target::set(&env, &value)
            .await
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
            .store
            .get_value(s, Select::Version(&version, AWSPENDING))
            .await
            .map_err(aws(Step::Test))?;
        if read_version != version || digest(&read) != digest(&value) {
            return Err(RotationError::Mismatch);
        }
        target::test(&env, &value)
            .await
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
        self.deploy_and_tag(cfg, s, &version, report, obs).await
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
            match self.store.put_pending(s, &tok, &value).await {
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
                    let now = self.store.describe(s).await.map_err(aws(Step::Create))?;
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
                            .store
                            .get_value(s, Select::Version(&tok, AWSPENDING))
                            .await
                            .map_err(aws(Step::Create))?;
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
            return target::create_value(&self.target_env(cfg))
                .await
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
            .store
            .get_value(s, Select::Stage(AWSCURRENT))
            .await
            .map_err(aws(Step::Create))?;
        let jerr = |why: &str| RotationError::Json {
            key: key.clone(),
            why: why.into(),
        };
        let mut doc: serde_json::Value = serde_json::from_str(current.expose_secret())
            .map_err(|_| jerr("the current value is not JSON"))?;
        let obj = doc
            .as_object_mut()
            .ok_or_else(|| jerr("the current value is not a JSON object"))?;
        obj.insert(
            key.clone(),
            serde_json::Value::String(generated.expose_secret().to_owned()),
        );
        let out = serde_json::to_string(&doc).map_err(|_| jerr("cannot serialize"))?;
        Ok(SecretString::from(out))
    }

    async fn move_current(
        &self,
        s: &SecretRef,
        version: &VersionId,
        current: &VersionId,
    ) -> Result<(), RotationError> {
        match self
            .store
            .update_stage(s, AWSCURRENT, Some(version), Some(current))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => {
                // A replica may have moved it already; that is success.
                let meta = self.store.describe(s).await.map_err(aws(Step::Finish))?;
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
            .store
            .update_stage(s, AWSPENDING, None, Some(version))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => {
                let meta = self.store.describe(s).await.map_err(aws(Step::Finish))?;
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
        let versions = self.store.versions(s).await.map_err(aws(Step::Start))?;
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
        self.store
            .update_stage(s, AWSPENDING, None, Some(version))
            .await
            .map_err(aws(Step::Start))
    }

    /// Checks that every consumer exists and can be force-redeployed, before any change.
    async fn precheck(&self, cfg: &SecretConfig) -> Result<(), RotationError> {
        let mut verdicts = BTreeMap::new();
        let mut bad = false;
        for (cluster, services) in group_by_cluster(&cfg.redeploy) {
            for chunk in services.chunks(DESCRIBE_BATCH) {
                let names: Vec<_> = chunk.iter().map(|s| s.service.clone()).collect();
                let states = self
                    .deployer
                    .describe(cfg.account(), &cluster, &names)
                    .await
                    .map_err(aws(Step::Start))?;
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

    async fn deploy_and_tag(
        &self,
        cfg: &SecretConfig,
        s: &SecretRef,
        version: &VersionId,
        mut report: Report,
        obs: &dyn Observer,
    ) -> Result<Report, RotationError> {
        if !cfg.redeploy.is_empty() {
            let verdicts = self.redeploy(cfg, version, obs).await?;
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
            self.note(
                obs,
                cfg,
                Step::Revoke,
                Some(version),
                "revoking the previous value",
            );
            let previous = self
                .store
                .get_value(s, Select::Stage(AWSPREVIOUS))
                .await
                .ok();
            let value = self
                .store
                .get_value(s, Select::Version(version, AWSCURRENT))
                .await
                .map_err(aws(Step::Revoke))?
                .1;
            target::revoke(
                &self.target_env(cfg),
                &value,
                previous.as_ref().map(|p| &p.1),
            )
            .await
            .map_err(|e| RotationError::Target {
                step: Step::Revoke,
                source: e,
            })?;
        }
        let now = self
            .clock
            .now()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        self.store
            .tag(
                s,
                &[
                    (TAG_LAST_ROTATED, now),
                    (TAG_DEPLOYED_VERSION, version.as_str().to_owned()),
                ],
            )
            .await
            .map_err(aws(Step::Done))?;
        self.note(obs, cfg, Step::Done, Some(version), "rotation complete");
        report.outcome = Outcome::Success;
        Ok(report)
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
        obs: &dyn Observer,
    ) -> Result<BTreeMap<ServiceRef, ServiceVerdict>, RotationError> {
        let account = cfg.account();
        self.note(
            obs,
            cfg,
            Step::Redeploy,
            Some(version),
            &format!(
                "forcing a new deployment of {} services",
                cfg.redeploy.len()
            ),
        );
        let jobs: Vec<BoxFuture<'_, (ServiceRef, Result<DeploymentId, AwsError>)>> = cfg
            .redeploy
            .iter()
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
                    tracing::info!(secret = %cfg.name, cluster = %svc.cluster, service = %svc.service, deployment = %d, "deployment started");
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
        let m = crate::metrics::get();
        for (svc, v) in &waited {
            m.wait_duration
                .with_label_values(&[v.label()])
                .observe(secs);
            let _ = svc;
        }
        verdicts.extend(waited);
        for (svc, v) in &verdicts {
            m.redeploys
                .with_label_values(&[svc.cluster.as_str(), svc.service.as_str(), v.label()])
                .inc();
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
    ) -> (ServiceRef, Result<DeploymentId, AwsError>) {
        (svc.clone(), self.deployer.force_deploy(account, svc).await)
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
            if cfg.json_key.is_some() {
                // Read-only check that the current value is a JSON object.
                let (_, cur) = self
                    .store
                    .get_value(&cfg.secret, Select::Stage(AWSCURRENT))
                    .await
                    .map_err(aws(Step::Create))?;
                let ok = serde_json::from_str::<serde_json::Value>(cur.expose_secret())
                    .map(|v| v.is_object())
                    .unwrap_or(false);
                if !ok {
                    return Err(RotationError::Json {
                        key: cfg.json_key.clone().unwrap_or_default(),
                        why: "the current value is not a JSON object".into(),
                    });
                }
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

fn group_by_cluster(
    services: &[ServiceRef],
) -> BTreeMap<crate::ids::ClusterName, Vec<&ServiceRef>> {
    let mut m: BTreeMap<_, Vec<&ServiceRef>> = BTreeMap::new();
    for s in services {
        m.entry(s.cluster.clone()).or_default().push(s);
    }
    m
}
