//! The daemon's scheduler in process, against the test kit's fakes on paused tokio time:
//! due-ness from the stored state, windows checked when a rotation starts, start-up
//! spreading, a slow store, panics, duplicate queueing, read backoff, clock jumps, tags.
//! What the scheduler reports is read from the kit's telemetry [`Recorder`]; how the
//! binary renders those reports as Prometheus series is tested in the root crate
//! (`src/metrics.rs`).

use chrono::{DateTime, SecondsFormat, Utc};
use rotator_core::clock::Clock;
use rotator_core::config::{AwsConfig, Config, DaemonConfig, HaConfig, SecretConfig};
use rotator_core::due::due_times;
use rotator_core::ids::{ClusterName, ServiceName, ServiceRef};
use rotator_core::rotation::store::{
    SecretStore, AWSCURRENT, AWSPENDING, AWSPREVIOUS, TAG_LAST_ROTATED,
};
use rotator_core::rotation::{token, Engine};
use rotator_core::scheduler::{Control, Health, Liveness, Scheduler};
use rotator_core::telemetry::Status;
use rotator_test_kit::config::window;
use rotator_test_kit::errors::access_denied;
use rotator_test_kit::{
    at as t, Behaviour, FakeEcs, FakeStore, Fault, FaultPlan, Faulty, Hook, Latency, ManualClock,
    Recorder, SecretBuilder, Sequence,
};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const DAY: Duration = Duration::from_secs(86_400);
const CLUSTER_NAME: &str = "prod";

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A Tuesday, 10:00 UTC.
fn t0() -> DateTime<Utc> {
    t("2026-03-03T10:00:00Z")
}

/// Schedule `name` for the secret `app/<name>`.
fn secret(name: &str, every: Duration) -> SecretConfig {
    SecretBuilder::new(name, &format!("app/{name}"))
        .every(every)
        .origin("tests/scheduler.toml")
        .build()
}

struct World {
    clock: ManualClock,
    store: FakeStore,
    ecs: FakeEcs,
    health: Arc<Health>,
    /// What the scheduler and the engine reported.
    rec: Recorder,
    tx: Option<mpsc::Sender<Control>>,
    /// A fixed replica-skew fraction (default: the OS's randomness).
    random: Option<f64>,
    /// `[ha] replicas` (default 1: no replica skew).
    replicas: u32,
    /// `[ha] lock_table` set (leases: several replicas may run, whatever `replicas` says).
    leases: bool,
}

impl World {
    fn new() -> Self {
        let clock = ManualClock::new(t0());
        let seq = Sequence::default();
        Self {
            store: FakeStore::new(&clock, &seq),
            ecs: FakeEcs::new(&clock, &seq),
            clock,
            health: Arc::new(Health::default()),
            rec: Recorder::new(),
            tx: None,
            random: None,
            replicas: 1,
            leases: false,
        }
    }

    /// Creates `app/<name>` with a last-rotated tag `ago` before now (None: untagged).
    fn create(&self, name: &str, ago: Option<Duration>) {
        let id = format!("app/{name}");
        self.store.create_secret(&id, "initial-value");
        if let Some(ago) = ago {
            let at = rfc(self.clock.now() - chrono::Duration::from_std(ago).unwrap());
            self.tag(name, TAG_LAST_ROTATED, &at);
        }
    }

    fn tag(&self, name: &str, k: &str, v: &str) {
        self.store.edit(&format!("app/{name}"), |s| {
            s.tags.insert(k.into(), v.into());
        });
    }

    /// Successful PutSecretValue calls (of any secret; the name documents the test's intent).
    fn puts(&self, name: &str) -> usize {
        let _ = name;
        self.store.count_ok("PutSecretValue")
    }

    fn start<S: SecretStore>(
        &mut self,
        store: S,
        daemon: DaemonConfig,
        secrets: Vec<SecretConfig>,
    ) {
        // A recorder where the daemon's `run` wires the binary's metrics (the core's
        // default measures nothing).
        let engine = Arc::new(
            Engine::new(store, self.ecs.clone(), Arc::new(self.clock.clone()))
                .with_telemetry(self.rec.sink()),
        );
        let cfg = Config {
            daemon,
            aws: AwsConfig::default(),
            alibaba: Default::default(),
            ibm: Default::default(),
            ha: HaConfig {
                replicas: self.replicas,
                lock_table: self.leases.then(|| "leases".to_owned()),
                ..HaConfig::default()
            },
            events: Default::default(),
            secrets: secrets.into_iter().map(Arc::new).collect(),
            groups: Vec::new(),
            notify: Vec::new(),
            files: vec![],
        };
        let mut sched = Scheduler::new(
            engine,
            Arc::new(self.clock.clone()),
            &cfg,
            self.health.clone(),
        );
        if let Some(f) = self.random {
            sched = sched.with_random(Arc::new(Fixed(f)));
        }
        let (tx, rx) = mpsc::channel(4);
        self.tx = Some(tx);
        tokio::spawn(sched.run(rx));
    }
}

impl World {
    /// Adds the ECS service prod/slow, whose rollouts take about ten minutes.
    fn add_slow_service(&self) {
        self.ecs.add_service(
            CLUSTER_NAME,
            "slow",
            1,
            Behaviour::Healthy {
                start: Duration::from_secs(480),
                drain: Duration::from_secs(60),
            },
        );
    }
}

/// `c` with prod/slow (see [`World::add_slow_service`]) as its one consumer.
fn consuming_slow(mut c: SecretConfig) -> SecretConfig {
    c.redeploy = Box::new([ServiceRef {
        cluster: ClusterName::from(CLUSTER_NAME),
        service: ServiceName::from("slow"),
    }
    .into()]);
    c
}

/// A random source that always draws `.0`.
struct Fixed(f64);

impl rotator_core::random::Random for Fixed {
    fn fraction(&self, _purpose: &str) -> Option<f64> {
        Some(self.0)
    }
}

fn daemon() -> DaemonConfig {
    DaemonConfig {
        retry_initial: Duration::from_secs(60),
        ..DaemonConfig::default()
    }
}

async fn sleep(d: Duration) {
    tokio::time::sleep(d).await;
}

// ---- 11.1: due-ness from the stored state first --------------------------------------

#[tokio::test(start_paused = true)]
async fn an_interrupted_first_rotation_is_due_now_as_a_resume() {
    let w = World::new();
    // Never rotated by us: no tags, AWSCURRENT is the original. Not unfinished.
    w.create("plain", None);
    // Our first rotation moved AWSCURRENT to our version, then the daemon was stopped
    // during the wait: no tags yet, and AWSCURRENT was created just now.
    w.create("moved", None);
    let arn = w.store.secret("app/moved").arn.clone();
    let orig = w.store.holder("app/moved", AWSCURRENT).unwrap();
    let ours = token::token(&arn, &orig, 0);
    w.store.seed_version(
        "app/moved",
        ours.as_str(),
        "new",
        &[AWSCURRENT],
        w.clock.now(),
    );
    assert_eq!(w.store.holder("app/moved", AWSPREVIOUS), Some(orig));
    // Our pending value was written, then the process died.
    w.create("pending", None);
    let arn = w.store.secret("app/pending").arn.clone();
    let cur = w.store.holder("app/pending", AWSCURRENT).unwrap();
    let p = token::token(&arn, &cur, 0);
    w.store.seed_version(
        "app/pending",
        p.as_str(),
        "new",
        &[AWSPENDING],
        w.clock.now(),
    );
    // A foreign AWSPENDING is another tool's business: not ours to resume.
    w.create("foreign", None);
    w.store.seed_version(
        "app/foreign",
        "foreign-1",
        "x",
        &[AWSPENDING],
        w.clock.now(),
    );

    let cfgs: Vec<SecretConfig> = ["plain", "moved", "pending", "foreign"]
        .iter()
        .map(|n| secret(n, 30 * DAY))
        .collect();
    let refs: Vec<&SecretConfig> = cfgs.iter().collect();
    let now = w.clock.now();
    let r = due_times(&w.store, &refs, now).await;
    let due: Vec<DateTime<Utc>> = r.into_iter().map(|r| r.unwrap().due).collect();
    assert_eq!(due[0], now + chrono::Duration::days(30), "plain");
    assert_eq!(due[1], now, "moved: due now as a resume, not in 30 days");
    assert_eq!(due[2], now, "pending: due now as a resume");
    assert_eq!(due[3], now + chrono::Duration::days(30), "foreign");
}

// ---- 12.3: tags are not trusted without limits ----------------------------------------

#[tokio::test(start_paused = true)]
async fn a_future_last_rotated_tag_makes_the_secret_due_now() {
    let w = World::new();
    // A tag far in the future on a value 40 days old: the tag cannot stop rotation, the
    // value's own age (AWSCURRENT's creation date, written by AWS's clock) decides.
    w.create("future", None);
    w.store.edit("app/future", |s| {
        for v in &mut s.versions {
            v.created -= chrono::Duration::days(40);
        }
    });
    w.tag(
        "future",
        TAG_LAST_ROTATED,
        &rfc(w.clock.now() + chrono::Duration::days(3650)),
    );
    w.create("garbage", None);
    w.tag("garbage", TAG_LAST_ROTATED, "next tuesday");
    // A little skew between hosts is fine.
    w.create("skewed", None);
    w.tag(
        "skewed",
        TAG_LAST_ROTATED,
        &rfc(w.clock.now() + chrono::Duration::seconds(60)),
    );
    let cfgs: Vec<SecretConfig> = ["future", "garbage", "skewed"]
        .iter()
        .map(|n| secret(n, 30 * DAY))
        .collect();
    let refs: Vec<&SecretConfig> = cfgs.iter().collect();
    let now = w.clock.now();
    let r: Vec<_> = due_times(&w.store, &refs, now)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert!(
        r[0].due <= now,
        "a tag far in the future is invalid: due by the value's age, not {}",
        r[0].due
    );
    assert_eq!(r[0].verified, None);
    // Unparseable: as if absent (the creation date of AWSCURRENT, just now).
    assert_eq!(r[1].due, now + chrono::Duration::days(30));
    assert_eq!(
        r[2].due,
        now + chrono::Duration::days(30) + chrono::Duration::seconds(60)
    );
}

/// The host's clock was an hour fast when the daemon rotated (an RTC in local time before
/// chrony synced), then stepped back: its own fresh `last-rotated` tag is now "in the
/// future". That must not make the secret due again (a second value, every consumer
/// restarted): the value's creation date, from AWS's clock, says it is fresh.
#[tokio::test(start_paused = true)]
async fn a_wall_clock_stepped_back_does_not_rotate_a_fresh_secret_again() {
    let w = World::new();
    w.create("fresh", None);
    w.tag(
        "fresh",
        TAG_LAST_ROTATED,
        &rfc(w.clock.now() + chrono::Duration::hours(1)),
    );
    let cfg = secret("fresh", 30 * DAY);
    let now = w.clock.now();
    let r = due_times(&w.store, &[&cfg], now).await.remove(0).unwrap();
    assert!(
        r.due >= now + chrono::Duration::days(29),
        "due {} although the value was created just now",
        r.due
    );
}

#[tokio::test(start_paused = true)]
async fn invalid_tags_are_counted_and_warned_in_the_daemon() {
    let mut w = World::new();
    w.create("tagfuture", None);
    // A 40-day-old value: the future tag is ignored and the value's age makes it due.
    w.store.edit("app/tagfuture", |s| {
        for v in &mut s.versions {
            v.created -= chrono::Duration::days(40);
        }
    });
    w.tag(
        "tagfuture",
        TAG_LAST_ROTATED,
        &rfc(w.clock.now() + chrono::Duration::days(3650)),
    );
    w.create("taggarbage", Some(DAY));
    w.tag("taggarbage", TAG_LAST_ROTATED, "garbage");
    let store = w.store.clone();
    w.start(
        store,
        daemon(),
        vec![
            secret("tagfuture", 30 * DAY),
            secret("taggarbage", 30 * DAY),
        ],
    );
    sleep(Duration::from_secs(30)).await;
    let rec = &w.rec;
    assert!(rec.invalid_tags("tagfuture", "future") >= 1, "{rec:?}");
    assert!(
        rec.invalid_tags("taggarbage", "unparseable") >= 1,
        "{rec:?}"
    );
    // The future-tagged secret was rotated at once: its verified last rotation is now.
    let verified = rec.state("tagfuture").verified;
    assert!(verified >= t0().timestamp() as f64, "{rec:?}");
    assert!(verified <= w.clock.now().timestamp() as f64, "{rec:?}");
    // The garbage-tagged one has no verified rotation.
    assert_eq!(rec.state("taggarbage").verified, 0.0, "{rec:?}");
}

// ---- 11.2: windows at start time, and start-up spreading ------------------------------

#[tokio::test(start_paused = true)]
async fn an_overdue_secret_waits_for_its_window() {
    let mut w = World::new();
    w.create("win", Some(60 * DAY));
    let mut cfg = secret("win", 30 * DAY);
    // Daily 02:00-03:00 UTC; it is 10:00 now.
    cfg.window = Some(Box::new(window("0 2 * * *", Duration::from_secs(3600))));
    let store = w.store.clone();
    w.start(store, daemon(), vec![cfg]);
    sleep(Duration::from_secs(3600)).await;
    assert_eq!(w.puts("win"), 0, "started outside its window");
    assert_eq!(w.rec.state("win").status, Status::OutsideWindow);
    // Next opening: 2026-03-04 02:00 UTC.
    let until = (t("2026-03-04T02:00:00Z") - w.clock.now())
        .to_std()
        .unwrap();
    sleep(until - Duration::from_secs(60)).await;
    assert_eq!(w.puts("win"), 0, "started before the window opened");
    sleep(Duration::from_secs(120)).await;
    assert_eq!(w.puts("win"), 1, "not started when the window opened");
}

/// A rotation of ours stopped after its pending value was written (and, for a database,
/// maybe already set on it: single-user PostgreSQL accepts only the new password from then
/// on) must be finished at once, not at the next window days later. Only a new value waits.
#[tokio::test(start_paused = true)]
async fn an_unfinished_pending_rotation_is_finished_outside_the_window() {
    let mut w = World::new();
    w.create("pend", Some(60 * DAY));
    let arn = w.store.secret("app/pend").arn.clone();
    let current = w.store.holder("app/pend", AWSCURRENT).unwrap();
    let ours = token::token(&arn, &current, 0);
    w.store.seed_version(
        "app/pend",
        ours.as_str(),
        "our pending value, maybe already set on the target",
        &[AWSPENDING],
        w.clock.now() - chrono::Duration::hours(1),
    );
    let mut cfg = secret("pend", 30 * DAY);
    // Daily 02:00-03:00 UTC; it is 10:00 now.
    cfg.window = Some(Box::new(window("0 2 * * *", Duration::from_secs(3600))));
    let store = w.store.clone();
    w.start(store, daemon(), vec![cfg]);
    sleep(Duration::from_secs(600)).await;
    assert_eq!(
        w.store.holder("app/pend", AWSCURRENT),
        Some(ours),
        "our pending value was not finished while the window was closed"
    );
    assert_eq!(w.puts("pend"), 0, "a second value was created");
}

#[tokio::test(start_paused = true)]
async fn overdue_secrets_at_start_up_are_spread_out() {
    let mut w = World::new();
    let mut cfgs = Vec::new();
    for i in 0..25 {
        let n = format!("spread{i}");
        w.create(&n, Some(400 * DAY));
        cfgs.push(secret(&n, 30 * DAY));
    }
    let store = w.store.clone();
    let d = DaemonConfig {
        max_concurrent_rotations: 8,
        ..daemon()
    };
    w.start(store, d, cfgs);
    sleep(Duration::from_secs(30)).await;
    let started = w.puts("");
    assert!(started > 0, "nothing started");
    assert!(started <= 10, "{started} started in the first 30 s");
    sleep(Duration::from_secs(200)).await;
    assert_eq!(w.puts(""), 25, "all start within a few minutes");
}

// ---- 11.5: a slow store does not stall the loop ------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_slow_store_read_does_not_stall_the_loop_or_other_launches() {
    let mut w = World::new();
    w.create("tagged", Some(40 * DAY));
    // No tag: its due time needs ListSecretVersionIds, which takes two hours here.
    w.create("untagged", None);
    let slow =
        Latency::new(w.store.clone()).with("ListSecretVersionIds", Duration::from_secs(7200));
    w.start(
        slow,
        daemon(),
        vec![secret("tagged", 30 * DAY), secret("untagged", 30 * DAY)],
    );
    sleep(Duration::from_secs(120)).await;
    let beat = w.health.heartbeat.load(Ordering::Relaxed) as i64;
    assert!(
        beat >= t0().timestamp() + 60,
        "the loop has not turned since {beat} (now {})",
        w.clock.now().timestamp()
    );
    assert!(
        w.puts("tagged") >= 1,
        "the due secret waited for the slow read"
    );
}

// ---- 11.8: panics, duplicate queueing, read backoff, clock jumps ---------------------

#[tokio::test(start_paused = true)]
async fn a_panicked_rotation_is_retried_and_clears_in_progress() {
    let mut w = World::new();
    w.create("panicky", Some(40 * DAY));
    // The first PutSecretValue panics.
    let panics = FaultPlan::new();
    panics.inject("PutSecretValue", [Fault::Panic]);
    let store = Faulty::new(w.store.clone(), &panics);
    w.start(store, daemon(), vec![secret("panicky", 30 * DAY)]);
    sleep(Duration::from_secs(5)).await;
    let state = w.rec.state("panicky");
    assert!(
        !state.in_progress,
        "in progress after the task died: {state:?}"
    );
    assert!(state.failing, "{state:?}");
    sleep(Duration::from_secs(300)).await;
    assert_eq!(w.puts("panicky"), 1, "never retried after the panic");
}

#[tokio::test(start_paused = true)]
async fn a_queued_secret_does_not_bypass_backoff_after_refreshes() {
    let mut w = World::new();
    // "slowone" holds the only slot for ten minutes (a slow rollout).
    w.ecs.add_service(
        "prod",
        "front",
        1,
        Behaviour::Healthy {
            start: Duration::from_secs(480),
            drain: Duration::from_secs(60),
        },
    );
    w.create("slowone", Some(40 * DAY));
    let mut slow = secret("slowone", 30 * DAY);
    slow.redeploy = Box::new([ServiceRef {
        cluster: ClusterName::from("prod"),
        service: ServiceName::from("front"),
    }
    .into()]);
    // "doomed" is queued behind it and fails at once when it runs.
    // Due two minutes in, while "slowone" runs.
    w.create("doomed", Some(30 * DAY - Duration::from_secs(120)));
    w.store.edit("app/doomed", |s| s.deleted = true);
    let store = w.store.clone();
    let d = DaemonConfig {
        max_concurrent_rotations: 1,
        refresh: Duration::from_secs(60),
        ..daemon()
    };
    w.start(store, d, vec![slow, secret("doomed", 30 * DAY)]);
    sleep(Duration::from_secs(660)).await;
    assert_eq!(w.rec.finished("slowone", "success"), 1, "{:?}", w.rec);
    let failed = w.rec.finished("doomed", "failed");
    assert!(
        failed <= 2,
        "{failed} failed attempts within a minute: the backoff was bypassed"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failing_due_time_read_backs_off() {
    let mut w = World::new();
    // The configured secret_id does not exist.
    let store = w.store.clone();
    w.start(store, daemon(), vec![secret("missing", 30 * DAY)]);
    sleep(Duration::from_secs(3600)).await;
    let reads = w
        .store
        .calls()
        .iter()
        .filter(|c| c.op == "DescribeSecret")
        .count();
    assert!(reads <= 8, "{reads} reads in an hour: no backoff");
    // ... but it keeps trying (after 1, 2, 4, 8, 16 minutes).
    assert!(reads >= 4, "{reads} reads in an hour: it stopped trying");
    let state = w.rec.state("missing");
    assert_eq!(state.readable, Some(false), "{state:?}");
    assert!(state.failing, "{state:?}");
    assert_eq!(state.status, Status::Unreadable, "{state:?}");
    // Its due time is unknown: due since it was first found unreadable (start-up), not
    // since the latest failed read.
    assert_eq!(state.next_due, t0().timestamp() as f64, "{state:?}");
}

#[tokio::test(start_paused = true)]
async fn a_wall_clock_jump_fires_deadlines_at_the_new_wall_time() {
    let mut w = World::new();
    // Due in one day.
    w.create("jumpy", Some(29 * DAY));
    let store = w.store.clone();
    w.start(store, daemon(), vec![secret("jumpy", 30 * DAY)]);
    sleep(Duration::from_secs(12)).await;
    assert_eq!(w.puts("jumpy"), 0);
    // The machine slept for two days (the monotonic clock did not move).
    w.clock.set(t0() + chrono::Duration::days(2));
    // The loop's next turn (a calm daemon's sweep, at 300 s) sees the jump and starts it.
    sleep(Duration::from_secs(280)).await;
    assert_eq!(w.puts("jumpy"), 0, "a calm loop turned before its sweep");
    sleep(Duration::from_secs(20)).await;
    assert_eq!(w.puts("jumpy"), 1, "the deadline kept monotonic time");
    sleep(Duration::from_secs(120)).await;
    assert_eq!(w.puts("jumpy"), 1);
}

/// A wall clock stepped back by a few seconds more than the tolerance (an NTP step): the
/// deadline follows the wall clock, so the rotation does not start early.
#[tokio::test(start_paused = true)]
async fn a_small_clock_step_back_delays_the_deadline_to_the_wall_time() {
    let mut w = World::new();
    let began = tokio::time::Instant::now();
    let every = 30 * DAY;
    // Due at wall time t0 + 60 s.
    w.create("stepped", Some(every - Duration::from_secs(60)));
    w.random = Some(0.0);
    let store = w.store.clone();
    w.start(store, daemon(), vec![secret("stepped", every)]);
    sleep(Duration::from_secs(32)).await;
    w.clock.set(w.clock.now() - chrono::Duration::seconds(8));
    sleep(Duration::from_secs(100)).await;
    let t = put_times(&w, began);
    assert_eq!(t.len(), 1, "{t:?}");
    assert!(
        (68.0..69.0).contains(&t[0]),
        "due at wall +60 s (monotonic 68 s): {t:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_another_replica_finished_does_not_rotate_again() {
    let mut w = World::new();
    w.create("raced", Some(40 * DAY));
    let faults = FaultPlan::new();
    faults.fail_next("PutSecretValue", [access_denied("PutSecretValue")]);
    let store = Faulty::new(w.store.clone(), &faults);
    w.start(store, daemon(), vec![secret("raced", 30 * DAY)]);
    sleep(Duration::from_secs(10)).await;
    assert_eq!(w.puts("raced"), 0);
    // Another replica rotates the secret completely before our retry.
    let now = w.clock.now();
    w.store
        .seed_version("app/raced", "other-replica-1", "theirs", &[AWSCURRENT], now);
    w.tag("raced", TAG_LAST_ROTATED, &rfc(now));
    sleep(Duration::from_secs(600)).await;
    assert_eq!(
        w.puts("raced"),
        0,
        "rotated again right after another replica did"
    );
    let state = w.rec.state("raced");
    assert!(!state.failing, "{state:?}");
}

/// The daemon's watchdog checks the loop every WatchdogSec/2 and pings while it turned
/// within WatchdogSec; each check pokes it for a turn. An idle loop stays alive for a 10 s
/// watchdog through wall-clock steps forward (NTP, a VM's time sync, a suspend): the check
/// goes by the loop's turns on the monotonic clock, not by the wall time of its last turn.
#[tokio::test(start_paused = true)]
async fn an_idle_loop_stays_alive_for_a_10s_watchdog_across_wall_clock_steps() {
    let mut w = World::new();
    // Nothing due for a year: the loop has no deadline to wake for.
    w.create("idle", Some(DAY));
    let store = w.store.clone();
    w.start(store, daemon(), vec![secret("idle", 365 * DAY)]);
    let mut live = Liveness::new();
    for i in 0..60 {
        sleep(Duration::from_secs(5)).await;
        if i % 7 == 3 {
            w.clock.set(w.clock.now() + chrono::Duration::seconds(40));
        }
        assert!(live.check(&w.health, Duration::from_secs(10)), "check {i}");
    }
}

/// A loop that stops turning (here: never started) is reported dead once the limit passes.
#[tokio::test(start_paused = true)]
async fn a_loop_that_does_not_turn_is_dead_after_the_limit() {
    let health = Health::default();
    let mut live = Liveness::new();
    assert!(live.check(&health, Duration::from_secs(10)));
    sleep(Duration::from_secs(10)).await;
    assert!(live.check(&health, Duration::from_secs(10)));
    sleep(Duration::from_secs(1)).await;
    assert!(!live.check(&health, Duration::from_secs(10)));
    // It turns again: alive at once.
    health.turns.fetch_add(1, Ordering::Relaxed);
    assert!(live.check(&health, Duration::from_secs(10)));
}

/// Distinct heartbeats (the loop's turns, by wall second) over `secs`, sampled twice a
/// second.
async fn turns_over(w: &World, secs: u64) -> std::collections::BTreeSet<u64> {
    let mut beats = std::collections::BTreeSet::new();
    for _ in 0..secs * 2 {
        sleep(Duration::from_millis(500)).await;
        beats.insert(w.health.heartbeat.load(Ordering::Relaxed));
    }
    beats
}

/// Over 1800 s a calm loop turns each 300 s (one more if the window straddles a turn).
async fn assert_calm(w: &World, when: &str) {
    let beats = turns_over(w, 1800).await;
    assert!(
        (6..=7).contains(&beats.len()),
        "{} distinct beats in 1800 s ({when}): {beats:?}",
        beats.len()
    );
}

/// Calm (nothing due, rotating or waiting) and unpoked (no watchdog), the loop turns
/// every five minutes: no status changes with time alone then (issue 16: a minute's
/// sweep cost 3 to 5 wake-ups and ~50 ms of CPU at 100,000 secrets).
#[tokio::test(start_paused = true)]
async fn a_calm_loop_without_a_watchdog_wakes_every_five_minutes() {
    let mut w = World::new();
    w.create("idle", Some(DAY));
    let store = w.store.clone();
    w.start(store, daemon(), vec![secret("idle", 365 * DAY)]);
    sleep(Duration::from_secs(10)).await;
    assert_calm(&w, "idle").await;
}

/// A secret waiting for its window keeps the loop calm: its status changes when the
/// window opens, at a deadline that wakes the loop anyway (fleets with windows would
/// otherwise never be calm).
#[tokio::test(start_paused = true)]
async fn a_secret_waiting_for_its_window_keeps_the_loop_calm() {
    let mut w = World::new();
    w.create("win", Some(60 * DAY));
    let mut cfg = secret("win", 30 * DAY);
    // Daily 02:00-03:00 UTC; it is 10:00 now.
    cfg.window = Some(Box::new(window("0 2 * * *", Duration::from_secs(3600))));
    w.start(w.store.clone(), daemon(), vec![cfg]);
    sleep(Duration::from_secs(10)).await;
    assert_eq!(w.rec.state("win").status, Status::OutsideWindow);
    assert_calm(&w, "waiting for its window").await;
}

/// While a rotation runs, the loop still sweeps every minute (a rotation or a waiting
/// secret turns due -> overdue with time alone), then calms down once it ended.
#[tokio::test(start_paused = true)]
async fn a_loop_with_a_rotation_running_sweeps_every_minute() {
    let mut w = World::new();
    w.create("slow", Some(40 * DAY));
    w.ecs.add_service(
        CLUSTER_NAME,
        "api",
        1,
        Behaviour::Healthy {
            start: Duration::from_secs(1200),
            drain: Duration::from_secs(60),
        },
    );
    let cfg = SecretBuilder::new("slow", "app/slow")
        .every(30 * DAY)
        .redeploy(CLUSTER_NAME, &["api"])
        .stable_timeout(Duration::from_secs(3 * 3600))
        .build();
    // No hourly refresh pass inside the windows measured.
    let daemon = DaemonConfig {
        refresh: Duration::from_secs(86_400),
        ..daemon()
    };
    w.start(w.store.clone(), daemon, vec![cfg]);
    sleep(Duration::from_secs(30)).await;
    assert_eq!(w.rec.running(), 1);
    let beats = turns_over(&w, 300).await;
    assert!(
        beats.len() >= 5,
        "{} distinct beats in 300 s of a running rotation: {beats:?}",
        beats.len()
    );
    sleep(Duration::from_secs(1800)).await;
    assert_eq!(w.rec.running(), 0, "the rollout ended");
    assert_calm(&w, "after the rotation").await;
}

// ---- operational signals: found untested by cargo mutants ---------------------------

/// A rotation's end is counted: the "rotations running" gauge goes back to zero.
#[tokio::test(start_paused = true)]
async fn the_running_gauge_returns_to_zero_after_a_rotation() {
    let mut w = World::new();
    w.create("gauge", Some(40 * DAY));
    w.start(w.store.clone(), daemon(), vec![secret("gauge", 30 * DAY)]);
    sleep(Duration::from_secs(600)).await;
    assert_eq!(w.puts("gauge"), 1);
    assert_eq!(w.rec.running(), 0);
}

/// One periodic refresh at a time: while a slow pass is still reading, the next ticks do
/// not start another (at 100,000 secrets a pass takes minutes).
#[tokio::test(start_paused = true)]
async fn a_slow_refresh_pass_is_not_started_twice() {
    let mut w = World::new();
    w.create("slow", Some(DAY));
    let passes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = passes.clone();
    let store = Hook::new(
        Latency::new(w.store.clone()).with("ListSecrets", Duration::from_secs(1800)),
        move |op| {
            if op == "ListSecrets" {
                counted.fetch_add(1, Ordering::SeqCst);
            }
        },
    );
    let daemon = DaemonConfig {
        refresh: Duration::from_secs(60),
        ..daemon()
    };
    w.start(store, daemon, vec![secret("slow", 30 * DAY)]);
    sleep(Duration::from_secs(1700)).await;
    // The start-up pass is still reading; 28 refresh ticks went by.
    assert_eq!(passes.load(Ordering::SeqCst), 1);
    // It ends at 1800 s; the next tick starts one refresh pass, which reads for 30
    // minutes: the ticks meanwhile start none.
    sleep(Duration::from_secs(1800)).await;
    assert_eq!(passes.load(Ordering::SeqCst), 2);
}

/// Readiness: the store counts as reachable when a read reached it (a missing secret is
/// an answer too), not when every read failed for lack of access.
#[tokio::test(start_paused = true)]
async fn the_store_is_reported_unreachable_only_when_no_read_reached_it() {
    let mut w = World::new();
    w.create("denied", Some(DAY));
    let faults = FaultPlan::new();
    faults.fail_next(
        "DescribeSecret",
        (0..50).map(|_| access_denied("DescribeSecret")),
    );
    w.start(
        Faulty::new(w.store.clone(), &faults),
        daemon(),
        vec![secret("denied", 30 * DAY)],
    );
    sleep(Duration::from_secs(5)).await;
    assert!(!w.health.store_ok.load(Ordering::Relaxed));

    let mut w = World::new();
    w.create("here", Some(DAY));
    w.start(
        w.store.clone(),
        daemon(),
        vec![secret("here", 30 * DAY), secret("gone", 30 * DAY)],
    );
    sleep(Duration::from_secs(5)).await;
    assert!(w.health.store_ok.load(Ordering::Relaxed));
}

/// The systemd status line says how many secrets fail and when the next is due.
#[tokio::test(start_paused = true)]
async fn the_status_line_counts_failing_secrets() {
    let mut w = World::new();
    w.create("fine", Some(DAY));
    w.create("fine2", Some(2 * DAY));
    // Due, and its target refuses every value: a failed rotation, waiting for its retry.
    w.create("broken", Some(40 * DAY));
    let target = rotator_test_kit::FakeTarget::new();
    target.fail(rotator_core::rotation::Step::Set, "refused");
    let mut broken = secret("broken", 30 * DAY);
    broken.target = target.target();
    w.start(
        w.store.clone(),
        daemon(),
        vec![
            secret("fine", 30 * DAY),
            secret("fine2", 30 * DAY),
            broken,
            secret("missing", 30 * DAY),
        ],
    );
    sleep(Duration::from_secs(30)).await;
    let status = w.health.status.lock().unwrap().clone();
    // "broken" failed a rotation, "missing" cannot be read: two failing.
    assert!(
        status.starts_with("4 secrets, 0 rotating, 2 failing"),
        "{status}"
    );
    assert!(
        status.contains(", 1 due times loading or unreadable;"),
        "{status}"
    );
    assert!(status.contains("next due: fine2 at"), "{status}");
}

/// Status while waiting for a rotation slot: due, or overdue after an hour — never "ok".
#[tokio::test(start_paused = true)]
async fn secrets_waiting_for_a_slot_are_due_or_overdue() {
    let mut w = World::new();
    w.create("a-old", Some(40 * DAY));
    w.create("b-new", Some(30 * DAY + Duration::from_secs(60)));
    w.ecs.add_service(
        CLUSTER_NAME,
        "api",
        1,
        Behaviour::Healthy {
            start: Duration::from_secs(600),
            drain: Duration::from_secs(60),
        },
    );
    let daemon = DaemonConfig {
        max_concurrent_rotations: 1,
        ..daemon()
    };
    let with_consumer = |name: &str| {
        SecretBuilder::new(name, &format!("app/{name}"))
            .every(30 * DAY)
            .redeploy(CLUSTER_NAME, &["api"])
            .build()
    };
    w.start(
        w.store.clone(),
        daemon,
        vec![with_consumer("a-old"), with_consumer("b-new")],
    );
    sleep(Duration::from_secs(60)).await;
    assert_eq!(w.rec.running(), 1, "one slot");
    assert_eq!(w.rec.state("a-old").status, Status::Overdue);
    assert_eq!(w.rec.state("b-new").status, Status::Due);
}

/// Each secret's info series names its region and account, taken from an ARN secret_id.
#[tokio::test(start_paused = true)]
async fn secret_info_names_the_region_and_account_of_an_arn() {
    let mut w = World::new();
    let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/db-AbCdEf";
    let cfg = SecretBuilder::new("db", arn)
        .every(30 * DAY)
        .redeploy(CLUSTER_NAME, &["api", "pdf"])
        .build();
    w.start(w.store.clone(), daemon(), vec![cfg]);
    sleep(Duration::from_secs(1)).await;
    let (info, services) = w.rec.registration("db").expect("registered");
    assert_eq!(info[0], arn);
    assert_eq!(info[1], "eu-west-1");
    assert_eq!(info[2], "123456789012");
    assert_eq!(info[3], "30d");
    assert_eq!(
        services,
        [
            (CLUSTER_NAME.to_owned(), "api".to_owned()),
            (CLUSTER_NAME.to_owned(), "pdf".to_owned())
        ]
    );
}

/// A secret named by its name (no ARN) is shown in the account of the role that reaches it.
#[tokio::test(start_paused = true)]
async fn secret_info_takes_the_account_of_the_role_for_a_plain_name() {
    let mut w = World::new();
    let mut cfg = secret("db", 30 * DAY);
    cfg.secret.account = cfg
        .secret
        .account
        .with_role_arn(Some(rotator_core::ids::RoleArn::from(
            "arn:aws:iam::210987654321:role/rotator",
        )));
    w.start(w.store.clone(), daemon(), vec![cfg]);
    sleep(Duration::from_secs(1)).await;
    let (info, _) = w.rec.registration("db").expect("registered");
    assert_eq!(info[2], "210987654321");
}

/// `load_due_times` (the benchmarks' way to start with every due time known): after it,
/// the store counts as reachable, each secret's next due time is published, and `run`
/// starts the due one at once.
#[tokio::test(start_paused = true)]
async fn due_times_loaded_inline_are_used_by_the_loop() {
    let w = World::new();
    w.create("overdue", Some(40 * DAY));
    w.create("later", Some(DAY));
    w.create("untagged", None);
    let engine = Arc::new(
        Engine::new(w.store.clone(), w.ecs.clone(), Arc::new(w.clock.clone()))
            .with_telemetry(w.rec.sink()),
    );
    let cfg = Config {
        daemon: daemon(),
        aws: AwsConfig::default(),
        alibaba: Default::default(),
        ibm: Default::default(),
        ha: Default::default(),
        events: Default::default(),
        secrets: vec![
            secret("overdue", 30 * DAY),
            secret("later", 30 * DAY),
            secret("untagged", 30 * DAY),
        ]
        .into_iter()
        .map(Arc::new)
        .collect(),
        groups: Vec::new(),
        notify: Vec::new(),
        files: vec![],
    };
    let mut sched = Scheduler::new(engine, Arc::new(w.clock.clone()), &cfg, w.health.clone());
    sched.load_due_times().await;
    assert!(w.health.store_ok.load(Ordering::Relaxed));
    let later = (t0() + chrono::Duration::days(29)).timestamp() as f64;
    assert_eq!(w.rec.state("later").next_due, later);
    assert_eq!(
        w.rec.state("later").last_success,
        (t0() - chrono::Duration::days(1)).timestamp() as f64
    );
    // A secret never rotated by us: its last rotation is its value's creation date.
    assert_eq!(
        w.rec.state("untagged").last_success,
        t0().timestamp() as f64
    );
    let reads = w.store.count_ok("DescribeSecret");
    let (_tx, rx) = mpsc::channel(1);
    tokio::spawn(sched.run(rx));
    sleep(Duration::from_secs(5)).await;
    assert_eq!(w.puts("overdue"), 1, "the overdue secret did not start");
    // The rotation's read and the read of its next due time; no refresh pass at start.
    assert_eq!(w.store.count_ok("DescribeSecret"), reads + 2);

    // No read reached the store: not reachable.
    let faults = FaultPlan::new();
    for op in ["DescribeSecret", "ListSecrets"] {
        faults.fail_next(op, (0..10).map(|_| access_denied(op)));
    }
    let engine = Arc::new(Engine::new(
        Faulty::new(w.store.clone(), &faults),
        w.ecs.clone(),
        Arc::new(w.clock.clone()),
    ));
    let health = Arc::new(Health::default());
    let mut sched = Scheduler::new(engine, Arc::new(w.clock.clone()), &cfg, health.clone());
    health.store_ok.store(true, Ordering::Relaxed);
    sched.load_due_times().await;
    assert!(!health.store_ok.load(Ordering::Relaxed));
}

/// When each successful PutSecretValue happened, in seconds after `since`.
fn put_times(w: &World, since: tokio::time::Instant) -> Vec<f64> {
    w.store
        .calls()
        .iter()
        .filter(|c| c.op == "PutSecretValue" && c.error.is_none())
        .map(|c| (c.at - since).as_secs_f64())
        .collect()
}

/// Start-up at scale: due times arrive page by page (ListSecrets, 100 secrets a page, a
/// minute each here), so a secret due on the first page starts before the last page is
/// read.
#[tokio::test(start_paused = true)]
async fn a_secret_due_on_the_first_list_page_starts_before_the_last_page() {
    let mut w = World::new();
    let began = tokio::time::Instant::now();
    let every = 30 * DAY;
    // The start-up read goes in name order: p000 is on the first page.
    let names: Vec<String> = (0..300).map(|i| format!("p{i:03}")).collect();
    for (i, n) in names.iter().enumerate() {
        w.create(n, Some(if i == 0 { every + DAY } else { DAY }));
    }
    let page = Duration::from_secs(60);
    let slow = Latency::new(w.store.clone()).with("ListSecrets", page);
    w.random = Some(0.0);
    w.start(
        slow,
        daemon(),
        names.iter().map(|n| secret(n, every)).collect(),
    );
    sleep(3 * page + Duration::from_secs(30)).await;
    let t = put_times(&w, began);
    assert_eq!(t.len(), 1, "{t:?}");
    assert!(
        t[0] < page.as_secs_f64() + 10.0,
        "the first page's due secret started at {} s; pages arrive at 60, 120, 180 s",
        t[0]
    );
    assert_eq!(w.rec.due_times_pending(), 0, "every page was read");
}

/// A deadline fires when it is due plus this replica's skew (0 to 5 s) when several
/// replicas may run the configuration (leases on, or `replicas` > 1), at the due time when
/// one does; not at the loop's next periodic wake-up (every 5 s) and never before it is due.
#[tokio::test(start_paused = true)]
async fn a_rotation_starts_at_its_deadline() {
    for (replicas, leases, fraction, at) in [
        (3, true, 0.0, 13.0),
        (3, true, 1.0, 18.0),
        // Leases with `replicas` left at its default: README's HA setup before `replicas`
        // existed; still several replicas.
        (1, true, 1.0, 18.0),
        (1, false, 1.0, 13.0),
    ] {
        let mut w = World::new();
        w.leases = leases;
        let began = tokio::time::Instant::now();
        let every = 30 * DAY;
        w.create("soon", Some(every - Duration::from_secs(13)));
        let store = w.store.clone();
        w.random = Some(fraction);
        w.replicas = replicas;
        w.start(store, daemon(), vec![secret("soon", every)]);
        sleep(Duration::from_secs(30)).await;
        let t = put_times(&w, began);
        assert_eq!(t.len(), 1, "{t:?}");
        assert!(
            (at..at + 1.0).contains(&t[0]),
            "{replicas} replicas, leases {leases}: due at 13 s with a skew of {fraction} x 5 s, written at {t:?}"
        );
        let status = w.health.status.lock().unwrap().clone();
        assert!(!status.contains("loading"), "{status}");
    }
}

/// A refresh that finds a secret rotated by someone else moves its deadline: the old
/// deadline no longer fires.
#[tokio::test(start_paused = true)]
async fn a_refresh_that_finds_a_secret_rotated_elsewhere_moves_its_deadline() {
    let mut w = World::new();
    let every = 30 * DAY;
    w.create("moved", Some(every - Duration::from_secs(90)));
    let d = DaemonConfig {
        refresh: Duration::from_secs(60),
        ..daemon()
    };
    let store = w.store.clone();
    w.start(store, d, vec![secret("moved", every)]);
    sleep(Duration::from_secs(30)).await;
    // Someone rotates it by hand (its tag says now).
    w.tag("moved", TAG_LAST_ROTATED, &rfc(w.clock.now()));
    sleep(Duration::from_secs(300)).await;
    assert_eq!(
        w.puts("moved"),
        0,
        "rotated at the deadline it had before the refresh"
    );
}

/// A `last-rotated` tag in the future on a value created a day ago: not trusted, and the
/// value's age says the secret is not due; nothing is rotated.
#[tokio::test(start_paused = true)]
async fn a_future_tag_on_a_young_value_is_not_rotated_early() {
    let mut w = World::new();
    w.create("young", None);
    w.store.edit("app/young", |s| {
        for v in &mut s.versions {
            v.created -= chrono::Duration::days(1);
        }
    });
    w.tag(
        "young",
        TAG_LAST_ROTATED,
        &rfc(w.clock.now() + chrono::Duration::days(3650)),
    );
    let store = w.store.clone();
    w.start(store, daemon(), vec![secret("young", 30 * DAY)]);
    sleep(Duration::from_secs(3600)).await;
    assert_eq!(w.puts("young"), 0);
    let due = w.rec.state("young").next_due;
    assert_eq!(due, (t0() + chrono::Duration::days(29)).timestamp() as f64);
}

/// With the start rate used up, the next start comes when a start slot frees up: one
/// minute after the oldest start, not at a later periodic wake-up.
#[tokio::test(start_paused = true)]
async fn the_next_start_comes_when_a_start_slot_frees() {
    let mut w = World::new();
    let began = tokio::time::Instant::now();
    let every = 30 * DAY;
    w.create("late1", Some(every + DAY));
    w.create("late2", Some(every + DAY));
    let d = DaemonConfig {
        max_starts_per_minute: 1,
        ..daemon()
    };
    // Every call takes 2.5 s: the due times arrive, and the first start is, off the
    // loop's 5 s beat.
    let slow = Latency::new(w.store.clone()).with("*", Duration::from_millis(2500));
    w.random = Some(0.0);
    w.start(
        slow,
        d,
        vec![secret("late1", every), secret("late2", every)],
    );
    sleep(Duration::from_secs(200)).await;
    let t = put_times(&w, began);
    assert_eq!(t.len(), 2, "{t:?}");
    let gap = t[1] - t[0];
    assert!((59.9..60.1).contains(&gap), "writes at {t:?}");
}

/// A refresh read still in flight when the secret starts (a slow ListSecrets) must not be
/// applied when it lands after the rotation: its due time is from before the rotation and
/// would start it a second time.
#[tokio::test(start_paused = true)]
async fn a_refresh_read_from_before_a_rotation_is_not_applied_after_it() {
    let mut w = World::new();
    let every = 30 * DAY;
    w.create("raced", Some(every - Duration::from_secs(150)));
    let d = DaemonConfig {
        refresh: Duration::from_secs(60),
        ..daemon()
    };
    // Due-time reads (ListSecrets) are answered a minute after they read the store; the
    // rotation's own calls are instant.
    let slow = Latency::new(w.store.clone())
        .with("ListSecrets", Duration::from_secs(60))
        .answering_late();
    w.start(slow, d, vec![secret("raced", every)]);
    sleep(Duration::from_secs(400)).await;
    assert_eq!(w.puts("raced"), 1, "rotated twice");
}

/// Outside its window, a due secret starts at the next opening plus its jitter offset
/// (fixed per secret), inside the window.
#[tokio::test(start_paused = true)]
async fn a_due_secret_starts_at_the_window_opening_plus_its_jitter() {
    let mut w = World::new();
    let began = tokio::time::Instant::now();
    w.create("jit", Some(60 * DAY));
    let mut cfg = secret("jit", 30 * DAY);
    // Daily 02:00-03:00 UTC; it is 10:00 now; jitter up to 30 minutes.
    cfg.window = Some(Box::new(window("0 2 * * *", Duration::from_secs(3600))));
    cfg.jitter = Duration::from_secs(1800).into();
    let offset = rotator_core::schedule::jitter_offset(&cfg.name, cfg.jitter.get());
    w.random = Some(0.0);
    let store = w.store.clone();
    // No refresh meanwhile: a refresh inside the open window would start the overdue
    // secret at once (the window is open, and it is overdue).
    let d = DaemonConfig {
        refresh: 7 * DAY,
        ..daemon()
    };
    w.start(store, d, vec![cfg]);
    sleep(Duration::from_secs(86_400)).await;
    let puts = put_times(&w, began);
    assert_eq!(puts.len(), 1, "{puts:?}");
    let opening = (t("2026-03-04T02:00:00Z") - t0()).num_seconds() as f64;
    let expected = opening + offset.as_secs_f64();
    assert!(
        (expected..expected + 1.0).contains(&puts[0]),
        "expected at {expected} s (offset {offset:?}), written at {puts:?}"
    );
}

impl World {
    async fn reload(&self, secrets: Vec<SecretConfig>, daemon: DaemonConfig) {
        let cfg = Config {
            daemon,
            aws: AwsConfig::default(),
            alibaba: Default::default(),
            ibm: Default::default(),
            ha: Default::default(),
            events: Default::default(),
            secrets: secrets.into_iter().map(Arc::new).collect(),
            groups: Vec::new(),
            notify: Vec::new(),
            files: vec![],
        };
        let tx = self.tx.as_ref().expect("started");
        tx.send(Control::Reload(Box::new(cfg))).await.unwrap();
    }
}

/// SIGHUP with a changed configuration takes effect at once: a shorter interval makes a
/// secret due, a new secret is rotated, a removed one is not (and a removed one that was
/// rotating finishes and is then forgotten), a changed interval of a running secret is
/// used for its next due time, and a secret that gave up is tried again.
#[tokio::test(start_paused = true)]
async fn a_reload_applies_at_once() {
    let mut w = World::new();
    w.add_slow_service();
    w.create("shorter", Some(6 * DAY));
    w.create("removed", Some(DAY));
    w.create("added", Some(40 * DAY));
    // Due now; its rollout takes ten minutes.
    w.create("running-removed", Some(40 * DAY));
    w.create("running-changed", Some(40 * DAY));
    // Its target refuses every value: gives up after two attempts.
    w.create("broken", Some(40 * DAY));
    let target = rotator_test_kit::FakeTarget::new();
    target.fail(rotator_core::rotation::Step::Set, "refused");
    let mut broken = secret("broken", 30 * DAY);
    broken.target = target.target();
    let d = DaemonConfig {
        max_attempts: 2,
        retry_initial: Duration::from_secs(10),
        ..daemon()
    };
    let store = w.store.clone();
    w.start(
        store,
        d.clone(),
        vec![
            secret("shorter", 30 * DAY),
            secret("removed", 30 * DAY),
            consuming_slow(secret("running-removed", 30 * DAY)),
            consuming_slow(secret("running-changed", 30 * DAY)),
            broken.clone(),
        ],
    );
    sleep(Duration::from_secs(60)).await;
    assert!(w.rec.state("broken").gave_up, "{:?}", w.rec.state("broken"));
    assert_eq!(target.count(rotator_core::rotation::Step::Set), 2);
    assert_eq!(w.rec.running(), 2, "the two slow ones rotate");

    w.reload(
        vec![
            secret("shorter", 5 * DAY),
            secret("added", 30 * DAY),
            consuming_slow(secret("running-changed", 2 * DAY)),
            broken,
        ],
        d,
    )
    .await;
    sleep(Duration::from_secs(30)).await;
    // At once: the shorter interval and the new secret; the failed one tried again.
    assert_eq!(w.rec.finished("shorter", "success"), 1, "{:?}", w.rec);
    assert_eq!(w.rec.finished("added", "success"), 1, "{:?}", w.rec);
    assert!(target.count(rotator_core::rotation::Step::Set) >= 3);
    assert!(!w.rec.registered("removed"));
    assert_eq!(w.rec.configured(), 4);
    // The removed one still rotating is reported until it ends, then forgotten.
    assert!(w.rec.registered("running-removed"));
    sleep(Duration::from_secs(900)).await;
    assert!(!w.rec.registered("running-removed"), "{:?}", w.rec);
    assert!(w.rec.try_state("running-removed").is_none());
    assert_eq!(
        w.rec.finished("running-changed", "success"),
        1,
        "{:?}",
        w.rec
    );
    // Its next due time uses the interval it was given while it ran.
    let next = w.rec.state("running-changed").next_due;
    let now = w.clock.now().timestamp() as f64;
    assert!(
        next < now + 2.0 * 86_400.0 && next > now + 86_400.0,
        "next due {next}, now {now}"
    );
    // Nothing rotated the removed secret.
    sleep(Duration::from_secs(2 * 86_400)).await;
    let removed = w.store.secret("app/removed");
    assert_eq!(removed.versions.len(), 1, "the removed secret was rotated");
}

// ---- found by adversarial review (issue 14): reloads meeting reads and runs in flight ----

/// A retry's due-time read is slow (DescribeSecret hangs for two minutes, then times out);
/// the operator reloads while it is in flight. The reload's batch read schedules the secret,
/// it rotates, and the read after that rotation is never started (the slow one still holds
/// `reading`); the slow one then lands with an old generation and is dropped. Nothing ever
/// schedules the secret again.
#[tokio::test(start_paused = true)]
async fn a_reload_during_a_slow_retry_read_does_not_strand_the_secret() {
    let mut w = World::new();
    w.random = Some(0.0);
    let every = DAY;
    w.create("db", Some(2 * DAY));
    let faults = FaultPlan::new();
    // Attempt 1 (t=0) fails: the role may not write the secret yet.
    faults.fail_next("PutSecretValue", [access_denied("PutSecretValue")]);
    let store = Faulty::new(w.store.clone(), &faults);
    let d = daemon(); // retry after 60 s, refresh every hour
    w.start(store, d.clone(), vec![secret("db", every)]);
    sleep(Duration::from_secs(30)).await;
    assert_eq!(w.rec.state("db").failures, 1, "{:?}", w.rec.state("db"));
    // The retry's read (t=60) meets a DescribeSecret that answers only after two minutes.
    faults.inject("DescribeSecret", [Fault::Timeout(Duration::from_secs(120))]);
    sleep(Duration::from_secs(40)).await; // t=70: the read is in flight
                                          // The operator fixed the role and reloads ("try again").
    w.reload(vec![secret("db", every)], d).await;
    sleep(Duration::from_secs(10)).await;
    assert_eq!(w.puts("db"), 1, "the reload's retry did not rotate");
    sleep(Duration::from_secs(600)).await; // the slow read has landed (t=180)
                                           // A day and a bit later the secret is due again and must have rotated again.
    sleep(every + Duration::from_secs(2 * 3600)).await;
    let s = w.rec.state("db");
    assert_eq!(
        w.puts("db"),
        2,
        "never rotated again; state {s:?}, now {}",
        w.clock.now().timestamp()
    );
}

/// The last allowed attempt is running when the operator reloads (a fix): the reload's
/// "failure counts reset" does not reach a running secret, so that attempt's failure gives
/// up, and the secret is never tried again although the cause is gone.
#[tokio::test(start_paused = true)]
async fn a_reload_during_the_last_attempt_still_resets_the_failure_count() {
    let mut w = World::new();
    w.random = Some(0.0);
    w.create("db", Some(40 * DAY));
    let faults = FaultPlan::new();
    // Both attempts are refused (the role lacks PutSecretValue); each put takes 30 s.
    faults.fail_next(
        "PutSecretValue",
        [
            access_denied("PutSecretValue"),
            access_denied("PutSecretValue"),
        ],
    );
    let store = Latency::new(Faulty::new(w.store.clone(), &faults))
        .with("PutSecretValue", Duration::from_secs(30));
    let d = DaemonConfig {
        max_attempts: 2,
        ..daemon()
    };
    w.start(store, d.clone(), vec![secret("db", 30 * DAY)]);
    // Attempt 1: t=0..30, fails; attempt 2 starts at t=90, its put fails at t=120.
    sleep(Duration::from_secs(100)).await;
    assert!(w.rec.state("db").in_progress, "{:?}", w.rec.state("db"));
    // t=100: the operator has fixed the role and reloads: "try again".
    w.reload(vec![secret("db", 30 * DAY)], d).await;
    sleep(Duration::from_secs(3600)).await;
    let s = w.rec.state("db");
    assert_eq!(w.puts("db"), 1, "not tried again after the reload: {s:?}");
}

/// A config push drops a secret by mistake while it rotates (a ten-minute rollout); the
/// operator reverts a minute later. The reverted config names the secret, but the entry
/// stays marked removed and is dropped (series and schedule) when the run ends.
#[tokio::test(start_paused = true)]
async fn a_reverted_removal_during_a_run_keeps_the_secret() {
    let mut w = World::new();
    w.random = Some(0.0);
    w.add_slow_service();
    w.create("db", Some(40 * DAY));
    w.create("other", Some(DAY));
    let db = consuming_slow(secret("db", DAY));
    let store = w.store.clone();
    w.start(store, daemon(), vec![db.clone(), secret("other", 30 * DAY)]);
    sleep(Duration::from_secs(30)).await;
    assert!(w.rec.state("db").in_progress);
    w.reload(vec![secret("other", 30 * DAY)], daemon()).await; // the bad push
    sleep(Duration::from_secs(30)).await;
    w.reload(vec![db, secret("other", 30 * DAY)], daemon())
        .await; // the revert
    sleep(Duration::from_secs(1200)).await;
    assert_eq!(w.rec.finished("db", "success"), 1, "{:?}", w.rec);
    assert!(
        w.rec.registered("db"),
        "the configured secret vanished from monitoring"
    );
    sleep(2 * DAY).await;
    assert!(
        w.puts("db") >= 2,
        "a configured secret was never rotated again"
    );
}

/// A secret removed by one reload and re-added (with a longer interval) by the next
/// while its first due-time read is in flight. The re-added entry starts at generation 0
/// again, the same generation as the old entry's read, so the old config's result (due
/// now under `every = 30d`) is applied to the new config (`every = 90d`: due in 50 days).
#[tokio::test(start_paused = true)]
async fn a_read_of_a_removed_entry_is_not_applied_to_its_readded_successor() {
    let mut w = World::new();
    w.random = Some(0.0);
    w.create("db", Some(40 * DAY)); // last rotated 40 days ago
    w.create("other", Some(DAY));
    // ListSecrets is slow (throttled): every due-time read takes two minutes.
    let store = Latency::new(w.store.clone()).with("ListSecrets", Duration::from_secs(120));
    let d = daemon();
    w.start(
        store,
        d.clone(),
        vec![secret("db", 30 * DAY), secret("other", 30 * DAY)],
    );
    sleep(Duration::from_secs(10)).await;
    // t=10: a push drops db; t=20: the corrected push has it back, every 90 days.
    w.reload(vec![secret("other", 30 * DAY)], d.clone()).await;
    sleep(Duration::from_secs(10)).await;
    w.reload(
        vec![secret("db", 90 * DAY), secret("other", 30 * DAY)],
        d.clone(),
    )
    .await;
    sleep(Duration::from_secs(3600)).await;
    let s = w.rec.state("db");
    assert_eq!(
        w.puts("db"),
        0,
        "db rotated 50 days early under the removed config's interval; state {s:?}"
    );
}

/// The batch read panics (a bug in the read path: a malformed page, an unwrap in
/// the adapter): its secrets count as unread and are read again after the backoff (they
/// stayed idle and unread: the refresh skips secrets whose due time is unknown).
#[tokio::test(start_paused = true)]
async fn secrets_of_a_panicked_batch_read_are_read_again() {
    let mut w = World::new();
    w.random = Some(0.0);
    w.create("db", Some(40 * DAY)); // overdue
    let faults = FaultPlan::new();
    faults.inject("DescribeSecret", [Fault::Panic]);
    let store = Faulty::new(w.store.clone(), &faults);
    w.start(store, daemon(), vec![secret("db", 30 * DAY)]);
    sleep(Duration::from_secs(3 * 3600)).await; // three refresh periods
    let s = w.rec.state("db");
    assert_eq!(
        w.puts("db"),
        1,
        "never read again, never rotated; state {s:?}"
    );
}

/// A reload during a run changes `every` (30d -> 2d). `secret_info{every}` says 2d at
/// once, but the `every` the deadline gauge (SecretNotRotatedInTime) uses is never updated.
#[tokio::test(start_paused = true)]
async fn a_reload_during_a_run_updates_the_interval_gauge() {
    let mut w = World::new();
    w.random = Some(0.0);
    w.add_slow_service();
    w.create("db", Some(40 * DAY));
    let store = w.store.clone();
    w.start(
        store,
        daemon(),
        vec![consuming_slow(secret("db", 30 * DAY))],
    );
    sleep(Duration::from_secs(30)).await;
    assert!(w.rec.state("db").in_progress);
    w.reload(vec![consuming_slow(secret("db", 2 * DAY))], daemon())
        .await;
    sleep(Duration::from_secs(1200)).await;
    assert_eq!(w.rec.finished("db", "success"), 1, "{:?}", w.rec);
    let s = w.rec.state("db");
    assert_eq!(
        s.every,
        (2 * DAY).as_secs_f64(),
        "interval gauge stale; deadline {} = verified {} + every {} + 1d",
        s.deadline(),
        s.verified,
        s.every
    );
}

/// a secret waiting for a slot (Queued) when a reload lengthens its interval: the
/// reload's re-read is dropped by the "already in the waiting line" filter, and the
/// secret rotates under the old interval when the slot frees.
#[tokio::test(start_paused = true)]
async fn a_reload_of_a_queued_secret_applies_its_new_interval() {
    let mut w = World::new();
    w.random = Some(0.0);
    w.add_slow_service();
    w.create("a-slow", Some(40 * DAY));
    w.create("db", Some(31 * DAY)); // due under every=30d; due in 59 days under 90d
    let slow = consuming_slow(secret("a-slow", 30 * DAY));
    let d = DaemonConfig {
        max_concurrent_rotations: 1,
        ..daemon()
    };
    let store = w.store.clone();
    w.start(store, d.clone(), vec![slow.clone(), secret("db", 30 * DAY)]);
    sleep(Duration::from_secs(30)).await;
    assert!(w.rec.state("a-slow").in_progress);
    assert_eq!(w.puts("a-slow"), 1);
    // t=30: db waits for the slot. The operator: db every 90 days.
    w.reload(vec![slow, secret("db", 90 * DAY)], d).await;
    sleep(Duration::from_secs(3600)).await;
    let s = w.rec.state("db");
    assert_eq!(w.rec.finished("a-slow", "success"), 1, "{:?}", w.rec);
    assert_eq!(
        w.rec.finished("db", "success"),
        0,
        "db rotated 59 days early under the replaced interval; puts {} state {s:?}",
        w.puts("db")
    );
}

/// a reload lengthens the interval 60 s before the old deadline while the reload's
/// re-read is slow (ListSecrets throttled: 120 s). The old deadline fires, the rotation
/// starts under the new config, and the re-read is dropped (generation moved at launch).
#[tokio::test(start_paused = true)]
async fn a_reload_before_the_old_deadline_is_not_overtaken_by_it() {
    let mut w = World::new();
    w.random = Some(0.0);
    // Due under every=30d at t=3650 s.
    w.create("db", Some(30 * DAY - Duration::from_secs(3650)));
    let store = Latency::new(w.store.clone()).with("ListSecrets", Duration::from_secs(120));
    let d = daemon();
    w.start(store, d.clone(), vec![secret("db", 30 * DAY)]);
    sleep(Duration::from_secs(3590)).await;
    assert_eq!(w.puts("db"), 0);
    w.reload(vec![secret("db", 90 * DAY)], d).await;
    sleep(Duration::from_secs(3600)).await;
    let s = w.rec.state("db");
    assert_eq!(
        w.puts("db"),
        0,
        "db rotated under the interval the reload replaced; state {s:?}"
    );
}

/// the hourly refresh's batch read panics: every healthy, already scheduled
/// secret it covered is reported unreadable (and re-read one by one).
#[tokio::test(start_paused = true)]
async fn a_panicked_refresh_does_not_report_healthy_secrets_unreadable() {
    let mut w = World::new();
    w.random = Some(0.0);
    w.create("db", Some(DAY));
    w.create("other", Some(DAY));
    let faults = FaultPlan::new();
    // The start-up batch reads both (2 calls); the refresh's first DescribeSecret panics.
    faults.inject_after("DescribeSecret", 2, [Fault::Panic]);
    let store = Faulty::new(w.store.clone(), &faults);
    w.start(
        store,
        daemon(),
        vec![secret("db", 30 * DAY), secret("other", 30 * DAY)],
    );
    sleep(Duration::from_secs(60)).await;
    assert_eq!(w.rec.state("db").readable, Some(true));
    sleep(Duration::from_secs(3600 - 60 + 1)).await; // just after the refresh
    let s = w.rec.state("other");
    assert_eq!(
        (s.readable, s.status),
        (Some(true), Status::Ok),
        "a healthy secret reported unreadable after a panicked refresh: {s:?}"
    );
}

/// A config agent sends SIGHUP every minute with the same configuration, and a due-time
/// pass takes 90 s (ListSecrets pages at 100,000 secrets): the secret due at 600 s is
/// still rotated (a reload that changes nothing about a secret's schedule must not
/// invalidate the reads in flight, nor its deadline).
#[tokio::test(start_paused = true)]
async fn reloads_faster_than_a_due_time_pass_still_rotate_due_secrets() {
    let mut w = World::new();
    let every = 30 * DAY;
    w.create("starved", Some(every - Duration::from_secs(600)));
    let d = DaemonConfig {
        refresh: Duration::from_secs(3600),
        ..daemon()
    };
    let slow = Latency::new(w.store.clone()).with("ListSecrets", Duration::from_secs(90));
    w.start(slow, d.clone(), vec![secret("starved", every)]);
    sleep(Duration::from_secs(120)).await;
    for _ in 0..60 {
        w.reload(vec![secret("starved", every)], d.clone()).await;
        sleep(Duration::from_secs(60)).await;
    }
    assert_eq!(w.puts("starved"), 1, "never rotated, overdue by 52 minutes");
}

/// A secret gave up, the hourly refresh read it again (still due), then the operator fixed
/// the cause and reloaded the same configuration: it is tried again at once, not at the
/// next refresh an hour later.
#[tokio::test(start_paused = true)]
async fn a_reload_retries_a_given_up_secret_the_refresh_had_read() {
    let mut w = World::new();
    w.random = Some(0.0);
    w.create("db", Some(40 * DAY));
    let faults = FaultPlan::new();
    faults.fail_next(
        "PutSecretValue",
        [
            access_denied("PutSecretValue"),
            access_denied("PutSecretValue"),
        ],
    );
    let store = Faulty::new(w.store.clone(), &faults);
    let d = DaemonConfig {
        max_attempts: 2,
        ..daemon()
    };
    w.start(store, d.clone(), vec![secret("db", 30 * DAY)]);
    sleep(Duration::from_secs(120)).await;
    assert!(w.rec.state("db").gave_up, "{:?}", w.rec.state("db"));
    // The refresh at 3600 s reads it (still due, so still given up).
    sleep(Duration::from_secs(3580)).await;
    w.reload(vec![secret("db", 30 * DAY)], d).await;
    sleep(Duration::from_secs(120)).await;
    assert_eq!(
        w.puts("db"),
        1,
        "not tried again after the reload: {:?}",
        w.rec.state("db")
    );
}

// ---- burst: the drain scales with concurrency -------------------------------------------

/// `n` secrets due at one instant (`ahead` from now; zero: 40 days ago, an overdue
/// backlog), every store call taking 5 ms, the start rate unlimited (10,000 a minute):
/// how long after they are due the last one is rotated, against the ideal (the
/// rotations' store calls x 5 ms / concurrency; due-time reads take no slot). None is
/// lost and none rotated twice.
async fn burst(n: usize, concurrency: usize, ahead: Duration) -> (Duration, Duration) {
    let latency = Duration::from_millis(5);
    let mut w = World::new();
    let every = 30 * DAY;
    let last = if ahead.is_zero() {
        40 * DAY
    } else {
        every - ahead
    };
    let mut cfgs = Vec::new();
    for i in 0..n {
        let name = format!("b{i:04}");
        w.create(&name, Some(last));
        cfgs.push(secret(&name, every));
    }
    let initial = rfc(t0() - chrono::Duration::from_std(last).unwrap());
    let d = DaemonConfig {
        max_concurrent_rotations: concurrency,
        max_starts_per_minute: 10_000,
        ..daemon()
    };
    let slow = Latency::new(w.store.clone()).with("*", latency);
    let due = tokio::time::Instant::now() + ahead;
    w.start(slow.clone(), d, cfgs);
    let rotated = |w: &World| {
        w.store
            .count_secrets(|s| s.tags.get(TAG_LAST_ROTATED).is_some_and(|t| *t != initial))
    };
    while rotated(&w) < n && due.elapsed() < Duration::from_secs(600) {
        sleep(Duration::from_millis(1)).await;
    }
    let took = due.elapsed();
    let calls = slow.calls();
    // Every post-rotation read has landed: a second rotation would show.
    sleep(Duration::from_secs(60)).await;
    assert_eq!(rotated(&w), n, "rotated");
    assert_eq!(w.puts(""), n, "one new value per secret");
    assert_eq!(w.store.count_secrets(|s| s.versions.len() != 2), 0);
    (took, latency.mul_f64(calls as f64 / concurrency as f64))
}

/// 256 secrets due at the same instant drain in about the ideal time at 8 and at 64
/// rotations at once (one replica: no skew spreading their starts over 5 s), and so does
/// an overdue backlog once the start rate allows it.
#[tokio::test(start_paused = true)]
async fn a_burst_drains_in_about_the_ideal_time_at_any_concurrency() {
    for ahead in [Duration::from_secs(10), Duration::ZERO] {
        for concurrency in [8, 64] {
            let (took, ideal) = burst(256, concurrency, ahead).await;
            assert!(
                took.as_secs_f64() <= 1.2 * ideal.as_secs_f64(),
                "due {ahead:?} ahead, {concurrency} at once: drained in {took:?}, ideal {ideal:?}"
            );
        }
    }
}
