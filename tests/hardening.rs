//! Process and admin-port hardening, judged from outside the real binary: no core dumps
//! (a dump would hold secret values), and an admin port that a slow client cannot starve.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(1)
        == 0
}

/// The daemon on a minimal config; as `nobody` when the test runs as root (so that the
/// owner of its /proc entries tells whether it is dumpable).
async fn start_daemon(port: u16) -> (Daemon, Moto, ConfigDir) {
    let moto = Moto::start();
    let c = sm_client(&moto.url).await;
    create_secret(&c, "app/x", "initial-value-1234", &[]).await;
    let dir = config_dir(&format!(
        "[daemon]\nlisten = \"127.0.0.1:{port}\"\n\n[[secret]]\nname = \"x\"\nsecret_id = \"app/x\"\nevery = \"30d\"\n"
    ));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        dir.path().join("test.toml"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let mut cmd = if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(rotator_bin());
        c
    } else {
        Command::new(rotator_bin())
    };
    cmd.args(["run", "--config", dir.path().to_str().unwrap()])
        .env_remove("AWS_PROFILE")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in aws_env(Some(&moto.url), None) {
        cmd.env(k, v);
    }
    let d = Daemon(cmd.spawn().expect("start daemon"));
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "daemon not listening"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (d, moto, dir)
}

fn get(port: u16, path: &str) -> Result<String, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

#[tokio::test(flavor = "multi_thread")]
async fn slowloris_idle_connections_are_closed_and_healthz_still_answers() {
    let port = free_port();
    let (_d, _moto, _dir) = start_daemon(port).await;
    // Clients that never finish their headers (half never send a byte).
    let mut idle: Vec<TcpStream> = (0..100)
        .map(|i| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            if i % 2 == 0 {
                s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                    .unwrap();
            }
            s
        })
        .collect();
    let r = get(port, "/healthz").expect("/healthz while 100 idle connections are open");
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    // Every idle connection is closed by the server after the header-read timeout.
    let t0 = Instant::now();
    for s in &mut idle {
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut buf = [0u8; 512];
        let closed = loop {
            match s.read(&mut buf) {
                Ok(0) => break true,
                Ok(_) => continue, // a 408 or similar before closing is fine
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
                Err(_) => break false,
            }
        };
        assert!(
            closed,
            "an idle connection is still open after {:?}",
            t0.elapsed()
        );
    }
    assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());
    let r = get(port, "/healthz").expect("/healthz after");
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_cannot_dump_core_and_is_not_dumpable() {
    let port = free_port();
    let (d, _moto, _dir) = start_daemon(port).await;
    // setpriv execs the daemon in place: same pid.
    let pid = d.0.id();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>();
    assert_eq!(core.get(4..6), Some(&["0", "0"][..]), "{limits}");
    // A non-dumpable process's /proc entries belong to root, not to its own user, so
    // that user's other processes can neither read its memory nor attach to it.
    let owner = std::fs::metadata(format!("/proc/{pid}/status"))
        .unwrap()
        .uid();
    let runs_as = if is_root() {
        65534
    } else {
        std::fs::metadata("/proc/self").unwrap().uid()
    };
    assert_ne!(runs_as, 0);
    assert_eq!(
        owner, 0,
        "the daemon is dumpable (its /proc entries belong to uid {owner})"
    );
}
