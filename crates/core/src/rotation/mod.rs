//! One rotation of one secret: a small state machine over a [`store::SecretStore`] and a
//! [`deploy::Deployer`], safe to crash at any point and to run twice (see `engine`).
//!
//! Layout:
//! - `engine/`: the state machine ([`Engine`]), one file per step, each step a method of
//!   one `Rotation` context (engine, config, options, observer, what the store returned):
//!   - `mod.rs`: [`Engine`], its builders and `rotate`, and the order of the steps
//!     (`Rotation::run`: phase -> create -> set/test -> finish -> redeploy -> wait ->
//!     revoke -> done).
//!   - `phase.rs`: phase detection, pure functions with their unit tests: where a run
//!     resumes (or "already rotated") from the stages and tags read, whether a foreign
//!     AWSPENDING is taken over, what a taken client request token means.
//!   - `context.rs`: the `Rotation` context, the step tracker behind the observer, and
//!     the boxing of every call outside the process (debug builds' stack).
//!   - `start.rs`: step 1, read the secret and detect the phase; the consumers' precheck,
//!     a foreign AWSPENDING taken over, a failed attempt's pending value dropped.
//!   - `create.rs`: step 2, the new value and its AWSPENDING version under a
//!     deterministic token.
//!   - `set_test.rs`: steps 3 and 4, the target's set and test, the read-back.
//!   - `finish.rs`: step 5, AWSCURRENT moved, AWSPENDING removed.
//!   - `redeploy.rs`: step 6, forced deployments (and which consumers need none).
//!   - `wait.rs`: step 7, the verdict of each consumer.
//!   - `restart.rs`: steps 6 and 7 for the consumers restarted by command, beside the
//!     ECS ones.
//!   - `revoke.rs`: step 8, the previous value revoked.
//!   - `report.rs`: the done tags, [`Outcome`] and [`Report`].
//!   - `dry_run.rs`: the plan of a dry run; `error.rs`: [`RotationError`].
//! - [`store`], [`deploy`], [`target`], [`lease`]: the ports (Secrets Manager, ECS, the
//!   systems that learn the value, per-secret leases) and their shared rules.
//! - [`wait`]: the rollout judgement and polling; [`generate`]: new values; [`token`]:
//!   deterministic client request tokens.
//! - [`process`]: the port that runs operator programs; [`restart`]: the consumers
//!   restarted by command (coalesced runs, verify with backoff, their verdicts).

pub mod coordinator;
pub mod deploy;
mod engine;
pub mod events;
pub mod generate;
pub mod lease;
pub mod process;
pub mod restart;
pub mod router;
pub mod store;
pub mod target;
pub mod token;
pub mod wait;

pub use engine::{Engine, Outcome, Report, RotateOptions, RotationError, DEFAULT_STEP_TIMEOUT};

use crate::ids::{SecretName, ServiceRef};
use deploy::Judgement;

/// The protocol steps, for progress and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Start,
    Create,
    Set,
    Test,
    Finish,
    Redeploy,
    Wait,
    Revoke,
    Done,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Step::Start => "start",
            Step::Create => "create",
            Step::Set => "set",
            Step::Test => "test",
            Step::Finish => "finish",
            Step::Redeploy => "redeploy",
            Step::Wait => "wait",
            Step::Revoke => "revoke",
            Step::Done => "done",
        };
        f.write_str(s)
    }
}

/// Receives progress as a rotation runs (the `rotate` command prints it).
pub trait Observer: Send + Sync {
    fn step(&self, _secret: &SecretName, _step: Step, _detail: &str) {}
    fn service_progress(&self, _svc: &ServiceRef, _j: &Judgement, _running: i32, _desired: i32) {}
}

/// An observer that ignores everything (the daemon logs instead).
pub struct Quiet;
impl Observer for Quiet {}
