//! A real Redis server per test (Debian's `redis-server`) on 127.0.0.1 and a free port,
//! no RDB or AOF, every command in the slow log (`slowlog-log-slower-than 0`), an ACL
//! admin `admin` with a known password and the default user off. Where the users live is
//! the test's choice ([`Setup`]): in redis.conf (the default), in an aclfile, or on the
//! command line only (nothing can save an ACL change). Driven with `redis-cli`. Killed
//! on drop. Missing binaries: skipped locally, a failure under CI (see
//! [`super::server::missing`]).

use super::server::{missing, spawn_listening, start_on_free_port};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to accept connections.
const START: Duration = Duration::from_secs(20);

pub const ADMIN_USER: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-Pa55:/@'\"\\word";

/// Where the server's users are defined, and so how an ACL change can be saved.
#[derive(Clone, Copy)]
pub enum Setup<'a> {
    /// A redis.conf with the users and these extra lines (`CONFIG REWRITE` saves).
    ConfFile(&'a str),
    /// A redis.conf naming an aclfile, which holds the users and these extra user lines
    /// (`ACL SAVE` saves).
    AclFile(&'a str),
    /// Command-line options only, plus these: no file can hold an ACL change.
    NoConfig(&'a [&'a str]),
}

pub struct Redis {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
    /// redis-server's arguments, for a restart.
    args: Vec<String>,
}

fn cli() -> PathBuf {
    PathBuf::from("/usr/bin/redis-cli")
}

fn server() -> PathBuf {
    PathBuf::from("/usr/bin/redis-server")
}

/// `user` lines for the default user (off) and the admin (its password as a SHA-256
/// hash: no password in any file).
fn base_users() -> String {
    format!(
        "user default off\nuser {ADMIN_USER} on #{} ~* &* +@all\n",
        sha256_hex(ADMIN_PASSWORD)
    )
}

impl Redis {
    /// A new server whose users are defined as `setup` says.
    pub fn start_setup(setup: Setup<'_>) -> Option<Self> {
        if !server().exists() || !cli().exists() {
            missing("Redis server (Debian package redis-server)");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("redis-test-")
            .tempdir()
            .expect("temp dir");
        let d = dir.path().display().to_string();
        let started = start_on_free_port("redis", START, |port| {
            let common = format!(
                "bind 127.0.0.1\nport {port}\nsave \"\"\nappendonly no\ndir {d}\nslowlog-log-slower-than 0\nslowlog-max-len 10000\n"
            );
            let conf = dir.path().join("redis.conf");
            let args = match setup {
                Setup::ConfFile(extra) => {
                    std::fs::write(&conf, format!("{common}{}{extra}\n", base_users()))
                        .expect("redis.conf");
                    vec![conf.display().to_string()]
                }
                Setup::AclFile(users) => {
                    let acl = dir.path().join("users.acl");
                    std::fs::write(&acl, format!("{}{users}\n", base_users())).expect("users.acl");
                    std::fs::write(&conf, format!("{common}aclfile {}\n", acl.display()))
                        .expect("redis.conf");
                    vec![conf.display().to_string()]
                }
                Setup::NoConfig(extra) => {
                    let mut a: Vec<String> = [
                        "--bind",
                        "127.0.0.1",
                        "--port",
                        &port.to_string(),
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dir",
                        &d,
                        "--user",
                        "default",
                        "off",
                        "--user",
                        ADMIN_USER,
                        "on",
                        &format!("#{}", sha256_hex(ADMIN_PASSWORD)),
                        "~*",
                        "&*",
                        "+@all",
                    ]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                    a.extend(extra.iter().map(|s| s.to_string()));
                    a
                }
            };
            (server_command(&args), args)
        });
        match started {
            Some((port, child, args)) => Some(Self {
                port,
                dir,
                child,
                args,
            }),
            None => panic!("redis-server did not start"),
        }
    }

    /// A new server; `extra` lines are added to its config file (e.g. TLS settings).
    pub fn start_with(extra: &str) -> Option<Self> {
        Self::start_setup(Setup::ConfFile(extra))
    }

    pub fn start() -> Option<Self> {
        Self::start_with("")
    }

    /// Stops the server (no save: only what was already written survives) and starts it
    /// again on the same port from the same files.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn_listening(server_command(&self.args), self.port, START, "redis")
            .unwrap_or_else(|| panic!("redis-server did not restart on port {}", self.port));
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `redis-cli` as `user`: stdout, or the error text.
    pub fn cli_as(&self, user: &str, password: &str, args: &[&str]) -> Result<String, String> {
        let out = Command::new(cli())
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["--user", user, "--pass", password, "--no-auth-warning"])
            .args(args)
            .output()
            .expect("redis-cli");
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !out.status.success()
            || text.contains("WRONGPASS")
            || text.starts_with("ERR")
            || text.starts_with("NOAUTH")
        {
            Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr)))
        } else {
            Ok(text)
        }
    }

    pub fn admin(&self, args: &[&str]) -> String {
        self.cli_as(ADMIN_USER, ADMIN_PASSWORD, args)
            .unwrap_or_else(|e| panic!("redis-cli {args:?}: {e}"))
    }

    /// Whether `AUTH user password` + `PING` works.
    pub fn can_login(&self, user: &str, password: &str) -> bool {
        self.cli_as(user, password, &["PING"]).as_deref() == Ok("PONG")
    }

    /// `MONITOR` as the admin, until the returned child is killed; output in `file`.
    pub fn monitor(&self, file: &std::path::Path) -> Child {
        let out = std::fs::File::create(file).expect("monitor file");
        let child = Command::new(cli())
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args([
                "--user",
                ADMIN_USER,
                "--pass",
                ADMIN_PASSWORD,
                "--no-auth-warning",
            ])
            .arg("MONITOR")
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-cli monitor");
        // MONITOR answers OK once it is on.
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if std::fs::read_to_string(file).is_ok_and(|s| s.contains("OK")) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }

    /// The JSON secret shape of the redis target.
    pub fn secret_json(&self, user: &str, password: &str) -> String {
        serde_json::json!({
            "host": "127.0.0.1",
            "port": self.port,
            "username": user,
            "password": password,
        })
        .to_string()
    }
}

fn server_command(args: &[String]) -> Command {
    let mut cmd = Command::new(server());
    cmd.args(args);
    cmd
}

pub fn sha256_hex(s: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
