//! Every metric the daemon exports, defined in one place. Label sets are bounded: secret
//! names and services come from the configuration, outcomes and operations are fixed lists.

use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};
use std::sync::OnceLock;

pub struct Metrics {
    pub registry: Registry,
    pub rotations: IntCounterVec,
    pub rotation_duration: HistogramVec,
    pub last_success: GaugeVec,
    pub next_due: GaugeVec,
    pub consecutive_failures: IntGaugeVec,
    pub failing: IntGaugeVec,
    pub in_progress: IntGaugeVec,
    pub started: GaugeVec,
    pub in_progress_total: IntGauge,
    pub redeploys: IntCounterVec,
    pub wait_duration: HistogramVec,
    pub aws_calls: IntCounterVec,
    pub reload_ok: IntGauge,
    pub reload_ok_time: Gauge,
    pub secrets_configured: IntGauge,
    pub ready: IntGauge,
    pub build_info: IntGaugeVec,
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
        let m = Self {
            rotations: reg(&r, IntCounterVec::new(Opts::new("rotations_total", "Rotations finished, by secret and outcome (success, failed, rolled_back, stalled)."), &["secret", "outcome"]).unwrap()),
            rotation_duration: reg(&r, HistogramVec::new(HistogramOpts::new("rotation_duration_seconds", "Time from the start of a rotation to its verdict.").buckets(buckets.clone()), &["outcome"]).unwrap()),
            last_success: reg(&r, GaugeVec::new(Opts::new("last_success_timestamp_seconds", "When the secret last rotated successfully (Unix time; 0 if unknown)."), &["secret"]).unwrap()),
            next_due: reg(&r, GaugeVec::new(Opts::new("next_due_timestamp_seconds", "When the secret is due (Unix time). Does not move while rotations fail, so now > next_due means overdue."), &["secret"]).unwrap()),
            consecutive_failures: reg(&r, IntGaugeVec::new(Opts::new("consecutive_failures", "Failed attempts in a row since the last success."), &["secret"]).unwrap()),
            failing: reg(&r, IntGaugeVec::new(Opts::new("rotation_failing", "1 when the last rotation attempt of the secret failed."), &["secret"]).unwrap()),
            in_progress: reg(&r, IntGaugeVec::new(Opts::new("rotation_in_progress", "1 while the secret is being rotated."), &["secret"]).unwrap()),
            started: reg(&r, GaugeVec::new(Opts::new("rotation_started_timestamp_seconds", "When the current or last rotation of the secret started (Unix time)."), &["secret"]).unwrap()),
            in_progress_total: reg(&r, IntGauge::new("rotations_in_progress", "Rotations running now.").unwrap()),
            redeploys: reg(&r, IntCounterVec::new(Opts::new("ecs_redeploys_total", "Forced ECS redeployments by verdict (stable, rolled_back, stalled, missing, not_forceable, failed)."), &["cluster", "service", "outcome"]).unwrap()),
            wait_duration: reg(&r, HistogramVec::new(HistogramOpts::new("ecs_wait_duration_seconds", "Time from the forced deployment to the stability verdict.").buckets(buckets), &["outcome"]).unwrap()),
            aws_calls: reg(&r, IntCounterVec::new(Opts::new("aws_api_calls_total", "AWS API call attempts (retries included) by service, operation and outcome (ok, throttled, error)."), &["service", "operation", "outcome"]).unwrap()),
            reload_ok: reg(&r, IntGauge::new("config_last_reload_successful", "1 if the last configuration load succeeded.").unwrap()),
            reload_ok_time: reg(&r, Gauge::new("config_last_reload_success_timestamp_seconds", "When the configuration was last loaded successfully (Unix time).").unwrap()),
            secrets_configured: reg(&r, IntGauge::new("secrets_configured", "Secrets in the loaded configuration.").unwrap()),
            ready: reg(&r, IntGauge::new("ready", "1 when the configuration is loaded and the store was reached at the last check.").unwrap()),
            build_info: reg(&r, IntGaugeVec::new(Opts::new("build_info", "Build information; always 1."), &["version"]).unwrap()),
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

    /// Drops the series of a secret that is no longer configured.
    pub fn forget_secret(&self, secret: &str) {
        for v in [&self.last_success, &self.next_due, &self.started] {
            let _ = v.remove_label_values(&[secret]);
        }
        for v in [&self.consecutive_failures, &self.failing, &self.in_progress] {
            let _ = v.remove_label_values(&[secret]);
        }
    }
}

/// The process-wide metrics.
pub fn get() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(Metrics::new)
}
