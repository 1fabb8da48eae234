//! Local moto and ecs-sim processes for the benchmarks.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// A binary built next to this one (target/release under scripts/bench).
pub fn release_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("exe");
    exe.parent()
        .map(|d| d.join(name))
        .unwrap_or_else(|| root().join("target/release").join(name))
}

pub fn venv_bin(name: &str) -> PathBuf {
    root().join(".venv/bin").join(name)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Proc(pub Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn moto() -> (Proc, String) {
    let port = free_port();
    let child = Command::new(venv_bin("moto_server"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server (run scripts/install-tools)");
    let url = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "moto did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    (Proc(child), url)
}

pub fn ecs_sim(seed: &str, args: &[&str]) -> (Proc, String) {
    let dir =
        std::env::temp_dir().join(format!("bench-seed-{}-{}", std::process::id(), free_port()));
    std::fs::write(&dir, seed).unwrap();
    let mut child = Command::new(release_bin("ecs-sim"))
        .args(["--listen", "127.0.0.1:0", "--seed"])
        .arg(&dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ecs-sim");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_owned();
    (Proc(child), url)
}

pub fn http_get_json(url: &str) -> serde_json::Value {
    let out = Command::new("curl")
        .args(["-sf", url])
        .output()
        .expect("curl");
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

pub fn set_aws_env(moto: Option<&str>, ecs: Option<&str>) {
    // Set before any thread of ours reads the environment (at the start of a scenario).
    for (k, v) in [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
    ] {
        std::env::set_var(k, v);
    }
    if let Some(m) = moto {
        std::env::set_var("AWS_ENDPOINT_URL_SECRETS_MANAGER", m);
    }
    if let Some(e) = ecs {
        std::env::set_var("AWS_ENDPOINT_URL_ECS", e);
    }
}

pub fn ecs_client(url: &str) -> aws_sdk_ecs::Client {
    let conf = aws_sdk_ecs::config::Builder::new()
        .endpoint_url(url)
        .region(aws_sdk_ecs::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_ecs::config::Credentials::new(
            "testing", "testing", None, None, "bench",
        ))
        .behavior_version_latest()
        .build();
    aws_sdk_ecs::Client::from_conf(conf)
}

pub fn sm_client(url: &str) -> aws_sdk_secretsmanager::Client {
    let conf = aws_sdk_secretsmanager::config::Builder::new()
        .endpoint_url(url)
        .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            "testing", "testing", None, None, "bench",
        ))
        .behavior_version_latest()
        .build();
    aws_sdk_secretsmanager::Client::from_conf(conf)
}

/// Resident set size and CPU seconds of a process, and its context switches (all threads).
pub struct ProcStats {
    pub rss_kib: u64,
    pub cpu_secs: f64,
    pub ctx_switches: u64,
}

pub fn proc_stats(pid: &str) -> ProcStats {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kib = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 (1-based); after the ')' they are 12 and 13 (1-based from state).
    let cpu_secs = (ticks(11) + ticks(12)) / 100.0;
    let mut ctx_switches = 0;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            let s = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
            for l in s.lines() {
                // Wake-ups: a thread that slept and was woken. Involuntary switches are
                // preemptions, which another process on the machine causes (a build).
                if l.starts_with("voluntary_ctxt_switches:") {
                    ctx_switches += l
                        .split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0);
                }
            }
        }
    }
    ProcStats {
        rss_kib,
        cpu_secs,
        ctx_switches,
    }
}

pub fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}
