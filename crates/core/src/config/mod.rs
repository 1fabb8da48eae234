//! Configuration: a directory of TOML files turned into one validated [`Config`].
//!
//! Every file is read in name order; `[daemon]` and `[aws]` may appear in any file (each
//! key once overall), `[[secret]]` tables anywhere. All problems are collected and
//! reported together, each with `file:line:col`.

pub mod consumer;
pub mod duration;
mod error;
mod load;
mod raw;
mod split;
pub mod target;
mod validate;

pub use consumer::{CommandConsumer, Consumer};
pub use duration::CompactDuration;
pub use error::{ConfigError, ConfigErrors, Location};
pub use load::{load_dir_with, DEFAULT_DIR, DURATION_EXPECTED};
pub use target::{Registry, Target, TargetKind, TargetTable};

use crate::ids::{Account, GroupName, Region, RoleArn, SecretName, SecretRef, ServiceRef};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The characters AWS tools refuse in database passwords; excluded unless told otherwise.
pub const DEFAULT_EXCLUDED: &str = ":/@\"'\\";

#[derive(Clone, Debug)]
pub struct Config {
    pub daemon: DaemonConfig,
    pub aws: AwsConfig,
    pub alibaba: AlibabaConfig,
    pub ibm: IbmConfig,
    pub ha: HaConfig,
    pub events: EventsConfig,
    /// Shared with the scheduler and the metrics: one copy per secret.
    pub secrets: Vec<Arc<SecretConfig>>,
    /// `[[group]]`s, in file order; each member's [`SecretConfig::group`] points here.
    pub groups: Vec<Arc<GroupConfig>>,
    /// `[[notify]]` sinks, in file order.
    pub notify: Vec<NotifyConfig>,
    /// The files read, in order.
    pub files: Vec<PathBuf>,
}

impl Config {
    pub fn secret(&self, name: &str) -> Option<&SecretConfig> {
        self.secrets
            .iter()
            .find(|s| s.name.as_str() == name)
            .map(|s| s.as_ref())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct DaemonConfig {
    pub listen: SocketAddr,
    pub max_concurrent_rotations: usize,
    /// First retry delay after a failed rotation; doubles up to `retry_max`.
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Failed attempts in a row after which a secret stays failed until reload or success.
    pub max_attempts: u32,
    /// How long in-flight rotations may take to reach a safe point on SIGTERM.
    pub shutdown_grace: Duration,
    /// How often due times are re-read from the store (changes made outside the daemon).
    pub refresh: Duration,
    /// Deadline of each rotation step's call outside the process (store, target, ECS).
    pub step_timeout: Duration,
    /// Rotations started per minute at most, so that many overdue secrets (first start,
    /// a long outage) are spread out instead of all forced at once.
    pub max_starts_per_minute: u32,
    /// Rotations reaching the redeploy of one service within this share one deployment.
    pub redeploy_coalesce: Duration,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
            max_concurrent_rotations: 8,
            retry_initial: Duration::from_secs(60),
            retry_max: Duration::from_secs(3600),
            max_attempts: 10,
            shutdown_grace: Duration::from_secs(90),
            refresh: Duration::from_secs(3600),
            step_timeout: crate::rotation::DEFAULT_STEP_TIMEOUT,
            max_starts_per_minute: 10,
            redeploy_coalesce: crate::rotation::coordinator::DEFAULT_COALESCE,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct AwsConfig {
    pub region: Option<Region>,
    pub profile: Option<String>,
    pub role_arn: Option<RoleArn>,
}

/// `[alibaba]`: what `store = "alibaba"` secrets use unless they say otherwise. The
/// credentials are the vendor's environment variables (`ALIBABA_CLOUD_ACCESS_KEY_ID`,
/// `ALIBABA_CLOUD_ACCESS_KEY_SECRET`, optionally `ALIBABA_CLOUD_SECURITY_TOKEN`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlibabaConfig {
    pub region: Option<Region>,
    pub endpoint: Option<crate::ids::Endpoint>,
    /// A RAM role assumed through STS with the base credentials.
    pub role_arn: Option<RoleArn>,
    /// None: `https://sts.aliyuncs.com`.
    pub sts_endpoint: Option<String>,
}

/// `[ibm]`: what `store = "ibm"` secrets use unless they say otherwise.
#[derive(Clone, Debug, PartialEq)]
pub struct IbmConfig {
    /// The instance URL (`https://<instance-id>.<region>.secrets-manager.appdomain.cloud`).
    pub endpoint: Option<crate::ids::Endpoint>,
    /// None: `https://iam.cloud.ibm.com`.
    pub iam_endpoint: Option<String>,
    /// The environment variable holding the API key exchanged for IAM tokens.
    pub api_key_env: String,
}

impl Default for IbmConfig {
    fn default() -> Self {
        Self {
            endpoint: None,
            iam_endpoint: None,
            api_key_env: Self::DEFAULT_API_KEY_ENV.to_owned(),
        }
    }
}

/// `[events]`: follow rollouts by ECS deployment state change events, read from an SQS
/// queue that an EventBridge rule feeds (deploy/eventbridge), with a slow safety poll.
#[derive(Clone, Debug, PartialEq)]
pub struct EventsConfig {
    /// None: no events; rollouts are polled on the CLI waiter's schedule.
    pub queue_url: Option<String>,
    /// The queue's region (default: the one in the queue URL, else `[aws]`).
    pub region: Option<Region>,
    pub safety_poll: Duration,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            queue_url: None,
            region: None,
            safety_poll: crate::rotation::wait::DEFAULT_SAFETY_POLL,
        }
    }
}

/// `[ha]`: more than one replica on the same secrets. With `lock_table` set, a replica
/// takes a per-secret lease (DynamoDB conditional writes) before rotating; see docs/ha.md.
#[derive(Clone, Debug, PartialEq)]
pub struct HaConfig {
    /// The DynamoDB table holding the leases; `None`: no leases (one replica).
    pub lock_table: Option<String>,
    /// How many replicas run this configuration (more than one requires `lock_table`).
    pub replicas: u32,
    /// Region and role for the table (default: `[aws]`).
    pub account: Account,
    /// How long a lease lives without renewal; renewed every third of it.
    pub lease_ttl: Duration,
}

impl Default for HaConfig {
    fn default() -> Self {
        Self {
            lock_table: None,
            replicas: 1,
            account: Account::default(),
            lease_ttl: Duration::from_secs(60),
        }
    }
}

impl HaConfig {
    /// Whether rotations take a lease.
    pub fn enabled(&self) -> bool {
        self.lock_table.is_some()
    }
}

#[derive(Clone, Debug)]
pub struct SecretConfig {
    pub name: SecretName,
    /// The secret id plus the region/role that reach it (per-secret values over `[aws]`).
    pub secret: SecretRef,
    pub every: CompactDuration,
    /// Boxed: most secrets have none, and a parsed cron is large.
    pub window: Option<Box<Window>>,
    pub jitter: CompactDuration,
    /// Shared: most secrets use the default policy (one copy for all of them).
    pub generate: Arc<GeneratePolicy>,
    /// Behind a thin pointer: most secrets have none.
    pub json_key: Option<ThinText>,
    /// `json_key` may name a key the secret does not have yet (else that is refused).
    pub json_key_create: bool,
    pub target: Target,
    /// The consumers, ECS services and commands, in configuration order (see
    /// [`SecretConfig::services`] and [`SecretConfig::commands`]). A boxed slice: 8 bytes
    /// less than a `Vec` in every secret's record.
    pub redeploy: Box<[Consumer]>,
    pub stable_timeout: CompactDuration,
    /// Where the `[[secret]]` table starts.
    pub origin: Location,
    /// The `[[group]]` this secret is a stage of (most secrets: none).
    pub group: Option<Arc<GroupConfig>>,
}

/// `[[group]]`: one credential per environment, rotated in the listed order. A member
/// starts only once the one before it finished (every consumer stable) and soaked; the
/// group's schedule is its first member's. Progress is read from the members' stored
/// state (see [`crate::group`]), never from local files.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupConfig {
    pub name: GroupName,
    /// The members' `[[secret]]` names, first stage first.
    pub members: Vec<SecretName>,
    /// How long a stage runs on its new value before the next one starts.
    pub soak: Duration,
    /// Where the `[[group]]` table starts.
    pub origin: Location,
}

/// `[[notify]]`: where rotation events go, which ones, and how hard delivery tries. The
/// binary's `notify` module delivers; secrets and header values are read or held there
/// only (this records the environment variable's name, never its value).
#[derive(Clone, Debug, PartialEq)]
pub struct NotifyConfig {
    /// Unique; the `sink` label of the notification metrics.
    pub name: String,
    pub sink: NotifySink,
    /// The event kinds delivered (every kind unless `events` is set).
    pub events: Vec<crate::notify::EventKind>,
    /// Only events about these secrets (empty: any).
    pub secrets: Vec<SecretName>,
    /// Only events about members of these groups (empty: any).
    pub groups: Vec<GroupName>,
    /// One delivery attempt's time limit.
    pub timeout: Duration,
    /// Attempts per delivery before it is given up (counted `failed`).
    pub max_attempts: u32,
    /// The first retry's delay; doubled each retry (with jitter), at most [`NOTIFY_RETRY_CAP`].
    pub retry_initial: Duration,
    /// Where the `[[notify]]` table starts.
    pub origin: Location,
}

/// The longest delay between two delivery attempts.
pub const NOTIFY_RETRY_CAP: Duration = Duration::from_secs(300);

/// A sink kind and its own settings.
#[derive(Clone, Debug, PartialEq)]
pub enum NotifySink {
    /// POST of the event JSON (`docs/notifications.md`).
    Webhook {
        url: String,
        /// The environment variable holding the HMAC key (read at start).
        secret_env: Option<String>,
        headers: NotifyHeaders,
    },
    /// POST of `{"text": ...}` to an incoming-webhook URL.
    Slack { url: String },
    /// SNS `Publish` of the event JSON.
    Sns {
        topic_arn: String,
        /// The topic's region (from its ARN).
        region: Region,
        role_arn: Option<RoleArn>,
        endpoint: Option<String>,
    },
    /// Opens a change record when a rotation starts, closes it when it ends.
    ChangeRecord {
        open_url: String,
        close_url: String,
        secret_env: Option<String>,
        headers: NotifyHeaders,
    },
}

impl NotifySink {
    /// The `kind` as written (and the `kind` label of the metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            NotifySink::Webhook { .. } => "webhook",
            NotifySink::Slack { .. } => "slack",
            NotifySink::Sns { .. } => "sns",
            NotifySink::ChangeRecord { .. } => "change-record",
        }
    }

    /// The environment variable holding the HMAC key, if the sink signs.
    pub fn secret_env(&self) -> Option<&str> {
        match self {
            NotifySink::Webhook { secret_env, .. }
            | NotifySink::ChangeRecord { secret_env, .. } => secret_env.as_deref(),
            NotifySink::Slack { .. } | NotifySink::Sns { .. } => None,
        }
    }
}

/// Extra request headers (often credentials): their values never appear in `Debug`.
#[derive(Clone, Default, PartialEq)]
pub struct NotifyHeaders(pub Vec<(String, String)>);

impl std::fmt::Debug for NotifyHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, _)| format!("{k}: <redacted>")))
            .finish()
    }
}

impl NotifyConfig {
    /// Whether `event` passes this sink's filters (`events`, `secrets`, `groups`).
    pub fn matches(&self, event: &crate::notify::Event) -> bool {
        self.events.contains(&event.kind)
            && (self.secrets.is_empty() || self.secrets.contains(&event.secret))
            && (self.groups.is_empty()
                || event
                    .group
                    .as_ref()
                    .is_some_and(|g| self.groups.contains(&g.group)))
    }
}

impl GroupConfig {
    /// `secret`'s stage: its index in `members`.
    pub fn stage_of(&self, secret: &SecretName) -> Option<usize> {
        self.members.iter().position(|m| m == secret)
    }
}

// 100,000 of these are held: 168 bytes (with the reference counts, a 176-byte chunk of
// glibc's allocator, the same as at 160 before `group`); a field that grows it says so here.
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<SecretConfig>() <= 168);

impl SecretConfig {
    pub fn account(&self) -> &Account {
        &self.secret.account
    }

    /// The ECS services to redeploy.
    pub fn services(&self) -> impl Iterator<Item = &ServiceRef> + Clone {
        self.redeploy.iter().filter_map(Consumer::service)
    }

    /// Whether any ECS service is to be redeployed.
    pub fn has_services(&self) -> bool {
        self.services().next().is_some()
    }

    /// The consumers restarted by a command.
    pub fn commands(&self) -> impl Iterator<Item = &Arc<CommandConsumer>> + Clone {
        self.redeploy.iter().filter_map(Consumer::command)
    }

    /// How long the consumers may take once the value is current: the stable timeout,
    /// or a command consumer's own timeout when longer.
    pub fn consumers_timeout(&self) -> Duration {
        self.commands()
            .map(|c| c.timeout)
            .fold(self.stable_timeout.get(), Duration::max)
    }
}

/// Shared text behind a thin pointer, for a setting every secret's record has room for:
/// 8 bytes where an `Arc<str>` takes 16. The configuration makes one copy per distinct
/// text (most JSON secrets name the same key).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ThinText(Arc<String>);

impl std::borrow::Borrow<str> for ThinText {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl ThinText {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for ThinText {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for ThinText {
    fn from(s: &str) -> Self {
        ThinText(Arc::new(s.to_owned()))
    }
}

impl From<String> for ThinText {
    fn from(s: String) -> Self {
        ThinText(Arc::new(s))
    }
}

impl std::fmt::Display for ThinText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Debug for ThinText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

#[derive(Clone, Debug)]
pub struct Window {
    pub expr: String,
    pub cron: croner::Cron,
    pub duration: Duration,
    pub timezone: chrono_tz::Tz,
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} for {} ({})",
            self.expr,
            duration::format(self.duration),
            self.timezone
        )
    }
}

/// How a new value is generated; mirrors the options of Secrets Manager's GetRandomPassword.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratePolicy {
    pub length: usize,
    pub exclude_characters: String,
    pub exclude_lowercase: bool,
    pub exclude_uppercase: bool,
    pub exclude_numbers: bool,
    pub exclude_punctuation: bool,
    pub include_space: bool,
    pub require_each_included_type: bool,
}

impl Default for GeneratePolicy {
    fn default() -> Self {
        Self {
            length: 32,
            exclude_characters: DEFAULT_EXCLUDED.to_owned(),
            exclude_lowercase: false,
            exclude_uppercase: false,
            exclude_numbers: false,
            exclude_punctuation: false,
            include_space: false,
            require_each_included_type: true,
        }
    }
}

/// A plain secret for the core's unit tests: `name` on `id`, daily, no target.
#[cfg(test)]
pub(crate) fn test_secret(name: &str, id: &str) -> SecretConfig {
    SecretConfig {
        name: name.into(),
        secret: SecretRef {
            id: crate::ids::SecretId::from(id),
            account: Account::default(),
            store: Default::default(),
        },
        every: Duration::from_secs(86_400).into(),
        window: None,
        jitter: Duration::ZERO.into(),
        generate: Default::default(),
        json_key: None,
        json_key_create: false,
        target: Target::None,
        redeploy: Box::default(),
        stable_timeout: Duration::from_secs(600).into(),
        origin: Location::whole(std::path::Path::new("t.toml").into()),
        group: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_on_with_a_lock_table_only() {
        let mut ha = HaConfig::default();
        assert!(!ha.enabled());
        ha.lock_table = Some("secret-rotator-leases".into());
        assert!(ha.enabled());
    }
}
