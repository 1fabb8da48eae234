//! Every metric the daemon exports, defined in one place. Label sets are bounded: secret
//! names and services come from the configuration, outcomes and operations are fixed lists.

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::sync::{Arc, OnceLock};

use rotator_core::config::{CommandConsumer, GroupConfig, SecretConfig};
use rotator_core::group::GroupView;
use rotator_core::ids::{SecretName, ServiceRef};
use rotator_core::telemetry::Telemetry;
pub use rotator_core::telemetry::{SecretState, Status, DEADLINE_GRACE_SECONDS};

mod groups;
mod secrets;
pub use groups::STAGE_STATES;
pub use secrets::{Scrape, Secrets};

/// Every metric's name starts with this.
const PREFIX: &str = "secret_rotator_";

/// The `outcome` values of `rotations_total`.
pub const ROTATION_OUTCOMES: [&str; 4] = ["success", "failed", "rolled_back", "stalled"];

/// The `outcome` values of `ecs_redeploys_total` (`ServiceVerdict::label`).
pub const REDEPLOY_OUTCOMES: [&str; 6] = [
    "stable",
    "rolled_back",
    "stalled",
    "missing",
    "not_forceable",
    "failed",
];

/// The `outcome` values of `consumer_commands_total` (`CommandVerdict::label`).
pub use rotator_core::rotation::restart::COMMAND_OUTCOMES;

pub struct Metrics {
    pub registry: Registry,
    pub rotation_duration: HistogramVec,
    /// Every per-secret series (state gauges, rotation/redeploy/tag/lease counters,
    /// `secret_info`), written at scrape time from one small record per secret.
    pub secrets: &'static Secrets,
    pub in_progress_total: IntGauge,
    pub wait_duration: HistogramVec,
    /// Deploy coordinator: deployments forced, rotations that shared one, and the
    /// DescribeServices calls it made (in all, and per consumer wait).
    pub deployments_forced: IntCounter,
    pub rotations_coalesced: IntCounter,
    pub describe_calls: IntCounter,
    pub wait_polls: Histogram,
    /// [events]: how long after ECS's deployment event its verdict came.
    pub event_lateness: Histogram,
    /// [events]: 1 while the queue is read, 0 while it cannot be (absent without [events]).
    /// (A vector without labels: no series until [events] first sets it.)
    pub events_receiving: IntGaugeVec,
    pub aws_calls: IntCounterVec,
    pub reload_ok: IntGauge,
    pub reload_ok_time: Gauge,
    pub secrets_configured: IntGauge,
    pub ready: IntGauge,
    pub build_info: IntGaugeVec,
    /// Configured secrets whose due time is not known yet (loading, or unreadable).
    pub due_times_pending: IntGauge,
    /// `[[group]]` progress.
    pub groups: groups::Groups,
    /// `[[notify]]`: deliveries by sink, kind and result (delivered, failed, rejected,
    /// dropped), retries, and the last delivery's time.
    pub notifications: IntCounterVec,
    pub notification_retries: IntCounterVec,
    pub notification_last_success: prometheus::GaugeVec,
}

fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: T) -> T {
    // Names are fixed at compile time and unique, so registration cannot clash.
    r.register(Box::new(c.clone()))
        .expect("metric registered twice");
    c
}

impl Metrics {
    fn new() -> Self {
        let r = Registry::new_custom(Some(PREFIX.trim_end_matches('_').into()), None)
            .expect("valid prefix");
        let buckets = vec![
            1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 3600.0,
        ];
        // Leaked once per process (tests make a few): a scrape streams from it.
        let secrets: &'static Secrets = Box::leak(Box::default());
        let m = Self {
            secrets,
            rotation_duration: reg(&r, HistogramVec::new(HistogramOpts::new("rotation_duration_seconds", "Time from the start of a rotation to its verdict.").buckets(buckets.clone()), &["outcome"]).unwrap()),
            in_progress_total: reg(&r, IntGauge::new("rotations_running", "Rotations running now (all secrets; per secret: rotation_in_progress).").unwrap()),
            wait_duration: reg(&r, HistogramVec::new(HistogramOpts::new("ecs_wait_duration_seconds", "Time from the forced deployment to the stability verdict.").buckets(buckets), &["outcome"]).unwrap()),
            deployments_forced: reg(&r, IntCounter::new("ecs_deployments_forced_total", "Forced ECS deployments (UpdateService forceNewDeployment) the deploy coordinator sent.").unwrap()),
            rotations_coalesced: reg(&r, IntCounter::new("ecs_rotations_coalesced_total", "Rotations that shared a forced deployment another rotation asked for within [daemon] redeploy_coalesce, instead of forcing their own.").unwrap()),
            describe_calls: reg(&r, IntCounter::new("ecs_describe_services_calls_total", "DescribeServices calls made to follow forced deployments (up to 10 services per call).").unwrap()),
            wait_polls: reg(&r, Histogram::with_opts(HistogramOpts::new("ecs_wait_describe_calls", "DescribeServices calls that included a consumer while a rotation waited on it (the CLI waiter makes one per 15 s).").buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 40.0, 80.0, 160.0])).unwrap()),
            events_receiving: reg(&r, IntGaugeVec::new(Opts::new("ecs_events_receiving", "With [events]: 1 while the deployment events queue is read, 0 while it cannot be (rollouts are then polled on the CLI waiter's schedule)."), &[]).unwrap()),
            event_lateness: reg(&r, Histogram::with_opts(HistogramOpts::new("ecs_event_lateness_seconds", "With [events]: time from an ECS deployment event's updatedAt to the verdict it announced (delivery, the confirming DescribeServices, clock skew).").buckets(vec![0.25, 0.5, 1.0, 2.0, 5.0, 15.0, 60.0])).unwrap()),
            aws_calls: reg(&r, IntCounterVec::new(Opts::new("aws_api_calls_total", "AWS API call attempts (retries included) by service, operation and outcome (ok, throttled, error)."), &["service", "operation", "outcome"]).unwrap()),
            reload_ok: reg(&r, IntGauge::new("config_last_reload_successful", "1 if the last configuration load succeeded.").unwrap()),
            reload_ok_time: reg(&r, Gauge::new("config_last_reload_success_timestamp_seconds", "When the configuration was last loaded successfully (Unix time).").unwrap()),
            secrets_configured: reg(&r, IntGauge::new("secrets_configured", "Secrets in the loaded configuration.").unwrap()),
            ready: reg(&r, IntGauge::new("ready", "1 when the configuration is loaded and the store was reached at the last check.").unwrap()),
            build_info: reg(&r, IntGaugeVec::new(Opts::new("build_info", "Build information; always 1."), &["version"]).unwrap()),
            due_times_pending: reg(&r, IntGauge::new("due_times_pending", "Configured secrets whose due time is not known yet (still loading after start or reload, or unreadable).").unwrap()),
            groups: groups::Groups::new(&r),
            notifications: reg(&r, IntCounterVec::new(Opts::new("notifications_total", "[[notify]] deliveries by sink, kind and result: delivered; failed (given up after max_attempts); rejected (a 4xx reply other than 429, not retried); dropped (the sink's queue was full)."), &["sink", "kind", "result"]).unwrap()),
            notification_retries: reg(&r, IntCounterVec::new(Opts::new("notification_retries_total", "[[notify]] delivery attempts retried (connection errors, timeouts, 429, 5xx)."), &["sink"]).unwrap()),
            notification_last_success: reg(&r, prometheus::GaugeVec::new(Opts::new("notification_last_success_timestamp_seconds", "When the sink last accepted a delivery (Unix time)."), &["sink"]).unwrap()),
            registry: r,
        };
        m.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        m
    }

    /// Prometheus text exposition of every metric, in one string (tests, small configs).
    pub fn render(&self) -> String {
        self.scrape().collect()
    }

    /// Prometheus text exposition of every metric, in chunks: the registry's metrics,
    /// then the per-secret families (see [`Scrape`]).
    pub fn scrape(&self) -> impl Iterator<Item = String> + 'static {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for the text format.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        let head = String::from_utf8(buf).unwrap_or_default();
        std::iter::once(head).chain(self.secrets.scrape(PREFIX))
    }
}

/// The process-wide metrics.
pub fn get() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(Metrics::new)
}

/// The core reports through this; every call lands in the process-wide registry.
impl Telemetry for Metrics {
    fn update_secret(&self, secret: &SecretName, f: &mut dyn FnMut(&mut SecretState)) {
        self.secrets.update(secret, f);
    }
    fn register_secret(&self, cfg: &Arc<SecretConfig>) {
        self.secrets.register(cfg);
    }
    fn forget_secret(&self, secret: &SecretName) {
        self.secrets.forget(secret);
    }
    fn secrets_configured(&self, n: usize) {
        self.secrets_configured.set(n as i64);
    }
    fn rotations_running(&self, delta: i64) {
        self.in_progress_total.add(delta);
    }
    fn due_times_pending(&self, n: usize) {
        self.due_times_pending.set(n as i64);
    }
    fn group_progress(&self, group: &GroupConfig, view: &GroupView, halted: bool) {
        self.groups.progress(group, view, halted);
    }
    fn forget_group(&self, group: &GroupConfig) {
        self.groups.forget(group);
    }
    fn rotation_finished(&self, secret: &SecretName, outcome: &'static str, seconds: f64) {
        self.secrets.rotation_finished(secret, outcome);
        self.rotation_duration
            .with_label_values(&[outcome])
            .observe(seconds);
    }
    fn wait_finished(&self, verdict: &'static str, seconds: f64) {
        self.wait_duration
            .with_label_values(&[verdict])
            .observe(seconds);
    }
    fn deployment_forced(&self, rotations: usize) {
        self.deployments_forced.inc();
        self.rotations_coalesced
            .inc_by(rotations.saturating_sub(1) as u64);
    }
    fn redeploy_finished(&self, secret: &SecretName, svc: &ServiceRef, verdict: &'static str) {
        self.secrets.redeploy_finished(secret, svc, verdict);
    }
    fn command_finished(&self, secret: &SecretName, c: &CommandConsumer, verdict: &'static str) {
        self.secrets.command_finished(secret, c, verdict);
    }
    fn invalid_tag(&self, secret: &SecretName, problem: &'static str) {
        self.secrets.invalid_tag(secret, problem);
    }
    fn lease_contended(&self, secret: &SecretName) {
        self.secrets.lease_contended(secret);
    }
    fn lease_lost(&self, secret: &SecretName) {
        self.secrets.lease_lost(secret);
    }
}

/// The process-wide metrics as the core's sink.
pub fn telemetry() -> std::sync::Arc<dyn Telemetry> {
    struct Global;
    impl Telemetry for Global {
        fn update_secret(&self, s: &SecretName, f: &mut dyn FnMut(&mut SecretState)) {
            get().update_secret(s, f)
        }
        fn register_secret(&self, cfg: &Arc<SecretConfig>) {
            Telemetry::register_secret(get(), cfg)
        }
        fn forget_secret(&self, s: &SecretName) {
            Telemetry::forget_secret(get(), s)
        }
        fn secrets_configured(&self, n: usize) {
            Telemetry::secrets_configured(get(), n)
        }
        fn rotations_running(&self, d: i64) {
            get().rotations_running(d)
        }
        fn due_times_pending(&self, n: usize) {
            Telemetry::due_times_pending(get(), n)
        }
        fn rotation_finished(&self, s: &SecretName, o: &'static str, t: f64) {
            get().rotation_finished(s, o, t)
        }
        fn wait_finished(&self, v: &'static str, t: f64) {
            get().wait_finished(v, t)
        }
        fn redeploy_finished(&self, s: &SecretName, v: &ServiceRef, o: &'static str) {
            get().redeploy_finished(s, v, o)
        }
        fn command_finished(&self, s: &SecretName, c: &CommandConsumer, o: &'static str) {
            Telemetry::command_finished(get(), s, c, o)
        }
        fn deployment_forced(&self, rotations: usize) {
            get().deployment_forced(rotations)
        }
        fn describe_services_called(&self) {
            get().describe_calls.inc()
        }
        fn wait_polls(&self, calls: u64) {
            get().wait_polls.observe(calls as f64)
        }
        fn event_lateness(&self, seconds: f64) {
            get().event_lateness.observe(seconds)
        }
        fn events_receiving(&self, live: bool) {
            get()
                .events_receiving
                .with_label_values(&[] as &[&str])
                .set(i64::from(live))
        }
        fn invalid_tag(&self, s: &SecretName, p: &'static str) {
            get().invalid_tag(s, p)
        }
        fn lease_contended(&self, s: &SecretName) {
            Telemetry::lease_contended(get(), s)
        }
        fn lease_lost(&self, s: &SecretName) {
            Telemetry::lease_lost(get(), s)
        }
        fn group_progress(&self, g: &GroupConfig, v: &GroupView, halted: bool) {
            Telemetry::group_progress(get(), g, v, halted)
        }
        fn forget_group(&self, g: &GroupConfig) {
            Telemetry::forget_group(get(), g)
        }
    }
    std::sync::Arc::new(Global)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rotator_core::telemetry::update;
    use rotator_test_kit::metrics::value as metric;

    /// The events gauge exists only once [events] sets it: without events configured no
    /// series is 0, so ECSEventsQueueUnreadable cannot fire.
    #[test]
    fn the_events_gauge_has_no_series_until_events_are_configured() {
        let m = Metrics::new();
        let sample = |text: &str| {
            text.lines()
                .find(|l| l.starts_with("secret_rotator_ecs_events_receiving "))
                .map(str::to_owned)
        };
        assert_eq!(sample(&m.render()), None);
        m.events_receiving.with_label_values(&[] as &[&str]).set(0);
        assert_eq!(
            sample(&m.render()).as_deref(),
            Some("secret_rotator_ecs_events_receiving 0")
        );
    }

    /// The core's reports as Prometheus series: what `crates/core/tests/suite/scheduler.rs`
    /// asserts the scheduler reports (on the kit's recorder) is what the alerts and the
    /// dashboard read, under these names and labels.
    #[test]
    fn the_cores_reports_render_as_the_series_alerts_read() {
        let m = Metrics::new();
        let name = SecretName::from;
        update(&m, &name("busy"), |s| {
            s.in_progress = true;
            s.started = 100.0;
            s.failing = true;
            s.failures = 2;
            s.readable = Some(false);
            s.status = Status::Unreadable;
        });
        update(&m, &name("idle"), |s| {
            s.verified = 1234.0;
            s.readable = Some(true);
            s.status = Status::OutsideWindow;
        });
        m.invalid_tag(&name("idle"), "future");
        m.invalid_tag(&name("idle"), "future");
        m.invalid_tag(&name("busy"), "unparseable");
        let idle = rotator_test_kit::SecretBuilder::new("idle", "app/idle").build();
        Telemetry::register_secret(&m, &Arc::new(idle));
        m.rotation_finished(&name("idle"), "success", 3.0);
        let body = m.render();
        let series = |s: &str| metric(&body, &format!("secret_rotator_{s}"));

        // Present only while a rotation runs.
        assert_eq!(
            series("rotation_in_progress{secret=\"busy\"}"),
            Some(1.0),
            "{body}"
        );
        assert_eq!(series("rotation_in_progress{secret=\"idle\"}"), None);
        assert_eq!(
            series("rotation_started_timestamp_seconds{secret=\"busy\"}"),
            Some(100.0)
        );
        // Always present, 0 or 1.
        assert_eq!(series("rotation_failing{secret=\"busy\"}"), Some(1.0));
        assert_eq!(series("rotation_failing{secret=\"idle\"}"), Some(0.0));
        assert_eq!(series("consecutive_failures{secret=\"busy\"}"), Some(2.0));
        assert_eq!(series("secret_readable{secret=\"busy\"}"), Some(0.0));
        assert_eq!(series("secret_readable{secret=\"idle\"}"), Some(1.0));
        assert_eq!(
            series("secret_status{secret=\"busy\",status=\"unreadable\"}"),
            Some(1.0)
        );
        assert_eq!(
            series("secret_status{secret=\"idle\",status=\"outside_window\"}"),
            Some(1.0)
        );
        // Present only once a rotation is verified.
        assert_eq!(
            series("last_verified_rotation_timestamp_seconds{secret=\"idle\"}"),
            Some(1234.0)
        );
        assert_eq!(
            series("last_verified_rotation_timestamp_seconds{secret=\"busy\"}"),
            None
        );
        assert_eq!(
            series("invalid_tags_total{reason=\"future\",secret=\"idle\"}"),
            Some(2.0)
        );
        assert_eq!(
            series("invalid_tags_total{reason=\"unparseable\",secret=\"busy\"}"),
            Some(1.0)
        );
        assert_eq!(
            series("rotations_total{outcome=\"success\",secret=\"idle\"}"),
            Some(1.0)
        );
        // Registered secrets have every outcome's counter from 0.
        assert_eq!(
            series("rotations_total{outcome=\"failed\",secret=\"idle\"}"),
            Some(0.0)
        );
    }
}
