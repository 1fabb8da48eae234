//! Running one operator program: no shell, the value on stdin only, a clean
//! environment, a timeout that kills the whole process group, output logged masked.

use super::{CommandError, CommandTarget};
use crate::config::SecretConfig;
use crate::rotation::target::{Masker, TargetError};
use secrecy::{ExposeSecret, SecretString};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// Output kept per stream; the rest is read and dropped so the program never blocks.
const OUTPUT_LIMIT: u64 = 64 * 1024;
/// `PATH` for target programs unless `env` sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

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
