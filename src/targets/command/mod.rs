//! The `command` target: operator programs run for set, test and revoke.
//!
//! No shell: the argv runs as given (an absolute path, checked in config). The value goes
//! to stdin only (never argv or the environment, which other users can read in /proc).
//!
//! The environment is not inherited: the daemon's AWS credentials and session tokens,
//! `NOTIFY_SOCKET` and the rest stay with the daemon. A program gets only `PATH`
//! ([`DEFAULT_PATH`]), `LANG` (the daemon's, else `C.UTF-8`), `SECRET_ROTATOR_SECRET`
//! (the secret's name), `SECRET_ROTATOR_STEP` (set, test or revoke), and the target's
//! `env = { ... }` from config (which may replace PATH and LANG). The exit status is the verdict; a
//! program that outlives `timeout` is killed with its whole process group. Its output is
//! logged, and its last stderr line is quoted in the error, with the value masked.

mod config;
mod run;

pub use config::{Command, CommandTarget, RawCommand};
pub use run::{run_step, DEFAULT_PATH};

use crate::config::TargetKind;
use crate::rotation::target::{ConfiguredTarget, TargetEnv, TargetError};
use futures::future::BoxFuture;
use secrecy::SecretString;
use std::time::Duration;

/// The program's own `timeout` kills its process group and reports its output; the step
/// deadline leaves it this long to do so first.
const GRACE: Duration = Duration::from_secs(30);

impl ConfiguredTarget for CommandTarget {
    fn kind(&self) -> &'static str {
        Command::NAME
    }

    fn has_set(&self) -> bool {
        self.set.is_some()
    }

    fn has_revoke(&self) -> bool {
        self.revoke.is_some()
    }

    /// The step timeout, or the program's own timeout plus `GRACE` (to report a timeout)
    /// when that is longer.
    fn step_budget(&self, step_timeout: Duration) -> Duration {
        step_timeout.max(self.timeout + GRACE)
    }

    fn set<'a>(
        &'a self,
        env: &'a TargetEnv<'a>,
        value: &'a SecretString,
    ) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(run_step(self, "set", value, env.cfg))
    }

    fn test<'a>(
        &'a self,
        env: &'a TargetEnv<'a>,
        value: &'a SecretString,
    ) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(run_step(self, "test", value, env.cfg))
    }

    /// The revoke program gets the previous value; without one there is nothing to revoke.
    fn revoke<'a>(
        &'a self,
        env: &'a TargetEnv<'a>,
        _current: &'a SecretString,
        previous: Option<&'a SecretString>,
    ) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(async move {
            match previous {
                Some(prev) => run_step(self, "revoke", prev, env.cfg).await,
                None => Ok(()),
            }
        })
    }
}

/// "set command /usr/local/bin/set-key failed: exit status 1: ...".
#[derive(Debug, thiserror::Error)]
#[error("{step} command {program} failed: {detail}")]
pub struct CommandError {
    pub step: &'static str,
    pub program: String,
    pub detail: String,
}

impl From<CommandError> for TargetError {
    fn from(e: CommandError) -> Self {
        TargetError::Custom(Box::new(e))
    }
}
