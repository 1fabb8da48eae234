//! Test harness: local moto (Secrets Manager, IAM, DynamoDB, SQS) and ecs-sim (ECS) servers,
//! the CLI.
//! Helpers that do not need the AWS SDK or the binary (a free port, config directories,
//! Prometheus text) come from the test kit and are re-exported here.
#![allow(dead_code)]

pub mod alibaba;
pub mod mariadb;
pub mod postgres;
pub mod receiver;
pub mod redis;
pub mod server;
pub mod sns;

// Each test binary uses a different subset.
#[allow(unused_imports)]
pub use rotator_test_kit::{
    metrics::{sum as metric_sum, value as metric},
    net::free_port,
    ConfigDir,
};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where cargo put the binaries of this build (target/debug).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe path");
    // target/debug/deps/<test> -> target/debug
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

pub fn rotator_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_secret-rotator"))
}

/// The binary with fail points (`SECRET_ROTATOR_CRASH_AT`), for the crash tests.
pub fn crash_bin() -> PathBuf {
    let p = repo_root().join("target/failpoints/secret-rotator");
    assert!(
        p.exists(),
        "{} missing: scripts/test builds it (cargo build --features failpoints)",
        p.display()
    );
    p
}

/// Every step a rotation with a target and command consumers can be killed at.
pub const CRASH_POINTS: [&str; 6] = [
    "after-create",
    "after-set",
    "after-test",
    "after-move-current",
    "after-remove-pending",
    "after-consumer-commands",
];

/// Runs `rotate` killed at `point` (the fail-point binary), then reruns it normally;
/// asserts the first stopped there and the rerun succeeded, and returns the rerun.
pub fn crash_then_rerun(point: &str, run: impl Fn(&Path, Option<&str>) -> Output) -> Output {
    let crashed = run(&crash_bin(), Some(point));
    assert!(
        !crashed.status.success()
            && String::from_utf8_lossy(&crashed.stderr).contains(&format!("failpoint {point}")),
        "{point}: the run did not stop at the fail point: {}",
        String::from_utf8_lossy(&crashed.stderr)
    );
    let rerun = run(&rotator_bin(), None);
    assert!(
        rerun.status.success(),
        "{point}: the rerun failed: {}",
        String::from_utf8_lossy(&rerun.stderr)
    );
    rerun
}

fn wait_http(port: u16, path: &str, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let req = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
            if s.write_all(req.as_bytes()).is_ok() {
                let mut buf = [0u8; 12];
                if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.") {
                    return true;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A simple HTTP GET returning (status, body).
pub fn http_get(url: &str) -> std::io::Result<(u16, String)> {
    http("GET", url, None)
}

pub fn http_post(url: &str, body: &str) -> std::io::Result<(u16, String)> {
    http("POST", url, Some(body))
}

fn http(method: &str, url: &str, body: Option<&str>) -> std::io::Result<(u16, String)> {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut s = TcpStream::connect(host)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let body = body.unwrap_or("");
    write!(s, "{method} {path} HTTP/1.0\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

fn moto_bin() -> PathBuf {
    if let Ok(p) = std::env::var("MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let venv = repo_root().join(".venv/bin/moto_server");
    if venv.exists() {
        return venv;
    }
    PathBuf::from("moto_server")
}

/// A moto server on a free port, killed on drop.
pub struct Moto {
    child: Child,
    pub url: String,
}

impl Moto {
    pub fn start() -> Self {
        let port = free_port();
        let child = Command::new(moto_bin())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start moto_server ({e}); run scripts/install-tools first")
            });
        assert!(
            wait_http(port, "/moto-api/", Duration::from_secs(30)),
            "moto_server did not start on port {port}"
        );
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An ecs-sim server, killed on drop.
pub struct EcsSim {
    child: Child,
    pub url: String,
}

impl EcsSim {
    /// `args` are extra flags (e.g. `--time-scale 20`); `seed` is the seed file JSON.
    pub fn start(args: &[&str], seed: &str) -> Self {
        let bin = bin_dir().join("ecs-sim");
        assert!(
            bin.exists(),
            "{} is missing: build it with `cargo build -p ecs-sim` (scripts/test does)",
            bin.display()
        );
        let seed_file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(seed_file.path(), seed).expect("write seed");
        let (_, seed_path) = seed_file.keep().expect("keep seed");
        let mut child = Command::new(bin)
            .args(["--listen", "127.0.0.1:0", "--seed"])
            .arg(&seed_path)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start ecs-sim");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("ecs-sim banner");
        let url = line
            .trim()
            .rsplit(' ')
            .next()
            .unwrap_or_default()
            .to_owned();
        assert!(
            url.starts_with("http://"),
            "unexpected ecs-sim banner: {line:?}"
        );
        Self { child, url }
    }

    pub fn calls(&self) -> serde_json::Value {
        let (_, body) = http_get(&format!("{}/_sim/calls", self.url)).expect("calls");
        serde_json::from_str(&body).expect("calls json")
    }

    pub fn completions(&self) -> serde_json::Value {
        let (_, body) = http_get(&format!("{}/_sim/completions", self.url)).expect("completions");
        serde_json::from_str(&body).expect("completions json")
    }
}

impl Drop for EcsSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Environment that points the AWS SDK at the local servers, with fake credentials.
pub fn aws_env(moto: Option<&str>, ecs: Option<&str>) -> Vec<(String, String)> {
    let mut env = vec![
        ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
        ("AWS_REGION".into(), "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ("AWS_CONFIG_FILE".into(), "/dev/null".into()),
        ("AWS_SHARED_CREDENTIALS_FILE".into(), "/dev/null".into()),
    ];
    if let Some(m) = moto {
        env.push(("AWS_ENDPOINT_URL_SECRETS_MANAGER".into(), m.into()));
        env.push(("AWS_ENDPOINT_URL_IAM".into(), m.into()));
        env.push(("AWS_ENDPOINT_URL_STS".into(), m.into()));
        env.push(("AWS_ENDPOINT_URL_DYNAMODB".into(), m.into()));
        env.push(("AWS_ENDPOINT_URL_SQS".into(), m.into()));
    }
    if let Some(e) = ecs {
        env.push(("AWS_ENDPOINT_URL_ECS".into(), e.into()));
    }
    env
}

/// Points this test process's own SDK clients at the local servers (each test runs in its
/// own process under nextest; the servers are per test).
pub fn point_sdk_at(moto: Option<&str>, ecs: Option<&str>) {
    for (k, v) in aws_env(moto, ecs) {
        std::env::set_var(k, v);
    }
}

/// Runs the CLI with the given args and environment.
pub fn rotator(args: &[&str], env: &[(String, String)]) -> Output {
    let mut cmd = Command::new(rotator_bin());
    cmd.args(args)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run secret-rotator")
}

/// `check --remote --config DIR`: its exit code, stdout and stderr.
pub fn check_remote(dir: &Path, env: &[(String, String)]) -> (Option<i32>, String, String) {
    let out = rotator(
        &["check", "--remote", "--config", dir.to_str().unwrap()],
        env,
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A temporary config directory holding `test.toml` with this text.
pub fn config_dir(toml: &str) -> ConfigDir {
    ConfigDir::with_toml(toml)
}

/// A background process (a daemon, a proxy), killed and reaped on drop.
pub struct Bg(pub Child);

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub async fn sm_client(url: &str) -> aws_sdk_secretsmanager::Client {
    let conf = aws_sdk_secretsmanager::config::Builder::new()
        .endpoint_url(url)
        .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .behavior_version_latest()
        .build();
    aws_sdk_secretsmanager::Client::from_conf(conf)
}

pub fn sqs_client(url: &str) -> aws_sdk_sqs::Client {
    let conf = aws_sdk_sqs::config::Builder::new()
        .endpoint_url(url)
        .region(aws_sdk_sqs::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .behavior_version_latest()
        .build();
    aws_sdk_sqs::Client::from_conf(conf)
}

/// Creates a secret with an initial value and optional tags; returns its ARN.
pub async fn create_secret(
    c: &aws_sdk_secretsmanager::Client,
    name: &str,
    value: &str,
    tags: &[(&str, &str)],
) -> String {
    let mut req = c.create_secret().name(name).secret_string(value);
    for (k, v) in tags {
        req = req.tags(
            aws_sdk_secretsmanager::types::Tag::builder()
                .key(*k)
                .value(*v)
                .build(),
        );
    }
    req.send()
        .await
        .expect("create secret")
        .arn()
        .unwrap_or_default()
        .to_owned()
}

/// Stage -> version ids of a secret, read through the real API.
pub async fn stages(
    c: &aws_sdk_secretsmanager::Client,
    id: &str,
) -> std::collections::BTreeMap<String, Vec<String>> {
    let d = c
        .describe_secret()
        .secret_id(id)
        .send()
        .await
        .expect("describe");
    let mut out: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (v, stages) in d.version_ids_to_stages().cloned().unwrap_or_default() {
        for s in stages {
            out.entry(s).or_default().push(v.clone());
        }
    }
    out
}

pub async fn value_at(c: &aws_sdk_secretsmanager::Client, id: &str, stage: &str) -> String {
    c.get_secret_value()
        .secret_id(id)
        .version_stage(stage)
        .send()
        .await
        .expect("get value")
        .secret_string()
        .unwrap_or_default()
        .to_owned()
}

pub async fn version_count(c: &aws_sdk_secretsmanager::Client, id: &str) -> usize {
    c.list_secret_version_ids()
        .secret_id(id)
        .include_deprecated(true)
        .send()
        .await
        .expect("versions")
        .versions()
        .len()
}

/// A test CA and a server certificate for `san` (e.g. `IP:127.0.0.1`) signed by it, made
/// with openssl in `dir`: returns (ca.crt, server.crt, server.key), all world-readable so
/// a server running as another OS user can read them.
pub fn make_test_certs(dir: &Path, san: &str) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).expect("cert dir");
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl (scripts/install-tools installs it)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=server",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(dir.join("ext"), format!("subjectAltName={san}\n")).expect("ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext",
        "-out",
        "server.crt",
    ]);
    use std::os::unix::fs::PermissionsExt;
    for f in ["ca.crt", "server.crt", "server.key"] {
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
    }
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
    (
        dir.join("ca.crt"),
        dir.join("server.crt"),
        dir.join("server.key"),
    )
}

/// A TCP server that accepts connections and never answers (a hung or hostile server);
/// the connections are held until the process ends.
pub fn silent_server() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            held.push(s);
        }
    });
    port
}
