//! The last step ("done": record the rotation in the store's tags) and what a run reports:
//! [`Outcome`] and [`Report`].

use super::context::Rotation;
use super::RotationError;
use crate::config::SecretConfig;
use crate::ids::{SecretName, VersionId};
use crate::rotation::deploy::Deployer;
use crate::rotation::restart::CommandVerdict;
use crate::rotation::store::{SecretStore, TAG_DEPLOYED_VERSION, TAG_LAST_ROTATED};
use crate::rotation::wait::ServiceVerdict;
use crate::rotation::Step;
use std::collections::BTreeMap;

/// How a rotation ended, as an operator reads it (also the `outcome` metric label).
///
/// A run that returns `Ok` reports [`Success`](Outcome::Success),
/// [`DryRun`](Outcome::DryRun) or [`AlreadyRotated`](Outcome::AlreadyRotated); the other
/// outcomes come from [`RotationError::outcome`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Done: the new value is AWSCURRENT, every consumer is stable on a deployment started
    /// after it became current, the previous value is revoked (targets that revoke), and
    /// the `last-rotated` and `deployed-version` tags say so. Nothing to do until the next
    /// due time.
    Success,
    /// Nothing was changed (dry run); the report's `plan` lists what a real run would do.
    DryRun,
    /// Another rotator (a replica, a manual `rotate`) already replaced the version this
    /// run was asked to replace; this run changed nothing. Not counted as a rotation.
    AlreadyRotated,
    /// A step failed (the error names it): a store, target or ECS error, a timeout, a
    /// consumer that cannot be redeployed, a consumer command that exited non-zero. The
    /// secret stays due and is retried; once the new value is current, a retry only
    /// redeploys (and runs the consumer commands again). Alerted after the retries run out.
    Failed,
    /// The new value is current but a consumer's deployment rolled back (ECS circuit
    /// breaker, or replaced by another deployment that failed): look at that service. The
    /// old value was not revoked, so whatever still runs on it keeps working; retried.
    RolledBack,
    /// A consumer did not become stable within `stable_timeout` (tasks not starting or
    /// not healthy), or a consumer command (or its verify) did not succeed within its
    /// timeout. Not revoked; retried.
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

/// What a run that did not fail did: the `rotate` command prints it, the scheduler
/// records its outcome. (A failed run returns a [`RotationError`] instead.)
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    pub secret: SecretName,
    pub outcome: Outcome,
    /// The version that is (or would become) AWSCURRENT.
    pub version: Option<VersionId>,
    /// The version it replaced (AWSPREVIOUS after the finish).
    pub previous: Option<VersionId>,
    /// Where this run picked up an earlier, interrupted rotation.
    pub resumed: Option<String>,
    /// Each ECS consumer (`cluster/service`) and its verdict.
    pub services: BTreeMap<String, ServiceVerdict>,
    /// Each consumer restarted by command (its argv as one line) and its verdict.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub commands: BTreeMap<String, CommandVerdict>,
    /// Dry run: what would be done, in order.
    pub plan: Vec<String>,
}

impl Report {
    /// A run that starts replacing `current`; the steps fill in the rest.
    pub(super) fn starting(cfg: &SecretConfig, current: &VersionId) -> Self {
        Report {
            secret: cfg.name.clone(),
            outcome: Outcome::Success,
            version: None,
            previous: Some(current.clone()),
            resumed: None,
            services: BTreeMap::new(),
            commands: BTreeMap::new(),
            plan: Vec::new(),
        }
    }

    /// Nothing done: another rotator got there first.
    pub(super) fn already_rotated(
        cfg: &SecretConfig,
        version: Option<VersionId>,
        previous: Option<VersionId>,
    ) -> Self {
        Report {
            secret: cfg.name.clone(),
            outcome: Outcome::AlreadyRotated,
            version,
            previous,
            resumed: None,
            services: BTreeMap::new(),
            commands: BTreeMap::new(),
            plan: Vec::new(),
        }
    }
}

impl<S: SecretStore, D: Deployer> Rotation<'_, S, D> {
    /// The last step: the tags that make the rotation count as done (`due` reads them).
    /// Written only once consumers are stable and the old value is revoked, so a rotation
    /// that failed before stays due and is retried as a redeploy.
    pub(super) async fn done(mut self, version: &VersionId) -> Result<Report, RotationError> {
        let s = self.secret();
        let now = self
            .engine
            .clock
            .now()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let tags = [
            (TAG_LAST_ROTATED, now),
            (TAG_DEPLOYED_VERSION, version.as_str().to_owned()),
        ];
        self.call(Step::Done, || self.store().tag(s, &tags)).await?;
        self.note(Step::Done, Some(version), "rotation complete");
        self.report.outcome = Outcome::Success;
        Ok(self.report)
    }

    /// Our create found that another rotator finished while we generated: nothing done.
    pub(super) fn rotated_meanwhile(self) -> Report {
        self.note(
            Step::Done,
            None,
            "already rotated by another rotator; nothing to do",
        );
        Report::already_rotated(self.cfg, None, None)
    }
}
