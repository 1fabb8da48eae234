//! The per-secret series: one compact record per secret, written as Prometheus text at
//! scrape time, a chunk of secrets at a time.
//!
//! A labelled child of the `prometheus` crate keeps its own copy of every label string
//! (~0.4 KiB each); with ~17 series per secret that was most of the daemon's memory at
//! 100,000 secrets (heap profile in BENCHMARKS.md). Here a secret costs its record: the
//! shared configuration, the gauges' state and small counters.

use super::{COMMAND_OUTCOMES, REDEPLOY_OUTCOMES, ROTATION_OUTCOMES};
use rotator_core::config::{CommandConsumer, SecretConfig};
use rotator_core::ids::{SecretName, ServiceRef};
use rotator_core::telemetry::{info_labels, store_label, SecretState, Status};
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex, MutexGuard};

/// Secrets written per chunk of a scrape at most (the lock is held for one chunk).
const CHUNK: usize = 1000;
/// A chunk ends once its text is this long, however many consumers its secrets have
/// (`ecs_redeploys_total` writes six lines per consumer).
const CHUNK_BYTES: usize = 64 * 1024;

#[derive(Debug, Default)]
struct Record {
    /// Set once the secret is registered (its info labels, consumers and interval come
    /// from it).
    cfg: Option<Arc<SecretConfig>>,
    /// None while every counter is 0 and no consumer is configured: most secrets, most of
    /// the time (a pointer instead of ~60 bytes each).
    counts: Option<Box<Counts>>,
    gauges: Gauges,
}

/// A [`SecretState`] in 40 bytes instead of 56 (100,000 of them): the flags in one byte,
/// the interval read from the configuration.
#[derive(Debug, Default)]
struct Gauges {
    next_due: f64,
    last_success: f64,
    started: f64,
    verified: f64,
    failures: u32,
    status: Status,
    flags: u8,
}

// One per secret, in a hash map at 100,000 secrets: 56 bytes (+ its 16-byte key).
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Record>() <= 56);

/// The scheduler reported a state (a counter alone, e.g. from a rotation that ended after
/// its secret was removed, shows no state gauges).
const HAS_STATE: u8 = 1;
const FAILING: u8 = 1 << 1;
const IN_PROGRESS: u8 = 1 << 2;
const READ: u8 = 1 << 3;
const READABLE: u8 = 1 << 4;
const GAVE_UP: u8 = 1 << 5;

#[derive(Debug, Default)]
struct Counts {
    /// By [`ROTATION_OUTCOMES`].
    rotations: [u32; 4],
    /// future, unparseable.
    invalid_tags: [u32; 2],
    lease_contended: u32,
    lease_lost: u32,
    /// Per consumer, by [`REDEPLOY_OUTCOMES`]: the configured ones from 0, a consumer
    /// dropped by a reload while its rotation ran once it is counted.
    redeploys: Vec<(ServiceRef, [u32; 6])>,
    /// Per consumer command (its `Display`: `command /usr/bin/kubectl ...`), by
    /// [`COMMAND_OUTCOMES`], kept like `redeploys`.
    commands: Vec<(String, [u32; 3])>,
}

/// What a record without counts reads as.
static ZERO: Counts = Counts {
    rotations: [0; 4],
    invalid_tags: [0; 2],
    lease_contended: 0,
    lease_lost: 0,
    redeploys: Vec::new(),
    commands: Vec::new(),
};

impl Record {
    fn has_state(&self) -> bool {
        self.gauges.flags & HAS_STATE != 0
    }

    fn state(&self) -> SecretState {
        let g = &self.gauges;
        let on = |f: u8| g.flags & f != 0;
        SecretState {
            next_due: g.next_due,
            last_success: g.last_success,
            failures: g.failures,
            failing: on(FAILING),
            in_progress: on(IN_PROGRESS),
            started: g.started,
            readable: on(READ).then_some(on(READABLE)),
            verified: g.verified,
            every: self
                .cfg
                .as_ref()
                .map_or(0.0, |c| c.every.get().as_secs_f64()),
            status: g.status,
            gave_up: on(GAVE_UP),
        }
    }

    fn set_state(&mut self, s: &SecretState) {
        let flag = |on: bool, f: u8| if on { f } else { 0 };
        self.gauges = Gauges {
            next_due: s.next_due,
            last_success: s.last_success,
            started: s.started,
            verified: s.verified,
            failures: s.failures,
            status: s.status,
            flags: HAS_STATE
                | flag(s.failing, FAILING)
                | flag(s.in_progress, IN_PROGRESS)
                | flag(s.readable.is_some(), READ)
                | flag(s.readable == Some(true), READABLE)
                | flag(s.gave_up, GAVE_UP),
        };
    }

    fn counts(&self) -> &Counts {
        self.counts.as_deref().unwrap_or(&ZERO)
    }

    fn counts_mut(&mut self) -> &mut Counts {
        self.counts.get_or_insert_with(Box::default)
    }
}

/// Every per-secret series of the daemon.
#[derive(Debug, Default)]
pub struct Secrets {
    map: Mutex<HashMap<SecretName, Record>>,
}

fn bump(n: &mut u32) {
    *n = n.saturating_add(1);
}

impl Secrets {
    fn lock(&self) -> MutexGuard<'_, HashMap<SecretName, Record>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with(&self, secret: &SecretName, f: impl FnOnce(&mut Record)) {
        let mut m = self.lock();
        match m.get_mut(secret) {
            Some(r) => f(r),
            None => f(m.entry(secret.clone()).or_default()),
        }
    }

    pub fn update(&self, secret: &SecretName, f: impl FnOnce(&mut SecretState)) {
        self.with(secret, |r| {
            let mut s = r.state();
            f(&mut s);
            r.set_state(&s);
        });
    }

    /// Keeps `cfg` for the info labels; consumers no longer listed are dropped, new ones
    /// start at 0 (so that `increase()` sees their first verdict).
    pub fn register(&self, cfg: &Arc<SecretConfig>) {
        self.with(&cfg.name, |r| {
            let c = r.counts();
            if cfg.redeploy.is_empty() && c.redeploys.is_empty() && c.commands.is_empty() {
                r.cfg = Some(cfg.clone());
                return;
            }
            let counts = r.counts_mut();
            let old = std::mem::take(&mut counts.redeploys);
            counts.redeploys = cfg
                .services()
                .map(|svc| {
                    let counts = old
                        .iter()
                        .find(|(s, _)| s == svc)
                        .map_or([0; 6], |(_, c)| *c);
                    (svc.clone(), counts)
                })
                .collect();
            let old = std::mem::take(&mut counts.commands);
            counts.commands = cfg
                .commands()
                .map(|c| {
                    let label = c.to_string();
                    let counts = old
                        .iter()
                        .find(|(l, _)| *l == label)
                        .map_or([0; 3], |(_, c)| *c);
                    (label, counts)
                })
                .collect();
            r.cfg = Some(cfg.clone());
        });
    }

    pub fn forget(&self, secret: &SecretName) {
        self.lock().remove(secret);
    }

    pub fn rotation_finished(&self, secret: &SecretName, outcome: &str) {
        if let Some(i) = ROTATION_OUTCOMES.iter().position(|o| *o == outcome) {
            self.with(secret, |r| bump(&mut r.counts_mut().rotations[i]));
        }
    }

    pub fn redeploy_finished(&self, secret: &SecretName, svc: &ServiceRef, verdict: &str) {
        let Some(i) = REDEPLOY_OUTCOMES.iter().position(|o| *o == verdict) else {
            return;
        };
        self.with(secret, |r| {
            let redeploys = &mut r.counts_mut().redeploys;
            match redeploys.iter_mut().find(|(s, _)| s == svc) {
                Some((_, c)) => bump(&mut c[i]),
                None => {
                    let mut c = [0; 6];
                    c[i] = 1;
                    redeploys.push((svc.clone(), c));
                }
            }
        });
    }

    pub fn command_finished(&self, secret: &SecretName, c: &CommandConsumer, verdict: &str) {
        let Some(i) = COMMAND_OUTCOMES.iter().position(|o| *o == verdict) else {
            return;
        };
        let label = c.to_string();
        self.with(secret, |r| {
            let commands = &mut r.counts_mut().commands;
            match commands.iter_mut().find(|(l, _)| *l == label) {
                Some((_, c)) => bump(&mut c[i]),
                None => {
                    let mut c = [0; 3];
                    c[i] = 1;
                    commands.push((label, c));
                }
            }
        });
    }

    pub fn invalid_tag(&self, secret: &SecretName, problem: &str) {
        let i = usize::from(problem != "future");
        self.with(secret, |r| bump(&mut r.counts_mut().invalid_tags[i]));
    }

    pub fn lease_contended(&self, secret: &SecretName) {
        self.with(secret, |r| bump(&mut r.counts_mut().lease_contended));
    }

    pub fn lease_lost(&self, secret: &SecretName) {
        self.with(secret, |r| bump(&mut r.counts_mut().lease_lost));
    }

    /// The text exposition of every per-secret family, in chunks (see [`Scrape`]).
    pub fn scrape(&'static self, prefix: &'static str) -> Scrape {
        let mut names: Vec<SecretName> = self.lock().keys().cloned().collect();
        names.sort_unstable();
        Scrape {
            secrets: self,
            prefix,
            names,
            family: 0,
            next: 0,
            started: false,
        }
    }
}

/// One per-secret family: how to write its series for one secret.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    write: fn(&mut Lines<'_>, &SecretName, &Record, &SecretState),
}

/// Writes samples of one family, its HELP/TYPE header before the first.
struct Lines<'a> {
    out: &'a mut String,
    prefix: &'a str,
    family: &'a Family,
    header: &'a mut bool,
}

impl Lines<'_> {
    fn sample(&mut self, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        if !*self.header {
            *self.header = true;
            let name = self.family.name;
            let _ = writeln!(
                self.out,
                "# HELP {}{name} {}",
                self.prefix,
                escape_help(self.family.help)
            );
            let _ = writeln!(
                self.out,
                "# TYPE {}{name} {}",
                self.prefix, self.family.kind
            );
        }
        let _ = write!(self.out, "{}{}", self.prefix, self.family.name);
        // Labels in name order, as the registry prints them (and tests read them).
        for (i, (k, v)) in labels.iter().enumerate() {
            let sep = if i == 0 { '{' } else { ',' };
            let _ = write!(self.out, "{sep}{k}=\"");
            escape_value(self.out, v);
            self.out.push('"');
        }
        if !labels.is_empty() {
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    fn gauge(&mut self, secret: &SecretName, v: f64) {
        self.sample(&[("secret", secret.as_str())], v);
    }
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn flag(b: bool) -> f64 {
    f64::from(u8::from(b))
}

/// The first families of [`FAMILIES`]: the gauges of [`SecretState`].
const STATE_FAMILIES: usize = 12;

const FAMILIES: &[Family] = &[
    Family { name: "next_due_timestamp_seconds", kind: "gauge", help: "When the secret is due (Unix time). Does not move while rotations fail, so now > next_due means overdue.",
        write: |l, n, _, s| if s.next_due > 0.0 { l.gauge(n, s.next_due) } },
    Family { name: "last_success_timestamp_seconds", kind: "gauge", help: "When the secret last rotated successfully (Unix time; absent while unknown).",
        write: |l, n, _, s| if s.last_success > 0.0 { l.gauge(n, s.last_success) } },
    Family { name: "rotation_failing", kind: "gauge", help: "1 when the last rotation attempt of the secret failed.",
        write: |l, n, _, s| l.gauge(n, flag(s.failing)) },
    Family { name: "consecutive_failures", kind: "gauge", help: "Failed attempts in a row since the last success (only secrets with failures).",
        write: |l, n, _, s| if s.failures > 0 { l.gauge(n, f64::from(s.failures)) } },
    Family { name: "rotation_in_progress", kind: "gauge", help: "1 while the secret is being rotated (only secrets being rotated).",
        write: |l, n, _, s| if s.in_progress { l.gauge(n, 1.0) } },
    Family { name: "rotation_started_timestamp_seconds", kind: "gauge", help: "When the rotation in progress started (Unix time; only secrets being rotated).",
        write: |l, n, _, s| if s.in_progress { l.gauge(n, s.started) } },
    Family { name: "secret_readable", kind: "gauge", help: "1 if the secret could be read at the last attempt, 0 if not (the reason is logged; reads are retried with backoff).",
        write: |l, n, _, s| if let Some(ok) = s.readable { l.gauge(n, flag(ok)) } },
    Family { name: "last_verified_rotation_timestamp_seconds", kind: "gauge", help: "The last rotation observed by this daemon or confirmed by a valid secret-rotator:last-rotated tag (Unix time; absent if none).",
        write: |l, n, _, s| if s.verified > 0.0 { l.gauge(n, s.verified) } },
    Family { name: "rotation_interval_seconds", kind: "gauge", help: "The configured interval (every) of the secret.",
        write: |l, n, r, s| if r.cfg.is_some() { l.gauge(n, s.every) } },
    Family { name: "secret_status", kind: "gauge", help: "1 for the secret's current status: loading, ok, due, overdue, unfinished, redeploy_pending, failing, unreadable, outside_window.",
        write: |l, n, _, s| l.sample(&[("secret", n.as_str()), ("status", s.status.label())], 1) },
    Family { name: "rotation_deadline_timestamp_seconds", kind: "gauge", help: "The latest acceptable rotation time (Unix time): last verified rotation + every + 1d grace, or next due + 1d grace when no rotation is verified; absent until known. time() past it means not rotated in time.",
        // Needs the interval, from the configuration.
        write: |l, n, r, s| { let d = s.deadline(); if r.cfg.is_some() && d > 0.0 { l.gauge(n, d) } } },
    Family { name: "retries_exhausted", kind: "gauge", help: "1 when the scheduler gave up on the secret after max_attempts failed attempts (until a reload or a manual rotate).",
        write: |l, n, _, s| l.gauge(n, flag(s.gave_up)) },
    Family { name: "rotations_total", kind: "counter", help: "Rotations finished, by secret and outcome (success, failed, rolled_back, stalled).",
        write: |l, n, r, _| for (o, c) in ROTATION_OUTCOMES.iter().zip(r.counts().rotations) {
            // Registered secrets have every outcome from 0 (alerts use increase()).
            if r.cfg.is_some() || c > 0 { l.sample(&[("outcome", o), ("secret", n.as_str())], c) }
        } },
    Family { name: "secret_info", kind: "gauge", help: "Configuration of a secret; always 1 (join on secret). Empty region/account: the daemon's default. target: the target kind (none, postgres, mysql, redis, ...). store: aws-secretsmanager, alibaba-kms or ibm-secrets-manager.",
        write: |l, n, r, _| if let Some(cfg) = &r.cfg {
            let [id, region, account, every, window] = info_labels(cfg);
            l.sample(&[("account", &account), ("every", &every), ("region", &region), ("secret", n.as_str()), ("secret_id", &id), ("store", store_label(cfg)), ("target", cfg.target.kind()), ("window", &window)], 1)
        } },
    Family { name: "ecs_redeploys_total", kind: "counter", help: "Forced ECS redeployments by verdict (stable, rolled_back, stalled, missing, not_forceable, failed).",
        write: |l, n, r, _| for (svc, counts) in &r.counts().redeploys {
            for (o, c) in REDEPLOY_OUTCOMES.iter().zip(counts) {
                l.sample(&[("cluster", svc.cluster.as_str()), ("outcome", o), ("secret", n.as_str()), ("service", svc.service.as_str())], c);
            }
        } },
    Family { name: "consumer_commands_total", kind: "counter", help: "Consumers restarted by command (redeploy = [{ command = [...] }]) by verdict (ok, failed, timed_out); consumer is the command line.",
        write: |l, n, r, _| for (consumer, counts) in &r.counts().commands {
            for (o, c) in COMMAND_OUTCOMES.iter().zip(counts) {
                l.sample(&[("consumer", consumer.as_str()), ("outcome", o), ("secret", n.as_str())], c);
            }
        } },
    Family { name: "invalid_tags_total", kind: "counter", help: "Reads of a secret whose secret-rotator:last-rotated tag was not used: in the future (the secret is then due now) or unparseable (treated as absent).",
        write: |l, n, r, _| for (reason, c) in ["future", "unparseable"].iter().zip(r.counts().invalid_tags) {
            if c > 0 { l.sample(&[("reason", reason), ("secret", n.as_str())], c) }
        } },
    Family { name: "lease_contended_total", kind: "counter", help: "Rotation launches skipped because another replica held the secret's lease ([ha]); retried shortly.",
        write: |l, n, r, _| { let c = r.counts().lease_contended; if c > 0 { l.sample(&[("secret", n.as_str())], c) } } },
    Family { name: "lease_lost_total", kind: "counter", help: "Rotations stopped because their lease expired or was taken over by another replica ([ha]); counted as failed.",
        write: |l, n, r, _| { let c = r.counts().lease_lost; if c > 0 { l.sample(&[("secret", n.as_str())], c) } } },
];

/// The per-secret families as text, [`CHUNK`] secrets (or [`CHUNK_BYTES`]) of one family
/// per item: a scrape at 100,000 secrets is ~100 MB of text, streamed rather than held,
/// and the lock the scheduler updates through is never held for a whole scrape. So one
/// scrape is not one instant: a secret's families may come from moments apart (each
/// alert reads one family, or two that change together only while a rotation runs).
/// Secrets added after the scrape started are left for the next; removed ones skipped.
pub struct Scrape {
    secrets: &'static Secrets,
    prefix: &'static str,
    names: Vec<SecretName>,
    family: usize,
    next: usize,
    /// The current family's header was written.
    started: bool,
}

impl Iterator for Scrape {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        let mut out = String::new();
        while out.is_empty() {
            let family = FAMILIES.get(self.family)?;
            let end = (self.next + CHUNK).min(self.names.len());
            {
                let map = self.secrets.lock();
                let mut lines = Lines {
                    out: &mut out,
                    prefix: self.prefix,
                    family,
                    header: &mut self.started,
                };
                // The first families are the state gauges (see FAMILIES).
                let state = self.family < STATE_FAMILIES;
                while self.next < end && lines.out.len() < CHUNK_BYTES {
                    let name = &self.names[self.next];
                    if let Some(r) = map.get(name).filter(|r| r.has_state() || !state) {
                        (family.write)(&mut lines, name, r, &r.state());
                    }
                    self.next += 1;
                }
            }
            if self.next >= self.names.len() {
                self.family += 1;
                self.next = 0;
                self.started = false;
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rotator_test_kit::{svc, SecretBuilder};

    fn secrets() -> &'static Secrets {
        Box::leak(Box::default())
    }

    fn name(s: &str) -> SecretName {
        SecretName::from(s)
    }

    /// The compact record gives back every state the scheduler wrote, the interval being
    /// the configuration's.
    #[test]
    fn a_record_reads_back_the_state_it_was_given() {
        use proptest::prelude::*;
        let statuses = [
            Status::Loading,
            Status::Ok,
            Status::Due,
            Status::Overdue,
            Status::Unfinished,
            Status::RedeployPending,
            Status::Failing,
            Status::Unreadable,
            Status::OutsideWindow,
        ];
        let cfg = Arc::new(SecretBuilder::new("db", "app/db").build());
        proptest!(|(ts in proptest::array::uniform4(0.0f64..4e9), failures: u32,
                    flags in proptest::array::uniform4(any::<bool>()),
                    readable in proptest::option::of(any::<bool>()), st in 0..9usize)| {
            let want = SecretState {
                next_due: ts[0],
                last_success: ts[1],
                failures,
                failing: flags[0],
                in_progress: flags[1],
                started: ts[2],
                readable,
                verified: ts[3],
                every: cfg.every.get().as_secs_f64(),
                status: statuses[st],
                gave_up: flags[2],
            };
            let s = secrets();
            s.register(&cfg);
            s.update(&cfg.name, |x| *x = want);
            let got = s.lock().get(&cfg.name).map(Record::state);
            prop_assert_eq!(got, Some(want));
        });
    }

    /// Every family is one block (the text format requires it) however many chunks the
    /// secrets take, and each secret's series appear once, in name order.
    #[test]
    fn a_scrape_in_chunks_keeps_each_family_in_one_block() {
        let s = secrets();
        for i in 0..(2 * CHUNK + 7) {
            let cfg = SecretBuilder::new(&format!("s{i:05}"), "app/x").build();
            s.update(&cfg.name, |st| st.every = 1.0);
            s.register(&Arc::new(cfg));
        }
        let chunks: Vec<String> = s.scrape("p_").collect();
        let text = chunks.concat();
        let families = text.matches("# TYPE ").count();
        assert!(chunks.len() > families, "{} chunks", chunks.len());
        for f in ["rotation_failing", "rotations_total", "secret_info"] {
            let headers = text.matches(&format!("# TYPE p_{f} ")).count();
            assert_eq!(headers, 1, "{f}");
            let lines: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with(&format!("p_{f}{{")))
                .collect();
            let first = text.find(lines[0]).unwrap();
            let last = text.find(lines[lines.len() - 1]).unwrap();
            let block = &text[first..last];
            assert!(!block.contains("# TYPE"), "{f} is split");
        }
        let failing: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("p_rotation_failing{"))
            .collect();
        assert_eq!(failing.len(), 2 * CHUNK + 7);
        assert!(failing.windows(2).all(|w| w[0] < w[1]), "name order");
    }

    #[test]
    fn consumers_count_per_verdict_and_a_reload_keeps_only_the_listed_ones() {
        let s = secrets();
        let cfg = SecretBuilder::new(
            "db",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db",
        )
        .redeploy("prod", &["api", "worker"])
        .build();
        s.register(&Arc::new(cfg));
        s.redeploy_finished(&name("db"), &svc("prod", "api"), "rolled_back");
        s.redeploy_finished(&name("db"), &svc("prod", "api"), "rolled_back");
        s.rotation_finished(&name("db"), "rolled_back");
        let text: String = s.scrape("p_").collect();
        let line = |prefix: &str| {
            text.lines()
                .find(|l| l.starts_with(prefix))
                .map(|l| l.rsplit(' ').next().unwrap().to_owned())
        };
        assert_eq!(line("p_ecs_redeploys_total{cluster=\"prod\",outcome=\"rolled_back\",secret=\"db\",service=\"api\"}").as_deref(), Some("2"));
        assert_eq!(line("p_ecs_redeploys_total{cluster=\"prod\",outcome=\"stable\",secret=\"db\",service=\"worker\"}").as_deref(), Some("0"));
        assert_eq!(
            line("p_rotations_total{outcome=\"rolled_back\",secret=\"db\"}").as_deref(),
            Some("1")
        );
        assert_eq!(
            line("p_rotations_total{outcome=\"success\",secret=\"db\"}").as_deref(),
            Some("0")
        );
        assert!(text.contains("p_secret_info{account=\"123456789012\",every=\"30d\",region=\"eu-west-1\",secret=\"db\",secret_id=\"arn:aws:secretsmanager:eu-west-1:123456789012:secret:db\",store=\"aws-secretsmanager\",target=\"none\",window=\"\"} 1"), "{text}");
        // A reload without worker: its series go; api keeps its counts.
        let cfg = SecretBuilder::new("db", "app/db")
            .redeploy("prod", &["api"])
            .build();
        s.register(&Arc::new(cfg));
        let text: String = s.scrape("p_").collect();
        assert!(!text.contains("service=\"worker\""), "{text}");
        assert!(text.contains("p_ecs_redeploys_total{cluster=\"prod\",outcome=\"rolled_back\",secret=\"db\",service=\"api\"} 2"));
        assert_eq!(text.matches("p_secret_info{").count(), 1);
        s.forget(&name("db"));
        assert_eq!(s.scrape("p_").collect::<String>(), "");
    }

    /// A secret in another vendor's store says which, with that store's region and the
    /// RAM role's account (issue 17).
    #[test]
    fn secret_info_names_the_store() {
        let s = secrets();
        let mut cfg = SecretBuilder::new("cn-db", "prod/api-db").build();
        cfg.secret.store = crate::ids::StoreRoute::new(crate::ids::StoreParts {
            kind: crate::ids::StoreKind::Alibaba,
            region: Some("cn-hangzhou".into()),
            endpoint: None,
            role_arn: Some("acs:ram::1234567890123456:role/rotator".into()),
        });
        s.register(&Arc::new(cfg));
        let text: String = s.scrape("p_").collect();
        assert!(text.contains("p_secret_info{account=\"1234567890123456\",every=\"30d\",region=\"cn-hangzhou\",secret=\"cn-db\",secret_id=\"prod/api-db\",store=\"alibaba-kms\",target=\"none\",window=\"\"} 1"), "{text}");
    }

    #[test]
    fn consumer_commands_count_per_verdict_beside_the_ecs_ones() {
        let s = secrets();
        let restart = rotator_test_kit::command(
            &[
                "/usr/local/bin/kubectl",
                "rollout",
                "restart",
                "deployment/api",
            ],
            None,
            std::time::Duration::from_secs(60),
        );
        let cfg = SecretBuilder::new("db", "app/db")
            .redeploy("prod", &["api"])
            .command(restart.clone())
            .build();
        s.register(&Arc::new(cfg));
        s.command_finished(&name("db"), &restart, "failed");
        let text: String = s.scrape("p_").collect();
        let series = "p_consumer_commands_total{consumer=\"command /usr/local/bin/kubectl rollout restart deployment/api\"";
        assert!(
            text.contains(&format!("{series},outcome=\"failed\",secret=\"db\"}} 1")),
            "{text}"
        );
        for o in ["ok", "timed_out"] {
            assert!(
                text.contains(&format!("{series},outcome=\"{o}\",secret=\"db\"}} 0")),
                "{text}"
            );
        }
        assert!(text.contains("p_ecs_redeploys_total{cluster=\"prod\",outcome=\"stable\",secret=\"db\",service=\"api\"} 0"));
        // A reload without the command drops its series.
        let cfg = SecretBuilder::new("db", "app/db")
            .redeploy("prod", &["api"])
            .build();
        s.register(&Arc::new(cfg));
        let text: String = s.scrape("p_").collect();
        assert!(!text.contains("p_consumer_commands_total{"), "{text}");
    }

    /// Many consumers per secret: a chunk still stays near CHUNK_BYTES.
    #[test]
    fn a_chunk_is_bounded_in_bytes_too() {
        let s = secrets();
        let services: Vec<String> = (0..20).map(|i| format!("service-{i}")).collect();
        let services: Vec<&str> = services.iter().map(String::as_str).collect();
        for i in 0..300 {
            let cfg = SecretBuilder::new(&format!("s{i:03}"), "app/x")
                .redeploy("cluster", &services)
                .build();
            s.register(&Arc::new(cfg));
        }
        let chunks: Vec<String> = s.scrape("p_").collect();
        let redeploys = chunks.concat().matches("p_ecs_redeploys_total{").count();
        assert_eq!(redeploys, 300 * 20 * 6);
        // One secret's lines may go past the bound, never more.
        let most = chunks.iter().map(String::len).max().unwrap_or(0);
        assert!(most < CHUNK_BYTES + 20 * 6 * 200, "{most} bytes");
    }

    #[test]
    fn a_counter_alone_shows_no_state_gauges() {
        let s = secrets();
        s.rotation_finished(&name("gone"), "failed");
        let text: String = s.scrape("p_").collect();
        assert!(text.contains("p_rotations_total{outcome=\"failed\",secret=\"gone\"} 1"));
        assert!(!text.contains("rotation_failing"), "{text}");
        s.update(&name("gone"), |st| st.failing = true);
        let text: String = s.scrape("p_").collect();
        assert!(
            text.contains("p_rotation_failing{secret=\"gone\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let s = secrets();
        s.lease_lost(&name("a\"b\\c\nd"));
        let text: String = s.scrape("p_").collect();
        assert!(
            text.contains("p_lease_lost_total{secret=\"a\\\"b\\\\c\\nd\"} 1"),
            "{text}"
        );
    }
}
