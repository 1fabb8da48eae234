//! Rotation groups in the scheduler, against the test kit's fakes on paused tokio time:
//! stages rotate in order with the soak between, a failed stage halts the group (later
//! stages untouched), a held group starts nothing, and a restart resumes at the right
//! stage from the stored state alone. Plus the group evaluation's properties.

use chrono::{DateTime, SecondsFormat, Utc};
use proptest::prelude::*;
use rotator_core::clock::Clock;
use rotator_core::config::Location;
use rotator_core::config::{AwsConfig, Config, DaemonConfig, GroupConfig, HaConfig, SecretConfig};
use rotator_core::due::{DueInfo, DueStatus, Unfinished};
use rotator_core::group::{evaluate, StageState, TAG_GROUP_HOLD};
use rotator_core::ha::Ha;
use rotator_core::ids::{GroupName, SecretName};
use rotator_core::notify::{Event, EventKind, Notifier};
use rotator_core::rotation::lease::Leases;
use rotator_core::rotation::store::{AWSCURRENT, TAG_LAST_ROTATED};
use rotator_core::rotation::Engine;
use rotator_core::scheduler::{Control, Health, Scheduler};
use rotator_test_kit::leases::MemoryLeases;
use rotator_test_kit::{
    at as t, Behaviour, FakeEcs, FakeStore, ManualClock, SecretBuilder, Sequence,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

const DAY: Duration = Duration::from_secs(86_400);
const HOUR: Duration = Duration::from_secs(3600);
const STAGES: [&str; 3] = ["dev", "staging", "prod"];

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[derive(Default, Clone)]
struct Told(Arc<Mutex<Vec<Event>>>);

impl Notifier for Told {
    fn notify(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }
}

impl Told {
    fn kinds(&self, secret: &str) -> Vec<EventKind> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.secret.as_str() == secret)
            .map(|e| e.kind)
            .collect()
    }
    fn count(&self, secret: &str, kind: EventKind) -> usize {
        self.kinds(secret).iter().filter(|k| **k == kind).count()
    }
    fn of(&self, kind: EventKind) -> Vec<Event> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.kind == kind)
            .cloned()
            .collect()
    }
}

struct World {
    clock: ManualClock,
    store: FakeStore,
    ecs: FakeEcs,
    told: Told,
    tx: Option<mpsc::Sender<Control>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl World {
    /// Three stages, each consuming its own service, last rotated 30 days and 5 minutes
    /// ago with a 30-day interval: the first stage is due now (not yet overdue).
    fn new(staging: Behaviour) -> Self {
        let clock = ManualClock::new(t("2026-03-03T10:00:00Z"));
        let seq = Sequence::default();
        let w = Self {
            store: FakeStore::new(&clock, &seq),
            ecs: FakeEcs::new(&clock, &seq),
            clock,
            told: Told::default(),
            tx: None,
            task: None,
        };
        for name in STAGES {
            let id = format!("app/{name}");
            w.store.create_secret(&id, "initial-value");
            let at = rfc(w.clock.now() - chrono::Duration::days(30) - chrono::Duration::minutes(5));
            w.tag(name, TAG_LAST_ROTATED, &at);
            let behaviour = if name == "staging" {
                staging.clone()
            } else {
                healthy()
            };
            w.ecs.add_service(name, "api", 1, behaviour);
        }
        w
    }

    fn tag(&self, name: &str, k: &str, v: &str) {
        self.store.edit(&format!("app/{name}"), |s| {
            s.tags.insert(k.into(), v.into());
        });
    }

    /// The stage's confirmed rotation time, if it rotated since the world was made.
    fn rotated(&self, name: &str) -> Option<DateTime<Utc>> {
        let s = self.store.secret(&format!("app/{name}"));
        let at = DateTime::parse_from_rfc3339(s.tags.get(TAG_LAST_ROTATED)?).ok()?;
        let at = at.with_timezone(&Utc);
        (at > t("2026-03-01T00:00:00Z")).then_some(at)
    }

    fn versions(&self, name: &str) -> usize {
        self.store.secret(&format!("app/{name}")).versions.len()
    }

    fn current(&self, name: &str) -> String {
        self.store
            .holder(&format!("app/{name}"), AWSCURRENT)
            .unwrap()
            .to_string()
    }

    fn start(&mut self, soak: Duration) {
        self.start_with(Setup {
            soak,
            ..Setup::default()
        });
    }

    fn start_with(&mut self, setup: Setup) {
        let group = Arc::new(GroupConfig {
            name: GroupName::from("api-db"),
            members: STAGES.iter().map(|s| (*s).into()).collect(),
            soak: setup.soak,
            origin: Location::whole(std::path::Path::new("tests/groups.toml").into()),
        });
        let mut secrets: Vec<Arc<SecretConfig>> = STAGES
            .iter()
            .map(|name| {
                let every = if *name == "staging" {
                    setup.staging_every
                } else {
                    30 * DAY
                };
                let mut c = SecretBuilder::new(name, &format!("app/{name}"))
                    .every(every)
                    .redeploy(name, &["api"])
                    .build();
                c.group = Some(group.clone());
                Arc::new(c)
            })
            .collect();
        secrets.extend(setup.others.into_iter().map(Arc::new));
        let cfg = Config {
            daemon: DaemonConfig {
                retry_initial: Duration::from_secs(60),
                max_attempts: setup.max_attempts,
                max_concurrent_rotations: setup.slots,
                ..DaemonConfig::default()
            },
            aws: AwsConfig::default(),
            alibaba: Default::default(),
            ibm: Default::default(),
            ha: HaConfig::default(),
            events: Default::default(),
            secrets,
            groups: vec![group],
            notify: Vec::new(),
            files: vec![],
        };
        let engine = Arc::new(Engine::new(
            self.store.clone(),
            self.ecs.clone(),
            Arc::new(self.clock.clone()),
        ));
        let mut sched = Scheduler::new(
            engine,
            Arc::new(self.clock.clone()),
            &cfg,
            Arc::new(Health::default()),
        )
        .with_notifier(Arc::new(self.told.clone()));
        if setup.ha {
            let leases = Leases::new(
                Arc::new(MemoryLeases::new()),
                "replica-a",
                Duration::from_secs(60),
                Arc::new(self.clock.clone()),
            );
            sched = sched.with_ha(Some(Arc::new(Ha::new(leases))));
        }
        let (tx, rx) = mpsc::channel(4);
        self.tx = Some(tx);
        self.task = Some(tokio::spawn(sched.run(rx)));
    }

    /// A crash: the scheduler and its rotations stop where they are.
    fn kill(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        self.tx = None;
    }
}

struct Setup {
    soak: Duration,
    /// `[ha]` with one replica (a lease taken before each rotation, the due time re-read).
    ha: bool,
    staging_every: Duration,
    max_attempts: u32,
    slots: usize,
    /// Secrets outside the group.
    others: Vec<SecretConfig>,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            soak: HOUR,
            ha: false,
            staging_every: 30 * DAY,
            max_attempts: 3,
            slots: DaemonConfig::default().max_concurrent_rotations,
            others: Vec::new(),
        }
    }
}

fn healthy() -> Behaviour {
    Behaviour::Healthy {
        start: Duration::from_secs(60),
        drain: Duration::from_secs(30),
    }
}

async fn sleep(d: Duration) {
    tokio::time::sleep(d).await;
}

#[tokio::test(start_paused = true)]
async fn stages_rotate_in_order_with_the_soak_between() {
    let mut w = World::new(healthy());
    w.start(2 * HOUR);
    sleep(Duration::from_secs(600)).await;
    let dev = w
        .rotated("dev")
        .expect("the first stage rotates on its schedule");
    assert_eq!(w.rotated("staging"), None, "staging waits for the soak");
    assert_eq!(w.rotated("prod"), None);
    // Just before the soak ends, staging has not started.
    let until = (dev + chrono::Duration::hours(2) - w.clock.now())
        .to_std()
        .unwrap();
    sleep(until - Duration::from_secs(60)).await;
    assert_eq!(
        w.rotated("staging"),
        None,
        "staging started before its soak ended"
    );
    assert_eq!(w.versions("staging"), 1);
    sleep(Duration::from_secs(900)).await;
    let staging = w
        .rotated("staging")
        .expect("staging rotates after the soak");
    assert!(
        staging >= dev + chrono::Duration::hours(2),
        "{staging} vs {dev}"
    );
    assert_eq!(w.rotated("prod"), None, "prod waits for staging's soak");
    sleep(2 * HOUR + Duration::from_secs(900)).await;
    let prod = w
        .rotated("prod")
        .expect("prod rotates after staging's soak");
    assert!(
        prod >= staging + chrono::Duration::hours(2),
        "{prod} vs {staging}"
    );
    // One new value each, and nothing more for the rest of the cycle.
    sleep(5 * DAY).await;
    for s in STAGES {
        assert_eq!(w.versions(s), 2, "{s}: one rotation in the cycle");
        assert_eq!(
            w.told.kinds(s),
            [EventKind::Started, EventKind::Succeeded],
            "{s}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_rolled_back_stage_halts_the_group_and_production_is_untouched() {
    let mut w = World::new(Behaviour::Failing {
        start: Duration::from_secs(90),
    });
    let prod_before = w.current("prod");
    w.start(Duration::from_secs(600));
    // Enough for dev, staging and every retry of staging (max_attempts 3), and days more.
    sleep(3 * DAY).await;
    assert!(w.rotated("dev").is_some());
    assert_eq!(w.rotated("staging"), None, "staging never confirmed");
    assert_eq!(w.current("prod"), prod_before, "prod's value changed");
    assert_eq!(w.versions("prod"), 1, "prod got a new version");
    assert!(
        w.told.kinds("prod").is_empty(),
        "prod was started: {:?}",
        w.told.kinds("prod")
    );
    // Every attempt (max_attempts 3) was made: the retries resume the same stage.
    let started = w.told.count("staging", EventKind::Started);
    assert_eq!(started, 3, "{:?}", w.told.kinds("staging"));
    let halted = w.told.of(EventKind::GroupHalted);
    let h = halted.first().expect("a group_halted event");
    assert_eq!(h.secret.as_str(), "staging");
    assert_eq!(h.outcome, Some("rolled_back"));
    let g = h.group.as_ref().unwrap();
    assert_eq!((g.group.as_str(), g.stage, g.stages), ("api-db", 1, 3));
    assert_eq!(g.next.as_ref().map(|n| n.as_str()), Some("prod"));
    let c = &h.consumers[0];
    assert_eq!(
        (c.consumer.as_str(), c.verdict),
        ("staging/api", "rolled_back")
    );
    assert!(
        c.events
            .iter()
            .any(|e| e.contains("circuit breaker") || e.contains("roll")),
        "no rollback event in {:?}",
        c.events
    );
}

#[tokio::test(start_paused = true)]
async fn a_held_group_starts_nothing_until_resumed() {
    let mut w = World::new(healthy());
    w.start(Duration::from_secs(600));
    sleep(Duration::from_secs(300)).await;
    let dev = w.rotated("dev").expect("dev rotates");
    // Held during dev's soak: staging's turn comes and passes.
    w.tag("prod", TAG_GROUP_HOLD, "held 2026-03-03T10:05:00Z by ops");
    sleep(3 * DAY).await;
    assert_eq!(w.rotated("staging"), None, "a held group advanced");
    assert_eq!(w.versions("staging"), 1);
    assert_eq!(w.rotated("dev"), Some(dev));
    // Resumed: staging starts within the re-check period, then prod after the soak.
    w.tag("prod", TAG_GROUP_HOLD, "resumed 2026-03-06T10:05:00Z");
    sleep(Duration::from_secs(400)).await;
    assert!(
        w.rotated("staging").is_some(),
        "resume did not restart the group"
    );
    sleep(Duration::from_secs(1200)).await;
    assert!(w.rotated("prod").is_some());
}

#[tokio::test(start_paused = true)]
async fn a_restart_mid_group_resumes_at_the_right_stage() {
    let mut w = World::new(healthy());
    w.start(HOUR);
    sleep(Duration::from_secs(600)).await;
    let dev = w.rotated("dev").expect("dev rotates");
    w.kill();
    sleep(Duration::from_secs(600)).await;
    // A new process: only the store remembers.
    w.told = Told::default();
    w.start(HOUR);
    sleep(Duration::from_secs(600)).await;
    assert_eq!(
        w.rotated("dev"),
        Some(dev),
        "dev rotated again after the restart"
    );
    assert!(w.told.kinds("dev").is_empty());
    assert_eq!(
        w.rotated("staging"),
        None,
        "the soak restarted from zero or was skipped"
    );
    sleep(HOUR).await;
    let staging = w.rotated("staging").expect("staging after the soak");
    assert!(staging >= dev + chrono::Duration::hours(1));
    assert_eq!(w.versions("dev"), 2);
}

/// Killed while staging's consumers roll out (value current, not yet confirmed): the
/// restart finishes staging (no second value), then prod follows.
#[tokio::test(start_paused = true)]
async fn a_crash_inside_a_stage_is_finished_not_redone() {
    let mut w = World::new(Behaviour::Healthy {
        start: Duration::from_secs(600),
        drain: Duration::from_secs(60),
    });
    w.start(Duration::from_secs(60));
    sleep(Duration::from_secs(300)).await;
    assert!(w.rotated("dev").is_some());
    // Staging starts after dev's soak and waits ~10 minutes for its rollout.
    sleep(Duration::from_secs(200)).await;
    assert_eq!(w.versions("staging"), 2, "staging's new value is written");
    assert_eq!(w.rotated("staging"), None);
    w.kill();
    w.start(Duration::from_secs(60));
    sleep(Duration::from_secs(3 * 3600)).await;
    assert!(w.rotated("staging").is_some());
    assert_eq!(w.versions("staging"), 2, "the restart made a second value");
    assert!(w.rotated("prod").is_some());
    assert_eq!(w.versions("prod"), 2);
}

// ---- found by the adversarial review ---------------------------------------------------

/// With `[ha]` the due time is re-read under the lease: a stage whose own interval is
/// longer than the first stage's must still start at its turn (not be taken as "already
/// rotated" and started again and again).
#[tokio::test(start_paused = true)]
async fn with_leases_a_stage_starts_at_its_turn_whatever_its_own_interval() {
    let mut w = World::new(healthy());
    w.start_with(Setup {
        ha: true,
        staging_every: 60 * DAY,
        ..Setup::default()
    });
    sleep(Duration::from_secs(600)).await;
    let dev = w.rotated("dev").expect("dev rotates");
    let until = (dev + chrono::Duration::hours(1) - w.clock.now())
        .to_std()
        .unwrap();
    sleep(until + Duration::from_secs(600)).await;
    assert!(
        w.rotated("staging").is_some(),
        "staging did not start at its turn"
    );
    let started = w.told.count("staging", EventKind::Started);
    assert_eq!(started, 1, "{:?}", w.told.kinds("staging"));
}

/// A stage that gave up and was then rotated by hand (or by another replica) is owed
/// nothing: in the next cycle it starts at its turn (soak 0: at once after dev).
#[tokio::test(start_paused = true)]
async fn a_given_up_stage_finished_by_hand_rotates_in_the_next_cycle() {
    let mut w = World::new(Behaviour::Failing {
        start: Duration::from_secs(90),
    });
    w.start_with(Setup {
        soak: Duration::ZERO,
        max_attempts: 2,
        ..Setup::default()
    });
    sleep(DAY).await;
    assert_eq!(w.rotated("staging"), None, "staging gave up");
    // By hand: the operator fixed the service and confirmed the new value.
    let current = w.current("staging");
    let now = rfc(w.clock.now());
    w.tag("staging", TAG_LAST_ROTATED, &now);
    w.tag("staging", "secret-rotator:deployed-version", &current);
    w.ecs.add_service("staging", "api", 1, healthy());
    // prod follows, then the next cycle: dev, then staging again.
    sleep(31 * DAY).await;
    assert!(w.rotated("prod").is_some(), "prod never followed");
    assert_eq!(w.versions("dev"), 3, "dev's next cycle");
    assert_eq!(w.versions("staging"), 3, "staging stuck in its old give-up");
}

/// A stage queued behind a busy slot when the hold is written must not start once the
/// slot frees up: the hold is read just before the start.
#[tokio::test(start_paused = true)]
async fn a_hold_written_while_a_stage_waits_for_a_slot_stops_it() {
    let mut w = World::new(healthy());
    w.store.create_secret("app/other", "initial-value");
    let old = rfc(w.clock.now() - chrono::Duration::days(40));
    w.store.edit("app/other", |s| {
        s.tags.insert(TAG_LAST_ROTATED.into(), old);
    });
    // other's rollout takes three hours and holds the only slot.
    w.ecs.add_service(
        "slow",
        "api",
        1,
        Behaviour::Healthy {
            start: Duration::from_secs(3 * 3600),
            drain: Duration::from_secs(60),
        },
    );
    let other = SecretBuilder::new("other", "app/other")
        .every(30 * DAY)
        .redeploy("slow", &["api"])
        .stable_timeout(4 * HOUR)
        .build();
    // The group's cycle is complete and dev is not due for a day.
    let fresh = rfc(w.clock.now() - chrono::Duration::days(29));
    w.tag("dev", TAG_LAST_ROTATED, &fresh);
    w.start_with(Setup {
        slots: 1,
        others: vec![other],
        ..Setup::default()
    });
    sleep(Duration::from_secs(120)).await;
    assert_eq!(w.versions("other"), 2, "other runs");
    // dev becomes overdue (someone changed its tag); a group re-read queues it behind the slot.
    let old = rfc(w.clock.now() - chrono::Duration::days(31));
    w.tag("dev", TAG_LAST_ROTATED, &old);
    sleep(Duration::from_secs(900)).await;
    assert_eq!(w.versions("dev"), 1, "dev waits for the slot");
    w.tag("dev", TAG_GROUP_HOLD, "held by ops");
    sleep(DAY).await;
    assert_eq!(w.versions("other"), 2);
    assert_eq!(
        w.versions("dev"),
        1,
        "dev started although its group is held"
    );
    assert!(
        !w.told.kinds("dev").contains(&EventKind::Started),
        "{:?}",
        w.told.kinds("dev")
    );
}

/// A read that mixes two configurations of one group (a reload while a member runs): no
/// panic, and no member goes ungated.
#[tokio::test(start_paused = true)]
async fn a_read_across_a_reload_of_the_group_gates_every_member() {
    let w = World::new(healthy());
    w.store.create_secret("app/qa", "initial-value");
    let old_group = Arc::new(GroupConfig {
        name: GroupName::from("api-db"),
        members: ["dev", "qa", "staging", "prod"]
            .iter()
            .map(|s| (*s).into())
            .collect(),
        soak: HOUR,
        origin: Location::whole(std::path::Path::new("g.toml").into()),
    });
    let new_group = Arc::new(GroupConfig {
        members: ["dev", "prod", "staging"]
            .iter()
            .map(|s| (*s).into())
            .collect(),
        ..(*old_group).clone()
    });
    let cfg = |name: &str, g: &Arc<GroupConfig>| {
        let mut c = SecretBuilder::new(name, &format!("app/{name}"))
            .every(30 * DAY)
            .build();
        c.group = Some(g.clone());
        c
    };
    // prod still runs on the old configuration; the others are the new one.
    let secrets = [
        cfg("dev", &new_group),
        cfg("prod", &old_group),
        cfg("staging", &new_group),
    ];
    let refs: Vec<&SecretConfig> = secrets.iter().collect();
    let mut got = Vec::new();
    rotator_core::group::due_times_each(
        &w.store,
        &refs,
        w.clock.now(),
        |i, r| got.push((i, r)),
        |_, _| {},
    )
    .await;
    assert_eq!(got.len(), 3);
    for (i, r) in got {
        let d = r.unwrap();
        // dev is the only stage whose turn it is (the cycle is complete).
        if secrets[i].name.as_str() != "dev" {
            assert!(d.group_wait, "{} ungated: {d:?}", secrets[i].name);
        }
    }
}

// ---- the evaluation's properties ------------------------------------------------------

fn info(last: Option<i64>, unfinished: bool, due: i64) -> DueInfo {
    let ts = |h: i64| t("2026-01-01T00:00:00Z") + chrono::Duration::hours(h);
    DueInfo {
        last_rotated: last.map(ts),
        verified: last.map(ts),
        due: ts(due),
        current: None,
        status: if unfinished {
            DueStatus::Unfinished(Unfinished::Redeploy)
        } else {
            DueStatus::Scheduled
        },
        tag_problem: None,
        hold: None,
        group_wait: false,
        group_owed: false,
        group_expected: None,
    }
}

fn group(n: usize) -> GroupConfig {
    GroupConfig {
        name: "g".into(),
        members: (0..n).map(|i| SecretName::new(format!("s{i}"))).collect(),
        soak: HOUR,
        origin: Location::whole(std::path::Path::new("g.toml").into()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever the stored state: at most one stage may start a new rotation, none while
    /// held, a stage starts only after every stage before it is done and confirmed at
    /// least a soak ago, and the stages after a current one wait.
    #[test]
    fn one_stage_at_a_time_in_order(
        members in proptest::collection::vec((proptest::option::of(0i64..200), proptest::bool::weighted(0.2), 0i64..400, proptest::bool::weighted(0.1)), 2..5),
        held in proptest::bool::weighted(0.2),
        now_h in 0i64..400,
    ) {
        let g = group(members.len());
        let infos: Vec<Option<DueInfo>> = members.iter().map(|(l, u, d, unreadable)| (!unreadable).then(|| info(*l, *u, *d))).collect();
        let hold = held.then_some("held by test");
        let reads: Vec<_> = infos.iter().map(|i| i.as_ref().map(|d| (d, hold))).collect();
        let now = t("2026-01-01T00:00:00Z") + chrono::Duration::hours(now_h);
        let v = evaluate(&g, &reads, now);
        let fresh: Vec<usize> = (0..members.len())
            .filter(|&i| v.may_start(i, now) && !matches!(v.stages[i], StageState::InProgress { .. }))
            .collect();
        prop_assert!(fresh.len() <= 1, "{fresh:?} {v:?}");
        if held && infos.iter().any(Option::is_some) {
            prop_assert!(fresh.is_empty(), "held but {fresh:?} may start");
        }
        if let Some(&k) = fresh.first() {
            for (j, d) in infos.iter().enumerate().take(k) {
                let d = d.as_ref().expect("an unreadable stage before a starting one");
                prop_assert!(!matches!(d.status, DueStatus::Unfinished(_)), "stage {j} unfinished before {k}");
            }
            if k > 0 {
                let before = infos[k - 1].as_ref().unwrap().verified.expect("confirmed");
                prop_assert!(before + chrono::Duration::hours(1) <= now);
            } else {
                // A new cycle only when the last one is complete.
                prop_assert!(v.current.is_none());
            }
        }
        if let Some(c) = v.current {
            for (j, s) in v.stages.iter().enumerate().skip(c + 1) {
                prop_assert!(matches!(s, StageState::Waiting { .. } | StageState::InProgress { .. } | StageState::Unknown), "stage {j} {s:?} after current {c}");
            }
        }
    }
}
