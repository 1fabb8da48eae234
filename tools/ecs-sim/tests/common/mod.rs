//! Shared helpers: spawn the simulator binary, build an SDK client for it,
//! and talk to its admin endpoints.
#![allow(dead_code)] // Each test binary uses a different subset.

pub mod moto;

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_ecs::config::retry::RetryConfig;
use aws_sdk_ecs::config::{Builder, Credentials, Region};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A running simulator, killed on drop.
pub struct SimProcess {
    child: Child,
    pub url: String,
    addr: String,
}

impl SimProcess {
    pub fn start(args: &[&str]) -> Self {
        Self::start_with_env(args, &[])
    }

    /// Like `start`, with extra environment variables for the simulator.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ecs-sim"))
            .args(["--listen", "127.0.0.1:0", "--rng-seed", "42"])
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn ecs-sim");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let url = line
            .trim()
            .strip_prefix("ecs-sim listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_owned();
        let addr = url.trim_start_matches("http://").to_owned();
        Self { child, url, addr }
    }

    /// An SDK client without retries, so each call is exactly one request.
    pub fn client(&self) -> aws_sdk_ecs::Client {
        let config = Builder::new()
            .endpoint_url(&self.url)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .retry_config(RetryConfig::disabled())
            .behavior_version_latest()
            .build();
        aws_sdk_ecs::Client::from_conf(config)
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.http("GET", path, &[], "").await;
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).expect("admin JSON")
    }

    pub async fn post(&self, path: &str, body: &str) -> Value {
        let (status, body) = self.http("POST", path, &[], body).await;
        assert_eq!(status, 200, "POST {path}: {body}");
        serde_json::from_str(&body).expect("admin JSON")
    }

    /// A minimal HTTP/1.1 exchange returning the status and body.
    pub async fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String) {
        let (status, _, body) = self.http_full(method, path, headers, body).await;
        (status, body)
    }

    /// Like `http`, also returning the lowercased status line and headers.
    pub async fn http_full(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String, String) {
        let mut stream = TcpStream::connect(&self.addr).await.expect("connect");
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.expect("read");
        let (head, body) = raw.split_once("\r\n\r\n").expect("HTTP response");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status code");
        (status, head.to_lowercase(), body.to_owned())
    }

    /// Completions recorded for one service.
    pub async fn completions(&self, service: &str) -> Vec<Value> {
        let all = self.get("/_sim/completions").await;
        all.as_array()
            .expect("array")
            .iter()
            .filter(|c| c["service"] == service)
            .cloned()
            .collect()
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` until it returns `Some`, or panics after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Writes a seed file to a unique temporary path.
pub fn seed_file(json: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let path =
        std::env::temp_dir().join(format!("ecs-sim-seed-{}-{nanos}.json", std::process::id()));
    std::fs::write(&path, json).expect("write seed file");
    path
}
