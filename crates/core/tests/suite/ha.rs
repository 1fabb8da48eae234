//! Several replicas under per-secret leases (`[ha]`), on the test kit's fakes: the engine
//! with its fenced store/deployer, the lease protocol (`MemoryLeases`), and replicas that
//! are cut off from the lease table or frozen mid-rotation. (That an abandoned target
//! command stops with everything it started is the command target's test, in the root
//! crate's `tests/target_command.rs`.)

use rotator_core::clock::Clock;
use rotator_core::config::SecretConfig;
use rotator_core::error::AwsError;
use rotator_core::ha::{self, Ha, Leased};
use rotator_core::ids::{Account, ClusterName, ServiceName, ServiceRef, VersionId};
use rotator_core::rotation::deploy::{Deployer, Described, Forced};
use rotator_core::rotation::lease::fence::{self, is_lease_lost, Fenced};
use rotator_core::rotation::lease::{Leases, Taken};
use rotator_core::rotation::store::{
    SecretStore, AWSCURRENT, AWSPENDING, TAG_DEPLOYED_VERSION, TAG_LAST_ROTATED,
};
use rotator_core::rotation::{Engine, Outcome, Quiet, RotateOptions, RotationError};
use rotator_test_kit::leases::MemoryLeases;
use rotator_test_kit::secrets::WRITE_OPS;
use rotator_test_kit::{
    at, Behaviour, FakeEcs, FakeStore, Hook, ManualClock, SecretBuilder, Sequence,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

const SECRET: &str = "app/db-password";
const CLUSTER: &str = "prod";
const SERVICES: [&str; 4] = ["front", "api", "pdf", "admin"];

fn svc(name: &str) -> ServiceRef {
    rotator_test_kit::svc(CLUSTER, name)
}

fn config() -> SecretConfig {
    SecretBuilder::new("db-password", SECRET)
        .redeploy(CLUSTER, &SERVICES)
        .origin("tests/ha.toml")
        .build()
}

/// When this replica's writes reached the store or ECS (after its fence let them through).
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<(Instant, String)>>>);

impl Log {
    fn push(&self, what: impl Into<String>) {
        self.0.lock().unwrap().push((Instant::now(), what.into()));
    }
    fn all(&self) -> Vec<(Instant, String)> {
        self.0.lock().unwrap().clone()
    }
}

/// How a replica stops in the middle of its wait.
#[derive(Clone, Copy)]
enum Freeze {
    /// Cut off from the lease table for this long (its ECS calls still work).
    Partition(Duration),
    /// The whole process stops (blocks its runtime's thread: renewals and all).
    Pause(Duration),
}

/// ECS as one replica sees it: forces are logged; its `at`-th DescribeServices call
/// freezes it.
#[derive(Clone)]
struct ReplicaEcs {
    inner: FakeEcs,
    log: Log,
    describes: Arc<AtomicUsize>,
    freeze: Option<(usize, Freeze)>,
    leases: MemoryLeases,
    owner: &'static str,
}

impl Deployer for ReplicaEcs {
    async fn describe(
        &self,
        account: &Account,
        cluster: &ClusterName,
        services: &[ServiceName],
    ) -> Result<Vec<Described>, AwsError> {
        let n = self.describes.fetch_add(1, Ordering::SeqCst) + 1;
        match self.freeze {
            Some((at, Freeze::Partition(d))) if at == n => {
                self.leases.partition(self.owner, true);
                tokio::time::sleep(d).await;
                self.leases.partition(self.owner, false);
            }
            Some((at, Freeze::Pause(d))) if at == n => std::thread::sleep(d),
            _ => {}
        }
        self.inner.describe(account, cluster, services).await
    }

    async fn force_deploy(
        &self,
        account: &Account,
        service: &ServiceRef,
    ) -> Result<Forced, AwsError> {
        self.log.push(format!("UpdateService {service}"));
        self.inner.force_deploy(account, service).await
    }
}

type ReplicaEngine = Engine<Fenced<Hook<FakeStore>>, Fenced<ReplicaEcs>>;

struct Replica {
    engine: ReplicaEngine,
    ha: Ha,
    log: Log,
}

struct World {
    clock: ManualClock,
    store: FakeStore,
    ecs: FakeEcs,
    leases: MemoryLeases,
    original: VersionId,
}

impl World {
    fn new(start: Duration, drain: Duration) -> Self {
        let clock = ManualClock::new(at("2026-03-03T02:00:00Z"));
        let seq = Sequence::default();
        let store = FakeStore::new(&clock, &seq);
        let ecs = FakeEcs::new(&clock, &seq);
        store.create_secret(SECRET, "the-original-value-3fj29Dk!q");
        let original = store.holder(SECRET, AWSCURRENT).unwrap();
        // Last rotated long ago: due now (the daemon re-reads the due time under the lease).
        store.edit(SECRET, |s| {
            s.tags
                .insert(TAG_LAST_ROTATED.into(), "2025-01-01T00:00:00Z".into());
        });
        for name in SERVICES {
            ecs.add_service(CLUSTER, name, 2, Behaviour::Healthy { start, drain });
        }
        Self {
            clock,
            store,
            ecs,
            leases: MemoryLeases::new(),
            original,
        }
    }

    fn replica(
        &self,
        owner: &'static str,
        ttl: Duration,
        freeze: Option<(usize, Freeze)>,
    ) -> Replica {
        let log = Log::default();
        // When this replica's writes reached the store (after its fence let them through).
        let store = {
            let log = log.clone();
            Hook::new(self.store.clone(), move |op| {
                if WRITE_OPS.contains(&op) {
                    log.push(op)
                }
            })
        };
        let ecs = ReplicaEcs {
            inner: self.ecs.clone(),
            log: log.clone(),
            describes: Arc::default(),
            freeze,
            leases: self.leases.clone(),
            owner,
        };
        let clock: Arc<dyn Clock> = Arc::new(self.clock.clone());
        let engine = Engine::new(
            Fenced::new(store, true),
            Fenced::new(ecs, true),
            clock.clone(),
        );
        let leases = Leases::new(Arc::new(self.leases.clone()), owner, ttl, clock);
        Replica {
            engine,
            ha: Ha::new(leases),
            log,
        }
    }

    /// Exactly one new version, current, tagged as deployed, no AWSPENDING.
    fn assert_rotated_once(&self) {
        let s = self.store.secret(SECRET);
        assert_eq!(s.versions.len(), 2, "one new version: {:?}", s.versions);
        let current = self.store.holder(SECRET, AWSCURRENT).unwrap();
        assert_ne!(current, self.original);
        assert!(self.store.holder(SECRET, AWSPENDING).is_none());
        assert_eq!(
            s.tags.get(TAG_DEPLOYED_VERSION).map(String::as_str),
            Some(current.as_str())
        );
    }
}

/// What the daemon does: try, and while another replica holds the lease, try again later.
async fn rotate_until_ran(
    r: &Replica,
    cfg: &SecretConfig,
) -> Result<rotator_core::rotation::Report, RotationError> {
    loop {
        let opts = RotateOptions::default();
        match ha::rotate(Some(&r.ha), &r.engine, cfg, opts, &Quiet, Some(&[cfg])).await {
            Leased::Ran(res) => return res,
            Leased::Busy { retry_in, .. } => tokio::time::sleep(retry_in).await,
        }
    }
}

fn lease_lost(r: &Result<rotator_core::rotation::Report, RotationError>) -> bool {
    matches!(r, Err(RotationError::Aws { source, .. }) if is_lease_lost(source))
}

#[tokio::test(start_paused = true)]
async fn a_replica_cut_off_from_the_lease_table_mid_wait_stops_and_another_finishes() {
    let w = World::new(Duration::from_secs(40), Duration::from_secs(20));
    let ttl = Duration::from_secs(60);
    // a is cut off for 5 minutes at its second DescribeServices (the first wait poll).
    let a = w.replica(
        "a",
        ttl,
        Some((2, Freeze::Partition(Duration::from_secs(300)))),
    );
    let b = w.replica("b", ttl, None);
    let cfg = config();
    let (ra, rb) = tokio::join!(rotate_until_ran(&a, &cfg), async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        rotate_until_ran(&b, &cfg).await
    });
    assert!(lease_lost(&ra), "a: {ra:?}");
    assert_eq!(
        rb.as_ref().map(|r| r.outcome).ok(),
        Some(Outcome::Success),
        "b: {rb:?}"
    );
    w.assert_rotated_once();
    let acq = w.leases.acquisitions();
    let b_took = acq
        .iter()
        .find(|x| x.owner == "b")
        .expect("b took the lease")
        .at;
    for (at, what) in a.log.all() {
        assert!(at < b_took, "a wrote {what} after b took the lease");
    }
    // a may have forced each service before it was cut off (or been stopped by the fence
    // inside the coalescing window); b could not know whether a's deployments would be
    // seen through, so it forced once more. Never more.
    for s in SERVICES {
        let n = w.ecs.forced(&svc(s)).len();
        assert!((1..=2).contains(&n), "{s}: forced {n} times");
    }
}

#[tokio::test(start_paused = true)]
async fn a_replica_arriving_after_another_finished_does_nothing() {
    let w = World::new(Duration::from_secs(40), Duration::from_secs(20));
    let ttl = Duration::from_secs(60);
    let a = w.replica("a", ttl, None);
    let b = w.replica("b", ttl, None);
    let cfg = config();
    // b found the secret due at the same moment as a (it read the same state), but only
    // gets the lease once a is done: it must not rotate or redeploy again.
    let (ra, rb) = tokio::join!(rotate_until_ran(&a, &cfg), async {
        tokio::time::sleep(Duration::from_millis(10)).await;
        rotate_until_ran(&b, &cfg).await
    });
    assert_eq!(ra.unwrap().outcome, Outcome::Success);
    assert_eq!(rb.unwrap().outcome, Outcome::AlreadyRotated);
    w.assert_rotated_once();
    for s in SERVICES {
        assert_eq!(w.ecs.forced(&svc(s)).len(), 1, "{s}");
    }
    assert!(b.log.all().is_empty(), "b wrote: {:?}", b.log.all());
}

#[tokio::test(start_paused = true)]
async fn a_write_after_the_lease_lapsed_is_refused_even_if_nobody_noticed() {
    // A frozen process resumes: its next write runs before anything else looks at the
    // lease. The fence still refuses it.
    let w = World::new(Duration::from_secs(40), Duration::from_secs(20));
    let leases = Leases::new(
        Arc::new(w.leases.clone()),
        "a",
        Duration::from_secs(60),
        Arc::new(w.clock.clone()),
    )
    .without_renewal();
    let Taken::Ours(guard) = leases.acquire("k").await.unwrap() else {
        panic!("free lease")
    };
    let store = Fenced::new(w.store.clone(), true);
    let s = config().secret;
    let current = w.store.holder(SECRET, AWSCURRENT).unwrap();
    tokio::time::advance(Duration::from_secs(46)).await;
    let r = fence::scope(guard.fence(), store.tag(&s, &[("k", "v".into())])).await;
    assert!(matches!(&r, Err(e) if is_lease_lost(e)), "{r:?}");
    let r = fence::scope(
        guard.fence(),
        store.update_stage(&s, AWSPENDING, Some(&current), None),
    )
    .await;
    assert!(r.is_err());
    // Without a lease at all, a fenced store refuses too (leases are configured).
    assert!(store.tag(&s, &[("k", "v".into())]).await.is_err());
    assert!(!w.store.secret(SECRET).tags.contains_key("k"));
    // Reads are not fenced.
    assert!(store.describe(&s).await.is_ok());
}

/// The review scenario: a replica frozen for longer than its lease (a VM pause), while
/// another takes over and finishes; then it resumes mid-wait. Real threads and real time,
/// since a pause must freeze the replica's renewals and lease watcher too.
#[test]
fn a_replica_frozen_mid_rotation_resumes_and_writes_nothing() {
    let w = Arc::new(World::new(
        Duration::from_millis(300),
        Duration::from_millis(300),
    ));
    let ttl = Duration::from_secs(6);
    let cfg = config();
    let a_thread = {
        let w = w.clone();
        let cfg = cfg.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                // Frozen 10 s at its first wait poll: its lease (6 s) lapses meanwhile.
                let a = w.replica("a", ttl, Some((2, Freeze::Pause(Duration::from_secs(10)))));
                let r = rotate_until_ran(&a, &cfg).await;
                (r, a.log.all())
            })
        })
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (rb, b_log) = rt.block_on(async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let b = w.replica("b", ttl, None);
        let r = rotate_until_ran(&b, &cfg).await;
        (r, b.log.all())
    });
    let (ra, a_log) = a_thread.join().unwrap();
    assert!(lease_lost(&ra), "a: {ra:?}");
    assert_eq!(
        rb.as_ref().map(|r| r.outcome).ok(),
        Some(Outcome::Success),
        "b: {rb:?}"
    );
    w.assert_rotated_once();
    let b_took = w
        .leases
        .acquisitions()
        .iter()
        .find(|x| x.owner == "b")
        .expect("b took the lease")
        .at;
    for (at, what) in &a_log {
        assert!(*at < b_took, "a wrote {what} after b took the lease");
    }
    assert!(!b_log.is_empty());
    // b resumes as a redeploy and finds every consumer already stable on a deployment
    // that a started after the value became current: nothing is forced twice.
    for s in SERVICES {
        assert_eq!(w.ecs.forced(&svc(s)).len(), 1, "{s}");
    }
}

/// Due exactly now when the lease is taken (a deadline fires at the due instant): the
/// re-check rotates it; only a due time still in the future means another replica
/// finished it.
#[tokio::test(start_paused = true)]
async fn a_secret_due_exactly_now_is_rotated_under_the_lease() {
    let clock = ManualClock::new(at("2026-03-03T02:00:00Z"));
    let seq = Sequence::default();
    let store = FakeStore::new(&clock, &seq);
    store.create_secret("app/exact", "initial-value");
    let every = Duration::from_secs(30 * 86_400);
    let tagged = clock.now() - chrono::Duration::from_std(every).unwrap();
    store.edit("app/exact", |s| {
        s.tags.insert(
            TAG_LAST_ROTATED.into(),
            tagged.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
    });
    let cfg = SecretBuilder::new("exact", "app/exact")
        .every(every)
        .build();
    let engine = Engine::new(
        store.clone(),
        FakeEcs::new(&clock, &seq),
        Arc::new(clock.clone()),
    );
    let leases = Leases::new(
        Arc::new(MemoryLeases::new()),
        "a",
        Duration::from_secs(60),
        Arc::new(clock.clone()),
    );
    let ha = Ha::new(leases);
    let Leased::Ran(r) = ha::rotate(
        Some(&ha),
        &engine,
        &cfg,
        RotateOptions::default(),
        &Quiet,
        Some(&[&cfg]),
    )
    .await
    else {
        panic!("the lease is free")
    };
    assert_eq!(r.expect("rotated").outcome, Outcome::Success);
    assert_eq!(store.secret("app/exact").versions.len(), 2);
}
