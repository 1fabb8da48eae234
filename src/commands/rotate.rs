//! `rotate NAME [--dry-run] [--json]`: one rotation now, progress on stderr.
//!
//! Text mode prints one line per step and per change of a service, a heartbeat during the
//! ECS wait, and on failure what state the secret is in and what to run next. With
//! `--log-format json` the same progress is JSON log events (nothing else on stderr) and
//! the result is JSON on stdout.

use crate::cli::LogFormat;
use crate::clock::SystemClock;
use crate::config::{Config, SecretConfig};
use crate::ids::{SecretName, ServiceRef, VersionId};
use crate::rotation::deploy::Judgement;
use crate::rotation::store::{SecretStore, AWSCURRENT, AWSPENDING, AWSPREVIOUS};
use crate::rotation::wait::ServiceVerdict;
use crate::rotation::{Observer, Outcome, RotateOptions, RotationError, Step};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A line at least this often while waiting on ECS, so a quiet terminal is not mistaken
/// for a hung one.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// What one service is doing, as last reported.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    what: &'static str,
    running: i32,
    desired: i32,
}

#[derive(Default)]
struct State {
    step: Option<Step>,
    wait_started: Option<tokio::time::Instant>,
    services: BTreeMap<ServiceRef, Seen>,
}

/// Prints each step, each service's progress when it changes, and a heartbeat.
struct Progress {
    secret: SecretName,
    json: bool,
    state: Mutex<State>,
}

fn judgement_word(j: &Judgement) -> &'static str {
    match j {
        Judgement::Stable => "stable",
        Judgement::Starting => "starting",
        Judgement::Draining => "draining",
        Judgement::RolledBack(_) => "rolled_back",
        Judgement::Missing(_) => "missing",
        Judgement::Superseded(_) => "superseded",
    }
}

impl Progress {
    fn new(secret: SecretName, json: bool) -> Self {
        Self {
            secret,
            json,
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `prod/api 2/4 starting, prod/front stable`: one count per service.
    fn counts(services: &BTreeMap<ServiceRef, Seen>) -> String {
        services
            .iter()
            .map(|(svc, s)| match s.what {
                "stable" => format!("{svc} stable"),
                w => format!("{svc} {}/{} {w}", s.running, s.desired),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn heartbeat(&self) {
        let st = self.lock();
        if st.step != Some(Step::Wait) {
            return;
        }
        let waited = st.wait_started.map(|t| t.elapsed()).unwrap_or_default();
        let stable = st.services.values().filter(|s| s.what == "stable").count();
        if self.json {
            tracing::info!(
                secret = %self.secret,
                step = "wait",
                waited_seconds = waited.as_secs(),
                services_stable = stable,
                services_seen = st.services.len(),
                services = %Self::counts(&st.services),
                "still waiting for the new deployments"
            );
        } else {
            let counts = if st.services.is_empty() {
                "no service reported yet".to_owned()
            } else {
                Self::counts(&st.services)
            };
            eprintln!(
                "    ... waiting {}: {counts}",
                crate::config::duration::format(Duration::from_secs(waited.as_secs()))
            );
        }
    }
}

impl Observer for Progress {
    fn step(&self, secret: &SecretName, step: Step, detail: &str) {
        {
            let mut st = self.lock();
            st.step = Some(step);
            if step == Step::Wait {
                st.wait_started = Some(tokio::time::Instant::now());
            }
        }
        // In JSON mode the engine's own step events (secret, step, version) are the progress.
        if !self.json {
            eprintln!("[{secret}] {step}: {detail}");
        }
    }

    fn service_progress(&self, svc: &ServiceRef, j: &Judgement, running: i32, desired: i32) {
        let seen = Seen {
            what: judgement_word(j),
            running,
            desired,
        };
        let mut st = self.lock();
        if st.services.get(svc) == Some(&seen) {
            return;
        }
        st.services.insert(svc.clone(), seen);
        drop(st);
        if self.json {
            tracing::info!(
                secret = %self.secret,
                step = "wait",
                cluster = %svc.cluster,
                service = %svc.service,
                state = judgement_word(j),
                running,
                desired,
                "service progress"
            );
            return;
        }
        // The reason of a rollback is printed once, in the summary at the end.
        let what = match j {
            Judgement::Stable => "stable on the new deployment".to_owned(),
            Judgement::Starting => format!("starting new tasks ({running}/{desired} running)"),
            Judgement::Draining => {
                format!("new tasks running ({running}/{desired}); old tasks draining")
            }
            Judgement::RolledBack(_) => "rolled back (reason below)".to_owned(),
            Judgement::Missing(_) => "missing (reason below)".to_owned(),
            Judgement::Superseded(d) => {
                format!("replaced by a later deployment {d}; waiting on it")
            }
        };
        eprintln!("    {svc}: {what}");
    }
}

/// What the store says after a failure: which version is current, previous, pending.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreState {
    pub current: Option<VersionId>,
    pub previous: Option<VersionId>,
    pub pending: Option<VersionId>,
}

/// A failed rotation explained for the person who has to act on it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Explanation {
    /// One line: where it failed and why.
    pub headline: String,
    /// The state the secret and its consumers are in, one fact per line.
    pub state: Vec<String>,
    /// Services that run the new value / do not.
    pub consumers_new: Vec<String>,
    pub consumers_old: BTreeMap<String, String>,
    /// Whether the previous value was revoked (`None`: the target has nothing to revoke).
    pub revoked: Option<bool>,
    /// The next command to run.
    pub next: String,
}

/// A verdict in one line, the ECS reason once (its last event often repeats it).
fn verdict_text(v: &ServiceVerdict) -> String {
    match v {
        ServiceVerdict::RolledBack { reason, events } => match events.first() {
            Some(e) if !e.contains(reason.as_str()) && !reason.contains(e.as_str()) => {
                format!("rolled back: {reason} (last event: {e})")
            }
            _ => format!("rolled back: {reason}"),
        },
        other => other.to_string(),
    }
}

/// Each consumer command's verdict (exit status, masked output) for `--json`, keyed by
/// its argv as one line.
fn consumer_commands(e: &RotationError) -> serde_json::Value {
    match e {
        RotationError::Consumers { commands, .. } if !commands.is_empty() => {
            let m: BTreeMap<String, &crate::rotation::restart::CommandVerdict> = commands
                .iter()
                .map(|(c, v)| (crate::config::consumer::argv_text(&c.command), v))
                .collect();
            serde_json::to_value(m).unwrap_or_default()
        }
        _ => serde_json::Value::Null,
    }
}

fn cmd(name: &str) -> String {
    format!("`secret-rotator rotate {name}`")
}

fn short_version(v: &VersionId) -> String {
    v.as_str().chars().take(8).collect()
}

/// The failure, the state it left and the next step, derived from where it failed (the
/// protocol's step order says what already happened) and what the store shows now.
pub fn explain(cfg: &SecretConfig, e: &RotationError, store: Option<&StoreState>) -> Explanation {
    let name = cfg.name.as_str();
    let step = e.step();
    let outcome = e.outcome().label();
    let has_revoke = crate::rotation::target::has_revoke(&cfg.target);
    let current = store
        .and_then(|s| s.current.as_ref())
        .map(short_version)
        .unwrap_or_else(|| "?".into());
    let previous = store
        .and_then(|s| s.previous.as_ref())
        .map(short_version)
        .unwrap_or_else(|| "-".into());
    let mut x = Explanation {
        headline: String::new(),
        state: Vec::new(),
        consumers_new: Vec::new(),
        consumers_old: BTreeMap::new(),
        revoked: has_revoke.then_some(false),
        next: String::new(),
    };
    if let RotationError::Consumers {
        verdicts, commands, ..
    } = e
    {
        for (svc, v) in verdicts {
            if *v == ServiceVerdict::Stable {
                x.consumers_new.push(svc.to_string());
            } else {
                x.consumers_old.insert(svc.to_string(), verdict_text(v));
            }
        }
        // A command consumer "runs the new value" once its command and verify succeeded.
        for (c, v) in commands {
            if v.is_ok() {
                x.consumers_new.push(c.to_string());
            } else {
                x.consumers_old.insert(c.to_string(), v.to_string());
            }
        }
    }
    let bad: Vec<&str> = x.consumers_old.keys().map(String::as_str).collect();
    let bad = bad.join(", ");
    let detail = match e {
        RotationError::Consumers { .. } => format!(
            "{} of {} consumer(s) not stable",
            x.consumers_old.len(),
            x.consumers_old.len() + x.consumers_new.len()
        ),
        RotationError::Aws { source, .. } => source.to_string(),
        RotationError::Target { source, .. } => source.to_string(),
        other => {
            let s = other.to_string();
            let prefix = format!("{step}: ");
            s.strip_prefix(&prefix).map(str::to_owned).unwrap_or(s)
        }
    };
    x.headline = format!("{name}: rotation failed at step {step} ({outcome}): {detail}");

    match step {
        Step::Start | Step::Create => {
            x.revoked = None;
            x.state.push(if current == "?" {
                "nothing was changed: consumers keep the current value".to_owned()
            } else {
                format!("nothing was changed: AWSCURRENT is still version {current}; consumers keep the current value")
            });
            x.next = match e {
                RotationError::Consumers { .. } => format!(
                    "fix {bad} (or remove it from redeploy), then {}",
                    cmd(name)
                ),
                RotationError::ForeignPending { .. } => format!(
                    "let the other tool's rotation finish, or run {} again once it is abandoned",
                    cmd(name)
                ),
                RotationError::Deleted => format!(
                    "restore the secret (aws secretsmanager restore-secret --secret-id {}) or remove it from the configuration",
                    cfg.secret.id
                ),
                _ => format!("fix the cause above, then {}", cmd(name)),
            };
        }
        Step::Set | Step::Test => {
            x.revoked = None;
            x.state.push(format!(
                "AWSCURRENT did not move (still version {current}): consumers keep the current value"
            ));
            if let Some(p) = store.and_then(|s| s.pending.as_ref()) {
                x.state.push(format!(
                    "the new value is kept as AWSPENDING (version {}); the next run resumes with it",
                    short_version(p)
                ));
            }
            if step == Step::Test && !cfg.target.is_none() {
                x.state.push(format!(
                    "the {} target was already given the new value: tasks that start now still get the old one; finish soon",
                    cfg.target.kind()
                ));
            }
            x.next = format!(
                "fix the cause above, then {} (resumes, no second value)",
                cmd(name)
            );
        }
        Step::Finish => {
            x.state.push(format!(
                "finish stopped half-way: AWSCURRENT is version {current}, AWSPREVIOUS {previous}; no consumer was redeployed"
            ));
            x.next = format!(
                "{} again: it completes the finish and redeploys (no new value)",
                cmd(name)
            );
        }
        Step::Redeploy | Step::Wait => {
            x.state.push(format!(
                "AWSCURRENT already moved to the new version {current} (previous {previous}): every task that starts from now on reads the new value"
            ));
            if !x.consumers_new.is_empty() {
                x.state.push(format!(
                    "running the new value: {}",
                    x.consumers_new.join(", ")
                ));
            }
            if !x.consumers_old.is_empty() {
                x.state.push(format!(
                    "NOT running the new value (still on the previous one): {bad}"
                ));
            }
            if has_revoke {
                x.state.push(
                    "revoke: not done, so the previous value still works for them".to_owned(),
                );
            }
            let fix = if bad.is_empty() {
                "fix the cause above".to_owned()
            } else {
                format!("fix {bad}")
            };
            x.next = format!(
                "{fix}, then {} (redeploy only: no new value is made)",
                cmd(name)
            );
        }
        Step::Revoke => {
            x.state.push(format!(
                "AWSCURRENT is the new version {current} and every consumer is stable on it"
            ));
            x.state
                .push("revoke failed: the previous value still works".to_owned());
            x.next = format!(
                "fix the cause above, then {} (consumers already stable on the new value are not restarted; then it revokes; no new value)",
                cmd(name)
            );
        }
        Step::Done => {
            x.state.push(format!(
                "AWSCURRENT is the new version {current} and every consumer is stable on it, but the tags were not written"
            ));
            x.next = format!(
                "{} again: it checks the consumers, restarts only those not stable on the new value, and writes the tags (no new value)",
                cmd(name)
            );
        }
    }
    x
}

fn print_explanation(x: &Explanation) {
    eprintln!("error: {}", x.headline);
    for line in &x.state {
        eprintln!("  {line}");
    }
    for (svc, why) in &x.consumers_old {
        eprintln!("    {svc}: {why}");
    }
    eprintln!("  next: {}", x.next);
}

fn unknown_secret(cfg: &Config, name: &str) -> i32 {
    let known: Vec<&str> = cfg.secrets.iter().map(|s| s.name.as_str()).collect();
    let close = known
        .iter()
        .map(|k| (strsim::levenshtein(name, k), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k);
    match close {
        Some(k) => eprintln!(
            "error: no secret named \"{name}\" in the configuration; did you mean \"{k}\"?"
        ),
        None if known.len() <= 20 => eprintln!(
            "error: no secret named \"{name}\" in the configuration (known: {})",
            known.join(", ")
        ),
        None => eprintln!(
            "error: no secret named \"{name}\" in the configuration ({} secrets; `secret-rotator plan` lists them)",
            known.len()
        ),
    }
    crate::exit::USAGE
}

/// Why a group stage may not be rotated now (held, or not its turn), if so. A stage whose
/// rotation is unfinished may always be finished, and the failing stage retried.
async fn out_of_turn_refusal<S: crate::rotation::store::SecretStore>(
    cfg: &Config,
    secret: &crate::config::SecretConfig,
    store: &S,
) -> Option<String> {
    let g = secret.group.as_deref()?;
    let stage = g.stage_of(&secret.name)?;
    let members: Vec<&crate::config::SecretConfig> = g
        .members
        .iter()
        .filter_map(|m| cfg.secret(m.as_str()))
        .collect();
    let now = crate::clock::Clock::now(&SystemClock);
    let (_, views) = super::group::read(store, &members, now).await;
    let view = views.get(g.name.as_str())?;
    use rotator_core::group::StageState;
    match &view.stages[stage] {
        StageState::InProgress { .. } => None,
        _ if view.held.is_some() => Some(format!(
            "{} is stage {} of group {}, which is held ({}); `secret-rotator group {} resume` lifts the hold",
            secret.name,
            stage + 1,
            g.name,
            view.held.as_deref().unwrap_or_default(),
            g.name
        )),
        // Its turn (a failing stage's retry, or the soak cut short by hand).
        StageState::Due { .. } => None,
        _ => Some(format!(
            "{} is stage {} of group {} and it is not its turn ({}; see `secret-rotator group {} status`)",
            secret.name,
            stage + 1,
            g.name,
            super::group::describe(view, stage, &members),
            g.name
        )),
    }
}

pub async fn run(
    cfg: &Config,
    name: &str,
    dry_run: bool,
    out_of_turn: bool,
    json: bool,
    log: LogFormat,
) -> i32 {
    let Some(secret) = cfg.secret(name) else {
        return unknown_secret(cfg, name);
    };
    let json_logs = log == LogFormat::Json;
    // With JSON logs everything this command writes is JSON, the result included.
    let json = json || json_logs;
    let ctx = match super::connect(cfg).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let engine = super::engine(cfg, ctx.clone(), Arc::new(SystemClock));
    if !dry_run && !out_of_turn {
        if let Some(refusal) = out_of_turn_refusal(cfg, secret, &engine.store).await {
            eprintln!("error: {refusal}; nothing was changed (--out-of-turn rotates it anyway)");
            return crate::exit::FAILURE;
        }
    }
    // With [ha] lock_table, a manual rotation takes the secret's lease like the daemon.
    let ha = crate::ha::connect(cfg, Arc::new(SystemClock)).await;
    let obs = Progress::new(secret.name.clone(), json_logs);
    let started = std::time::Instant::now();
    let leased = {
        let mut rotation = Box::pin(crate::ha::rotate(
            ha.as_deref(),
            &engine,
            secret,
            RotateOptions {
                dry_run,
                ..RotateOptions::default()
            },
            &obs,
            None,
        ));
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
        loop {
            tokio::select! {
                r = &mut rotation => break r,
                _ = beat.tick() => obs.heartbeat(),
            }
        }
    };
    let result = match leased {
        crate::ha::Leased::Ran(r) => r,
        crate::ha::Leased::Busy { holder, .. } => {
            eprintln!(
                "error: {name}: another replica ({}) is rotating this secret (it holds the lease); nothing was changed, try again once it is done",
                holder.as_deref().unwrap_or("owner unknown")
            );
            return crate::exit::FAILURE;
        }
    };
    let m = crate::metrics::get();
    match result {
        Ok(report) => {
            if report.outcome != Outcome::DryRun {
                rotator_core::telemetry::Telemetry::rotation_finished(
                    m,
                    &name.into(),
                    "success",
                    started.elapsed().as_secs_f64(),
                );
            }
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            } else if dry_run {
                println!("dry run of {name}: nothing was changed; would:");
                for (i, p) in report.plan.iter().enumerate() {
                    println!("  {}. {p}", i + 1);
                }
            } else if report.outcome == Outcome::AlreadyRotated {
                println!("{name}: already rotated by another rotator; nothing was done");
            } else {
                println!(
                    "{name}: rotated; AWSCURRENT is {} (previous {}){}",
                    report.version.as_ref().map(|v| v.as_str()).unwrap_or("?"),
                    report.previous.as_ref().map(|v| v.as_str()).unwrap_or("-"),
                    match (report.services.len(), report.commands.len()) {
                        (0, 0) => String::new(),
                        (n, 0) => format!("; {n} service(s) stable"),
                        (0, c) => format!("; {c} consumer command(s) ok"),
                        (n, c) => format!("; {n} service(s) stable, {c} consumer command(s) ok"),
                    }
                );
            }
            crate::exit::OK
        }
        Err(e) => {
            let code = match &e {
                RotationError::Aws { source, .. } if super::is_unreachable(source) => {
                    crate::exit::UNAVAILABLE
                }
                _ => crate::exit::FAILURE,
            };
            // What the store holds now, read back (best effort: AWS may be what failed).
            let store_state = if code == crate::exit::UNAVAILABLE {
                None
            } else {
                let (store, _) = super::clients(cfg, ctx);
                store
                    .describe(&secret.secret)
                    .await
                    .ok()
                    .map(|m| StoreState {
                        current: m.version_with(AWSCURRENT).cloned(),
                        previous: m.version_with(AWSPREVIOUS).cloned(),
                        pending: m.version_with(AWSPENDING).cloned(),
                    })
            };
            let x = explain(secret, &e, store_state.as_ref());
            let outcome = e.outcome();
            if json {
                let v = serde_json::json!({
                    "secret": name,
                    "secret_id": secret.secret.id.as_str(),
                    "outcome": outcome,
                    "step": e.step(),
                    "error": e.to_string(),
                    "current_version": store_state.as_ref().and_then(|s| s.current.as_ref()).map(|v| v.as_str()),
                    "pending_version": store_state.as_ref().and_then(|s| s.pending.as_ref()).map(|v| v.as_str()),
                    "state": x.state,
                    "consumers_new": x.consumers_new,
                    "consumers_old": x.consumers_old,
                    "commands": consumer_commands(&e),
                    "revoked": x.revoked,
                    "next": x.next,
                });
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            }
            if json_logs {
                tracing::error!(
                    secret = %name,
                    secret_id = %secret.secret.id,
                    step = %e.step(),
                    outcome = outcome.label(),
                    error = %e,
                    next = %x.next,
                    "rotation failed"
                );
            } else {
                print_explanation(&x);
            }
            code
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ClusterName, ServiceName};

    fn svc(s: &str) -> ServiceRef {
        ServiceRef {
            cluster: ClusterName::new("prod".to_owned()),
            service: ServiceName::new(s.to_owned()),
        }
    }

    #[test]
    fn a_rollback_says_the_value_moved_who_runs_it_and_what_to_run_next() {
        let dir = tempfile_config(
            "[[secret]]\nname = \"queue-token\"\nsecret_id = \"prod/queue\"\nevery = \"30d\"\ntarget = { kind = \"command\", set = [\"/bin/true\"], revoke = [\"/bin/true\"] }\nredeploy = [{ cluster = \"prod\", services = [\"api\", \"worker\"] }]\n",
        );
        let cfg = crate::config::load_dir(dir.path()).expect("valid config");
        let secret = cfg.secret("queue-token").unwrap();
        let reason = "ECS deployment circuit breaker: tasks failed to start";
        let mut verdicts = BTreeMap::new();
        verdicts.insert(svc("api"), ServiceVerdict::Stable);
        verdicts.insert(
            svc("worker"),
            ServiceVerdict::RolledBack {
                reason: reason.into(),
                events: vec![],
            },
        );
        let e = RotationError::Consumers {
            step: Step::Wait,
            verdicts,
            commands: Default::default(),
        };
        let store = StoreState {
            current: Some(VersionId::new("11111111-aaaa".to_owned())),
            previous: Some(VersionId::new("22222222-bbbb".to_owned())),
            pending: None,
        };
        let x = explain(secret, &e, Some(&store));
        let text = format!("{x:?}");
        assert_eq!(text.matches(reason).count(), 1, "reason once: {x:#?}");
        assert!(x.headline.contains("rolled_back"), "{}", x.headline);
        assert!(!x.headline.contains(reason), "{}", x.headline);
        assert!(x.state[0].contains("AWSCURRENT already moved to the new version 11111111"));
        assert!(x
            .state
            .iter()
            .any(|l| l == "running the new value: prod/api"));
        assert!(x
            .state
            .iter()
            .any(|l| l.contains("NOT running the new value") && l.contains("prod/worker")));
        assert!(x.state.iter().any(|l| l.starts_with("revoke: not done")));
        assert_eq!(x.revoked, Some(false));
        assert_eq!(
            x.next,
            "fix prod/worker, then `secret-rotator rotate queue-token` (redeploy only: no new value is made)"
        );
    }

    #[test]
    fn a_failure_before_finish_says_nothing_moved() {
        let dir =
            tempfile_config("[[secret]]\nname = \"k\"\nsecret_id = \"prod/k\"\nevery = \"30d\"\n");
        let cfg = crate::config::load_dir(dir.path()).expect("valid config");
        let e = RotationError::Aws {
            step: Step::Start,
            source: crate::error::AwsError::new(
                crate::error::ErrorClass::AccessDenied,
                "DescribeSecret",
                "AccessDeniedException",
                "not allowed",
            ),
        };
        let x = explain(cfg.secret("k").unwrap(), &e, None);
        assert!(x.state[0].starts_with("nothing was changed"), "{x:#?}");
        assert_eq!(x.revoked, None);
        assert!(x.next.ends_with("`secret-rotator rotate k`"), "{}", x.next);
        assert!(
            x.headline.contains("AccessDeniedException"),
            "{}",
            x.headline
        );
    }

    fn tempfile_config(toml: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.toml"), toml).unwrap();
        dir
    }
}
