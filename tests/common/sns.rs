//! SNS in moto for the notification tests: a topic with an SQS queue subscribed, made
//! with raw Query API calls (no SNS SDK in the tree; moto does not check signatures),
//! and the notifications read back from the queue.

use super::sqs_client;
use serde_json::Value;
use std::time::{Duration, Instant};

/// A moto SNS topic with an SQS queue subscribed (raw message delivery off: the queue
/// gets SNS's JSON envelope). Returns (topic ARN, queue URL).
pub async fn sns_topic_with_queue(moto: &str, name: &str) -> (String, String) {
    let (status, body) = http_post_form(
        moto,
        &format!("Action=CreateTopic&Name={name}&Version=2010-03-31"),
    );
    assert_eq!(status, 200, "{body}");
    let arn = between(&body, "<TopicArn>", "</TopicArn>");
    let sqs = sqs_client(moto);
    let q = sqs
        .create_queue()
        .queue_name(format!("{name}-q"))
        .send()
        .await
        .unwrap();
    let url = q.queue_url().unwrap().to_owned();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let qarn =
        attrs.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone();
    let (status, body) = http_post_form(
        moto,
        &format!(
            "Action=Subscribe&TopicArn={}&Protocol=sqs&Endpoint={}&Version=2010-03-31",
            enc(&arn),
            enc(&qarn)
        ),
    );
    assert_eq!(status, 200, "{body}");
    (arn, url)
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn between(s: &str, a: &str, b: &str) -> String {
    s.split(a)
        .nth(1)
        .and_then(|r| r.split(b).next())
        .expect("in the reply")
        .to_owned()
}

fn http_post_form(base: &str, form: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let host = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(
        s,
        "POST / HTTP/1.0\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\nAuthorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/sns/aws4_request, SignedHeaders=host, Signature=x\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, out)
}

/// Every SNS notification the queue holds (their envelopes), waiting for `n`.
pub async fn sns_messages(moto: &str, queue: &str, n: usize) -> Vec<Value> {
    let sqs = sqs_client(moto);
    let mut out = Vec::new();
    let start = Instant::now();
    while out.len() < n {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "only {} SNS messages: {out:?}",
            out.len()
        );
        let r = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in r.messages() {
            out.push(serde_json::from_str(m.body().unwrap()).unwrap());
            sqs.delete_message()
                .queue_url(queue)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    out
}
