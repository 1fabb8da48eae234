//! Publishes ECS deployment state change events to an SQS queue, as an EventBridge rule
//! targeting that queue delivers them from real ECS; with delivery delay, loss and
//! duplication drawn from the simulator's seed, so a run replays.
//!
//! The rollout model only pushes changes into an unbounded channel (never blocks, under
//! the simulation's lock); one task decides each event's fate in channel order and
//! spawns its sends, so a slow or dead queue never slows a rollout.

mod config;
mod envelope;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::config::{Credentials, Region};
use aws_sdk_sqs::error::DisplayErrorContext;
use serde::Serialize;
use tokio::sync::mpsc;

pub use config::{EventConfig, EventUpdate, MAX_DELAY_MS};
pub use envelope::Change;

use crate::names;
use crate::rng::Rng;

/// What the simulation holds: where to push changes.
#[derive(Debug, Clone)]
pub struct EventSink(mpsc::UnboundedSender<Change>);

impl EventSink {
    pub fn push(&self, change: Change) {
        // Only fails once the publisher is gone, at shutdown: nothing left to tell.
        let _ = self.0.send(change);
    }
}

/// Counters for `GET /_sim/events`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Changes seen while a queue was set.
    pub published: u64,
    pub lost: u64,
    pub duplicated: u64,
    /// Messages SQS accepted (a duplicate counts twice).
    pub sent: u64,
    pub failed: u64,
    pub last_error: Option<String>,
}

#[derive(Debug)]
struct State {
    config: EventConfig,
    rng: Rng,
    stats: Stats,
    /// The client of the endpoint last used, rebuilt when the endpoint changes.
    client: Option<(String, aws_sdk_sqs::Client)>,
}

/// The publisher's shared state, for the admin endpoints.
#[derive(Debug, Clone)]
pub struct Events(Arc<Mutex<State>>);

/// One event's fate: the copies to send (0 lost, 2 duplicated), where, and when.
struct Delivery {
    copies: u32,
    client: aws_sdk_sqs::Client,
    queue_url: String,
    body: String,
    wait: Duration,
}

impl Events {
    /// Starts the publisher task; needs a tokio runtime.
    pub fn start(config: EventConfig, seed: u64) -> Result<(Self, EventSink), String> {
        let config = EventConfig::default().updated(EventUpdate {
            queue_url: Some(config.queue_url),
            endpoint_url: Some(config.endpoint_url),
            delay_ms: Some(config.delay_ms),
            loss: Some(config.loss),
            duplicate: Some(config.duplicate),
        })?;
        let events = Self(Arc::new(Mutex::new(State {
            config,
            rng: Rng::new(seed),
            stats: Stats::default(),
            client: None,
        })));
        let (tx, mut rx) = mpsc::unbounded_channel::<Change>();
        let publisher = events.clone();
        tokio::spawn(async move {
            while let Some(change) = rx.recv().await {
                if let Some(d) = publisher.plan(&change) {
                    for _ in 0..d.copies {
                        let (this, client) = (publisher.clone(), d.client.clone());
                        let (queue_url, body) = (d.queue_url.clone(), d.body.clone());
                        tokio::spawn(this.send(client, queue_url, body, d.wait));
                    }
                }
            }
        });
        Ok((events, EventSink(tx)))
    }

    pub fn config(&self) -> EventConfig {
        crate::lock(&self.0).config.clone()
    }

    pub fn stats(&self) -> Stats {
        crate::lock(&self.0).stats.clone()
    }

    pub fn update(&self, update: EventUpdate) -> Result<EventConfig, String> {
        let mut state = crate::lock(&self.0);
        state.config = state.config.updated(update)?;
        Ok(state.config.clone())
    }

    /// Decides one change's fate; `None` when no queue is set or it is lost.
    fn plan(&self, change: &Change) -> Option<Delivery> {
        let mut guard = crate::lock(&self.0);
        let state = &mut *guard;
        let queue_url = state.config.queue_url.clone()?;
        // Drawn in a fixed order whatever the outcome, so one event's fate never shifts
        // the next one's.
        let id = state.rng.uuid();
        let copies = copies(&mut state.rng, state.config.loss, state.config.duplicate);
        state.stats.published += 1;
        match copies {
            0 => state.stats.lost += 1,
            2 => state.stats.duplicated += 1,
            _ => {}
        }
        if copies == 0 {
            return None;
        }
        let endpoint = state
            .config
            .endpoint(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))?;
        let client = match &state.client {
            Some((e, c)) if *e == endpoint => c.clone(),
            _ => {
                let c = sqs_client(&endpoint);
                state.client = Some((endpoint, c.clone()));
                c
            }
        };
        // The delay counts from the change's own instant, not from when the ticker
        // noticed it, so a delay of 0 is as prompt as the model can be.
        let since = now_epoch() - change.wall_time;
        let delay = state.config.delay_ms as f64 / 1000.0;
        let wait =
            Duration::try_from_secs_f64((delay - since).clamp(0.0, delay)).unwrap_or_default();
        Some(Delivery {
            copies,
            client,
            queue_url,
            body: envelope::body(&id, change),
            wait,
        })
    }

    async fn send(
        self,
        client: aws_sdk_sqs::Client,
        queue_url: String,
        body: String,
        wait: Duration,
    ) {
        tokio::time::sleep(wait).await;
        let result = client
            .send_message()
            .queue_url(&queue_url)
            .message_body(body)
            .send()
            .await;
        let mut state = crate::lock(&self.0);
        match result {
            Ok(_) => state.stats.sent += 1,
            Err(e) => {
                let message = format!(
                    "deployment event not sent to {queue_url}: {}",
                    DisplayErrorContext(&e)
                );
                eprintln!("ecs-sim: {message}");
                state.stats.failed += 1;
                state.stats.last_error = Some(message);
            }
        }
    }
}

/// How many copies of one event are sent: 0 (lost), 1, or 2 (duplicated).
fn copies(rng: &mut Rng, loss: f64, duplicate: f64) -> u32 {
    let lost = rng.chance(loss);
    let doubled = rng.chance(duplicate);
    match (lost, doubled) {
        (true, _) => 0,
        (false, true) => 2,
        (false, false) => 1,
    }
}

fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// A client for a local (or real) SQS endpoint. Credentials and region come from the
/// usual variables when set; moto accepts anything, so test defaults are fine.
fn sqs_client(endpoint: &str) -> aws_sdk_sqs::Client {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let credentials = Credentials::new(
        env("AWS_ACCESS_KEY_ID").unwrap_or_else(|| "testing".into()),
        env("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|| "testing".into()),
        env("AWS_SESSION_TOKEN"),
        None,
        "ecs-sim",
    );
    let region = env("AWS_REGION")
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| names::REGION.to_owned());
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version_latest()
        .endpoint_url(endpoint)
        .region(Region::new(region))
        .credentials_provider(credentials)
        // A hung queue must not pile up sends forever.
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(10))
                .build(),
        )
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_and_duplication_are_probabilities() {
        let mut rng = Rng::new(3);
        for _ in 0..100 {
            assert_eq!(copies(&mut rng, 0.0, 0.0), 1);
            assert_eq!(copies(&mut rng, 1.0, 0.0), 0);
            assert_eq!(copies(&mut rng, 0.0, 1.0), 2);
            assert_eq!(
                copies(&mut rng, 1.0, 1.0),
                0,
                "a lost event is not duplicated"
            );
        }
        let n: u32 = (0..10_000).map(|_| copies(&mut rng, 0.25, 0.0)).sum();
        assert!((7_000..8_000).contains(&n), "{n}");
    }

    #[test]
    fn the_same_seed_decides_the_same_fates() {
        let fates = |seed| {
            let mut rng = Rng::new(seed);
            (0..50)
                .map(|_| copies(&mut rng, 0.3, 0.3))
                .collect::<Vec<_>>()
        };
        assert_eq!(fates(9), fates(9));
        assert_ne!(fates(9), fates(10));
    }
}
