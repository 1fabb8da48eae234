//! Scenarios 3 and 4: many schedules held at idle, and a burst of due secrets, for the
//! daemon's deadline queue and for tokio-cron-scheduler, each in its own process.

use crate::servers::proc_stats;
use rotator_test_kit::clock::Sequence;
use rotator_test_kit::{ConfigDir, ConfigToml, FakeEcs, FakeStore, Latency, SecretToml};
use secret_rotator::clock::SystemClock;
use secret_rotator::daemon::scheduler::{Control, Health, Scheduler};
use secret_rotator::ids::SecretName;
use secret_rotator::rotation::store::TAG_LAST_ROTATED;
use secret_rotator::rotation::Engine;
use secret_rotator::telemetry::Telemetry;
use serde_json::json;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `n` secrets `b<i>` on `bench/<i>`, rotated `every`, nothing to redeploy.
fn config(n: usize, every: &str, concurrency: usize) -> ConfigDir {
    ConfigToml::new()
        .daemon("max_concurrent_rotations", &concurrency.to_string())
        .daemon("listen", "\"127.0.0.1:0\"")
        .secrets(n, |i| {
            SecretToml::new(&format!("b{i}"), &format!("bench/{i}")).every(every)
        })
        .write()
}

/// The test kit's in-memory Secrets Manager holding `bench/0..n`, each last rotated at
/// `last_rotated` (its tag); counters only, no call log (millions of calls).
fn store(n: usize, last_rotated: &str) -> FakeStore {
    let store = FakeStore::new(&SystemClock, &Sequence::default()).without_call_log();
    for i in 0..n {
        store.create_tagged(
            &format!("bench/{i}"),
            "initial",
            &[(TAG_LAST_ROTATED, last_rotated)],
        );
    }
    store
}

/// ECS with no services (the burst and scale scenarios redeploy nothing).
fn no_ecs() -> FakeEcs {
    FakeEcs::new(&SystemClock, &Sequence::default())
}

/// Secrets whose last-rotated tag is no longer `initial`.
fn tagged_after(store: &FakeStore, initial: &str) -> usize {
    store.count_secrets(|s| s.tags.get(TAG_LAST_ROTATED).is_some_and(|t| t != initial))
}

/// Our scheduler with `n` schedules due in ~30 days: time to ready, then `idle` seconds.
pub async fn ours_idle(n: usize, idle: u64) -> serde_json::Value {
    let dir = config(n, "30d", 8);
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let store = store(n, &now);
    let before = proc_stats("self");
    let t0 = Instant::now();
    let cfg = dir.load().expect("bench config");
    let after_load = proc_stats("self");
    let engine = Arc::new(Engine::new(store, no_ecs(), Arc::new(SystemClock)));
    let mut sched = Scheduler::new(
        engine,
        Arc::new(SystemClock),
        &cfg,
        Arc::new(Health::default()),
    );
    drop(cfg);
    let after_new = proc_stats("self");
    sched.load_due_times().await;
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let task = tokio::spawn(sched.run(rx));
    let ready = t0.elapsed();
    let at_ready = proc_stats("self");
    tokio::time::sleep(Duration::from_secs(idle)).await;
    let after = proc_stats("self");
    let _ = tx.send(Control::Shutdown).await;
    let _ = task.await;
    json!({
        "ready_secs": ready.as_secs_f64(),
        "rss_mib": after.rss_kib as f64 / 1024.0,
        "rss_base_mib": before.rss_kib as f64 / 1024.0,
        "rss_after_config_mib": after_load.rss_kib as f64 / 1024.0,
        "rss_after_scheduler_mib": after_new.rss_kib as f64 / 1024.0,
        "idle_cpu_secs": after.cpu_secs - at_ready.cpu_secs,
        "idle_wakeups": after.ctx_switches - at_ready.ctx_switches,
    })
}

/// tokio-cron-scheduler 0.15 holding the same schedules. It cannot say "every 30 days",
/// so each secret is a one-shot job at its due time (what a user would have to do).
pub async fn tcs_idle(n: usize, idle: u64) -> serde_json::Value {
    use tokio_cron_scheduler::{Job, JobScheduler};
    let before = proc_stats("self");
    let t0 = Instant::now();
    let sched = JobScheduler::new().await.expect("tcs");
    for i in 0..n {
        let due = Duration::from_secs(30 * 86_400 + i as u64);
        let job = Job::new_one_shot_async(due, |_, _| Box::pin(async {})).expect("job");
        sched.add(job).await.expect("add");
    }
    sched.start().await.expect("start");
    let ready = t0.elapsed();
    let at_ready = proc_stats("self");
    tokio::time::sleep(Duration::from_secs(idle)).await;
    let after = proc_stats("self");
    json!({
        "ready_secs": ready.as_secs_f64(),
        "rss_mib": after.rss_kib as f64 / 1024.0,
        "rss_base_mib": before.rss_kib as f64 / 1024.0,
        "idle_secs": idle,
        "idle_cpu_secs": after.cpu_secs - at_ready.cpu_secs,
        "idle_wakeups": after.ctx_switches - at_ready.ctx_switches,
    })
}

/// Counts finished rotations by outcome, and wakes the bench when `n` have finished: the
/// drain is timed without scanning the store (a scan under the fake's lock every few ms
/// would contend with the rotations it times).
struct Finished {
    n: usize,
    done: AtomicUsize,
    success: AtomicUsize,
    all: tokio::sync::Notify,
}

impl Telemetry for Finished {
    fn rotation_finished(&self, _secret: &SecretName, outcome: &'static str, _seconds: f64) {
        if outcome == "success" {
            self.success.fetch_add(1, Ordering::Relaxed);
        }
        if self.done.fetch_add(1, Ordering::Relaxed) + 1 == self.n {
            // Stores a permit if the bench is not waiting yet.
            self.all.notify_one();
        }
    }
}

/// `n` secrets due at the same instant (3 s ahead: after the due times are loaded), each
/// rotation making its store calls with `latency` each: all must be rotated, none lost,
/// none twice. Drain: from the due instant to the last rotation's end. The start rate limit is
/// lifted to its maximum (10,000 a minute): its default (10) spreads an overdue backlog
/// over minutes on purpose, and this measures how rotations share the concurrency slots.
/// Ideal drain: the store calls the rotations made (due-time reads take no slot) ×
/// latency ÷ concurrency.
pub async fn ours_burst(
    n: usize,
    concurrency: usize,
    latency_ms: u64,
    precise: bool,
) -> serde_json::Value {
    let dir = ConfigToml::new()
        .daemon("max_concurrent_rotations", &concurrency.to_string())
        .daemon("max_starts_per_minute", "10000")
        .daemon("listen", "\"127.0.0.1:0\"")
        .secrets(n, |i| {
            SecretToml::new(&format!("b{i}"), &format!("bench/{i}"))
        })
        .write();
    // Tags have whole seconds: the due instant is a whole second 3 to 4 s from now.
    let due = chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp() + 4, 0)
        .expect("a time of now");
    let initial =
        (due - chrono::Duration::days(30)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let initial = initial.as_str();
    let store = store(n, initial);
    let latency = Duration::from_millis(latency_ms);
    // Every call takes `latency` (describe_many: per ListSecrets page of 100).
    let slow = Latency::new(store.clone()).with("*", latency);
    // The OS's sleep, not tokio's 1 ms timer ticks (~6 ms per 5 ms sleep), unless told.
    let slow = if precise { slow.precise() } else { slow };
    let cfg = dir.load().expect("bench config");
    let finished = Arc::new(Finished {
        n,
        done: AtomicUsize::new(0),
        success: AtomicUsize::new(0),
        all: tokio::sync::Notify::new(),
    });
    let engine = Arc::new(
        Engine::new(slow.clone(), no_ecs(), Arc::new(SystemClock)).with_telemetry(finished.clone()),
    );
    let mut sched = Scheduler::new(
        engine,
        Arc::new(SystemClock),
        &cfg,
        Arc::new(Health::default()),
    );
    sched.load_due_times().await;
    let calls_before = slow.calls();
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let task = tokio::spawn(sched.run(rx));
    let t0 = Instant::now() + (due - chrono::Utc::now()).to_std().unwrap_or_default();
    let limit = Duration::from_secs(600);
    let _ = tokio::time::timeout(limit, finished.all.notified()).await;
    let drained = t0.elapsed();
    let calls = slow.calls() - calls_before;
    // Long enough for every post-rotation due-time read to land: a secret rotated twice
    // would show here.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = tx.send(Control::Shutdown).await;
    let _ = task.await;
    let ideal = (calls as f64 * latency.as_secs_f64()) / concurrency as f64;
    let floor = waits_floor(&slow, calls, concurrency).await;
    json!({
        "secrets": n,
        "concurrency": concurrency,
        "rotated": tagged_after(&store, initial),
        "finished": finished.done.load(Ordering::Relaxed),
        "succeeded": finished.success.load(Ordering::Relaxed),
        "puts": store.op_count("PutSecretValue"),
        // Secrets holding more than the initial value and one new one: rotated twice.
        "twice": store.count_secrets(|s| s.versions.len() > 2),
        "precise": precise,
        "calls_per_rotation": calls as f64 / n as f64,
        "drain_secs": drained.as_secs_f64(),
        "ideal_secs": ideal,
        "ratio": drained.as_secs_f64() / ideal,
        "floor_secs": floor.as_secs_f64(),
        "ratio_floor": drained.as_secs_f64() / floor.as_secs_f64(),
    })
}

/// The same `calls` as bare waits of `slow`'s delay, `concurrency` chains at once, no
/// scheduler around them: what the simulated latency allows at best.
async fn waits_floor<S: Clone + Send + Sync + 'static>(
    slow: &Latency<S>,
    calls: u64,
    concurrency: usize,
) -> Duration {
    let c = concurrency as u64;
    let t0 = Instant::now();
    let chains: Vec<_> = (0..c)
        .map(|i| {
            let mine = calls / c + u64::from(i < calls % c);
            let slow = slow.clone();
            tokio::spawn(async move {
                for _ in 0..mine {
                    slow.pause("*").await;
                }
            })
        })
        .collect();
    for chain in chains {
        let _ = chain.await;
    }
    t0.elapsed()
}

/// The same burst on tokio-cron-scheduler: `n` one-shot jobs at the same instant, each
/// doing the same amount of waiting. Counts what fires.
pub async fn tcs_burst(n: usize, latency_ms: u64) -> serde_json::Value {
    use tokio_cron_scheduler::{Job, JobScheduler};
    let fired = Arc::new(AtomicU64::new(0));
    let sched = JobScheduler::new().await.expect("tcs");
    for _ in 0..n {
        let f = fired.clone();
        let job = Job::new_one_shot_async(Duration::from_secs(3), move |_, _| {
            let f = f.clone();
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(6 * latency_ms)).await;
                f.fetch_add(1, Ordering::Relaxed);
            })
        })
        .expect("job");
        sched.add(job).await.expect("add");
    }
    sched.start().await.expect("start");
    let t0 = Instant::now();
    let mut last = 0;
    let mut last_change = Instant::now();
    // Stop once nothing more has fired for 5 s (or after 60 s).
    while t0.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = fired.load(Ordering::Relaxed);
        if now != last {
            last = now;
            last_change = Instant::now();
        } else if now > 0 && last_change.elapsed() > Duration::from_secs(5) {
            break;
        }
        if now as usize >= n {
            break;
        }
    }
    json!({"fired": fired.load(Ordering::Relaxed), "of": n, "secs": t0.elapsed().as_secs_f64()})
}
