//! Local network helpers for tests that start servers.

/// A TCP port that was free a moment ago on 127.0.0.1 (another process may take it
/// before the caller binds it; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}
