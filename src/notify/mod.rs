//! `[[notify]]` sinks: the daemon's [`Notifier`]. `notify` only filters and queues (a
//! bounded queue per sink; full: the event is dropped and counted, never waited for);
//! one task per sink delivers its queue in order, retrying connection errors, timeouts,
//! 429 and 5xx with doubling, jittered delays. A slow or dead sink never delays a
//! rotation. See docs/notifications.md for the bodies and the signature.
//!
//! Nothing here logs or sends a secret value, the HMAC key, a header value or a sink URL
//! (a Slack webhook URL's path is its credential): logs name the sink.

pub mod body;
pub mod slack;
pub mod sns;

use crate::clock::Clock;
use crate::metrics;
use crate::stores::alibaba::signing::hex;
use crate::stores::http::HttpClient;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use rotator_core::config::{Config, NotifyConfig, NotifySink, NOTIFY_RETRY_CAP};
use rotator_core::ids::{Account, Region, SecretName};
use rotator_core::notify::{Event, EventKind, Notifier};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use zeroize::Zeroizing;

/// Events waiting per sink; more are dropped (counted `dropped`).
pub const QUEUE_CAPACITY: usize = 1000;
pub const USER_AGENT: &str = concat!("secret-rotator/", env!("CARGO_PKG_VERSION"));
/// A receiver's reply is read up to this size (then the connection is dropped).
const MAX_REPLY: usize = 64 * 1024;

/// The `result` label values of `notifications_total`.
pub const RESULTS: [&str; 4] = ["delivered", "failed", "rejected", "dropped"];

/// Sends one request; the reply's status, or why there was none. Tests put a fake here.
pub trait Transport: Send + Sync + 'static {
    fn send(
        &self,
        req: http::Request<Vec<u8>>,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<u16, String>>;
}

impl Transport for HttpClient {
    fn send(
        &self,
        req: http::Request<Vec<u8>>,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<u16, String>> {
        Box::pin(async move {
            match HttpClient::send(self, req, timeout, MAX_REPLY).await {
                Ok(r) => Ok(r.status),
                // Only the status matters: a receiver that answers 2xx with a large body
                // (a ServiceNow record, a proxy's page) took the delivery.
                Err(crate::stores::http::HttpError::TooLarge(_, status)) => Ok(status),
                Err(e) => Err(e.to_string()),
            }
        })
    }
}

/// An HMAC key, wiped on drop.
pub type Key = Arc<Zeroizing<Vec<u8>>>;

/// `sha256=<hex HMAC-SHA256(key, "<timestamp>.<body>")>`.
pub fn signature(key: &[u8], timestamp: i64, body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let Ok(mut mac) = <hmac::Hmac<sha2_v011::Sha256> as KeyInit>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex(&mac.finalize().into_bytes()))
}

/// One request to make (the same on every attempt, except the signature's time).
#[derive(Clone, Debug)]
pub struct Message {
    pub url: String,
    pub body: Vec<u8>,
    /// The event kind (header, logs) and the delivery id (header, logs).
    pub event: &'static str,
    pub id: String,
    /// `open`/`close` for change records.
    pub what: &'static str,
}

/// A sink's format: how an event becomes requests.
pub enum Format {
    Webhook {
        url: String,
        key: Option<Key>,
        headers: Vec<(String, String)>,
    },
    Slack {
        url: String,
    },
    Sns(sns::Topic),
    ChangeRecord {
        open_url: String,
        close_url: String,
        key: Option<Key>,
        headers: Vec<(String, String)>,
        /// The change key of each secret's open record (its rotation attempt running).
        open: HashMap<SecretName, String>,
    },
}

/// `<secret>:<started at, RFC 3339 UTC, milliseconds>`: the same on the open and the
/// close of one rotation attempt.
pub fn change_key(secret: &SecretName, started: DateTime<Utc>) -> String {
    format!("{secret}:{}", body::rfc3339(started))
}

impl Format {
    /// The requests for `ev` (none: this sink has nothing to say about it).
    pub fn prepare(&mut self, ev: &Event) -> Vec<Message> {
        let id = body::event_id(ev);
        let msg = |url: &str, body: Vec<u8>, what| Message {
            url: url.to_owned(),
            body,
            event: ev.kind.label(),
            id: id.clone(),
            what,
        };
        match self {
            Format::Webhook { url, .. } => {
                let b = serde_json::to_vec(&body::event_json(ev)).unwrap_or_default();
                vec![msg(url, b, "event")]
            }
            Format::Slack { url } => vec![msg(url, slack::body(ev), "event")],
            Format::Sns(t) => {
                let message = serde_json::to_string(&body::event_json(ev)).unwrap_or_default();
                let subj = sns::subject(&format!(
                    "secret-rotator: {} {}",
                    ev.kind.label(),
                    ev.secret
                ));
                let form =
                    sns::publish_form(&t.arn, &subj, &message, ev.kind.label(), ev.secret.as_str());
                vec![msg(&t.endpoint, form.into_bytes(), "publish")]
            }
            Format::ChangeRecord {
                open_url,
                close_url,
                open,
                ..
            } => {
                let (action, url, key, paired) = match ev.kind {
                    EventKind::Started => {
                        let key = change_key(&ev.secret, ev.at);
                        open.insert(ev.secret.clone(), key.clone());
                        ("open", open_url.as_str(), key, true)
                    }
                    EventKind::Succeeded | EventKind::Failed => match open.remove(&ev.secret) {
                        Some(k) => ("close", close_url.as_str(), k, true),
                        // Opened before a restart (or its open was filtered out): the
                        // receiver closes the secret's open record by `secret.name`.
                        None => (
                            "close",
                            close_url.as_str(),
                            change_key(&ev.secret, ev.at),
                            false,
                        ),
                    },
                    _ => return Vec::new(),
                };
                let mut summary = format!("Rotate secret {}", ev.secret);
                if let Some(g) = &ev.group {
                    summary.push_str(&format!(
                        " (group {}, stage {} of {})",
                        g.group,
                        g.stage + 1,
                        g.stages
                    ));
                }
                let b = json!({
                    "schema": "secret-rotator.change/v1",
                    "action": action,
                    "change_key": key,
                    "paired": paired,
                    "summary": summary,
                    "secret": { "name": ev.secret.as_str(), "id": ev.secret_id },
                    "outcome": ev.outcome.or((ev.kind == EventKind::Succeeded).then_some("success")),
                    "event": body::event_json(ev),
                });
                vec![msg(url, serde_json::to_vec(&b).unwrap_or_default(), action)]
            }
        }
    }

    /// The request for `m` at `now` (signed now: receivers reject old timestamps).
    pub async fn request(
        &self,
        m: &Message,
        now: DateTime<Utc>,
    ) -> Result<http::Request<Vec<u8>>, String> {
        let (key, extra): (Option<&Key>, &[(String, String)]) = match self {
            Format::Sns(t) => return t.request(&m.body, now.into()).await,
            Format::Webhook { key, headers, .. } | Format::ChangeRecord { key, headers, .. } => {
                (key.as_ref(), headers)
            }
            Format::Slack { .. } => (None, &[]),
        };
        let mut b = http::Request::builder()
            .method("POST")
            .uri(m.url.as_str())
            .header("content-type", "application/json")
            .header("user-agent", USER_AGENT);
        if !matches!(self, Format::Slack { .. }) {
            b = b
                .header("x-secret-rotator-event", m.event)
                .header("x-secret-rotator-delivery", m.id.as_str());
        }
        if let Some(key) = key {
            let ts = now.timestamp();
            b = b
                .header("x-secret-rotator-timestamp", ts.to_string())
                .header("x-secret-rotator-signature", signature(key, ts, &m.body));
        }
        for (k, v) in extra {
            b = b.header(k.as_str(), v.as_str());
        }
        // The error names neither the URL nor a header value.
        b.body(m.body.clone())
            .map_err(|_| "invalid request (URL or header)".to_owned())
    }
}

/// Whether a reply status is worth another attempt.
pub fn retryable(status: u16) -> bool {
    status == 429 || status >= 500
}

/// The delay before retry `n` (0-based): `initial * 2^n`, at most [`NOTIFY_RETRY_CAP`],
/// then a random point in its upper half (`r` in 0..1).
pub fn backoff(initial: Duration, n: u32, r: f64) -> Duration {
    let full = initial
        .checked_mul(1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX))
        .unwrap_or(NOTIFY_RETRY_CAP)
        .min(NOTIFY_RETRY_CAP);
    full.mul_f64(0.5 + 0.5 * r.clamp(0.0, 1.0))
}

fn random_unit() -> f64 {
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX)
}

/// One sink's delivery task.
pub struct Worker {
    pub name: String,
    pub kind: &'static str,
    pub format: Format,
    pub transport: Arc<dyn Transport>,
    pub clock: Arc<dyn Clock>,
    pub timeout: Duration,
    pub max_attempts: u32,
    pub retry_initial: Duration,
}

/// How one message ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    Rejected(u16),
    Failed,
}

impl Worker {
    fn count(&self, result: &str) {
        metrics::get()
            .notifications
            .with_label_values(&[&self.name, self.kind, result])
            .inc();
    }

    /// Delivers the queue in order until every sender is gone.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Event>) {
        while let Some(ev) = rx.recv().await {
            for m in self.format.prepare(&ev) {
                self.deliver(&m).await;
            }
        }
    }

    /// Delivers `m`, retrying; counts and logs the end.
    pub async fn deliver(&self, m: &Message) -> Delivery {
        let m_ = metrics::get();
        let mut last = String::new();
        for attempt in 1..=self.max_attempts {
            let sent = match self.format.request(m, self.clock.now()).await {
                Ok(req) => self.transport.send(req, self.timeout).await,
                Err(e) => Err(e),
            };
            match sent {
                Ok(s) if (200..300).contains(&s) => {
                    self.count("delivered");
                    m_.notification_last_success
                        .with_label_values(&[&self.name])
                        .set(self.clock.now().timestamp() as f64);
                    tracing::debug!(sink = %self.name, event = m.event, delivery = %m.id, attempt, "notification delivered");
                    return Delivery::Delivered;
                }
                Ok(s) if !retryable(s) => {
                    self.count("rejected");
                    tracing::warn!(sink = %self.name, kind = self.kind, event = m.event, delivery = %m.id, status = s, "notification rejected by the receiver (not retried)");
                    return Delivery::Rejected(s);
                }
                Ok(s) => last = format!("HTTP status {s}"),
                Err(e) => last = e,
            }
            if attempt < self.max_attempts {
                let delay = backoff(self.retry_initial, attempt - 1, random_unit());
                m_.notification_retries
                    .with_label_values(&[&self.name])
                    .inc();
                tracing::info!(sink = %self.name, event = m.event, delivery = %m.id, attempt, error = %last, retry_in = ?delay, "notification not delivered; retrying");
                tokio::time::sleep(delay).await;
            }
        }
        self.count("failed");
        tracing::warn!(sink = %self.name, kind = self.kind, event = m.event, delivery = %m.id, attempts = self.max_attempts, error = %last, "notification given up");
        Delivery::Failed
    }
}

struct Handle {
    cfg: NotifyConfig,
    tx: mpsc::Sender<Event>,
}

/// The daemon's [`Notifier`]: every `[[notify]]` sink, each behind its own queue.
pub struct Sinks {
    sinks: Vec<Handle>,
}

impl Notifier for Sinks {
    fn notify(&self, event: Event) {
        for h in &self.sinks {
            if !h.cfg.matches(&event) {
                continue;
            }
            if h.tx.try_send(event.clone()).is_err() {
                metrics::get()
                    .notifications
                    .with_label_values(&[&h.cfg.name, h.cfg.sink.kind(), "dropped"])
                    .inc();
                tracing::warn!(sink = %h.cfg.name, event = event.kind.label(), secret = %event.secret, "notification dropped: the sink's queue is full");
            }
        }
    }
}

impl Sinks {
    /// A sink per entry (each with its own task, started here), queues of `capacity`.
    pub fn start(workers: Vec<(NotifyConfig, Worker)>, capacity: usize) -> Self {
        let sinks = workers
            .into_iter()
            .map(|(cfg, w)| {
                let (tx, rx) = mpsc::channel(capacity);
                tokio::spawn(w.run(rx));
                Handle { cfg, tx }
            })
            .collect();
        Self { sinks }
    }

    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }
}

/// The HMAC key in environment variable `var` (missing or empty: an error naming it).
fn read_key(sink: &str, var: &str) -> Result<Key, String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Ok(Arc::new(Zeroizing::new(v.into_bytes()))),
        _ => Err(format!(
            "notify[{sink}].secret_env: the environment variable {var} is not set or empty (it must hold the HMAC key)"
        )),
    }
}

/// The sinks of `cfg.notify`, their tasks started; an error names what is missing (an
/// HMAC key's environment variable).
pub async fn start(cfg: &Config, clock: Arc<dyn Clock>) -> Result<Sinks, String> {
    if cfg.notify.is_empty() {
        // No HTTP client (its root certificates) for nothing.
        return Ok(Sinks { sinks: Vec::new() });
    }
    let http: Arc<dyn Transport> = Arc::new(HttpClient::new());
    let mut aws = None;
    let mut workers = Vec::new();
    for n in &cfg.notify {
        let format = match &n.sink {
            NotifySink::Webhook {
                url,
                secret_env,
                headers,
            } => Format::Webhook {
                url: url.clone(),
                key: secret_env
                    .as_deref()
                    .map(|v| read_key(&n.name, v))
                    .transpose()?,
                headers: headers.0.clone(),
            },
            NotifySink::Slack { url } => Format::Slack { url: url.clone() },
            NotifySink::ChangeRecord {
                open_url,
                close_url,
                secret_env,
                headers,
            } => Format::ChangeRecord {
                open_url: open_url.clone(),
                close_url: close_url.clone(),
                key: secret_env
                    .as_deref()
                    .map(|v| read_key(&n.name, v))
                    .transpose()?,
                headers: headers.0.clone(),
                open: HashMap::new(),
            },
            NotifySink::Sns {
                topic_arn,
                region,
                role_arn,
                endpoint,
            } => {
                if aws.is_none() {
                    aws = Some(crate::aws::AwsContext::load(&cfg.aws).await);
                }
                let ctx = aws.as_ref().expect("loaded above");
                let account = Account::new(Some(Region::new(region.as_str())), role_arn.clone());
                let sdk = ctx.sdk_config(&account).await;
                Format::Sns(sns::Topic {
                    arn: topic_arn.clone(),
                    region: region.as_str().to_owned(),
                    endpoint: sns::endpoint(endpoint.as_deref(), region.as_str(), topic_arn),
                    credentials: sdk.credentials_provider(),
                    cached: Default::default(),
                })
            }
        };
        let kind = n.sink.kind();
        let m = metrics::get();
        for r in RESULTS {
            m.notifications.with_label_values(&[&n.name, kind, r]);
        }
        m.notification_retries.with_label_values(&[&n.name]);
        workers.push((
            n.clone(),
            Worker {
                name: n.name.clone(),
                kind,
                format,
                transport: http.clone(),
                clock: clock.clone(),
                timeout: n.timeout,
                max_attempts: n.max_attempts,
                retry_initial: n.retry_initial,
            },
        ));
    }
    Ok(Sinks::start(workers, QUEUE_CAPACITY))
}

#[cfg(test)]
mod tests;
