//! Running one step's program through [`crate::process`] (no shell, the value on stdin
//! only, a clean environment, a timeout that kills the whole process group), its output
//! logged masked and its exit status the step's verdict.

use super::{CommandError, CommandTarget};
use crate::config::SecretConfig;
use crate::rotation::process::{Exit, ProgramRun};
use crate::rotation::target::{Masker, TargetError};
use secrecy::SecretString;

pub use crate::process::DEFAULT_PATH;

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

/// Runs an operator program: the exit status is the verdict; output is logged with the
/// value masked, its last stderr line quoted in the error.
async fn run(
    argv: &[String],
    step: &'static str,
    value: &SecretString,
    c: &CommandTarget,
    cfg: &SecretConfig,
) -> Result<(), TargetError> {
    let program = argv.first().cloned().unwrap_or_default();
    let mut env: Vec<(String, String)> =
        c.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    env.push(("SECRET_ROTATOR_SECRET".into(), cfg.name.to_string()));
    env.push(("SECRET_ROTATOR_STEP".into(), step.into()));
    let masker = Masker::of(value);
    let done = crate::process::run(ProgramRun {
        argv,
        env: &env,
        stdin: Some(value),
        timeout: c.timeout,
        masker: &masker,
    })
    .await;
    let (out, err) = (done.stdout.trim(), done.stderr.trim());
    if !out.is_empty() {
        tracing::info!(secret = %cfg.name, step, program = %program, output = %out, "target command stdout");
    }
    if !err.is_empty() {
        tracing::warn!(secret = %cfg.name, step, program = %program, output = %err, "target command stderr");
    }
    let detail = match &done.exit {
        e if e.success() => return Ok(()),
        e @ (Exit::Code(_) | Exit::Signal(_)) => format!("{e}{}", last_line(err)),
        e => e.to_string(),
    };
    Err(CommandError {
        step,
        program,
        detail,
    }
    .into())
}

fn last_line(s: &str) -> String {
    match s.lines().rev().find(|l| !l.trim().is_empty()) {
        Some(l) => format!(": {}", l.trim()),
        None => String::new(),
    }
}
