//! Scenarios 3 and 4: many schedules held at idle, and a burst of due secrets, for the
//! daemon's deadline queue and for tokio-cron-scheduler, each in its own process.

use crate::memstore::{MemStore, NoEcs};
use crate::servers::proc_stats;
use secret_rotator::clock::SystemClock;
use secret_rotator::daemon::scheduler::{Control, Health, Scheduler};
use secret_rotator::rotation::Engine;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn config(n: usize, every: &str, concurrency: usize) -> tempfile_dir::Dir {
    let dir = tempfile_dir::Dir::new();
    let mut s = String::with_capacity(n * 80);
    s.push_str(&format!(
        "[daemon]\nmax_concurrent_rotations = {concurrency}\nlisten = \"127.0.0.1:0\"\n"
    ));
    for i in 0..n {
        s.push_str(&format!(
            "[[secret]]\nname = \"b{i}\"\nsecret_id = \"bench/{i}\"\nevery = \"{every}\"\n"
        ));
    }
    std::fs::write(dir.path().join("bench.toml"), s).unwrap();
    dir
}

/// A temp dir without another dependency.
mod tempfile_dir {
    pub struct Dir(std::path::PathBuf);
    impl Dir {
        pub fn new() -> Self {
            let p = std::env::temp_dir().join(format!(
                "bench-{}-{}",
                std::process::id(),
                crate::servers::free_port()
            ));
            std::fs::create_dir_all(&p).unwrap();
            Self(p)
        }
        pub fn path(&self) -> &std::path::Path {
            &self.0
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Our scheduler with `n` schedules due in ~30 days: time to ready, then `idle` seconds.
pub async fn ours_idle(n: usize, idle: u64) -> serde_json::Value {
    let dir = config(n, "30d", 8);
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let store = MemStore::new(n, &now, Duration::ZERO);
    let before = proc_stats("self");
    let t0 = Instant::now();
    let cfg = secret_rotator::config::load_dir(dir.path()).expect("bench config");
    let after_load = proc_stats("self");
    let engine = Arc::new(Engine::new(store, NoEcs, Arc::new(SystemClock)));
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
        "idle_cpu_secs": after.cpu_secs - at_ready.cpu_secs,
        "idle_wakeups": after.ctx_switches - at_ready.ctx_switches,
    })
}

/// `n` secrets due at the same instant, each rotation making its ~6 store calls with
/// `latency` each: all must be rotated, none lost.
pub async fn ours_burst(n: usize, concurrency: usize, latency_ms: u64) -> serde_json::Value {
    let dir = config(n, "30d", concurrency);
    let store = Arc::new(MemStore::new(
        n,
        "2026-01-01T00:00:00Z",
        Duration::from_millis(latency_ms),
    ));
    let cfg = secret_rotator::config::load_dir(dir.path()).expect("bench config");
    let engine = Arc::new(Engine::new(store.clone(), NoEcs, Arc::new(SystemClock)));
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
    while store.tagged_after("2026-01-01T00:00:00Z") < n && t0.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drained = t0.elapsed();
    let rotated = store.tagged_after("2026-01-01T00:00:00Z");
    let _ = tx.send(Control::Shutdown).await;
    let _ = task.await;
    json!({"rotated": rotated, "drain_secs": drained.as_secs_f64(), "puts": store.puts.load(Ordering::Relaxed)})
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
