use super::*;
use rotator_core::config::Location;
use rotator_core::ids::GroupName;
use rotator_core::notify::{ConsumerReport, StageRef};
use std::sync::Mutex;

fn event(kind: EventKind, secret: &str) -> Event {
    Event {
        kind,
        at: "2026-03-01T10:00:00Z".parse().unwrap(),
        secret: SecretName::new(secret),
        secret_id: format!("prod/{secret}"),
        group: None,
        attempt: 1,
        outcome: None,
        step: None,
        error: None,
        consumers: Vec::new(),
        version: None,
        action: None,
    }
}

fn grouped(mut e: Event, group: &str) -> Event {
    e.group = Some(StageRef {
        group: GroupName::new(group),
        stage: 1,
        stages: 3,
        next: Some(SecretName::new("db-prod")),
    });
    e
}

fn notify_cfg(name: &str) -> NotifyConfig {
    NotifyConfig {
        name: name.into(),
        sink: NotifySink::Slack {
            url: "http://127.0.0.1:1/".into(),
        },
        events: EventKind::ALL.to_vec(),
        secrets: Vec::new(),
        groups: Vec::new(),
        timeout: Duration::from_secs(10),
        max_attempts: 5,
        retry_initial: Duration::from_secs(2),
        origin: Location::whole(std::path::Path::new("t.toml").into()),
    }
}

#[test]
fn filters_by_kind_secret_and_group() {
    let mut c = notify_cfg("f");
    assert!(c.matches(&event(EventKind::Started, "a")));
    c.events = vec![EventKind::Failed, EventKind::GroupHalted];
    assert!(!c.matches(&event(EventKind::Started, "a")));
    assert!(c.matches(&event(EventKind::Failed, "a")));
    c.secrets = vec![SecretName::new("b")];
    assert!(!c.matches(&event(EventKind::Failed, "a")));
    assert!(c.matches(&event(EventKind::Failed, "b")));
    c.secrets.clear();
    c.groups = vec![GroupName::new("db")];
    assert!(!c.matches(&event(EventKind::Failed, "a")), "no group");
    assert!(!c.matches(&grouped(event(EventKind::Failed, "a"), "other")));
    assert!(c.matches(&grouped(event(EventKind::Failed, "a"), "db")));
}

#[test]
fn signature_matches_an_independent_hmac() {
    // python3: hmac.new(b'test-key-0123', b'1700000000.{"kind":"failed"}', hashlib.sha256).hexdigest()
    assert_eq!(
        signature(b"test-key-0123", 1_700_000_000, br#"{"kind":"failed"}"#),
        "sha256=e58ae538eb90ba7b361d172e62ac284075bba15d08bff3f64f107338e3f25669"
    );
}

#[test]
fn slack_text_names_the_secret_the_outcome_and_the_unhealthy_consumers() {
    let mut e = grouped(event(EventKind::Failed, "db-staging"), "db");
    e.attempt = 2;
    e.outcome = Some("rolled_back");
    e.step = Some(rotator_core::rotation::Step::Wait);
    e.error = Some("consumers did not take the new value".into());
    e.action = Some("fix prod/pdf, then rotate again".into());
    e.consumers = vec![
        ConsumerReport {
            consumer: "prod/pdf".into(),
            verdict: "rolled_back",
            detail: "the deployment was rolled back".into(),
            events: vec![
                "(service pdf) deployment circuit breaker: rolling back".into(),
                "second".into(),
            ],
        },
        ConsumerReport {
            consumer: "prod/api".into(),
            verdict: "stable",
            detail: "stable".into(),
            events: Vec::new(),
        },
    ];
    let t = slack::text(&e);
    assert_eq!(
        t,
        "secret-rotator: FAILED: secret db-staging (prod/db-staging), group db stage 2 of 3 (next: db-prod), attempt 2\n\
Outcome: rolled_back at step wait\n\
Error: consumers did not take the new value\n\
Unhealthy consumers:\n\
- prod/pdf (rolled_back): the deployment was rolled back\n  ECS: (service pdf) deployment circuit breaker: rolling back\n\
Action: fix prod/pdf, then rotate again"
    );
    let b: serde_json::Value = serde_json::from_slice(&slack::body(&e)).unwrap();
    assert_eq!(b["text"], t);
}

#[test]
fn backoff_doubles_within_jitter_and_is_capped() {
    let i = Duration::from_secs(2);
    assert_eq!(backoff(i, 0, 1.0), Duration::from_secs(2));
    assert_eq!(backoff(i, 0, 0.0), Duration::from_secs(1));
    assert_eq!(backoff(i, 3, 1.0), Duration::from_secs(16));
    assert_eq!(backoff(i, 20, 1.0), NOTIFY_RETRY_CAP);
    assert_eq!(backoff(i, 40, 0.0), NOTIFY_RETRY_CAP / 2);
}

#[test]
fn event_ids_are_stable_and_distinct() {
    let a = event(EventKind::Started, "a");
    assert_eq!(body::event_id(&a), body::event_id(&a.clone()));
    assert_ne!(
        body::event_id(&a),
        body::event_id(&event(EventKind::Failed, "a"))
    );
    let mut b = a.clone();
    b.attempt = 2;
    assert_ne!(body::event_id(&a), body::event_id(&b));
    let j = body::event_json(&grouped(a, "db"));
    assert_eq!(j["schema"], body::SCHEMA);
    assert_eq!(j["group"]["stage"], 2);
    assert_eq!(j["at"], "2026-03-01T10:00:00.000Z");
}

/// Answers with the statuses in order (then 200), recording when each request came.
struct Script {
    statuses: Mutex<Vec<Result<u16, String>>>,
    seen: Mutex<Vec<(tokio::time::Instant, http::Request<Vec<u8>>)>>,
    /// Requests hang until this is notified (a stuck receiver), if set.
    hang: Option<Arc<tokio::sync::Notify>>,
}

impl Transport for Script {
    fn send(
        &self,
        req: http::Request<Vec<u8>>,
        _timeout: Duration,
    ) -> BoxFuture<'_, Result<u16, String>> {
        Box::pin(async move {
            if let Some(h) = &self.hang {
                h.notified().await;
            }
            self.seen
                .lock()
                .unwrap()
                .push((tokio::time::Instant::now(), req));
            let mut s = self.statuses.lock().unwrap();
            if s.is_empty() {
                Ok(200)
            } else {
                s.remove(0)
            }
        })
    }
}

fn script(statuses: Vec<Result<u16, String>>) -> Arc<Script> {
    Arc::new(Script {
        statuses: Mutex::new(statuses),
        seen: Mutex::default(),
        hang: None,
    })
}

fn worker(name: &str, t: Arc<Script>, format: Format) -> Worker {
    Worker {
        name: name.into(),
        kind: "webhook",
        format,
        transport: t,
        clock: Arc::new(crate::clock::SystemClock),
        timeout: Duration::from_secs(10),
        max_attempts: 4,
        retry_initial: Duration::from_secs(2),
    }
}

fn webhook(key: Option<&[u8]>) -> Format {
    Format::Webhook {
        url: "http://127.0.0.1:9/hook".into(),
        key: key.map(|k| Arc::new(Zeroizing::new(k.to_vec()))),
        headers: vec![("Authorization".into(), "Bearer x".into())],
    }
}

#[tokio::test(start_paused = true)]
async fn retries_back_off_on_5xx_429_and_errors_then_deliver() {
    let t = script(vec![Ok(503), Ok(429), Err("connection refused".into())]);
    let mut w = worker("unit-retry", t.clone(), webhook(Some(b"k")));
    let m = w.format.prepare(&event(EventKind::Failed, "a")).remove(0);
    let t0 = tokio::time::Instant::now();
    assert_eq!(w.deliver(&m).await, Delivery::Delivered);
    let seen = t.seen.lock().unwrap();
    assert_eq!(seen.len(), 4);
    let gaps: Vec<Duration> = seen
        .iter()
        .scan(t0, |prev, (at, _)| {
            let g = *at - *prev;
            *prev = *at;
            Some(g)
        })
        .collect();
    assert_eq!(gaps[0], Duration::ZERO);
    // 2s, 4s, 8s, each in its upper half (jitter).
    for (g, full) in gaps[1..].iter().zip([2u64, 4, 8]) {
        let full = Duration::from_secs(full);
        assert!(*g >= full / 2 && *g <= full, "{g:?} vs {full:?}");
    }
    // Every attempt carries the same delivery id and a signature over its own timestamp.
    let ids: Vec<_> = seen
        .iter()
        .map(|(_, r)| r.headers()["x-secret-rotator-delivery"].clone())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]));
    let (_, r) = &seen[3];
    let ts: i64 = r.headers()["x-secret-rotator-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        r.headers()["x-secret-rotator-signature"],
        signature(b"k", ts, r.body()).as_str()
    );
    assert_eq!(r.headers()["authorization"], "Bearer x");
    assert_eq!(r.headers()["x-secret-rotator-event"], "failed");
    let body = metrics::get().render();
    assert!(body.contains(
        "secret_rotator_notifications_total{kind=\"webhook\",result=\"delivered\",sink=\"unit-retry\"} 1"
    ));
    assert!(body.contains("secret_rotator_notification_retries_total{sink=\"unit-retry\"} 3"));
}

#[tokio::test(start_paused = true)]
async fn a_4xx_is_rejected_at_once_and_max_attempts_gives_up() {
    let t = script(vec![Ok(400)]);
    let mut w = worker("unit-reject", t.clone(), webhook(None));
    let m = w.format.prepare(&event(EventKind::Failed, "a")).remove(0);
    assert_eq!(w.deliver(&m).await, Delivery::Rejected(400));
    assert_eq!(t.seen.lock().unwrap().len(), 1);
    assert!(!t.seen.lock().unwrap()[0]
        .1
        .headers()
        .contains_key("x-secret-rotator-signature"));

    let t = script(vec![Ok(500); 10]);
    let mut w = worker("unit-fail", t.clone(), webhook(None));
    let m = w.format.prepare(&event(EventKind::Failed, "a")).remove(0);
    assert_eq!(w.deliver(&m).await, Delivery::Failed);
    assert_eq!(t.seen.lock().unwrap().len(), 4);
    let body = metrics::get().render();
    assert!(body.contains("secret_rotator_notifications_total{kind=\"webhook\",result=\"failed\",sink=\"unit-fail\"} 1"));
    assert!(body.contains("secret_rotator_notifications_total{kind=\"webhook\",result=\"rejected\",sink=\"unit-reject\"} 1"));
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_drops_without_blocking() {
    let hang = Arc::new(tokio::sync::Notify::new());
    let t = Arc::new(Script {
        statuses: Mutex::default(),
        seen: Mutex::default(),
        hang: Some(hang.clone()),
    });
    let mut cfg = notify_cfg("unit-full");
    cfg.secrets = vec![SecretName::new("a")];
    let sinks = Sinks::start(
        vec![(cfg, worker("unit-full", t.clone(), webhook(None)))],
        2,
    );
    // The worker takes the first and hangs on it; two wait in the queue; the rest drop.
    sinks.notify(event(EventKind::Started, "a"));
    tokio::task::yield_now().await;
    for _ in 0..5 {
        sinks.notify(event(EventKind::Failed, "a"));
    }
    // Filtered out: neither queued nor counted.
    sinks.notify(event(EventKind::Failed, "b"));
    let body = metrics::get().render();
    assert!(
        body.contains("secret_rotator_notifications_total{kind=\"slack\",result=\"dropped\",sink=\"unit-full\"} 3"),
        "{body}"
    );
    hang.notify_waiters();
}

#[test]
fn change_records_pair_open_and_close_by_change_key() {
    let mut f = Format::ChangeRecord {
        open_url: "http://127.0.0.1:9/open".into(),
        close_url: "http://127.0.0.1:9/close".into(),
        key: None,
        headers: Vec::new(),
        open: HashMap::new(),
    };
    let start = event(EventKind::Started, "a");
    let open = f.prepare(&start).remove(0);
    let mut done = event(EventKind::Succeeded, "a");
    done.at = "2026-03-01T10:05:00Z".parse().unwrap();
    let close = f.prepare(&done).remove(0);
    let o: serde_json::Value = serde_json::from_slice(&open.body).unwrap();
    let c: serde_json::Value = serde_json::from_slice(&close.body).unwrap();
    assert_eq!(open.url, "http://127.0.0.1:9/open");
    assert_eq!(close.url, "http://127.0.0.1:9/close");
    assert_eq!(o["action"], "open");
    assert_eq!(c["action"], "close");
    assert_eq!(o["change_key"], "a:2026-03-01T10:00:00.000Z");
    assert_eq!(o["change_key"], c["change_key"]);
    assert_eq!(c["paired"], true);
    assert_eq!(c["outcome"], "success");
    // A close without its open (a restart in between) says so.
    let c2: serde_json::Value = serde_json::from_slice(&f.prepare(&done).remove(0).body).unwrap();
    assert_eq!(c2["paired"], false);
    // Nothing for the other kinds.
    assert!(f.prepare(&event(EventKind::Overdue, "a")).is_empty());
}

#[test]
fn slack_text_cannot_ping_a_channel_or_make_a_link() {
    let mut e = event(EventKind::Failed, "db");
    // An error quoting what someone wrote into the secret.
    e.error = Some(
        "json_key \"password\": not found; keys: <!channel> <https://evil.example|re-login>, a&b"
            .into(),
    );
    let t = slack::text(&e);
    assert!(!t.contains('<') && !t.contains('>'), "{t}");
    assert!(
        t.contains("&lt;!channel&gt; &lt;https://evil.example|re-login&gt;, a&amp;b"),
        "{t}"
    );
}

/// A receiver that takes the delivery and answers with a large body (a ServiceNow
/// record, a proxy's page) has taken it: no second POST.
#[tokio::test]
async fn a_2xx_with_a_large_body_is_a_delivery() {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten().take(1) {
            let mut s = s;
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = "x".repeat(200 * 1024);
            let _ = write!(
                s,
                "HTTP/1.1 201 Created\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let req = http::Request::post(format!("http://127.0.0.1:{port}/open"))
        .body(b"{}".to_vec())
        .unwrap();
    let got = Transport::send(
        &crate::stores::http::HttpClient::new(),
        req,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(got, Ok(201));
}
