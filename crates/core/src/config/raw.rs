//! The TOML shapes as written, with spans for error messages. Unknown keys are errors.

use serde::Deserialize;
use toml::Spanned;

pub type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDaemon {
    pub listen: Option<S<String>>,
    pub max_concurrent_rotations: Option<S<i64>>,
    pub retry_initial: Option<S<String>>,
    pub retry_max: Option<S<String>>,
    pub max_attempts: Option<S<i64>>,
    pub shutdown_grace: Option<S<String>>,
    pub refresh: Option<S<String>>,
    pub step_timeout: Option<S<String>>,
    pub max_starts_per_minute: Option<S<i64>>,
    pub redeploy_coalesce: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAws {
    pub region: Option<S<String>>,
    pub profile: Option<S<String>>,
    pub role_arn: Option<S<String>>,
}

/// `[ha]`: per-secret leases on DynamoDB when more than one replica runs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHa {
    pub lock_table: Option<S<String>>,
    pub replicas: Option<S<i64>>,
    pub region: Option<S<String>>,
    pub role_arn: Option<S<String>>,
    pub lease_ttl: Option<S<String>>,
}

/// `[events]`: ECS deployment events from an SQS queue (EventBridge rule target).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEvents {
    pub queue_url: Option<S<String>>,
    pub region: Option<S<String>>,
    pub safety_poll: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecret {
    pub name: Option<S<String>>,
    pub secret_id: Option<S<String>>,
    pub every: Option<S<String>>,
    /// Permits `every` below one hour (tests, demos); a typo like "1m" for a month
    /// would otherwise restart every consumer every minute.
    pub allow_short_interval: Option<S<bool>>,
    pub window: Option<S<RawWindow>>,
    pub jitter: Option<S<String>>,
    pub generate: Option<S<RawGenerate>>,
    pub json_key: Option<S<String>>,
    pub json_key_create: Option<S<bool>>,
    /// Always `None`: the loader takes `target` out before serde reads the secret, and
    /// the target's kind reads it (`config::target`). Listed so that a misspelt key
    /// still gets "did you mean `target`?" and the full list of keys.
    #[allow(dead_code)]
    pub target: Option<S<serde::de::IgnoredAny>>,
    pub redeploy: Option<S<Vec<S<RawRedeploy>>>>,
    pub stable_timeout: Option<S<String>>,
    pub region: Option<S<String>>,
    pub role_arn: Option<S<String>>,
    /// `aws` (default), `alibaba` or `ibm`.
    pub store: Option<S<String>>,
    /// Alibaba: a KMS endpoint instead of the region's; IBM: the instance URL.
    pub endpoint: Option<S<String>>,
}

/// `[[group]]`: secrets rotated in the listed order, each after the previous one
/// succeeded and soaked.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroup {
    pub name: Option<S<String>>,
    pub secrets: Option<S<Vec<S<String>>>>,
    pub soak: Option<S<String>>,
}

/// `[[notify]]`: a sink for rotation events (webhook, Slack, SNS, change records).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    pub name: Option<S<String>>,
    pub kind: Option<S<String>>,
    pub url: Option<S<String>>,
    pub secret_env: Option<S<String>>,
    /// Values never appear in errors or logs (they are often credentials).
    pub headers: Option<S<std::collections::BTreeMap<String, S<String>>>>,
    pub topic_arn: Option<S<String>>,
    pub role_arn: Option<S<String>>,
    pub endpoint: Option<S<String>>,
    pub open_url: Option<S<String>>,
    pub close_url: Option<S<String>>,
    pub events: Option<S<Vec<S<String>>>>,
    pub secrets: Option<S<Vec<S<String>>>>,
    pub groups: Option<S<Vec<S<String>>>>,
    pub timeout: Option<S<String>>,
    pub max_attempts: Option<S<i64>>,
    pub retry_initial: Option<S<String>>,
}

/// `[alibaba]`: defaults for `store = "alibaba"` secrets.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlibaba {
    pub region: Option<S<String>>,
    pub endpoint: Option<S<String>>,
    pub role_arn: Option<S<String>>,
    pub sts_endpoint: Option<S<String>>,
}

/// `[ibm]`: defaults for `store = "ibm"` secrets.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIbm {
    pub endpoint: Option<S<String>>,
    pub iam_endpoint: Option<S<String>>,
    pub api_key_env: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWindow {
    pub cron: S<String>,
    pub duration: S<String>,
    pub timezone: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGenerate {
    pub length: Option<S<i64>>,
    pub exclude_characters: Option<S<String>>,
    pub exclude_lowercase: Option<S<bool>>,
    pub exclude_uppercase: Option<S<bool>>,
    pub exclude_numbers: Option<S<bool>>,
    pub exclude_punctuation: Option<S<bool>>,
    pub include_space: Option<S<bool>>,
    pub require_each_included_type: Option<S<bool>>,
}

/// One consumer: an ECS service list (`cluster`, `services`) or a command consumer
/// (`command`, `verify`, `timeout`, `env`). Which keys go together is checked by the
/// validator, with the same wording serde's "missing field" had.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedeploy {
    pub cluster: Option<S<String>>,
    pub services: Option<S<Vec<S<String>>>>,
    pub command: Option<S<Vec<String>>>,
    pub verify: Option<S<Vec<String>>>,
    pub timeout: Option<S<String>>,
    pub env: Option<S<std::collections::BTreeMap<String, String>>>,
}
