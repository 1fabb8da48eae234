//! The `command` target: operator programs run for set, test and revoke.
//!
//! No shell: the argv runs as given (an absolute path, checked in config). The value goes
//! to stdin only (never argv or the environment, which other users can read in /proc).
//!
//! The environment is not inherited: the daemon's AWS credentials and session tokens,
//! `NOTIFY_SOCKET` and the rest stay with the daemon. A program gets only `PATH`
//! ([`DEFAULT_PATH`]), `LANG` (the daemon's, else `C.UTF-8`), `SECRET_ROTATOR_SECRET`
//! (the secret's name), `SECRET_ROTATOR_STEP` (set, test or revoke), and the target's
//! `env = { ... }` from config (which may replace PATH and LANG). The exit status is the verdict; a
//! program that outlives `timeout` is killed with its whole process group. Its output is
//! logged, and its last stderr line is quoted in the error, with the value masked.

use crate::config::{SecretConfig, Target, TargetKind, TargetTable, DURATION_EXPECTED};
use crate::rotation::target::{ConfiguredTarget, Masker, TargetEnv, TargetError};
use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use toml::Spanned;

/// Output kept per stream; the rest is read and dropped so the program never blocks.
const OUTPUT_LIMIT: u64 = 64 * 1024;
/// `PATH` for target programs unless `env` sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The program's own `timeout` kills its process group and reports its output; the step
/// deadline leaves it this long to do so first.
const GRACE: Duration = Duration::from_secs(30);
const HOUR: Duration = Duration::from_secs(3600);

/// `target = { kind = "command", set, test, revoke, timeout, env }`.
pub struct Command;

/// The `command` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCommand {
    set: Option<Spanned<Vec<String>>>,
    test: Option<Spanned<Vec<String>>>,
    revoke: Option<Spanned<Vec<String>>>,
    timeout: Option<Spanned<String>>,
    env: Option<Spanned<BTreeMap<String, String>>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandTarget {
    pub set: Option<Vec<String>>,
    pub test: Option<Vec<String>>,
    pub revoke: Option<Vec<String>>,
    pub timeout: Duration,
    /// Extra environment for the programs (`env = { ... }`); nothing else is inherited.
    pub env: BTreeMap<String, String>,
}

impl TargetKind for Command {
    const NAME: &'static str = "command";
    type Raw = RawCommand;

    fn expects(key: &str, element: bool) -> Option<String> {
        match key {
            "set" | "test" | "revoke" if element => {
                Some("a string (the program and each argument in quotes)".into())
            }
            "set" | "test" | "revoke" => Some(format!(
                "a list of strings: the program, then its arguments (no shell is used), e.g. {key} = [\"/usr/local/bin/{key}-key\", \"--user\", \"app\"]"
            )),
            "timeout" => Some(DURATION_EXPECTED.into()),
            _ => None,
        }
    }

    fn parse(&self, raw: RawCommand, t: &mut TargetTable<'_>) -> Option<Target> {
        let mut argv = |name: &str, v: &Option<Spanned<Vec<String>>>| -> Option<Vec<String>> {
            let v = v.as_ref()?;
            if v.get_ref().is_empty() || v.get_ref()[0].trim().is_empty() {
                t.error(v.span(), name,
                    "must be a non-empty argv array, program first (e.g. [\"/usr/local/bin/set-key\", \"--user\", \"app\"]); no shell is used");
                return None;
            }
            // A relative name would be looked up in PATH or the working directory,
            // which whoever controls those could fill with a program of their own.
            if !v.get_ref()[0].starts_with('/') {
                t.error(
                    v.span(),
                    name,
                    format!(
                    "the program must be an absolute path (e.g. \"/usr/local/bin/{}\"), not \"{}\"",
                    v.get_ref()[0].rsplit('/').next().unwrap_or_default(), v.get_ref()[0]),
                );
                return None;
            }
            Some(v.get_ref().clone())
        };
        let set = argv("set", &raw.set);
        let test = argv("test", &raw.test);
        let revoke = argv("revoke", &raw.revoke);
        if raw.set.is_none() && raw.test.is_none() && raw.revoke.is_none() {
            t.error(
                t.span(),
                "",
                "target kind \"command\" needs at least one of set, test, revoke",
            );
        }
        let timeout = match &raw.timeout {
            None => Duration::from_secs(60),
            Some(x) => t.duration("timeout", x, Duration::from_secs(1), HOUR)?,
        };
        let mut env = BTreeMap::new();
        if let Some(e) = &raw.env {
            for (k, v) in e.get_ref() {
                let bad_name = k.is_empty()
                    || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    || k.starts_with(|c: char| c.is_ascii_digit());
                if bad_name || k.starts_with("SECRET_ROTATOR_") || v.contains('\0') {
                    t.error(e.span(), "env", format!(
                        "\"{k}\": environment names are letters, digits and _ (not starting with a digit, not SECRET_ROTATOR_*), values without NUL"));
                } else {
                    env.insert(k.clone(), v.clone());
                }
            }
        }
        Some(Target::new(CommandTarget {
            set,
            test,
            revoke,
            timeout,
            env,
        }))
    }
}

impl ConfiguredTarget for CommandTarget {
    fn kind(&self) -> &'static str {
        Command::NAME
    }

    fn has_set(&self) -> bool {
        self.set.is_some()
    }

    fn has_revoke(&self) -> bool {
        self.revoke.is_some()
    }

    /// The step timeout, or the program's own timeout plus [`GRACE`] when that is longer.
    fn step_budget(&self, step_timeout: Duration) -> Duration {
        step_timeout.max(self.timeout + GRACE)
    }

    fn set<'a>(
        &'a self,
        env: &'a TargetEnv<'a>,
        value: &'a SecretString,
    ) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(run_step(self, "set", value, env.cfg))
    }

    fn test<'a>(
        &'a self,
        env: &'a TargetEnv<'a>,
        value: &'a SecretString,
    ) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(run_step(self, "test", value, env.cfg))
    }

    /// The revoke program gets the previous value; without one there is nothing to revoke.
    fn revoke<'a>(
        &'a self,
        env: &'a TargetEnv<'a>,
        _current: &'a SecretString,
        previous: Option<&'a SecretString>,
    ) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(async move {
            match previous {
                Some(prev) => run_step(self, "revoke", prev, env.cfg).await,
                None => Ok(()),
            }
        })
    }
}

/// "set command /usr/local/bin/set-key failed: exit status 1: ...".
#[derive(Debug, thiserror::Error)]
#[error("{step} command {program} failed: {detail}")]
pub struct CommandError {
    pub step: &'static str,
    pub program: String,
    pub detail: String,
}

impl From<CommandError> for TargetError {
    fn from(e: CommandError) -> Self {
        TargetError::Custom(Box::new(e))
    }
}

/// Runs the program configured for `step`, if any, with `value` on stdin.
pub async fn run_step(
    c: &CommandTarget,
    step: &'static str,
    value: &SecretString,
    cfg: &SecretConfig,
) -> Result<(), TargetError> {
    let argv = match step {
        "set" => c.set.as_deref(),
        "test" => c.test.as_deref(),
        _ => c.revoke.as_deref(),
    };
    match argv {
        Some(argv) => run(argv, step, value, c, cfg).await,
        None => Ok(()),
    }
}

/// Up to [`OUTPUT_LIMIT`] bytes, and whether more was dropped.
async fn read_limited<R: AsyncRead + Unpin>(r: Option<R>) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut cut = false;
    if let Some(mut r) = r {
        let _ = (&mut r).take(OUTPUT_LIMIT).read_to_end(&mut out).await;
        cut = tokio::io::copy(&mut r, &mut tokio::io::sink())
            .await
            .is_ok_and(|n| n > 0);
    }
    (out, cut)
}

/// Runs an operator program: no shell, the value on stdin only, a timeout, the exit
/// status as the verdict; output is logged with the value masked.
async fn run(
    argv: &[String],
    step: &'static str,
    value: &SecretString,
    c: &CommandTarget,
    cfg: &SecretConfig,
) -> Result<(), TargetError> {
    let timeout: Duration = c.timeout;
    let program = argv.first().cloned().unwrap_or_default();
    let fail = |detail: String| -> TargetError {
        CommandError {
            step,
            program: program.clone(),
            detail,
        }
        .into()
    };
    let lang = std::env::var("LANG").unwrap_or_else(|_| "C.UTF-8".into());
    let mut child = tokio::process::Command::new(&program)
        .args(&argv[1..])
        .env_clear()
        .env("PATH", DEFAULT_PATH)
        .env("LANG", lang)
        .envs(&c.env)
        .env("SECRET_ROTATOR_SECRET", cfg.name.as_str())
        .env("SECRET_ROTATOR_STEP", step)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so that a timeout kills what it started too.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(format!("cannot start: {e}")))?;
    let pid = child.id();
    // Abandoned mid-run (e.g. the rotation stopped because its lease lapsed): kill what the
    // program started too, not only the program, so nothing keeps changing the target.
    let mut group = KillGroupOnDrop(pid);
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let io = async {
        let feed = async {
            if let Some(mut s) = stdin {
                // A program that does not read stdin closes the pipe; that is not an error.
                let _ = s.write_all(value.expose_secret().as_bytes()).await;
                let _ = s.shutdown().await;
            }
        };
        let (_, out, err) = tokio::join!(feed, read_limited(stdout), read_limited(stderr));
        let status = child.wait().await;
        (status, out, err)
    };
    let (status, out, err) = match tokio::time::timeout(timeout, io).await {
        Ok(r) => {
            group.0 = None;
            r
        }
        Err(_) => {
            kill_group(group.0.take());
            return Err(fail(format!(
                "timed out after {}; the program and its process group were killed",
                crate::config::duration::format(timeout)
            )));
        }
    };
    let masker = Masker::of(value);
    // A value cut at the limit leaves a prefix at the end of the kept output.
    let mask = |(b, cut): &(Vec<u8>, bool)| {
        let text = String::from_utf8_lossy(b);
        if *cut {
            masker.mask_cut(&text)
        } else {
            masker.mask(&text)
        }
    };
    let out = mask(&out);
    let err = mask(&err);
    if !out.trim().is_empty() {
        tracing::info!(secret = %cfg.name, step, program = %program, output = %out.trim(), "target command stdout");
    }
    if !err.trim().is_empty() {
        tracing::warn!(secret = %cfg.name, step, program = %program, output = %err.trim(), "target command stderr");
    }
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(fail(format!("exit status {s}{}", last_line(&err)))),
        Err(e) => Err(fail(format!("wait failed: {e}"))),
    }
}

struct KillGroupOnDrop(Option<u32>);

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        kill_group(self.0.take());
    }
}

/// SIGKILL to the program's process group (the program itself is also killed when its
/// handle is dropped).
fn kill_group(pid: Option<u32>) {
    let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) else {
        return;
    };
    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

fn last_line(s: &str) -> String {
    match s.lines().rev().find(|l| !l.trim().is_empty()) {
        Some(l) => format!(": {}", l.trim()),
        None => String::new(),
    }
}
