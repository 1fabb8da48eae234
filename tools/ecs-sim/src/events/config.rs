//! What the event publisher does: where it sends, and the delivery faults it injects.

use serde::{Deserialize, Deserializer, Serialize};

/// Keeps a typo from holding every event back for hours.
pub const MAX_DELAY_MS: u64 = 600_000;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventConfig {
    /// No queue, no events.
    pub queue_url: Option<String>,
    /// The SQS endpoint; else `AWS_ENDPOINT_URL_SQS`, `AWS_ENDPOINT_URL`, then the queue
    /// URL's own origin (what moto and real SQS queue URLs both are).
    pub endpoint_url: Option<String>,
    /// Real milliseconds between the state change and the send.
    pub delay_ms: u64,
    /// Probability (0..1) that an event is never sent.
    pub loss: f64,
    /// Probability (0..1) that an event is sent twice.
    pub duplicate: f64,
}

/// A partial change, as `POST /_sim/events` takes it; `null` clears a URL.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventUpdate {
    #[serde(default, deserialize_with = "present")]
    pub queue_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub endpoint_url: Option<Option<String>>,
    pub delay_ms: Option<u64>,
    pub loss: Option<f64>,
    pub duplicate: Option<f64>,
}

/// Tells a field given as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

impl EventConfig {
    /// The configuration with `update` applied, or what is wrong with it (nothing
    /// applied).
    pub fn updated(&self, update: EventUpdate) -> Result<Self, String> {
        let mut next = self.clone();
        if let Some(url) = update.queue_url {
            next.queue_url = url.map(|u| check_url("queueUrl", u)).transpose()?;
        }
        if let Some(url) = update.endpoint_url {
            next.endpoint_url = url.map(|u| check_url("endpointUrl", u)).transpose()?;
        }
        if let Some(ms) = update.delay_ms {
            if ms > MAX_DELAY_MS {
                return Err(format!("delayMs must be at most {MAX_DELAY_MS}"));
            }
            next.delay_ms = ms;
        }
        if let Some(p) = update.loss {
            next.loss = check_probability("loss", p)?;
        }
        if let Some(p) = update.duplicate {
            next.duplicate = check_probability("duplicate", p)?;
        }
        Ok(next)
    }

    /// Where the SQS client sends: see [`EventConfig::endpoint_url`].
    pub fn endpoint(&self, env: impl Fn(&str) -> Option<String>) -> Option<String> {
        self.endpoint_url
            .clone()
            .or_else(|| env("AWS_ENDPOINT_URL_SQS"))
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .or_else(|| self.queue_url.as_deref().and_then(origin))
    }
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split('/').next().filter(|h| !h.is_empty())?;
    Some(format!("{scheme}://{host}"))
}

fn check_url(what: &str, url: String) -> Result<String, String> {
    if (url.starts_with("http://") || url.starts_with("https://")) && origin(&url).is_some() {
        Ok(url)
    } else {
        Err(format!(
            "{what} must be an http:// or https:// URL, got {url:?}"
        ))
    }
}

fn check_probability(what: &str, p: f64) -> Result<f64, String> {
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("{what} must be between 0 and 1"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(json: &str) -> EventUpdate {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn updates_are_validated_all_or_nothing() {
        let base = EventConfig::default();
        let next = base
            .updated(update(
                r#"{"queueUrl":"http://127.0.0.1:5000/123456789012/q","loss":0.5}"#,
            ))
            .unwrap();
        assert_eq!(next.loss, 0.5);
        assert!(next.queue_url.is_some());
        assert!(next
            .updated(update(r#"{"loss":0.1,"duplicate":1.5}"#))
            .is_err());
        assert!(next.updated(update(r#"{"delayMs":600001}"#)).is_err());
        assert!(next.updated(update(r#"{"queueUrl":"sqs://x"}"#)).is_err());
        assert!(next.updated(update(r#"{"loss":-0.1}"#)).is_err());
        // Left out: unchanged; null: cleared.
        assert_eq!(next.updated(update("{}")).unwrap(), next);
        assert_eq!(
            next.updated(update(r#"{"queueUrl":null}"#))
                .unwrap()
                .queue_url,
            None
        );
        assert!(serde_json::from_str::<EventUpdate>(r#"{"lost":1}"#).is_err());
    }

    #[test]
    fn the_endpoint_falls_back_to_the_environment_then_the_queue_url() {
        let mut c = EventConfig {
            queue_url: Some("http://127.0.0.1:5000/123456789012/q".into()),
            ..EventConfig::default()
        };
        assert_eq!(
            c.endpoint(|_| None).as_deref(),
            Some("http://127.0.0.1:5000")
        );
        let env = |k: &str| (k == "AWS_ENDPOINT_URL").then(|| "http://moto:1".to_owned());
        assert_eq!(c.endpoint(env).as_deref(), Some("http://moto:1"));
        let env = |k: &str| Some(format!("http://{k}"));
        assert_eq!(
            c.endpoint(env).as_deref(),
            Some("http://AWS_ENDPOINT_URL_SQS")
        );
        c.endpoint_url = Some("http://flag".into());
        assert_eq!(c.endpoint(env).as_deref(), Some("http://flag"));
        assert_eq!(EventConfig::default().endpoint(|_| None), None);
    }
}
