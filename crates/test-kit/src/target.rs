//! A target kind that exists only in tests: [`FakeTarget`], a scriptable
//! [`ConfiguredTarget`] for tests that need "a target whose set fails", "a target whose
//! test never answers" or "a target with a revoke step", without running a program or
//! calling IAM.
//!
//! Each of set, test and revoke succeeds at once unless scripted to fail (with a chosen
//! error), to take time (tokio time, so paused clocks jump over it) or to never answer.
//! Every call is logged ([`TargetCall`]): its step, whether revoke got a previous value,
//! and how it ended. The fake never keeps, logs or shows a value.

use crate::lock;
use futures::future::BoxFuture;
use rotator_core::config::Target;
use rotator_core::rotation::target::{ConfiguredTarget, TargetEnv, TargetError};
use rotator_core::rotation::Step;
use secrecy::SecretString;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The `kind` the fake reports (and the `kind` of the errors made by [`FakeTarget::fail`]).
pub const KIND: &str = "fake";

type MakeError = Arc<dyn Fn() -> TargetError + Send + Sync>;

/// How one step answers.
#[derive(Clone, Default)]
struct Script {
    fail: Option<MakeError>,
    delay: Duration,
    hang: bool,
}

/// One call of a step, as the fake saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetCall {
    pub step: Step,
    /// Revoke only: whether the engine passed the previous value (false: "nothing to
    /// revoke"). Always false for set and test.
    pub previous: bool,
    /// None while the call runs (or after it was dropped: a step timeout, a lost lease);
    /// then whether it succeeded.
    pub ok: Option<bool>,
}

#[derive(Default)]
struct State {
    scripts: BTreeMap<Step, Script>,
    has_revoke: bool,
    calls: Vec<TargetCall>,
}

/// A scriptable target; a cheap handle over shared state: put [`FakeTarget::target`] in
/// a `SecretConfig` and keep the handle to script and inspect it.
#[derive(Clone, Default)]
pub struct FakeTarget {
    state: Arc<Mutex<State>>,
}

impl FakeTarget {
    /// Set and test succeed at once; no revoke step.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same fake with a revoke step (run by the engine after every consumer is
    /// stable).
    pub fn with_revoke(self) -> Self {
        lock(&self.state).has_revoke = true;
        self
    }

    /// The configured target for a `SecretConfig` (`cfg.target = fake.target()`).
    pub fn target(&self) -> Target {
        Target::new(self.clone())
    }

    /// Every later call of `step` fails with `fake: <message>`.
    pub fn fail(&self, step: Step, message: &str) {
        let message = message.to_owned();
        self.fail_with(step, move || TargetError::Kind {
            kind: KIND,
            message: message.clone(),
        });
    }

    /// Every later call of `step` fails with the error `make` returns.
    pub fn fail_with(&self, step: Step, make: impl Fn() -> TargetError + Send + Sync + 'static) {
        self.script(step, |s| s.fail = Some(Arc::new(make)));
    }

    /// Every later call of `step` succeeds again (delays and hangs stay).
    pub fn succeed(&self, step: Step) {
        self.script(step, |s| s.fail = None);
    }

    /// Every later call of `step` takes `d` (tokio time) before it answers.
    pub fn delay(&self, step: Step, d: Duration) {
        self.script(step, |s| s.delay = d);
    }

    /// Every later call of `step` never answers (until the engine gives up on it).
    pub fn hang(&self, step: Step) {
        self.script(step, |s| s.hang = true);
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<TargetCall> {
        lock(&self.state).calls.clone()
    }

    /// How many times `step` was called (however the calls ended).
    pub fn count(&self, step: Step) -> usize {
        lock(&self.state)
            .calls
            .iter()
            .filter(|c| c.step == step)
            .count()
    }

    fn script(&self, step: Step, f: impl FnOnce(&mut Script)) {
        assert!(
            matches!(step, Step::Set | Step::Test | Step::Revoke),
            "a target has set, test and revoke steps, not {step}"
        );
        f(lock(&self.state).scripts.entry(step).or_default());
    }

    async fn run(&self, step: Step, previous: bool) -> Result<(), TargetError> {
        let (n, script) = {
            let mut st = lock(&self.state);
            st.calls.push(TargetCall {
                step,
                previous,
                ok: None,
            });
            let script = st.scripts.get(&step).cloned().unwrap_or_default();
            (st.calls.len() - 1, script)
        };
        if script.hang {
            std::future::pending::<()>().await;
        }
        if !script.delay.is_zero() {
            tokio::time::sleep(script.delay).await;
        }
        let r = script.fail.map_or(Ok(()), |make| Err(make()));
        lock(&self.state).calls[n].ok = Some(r.is_ok());
        r
    }
}

/// Shows the script and the calls; there is no value to show.
impl fmt::Debug for FakeTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = lock(&self.state);
        let scripts: Vec<String> = st
            .scripts
            .iter()
            .map(|(step, s)| {
                format!(
                    "{step}: {}{}{}",
                    if s.fail.is_some() {
                        "fails"
                    } else {
                        "succeeds"
                    },
                    if s.delay.is_zero() {
                        String::new()
                    } else {
                        format!(" after {:?}", s.delay)
                    },
                    if s.hang { ", never answers" } else { "" }
                )
            })
            .collect();
        f.debug_struct("FakeTarget")
            .field("scripts", &scripts)
            .field("has_revoke", &st.has_revoke)
            .field("calls", &st.calls)
            .finish()
    }
}

impl ConfiguredTarget for FakeTarget {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// Set changes the target: under a lease it runs only while the lease is held.
    fn has_set(&self) -> bool {
        true
    }

    fn has_revoke(&self) -> bool {
        lock(&self.state).has_revoke
    }

    fn set<'a>(
        &'a self,
        _env: &'a TargetEnv<'a>,
        _value: &'a SecretString,
    ) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(self.run(Step::Set, false))
    }

    fn test<'a>(
        &'a self,
        _env: &'a TargetEnv<'a>,
        _value: &'a SecretString,
    ) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(self.run(Step::Test, false))
    }

    fn revoke<'a>(
        &'a self,
        _env: &'a TargetEnv<'a>,
        _current: &'a SecretString,
        previous: Option<&'a SecretString>,
    ) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(self.run(Step::Revoke, previous.is_some()))
    }
}

#[cfg(test)]
mod tests;
