//! A [`Telemetry`] sink that records what the core reports ([`Recorder`]): the per-secret
//! state the binary shows as gauges, and every counter, per secret and label. Tests of the
//! scheduler and the engine assert on it instead of on the binary's Prometheus registry
//! (whose rendering the root crate's tests check).

use crate::lock;
use rotator_core::config::{CommandConsumer, SecretConfig};
use rotator_core::ids::{SecretName, ServiceRef};
use rotator_core::telemetry::{info_labels, SecretState, Telemetry};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// What `register_secret` was told: `info` (secret id, region, account, interval, window)
/// and the (cluster, service) pairs the secret redeploys.
pub type Registration = ([String; 5], Vec<(String, String)>);

#[derive(Debug, Default)]
struct Recorded {
    /// Per secret, as `update_secret` left it (dropped by `forget_secret`).
    secrets: BTreeMap<String, SecretState>,
    /// Secrets registered and not forgotten since, with their `info` and services.
    registered: BTreeMap<String, Registration>,
    configured: usize,
    running: i64,
    due_times_pending: usize,
    /// (secret, outcome).
    finished: BTreeMap<(String, &'static str), u64>,
    /// Verdict of each service wait.
    waits: BTreeMap<&'static str, u64>,
    /// (secret, "cluster/service", verdict).
    redeploys: BTreeMap<(String, String, &'static str), u64>,
    /// (secret, "command ...", verdict).
    commands: BTreeMap<(String, String, &'static str), u64>,
    /// (secret, problem).
    invalid_tags: BTreeMap<(String, &'static str), u64>,
    lease_contended: BTreeMap<String, u64>,
    lease_lost: BTreeMap<String, u64>,
}

/// Records every measurement; a cheap handle: give [`Recorder::sink`] to the engine
/// (`Engine::with_telemetry`) and keep the handle to read it. Counters count calls since
/// the recorder was made (a forgotten secret keeps its counts; only its state and
/// registration go).
#[derive(Clone, Debug, Default)]
pub struct Recorder(Arc<Mutex<Recorded>>);

impl Recorder {
    pub fn new() -> Self {
        Self::default()
    }

    /// This recorder as the core's sink.
    pub fn sink(&self) -> Arc<dyn Telemetry> {
        Arc::new(self.clone())
    }

    /// The state of `secret` as last updated; panics (naming the secrets that have one)
    /// when the core never reported it, or it was forgotten.
    pub fn state(&self, secret: &str) -> SecretState {
        self.try_state(secret).unwrap_or_else(|| {
            panic!(
                "no state reported for secret {secret:?}; reported: {:?}",
                lock(&self.0).secrets.keys().collect::<Vec<_>>()
            )
        })
    }

    /// The state of `secret`, if the core reported one.
    pub fn try_state(&self, secret: &str) -> Option<SecretState> {
        lock(&self.0).secrets.get(secret).copied()
    }

    /// Whether `secret` is registered (and not forgotten since).
    pub fn registered(&self, secret: &str) -> bool {
        lock(&self.0).registered.contains_key(secret)
    }

    /// The `info` and services `secret` was last registered with.
    pub fn registration(&self, secret: &str) -> Option<Registration> {
        lock(&self.0).registered.get(secret).cloned()
    }

    /// The last `secrets_configured` count.
    pub fn configured(&self) -> usize {
        lock(&self.0).configured
    }

    /// Rotations running now (the sum of `rotations_running` deltas).
    pub fn running(&self) -> i64 {
        lock(&self.0).running
    }

    /// The last `due_times_pending` count.
    pub fn due_times_pending(&self) -> usize {
        lock(&self.0).due_times_pending
    }

    /// Rotations of `secret` that ended with `outcome` (`success`, `failed`, ...).
    pub fn finished(&self, secret: &str, outcome: &str) -> u64 {
        lock(&self.0)
            .finished
            .iter()
            .filter(|((s, o), _)| s == secret && *o == outcome)
            .map(|(_, n)| n)
            .sum()
    }

    /// Service waits that ended with `verdict` (`stable`, `rolled_back`, ...).
    pub fn waits(&self, verdict: &str) -> u64 {
        lock(&self.0)
            .waits
            .iter()
            .filter(|(v, _)| **v == verdict)
            .map(|(_, n)| n)
            .sum()
    }

    /// Forced redeployments of `service` (`cluster/service`) for `secret` that got
    /// `verdict`.
    pub fn redeploys(&self, secret: &str, service: &str, verdict: &str) -> u64 {
        lock(&self.0)
            .redeploys
            .iter()
            .filter(|((s, svc, v), _)| s == secret && svc == service && *v == verdict)
            .map(|(_, n)| n)
            .sum()
    }

    /// Consumer command verdicts of `consumer` (its `Display`: `command /bin/x arg`) for
    /// `secret` that were `verdict`.
    pub fn commands(&self, secret: &str, consumer: &str, verdict: &str) -> u64 {
        lock(&self.0)
            .commands
            .iter()
            .filter(|((s, c, v), _)| s == secret && c == consumer && *v == verdict)
            .map(|(_, n)| n)
            .sum()
    }

    /// Reads of `secret` whose last-rotated tag was not used, for `problem` (`future`,
    /// `unparseable`).
    pub fn invalid_tags(&self, secret: &str, problem: &str) -> u64 {
        lock(&self.0)
            .invalid_tags
            .iter()
            .filter(|((s, p), _)| s == secret && *p == problem)
            .map(|(_, n)| n)
            .sum()
    }

    pub fn lease_contended(&self, secret: &str) -> u64 {
        lock(&self.0)
            .lease_contended
            .get(secret)
            .copied()
            .unwrap_or(0)
    }

    pub fn lease_lost(&self, secret: &str) -> u64 {
        lock(&self.0).lease_lost.get(secret).copied().unwrap_or(0)
    }
}

impl Telemetry for Recorder {
    fn update_secret(&self, secret: &SecretName, f: &mut dyn FnMut(&mut SecretState)) {
        f(lock(&self.0)
            .secrets
            .entry(secret.as_str().to_owned())
            .or_default());
    }

    fn register_secret(&self, cfg: &Arc<SecretConfig>) {
        let services = cfg
            .services()
            .map(|s| (s.cluster.as_str().to_owned(), s.service.as_str().to_owned()))
            .collect();
        lock(&self.0)
            .registered
            .insert(cfg.name.as_str().to_owned(), (info_labels(cfg), services));
    }

    fn forget_secret(&self, secret: &SecretName) {
        let mut r = lock(&self.0);
        r.secrets.remove(secret.as_str());
        r.registered.remove(secret.as_str());
    }

    fn secrets_configured(&self, n: usize) {
        lock(&self.0).configured = n;
    }

    fn rotations_running(&self, delta: i64) {
        lock(&self.0).running += delta;
    }

    fn due_times_pending(&self, n: usize) {
        lock(&self.0).due_times_pending = n;
    }

    fn rotation_finished(&self, secret: &SecretName, outcome: &'static str, _seconds: f64) {
        *lock(&self.0)
            .finished
            .entry((secret.as_str().to_owned(), outcome))
            .or_default() += 1;
    }

    fn wait_finished(&self, verdict: &'static str, _seconds: f64) {
        *lock(&self.0).waits.entry(verdict).or_default() += 1;
    }

    fn redeploy_finished(&self, secret: &SecretName, service: &ServiceRef, verdict: &'static str) {
        *lock(&self.0)
            .redeploys
            .entry((secret.as_str().to_owned(), service.to_string(), verdict))
            .or_default() += 1;
    }

    fn command_finished(
        &self,
        secret: &SecretName,
        consumer: &CommandConsumer,
        verdict: &'static str,
    ) {
        *lock(&self.0)
            .commands
            .entry((secret.as_str().to_owned(), consumer.to_string(), verdict))
            .or_default() += 1;
    }

    fn invalid_tag(&self, secret: &SecretName, problem: &'static str) {
        *lock(&self.0)
            .invalid_tags
            .entry((secret.as_str().to_owned(), problem))
            .or_default() += 1;
    }

    fn lease_contended(&self, secret: &SecretName) {
        *lock(&self.0)
            .lease_contended
            .entry(secret.as_str().to_owned())
            .or_default() += 1;
    }

    fn lease_lost(&self, secret: &SecretName) {
        *lock(&self.0)
            .lease_lost
            .entry(secret.as_str().to_owned())
            .or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::svc;
    use rotator_core::telemetry::{update, Status};

    fn name(s: &str) -> SecretName {
        SecretName::from(s)
    }

    #[test]
    fn keeps_each_secrets_state_as_updated_until_it_is_forgotten() {
        let rec = Recorder::new();
        let t = rec.sink();
        assert_eq!(rec.try_state("a"), None);
        update(t.as_ref(), &name("a"), |s| {
            s.failing = true;
            s.failures = 2;
            s.readable = Some(false);
            s.status = Status::Unreadable;
        });
        update(t.as_ref(), &name("a"), |s| s.in_progress = true);
        update(t.as_ref(), &name("b"), |s| s.verified = 5.0);
        let a = rec.state("a");
        assert!(a.failing && a.in_progress);
        assert_eq!(
            (a.failures, a.readable, a.status),
            (2, Some(false), Status::Unreadable)
        );
        assert_eq!(rec.state("b").verified, 5.0);
        assert!(!rec.state("b").failing);

        let info = [
            "app/a".to_owned(),
            String::new(),
            String::new(),
            "30d".into(),
            String::new(),
        ];
        let cfg = crate::SecretBuilder::new("a", "app/a")
            .every(std::time::Duration::from_secs(30 * 86_400))
            .redeploy("prod", &["api"])
            .build();
        t.register_secret(&Arc::new(cfg));
        assert!(rec.registered("a"));
        assert_eq!(
            rec.registration("a"),
            Some((info, vec![("prod".to_owned(), "api".to_owned())]))
        );
        t.rotation_finished(&name("a"), "failed", 1.0);
        t.forget_secret(&name("a"));
        assert_eq!(rec.try_state("a"), None);
        assert!(!rec.registered("a"));
        assert_eq!(rec.finished("a", "failed"), 1, "counters stay");
        assert!(rec.try_state("b").is_some());
    }

    #[test]
    #[should_panic(expected = "no state reported for secret \"nope\"; reported: [\"a\"]")]
    fn the_state_of_a_secret_never_reported_is_a_clear_panic() {
        let rec = Recorder::new();
        update(&rec, &name("a"), |s| s.failing = true);
        rec.state("nope");
    }

    #[test]
    fn counts_every_counter_by_its_labels() {
        let rec = Recorder::new();
        let t = rec.sink();
        t.rotation_finished(&name("a"), "success", 3.0);
        t.rotation_finished(&name("a"), "success", 4.0);
        t.rotation_finished(&name("a"), "failed", 1.0);
        t.rotation_finished(&name("b"), "failed", 1.0);
        assert_eq!(rec.finished("a", "success"), 2);
        assert_eq!(rec.finished("a", "failed"), 1);
        assert_eq!(rec.finished("a", "stalled"), 0);
        assert_eq!(rec.finished("c", "success"), 0);

        t.invalid_tag(&name("a"), "future");
        t.invalid_tag(&name("a"), "future");
        t.invalid_tag(&name("b"), "unparseable");
        assert_eq!(rec.invalid_tags("a", "future"), 2);
        assert_eq!(rec.invalid_tags("a", "unparseable"), 0);
        assert_eq!(rec.invalid_tags("b", "unparseable"), 1);

        t.wait_finished("stable", 60.0);
        t.redeploy_finished(&name("a"), &svc("prod", "api"), "stable");
        t.redeploy_finished(&name("a"), &svc("prod", "api"), "rolled_back");
        assert_eq!(rec.waits("stable"), 1);
        assert_eq!(rec.redeploys("a", "prod/api", "stable"), 1);
        assert_eq!(rec.redeploys("a", "prod/api", "rolled_back"), 1);
        assert_eq!(rec.redeploys("a", "prod/pdf", "stable"), 0);

        t.lease_contended(&name("a"));
        t.lease_lost(&name("b"));
        assert_eq!((rec.lease_contended("a"), rec.lease_contended("b")), (1, 0));
        assert_eq!((rec.lease_lost("a"), rec.lease_lost("b")), (0, 1));

        t.rotations_running(1);
        t.rotations_running(1);
        t.rotations_running(-1);
        t.secrets_configured(3);
        t.due_times_pending(2);
        assert_eq!(
            (rec.running(), rec.configured(), rec.due_times_pending()),
            (1, 3, 2)
        );
    }
}
