//! One rotation of one secret: a small state machine over a [`store::SecretStore`] and a
//! [`deploy::Deployer`], safe to crash at any point and to run twice (see `engine`).

pub mod deploy;
mod engine;
pub mod generate;
pub mod lease;
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
