//! Every metric the daemon exports, defined in one place. Label sets are bounded: secret
//! names and services come from the configuration, outcomes and operations are fixed lists.

use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricFamily, MetricType};
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use rotator_core::ids::{SecretName, ServiceRef};
use rotator_core::telemetry::Telemetry;
pub use rotator_core::telemetry::{SecretState, Status, DEADLINE_GRACE_SECONDS};

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

pub struct Metrics {
    /// The ECS consumers whose redeploy counters were created, by secret (to drop them).
    /// and the `secret_info` labels set, by secret (to drop them on reload).
    consumers: Mutex<HashMap<Box<str>, SecretSeries>>,
    pub secret_info: IntGaugeVec,
    pub registry: Registry,
    pub rotations: IntCounterVec,
    pub rotation_duration: HistogramVec,
    /// Per-secret state gauges, rendered at scrape time from one small record per secret
    /// (a labelled child per series costs ~0.5 KiB; at 100,000 secrets that matters).
    pub secrets: &'static SecretStates,
    pub in_progress_total: IntGauge,
    pub redeploys: IntCounterVec,
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
    /// `[ha]`: launches skipped because another replica held the secret's lease.
    pub lease_contended: IntCounterVec,
    /// `[ha]`: rotations stopped because their lease lapsed or was taken over.
    pub lease_lost: IntCounterVec,
    /// `last-rotated` tags not used (in the future, unparseable), by secret and reason.
    pub invalid_tags: IntCounterVec,
    /// Configured secrets whose due time is not known yet (loading, or unreadable).
    pub due_times_pending: IntGauge,
}

fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: T) -> T {
    // Names are fixed at compile time and unique, so registration cannot clash.
    r.register(Box::new(c.clone()))
        .expect("metric registered twice");
    c
}

impl Metrics {
    fn new() -> Self {
        let r = Registry::new_custom(Some("secret_rotator".into()), None).expect("valid prefix");
        let buckets = vec![
            1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 3600.0,
        ];
        let secrets: &'static SecretStates = Box::leak(Box::new(SecretStates::new()));
        r.register(Box::new(SecretStatesCollector(secrets)))
            .expect("secret state metrics");
        let m = Self {
            consumers: Mutex::default(),
            secret_info: reg(&r, IntGaugeVec::new(Opts::new("secret_info", "Configuration of a secret; always 1 (join on secret). Empty region/account: the daemon's default."), &["secret", "secret_id", "region", "account", "every", "window", "store"]).unwrap()),
            secrets,
            rotations: reg(&r, IntCounterVec::new(Opts::new("rotations_total", "Rotations finished, by secret and outcome (success, failed, rolled_back, stalled)."), &["secret", "outcome"]).unwrap()),
            rotation_duration: reg(&r, HistogramVec::new(HistogramOpts::new("rotation_duration_seconds", "Time from the start of a rotation to its verdict.").buckets(buckets.clone()), &["outcome"]).unwrap()),
            in_progress_total: reg(&r, IntGauge::new("rotations_running", "Rotations running now (all secrets; per secret: rotation_in_progress).").unwrap()),
            redeploys: reg(&r, IntCounterVec::new(Opts::new("ecs_redeploys_total", "Forced ECS redeployments by verdict (stable, rolled_back, stalled, missing, not_forceable, failed)."), &["secret", "cluster", "service", "outcome"]).unwrap()),
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
            lease_contended: reg(&r, IntCounterVec::new(Opts::new("lease_contended_total", "Rotation launches skipped because another replica held the secret's lease ([ha]); retried shortly."), &["secret"]).unwrap()),
            lease_lost: reg(&r, IntCounterVec::new(Opts::new("lease_lost_total", "Rotations stopped because their lease expired or was taken over by another replica ([ha]); counted as failed."), &["secret"]).unwrap()),
            invalid_tags: reg(&r, IntCounterVec::new(Opts::new("invalid_tags_total", "Reads of a secret whose secret-rotator:last-rotated tag was not used: in the future (the secret is then due now) or unparseable (treated as absent)."), &["secret", "reason"]).unwrap()),
            due_times_pending: reg(&r, IntGauge::new("due_times_pending", "Configured secrets whose due time is not known yet (still loading after start or reload, or unreadable).").unwrap()),
            registry: r,
        };
        m.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        m
    }

    /// Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for the text format.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }

    /// Creates the counters of a configured secret and of its ECS consumers
    /// (`(cluster, service)`) at 0, so that alerts and `increase()` see the first event (a
    /// series created at 1 has no increase). On reload, drops consumers no longer listed.
    /// Also sets `secret_info` from `info` = [secret_id, region, account, every, window].
    pub fn register_secret(&self, secret: &str, info: [String; 5], services: &[(String, String)]) {
        for outcome in ROTATION_OUTCOMES {
            let _ = self.rotations.with_label_values(&[secret, outcome]);
        }
        let mut reg = self.consumers.lock().unwrap_or_else(|e| e.into_inner());
        let (old_info, old) = reg
            .insert(secret.into(), (info.clone(), services.to_vec()))
            .unwrap_or_default();
        if old_info != info {
            let _ = self
                .secret_info
                .remove_label_values(&info_labels(secret, &old_info));
        }
        self.secret_info
            .with_label_values(&info_labels(secret, &info))
            .set(1);
        for (cluster, service) in old.iter().filter(|s| !services.contains(s)) {
            for outcome in REDEPLOY_OUTCOMES {
                let _ = self
                    .redeploys
                    .remove_label_values(&[secret, cluster, service, outcome]);
            }
        }
        for (cluster, service) in services {
            for outcome in REDEPLOY_OUTCOMES {
                let _ = self
                    .redeploys
                    .with_label_values(&[secret, cluster, service, outcome]);
            }
        }
    }

    /// Drops the series of a secret that is no longer configured.
    pub fn forget_secret(&self, secret: &str) {
        self.secrets.forget(secret);
        for outcome in ROTATION_OUTCOMES {
            let _ = self.rotations.remove_label_values(&[secret, outcome]);
        }
        let (old_info, old) = self
            .consumers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(secret)
            .unwrap_or_default();
        let _ = self
            .secret_info
            .remove_label_values(&info_labels(secret, &old_info));
        for (cluster, service) in &old {
            for outcome in REDEPLOY_OUTCOMES {
                let _ = self
                    .redeploys
                    .remove_label_values(&[secret, cluster, service, outcome]);
            }
        }
        for reason in ["future", "unparseable"] {
            let _ = self.invalid_tags.remove_label_values(&[secret, reason]);
        }
    }
}

type SecretSeries = ([String; 5], Vec<(String, String)>);

fn info_labels<'a>(secret: &'a str, info: &'a [String; 5]) -> [&'a str; 7] {
    [
        secret,
        &info[0],
        &info[1],
        &info[2],
        &info[3],
        &info[4],
        "aws-secretsmanager",
    ]
}

pub struct SecretStates {
    map: Mutex<HashMap<Box<str>, SecretState>>,
    descs: Vec<Desc>,
}

const STATE_FAMILIES: [(&str, &str); 12] = [
    ("next_due_timestamp_seconds", "When the secret is due (Unix time). Does not move while rotations fail, so now > next_due means overdue."),
    ("last_success_timestamp_seconds", "When the secret last rotated successfully (Unix time; absent while unknown)."),
    ("rotation_failing", "1 when the last rotation attempt of the secret failed."),
    ("consecutive_failures", "Failed attempts in a row since the last success (only secrets with failures)."),
    ("rotation_in_progress", "1 while the secret is being rotated (only secrets being rotated)."),
    ("rotation_started_timestamp_seconds", "When the rotation in progress started (Unix time; only secrets being rotated)."),
    ("secret_readable", "1 if the secret could be read at the last attempt, 0 if not (the reason is logged; reads are retried with backoff)."),
    ("last_verified_rotation_timestamp_seconds", "The last rotation observed by this daemon or confirmed by a valid secret-rotator:last-rotated tag (Unix time; absent if none)."),
    ("rotation_interval_seconds", "The configured interval (every) of the secret."),
    ("secret_status", "1 for the secret's current status: loading, ok, due, overdue, unfinished, redeploy_pending, failing, unreadable, outside_window."),
    ("rotation_deadline_timestamp_seconds", "The latest acceptable rotation time (Unix time): last verified rotation + every + 1d grace, or next due + 1d grace when no rotation is verified; absent until known. time() past it means not rotated in time."),
    ("retries_exhausted", "1 when the scheduler gave up on the secret after max_attempts failed attempts (until a reload or a manual rotate)."),
];

impl SecretStates {
    fn new() -> Self {
        let descs = STATE_FAMILIES
            .iter()
            .map(|(n, h)| {
                let labels = if *n == "secret_status" {
                    vec!["secret".into(), "status".into()]
                } else {
                    vec!["secret".into()]
                };
                Desc::new((*n).into(), (*h).into(), labels, HashMap::new()).expect("valid desc")
            })
            .collect();
        Self {
            map: Mutex::default(),
            descs,
        }
    }

    pub fn update(&self, secret: &str, f: impl FnOnce(&mut SecretState)) {
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        match m.get_mut(secret) {
            Some(s) => f(s),
            None => {
                let mut s = SecretState::default();
                f(&mut s);
                m.insert(secret.into(), s);
            }
        }
    }

    pub fn forget(&self, secret: &str) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(secret);
    }
}

struct SecretStatesCollector(&'static SecretStates);

fn gauge(secret: &str, v: f64) -> proto::Metric {
    gauge_with(secret, None, v)
}

fn gauge_with(secret: &str, status: Option<&str>, v: f64) -> proto::Metric {
    let mut l = proto::LabelPair::default();
    l.set_name("secret".into());
    l.set_value(secret.into());
    let mut labels = vec![l];
    if let Some(st) = status {
        let mut l = proto::LabelPair::default();
        l.set_name("status".into());
        l.set_value(st.into());
        labels.push(l);
    }
    let mut g = proto::Gauge::default();
    g.set_value(v);
    let mut m = proto::Metric::default();
    m.set_label(labels);
    m.set_gauge(g);
    m
}

impl Collector for SecretStatesCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.0.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let map = self.0.map.lock().unwrap_or_else(|e| e.into_inner());
        let mut names: Vec<&Box<str>> = map.keys().collect();
        names.sort();
        let mut families: Vec<Vec<proto::Metric>> = vec![Vec::new(); STATE_FAMILIES.len()];
        for n in names {
            let s = &map[n];
            if s.next_due > 0.0 {
                families[0].push(gauge(n, s.next_due));
            }
            if s.last_success > 0.0 {
                families[1].push(gauge(n, s.last_success));
            }
            families[2].push(gauge(n, f64::from(u8::from(s.failing))));
            if s.failures > 0 {
                families[3].push(gauge(n, f64::from(s.failures)));
            }
            if s.in_progress {
                families[4].push(gauge(n, 1.0));
                families[5].push(gauge(n, s.started));
            }
            if let Some(r) = s.readable {
                families[6].push(gauge(n, f64::from(u8::from(r))));
            }
            if s.verified > 0.0 {
                families[7].push(gauge(n, s.verified));
            }
            families[8].push(gauge(n, s.every));
            families[9].push(gauge_with(n, Some(s.status.label()), 1.0));
            let deadline = s.deadline();
            if deadline > 0.0 {
                families[10].push(gauge(n, deadline));
            }
            families[11].push(gauge(n, f64::from(u8::from(s.gave_up))));
        }
        STATE_FAMILIES
            .iter()
            .zip(families)
            .filter(|(_, m)| !m.is_empty())
            .map(|((name, help), metrics)| {
                let mut f = MetricFamily::default();
                f.set_name((*name).into());
                f.set_help((*help).into());
                f.set_field_type(MetricType::GAUGE);
                f.set_metric(metrics);
                f
            })
            .collect()
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
        self.secrets.update(secret.as_str(), f);
    }
    fn register_secret(
        &self,
        secret: &SecretName,
        info: [String; 5],
        services: &[(String, String)],
    ) {
        Metrics::register_secret(self, secret.as_str(), info, services);
    }
    fn forget_secret(&self, secret: &SecretName) {
        Metrics::forget_secret(self, secret.as_str());
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
    fn rotation_finished(&self, secret: &SecretName, outcome: &'static str, seconds: f64) {
        self.rotations
            .with_label_values(&[secret.as_str(), outcome])
            .inc();
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
        self.redeploys
            .with_label_values(&[
                secret.as_str(),
                svc.cluster.as_str(),
                svc.service.as_str(),
                verdict,
            ])
            .inc();
    }
    fn invalid_tag(&self, secret: &SecretName, problem: &'static str) {
        self.invalid_tags
            .with_label_values(&[secret.as_str(), problem])
            .inc();
    }
    fn lease_contended(&self, secret: &SecretName) {
        self.lease_contended
            .with_label_values(&[secret.as_str()])
            .inc();
    }
    fn lease_lost(&self, secret: &SecretName) {
        self.lease_lost.with_label_values(&[secret.as_str()]).inc();
    }
}

/// The process-wide metrics as the core's sink.
pub fn telemetry() -> std::sync::Arc<dyn Telemetry> {
    struct Global;
    impl Telemetry for Global {
        fn update_secret(&self, s: &SecretName, f: &mut dyn FnMut(&mut SecretState)) {
            get().update_secret(s, f)
        }
        fn register_secret(&self, s: &SecretName, i: [String; 5], v: &[(String, String)]) {
            Telemetry::register_secret(get(), s, i, v)
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
        Telemetry::register_secret(&m, &name("idle"), Default::default(), &[]);
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
