//! Work the store says is owed (a rotation of ours that did not finish) is done when it
//! is owed: outside the window, and after the scheduler gave up once someone fixed the
//! cause. Found by adversarial review (issue 14).

use chrono::{DateTime, SecondsFormat, Utc};
use futures::future::BoxFuture;
use rotator_core::clock::Clock;
use rotator_core::config::{AwsConfig, Config, DaemonConfig, SecretConfig, Target};
use rotator_core::rotation::store::{SecretStore, AWSCURRENT, TAG_LAST_ROTATED};
use rotator_core::rotation::target::{ConfiguredTarget, TargetEnv, TargetError};
use rotator_core::rotation::{Engine, Outcome, Quiet, RotateOptions, Step};
use rotator_core::scheduler::{Health, Scheduler};
use rotator_test_kit::errors::throttled;
use rotator_test_kit::{
    at, Behaviour, FakeEcs, FakeStore, FakeTarget, FaultPlan, Faulty, ManualClock, Recorder,
    SecretBuilder, Sequence,
};
use secrecy::{ExposeSecret, SecretString};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

const DAY: Duration = Duration::from_secs(86_400);
const HOUR: Duration = Duration::from_secs(3600);

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A store holding `id`, last rotated `ago` before `now`, and an empty ECS.
fn world(now: &str, id: &str, ago: chrono::Duration) -> (ManualClock, FakeStore, FakeEcs) {
    let clock = ManualClock::new(at(now));
    let seq = Sequence::default();
    let store = FakeStore::new(&clock, &seq);
    let ecs = FakeEcs::new(&clock, &seq);
    store.create_secret(id, "initial-value");
    let tagged = rfc(clock.now() - ago);
    store.edit(id, |s| {
        s.tags.insert(TAG_LAST_ROTATED.into(), tagged);
    });
    (clock, store, ecs)
}

/// The scheduler loop on `secret`, as the daemon runs it (the channel's sender is dropped:
/// no reloads).
fn schedule<S: SecretStore>(
    engine: Arc<Engine<S, FakeEcs>>,
    clock: &ManualClock,
    daemon: DaemonConfig,
    secret: SecretConfig,
) {
    let config = Config {
        daemon,
        aws: AwsConfig::default(),
        alibaba: Default::default(),
        ibm: Default::default(),
        ha: Default::default(),
        events: Default::default(),
        secrets: vec![secret.into()],
        groups: Vec::new(),
        notify: Vec::new(),
        files: vec![],
    };
    let sched = Scheduler::new(
        engine,
        Arc::new(clock.clone()),
        &config,
        Arc::new(Health::default()),
    );
    let (tx, rx) = mpsc::channel(4);
    // Kept open for the test's life: a closed channel stops the loop.
    std::mem::forget(tx);
    tokio::spawn(sched.run(rx));
}

/// A database role in single-user mode with an admin secret: "set" changes the role's
/// password at once (the old one stops working); "test" logs in, failing once.
#[derive(Debug)]
struct Db {
    password: Arc<Mutex<String>>,
    tests: Arc<AtomicUsize>,
}

impl ConfiguredTarget for Db {
    fn kind(&self) -> &'static str {
        "db"
    }
    fn has_set(&self) -> bool {
        true
    }
    fn set<'a>(
        &'a self,
        _env: &'a TargetEnv<'a>,
        value: &'a SecretString,
    ) -> BoxFuture<'a, Result<(), TargetError>> {
        *self.password.lock().unwrap() = value.expose_secret().to_owned();
        Box::pin(async { Ok(()) })
    }
    fn test<'a>(
        &'a self,
        _env: &'a TargetEnv<'a>,
        _value: &'a SecretString,
    ) -> BoxFuture<'a, Result<(), TargetError>> {
        let n = self.tests.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            if n == 0 {
                Err(TargetError::Other("too many connections for role".into()))
            } else {
                Ok(())
            }
        })
    }
}

/// `set` took effect (the role accepts only the new password), `test` failed once, a
/// minute before the window closed. The retry makes a fresh value (the failed one may be
/// refused again), but must not wait for tomorrow's window: until a value is both set
/// and current, consumers reading AWSCURRENT cannot log in.
#[tokio::test(start_paused = true)]
async fn a_retry_after_set_worked_and_test_failed_does_not_wait_for_the_next_window() {
    // Window daily 02:00-03:00 UTC; the secret is overdue; it is 02:59:40.
    let (clock, store, ecs) = world("2026-03-03T02:59:40Z", "app/db", chrono::Duration::days(31));
    let password = Arc::new(Mutex::new("initial-value".to_owned()));
    let tests = Arc::new(AtomicUsize::new(0));
    let cfg = SecretBuilder::new("db", "app/db")
        .every(30 * DAY)
        .window("0 2 * * *", Duration::from_secs(3600))
        .target(Target::new(Db {
            password: password.clone(),
            tests: tests.clone(),
        }))
        .build();
    let engine = Arc::new(Engine::new(store.clone(), ecs, Arc::new(clock.clone())));
    let daemon = DaemonConfig {
        retry_initial: Duration::from_secs(60),
        ..DaemonConfig::default()
    };
    schedule(engine, &clock, daemon, cfg);

    // Every 10 minutes for 6 hours: does what consumers read (AWSCURRENT) still log in?
    let mut broken_since: Option<DateTime<Utc>> = None;
    for _ in 0..36 {
        tokio::time::sleep(Duration::from_secs(600)).await;
        let cur = store.holder("app/db", AWSCURRENT).unwrap();
        let cur_value = store.value_of("app/db", &cur);
        let db = password.lock().unwrap().clone();
        if cur_value != db {
            broken_since.get_or_insert(clock.now());
        } else {
            broken_since = None;
        }
    }
    assert!(
        broken_since.is_none(),
        "consumers reading AWSCURRENT cannot log in since {:?} (now {}); the target holds the \
         failed attempt's value; test calls so far: {}",
        broken_since,
        clock.now(),
        tests.load(Ordering::SeqCst)
    );
}

/// The RetriesExhausted alert tells the operator to fix the cause and run `rotate`; the
/// daemon must notice that at its next refresh and keep the schedule (it skipped secrets
/// with failures, so the secret was never scheduled again until a reload).
#[tokio::test(start_paused = true)]
async fn a_secret_that_gave_up_is_scheduled_again_once_a_manual_rotate_succeeded() {
    // Last rotated 2 hours ago, every hour: due now.
    let (clock, store, ecs) = world("2026-03-03T10:00:00Z", "app/k", chrono::Duration::hours(2));
    let target = FakeTarget::new();
    target.fail(Step::Test, "unreachable");
    let cfg = SecretBuilder::new("k", "app/k")
        .every(HOUR)
        .target(target.target())
        .build();
    let engine = Arc::new(Engine::new(store.clone(), ecs, Arc::new(clock.clone())));
    let daemon = DaemonConfig {
        retry_initial: Duration::from_secs(1),
        retry_max: Duration::from_secs(2),
        refresh: Duration::from_secs(600),
        ..DaemonConfig::default()
    };
    schedule(engine.clone(), &clock, daemon, cfg.clone());

    // max_attempts (10) failures, a couple of seconds apart: gave up.
    tokio::time::sleep(Duration::from_secs(120)).await;
    let failed_puts = store.count_ok("PutSecretValue");

    // The operator fixes the cause and runs `secret-rotator rotate k` (the same engine).
    target.succeed(Step::Test);
    let r = engine
        .rotate(&cfg, RotateOptions::default(), &Quiet)
        .await
        .expect("manual rotate");
    assert_eq!(r.outcome, Outcome::Success);
    let after_manual = store.count_ok("PutSecretValue");

    // every = 1h: within 5 hours (30 refreshes) the daemon should rotate it again.
    tokio::time::sleep(5 * HOUR).await;
    assert!(
        store.count_ok("PutSecretValue") > after_manual,
        "no rotation by the daemon in the 5 hours after the manual rotate (every = 1h); \
         puts: {} while broken, {} after the manual rotate, {} now",
        failed_puts,
        after_manual,
        store.count_ok("PutSecretValue")
    );
}

/// A first rotation of an untagged secret whose consumer rolled back: the new value is
/// current but not confirmed. The due-time read falls back to AWSCURRENT's creation date,
/// which is now that unconfirmed value's; the last-success gauge must not claim it.
#[tokio::test(start_paused = true)]
async fn an_unconfirmed_first_rotation_is_not_reported_as_the_last_success() {
    let (clock, store, ecs) = world(
        "2026-03-03T10:00:00Z",
        "app/first",
        chrono::Duration::zero(),
    );
    let created = clock.now() - chrono::Duration::days(40);
    store.edit("app/first", |s| {
        s.tags.clear();
        s.versions[0].created = created;
    });
    ecs.add_service(
        "prod",
        "api",
        1,
        Behaviour::Failing {
            start: Duration::from_secs(60),
        },
    );
    let cfg = SecretBuilder::new("first", "app/first")
        .every(30 * DAY)
        .redeploy("prod", &["api"])
        .build();
    let rec = Recorder::new();
    let engine =
        Engine::new(store.clone(), ecs, Arc::new(clock.clone())).with_telemetry(rec.sink());
    let daemon = DaemonConfig {
        retry_initial: Duration::from_secs(600),
        ..DaemonConfig::default()
    };
    schedule(Arc::new(engine), &clock, daemon, cfg);
    // Past the retry (600 s), which reads the due time again first.
    tokio::time::sleep(Duration::from_secs(700)).await;

    assert!(
        rec.finished("first", "rolled_back") >= 1,
        "the rotation ran and rolled back"
    );
    let state = rec.state("first");
    assert!(state.failing);
    assert!(
        state.last_success <= created.timestamp() as f64,
        "last success reported at {} for a rotation that rolled back (the old value was made at {})",
        state.last_success,
        created.timestamp()
    );
}

/// A given-up secret is read by every refresh (so a manual rotate is noticed). A refresh
/// read that fails (a throttled DescribeSecret) must leave it given up, not schedule a
/// read-retry that turns into another full rotation attempt (adversarial review).
#[tokio::test(start_paused = true)]
async fn a_failed_refresh_read_of_a_given_up_secret_does_not_rotate_it_again() {
    let (clock, store, ecs) = world("2026-03-03T10:00:00Z", "app/k", chrono::Duration::hours(2));
    let faults = FaultPlan::new();
    let target = FakeTarget::new();
    target.fail(Step::Test, "unreachable");
    let cfg = SecretBuilder::new("k", "app/k")
        .every(HOUR)
        .target(target.target())
        .build();
    let engine = Engine::new(
        Faulty::new(store.clone(), &faults),
        ecs,
        Arc::new(clock.clone()),
    );
    let daemon = DaemonConfig {
        retry_initial: Duration::from_secs(1),
        retry_max: Duration::from_secs(2),
        refresh: Duration::from_secs(600),
        ..DaemonConfig::default()
    };
    schedule(Arc::new(engine), &clock, daemon, cfg);
    // max_attempts (10) failures a second or two apart: given up.
    tokio::time::sleep(Duration::from_secs(120)).await;
    let gave_up = target.count(Step::Set);
    tokio::time::sleep(Duration::from_secs(1200)).await;
    assert_eq!(
        target.count(Step::Set),
        gave_up,
        "clean refreshes retried it"
    );
    // The next refresh read (t = 1800 s) is throttled once.
    faults.fail_next("DescribeSecret", [throttled("DescribeSecret")]);
    tokio::time::sleep(Duration::from_secs(700)).await;
    assert_eq!(
        target.count(Step::Set),
        gave_up,
        "rotated again after one throttled refresh read"
    );
}

/// `set` refused the value (the target's own error: it did not take it) a minute before
/// the window closed. Nothing is locked out, so the retry is a new rotation and waits for
/// the next opening instead of restarting consumers outside the window.
#[tokio::test(start_paused = true)]
async fn a_retry_after_set_refused_the_value_waits_for_the_window() {
    let (clock, store, ecs) = world("2026-03-03T02:59:00Z", "app/db", chrono::Duration::days(31));
    let target = FakeTarget::new();
    target.fail(Step::Set, "password rejected by policy");
    let cfg = SecretBuilder::new("db", "app/db")
        .every(30 * DAY)
        .window("0 2 * * *", Duration::from_secs(3600))
        .target(target.target())
        .build();
    let engine = Engine::new(store, ecs, Arc::new(clock.clone()));
    let daemon = DaemonConfig {
        retry_initial: Duration::from_secs(60),
        ..DaemonConfig::default()
    };
    schedule(Arc::new(engine), &clock, daemon, cfg);
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(
        target.count(Step::Set),
        1,
        "the first attempt ran in the window"
    );
    // Until the next opening (02:00 tomorrow) nothing runs; then the retry does.
    tokio::time::sleep(Duration::from_secs(22 * 3600)).await;
    assert_eq!(target.count(Step::Set), 1, "retried outside the window");
    tokio::time::sleep(Duration::from_secs(2 * 3600)).await;
    assert!(
        target.count(Step::Set) >= 2,
        "not retried at the next opening"
    );
}

/// SIGTERM mid-rotation: the daemon stops starting work but lets the rotation in flight
/// finish within `shutdown_grace` (it is not cut off half-way when it could finish).
#[tokio::test(start_paused = true)]
async fn a_shutdown_lets_the_rotation_in_flight_finish_within_the_grace() {
    let (clock, store, ecs) = world("2026-03-03T10:00:00Z", "app/db", chrono::Duration::days(40));
    ecs.add_service(
        "prod",
        "api",
        1,
        Behaviour::Healthy {
            start: Duration::from_secs(40),
            drain: Duration::from_secs(20),
        },
    );
    let cfg = SecretBuilder::new("db", "app/db")
        .every(30 * DAY)
        .redeploy("prod", &["api"])
        .build();
    let engine = Arc::new(Engine::new(store.clone(), ecs, Arc::new(clock.clone())));
    let config = Config {
        daemon: DaemonConfig {
            shutdown_grace: Duration::from_secs(300),
            ..DaemonConfig::default()
        },
        aws: AwsConfig::default(),
        alibaba: Default::default(),
        ibm: Default::default(),
        ha: Default::default(),
        events: Default::default(),
        secrets: vec![cfg.into()],
        groups: Vec::new(),
        notify: Vec::new(),
        files: vec![],
    };
    let (_reloads_tx, reloads) = mpsc::channel(1);
    let ports = rotator_core::daemon::Ports::new(engine, None, Arc::new(Health::default()));
    let shutdown = tokio::time::sleep(Duration::from_secs(10));
    let started = tokio::time::Instant::now();
    rotator_core::daemon::run(config, ports, shutdown, reloads).await;
    let took = started.elapsed();
    let tags = store.secret("app/db").tags;
    assert!(
        tags.get(TAG_LAST_ROTATED)
            .is_some_and(|t| t.starts_with("2026-03-03")),
        "the rotation in flight was cut off at shutdown: {tags:?}"
    );
    assert!(
        took < Duration::from_secs(300),
        "waited the whole grace: {took:?}"
    );
}
