//! The world of the engine tests (`tests/suite/engine.rs`): one secret, four consumer services
//! on cluster prod, the test kit's in-memory Secrets Manager and ECS behind fault
//! wrappers, on paused tokio time, and the assertions on what a rotation left behind.
//! The root crate's tests of the engine with the binary's target kinds (command, IAM)
//! include this file too (`#[path = "../crates/core/tests/common/world.rs"] mod memory;`),
//! so each user takes what it needs.
#![allow(dead_code)]

use chrono::{DateTime, SecondsFormat, Utc};
use rotator_core::clock::Clock;
use rotator_core::config::SecretConfig;
use rotator_core::error::{AwsError, ErrorClass};
use rotator_core::ids::{SecretArn, ServiceRef, VersionId};
use rotator_core::rotation::deploy::Deployer;
use rotator_core::rotation::store::{
    AWSCURRENT, AWSPENDING, AWSPREVIOUS, TAG_DEPLOYED_VERSION, TAG_LAST_ROTATED,
};
use rotator_core::rotation::wait::ServiceVerdict;
use rotator_core::rotation::{
    token, Engine, Outcome, Quiet, Report, RotateOptions, RotationError, Step,
};
use rotator_test_kit::errors::{access_denied, throttled};
use rotator_test_kit::secrets::{StoreCall, WRITE_OPS};
use rotator_test_kit::{
    at, Behaviour, FakeEcs, FakeStore, FaultPlan, Faulty, Latency, ManualClock, SecretBuilder,
    Sequence,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

pub const SECRET: &str = "app/db-password";
pub const CLUSTER: &str = "prod";
pub const SERVICES: [&str; 4] = ["front", "api", "pdf", "admin"];
pub const ORIGINAL_VALUE: &str = "the-original-value-3fj29Dk!q";
pub const START: Duration = Duration::from_secs(40);
pub const DRAIN: Duration = Duration::from_secs(20);
/// START + DRAIN: how long a healthy forced deployment takes to be stable.
pub const ROLLOUT: Duration = Duration::from_secs(60);
pub const STABLE_TIMEOUT: Duration = Duration::from_secs(600);
pub const WAITER_PERIOD_SECS: u64 = 15;

pub fn healthy() -> Behaviour {
    Behaviour::Healthy {
        start: START,
        drain: DRAIN,
    }
}

pub fn t0() -> DateTime<Utc> {
    at("2026-03-03T02:00:00Z")
}

pub fn svc(name: &str) -> ServiceRef {
    rotator_test_kit::svc(CLUSTER, name)
}

/// A `SecretConfig` for `SECRET` redeploying `services` on cluster prod.
pub fn config(services: &[&str]) -> SecretConfig {
    SecretBuilder::new("db-password", SECRET)
        .redeploy(CLUSTER, services)
        .stable_timeout(STABLE_TIMEOUT)
        .origin("tests/engine.toml")
        .build()
}

pub fn opts() -> RotateOptions {
    RotateOptions::default()
}

/// The engine's ports: the fakes behind their fault wrappers.
pub type Store = Faulty<FakeStore>;
pub type Ecs = Faulty<FakeEcs>;

/// A secret and the four consumer services, each with its behaviour.
pub struct World {
    pub clock: ManualClock,
    pub store: FakeStore,
    pub ecs: FakeEcs,
    /// Faults of the store's calls (and its crash), apart from ECS's.
    pub faults: FaultPlan,
    pub ecs_faults: FaultPlan,
    pub arn: SecretArn,
    pub original: VersionId,
    pub cfg: SecretConfig,
}

impl World {
    pub fn new() -> Self {
        Self::with(&[])
    }

    /// All four services healthy except the ones named here.
    pub fn with(special: &[(&str, Behaviour)]) -> Self {
        let clock = ManualClock::new(t0());
        let seq = Sequence::default();
        let store = FakeStore::new(&clock, &seq);
        let ecs = FakeEcs::new(&clock, &seq);
        let arn = store.create_secret(SECRET, ORIGINAL_VALUE);
        let original = store.holder(SECRET, AWSCURRENT).unwrap();
        for name in SERVICES {
            let b = special
                .iter()
                .find(|(n, _)| *n == name)
                .map_or_else(healthy, |(_, b)| b.clone());
            ecs.add_service(CLUSTER, name, 2, b);
        }
        Self {
            clock,
            store,
            ecs,
            faults: FaultPlan::new(),
            ecs_faults: FaultPlan::new(),
            arn,
            original,
            cfg: config(&SERVICES),
        }
    }

    /// The store as the engine sees it: through `faults`.
    pub fn store_port(&self) -> Store {
        Faulty::new(self.store.clone(), &self.faults)
    }

    pub fn ecs_port(&self) -> Ecs {
        Faulty::new(self.ecs.clone(), &self.ecs_faults)
    }

    pub fn engine(&self) -> Engine<Store, Ecs> {
        Engine::new(
            self.store_port(),
            self.ecs_port(),
            Arc::new(self.clock.clone()),
        )
    }

    pub fn engine_with<D: Deployer>(&self, d: D) -> Engine<Store, D> {
        Engine::new(self.store_port(), d, Arc::new(self.clock.clone()))
    }

    /// ECS for a process that dies part-way through the redeploy: `n` forced deployments
    /// go through, the next attempt and every call after it fail with `Crash`. Each
    /// UpdateService takes `delay` (a slow ECS: the deployments it starts are clearly
    /// newer than the secret version).
    pub fn dying_ecs(&self, n: usize, delay: Duration) -> Latency<Ecs> {
        let plan = FaultPlan::new();
        plan.crash_on_write(n);
        Latency::new(Faulty::new(self.ecs.clone(), &plan)).with("UpdateService", delay)
    }

    /// The store whose calls take `d` (by operation, `"*"`: all).
    pub fn slow_store(&self, op: &str, d: Duration) -> Latency<Store> {
        Latency::new(self.store_port()).with(op, d)
    }

    pub async fn rotate(&self) -> Result<Report, RotationError> {
        self.engine().rotate(&self.cfg, opts(), &Quiet).await
    }

    pub fn current(&self) -> VersionId {
        self.store
            .holder(SECRET, AWSCURRENT)
            .expect("a secret always has AWSCURRENT")
    }

    pub fn value(&self, v: &VersionId) -> String {
        self.store.value_of(SECRET, v)
    }

    pub fn tags(&self) -> BTreeMap<String, String> {
        self.store.secret(SECRET).tags
    }

    /// The seq of the first successful move of AWSCURRENT away from the original version.
    pub fn current_moved_at(&self) -> u64 {
        self.store
            .calls()
            .iter()
            .find(|c| {
                c.ok() && c.op == "UpdateSecretVersionStage" && c.detail.starts_with("AWSCURRENT")
            })
            .map(|c| c.seq)
            .expect("AWSCURRENT was never moved by an UpdateSecretVersionStage call")
    }

    pub fn write_calls(&self) -> Vec<StoreCall> {
        self.store
            .calls()
            .into_iter()
            .filter(|c| WRITE_OPS.contains(&c.op))
            .collect()
    }

    /// The end state of one complete rotation of the original version: exactly one new
    /// version, AWSCURRENT on it, AWSPREVIOUS on the original, no AWSPENDING, both tags,
    /// every consumer forced after AWSCURRENT moved and now stable on a forced deployment.
    /// Returns the new version.
    pub fn assert_rotated_once(&self, why: &str) -> VersionId {
        let s = self.store.secret(SECRET);
        let new: Vec<_> = s
            .versions
            .iter()
            .filter(|v| v.id != self.original)
            .collect();
        assert_eq!(
            new.len(),
            1,
            "{why}: exactly one new version, got {:#?}",
            s.versions
        );
        let new = new[0].id.clone();
        assert_eq!(self.current(), new, "{why}: AWSCURRENT on the new version");
        assert_eq!(
            self.store.holder(SECRET, AWSPREVIOUS),
            Some(self.original.clone()),
            "{why}: AWSPREVIOUS"
        );
        assert_eq!(
            self.store.holder(SECRET, AWSPENDING),
            None,
            "{why}: no AWSPENDING left"
        );
        assert_ne!(self.value(&new), ORIGINAL_VALUE, "{why}: the value changed");
        assert_eq!(
            new,
            token::token(&self.arn, &self.original, 0),
            "{why}: the version is our first token"
        );
        self.assert_tags(&new, why);
        let moved = self.current_moved_at();
        let created = s.version(&new).unwrap().created;
        for name in SERVICES {
            let forced = self.ecs.forced(&svc(name));
            assert!(
                forced.iter().any(|(seq, _)| *seq > moved),
                "{why}: {name} forced after AWSCURRENT moved: {forced:?}"
            );
            // It now runs only tasks started after the new value was written.
            let state = self.ecs.service(&svc(name)).unwrap();
            assert_eq!(
                state.deployments.len(),
                1,
                "{why}: {name} settled: {state:#?}"
            );
            let primary = state.primary().unwrap();
            assert!(
                primary.created.unwrap() >= created,
                "{why}: {name} runs {primary:?}"
            );
            assert_eq!(
                primary.rollout_state.as_deref(),
                Some("COMPLETED"),
                "{why}: {name}"
            );
            assert_eq!((state.running, state.desired), (2, 2), "{why}: {name}");
        }
        new
    }

    pub fn assert_tags(&self, version: &VersionId, why: &str) {
        let tags = self.tags();
        assert_eq!(
            tags.get(TAG_DEPLOYED_VERSION),
            Some(&version.to_string()),
            "{why}: deployed-version tag"
        );
        let last = tags
            .get(TAG_LAST_ROTATED)
            .unwrap_or_else(|| panic!("{why}: no last-rotated tag"));
        let parsed = DateTime::parse_from_rfc3339(last)
            .unwrap_or_else(|e| panic!("{why}: {last:?} is not RFC 3339: {e}"));
        assert!(parsed.with_timezone(&Utc) >= t0(), "{why}: {last}");
    }

    /// No stored value (old, new, abandoned) appears in the error's message.
    pub fn assert_no_secret_in(&self, e: &RotationError) {
        let shown = [e.to_string(), format!("{e:?}")];
        for v in self.store.all_values() {
            for s in &shown {
                assert!(!s.contains(&v), "the error shows a secret value {v:?}: {s}");
            }
        }
    }

    /// How many times each of `SERVICES` was forced, in that order.
    pub fn forced_counts(&self) -> Vec<usize> {
        SERVICES
            .iter()
            .map(|n| self.ecs.forced(&svc(n)).len())
            .collect()
    }

    /// An engine whose UpdateService calls take 50 ms, so the deployments they start are
    /// clearly newer than the stage move.
    pub fn engine_deploying_after_the_move(&self) -> Engine<Store, Latency<Ecs>> {
        self.engine_with(
            Latency::new(self.ecs_port()).with("UpdateService", Duration::from_millis(50)),
        )
    }

    /// 11.3, for a target with a revoke step (`revoked`: whether the target's previous
    /// value is revoked now): the read of AWSPREVIOUS before revoke fails with `error`.
    /// That is a failed revoke step, never "nothing to revoke", and the rotation is not
    /// recorded as done; the retry revokes, and does not force again the consumers that
    /// are stable since the first run.
    pub async fn assert_a_failed_previous_read_fails_the_revoke<D: Deployer>(
        &self,
        engine: &Engine<Store, D>,
        error: AwsError,
        revoked: impl Fn() -> bool,
    ) {
        let code = error.code().unwrap_or_default().to_owned();
        self.faults.fail_next_read(AWSPREVIOUS, [error]);
        let e = engine
            .rotate(&self.cfg, opts(), &Quiet)
            .await
            .expect_err("the previous value could not be read: revoke failed");
        assert_eq!(e.step(), Step::Revoke, "{code}: {e}");
        assert!(e.to_string().contains(&code), "{code}: {e}");
        assert!(!revoked(), "{code}: the previous value was revoked");
        assert!(
            !self.tags().contains_key(TAG_LAST_ROTATED),
            "{code}: not recorded as done"
        );
        self.assert_no_secret_in(&e);

        // The retry revokes; the consumers stable since the first run are not forced again.
        let forced_before = self.forced_counts();
        let report = engine
            .rotate(&self.cfg, opts(), &Quiet)
            .await
            .expect("the retry revokes");
        assert_eq!(report.outcome, Outcome::Success);
        assert!(revoked(), "{code}: the retry revoked the previous value");
        assert_eq!(
            self.forced_counts(),
            forced_before,
            "{code}: healthy consumers were forced again"
        );
        assert!(self.tags().contains_key(TAG_LAST_ROTATED));
    }

    /// 11.3: a not-found read of AWSPREVIOUS (eventual consistency right after the stage
    /// move) while the secret does list an AWSPREVIOUS version fails the revoke step.
    pub async fn assert_a_not_found_previous_read_fails_the_revoke<D: Deployer>(
        &self,
        engine: &Engine<Store, D>,
    ) {
        self.faults.fail_next_read(
            AWSPREVIOUS,
            [AwsError::new(
                ErrorClass::NotFound,
                "GetSecretValue",
                "ResourceNotFoundException",
                "Secrets Manager can't find the specified secret value for staging label: AWSPREVIOUS",
            )],
        );
        let e = engine
            .rotate(&self.cfg, opts(), &Quiet)
            .await
            .expect_err("AWSPREVIOUS exists, so a not-found read is an error");
        assert_eq!(e.step(), Step::Revoke);
    }

    /// 12.4: the target's `step` never answers: the rotation fails at that step after the
    /// step timeout (5 m), before anything became current or was forced.
    pub async fn assert_a_hung_target_step_times_out<D: Deployer>(
        &self,
        engine: &Engine<Store, D>,
        step: Step,
    ) {
        let began = Instant::now();
        let e = engine
            .rotate(&self.cfg, opts(), &Quiet)
            .await
            .expect_err("the target never answers");
        assert_eq!(e.to_string(), format!("{step}: timed out after 5m"));
        assert!(began.elapsed() < Duration::from_secs(301));
        assert_eq!(self.current(), self.original, "nothing became current");
        assert!(self.ecs.force_calls().is_empty());
    }
}

/// Errors of the read of AWSPREVIOUS before revoke that do not mean "there is none":
/// throttling, AccessDenied, a KMS failure.
pub fn previous_read_errors() -> [AwsError; 3] {
    [
        throttled("GetSecretValue"),
        access_denied("GetSecretValue"),
        AwsError::new(
            ErrorClass::Other,
            "GetSecretValue",
            "DecryptionFailure",
            "Secrets Manager can't decrypt the protected secret text using the provided KMS key.",
        ),
    ]
}

pub fn verdicts_of(e: &RotationError) -> &BTreeMap<ServiceRef, ServiceVerdict> {
    match e {
        RotationError::Consumers { verdicts, .. } => verdicts,
        other => panic!("expected a consumers error, got {other:?}"),
    }
}

pub fn now_rfc3339(clock: &ManualClock) -> String {
    clock.now().to_rfc3339_opts(SecondsFormat::Secs, true)
}
