//! What the IBM store's tests share: an in-process ibm-sm-sim, its `/_sim` controls, and
//! stores and secret refs pointed at it.
#![allow(dead_code)]

use clap::Parser;
use secrecy::SecretString;
use secret_rotator::ids::{
    Account, Endpoint, SecretId, SecretRef, StoreKind, StoreParts, StoreRoute,
};
use secret_rotator::stores::ibm::iam::ApiKey;
use secret_rotator::stores::ibm::retry::RetryPolicy;
use secret_rotator::stores::ibm::{IbmSettings, IbmStore};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub const KEY: &str = "test-api-key-1";

/// An ibm-sm-sim with `KEY` and the given token lifetime, served by this runtime.
pub async fn sim(token_ttl: u64) -> ibm_sm_sim::Running {
    let ttl = token_ttl.to_string();
    let args = ibm_sm_sim::Args::parse_from([
        "ibm-sm-sim",
        "--api-key",
        KEY,
        "--token-ttl",
        &ttl,
        "--rng-seed",
        "17",
    ]);
    ibm_sm_sim::spawn(args).await.expect("start ibm-sm-sim")
}

pub fn settings(url: &str) -> IbmSettings {
    IbmSettings {
        iam_endpoint: Some(url.to_owned()),
        api_key_env: "IBM_STORE_TEST_UNUSED".into(),
    }
}

/// A store with `key`; retries as in production, or `fast` (short waits, for tests that
/// provoke failures).
pub fn store(url: &str, key: &str, fast: bool) -> IbmStore {
    let retry = if fast {
        RetryPolicy {
            base: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            max_retry_after: Duration::from_millis(200),
            ..RetryPolicy::default()
        }
    } else {
        RetryPolicy::default()
    };
    IbmStore::with_key(
        &settings(url),
        ApiKey::Value(SecretString::from(key.to_owned())),
        retry,
    )
}

/// A ref to secret `id` on the simulated instance.
pub fn secret_ref(url: &str, id: &str) -> SecretRef {
    SecretRef {
        id: SecretId::new(id.to_owned()),
        account: Account::default(),
        store: StoreRoute::new(StoreParts {
            kind: StoreKind::Ibm,
            region: None,
            endpoint: Some(Endpoint::new(url.to_owned())),
            role_arn: None,
        }),
    }
}

/// A `/_sim` call: (status, JSON body or Null). Blocking, short, local.
pub fn admin(
    url: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let host = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(host).expect("connect to ibm-sm-sim");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let json = out
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(serde_json::Value::Null);
    (status, json)
}

/// Queues `count` faults of `status` (with `Retry-After: retry_after`) for API calls.
pub fn faults(url: &str, status: u16, count: u32, retry_after: u64) {
    let (st, _) = admin(
        url,
        "POST",
        "/_sim/faults",
        Some(serde_json::json!({"status": status, "count": count, "retry_after": retry_after})),
    );
    assert_eq!(st, 200);
}

pub fn calls(url: &str) -> serde_json::Value {
    admin(url, "GET", "/_sim/calls", None).1
}

/// Queues one fault as `/_sim/faults` takes it (`operation`, `after`, ...).
pub fn fault(url: &str, spec: serde_json::Value) {
    let (st, _) = admin(url, "POST", "/_sim/faults", Some(spec));
    assert_eq!(st, 200);
}

/// Calls of one SDK operation so far.
pub fn ops(url: &str, op: &str) -> u64 {
    calls(url)["operations"][op].as_u64().unwrap_or(0)
}
