//! A real MariaDB server per test (Debian's `mariadb-server`): `mariadb-install-db` into a
//! temp dir, then `mariadbd` on 127.0.0.1 and a free port, with the general and slow logs
//! on (every statement, `long_query_time = 0`) so tests can look for passwords in them,
//! and a superuser `admin`@`%` with a known password. Runs as the `mysql` OS user when the
//! test runs as root. Killed and removed on drop.
//!
//! Without the server binaries, [`MariaDb::start`] returns `None` after printing why
//! (a developer's machine); under CI it panics instead ([`super::server::missing`]).
//! Each server has its own tmpdir: two `mariadb-install-db` runs sharing /tmp fail now
//! and then (their temporary tables collide).

use super::server::{is_root, missing, start_on_free_port};
use mysql_async::prelude::Queryable;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

pub const ADMIN_USER: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-Pa55:/@'\"\\word";

pub struct MariaDb {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

fn find(names: &[&str]) -> Option<PathBuf> {
    for n in names {
        for d in ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"] {
            let p = PathBuf::from(d).join(n);
            if p.exists() {
                return Some(p);
            }
        }
    }
    None
}

/// `*` + upper-case hex SHA1(SHA1(password)): what `IDENTIFIED BY PASSWORD` takes.
pub fn native_hash(password: &str) -> String {
    use sha1::{Digest, Sha1};
    let h = Sha1::digest(Sha1::digest(password.as_bytes()));
    let hex: String = h.iter().map(|b| format!("{b:02X}")).collect();
    format!("*{hex}")
}

impl MariaDb {
    /// A new server with `extra` mariadbd options (e.g. `--ssl-cert=...`).
    pub fn start_with(extra: &[String]) -> Option<Self> {
        let (Some(install), Some(server)) = (
            find(&["mariadb-install-db", "mysql_install_db"]),
            find(&["mariadbd", "mysqld"]),
        ) else {
            missing("MariaDB server (Debian package mariadb-server)");
            return None;
        };
        let root = is_root();
        let dir = tempfile::Builder::new()
            .prefix("mariadb-test-")
            .tempdir()
            .expect("temp dir");
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).expect("tmpdir");
        let user_args: Vec<String> = if root {
            let st = Command::new("chown")
                .args(["-R", "mysql:mysql"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(st.success());
            vec!["--user=mysql".into()]
        } else {
            Vec::new()
        };
        let data = dir.path().join("data");
        let out = Command::new(&install)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .args(&user_args)
            .output()
            .expect("mariadb-install-db");
        assert!(
            out.status.success(),
            "mariadb-install-db failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // Runs at every start: the admin over TCP, with a hash so the password itself is in
        // no file.
        let init = dir.path().join("init.sql");
        std::fs::write(
            &init,
            format!(
                "CREATE USER IF NOT EXISTS '{ADMIN_USER}'@'%' IDENTIFIED BY PASSWORD '{}';\nGRANT ALL PRIVILEGES ON *.* TO '{ADMIN_USER}'@'%' WITH GRANT OPTION;\n",
                native_hash(ADMIN_PASSWORD)
            ),
        )
        .expect("init.sql");
        if root {
            let _ = Command::new("chown")
                .args(["-R", "mysql:mysql"])
                .arg(dir.path())
                .status();
        }
        let started = start_on_free_port("mariadb", Duration::from_secs(30), |port| {
            let p = |name: &str| dir.path().join(name).display().to_string();
            let mut cmd = Command::new(&server);
            cmd.arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--tmpdir={}", tmp.display()))
                .args(&user_args)
                .args([
                    "--bind-address=127.0.0.1".to_owned(),
                    format!("--port={port}"),
                    format!("--socket={}", p("sock")),
                    format!("--pid-file={}", p("pid")),
                    format!("--log-error={}", p("error.log")),
                    format!("--init-file={}", init.display()),
                    "--skip-log-bin".into(),
                    "--skip-name-resolve".into(),
                    "--general-log=1".into(),
                    format!("--general-log-file={}", p("general.log")),
                    "--slow-query-log=1".into(),
                    format!("--slow-query-log-file={}", p("slow.log")),
                    "--long-query-time=0".into(),
                    "--log-slow-admin-statements=1".into(),
                    "--innodb-buffer-pool-size=16M".into(),
                    "--innodb-flush-log-at-trx-commit=0".into(),
                    "--max-connections=40".into(),
                ])
                .args(extra);
            (cmd, ())
        });
        match started {
            Some((port, child, ())) => Some(Self { port, dir, child }),
            None => panic!(
                "mariadbd did not start: {}",
                std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
            ),
        }
    }

    pub fn start() -> Option<Self> {
        Self::start_with(&[])
    }

    /// A server with TLS: a certificate for 127.0.0.1 signed by a test CA, made in
    /// `certs`; the CA's file comes back with it.
    pub fn start_tls(certs: &std::path::Path) -> Option<(Self, PathBuf)> {
        let (ca, crt, key) = super::make_test_certs(certs, "IP:127.0.0.1");
        let db = Self::start_with(&[
            format!("--ssl-cert={}", crt.display()),
            format!("--ssl-key={}", key.display()),
        ])?;
        Some((db, ca))
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The general and slow logs so far.
    pub fn logs(&self) -> String {
        let mut s = std::fs::read_to_string(self.path("general.log")).unwrap_or_default();
        s.push_str(&std::fs::read_to_string(self.path("slow.log")).unwrap_or_default());
        s
    }

    /// The JSON secret shape AWS uses for RDS MySQL/MariaDB secrets.
    pub fn secret_json(&self, user: &str, password: &str) -> String {
        serde_json::json!({
            "engine": "mariadb",
            "host": "127.0.0.1",
            "username": user,
            "password": password,
            "dbname": "shop",
            "port": self.port,
        })
        .to_string()
    }

    pub async fn login(&self, user: &str, password: &str) -> Result<mysql_async::Conn, String> {
        let opts = mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(self.port)
            .user(Some(user))
            .pass(Some(password))
            .prefer_socket(false);
        match tokio::time::timeout(Duration::from_secs(10), mysql_async::Conn::new(opts)).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timeout".into()),
        }
    }

    pub async fn can_login(&self, user: &str, password: &str) -> bool {
        match self.login(user, password).await {
            Ok(mut c) => {
                let ok = c.query_drop("SELECT 1").await.is_ok();
                let _ = c.disconnect().await;
                ok
            }
            Err(_) => false,
        }
    }

    /// Runs SQL as the admin (one statement per call).
    pub async fn sql(&self, sql: &str) {
        let mut c = self
            .login(ADMIN_USER, ADMIN_PASSWORD)
            .await
            .expect("admin login");
        c.query_drop(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let _ = c.disconnect().await;
    }

    /// `SHOW GRANTS FOR account` as the admin, or the error text.
    pub async fn grants(&self, account: &str) -> Result<Vec<String>, String> {
        let mut c = self
            .login(ADMIN_USER, ADMIN_PASSWORD)
            .await
            .expect("admin login");
        let r = c
            .query::<String, _>(format!("SHOW GRANTS FOR {account}"))
            .await
            .map_err(|e| e.to_string());
        let _ = c.disconnect().await;
        r
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
