//! A real PostgreSQL 15 server per test: `initdb` + `pg_ctl` on 127.0.0.1 and a free
//! port, SCRAM-SHA-256 only, a superuser `admin` with a known password; run as the
//! unprivileged `postgres` OS user when the test runs as root. Stopped (`-m immediate`)
//! and removed on drop.

use rotator_test_kit::net::free_port;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub const ADMIN_USER: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-Pa55:/@'\"\\word";

pub struct Postgres {
    pub port: u16,
    dir: tempfile::TempDir,
    bindir: PathBuf,
    as_postgres: bool,
}

fn bindir() -> PathBuf {
    let fixed = PathBuf::from("/usr/lib/postgresql/15/bin");
    if fixed.join("initdb").exists() {
        return fixed;
    }
    let out = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .expect("PostgreSQL 15 server binaries not found: run scripts/install-tools");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

impl Postgres {
    /// Starts a new server; panics with the server log if it does not come up.
    pub fn start() -> Self {
        Self::init().launch(&[], None)
    }

    /// A new cluster (`initdb`), not started yet: put files in with [`Self::write_file`],
    /// then [`Self::launch`].
    pub fn init() -> Self {
        let as_postgres = super::server::is_root();
        let dir = tempfile::Builder::new()
            .prefix("pg-test-")
            .tempdir()
            .expect("temp dir");
        let me = Self {
            port: 0,
            dir,
            bindir: bindir(),
            as_postgres,
        };
        std::fs::write(me.path("pwfile"), ADMIN_PASSWORD).expect("pwfile");
        if as_postgres {
            me.chown(me.dir.path());
        }
        let data = me.path("data");
        let out = me.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "--username",
                ADMIN_USER,
                "--pwfile",
                me.path("pwfile").to_str().unwrap(),
                "--auth",
                "scram-sha-256",
                "--encoding",
                "UTF8",
                "--no-locale",
                "--no-sync",
                "--no-instructions",
            ],
        );
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        me
    }

    /// Starts the server: `conf` lines are appended to postgresql.conf (e.g. `ssl = on`),
    /// `hba` replaces pg_hba.conf (default: SCRAM for everyone from 127.0.0.1).
    pub fn launch(mut self, conf: &[&str], hba: Option<&str>) -> Self {
        let data = self.path("data");
        std::fs::write(
            data.join("pg_hba.conf"),
            hba.unwrap_or("host all all 127.0.0.1/32 scram-sha-256\n"),
        )
        .expect("pg_hba");
        let base = std::fs::read_to_string(data.join("postgresql.conf")).unwrap_or_default();
        let log = self.path("server.log");
        for attempt in 0..3 {
            let port = free_port();
            let mut extra = format!(
                "\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\npassword_encryption = 'scram-sha-256'\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\nshared_buffers = '16MB'\nmax_connections = 40\n",
                self.dir.path().display()
            );
            for line in conf {
                extra.push_str(line);
                extra.push('\n');
            }
            std::fs::write(
                data.join("postgresql.conf"),
                format!("{base}\n# secret-rotator test settings\n{extra}"),
            )
            .expect("postgresql.conf");
            let t0 = Instant::now();
            let out = self.run(
                "pg_ctl",
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-l",
                    log.to_str().unwrap(),
                    "-w",
                    "-t",
                    "30",
                    "start",
                ],
            );
            if out.status.success() {
                self.port = port;
                eprintln!("postgres on 127.0.0.1:{port} started in {:?}", t0.elapsed());
                return self;
            }
            if attempt == 2 {
                panic!(
                    "pg_ctl start failed: {}{}\n{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr),
                    self.log()
                );
            }
        }
        unreachable!()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("server.log")).unwrap_or_default()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn chown(&self, p: &Path) {
        let st = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(p)
            .status()
            .expect("chown");
        assert!(st.success(), "chown {} failed", p.display());
    }

    /// Puts a file into the server's directory, owned by the server's OS user.
    pub fn write_file(&self, name: &str, content: &[u8], mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = self.path(name);
        std::fs::write(&p, content).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        if self.as_postgres {
            self.chown(&p);
        }
        p
    }

    fn run(&self, tool: &str, args: &[&str]) -> Output {
        let bin = self.bindir.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&bin);
            c
        } else {
            Command::new(&bin)
        };
        cmd.args(args)
            .env_remove("PGDATA")
            .env_remove("PGPORT")
            .env_remove("PGHOST")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()))
    }

    /// The JSON secret shape AWS uses for database secrets.
    pub fn secret_json(&self, user: &str, password: &str) -> String {
        serde_json::json!({
            "engine": "postgres",
            "host": "127.0.0.1",
            "username": user,
            "password": password,
            "dbname": "postgres",
            "port": self.port,
        })
        .to_string()
    }

    /// Logs in (no TLS) and returns the client, or the error text.
    pub async fn login(
        &self,
        user: &str,
        password: &str,
    ) -> Result<tokio_postgres::Client, String> {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host("127.0.0.1")
            .port(self.port)
            .user(user)
            .password(password)
            .dbname("postgres")
            .connect_timeout(Duration::from_secs(10));
        match cfg.connect(tokio_postgres::NoTls).await {
            Ok((client, conn)) => {
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                Ok(client)
            }
            Err(e) => Err(match e.as_db_error() {
                Some(db) => format!("{}: {}", db.code().code(), db.message()),
                None => e.to_string(),
            }),
        }
    }

    pub async fn admin(&self) -> tokio_postgres::Client {
        self.login(ADMIN_USER, ADMIN_PASSWORD)
            .await
            .expect("admin login")
    }

    /// Runs SQL as the superuser.
    pub async fn sql(&self, sql: &str) {
        self.admin()
            .await
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }

    /// Whether a login with these credentials and `SELECT 1` work.
    pub async fn can_login(&self, user: &str, password: &str) -> bool {
        match self.login(user, password).await {
            Ok(c) => c.simple_query("SELECT 1").await.is_ok(),
            Err(_) => false,
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.path("data");
        let _ = self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap_or_default(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }
}

/// What a [`FakePg`] does with each connection.
#[derive(Clone, Copy, Debug)]
pub enum FakeBehavior {
    /// Accepts and never answers (a hung or hostile server).
    Silent,
    /// Answers the startup with AuthenticationCleartextPassword, then records what the
    /// client sends (a server that wants the password in clear text).
    AskCleartext,
    /// Lets anyone in (AuthenticationOk, ReadyForQuery), then never answers a query (a
    /// database whose catalog is locked).
    OkThenHang,
}

/// A TCP server that speaks just enough of the PostgreSQL protocol to misbehave, and
/// records every byte it receives.
pub struct FakePg {
    pub port: u16,
    received: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl FakePg {
    pub fn start(behavior: FakeBehavior) -> Self {
        use std::io::{Read, Write};
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (rec, conns) = (received.clone(), connections.clone());
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                conns.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let rec = rec.clone();
                std::thread::spawn(move || {
                    let record = |b: &[u8]| rec.lock().unwrap().extend_from_slice(b);
                    let read_startup = |s: &mut std::net::TcpStream| -> Option<()> {
                        loop {
                            let mut len = [0u8; 4];
                            s.read_exact(&mut len).ok()?;
                            let n = u32::from_be_bytes(len) as usize;
                            let mut body = vec![0u8; n.saturating_sub(4)];
                            s.read_exact(&mut body).ok()?;
                            record(&body);
                            // SSLRequest: no TLS here.
                            if body.get(..4) == Some(&80877103u32.to_be_bytes()[..]) {
                                s.write_all(b"N").ok()?;
                                continue;
                            }
                            return Some(());
                        }
                    };
                    let ok = match behavior {
                        FakeBehavior::Silent => Some(()),
                        FakeBehavior::AskCleartext => read_startup(&mut s).and_then(|_| {
                            let mut m = vec![b'R'];
                            m.extend_from_slice(&8u32.to_be_bytes());
                            m.extend_from_slice(&3u32.to_be_bytes());
                            s.write_all(&m).ok()
                        }),
                        FakeBehavior::OkThenHang => read_startup(&mut s).and_then(|_| {
                            let mut m = vec![b'R'];
                            m.extend_from_slice(&8u32.to_be_bytes());
                            m.extend_from_slice(&0u32.to_be_bytes());
                            m.push(b'Z');
                            m.extend_from_slice(&5u32.to_be_bytes());
                            m.push(b'I');
                            s.write_all(&m).ok()
                        }),
                    };
                    if ok.is_some() {
                        let mut buf = [0u8; 4096];
                        while let Ok(n) = s.read(&mut buf) {
                            if n == 0 {
                                break;
                            }
                            rec.lock().unwrap().extend_from_slice(&buf[..n]);
                        }
                    }
                });
            }
        });
        Self {
            port,
            received,
            connections,
        }
    }

    /// Every byte received so far, on every connection.
    pub fn received(&self) -> Vec<u8> {
        self.received.lock().unwrap().clone()
    }

    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }
}
