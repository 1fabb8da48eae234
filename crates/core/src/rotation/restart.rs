//! Consumers restarted by command (`redeploy = [{ command = [...], verify = [...] }]`):
//! after the value became current, `command` runs, then `verify` until it exits 0, all
//! within the consumer's timeout; the [`CommandVerdict`] decides like an ECS service's
//! verdict (anything but `ok` fails the rotation, and nothing is revoked).
//!
//! The same rules as ECS consumers (`coordinator`):
//! - **Coalescing**: rotations asking for the same command (same argv and `env`) within
//!   `[daemon] redeploy_coalesce` of the first share one run, and each gets its verdict.
//!   A request joins a run not started yet, never one already started (its value might
//!   not have been current when that run began); a later request starts another run.
//!   Rotations sharing the command but not its `verify` share the command's run and each
//!   `verify` runs on its own.
//! - **Timeouts**: each rotation's timeout counts from the start of the run; a rotation
//!   whose timeout passes is answered `timed_out` then, while the run goes on for the
//!   others. The command itself is killed at the longest timeout of its rotations, and
//!   as soon as no rotation waits for it any more.
//! - **Leases**: the run starts only under the lease of one of its rotations that still
//!   holds one (when leases are on), like a shared forced deployment.
//!
//! The programs never get the value: not in argv, environment or stdin. Their
//! environment says which secret(s) and version the run is for (`SECRET_ROTATOR_*`, see
//! [`ENV_SECRET`]). Their output, masked with every waiting rotation's value, is logged,
//! and its end is kept in the verdict.

use super::lease::Fence;
use super::process::{Exit, ProgramExit, ProgramRun, ProgramRunner};
use super::target::Masker;
use crate::config::consumer::argv_text;
use crate::config::CommandConsumer;
use crate::ids::{SecretId, SecretName, VersionId};
use futures::FutureExt;
use secrecy::SecretString;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// The secret a run is for (the first rotation that asked, when it serves several).
pub const ENV_SECRET: &str = "SECRET_ROTATOR_SECRET";
/// Its secret id as configured (a name or ARN).
pub const ENV_SECRET_ID: &str = "SECRET_ROTATOR_SECRET_ID";
/// The version id that became current.
pub const ENV_VERSION: &str = "SECRET_ROTATOR_VERSION";
/// Every secret the run serves, in name order, space-separated (names have no spaces).
pub const ENV_SECRETS: &str = "SECRET_ROTATOR_SECRETS";
/// `redeploy` (the command) or `verify`.
pub const ENV_STEP: &str = "SECRET_ROTATOR_STEP";

/// Output kept in a verdict: its last bytes (the whole output is logged).
pub const VERDICT_OUTPUT: usize = 2000;
/// The first pause between two verify attempts; it doubles up to [`VERIFY_BACKOFF_MAX`].
pub const VERIFY_BACKOFF: Duration = Duration::from_secs(2);
pub const VERIFY_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Which of a consumer's two programs a verdict is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Program {
    Command,
    Verify,
}

impl std::fmt::Display for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Program::Command => "command",
            Program::Verify => "verify",
        })
    }
}

/// How one consumer restarted by command ended, for one rotation.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum CommandVerdict {
    /// `command` exited 0, then `verify` (if any) exited 0 within the timeout.
    Ok { verify_attempts: u32 },
    /// A program exited non-zero, was killed by a signal, or could not start (a
    /// `verify` that exits non-zero is retried instead, until the timeout).
    Failed {
        program: Program,
        status: String,
        exit_code: Option<i32>,
        verify_attempts: u32,
        /// The end of its output, masked.
        output: String,
    },
    /// The timeout passed: `command` still running (then killed), or `verify` never
    /// exited 0. `verify_attempts` counts the attempts started (the last may have been
    /// running at the timeout); `status` and `output` are the last finished one's.
    TimedOut {
        program: Program,
        after: String,
        status: Option<String>,
        exit_code: Option<i32>,
        verify_attempts: u32,
        output: String,
    },
}

impl CommandVerdict {
    /// The metric label: ok, failed, timed_out.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Ok { .. } => "ok",
            Self::Failed { .. } => "failed",
            Self::TimedOut { .. } => "timed_out",
        }
    }

    pub fn is_ok(&self) -> bool {
        matches!(self, Self::Ok { .. })
    }

    fn failed(program: Program, status: impl Into<String>) -> Self {
        Self::Failed {
            program,
            status: status.into(),
            exit_code: None,
            verify_attempts: 0,
            output: String::new(),
        }
    }
}

/// Every verdict label, in the order of the metrics.
pub const COMMAND_OUTCOMES: [&str; 3] = ["ok", "failed", "timed_out"];

fn last_line(output: &str) -> Option<&str> {
    output.lines().rev().map(str::trim).find(|l| !l.is_empty())
}

impl std::fmt::Display for CommandVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ok { verify_attempts: 0 } => write!(f, "ok"),
            Self::Ok { verify_attempts } => {
                write!(f, "ok (verify succeeded at attempt {verify_attempts})")
            }
            Self::Failed {
                program,
                status,
                output,
                ..
            } => {
                write!(f, "failed: {program} {status}")?;
                if let Some(l) = last_line(output) {
                    write!(f, ": {l}")?;
                }
                Ok(())
            }
            Self::TimedOut {
                program: Program::Command,
                after,
                ..
            } => write!(
                f,
                "timed out: command did not finish within {after} (killed)"
            ),
            Self::TimedOut {
                program: Program::Verify,
                after,
                status,
                verify_attempts,
                output,
                ..
            } => {
                write!(
                    f,
                    "timed out: verify did not succeed within {after} ({verify_attempts} attempt(s)"
                )?;
                if let Some(s) = status {
                    write!(f, "; last finished: {s}")?;
                    if let Some(l) = last_line(output) {
                        write!(f, ": {l}")?;
                    }
                }
                write!(f, ")")
            }
        }
    }
}

/// Who asks for a consumer's restart.
pub struct Requester<'a> {
    pub secret: &'a SecretName,
    pub secret_id: &'a SecretId,
    /// The version that became current.
    pub version: &'a VersionId,
    /// The values to mask in the programs' output (the new value and the one it
    /// replaced); None when one could not be read (the output is then not shown at all).
    pub mask: Option<Arc<[SecretString]>>,
}

/// Runs consumer commands for the rotations of one engine (see the module docs).
#[derive(Clone)]
pub struct Restarts {
    inner: Arc<Inner>,
}

struct Inner {
    runner: Option<Arc<dyn ProgramRunner>>,
    coalesce: Duration,
    /// Runs not started yet, by argv and environment.
    pending: Mutex<HashMap<RunKey, Vec<Joiner>>>,
}

type RunKey = (Vec<String>, BTreeMap<String, String>);

struct Joiner {
    secret: SecretName,
    secret_id: SecretId,
    version: VersionId,
    verify: Option<Vec<String>>,
    timeout: Duration,
    mask: Option<Arc<[SecretString]>>,
    fence: Option<Fence>,
    reply: oneshot::Sender<CommandVerdict>,
    /// Set when the run starts: start + timeout.
    deadline: Instant,
}

impl Joiner {
    fn answer(self, v: CommandVerdict) {
        let _ = self.reply.send(v);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Restarts {
    /// `runner`: None makes every command consumer fail with a clear verdict (an engine
    /// built without one, e.g. a test of ECS consumers only).
    pub fn new(runner: Option<Arc<dyn ProgramRunner>>, coalesce: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                runner,
                coalesce,
                pending: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Whether `program` can be run (the precheck before a rotation changes anything).
    pub fn check(&self, program: &str) -> Result<(), String> {
        match &self.inner.runner {
            Some(r) => r.check(program),
            None => Err(NO_RUNNER.into()),
        }
    }

    /// Restarts `consumer` for one rotation: joins a run not started yet, or starts one
    /// after the coalescing window, and waits for this rotation's verdict.
    pub async fn restart(&self, consumer: &CommandConsumer, who: Requester<'_>) -> CommandVerdict {
        if self.inner.runner.is_none() {
            return CommandVerdict::failed(Program::Command, NO_RUNNER);
        }
        let (reply, rx) = oneshot::channel();
        let joiner = Joiner {
            secret: who.secret.clone(),
            secret_id: who.secret_id.clone(),
            version: who.version.clone(),
            verify: consumer.verify.clone(),
            timeout: consumer.timeout,
            mask: who.mask,
            fence: super::lease::fence::current(),
            reply,
            deadline: Instant::now() + self.inner.coalesce + consumer.timeout,
        };
        let key: RunKey = (consumer.command.clone(), consumer.env.clone());
        let first = {
            let mut pending = lock(&self.inner.pending);
            match pending.get_mut(&key) {
                Some(joiners) => {
                    joiners.push(joiner);
                    false
                }
                None => {
                    pending.insert(key.clone(), vec![joiner]);
                    true
                }
            }
        };
        if first {
            tokio::spawn(supervise(self.inner.clone(), key));
        }
        rx.await.unwrap_or_else(|_| {
            CommandVerdict::failed(
                Program::Command,
                "the consumer command's runner stopped before answering (a bug; see the log)",
            )
        })
    }
}

const NO_RUNNER: &str = "this engine has no program runner (it cannot run consumer commands)";

/// Waits for the coalescing window, then runs the command for everyone who joined. A
/// panic (a bug) drops the joiners' replies: each rotation hears that the run stopped.
async fn supervise(inner: Arc<Inner>, key: RunKey) {
    tokio::time::sleep(inner.coalesce).await;
    let joiners = lock(&inner.pending).remove(&key).unwrap_or_default();
    let program = argv_text(&key.0);
    let run = std::panic::AssertUnwindSafe(run_group(inner, key, joiners));
    if run.catch_unwind().await.is_err() {
        tracing::error!(command = %program, "a consumer command's run panicked; its rotations fail");
    }
}

/// The secrets a run serves, in name order, space-separated.
fn secret_names(joiners: &[Joiner]) -> String {
    let mut names: Vec<&str> = joiners.iter().map(|j| j.secret.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    names.join(" ")
}

/// The environment of a run: the configured `env`, then what the run is for.
fn run_env(key: &RunKey, joiners: &[Joiner], step: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> =
        key.1.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    if let Some(first) = joiners.first() {
        env.push((ENV_SECRET.into(), first.secret.to_string()));
        env.push((ENV_SECRET_ID.into(), first.secret_id.to_string()));
        env.push((ENV_VERSION.into(), first.version.to_string()));
    }
    env.push((ENV_SECRETS.into(), secret_names(joiners)));
    env.push((ENV_STEP.into(), step.into()));
    env
}

/// The end of a program's output for a verdict: stdout then stderr, its last
/// [`VERDICT_OUTPUT`] bytes; nothing when the value could not be read to mask it.
fn verdict_output(e: &ProgramExit, maskable: bool) -> String {
    if !maskable {
        return "(not shown: the new value could not be read to mask it)".into();
    }
    let text = match (e.stdout.trim(), e.stderr.trim()) {
        ("", err) => err.to_owned(),
        (out, "") => out.to_owned(),
        (out, err) => format!("{out}\n{err}"),
    };
    if text.len() <= VERDICT_OUTPUT {
        return text;
    }
    let mut start = text.len() - VERDICT_OUTPUT;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &text[start..])
}

/// What a run shares between its steps.
struct Run<'a> {
    runner: &'a dyn ProgramRunner,
    key: &'a RunKey,
    masker: Masker,
    maskable: bool,
    /// The secrets served, for the log.
    names: String,
}

impl Run<'_> {
    fn log(&self, argv: &[String], step: &str, e: &ProgramExit) {
        let command = argv_text(argv);
        let (out, err) = if self.maskable {
            (e.stdout.trim(), e.stderr.trim())
        } else {
            ("", "")
        };
        if !out.is_empty() {
            tracing::info!(secrets = %self.names, step, command = %command, output = %out, "consumer command stdout");
        }
        if !err.is_empty() {
            tracing::warn!(secrets = %self.names, step, command = %command, output = %err, "consumer command stderr");
        }
        if e.exit.success() {
            tracing::info!(secrets = %self.names, step, command = %command, "consumer command succeeded");
        } else {
            tracing::warn!(secrets = %self.names, step, command = %command, status = %e.exit, "consumer command did not succeed");
        }
    }

    fn exit_verdict(&self, program: Program, e: &ProgramExit, attempts: u32) -> CommandVerdict {
        let output = verdict_output(e, self.maskable);
        match &e.exit {
            Exit::TimedOut(after) => CommandVerdict::TimedOut {
                program,
                after: crate::config::duration::format(*after),
                status: None,
                exit_code: None,
                verify_attempts: attempts,
                output,
            },
            exit => CommandVerdict::Failed {
                program,
                status: exit.to_string(),
                exit_code: exit.code(),
                verify_attempts: attempts,
                output,
            },
        }
    }
}

/// One run for `joiners`: the command, then each distinct `verify`.
async fn run_group(inner: Arc<Inner>, key: RunKey, mut joiners: Vec<Joiner>) {
    let Some(runner) = inner.runner.clone() else {
        for j in joiners {
            j.answer(CommandVerdict::failed(Program::Command, NO_RUNNER));
        }
        return;
    };
    // Under the lease of the first rotation that still holds one (when leases are on).
    while let Some(first) = joiners.first() {
        let Some(fence) = first.fence.clone() else {
            break;
        };
        match fence.verify().await {
            Ok(()) => break,
            Err(why) => joiners.remove(0).answer(CommandVerdict::failed(
                Program::Command,
                format!("not run: lease lost ({why})"),
            )),
        }
    }
    joiners.retain(|j| !j.reply.is_closed());
    if joiners.is_empty() {
        return;
    }
    let start = Instant::now();
    for j in &mut joiners {
        j.deadline = start + j.timeout;
    }
    let mut masker = Masker::new();
    for v in joiners.iter().filter_map(|j| j.mask.as_deref()).flatten() {
        masker.add(v);
    }
    let names = secret_names(&joiners);
    let run = Run {
        runner: runner.as_ref(),
        key: &key,
        masker,
        maskable: joiners.iter().all(|j| j.mask.is_some()),
        names,
    };
    if joiners.len() > 1 {
        tracing::info!(command = %argv_text(&key.0), secrets = %run.names, rotations = joiners.len(), "one consumer command run for several rotations");
    }
    let longest = joiners.iter().map(|j| j.timeout).max().unwrap_or_default();
    let env = run_env(&key, &joiners, "redeploy");
    let program = run.runner.run(ProgramRun {
        argv: &key.0,
        env: &env,
        stdin: None,
        timeout: longest,
        masker: &run.masker,
    });
    let late = |j: &Joiner| CommandVerdict::TimedOut {
        program: Program::Command,
        after: crate::config::duration::format(j.timeout),
        status: None,
        exit_code: None,
        verify_attempts: 0,
        output: String::new(),
    };
    let Some(exit) = drive(program, &mut joiners, late).await else {
        return;
    };
    run.log(&key.0, "redeploy", &exit);
    if !exit.exit.success() {
        let v = run.exit_verdict(Program::Command, &exit, 0);
        for j in joiners {
            j.answer(v.clone());
        }
        return;
    }
    let mut by_verify: BTreeMap<Option<Vec<String>>, Vec<Joiner>> = BTreeMap::new();
    for j in joiners {
        by_verify.entry(j.verify.clone()).or_default().push(j);
    }
    let mut checks = Vec::new();
    for (verify, group) in by_verify {
        match verify {
            None => {
                for j in group {
                    j.answer(CommandVerdict::Ok { verify_attempts: 0 });
                }
            }
            Some(argv) => checks.push(verify_until_ok(&run, argv, group)),
        }
    }
    futures::future::join_all(checks).await;
}

/// Runs `verify` until it exits 0 (everyone is told ok) or each rotation's deadline
/// passes (told timed out), pausing with backoff between attempts. A verify that cannot
/// start fails at once: retrying will not make the program appear.
async fn verify_until_ok(run: &Run<'_>, argv: Vec<String>, mut joiners: Vec<Joiner>) {
    let env = run_env(run.key, &joiners, "verify");
    let mut attempts = 0u32;
    let mut last: Option<ProgramExit> = None;
    let mut backoff = VERIFY_BACKOFF;
    loop {
        let Some(until) = joiners.iter().map(|j| j.deadline).max() else {
            return;
        };
        let remaining = until.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            for j in joiners.drain(..) {
                let v = verify_late(&j, last.as_ref(), attempts, run.maskable);
                j.answer(v);
            }
            return;
        }
        attempts += 1;
        let attempt = run.runner.run(ProgramRun {
            argv: &argv,
            env: &env,
            stdin: None,
            timeout: remaining,
            masker: &run.masker,
        });
        // A rotation out of time while an attempt runs hears of the one before it.
        let late = |j: &Joiner| verify_late(j, last.as_ref(), attempts, run.maskable);
        let Some(exit) = drive(attempt, &mut joiners, late).await else {
            return;
        };
        run.log(&argv, "verify", &exit);
        if exit.exit.success() {
            for j in joiners {
                j.answer(CommandVerdict::Ok {
                    verify_attempts: attempts,
                });
            }
            return;
        }
        if matches!(exit.exit, Exit::NotStarted(_)) {
            let v = run.exit_verdict(Program::Verify, &exit, attempts);
            for j in joiners {
                j.answer(v.clone());
            }
            return;
        }
        last = Some(exit);
        let pause = tokio::time::sleep(backoff);
        backoff = (backoff * 2).min(VERIFY_BACKOFF_MAX);
        let late = |j: &Joiner| verify_late(j, last.as_ref(), attempts, run.maskable);
        if drive(pause, &mut joiners, late).await.is_none() {
            return;
        }
    }
}

/// The verdict of a rotation whose timeout passed before `verify` exited 0, with the
/// last finished attempt.
fn verify_late(
    j: &Joiner,
    last: Option<&ProgramExit>,
    attempts: u32,
    maskable: bool,
) -> CommandVerdict {
    CommandVerdict::TimedOut {
        program: Program::Verify,
        after: crate::config::duration::format(j.timeout),
        status: last.map(|e| e.exit.to_string()),
        exit_code: last.and_then(|e| e.exit.code()),
        verify_attempts: attempts,
        output: last.map_or_else(String::new, |e| verdict_output(e, maskable)),
    }
}

/// Polls `work` to its end while answering, with `late`, each joiner whose deadline
/// passes meanwhile. None when no joiner is left: `work` is dropped (a running program
/// is killed with its process group).
async fn drive<T>(
    work: impl Future<Output = T>,
    joiners: &mut Vec<Joiner>,
    late: impl Fn(&Joiner) -> CommandVerdict,
) -> Option<T> {
    tokio::pin!(work);
    loop {
        let now = Instant::now();
        let (over, left): (Vec<Joiner>, Vec<Joiner>) = std::mem::take(joiners)
            .into_iter()
            .filter(|j| !j.reply.is_closed())
            .partition(|j| j.deadline <= now);
        *joiners = left;
        for j in over {
            let v = late(&j);
            j.answer(v);
        }
        let next = joiners.iter().map(|j| j.deadline).min()?;
        let gone = futures::future::join_all(joiners.iter_mut().map(|j| j.reply.closed()));
        tokio::select! {
            biased;
            r = &mut work => return Some(r),
            _ = tokio::time::sleep_until(next) => {}
            _ = gone => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(code: i32, out: &str, err: &str) -> ProgramExit {
        ProgramExit {
            exit: Exit::Code(code),
            stdout: out.into(),
            stderr: err.into(),
        }
    }

    #[test]
    fn verdicts_read_as_one_line_and_label_the_metric() {
        let v = CommandVerdict::Failed {
            program: Program::Command,
            status: "exit status 3".into(),
            exit_code: Some(3),
            verify_attempts: 0,
            output: "starting\nerror: deployment \"api\" not found\n".into(),
        };
        assert_eq!(
            v.to_string(),
            "failed: command exit status 3: error: deployment \"api\" not found"
        );
        assert_eq!(v.label(), "failed");
        let v = CommandVerdict::TimedOut {
            program: Program::Verify,
            after: "1m".into(),
            status: Some("exit status 1".into()),
            exit_code: Some(1),
            verify_attempts: 4,
            output: "waiting for rollout".into(),
        };
        assert_eq!(
            v.to_string(),
            "timed out: verify did not succeed within 1m (4 attempt(s); last finished: exit status 1: waiting for rollout)"
        );
        assert_eq!(v.label(), "timed_out");
        assert_eq!(
            CommandVerdict::Ok { verify_attempts: 2 }.to_string(),
            "ok (verify succeeded at attempt 2)"
        );
        let labels: Vec<_> = [
            CommandVerdict::Ok { verify_attempts: 0 },
            CommandVerdict::failed(Program::Command, "x"),
            v,
        ]
        .iter()
        .map(CommandVerdict::label)
        .collect();
        assert_eq!(labels, COMMAND_OUTCOMES);
    }

    #[test]
    fn a_verdict_keeps_the_end_of_the_output_or_none_of_it_when_unmasked() {
        let long = "x".repeat(VERDICT_OUTPUT) + "é the end";
        let kept = verdict_output(&exit(1, "first", &long), true);
        assert!(
            kept.starts_with("...") && kept.ends_with("é the end"),
            "{kept}"
        );
        assert!(kept.len() <= VERDICT_OUTPUT + 3);
        assert_eq!(verdict_output(&exit(1, "out", "err"), true), "out\nerr");
        assert_eq!(verdict_output(&exit(1, "", " err "), true), "err");
        assert!(verdict_output(&exit(1, "out", ""), false).starts_with("(not shown"));
    }
}
