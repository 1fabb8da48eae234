//! What a configured target does during a rotation: the one trait every kind implements.

use super::{TargetEnv, TargetError};
use crate::config::SecretConfig;
use futures::future::BoxFuture;
use secrecy::SecretString;
use std::any::Any;
use std::fmt::Debug;
use std::time::Duration;

/// A target as its kind validated it (one secret's `target` table), and its steps.
///
/// The defaults are those of a target that is only told nothing: no value of its own,
/// no set, test or revoke, the engine's step deadline. Every step must be safe to run
/// again after a crash (the engine resumes at "set" with the stored pending value and
/// runs "revoke" again when the deployed-version tag was not written), and no error or
/// log line may hold a secret value (see [`super::Masker`]).
pub trait ConfiguredTarget: AsAny + Debug + Send + Sync + 'static {
    /// The `kind = "..."` it was configured with (logs, `plan`, `check`).
    fn kind(&self) -> &'static str;

    /// Whether it makes the new value itself ([`ConfiguredTarget::create_value`])
    /// instead of the engine's generator (and `json_key`).
    fn makes_value(&self) -> bool {
        false
    }

    /// Whether a retry after a failure drops the pending value and makes a new one (a
    /// value the target refused once would likely be refused again). `false` when only
    /// the pending value can still reach the target once "set" ran.
    fn fresh_value_on_retry(&self) -> bool {
        true
    }

    /// Whether "set" changes anything outside the store: such a set runs only while the
    /// rotation holds its lease.
    fn has_set(&self) -> bool {
        false
    }

    /// Whether it has a revoke step (run only after every consumer is stable; checked
    /// against the lease like "set").
    fn has_revoke(&self) -> bool {
        false
    }

    /// The deadline of each of its steps (set, test, revoke), given the configured
    /// `[daemon] step_timeout`.
    fn step_budget(&self, step_timeout: Duration) -> Duration {
        step_timeout
    }

    /// Step 2 for a target that [`makes_value`](ConfiguredTarget::makes_value): the
    /// pending value.
    fn create_value<'a>(
        &'a self,
        env: &'a TargetEnv<'a>,
    ) -> BoxFuture<'a, Result<SecretString, TargetError>> {
        let _ = env;
        let kind = self.kind();
        Box::pin(async move {
            Err(TargetError::Other(format!(
                "target kind \"{kind}\" does not make values"
            )))
        })
    }

    /// Step 3: tells the target about the pending value.
    fn set<'a>(
        &'a self,
        env: &'a TargetEnv<'a>,
        value: &'a SecretString,
    ) -> BoxFuture<'a, Result<(), TargetError>> {
        let _ = (env, value);
        Box::pin(async { Ok(()) })
    }

    /// Step 4: checks that the pending value works.
    fn test<'a>(
        &'a self,
        env: &'a TargetEnv<'a>,
        value: &'a SecretString,
    ) -> BoxFuture<'a, Result<(), TargetError>> {
        let _ = (env, value);
        Box::pin(async { Ok(()) })
    }

    /// Step 8: invalidates the previous value. `current` is the value now current,
    /// `previous` the one it replaced (AWSPREVIOUS), when there is one.
    fn revoke<'a>(
        &'a self,
        env: &'a TargetEnv<'a>,
        current: &'a SecretString,
        previous: Option<&'a SecretString>,
    ) -> BoxFuture<'a, Result<(), TargetError>> {
        let _ = (env, current, previous);
        Box::pin(async { Ok(()) })
    }

    /// For a dry run: how it makes its value (when it does).
    fn describe_create(&self, cfg: &SecretConfig) -> Option<String> {
        let _ = cfg;
        None
    }

    /// For a dry run: what revoke will do (when it has one).
    fn describe_revoke(&self) -> String {
        "revoke the previous value".into()
    }

    /// `check --remote`: what the kind can verify on the live system with the configured
    /// credentials (say, the user exists and the admin may alter it), one finding per
    /// line; `Err` when the check could not run. Nothing is changed.
    fn check_remote<'a>(
        &'a self,
        env: &'a TargetEnv<'a>,
    ) -> BoxFuture<'a, Result<Vec<RemoteFinding>, TargetError>> {
        let _ = env;
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Weaker-than-default settings worth a warning at `check` (allowed, because
    /// written), each naming the secret.
    fn warnings(&self, cfg: &SecretConfig) -> Vec<String> {
        let _ = cfg;
        Vec::new()
    }
}

/// One line of a target's `check --remote`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteFinding {
    /// A rotation would fail or do harm: `check --remote` exits 1.
    Problem(String),
    /// It works, with a risk worth knowing (printed as a warning; the exit status is
    /// unchanged).
    Warning(String),
    /// How things stand (printed).
    Note(String),
}

/// `&dyn Any` of a configured target, for [`crate::config::Target::downcast_ref`]
/// (implemented for every type; nothing to write).
pub trait AsAny {
    fn as_any(&self) -> &dyn Any;
}

impl<T: Any> AsAny for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
}
