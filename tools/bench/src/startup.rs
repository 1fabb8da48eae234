//! Scenario 8: the daemon process (`secret-rotator run`) starting with `n` secrets against
//! the paged fake Secrets Manager ([`crate::fakesm`]), each ListSecrets page taking
//! `page_ms`: time to READY, to the first due secret's rotation, to every due time known
//! (the daemon's `secret_rotator_due_times_pending` gauge at 0), its peak RSS while
//! loading, and its RSS, CPU and context switches once idle.
//!
//! Two daemon processes, one after the other, each with its own fake: **quiet** is never
//! scraped and gives the memory and idle figures (at 100,000 secrets one /metrics scrape
//! renders over a million series, ~100 MB of text, whose buffers would count in the peak
//! and stay partly in the steady RSS); **timed** is scraped once a second from the moment
//! the fake served its last page (no due time can be known before) until the gauge reads
//! 0, and gives the time to every due time known. The gauge is refreshed by the daemon's
//! loop every 5 s, so that figure can be up to ~5 s late.

use crate::fakesm::{self, FakeSm};
use crate::servers::{free_port, proc_stats, release_bin};
use rotator_test_kit::{ConfigToml, SecretToml};
use serde_json::json;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub async fn run(n: usize, idle: u64, page_ms: u64) -> serde_json::Value {
    let quiet = one(n, Some(idle), page_ms).await;
    let timed = one(n, None, page_ms).await;
    json!({"secrets": n, "page_ms": page_ms, "quiet": quiet, "timed": timed})
}

/// One daemon process: with `idle`, never scraped, its idle window measured; without,
/// scraped after the last page until every due time is known.
async fn one(n: usize, idle: Option<u64>, page_ms: u64) -> serde_json::Value {
    let page = Duration::from_millis(page_ms);
    let fake = FakeSm::start(n, page).await;
    let port = free_port();
    let dir = ConfigToml::new()
        .daemon("listen", &format!("\"127.0.0.1:{port}\""))
        // A failed rotation (the fake answers errors past DescribeSecret) is retried an
        // hour later, not inside the idle window.
        .daemon("retry_initial", "\"1h\"")
        .secrets(n, |i| {
            SecretToml::new(&format!("s{i}"), &fakesm::name(i)).every("30d")
        })
        .write();
    let sock_path = dir.path().join("notify.sock");
    let sock = tokio::net::UnixDatagram::bind(&sock_path).expect("notify socket");
    // BENCH_DAEMON_LOG=<file>: the daemon logs at debug level there (what it calls).
    let debug_log = std::env::var_os("BENCH_DAEMON_LOG").map(std::path::PathBuf::from);
    let log_path = debug_log
        .clone()
        .unwrap_or_else(|| dir.path().join("daemon.log"));
    let log = std::fs::File::create(&log_path).expect("log file");
    let t0 = Instant::now();
    let mut child = tokio::process::Command::new(release_bin("secret-rotator"))
        .args(["run", "--config", dir.arg()])
        .env_clear()
        .envs([
            ("PATH", std::env::var("PATH").unwrap_or_default().as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", fake.url.as_str()),
            // Nothing here redeploys; a stray ECS call fails fast.
            ("AWS_ENDPOINT_URL_ECS", "http://127.0.0.1:9"),
            (
                "RUST_LOG",
                if debug_log.is_some() { "debug" } else { "warn" },
            ),
        ])
        .env("NOTIFY_SOCKET", &sock_path)
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("daemon (build it: cargo build --release -p secret-rotator)");
    let pid = child.id().map(|p| p.to_string()).unwrap_or_default();
    let secs = |at: Instant| at.saturating_duration_since(t0).as_secs_f64();

    let ready = tokio::time::timeout(Duration::from_secs(300), wait_ready(&sock))
        .await
        .ok()
        .map(|()| t0.elapsed().as_secs_f64());
    // Read what else the daemon says, as systemd does (a full queue drops its status
    // lines; it blocked the daemon's main loop before).
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while sock.recv(&mut buf).await.is_ok() {}
    });
    // The configuration is parsed; the scheduler (and its per-secret metrics) may still
    // be in construction: READY does not wait for it.
    let rss_ready_kib = kib(&pid, "VmRSS:");

    // Loading: until the fake served its last page (a page is at least `page`).
    let pages = n.div_ceil(100).max(1) as u32;
    let limit = Duration::from_secs(300) + page * pages * 3;
    let mut rss_samples_max = 0u64;
    while fake.seen(|s| s.last_page.is_none()) && t0.elapsed() < limit {
        rss_samples_max = rss_samples_max.max(kib(&pid, "VmRSS:"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let peak_load_kib = kib(&pid, "VmHWM:");

    // Every due time known: the gauge (refreshed by the loop every 5 s) reaches 0.
    let mut known = None;
    let mut scrape = json!(null);
    while idle.is_none() && t0.elapsed() < limit {
        let s0 = Instant::now();
        let body = get(port, "/metrics").await;
        let pending = gauge(&body, "secret_rotator_due_times_pending");
        scrape = json!({"bytes": body.len(), "secs": s0.elapsed().as_secs_f64()});
        if pending == Some(0.0) {
            known = Some(t0.elapsed().as_secs_f64());
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // Idle: the first rotations have failed (retried in an hour), every page is read, and
    // the loading work is over: the due-time pass ends (and its heap trim runs) seconds
    // after the last page, so the window starts once the daemon used no CPU for 2 s in a
    // row (at most 60 s after the last page).
    let mut idle_fig = json!(null);
    if let Some(idle) = idle {
        let settle = Instant::now();
        let mut last = proc_stats(&pid).cpu_secs;
        let mut quiet_secs = 0;
        while quiet_secs < 2 && settle.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = proc_stats(&pid).cpu_secs;
            quiet_secs = if now == last { quiet_secs + 1 } else { 0 };
            last = now;
        }
        let settled_secs = settle.elapsed().as_secs_f64();
        let s0 = proc_stats(&pid);
        tokio::time::sleep(Duration::from_secs(idle)).await;
        let s1 = proc_stats(&pid);
        idle_fig = json!({
            "settled_after_last_page_secs": settled_secs,
            "secs": idle,
            "steady_rss_mib": s1.rss_kib as f64 / 1024.0,
            "cpu_secs": s1.cpu_secs - s0.cpu_secs,
            "ctx_switches": s1.ctx_switches - s0.ctx_switches,
        });
    }
    let peak_end_kib = kib(&pid, "VmHWM:");
    let _ = child.start_kill();
    let _ = child.wait().await;
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let mib = |k: u64| k as f64 / 1024.0;
    let (first_page, last_page, first_due, pages_served, calls) = fake.seen(|s| {
        (
            s.first_page.map(secs),
            s.last_page.map(secs),
            s.first_due_call
                .as_ref()
                .map(|(t, op)| (secs(*t), op.clone())),
            s.pages,
            s.calls.clone(),
        )
    });
    json!({
        "due_secrets": fake.due().len(),
        "ready_secs": ready,
        "first_page_secs": first_page,
        "last_page_secs": last_page,
        "pages": pages_served,
        "first_due_call_secs": first_due.as_ref().map(|d| d.0),
        "first_due_call_op": first_due.map(|d| d.1),
        "due_known_secs": known,
        "rss_at_ready_mib": mib(rss_ready_kib),
        "peak_rss_load_mib": mib(peak_load_kib),
        "max_rss_sampled_load_mib": mib(rss_samples_max),
        "peak_rss_end_mib": mib(peak_end_kib),
        "idle": idle_fig,
        "scrape": scrape,
        "calls": calls,
        "log_lines": log.lines().count(),
    })
}

async fn wait_ready(sock: &tokio::net::UnixDatagram) {
    let mut buf = [0u8; 4096];
    loop {
        if let Ok(n) = sock.recv(&mut buf).await {
            if String::from_utf8_lossy(&buf[..n])
                .lines()
                .any(|l| l == "READY=1")
            {
                return;
            }
        }
    }
}

/// A `/proc/<pid>/status` field in KiB (0 when unreadable).
fn kib(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The body of `GET path` on the daemon's admin port (empty on any failure).
async fn get(port: u16, path: &str) -> String {
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return String::new();
    };
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out);
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

/// The value of an unlabelled series in Prometheus text.
fn gauge(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}
