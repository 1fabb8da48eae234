//! systemd notifications (sd_notify protocol, no libsystemd). Without NOTIFY_SOCKET
//! every call is a no-op.

use sd_notify::NotifyState;
use std::time::Duration;

/// How long a state change (READY, RELOADING, STOPPING, WATCHDOG) waits for room in a
/// full notify queue before it is dropped. sd_notify's own send blocks: a supervisor
/// that does not read its socket stopped the main loop, which also handles SIGTERM.
const STATE_WAIT: Duration = Duration::from_secs(1);

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = deliver(states, STATE_WAIT) {
        tracing::warn!(error = %e, "sd_notify not sent (the notify socket is full or gone)");
    }
}

/// `states` as one datagram to NOTIFY_SOCKET (none set: nothing to do), waiting at most
/// `wait` for room in a full queue.
fn deliver(states: &[NotifyState<'_>], wait: Duration) -> std::io::Result<()> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(());
    };
    let msg: String = states.iter().map(|s| format!("{s}\n")).collect();
    let deadline = std::time::Instant::now() + wait;
    loop {
        match send_now(&path, &msg) {
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            r => return r,
        }
    }
}

pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// RELOADING=1 with MONOTONIC_USEC, as Type=notify-reload expects.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(t) => send(&[NotifyState::Reloading, t]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// STATUS=, sent when the scheduler's line changes. Never blocks: a notify socket whose
/// queue is full (a supervisor that does not read it) drops the line instead of stopping
/// the main loop, which also handles the signals (sd_notify's sends block).
pub fn status(s: &str) {
    let line = s.replace('\n', " ");
    if let Err(e) = deliver(&[NotifyState::Status(&line)], Duration::ZERO) {
        tracing::debug!(error = %e, "sd_notify STATUS not sent");
    }
}

/// One datagram to the notify socket at `path` (`@name`: an abstract socket), without
/// waiting for room in its queue.
fn send_now(path: &std::ffi::OsStr, msg: &str) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::UnixDatagram;
    let sock = UnixDatagram::unbound()?;
    sock.set_nonblocking(true)?;
    let bytes = path.as_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            return sock.send_to_addr(msg.as_bytes(), &addr).map(|_| ());
        }
        #[cfg(not(target_os = "linux"))]
        return Err(std::io::Error::other(format!("abstract socket {name:?}")));
    }
    sock.send_to(msg.as_bytes(), path).map(|_| ())
}

pub fn watchdog() {
    send(&[NotifyState::Watchdog]);
}

/// The watchdog period systemd asked for (WATCHDOG_USEC), if any.
pub fn watchdog_period() -> Option<Duration> {
    let mut usec = 0u64;
    sd_notify::watchdog_enabled(false, &mut usec).then(|| Duration::from_micros(usec))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;
    use std::time::Instant;

    /// A notify socket nobody reads unless the test does.
    fn socket() -> (tempfile::TempDir, std::path::PathBuf, UnixDatagram) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        (dir, path, server)
    }

    /// A supervisor that never reads its notify socket: once the queue is full, a status
    /// line is dropped at once (it blocked the main loop, signals included, before).
    #[test]
    fn a_full_notify_socket_does_not_block_a_status_line() {
        let (_dir, path, _server) = socket();
        let (tx, rx) = std::sync::mpsc::channel();
        let p = path.clone();
        std::thread::spawn(move || {
            let t0 = Instant::now();
            let mut sent = 0;
            for i in 0..1000 {
                if send_now(p.as_os_str(), &format!("STATUS=line {i}\n")).is_ok() {
                    sent += 1;
                }
            }
            let _ = tx.send((sent, t0.elapsed()));
        });
        let (sent, took) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("a status send blocked on a full notify socket");
        assert!((1..1000).contains(&sent), "{sent} of 1000 queued");
        assert!(took < Duration::from_secs(5), "{took:?}");
    }

    /// The same for the state changes: STOPPING on a full queue gives up after about a
    /// second (the daemon then stops anyway), instead of never returning.
    #[test]
    fn a_state_change_on_a_full_notify_socket_gives_up_after_a_second() {
        let (_dir, path, _server) = socket();
        while send_now(path.as_os_str(), "STATUS=filler\n").is_ok() {}
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let t0 = Instant::now();
            // The environment is the process's: nextest runs each test in its own, and
            // no other test here reads the variable.
            std::env::set_var("NOTIFY_SOCKET", &path);
            stopping();
            let _ = tx.send(t0.elapsed());
        });
        let took = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("STOPPING blocked on a full notify socket");
        assert!(took < Duration::from_secs(3), "{took:?}");
    }

    #[test]
    fn a_status_line_arrives_whole() {
        let (_dir, path, server) = socket();
        send_now(path.as_os_str(), "STATUS=3 secrets\n").unwrap();
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STATUS=3 secrets\n");
    }
}
