//! Deployment state change events published to SQS (moto), received with the SDK as
//! the daemon receives them. Needs moto (`scripts/install-tools`, or `MOTO_SERVER`).

mod common;

use std::time::{Duration, Instant};

use common::moto::Moto;
use common::{seed_file, wait_for, SimProcess};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(15);

/// `front` completes in 0.3 s real time at scale 100; `pdf` trips the breaker at 0.3 s
/// and its rollback completes at 0.6 s.
const SEED: &str = r#"{"clusters": [{"name": "prod", "services": [
    {"name": "front", "desiredCount": 2},
    {"name": "pdf", "behavior": "failing"}
]}]}"#;

struct Setup {
    moto: Moto,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    seed: String,
}

async fn setup(queue: &str) -> Setup {
    let moto = Moto::start();
    let sqs = moto.sqs();
    let queue_url = sqs
        .create_queue()
        .queue_name(queue)
        .send()
        .await
        .expect("CreateQueue")
        .queue_url()
        .expect("a queue URL")
        .to_owned();
    let seed = seed_file(SEED).display().to_string();
    Setup {
        moto,
        sqs,
        queue_url,
        seed,
    }
}

/// Forces a new deployment; returns its id and the service ARN DescribeServices shows.
async fn force(sim: &SimProcess, service: &str) -> (String, String) {
    let ecs = sim.client();
    let out = ecs
        .update_service()
        .cluster("prod")
        .service(service)
        .force_new_deployment(true)
        .send()
        .await
        .expect("UpdateService");
    let id = out.service().unwrap().deployments()[0]
        .id()
        .unwrap()
        .to_owned();
    let described = ecs
        .describe_services()
        .cluster("prod")
        .services(service)
        .send()
        .await
        .expect("DescribeServices");
    let arn = described.services()[0].service_arn().unwrap().to_owned();
    (id, arn)
}

/// Receives (and deletes) message bodies until `done` holds for all received so far.
async fn receive_until(s: &Setup, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + TIMEOUT;
    let mut got = Vec::new();
    while !done(&got) {
        assert!(
            Instant::now() < deadline,
            "timed out; received so far: {got:#?}"
        );
        got.extend(receive_once(s, 1).await);
    }
    got
}

async fn receive_once(s: &Setup, wait_secs: i32) -> Vec<Value> {
    let out = s
        .sqs
        .receive_message()
        .queue_url(&s.queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait_secs)
        .send()
        .await
        .expect("ReceiveMessage");
    let mut bodies = Vec::new();
    for m in out.messages() {
        bodies.push(serde_json::from_str(m.body().unwrap_or_default()).expect("JSON body"));
        s.sqs
            .delete_message()
            .queue_url(&s.queue_url)
            .receipt_handle(m.receipt_handle().unwrap_or_default())
            .send()
            .await
            .expect("DeleteMessage");
    }
    bodies
}

/// The publisher's counters once `ready` holds.
async fn stats_when(sim: &SimProcess, ready: impl Fn(&Value) -> bool) -> Value {
    wait_for("the event counters", TIMEOUT, || async {
        let stats = sim.get("/_sim/events").await;
        ready(&stats).then_some(stats)
    })
    .await
}

fn named<'a>(events: &'a [Value], id: &str, name: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["detail"]["deploymentId"] == id && e["detail"]["eventName"] == name)
        .collect()
}

fn has(events: &[Value], id: &str, name: &str) -> bool {
    !named(events, id, name).is_empty()
}

#[tokio::test]
async fn a_completed_rollout_sends_in_progress_then_completed() {
    let s = setup("events-completed").await;
    // The endpoint comes from AWS_ENDPOINT_URL, as for every other AWS client here.
    let sim = SimProcess::start_with_env(
        &[
            "--time-scale",
            "100",
            "--seed",
            &s.seed,
            "--events-queue-url",
            &s.queue_url,
        ],
        &[("AWS_ENDPOINT_URL", &s.moto.url)],
    );
    let (id, arn) = force(&sim, "front").await;
    let got = receive_until(&s, |got| {
        has(got, &id, "SERVICE_DEPLOYMENT_IN_PROGRESS")
            && has(got, &id, "SERVICE_DEPLOYMENT_COMPLETED")
    })
    .await;
    let started = named(&got, &id, "SERVICE_DEPLOYMENT_IN_PROGRESS")[0];
    let completed = named(&got, &id, "SERVICE_DEPLOYMENT_COMPLETED")[0];
    for e in [started, completed] {
        assert_eq!(e["version"], "0");
        assert_eq!(e["detail-type"], "ECS Deployment State Change");
        assert_eq!(e["source"], "aws.ecs");
        assert_eq!(e["account"], "123456789012");
        assert_eq!(e["region"], "us-east-1");
        assert_eq!(e["resources"], serde_json::json!([arn]));
        assert_eq!(e["detail"]["eventType"], "INFO");
        assert_eq!(e["id"].as_str().map(str::len), Some(36), "{e}");
        assert!(e["time"].as_str().unwrap().ends_with('Z'), "{e}");
    }
    assert_ne!(started["id"], completed["id"]);
    assert_eq!(
        started["detail"]["reason"],
        format!("ECS deployment {id} in progress.")
    );
    assert_eq!(
        completed["detail"]["reason"],
        format!("ECS deployment {id} completed.")
    );
    // RFC 3339 UTC with milliseconds: the same format sorts as text.
    let at = |e: &Value| e["detail"]["updatedAt"].as_str().unwrap().to_owned();
    assert!(
        at(started) < at(completed),
        "{} !< {}",
        at(started),
        at(completed)
    );
    assert_eq!(got.len(), 2, "nothing else: {got:#?}");
}

#[tokio::test]
async fn a_rolled_back_rollout_sends_failed() {
    let s = setup("events-failed").await;
    let sim = SimProcess::start(&[
        "--time-scale",
        "100",
        "--seed",
        &s.seed,
        "--events-queue-url",
        &s.queue_url,
    ]);
    let (id, arn) = force(&sim, "pdf").await;
    let got = receive_until(&s, |got| {
        has(got, &id, "SERVICE_DEPLOYMENT_FAILED")
            && got.iter().any(|e| {
                e["detail"]["eventName"] == "SERVICE_DEPLOYMENT_COMPLETED"
                    && e["detail"]["deploymentId"] != id
            })
    })
    .await;
    let failed = named(&got, &id, "SERVICE_DEPLOYMENT_FAILED")[0];
    assert_eq!(failed["detail"]["eventType"], "ERROR");
    assert_eq!(failed["resources"], serde_json::json!([arn]));
    assert!(!has(&got, &id, "SERVICE_DEPLOYMENT_COMPLETED"));
    // The rollback is a deployment of its own: it starts, citing the breaker, and completes.
    let rollback = got
        .iter()
        .find(|e| e["detail"]["eventName"] == "SERVICE_DEPLOYMENT_COMPLETED")
        .unwrap()["detail"]["deploymentId"]
        .as_str()
        .unwrap()
        .to_owned();
    let back = named(&got, &rollback, "SERVICE_DEPLOYMENT_IN_PROGRESS");
    assert_eq!(back.len(), 1, "{got:#?}");
    assert!(back[0]["detail"]["reason"]
        .as_str()
        .unwrap()
        .starts_with("ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/"));
}

#[tokio::test]
async fn lost_events_are_never_sent() {
    let s = setup("events-lost").await;
    let sim = SimProcess::start(&[
        "--time-scale",
        "100",
        "--seed",
        &s.seed,
        "--events-queue-url",
        &s.queue_url,
        "--events-loss",
        "1",
    ]);
    let (id, _) = force(&sim, "front").await;
    wait_for("the rollout", TIMEOUT, || async {
        let done = sim.completions("front").await;
        done.iter()
            .any(|c| c["deploymentId"] == id.as_str())
            .then_some(())
    })
    .await;
    // The publisher decides each fate shortly after the change, off the model's path.
    let stats = stats_when(&sim, |st| st["published"] == 2).await;
    assert_eq!(stats["lost"], 2, "{stats}");
    assert_eq!(stats["sent"], 0, "{stats}");
    assert!(receive_once(&s, 1).await.is_empty());
}

#[tokio::test]
async fn duplicated_events_are_sent_twice_set_through_the_admin_api() {
    let s = setup("events-duplicated").await;
    let sim = SimProcess::start(&["--time-scale", "100", "--seed", &s.seed]);
    let body = serde_json::json!({ "queueUrl": s.queue_url, "duplicate": 1.0 }).to_string();
    let config = sim.post("/_sim/events", &body).await;
    assert_eq!(config["duplicate"], 1.0);
    let (id, _) = force(&sim, "front").await;
    let got = receive_until(&s, |got| {
        named(got, &id, "SERVICE_DEPLOYMENT_IN_PROGRESS").len() == 2
            && named(got, &id, "SERVICE_DEPLOYMENT_COMPLETED").len() == 2
    })
    .await;
    // A duplicate is the same event delivered again: the same id.
    for name in [
        "SERVICE_DEPLOYMENT_IN_PROGRESS",
        "SERVICE_DEPLOYMENT_COMPLETED",
    ] {
        let pair = named(&got, &id, name);
        assert_eq!(pair[0]["id"], pair[1]["id"]);
    }
    assert!(receive_once(&s, 1).await.is_empty(), "no third copy");
    assert_eq!(got.len(), 4);
    // Counted once SQS has answered the sender, which may be after the receive.
    let stats = stats_when(&sim, |st| st["sent"] == 4).await;
    assert_eq!(stats["duplicated"], 2, "{stats}");

    let (status, answer) = sim.http("POST", "/_sim/events", &[], r#"{"loss":2}"#).await;
    assert_eq!(status, 400, "{answer}");
}

#[tokio::test]
async fn delayed_events_arrive_no_sooner_than_the_delay() {
    let s = setup("events-delayed").await;
    let sim = SimProcess::start(&[
        "--time-scale",
        "100",
        "--seed",
        &s.seed,
        "--events-queue-url",
        &s.queue_url,
        "--events-delay-ms",
        "400",
    ]);
    let before = Instant::now();
    let (id, _) = force(&sim, "front").await;
    let got = receive_until(&s, |got| has(got, &id, "SERVICE_DEPLOYMENT_IN_PROGRESS")).await;
    // The change happened after `before`, and its send waited 400 ms after the change.
    assert!(
        before.elapsed() >= Duration::from_millis(400),
        "{:?}",
        before.elapsed()
    );
    assert!(!got.is_empty());
}
