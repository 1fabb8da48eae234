//! A paged fake Secrets Manager for the start-up scenario: AWS JSON 1.1 over HTTP in this
//! process, holding `n` secrets that are computed when asked for (no stored bodies).
//!
//! `ListSecrets` pages (NextToken, MaxResults up to 100) each take the configured latency;
//! `DescribeSecret` answers at once. Every secret carries our `last-rotated` tag: a day
//! old, except the due ones (the first secret of the first page and the first few of the
//! last page), whose tag is years old. The first call that names a due secret is the
//! start of its rotation (the rotation's first call is DescribeSecret; due times come from
//! the listing alone, since every secret is tagged), and is recorded with its time. Calls
//! a rotation makes after that are answered with an error: the scenario measures start-up,
//! not rotations.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const REGION_ACCOUNT: &str = "us-east-1:123456789012";
const PAGE_MAX: usize = 100;
/// How many secrets at the start of the last page are due.
const DUE_ON_LAST_PAGE: usize = 3;

/// What the fake saw, as instants of this process.
#[derive(Default)]
pub struct Seen {
    pub first_page: Option<Instant>,
    pub last_page: Option<Instant>,
    pub pages: u64,
    /// The first call naming a due secret: when, and which operation.
    pub first_due_call: Option<(Instant, String)>,
    pub calls: BTreeMap<String, u64>,
}

struct Shared {
    n: usize,
    due: Vec<usize>,
    page_latency: Duration,
    /// The tag of the secrets that are not due (a day before the fake started).
    fresh_tag: String,
    changed: f64,
    seen: Mutex<Seen>,
}

pub struct FakeSm {
    pub url: String,
    shared: Arc<Shared>,
}

impl FakeSm {
    /// Serves `n` secrets `startup/<i>` on a free local port; each ListSecrets page takes
    /// `page_latency`.
    pub async fn start(n: usize, page_latency: Duration) -> Self {
        let now = chrono::Utc::now();
        let shared = Arc::new(Shared {
            n,
            due: due_indices(n),
            page_latency,
            fresh_tag: (now - chrono::Duration::days(1))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            changed: (now - chrono::Duration::days(1)).timestamp() as f64,
            seen: Mutex::default(),
        });
        let app = Router::new()
            .route("/", post(handle))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Secrets Manager");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, shared }
    }

    /// The indices of the due secrets.
    pub fn due(&self) -> &[usize] {
        &self.shared.due
    }

    pub fn seen<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        f(&lock(&self.shared.seen))
    }
}

fn lock(m: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn due_indices(n: usize) -> Vec<usize> {
    let last_page = n.saturating_sub(1) / PAGE_MAX * PAGE_MAX;
    let mut due: Vec<usize> = std::iter::once(0)
        .chain(last_page..(last_page + DUE_ON_LAST_PAGE).min(n))
        .filter(|i| *i < n)
        .collect();
    due.dedup();
    due
}

pub fn name(i: usize) -> String {
    format!("startup/{i:06}")
}

fn arn(i: usize) -> String {
    format!(
        "arn:aws:secretsmanager:{REGION_ACCOUNT}:secret:{}-AbCdEf",
        name(i)
    )
}

/// The secret a SecretId (name or ARN) names.
fn index_of(n: usize, id: &str) -> Option<usize> {
    let name = match id.strip_prefix("arn:aws:secretsmanager:") {
        Some(rest) => rest
            .strip_prefix(REGION_ACCOUNT)?
            .strip_prefix(":secret:")?
            .strip_suffix("-AbCdEf")?,
        None => id,
    };
    let i: usize = name.strip_prefix("startup/")?.parse().ok()?;
    (i < n && self::name(i) == name).then_some(i)
}

impl Shared {
    fn tag(&self, i: usize) -> &str {
        if self.due.contains(&i) {
            "2020-01-01T00:00:00Z"
        } else {
            &self.fresh_tag
        }
    }

    /// The fields ListSecrets and DescribeSecret share; `stages` is the key of the
    /// version map (they name it differently).
    fn entry(&self, i: usize, stages: &str) -> Value {
        json!({
            "ARN": arn(i),
            "Name": name(i),
            "LastChangedDate": self.changed,
            "RotationEnabled": false,
            "Tags": [{"Key": "secret-rotator:last-rotated", "Value": self.tag(i)}],
            stages: {format!("00000000-0000-4000-8000-{i:012}"): ["AWSCURRENT"]},
        })
    }
}

async fn handle(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let op = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("secretsmanager."))
        .unwrap_or("")
        .to_owned();
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let secret = req["SecretId"].as_str().and_then(|id| index_of(s.n, id));
    {
        let mut seen = lock(&s.seen);
        *seen.calls.entry(op.clone()).or_default() += 1;
        if secret.is_some_and(|i| s.due.contains(&i)) && seen.first_due_call.is_none() {
            seen.first_due_call = Some((Instant::now(), op.clone()));
        }
    }
    match op.as_str() {
        "ListSecrets" => {
            let start: usize = req["NextToken"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            let max = req["MaxResults"]
                .as_u64()
                .map_or(PAGE_MAX, |m| (m as usize).clamp(1, PAGE_MAX));
            let end = (start + max).min(s.n);
            tokio::time::sleep(s.page_latency).await;
            let list: Vec<Value> = (start..end)
                .map(|i| s.entry(i, "SecretVersionsToStages"))
                .collect();
            {
                let mut seen = lock(&s.seen);
                let now = Instant::now();
                seen.pages += 1;
                seen.first_page.get_or_insert(now);
                if end >= s.n {
                    seen.last_page = Some(now);
                }
            }
            let mut out = json!({ "SecretList": list });
            if end < s.n {
                out["NextToken"] = Value::from(end.to_string());
            }
            answer(out)
        }
        "DescribeSecret" => match secret {
            Some(i) => answer(s.entry(i, "VersionIdsToStages")),
            None => error("ResourceNotFoundException", "no such secret"),
        },
        _ => error(
            "InvalidRequestException",
            "the benchmark's fake Secrets Manager does not support this operation",
        ),
    }
}

fn answer(v: Value) -> Response {
    (
        [("content-type", "application/x-amz-json-1.1")],
        v.to_string(),
    )
        .into_response()
}

fn error(code: &str, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amzn-errortype", code),
        ],
        json!({"__type": code, "message": message}).to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_secrets_are_the_first_and_the_start_of_the_last_page() {
        assert_eq!(due_indices(100_000), vec![0, 99_900, 99_901, 99_902]);
        assert_eq!(due_indices(250), vec![0, 200, 201, 202]);
        assert_eq!(due_indices(10), vec![0, 1, 2]);
        assert_eq!(due_indices(1), vec![0]);
    }

    #[test]
    fn a_secret_is_found_by_name_or_arn() {
        assert_eq!(index_of(10, &name(7)), Some(7));
        assert_eq!(index_of(10, &arn(7)), Some(7));
        assert_eq!(index_of(10, &name(10)), None);
        assert_eq!(index_of(10, "startup/7"), None);
        assert_eq!(index_of(10, "other"), None);
    }
}
