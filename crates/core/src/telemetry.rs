//! What the core reports as it runs: per-secret state and counters. The core only calls
//! a [`Telemetry`] sink; the binary's Prometheus metrics implement it, tests use
//! [`NoTelemetry`] or a recorder.

use crate::config::{CommandConsumer, GroupConfig, SecretConfig};
use crate::group::GroupView;
use crate::ids::{SecretName, ServiceRef};
use std::sync::Arc;

/// Receives the core's measurements. Every method has a no-op default so that a sink
/// implements only what it shows.
pub trait Telemetry: Send + Sync {
    /// Changes the per-secret state shown by the gauges.
    fn update_secret(&self, _secret: &SecretName, _f: &mut dyn FnMut(&mut SecretState)) {}
    /// A secret entered the configuration (or its configuration changed): pre-create its
    /// series, with its `secret_info` labels ([`info_labels`]) and one redeploy counter set
    /// per consumer. The sink may keep `cfg` (shared, not copied).
    fn register_secret(&self, _cfg: &Arc<SecretConfig>) {}
    /// A secret left the configuration: drop its series.
    fn forget_secret(&self, _secret: &SecretName) {}
    fn secrets_configured(&self, _n: usize) {}
    /// Rotations running now changed by `delta`.
    fn rotations_running(&self, _delta: i64) {}
    fn due_times_pending(&self, _n: usize) {}
    /// A rotation ended (not counted for "already rotated": nothing was done).
    fn rotation_finished(&self, _secret: &SecretName, _outcome: &'static str, _seconds: f64) {}
    /// The wait for one service ended with `verdict`.
    fn wait_finished(&self, _verdict: &'static str, _seconds: f64) {}
    /// The deploy coordinator forced one deployment for `rotations` rotations at once.
    fn deployment_forced(&self, _rotations: usize) {}
    /// The deploy coordinator made one DescribeServices call.
    fn describe_services_called(&self) {}
    /// A rotation's wait for one service took this many DescribeServices calls.
    fn wait_polls(&self, _calls: u64) {}
    /// A verdict came this long after the deployment event that announced it.
    fn event_lateness(&self, _seconds: f64) {}
    /// `[events]`: whether the queue is being read (false: rollouts are polled meanwhile).
    fn events_receiving(&self, _live: bool) {}
    /// A forced redeployment of one service got its verdict.
    fn redeploy_finished(
        &self,
        _secret: &SecretName,
        _service: &ServiceRef,
        _verdict: &'static str,
    ) {
    }
    /// A consumer restarted by command got its verdict (`ok`, `failed`, `timed_out`).
    fn command_finished(
        &self,
        _secret: &SecretName,
        _consumer: &CommandConsumer,
        _verdict: &'static str,
    ) {
    }
    /// A `secret-rotator:last-rotated` tag was not usable.
    fn invalid_tag(&self, _secret: &SecretName, _problem: &'static str) {}
    /// A `[[group]]`'s progress was read (or one of its stages failed or finished):
    /// each stage's state, whether it is held, whether a failing stage halts it.
    fn group_progress(&self, _group: &GroupConfig, _view: &GroupView, _halted: bool) {}
    /// A `[[group]]` left the configuration (or changed): drop its series.
    fn forget_group(&self, _group: &GroupConfig) {}
    /// Another replica held the secret's lease.
    fn lease_contended(&self, _secret: &SecretName) {}
    /// The lease was lost during a rotation.
    fn lease_lost(&self, _secret: &SecretName) {}
}

/// A sink that drops everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoTelemetry;
impl Telemetry for NoTelemetry {}

/// [`Telemetry::update_secret`] with a plain closure.
pub fn update(t: &dyn Telemetry, secret: &SecretName, f: impl FnOnce(&mut SecretState)) {
    let mut f = Some(f);
    t.update_secret(secret, &mut |s| {
        if let Some(f) = f.take() {
            f(s)
        }
    });
}

/// The `secret_info` labels of a secret: secret id, region, account, interval, window.
/// An ARN names its region and account; otherwise they come from the configuration
/// (empty: the daemon's default).
pub fn info_labels(cfg: &SecretConfig) -> [String; 5] {
    let id = cfg.secret.id.as_str();
    let from_arn = |i: usize| {
        if id.starts_with("arn:") {
            id.split(':').nth(i).unwrap_or("").to_owned()
        } else {
            String::new()
        }
    };
    // Another vendor's secret: its store's region and, for Alibaba, the RAM role's
    // account uid.
    if let Some(parts) = cfg.secret.store.parts() {
        let region = parts.region.as_ref().map_or("", |r| r.as_str()).to_owned();
        let account = parts.role_arn.as_ref().map_or(String::new(), |r| {
            r.as_str().split(':').nth(3).unwrap_or("").to_owned()
        });
        return [
            id.to_owned(),
            region,
            account,
            crate::config::duration::format(cfg.every.get()),
            window_label(cfg),
        ];
    }
    let region = cfg
        .secret
        .account
        .region()
        .map_or_else(|| from_arn(3), |r| r.as_str().to_owned());
    let account = match from_arn(4) {
        a if !a.is_empty() => a,
        _ => cfg.secret.account.role_arn().map_or(String::new(), |r| {
            r.as_str().split(':').nth(4).unwrap_or("").to_owned()
        }),
    };
    [
        id.to_owned(),
        region,
        account,
        crate::config::duration::format(cfg.every.get()),
        window_label(cfg),
    ]
}

fn window_label(cfg: &SecretConfig) -> String {
    cfg.window
        .as_ref()
        .map_or(String::new(), |w| w.expr.clone())
}

/// The `store` label of a secret's metrics.
pub fn store_label(cfg: &SecretConfig) -> &'static str {
    match cfg.secret.store.kind() {
        crate::ids::StoreKind::Aws => "aws-secretsmanager",
        crate::ids::StoreKind::Alibaba => "alibaba-kms",
        crate::ids::StoreKind::Ibm => "ibm-secrets-manager",
    }
}

/// What the per-secret gauges show for one secret.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SecretState {
    /// 0: not known yet (the series is left out).
    pub next_due: f64,
    pub last_success: f64,
    pub failures: u32,
    pub failing: bool,
    pub in_progress: bool,
    pub started: f64,
    /// None until the first read of the secret; then whether the last read worked.
    pub readable: Option<bool>,
    /// The last rotation confirmed by this daemon or by our valid tag (0: none known).
    pub verified: f64,
    /// The configured interval, so an alert can say "not rotated within every + grace".
    pub every: f64,
    pub status: Status,
    /// The scheduler gave up after max_attempts failures (until a reload or manual rotate).
    pub gave_up: bool,
}

/// Slack after `every` before a secret counts as not rotated in time: one day, so a
/// secret due on a weekend or outside a short window, or retried with backoff, does not
/// alert, while a monthly secret a day late does.
pub const DEADLINE_GRACE_SECONDS: f64 = 86_400.0;

impl SecretState {
    /// The latest acceptable rotation time (0: not known): the last verified rotation +
    /// every + grace; without a verified rotation, the due time (which does not move while
    /// rotations fail) + grace.
    pub fn deadline(&self) -> f64 {
        if self.verified > 0.0 {
            self.verified + self.every + DEADLINE_GRACE_SECONDS
        } else if self.next_due > 0.0 {
            self.next_due + DEADLINE_GRACE_SECONDS
        } else {
            0.0
        }
    }
}

/// One word for where a secret stands (`secret_status{status}`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Status {
    /// Not read from the store yet.
    #[default]
    Loading,
    Ok,
    Due,
    Overdue,
    Unfinished,
    RedeployPending,
    Failing,
    Unreadable,
    OutsideWindow,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Loading => "loading",
            Status::Ok => "ok",
            Status::Due => "due",
            Status::Overdue => "overdue",
            Status::Unfinished => "unfinished",
            Status::RedeployPending => "redeploy_pending",
            Status::Failing => "failing",
            Status::Unreadable => "unreadable",
            Status::OutsideWindow => "outside_window",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_is_the_verified_rotation_plus_every_plus_grace() {
        let s = SecretState {
            verified: 1_000.0,
            every: 86_400.0,
            next_due: 5.0,
            ..SecretState::default()
        };
        assert_eq!(s.deadline(), 1_000.0 + 86_400.0 + DEADLINE_GRACE_SECONDS);
        // Without a verified rotation: the due time (which does not move while failing).
        let s = SecretState {
            next_due: 2_000.0,
            every: 86_400.0,
            ..SecretState::default()
        };
        assert_eq!(s.deadline(), 2_000.0 + DEADLINE_GRACE_SECONDS);
        assert_eq!(SecretState::default().deadline(), 0.0);
    }

    #[test]
    fn status_labels_are_the_ones_alerts_and_dashboards_use() {
        let all = [
            (Status::Loading, "loading"),
            (Status::Ok, "ok"),
            (Status::Due, "due"),
            (Status::Overdue, "overdue"),
            (Status::Unfinished, "unfinished"),
            (Status::RedeployPending, "redeploy_pending"),
            (Status::Failing, "failing"),
            (Status::Unreadable, "unreadable"),
            (Status::OutsideWindow, "outside_window"),
        ];
        for (s, label) in all {
            assert_eq!(s.label(), label);
        }
    }
}
