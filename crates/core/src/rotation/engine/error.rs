//! [`RotationError`]: why a rotation failed, and at which step.

use super::phase::FOREIGN_PENDING_GRACE;
use super::CommandVerdicts;
use super::Outcome;
use crate::error::AwsError;
use crate::ids::{ServiceRef, VersionId};
use crate::rotation::generate::GenerateError;
use crate::rotation::restart::CommandVerdict;
use crate::rotation::target::TargetError;
use crate::rotation::token::MAX_ATTEMPTS;
use crate::rotation::wait::ServiceVerdict;
use crate::rotation::Step;
use std::collections::BTreeMap;
use std::time::Duration;

/// A failed rotation. The text names the step and, for AWS errors, the code and request
/// id; it never holds a secret value.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error("{step}: {source}")]
    Aws { step: Step, source: AwsError },
    /// A call outside the process did not answer within the step deadline.
    #[error("{step}: timed out after {}", crate::config::duration::format(*.after))]
    Timeout { step: Step, after: Duration },
    /// The whole rotation ran past its overall deadline (see [`super::Engine::rotation_deadline`]).
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
    #[error("create: no free client request token: {MAX_ATTEMPTS} in a row were taken (the next run tries the ones after them)")]
    Exhausted,
    /// A consumer could not be redeployed or did not become stable (ECS), or its command
    /// failed or timed out. Both maps hold every consumer of its kind, good ones too.
    #[error("{step}: {}", summary(.verdicts, .commands))]
    Consumers {
        step: Step,
        verdicts: BTreeMap<ServiceRef, ServiceVerdict>,
        commands: CommandVerdicts,
    },
}

impl RotationError {
    /// The outcome label for metrics.
    pub fn outcome(&self) -> Outcome {
        match self {
            RotationError::Consumers {
                verdicts, commands, ..
            } => {
                if verdicts
                    .values()
                    .any(|v| matches!(v, ServiceVerdict::RolledBack { .. }))
                {
                    Outcome::RolledBack
                } else if verdicts
                    .values()
                    .any(|v| matches!(v, ServiceVerdict::Stalled { .. }))
                    || commands
                        .values()
                        .any(|v| matches!(v, CommandVerdict::TimedOut { .. }))
                {
                    // A consumer not healthy within its timeout, whichever kind.
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
            RotationError::Generate(_) | RotationError::Json { .. } | RotationError::Exhausted => {
                Step::Create
            }
        }
    }
}

fn summary(v: &BTreeMap<ServiceRef, ServiceVerdict>, c: &CommandVerdicts) -> String {
    let mut bad: Vec<String> = v
        .iter()
        .filter(|(_, v)| **v != ServiceVerdict::Stable)
        .map(|(s, v)| format!("{s} {v}"))
        .collect();
    let services = bad.len();
    bad.extend(
        c.iter()
            .filter(|(_, v)| !v.is_ok())
            .map(|(k, v)| format!("{k} {v}")),
    );
    let what = match (v.is_empty(), c.is_empty()) {
        (false, true) => format!("{} of {} services not stable", bad.len(), v.len()),
        (true, false) => format!("{} of {} consumer commands failed", bad.len(), c.len()),
        _ => format!(
            "{services} of {} services not stable, {} of {} consumer commands failed",
            v.len(),
            bad.len() - services,
            c.len()
        ),
    };
    format!("{what}: {}", bad.join("; "))
}

/// An AWS error attributed to `step`.
pub(super) fn aws(step: Step) -> impl FnOnce(AwsError) -> RotationError {
    move |source| RotationError::Aws { step, source }
}
