//! Scenarios 3 and 4: many schedules held at idle, and a burst of due secrets, for the
//! daemon's deadline queue and for tokio-cron-scheduler, each in its own process.

use crate::servers::proc_stats;
use rotator_test_kit::clock::Sequence;
use rotator_test_kit::{ConfigDir, ConfigToml, FakeEcs, FakeStore, Latency, SecretToml};
use secret_rotator::clock::SystemClock;
use secret_rotator::daemon::scheduler::{Control, Health, Scheduler};
use secret_rotator::rotation::store::TAG_LAST_ROTATED;
use secret_rotator::rotation::Engine;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// `n` secrets due at the same instant, each rotation making its ~6 store calls with
/// `latency` each: all must be rotated, none lost.
pub async fn ours_burst(n: usize, concurrency: usize, latency_ms: u64) -> serde_json::Value {
    let dir = config(n, "30d", concurrency);
    let store = store(n, "2026-01-01T00:00:00Z");
    // Every call takes `latency` (describe_many: per ListSecrets page of 100).
    let slow = Latency::new(store.clone()).with("*", Duration::from_millis(latency_ms));
    let cfg = dir.load().expect("bench config");
    let engine = Arc::new(Engine::new(slow, no_ecs(), Arc::new(SystemClock)));
    let mut sched = Scheduler::new(
        engine,
        Arc::new(SystemClock),
        &cfg,
        Arc::new(Health::default()),
    );
    sched.load_due_times().await;
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let t0 = Instant::now();
    let task = tokio::spawn(sched.run(rx));
    let limit = Duration::from_secs(600);
    while tagged_after(&store, "2026-01-01T00:00:00Z") < n && t0.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drained = t0.elapsed();
    let rotated = tagged_after(&store, "2026-01-01T00:00:00Z");
    let _ = tx.send(Control::Shutdown).await;
    let _ = task.await;
    json!({"rotated": rotated, "drain_secs": drained.as_secs_f64(), "puts": store.op_count("PutSecretValue")})
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
