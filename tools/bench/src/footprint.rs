//! Scenario 6: binary size, start-to-READY, RSS at idle with 10 secrets (real moto).

use crate::servers::{file_size, free_port, moto, proc_stats, release_bin, set_aws_env, sm_client};
use serde_json::json;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

pub async fn run() -> serde_json::Value {
    let (_moto, url) = moto();
    set_aws_env(Some(&url), Some("http://127.0.0.1:9"));
    let c = sm_client(&url);
    let mut cfg = format!("[daemon]\nlisten = \"127.0.0.1:{}\"\n", free_port());
    for i in 0..10 {
        c.create_secret()
            .name(format!("fp/{i}"))
            .secret_string("v")
            .send()
            .await
            .expect("create");
        cfg.push_str(&format!(
            "[[secret]]\nname = \"s{i}\"\nsecret_id = \"fp/{i}\"\nevery = \"30d\"\n"
        ));
    }
    let dir = std::env::temp_dir().join(format!("bench-fp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.toml"), cfg).unwrap();
    let sock_path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let bin = release_bin("secret-rotator");
    let t0 = Instant::now();
    let mut child = std::process::Command::new(&bin)
        .args(["run", "--config"])
        .arg(&dir)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("daemon");
    let mut buf = [0u8; 4096];
    let mut ready = None;
    while t0.elapsed() < Duration::from_secs(30) {
        if let Ok(n) = sock.recv(&mut buf) {
            if String::from_utf8_lossy(&buf[..n])
                .lines()
                .any(|l| l == "READY=1")
            {
                ready = Some(t0.elapsed());
                break;
            }
        }
    }
    std::thread::sleep(Duration::from_secs(5));
    let pid = child.id().to_string();
    let s0 = proc_stats(&pid);
    std::thread::sleep(Duration::from_secs(10));
    let s1 = proc_stats(&pid);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    json!({
        "binary_bytes": file_size(&bin),
        "ready_secs": ready.map(|d| d.as_secs_f64()),
        "rss_mib": s1.rss_kib as f64 / 1024.0,
        "idle_cpu_secs_10s": s1.cpu_secs - s0.cpu_secs,
        "idle_wakeups_10s": s1.ctx_switches - s0.ctx_switches,
    })
}
