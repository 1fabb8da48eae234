//! The systems that must learn a new value before it becomes current (step 3 "set",
//! step 4 "test") and may have to forget the old one (step 8 "revoke").
//!
//! Each kind of target is a [`ConfiguredTarget`] (made from its `target` table by a
//! [`crate::config::TargetKind`]); the functions here are what the engine calls, the
//! same for every kind. The core knows only `none`: the binary registers the others
//! (its `targets` module lists them with what each does).
//!
//! Every step must be safe to run again after a crash: the engine resumes an interrupted
//! rotation at "set" with the stored pending value, and runs "revoke" again when the
//! deployed-version tag was not written. Revoke runs only after every consumer service
//! was confirmed stable on the new value (never after a failed or rolled-back redeploy).

mod configured;
mod env;
pub mod iam_port;
mod mask;

pub use configured::{AsAny, ConfiguredTarget, RemoteFinding};
pub use env::{TargetClients, TargetEnv, TargetStore};
pub use iam_port::{AccessKeyInfo, IamApi, NewAccessKey};
pub use mask::{mask_value, Masker};

use crate::config::{SecretConfig, Target};
use crate::error::AwsError;
use secrecy::SecretString;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// A kind's own failure, as `KIND: message`; the message never holds a secret value
    /// (it is masked).
    #[error("{kind}: {message}")]
    Kind { kind: &'static str, message: String },
    /// A kind's own error type, shown as it is.
    #[error("{0}")]
    Custom(Box<dyn std::error::Error + Send + Sync + 'static>),
    /// An AWS call failed (code and request id kept).
    #[error("{0}")]
    Aws(#[from] AwsError),
    #[error("{0}")]
    Other(String),
}

/// Whether the target makes the new value itself instead of the engine's generator
/// (and `json_key`): some kinds write their own JSON shapes.
pub fn makes_value(target: &Target) -> bool {
    target.ops().makes_value()
}

/// Whether a retry after a failure should drop the pending value and make a new one.
pub fn fresh_value_on_retry(target: &Target) -> bool {
    target.ops().fresh_value_on_retry()
}

/// Whether the target has a revoke step at all.
pub fn has_revoke(target: &Target) -> bool {
    target.ops().has_revoke()
}

/// The deadline of each target step (set, test, revoke) under `[daemon] step_timeout`.
pub fn step_budget(target: &Target, step_timeout: Duration) -> Duration {
    target.ops().step_budget(step_timeout)
}

/// Makes the new value for targets that own it (see [`makes_value`]).
pub async fn create_value(env: &TargetEnv<'_>) -> Result<SecretString, TargetError> {
    env.cfg.target.ops().create_value(env).await
}

/// Step 3: tells the target about the pending value.
pub async fn set(env: &TargetEnv<'_>, value: &SecretString) -> Result<(), TargetError> {
    let target = env.cfg.target.ops();
    if target.has_set() {
        // Under a lease (several replicas): only the holder may change the target.
        super::lease::fence::check_target("set").await?;
    }
    target.set(env, value).await
}

/// Step 4: checks that the pending value works.
pub async fn test(env: &TargetEnv<'_>, value: &SecretString) -> Result<(), TargetError> {
    env.cfg.target.ops().test(env, value).await
}

/// Step 8: invalidates the previous value. `current` is the value now current,
/// `previous` the one it replaced (AWSPREVIOUS), when it could be read.
pub async fn revoke(
    env: &TargetEnv<'_>,
    current: &SecretString,
    previous: Option<&SecretString>,
) -> Result<(), TargetError> {
    let target = env.cfg.target.ops();
    if target.has_revoke() {
        super::lease::fence::check_target("revoke").await?;
    }
    target.revoke(env, current, previous).await
}

/// `check --remote`: the target's own problems on the live system (read-only).
pub async fn check_remote(env: &TargetEnv<'_>) -> Result<Vec<RemoteFinding>, TargetError> {
    env.cfg.target.ops().check_remote(env).await
}

/// Weaker-than-default settings worth a warning at `check` (allowed, because written).
pub fn config_warnings(cfg: &SecretConfig) -> Vec<String> {
    cfg.target.ops().warnings(cfg)
}

/// For a dry run: how a target that makes its own value makes it.
pub fn describe_create(cfg: &SecretConfig) -> Option<String> {
    cfg.target.ops().describe_create(cfg)
}

/// For a dry run: what revoke will do.
pub fn describe_revoke(target: &Target) -> String {
    target.ops().describe_revoke()
}
