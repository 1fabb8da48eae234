//! [`Rotation`]: one run of the state machine, so that every step takes `&self` instead
//! of the secret's configuration, the store, the versions read and the observer one by
//! one. [`Progress`] remembers the step reached for the overall-deadline error.

use super::{Engine, Report, RotateOptions, RotationError};
use crate::config::SecretConfig;
use crate::error::AwsError;
use crate::ids::{SecretName, SecretRef, ServiceRef, VersionId};
use crate::rotation::deploy::{Deployer, Judgement};
use crate::rotation::store::{SecretMeta, SecretStore};
use crate::rotation::target::TargetEnv;
use crate::rotation::{Observer, Step};
use futures::future::BoxFuture;
use std::future::Future;
use std::time::Duration;

/// Passes progress on and remembers the step reached (for the overall-deadline error).
pub(super) struct Progress<'a> {
    inner: &'a dyn Observer,
    step: std::sync::Mutex<Step>,
}

impl<'a> Progress<'a> {
    pub(super) fn new(inner: &'a dyn Observer) -> Self {
        Self {
            inner,
            step: std::sync::Mutex::new(Step::Start),
        }
    }

    /// The last step announced.
    pub(super) fn reached(&self) -> Step {
        self.step.lock().map(|s| *s).unwrap_or(Step::Start)
    }
}

impl Observer for Progress<'_> {
    fn step(&self, secret: &SecretName, step: Step, detail: &str) {
        if let Ok(mut s) = self.step.lock() {
            *s = step;
        }
        self.inner.step(secret, step, detail);
    }
    fn service_progress(&self, svc: &ServiceRef, j: &Judgement, running: i32, desired: i32) {
        self.inner.service_progress(svc, j, running, desired);
    }
}

/// Everything one rotation run works with. Built once DescribeSecret has answered and the
/// phase is known (see `start`); the steps read it, and the driver (`run`), the done step
/// and the dry run fill in the report.
pub(super) struct Rotation<'a, S, D> {
    /// The ports (store, deployer, IAM), clock, step timeout and telemetry.
    pub(super) engine: &'a Engine<S, D>,
    pub(super) cfg: &'a SecretConfig,
    pub(super) opts: RotateOptions,
    /// The caller's observer, behind the step tracker.
    pub(super) progress: &'a Progress<'a>,
    /// What DescribeSecret returned at the start: versions and their stages, tags, ARN,
    /// last change.
    pub(super) meta: SecretMeta,
    /// The AWSCURRENT version at the start: what a new version replaces.
    pub(super) current: VersionId,
    /// What the run will report, filled in as it goes.
    pub(super) report: Report,
}

impl<'a, S: SecretStore, D: Deployer> Rotation<'a, S, D> {
    pub(super) fn secret(&self) -> &'a SecretRef {
        &self.cfg.secret
    }

    pub(super) fn store(&self) -> &'a S {
        &self.engine.store
    }

    pub(super) fn deployer(&self) -> &'a D {
        &self.engine.deployer
    }

    pub(super) fn step_timeout(&self) -> Duration {
        self.engine.step_timeout
    }

    /// Runs one call outside the process under a deadline (see [`Engine::timed`]).
    pub(super) fn timed<'f, T: 'f, F>(
        &self,
        step: Step,
        after: Duration,
        make: impl FnOnce() -> F,
    ) -> impl Future<Output = Result<T, RotationError>> + 'f
    where
        F: Future<Output = T> + Send + 'f,
    {
        self.engine.timed(step, after, make)
    }

    /// A store (or ECS) call under the step timeout, its error attributed to `step`.
    pub(super) fn call<'f, T: 'f, F>(
        &self,
        step: Step,
        make: impl FnOnce() -> F,
    ) -> impl Future<Output = Result<T, RotationError>> + 'f
    where
        F: Future<Output = Result<T, AwsError>> + Send + 'f,
    {
        self.engine.call(step, make)
    }

    /// Logs the step and tells the observer.
    pub(super) fn note(&self, step: Step, version: Option<&VersionId>, detail: &str) {
        self.engine
            .note(self.progress, self.cfg, step, version, detail);
    }

    pub(super) fn target_env(&self) -> TargetEnv<'a> {
        self.engine.target_env(self.cfg)
    }

    /// The budget of a target step (set, test, revoke).
    pub(super) fn target_budget(&self) -> Duration {
        self.engine.target_budget(self.cfg)
    }
}

/// Builds a future on the heap from a plain function's frame, so that the async function
/// awaiting it holds a pointer, not the future (see [`Engine::timed`]).
pub(super) fn boxed<'f, T, F>(make: impl FnOnce() -> F) -> BoxFuture<'f, T>
where
    F: Future<Output = T> + Send + 'f,
{
    Box::pin(make())
}
