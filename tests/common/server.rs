//! What the per-test servers (common::mariadb, common::redis, common::postgres) share: a skip (or, under CI,
//! a failure) when the server is not installed, whether they run as root, and starting one on a free port until it
//! accepts connections.

use rotator_test_kit::net::free_port;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Says why a test is skipped when `what` is missing; under CI, fails instead:
/// scripts/install-tools installs the servers there, so a missing one is a broken setup,
/// never a silent skip.
pub fn missing(what: &str) {
    let msg = format!("{what} not installed: run scripts/install-tools");
    if std::env::var_os("CI").is_some() {
        panic!("{msg} (CI must run this test)");
    }
    eprintln!("SKIPPED: {msg}");
}

/// Whether the tests run as root (the servers then run as their own OS user).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Spawns `cmd` (its output dropped) and waits up to `wait` until something accepts TCP
/// on 127.0.0.1:`port`: the child, or `None` (killed) if it exited or never listened.
pub fn spawn_listening(mut cmd: Command, port: u16, wait: Duration, what: &str) -> Option<Child> {
    let t0 = Instant::now();
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {what}: {e}"));
    while t0.elapsed() < wait {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            eprintln!("{what} on 127.0.0.1:{port} started in {:?}", t0.elapsed());
            return Some(child);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Starts a server on a free port: `command(port)` builds it (and may write its config);
/// three ports are tried, since another process may take one between [`free_port`] and
/// the server's bind. `None` if none worked.
pub fn start_on_free_port<T>(
    what: &str,
    wait: Duration,
    mut command: impl FnMut(u16) -> (Command, T),
) -> Option<(u16, Child, T)> {
    for _attempt in 0..3 {
        let port = free_port();
        let (cmd, extra) = command(port);
        if let Some(child) = spawn_listening(cmd, port, wait, what) {
            return Some((port, child, extra));
        }
    }
    None
}
