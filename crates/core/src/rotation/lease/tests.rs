//! The lease protocol against the in-memory store, on paused tokio time.

use super::memory::MemoryLeases;
use super::*;
use crate::clock::ManualClock;
use proptest::prelude::*;

const TTL: Duration = Duration::from_secs(60);
const KEY: &str = "us-east-1:app/db";

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-03T02:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn replica(store: &MemoryLeases, name: &str, skew_ms: i64) -> (Leases, ManualClock) {
    let clock = ManualClock::new(t0() + chrono::Duration::milliseconds(skew_ms));
    let l = Leases::new(Arc::new(store.clone()), name, TTL, Arc::new(clock.clone()));
    (l, clock)
}

async fn take(l: &Leases) -> Option<LeaseGuard> {
    match l.acquire(KEY).await.unwrap() {
        Taken::Ours(g) => Some(g),
        Taken::Busy { .. } => None,
    }
}

#[tokio::test(start_paused = true)]
async fn a_held_lease_is_busy_for_others_and_renewed_in_the_background() {
    let store = MemoryLeases::new();
    let (a, _) = replica(&store, "a", 0);
    let (b, _) = replica(&store, "b", 0);
    let ga = take(&a).await.expect("free lease");
    match b.acquire(KEY).await.unwrap() {
        Taken::Busy { holder } => assert_eq!(holder.as_deref(), Some("a")),
        Taken::Ours(_) => panic!("two holders"),
    }
    // Ten ttls later: still a's, renewed every ttl/3.
    tokio::time::sleep(TTL * 10).await;
    assert!(ga.fence().check_local().is_ok());
    assert!(ga.fence().verify().await.is_ok());
    assert!(take(&b).await.is_none());
    // Released: b takes it at once, with a higher version.
    let va = ga.record().version;
    ga.release().await.unwrap();
    let gb = take(&b).await.expect("released lease");
    assert_eq!(gb.record().version, va + 1);
}

#[tokio::test(start_paused = true)]
async fn a_partitioned_holder_stops_before_another_replica_can_take_over() {
    let store = MemoryLeases::new();
    let (a, _) = replica(&store, "a", 0);
    let (b, _) = replica(&store, "b", 0);
    let ga = take(&a).await.unwrap();
    let fence = ga.fence();
    let started = Instant::now();
    store.partition("a", true);
    let why = fence.lost().await;
    let stopped = started.elapsed();
    assert!(why.contains("not renewed"), "{why}");
    // a stops at ttl - margin ...
    assert_eq!(stopped, TTL - a.margin());
    assert!(fence.verify().await.is_err());
    // ... and b cannot take it before ttl + margin.
    tokio::time::sleep_until(started + TTL + b.margin() - Duration::from_secs(1)).await;
    assert!(take(&b).await.is_none());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let gb = take(&b).await.expect("expired lease");
    // a reconnects: its lease stays lost, and its renewal cannot steal b's back.
    store.partition("a", false);
    assert!(ga.renew().await.is_err());
    assert!(fence.check_local().is_err());
    assert!(gb.fence().verify().await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_takeover_is_seen_by_the_next_verify_and_the_next_renewal() {
    let store = MemoryLeases::new();
    // b's clock runs 3 margins ahead: beyond what the protocol tolerates, so b takes over
    // while a still believes it holds the lease. The record check catches it.
    let (a, _) = replica(&store, "a", 0);
    let (b, _) = replica(&store, "b", 45_000);
    let ga = a.without_renewal().acquire(KEY).await.unwrap();
    let Taken::Ours(ga) = ga else { panic!() };
    tokio::time::sleep(Duration::from_secs(31)).await;
    let _gb = take(&b).await.expect("b's clock says a's lease expired");
    assert!(ga.fence().check_local().is_ok(), "a still believes");
    let why = ga.fence().verify().await.unwrap_err();
    assert!(why.contains("taken over"), "{why}");
    assert!(ga.fence().check_local().is_err(), "lost is sticky");
}

#[tokio::test(start_paused = true)]
async fn a_wall_clock_jump_forward_ends_the_lease() {
    // A suspended machine: the monotonic clock stood still, the wall clock moved on.
    let store = MemoryLeases::new();
    let (a, clock) = replica(&store, "a", 0);
    let ga = take(&a).await.unwrap();
    clock.set(t0() + chrono::Duration::hours(1));
    let why = ga.fence().check_local().unwrap_err();
    assert!(why.contains("wall clock"), "{why}");
}

/// The wall-clock bound is the same as the monotonic one: ttl - margin after the
/// acquire, not a moment later (another replica may take over from ttl + margin).
#[tokio::test(start_paused = true)]
async fn the_lease_ends_on_the_wall_clock_at_ttl_minus_margin() {
    let store = MemoryLeases::new();
    let (a, clock) = replica(&store, "a", 0);
    let Taken::Ours(ga) = a.clone().without_renewal().acquire(KEY).await.unwrap() else {
        panic!("free lease")
    };
    let bound = chrono::Duration::from_std(TTL - a.margin()).unwrap();
    clock.set(t0() + bound - chrono::Duration::seconds(1));
    assert!(ga.fence().check_local().is_ok());
    clock.set(t0() + bound + chrono::Duration::seconds(1));
    let why = ga.fence().check_local().unwrap_err();
    assert!(why.contains("wall clock"), "{why}");
}

#[tokio::test(start_paused = true)]
async fn a_dropped_guard_is_released_in_the_background() {
    let store = MemoryLeases::new();
    let (a, _) = replica(&store, "a", 0);
    let (b, _) = replica(&store, "b", 0);
    drop(take(&a).await.unwrap());
    tokio::task::yield_now().await;
    assert!(take(&b).await.is_some());
}

#[derive(Clone, Debug)]
enum Op {
    Acquire(usize),
    Renew(usize),
    Release(usize),
    Drop(usize),
    Wait(u64),
    Cut(usize, bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize).prop_map(Op::Acquire),
        2 => (0..3usize).prop_map(Op::Renew),
        1 => (0..3usize).prop_map(Op::Release),
        1 => (0..3usize).prop_map(Op::Drop),
        4 => (0..150_000u64).prop_map(Op::Wait),
        2 => (0..3usize, any::<bool>()).prop_map(|(i, c)| Op::Cut(i, c)),
    ]
}

/// Plays `ops` for three replicas whose clocks are `skews_ms` apart; `Err` names the step
/// at which two replicas both held a valid lease, or a holder's belief disagreed with the
/// table.
fn play(ops: &[Op], skews_ms: [i64; 3], background: bool) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let store = MemoryLeases::new();
        let names = ["a", "b", "c"];
        let leases: Vec<Leases> = (0..3)
            .map(|i| {
                let (l, _) = replica(&store, names[i], skews_ms[i]);
                if background {
                    l
                } else {
                    l.without_renewal()
                }
            })
            .collect();
        let mut guards: Vec<Option<LeaseGuard>> = vec![None, None, None];
        for (step, op) in ops.iter().enumerate() {
            match op {
                Op::Acquire(i) => {
                    let holds = guards[*i]
                        .as_ref()
                        .is_some_and(|g| g.fence().check_local().is_ok());
                    if !holds {
                        guards[*i] = None;
                        if let Ok(Taken::Ours(g)) = leases[*i].acquire(KEY).await {
                            guards[*i] = Some(g);
                        }
                    }
                }
                Op::Renew(i) => {
                    if let Some(g) = &guards[*i] {
                        let _ = g.renew().await;
                    }
                }
                Op::Release(i) => {
                    if let Some(g) = guards[*i].take() {
                        let _ = g.release().await;
                    }
                }
                Op::Drop(i) => guards[*i] = None,
                Op::Wait(ms) => tokio::time::sleep(Duration::from_millis(*ms)).await,
                Op::Cut(i, c) => store.partition(names[*i], *c),
            }
            tokio::task::yield_now().await;
            let valid: Vec<(usize, LeaseRecord)> = guards
                .iter()
                .enumerate()
                .filter_map(|(i, g)| {
                    let g = g.as_ref()?;
                    g.fence().check_local().ok().map(|_| (i, g.record()))
                })
                .collect();
            if valid.len() > 1 {
                return Err(format!("step {step} ({op:?}): valid holders {valid:?}"));
            }
            if let Some((i, mine)) = valid.first() {
                let truth = store.record(KEY);
                let agrees = truth
                    .as_ref()
                    .is_some_and(|t| t.owner == mine.owner && t.version == mine.version);
                if !agrees {
                    return Err(format!(
                        "step {step} ({op:?}): replica {i} believes it holds {mine:?}; the table says {truth:?}"
                    ));
                }
            }
        }
        Ok(())
    })
}

/// Clock offsets each within a margin (less 1 s) of true time: pairwise under 2 margins.
fn skews() -> impl Strategy<Value = [i64; 3]> {
    let m = (TTL / 4).as_millis() as i64 - 1000;
    [-m..=m, -m..=m, -m..=m]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn never_two_valid_holders_with_manual_renewals(
        ops in proptest::collection::vec(op(), 1..60),
        skews in skews(),
    ) {
        prop_assert_eq!(play(&ops, skews, false), Ok(()));
    }

    #[test]
    fn never_two_valid_holders_with_background_renewals(
        ops in proptest::collection::vec(op(), 1..40),
        skews in skews(),
    ) {
        prop_assert_eq!(play(&ops, skews, true), Ok(()));
    }
}

#[test]
fn the_checker_sees_two_holders_when_clocks_are_further_apart_than_tolerated() {
    // Without this the property above could pass by checking nothing.
    let ops = [
        Op::Acquire(0),
        Op::Cut(0, true),
        Op::Wait(31_000),
        Op::Acquire(1),
    ];
    let r = play(&ops, [0, 45_000, 0], false);
    assert!(r.is_err(), "{r:?}");
    assert_eq!(play(&ops, [0, 29_000, 0], false), Ok(()));
}

/// The owner names the host and the process (what an operator reads in the lock table),
/// and differs per call (a restarted process is a new owner).
#[test]
fn an_owner_id_names_host_and_process_and_is_new_each_time() {
    let a = owner_id();
    let parts: Vec<&str> = a.split('/').collect();
    assert_eq!(parts.len(), 3, "{a}");
    assert!(!parts[0].is_empty(), "{a}");
    assert_eq!(parts[1], std::process::id().to_string(), "{a}");
    assert_eq!(parts[2].len(), 8, "{a}");
    assert_ne!(owner_id(), owner_id());
}
