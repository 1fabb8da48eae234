//! The systems that must learn a new value before it becomes current (step 3 "set",
//! step 4 "test") and may have to forget the old one (step 8 "revoke").

use crate::config::{CommandTarget, Target};
use crate::ids::SecretName;
use secrecy::{ExposeSecret, SecretString};
use std::process::Stdio;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("{step} command {program} failed: {detail}")]
    Command {
        step: &'static str,
        program: String,
        detail: String,
    },
    #[error("{0}")]
    Other(String),
}

/// What a target step sees: the new value, and the previous one for revoke.
pub struct TargetCtx<'a> {
    pub secret: &'a SecretName,
    pub value: &'a SecretString,
    pub previous: Option<&'a SecretString>,
}

/// Runs the configured target's steps.
pub async fn set(target: &Target, ctx: &TargetCtx<'_>) -> Result<(), TargetError> {
    match target {
        Target::None => Ok(()),
        Target::Command(c) => run_opt(c, c.set.as_deref(), "set", ctx.value, ctx).await,
        other => Err(unsupported(other)),
    }
}

pub async fn test(target: &Target, ctx: &TargetCtx<'_>) -> Result<(), TargetError> {
    match target {
        Target::None => Ok(()),
        Target::Command(c) => run_opt(c, c.test.as_deref(), "test", ctx.value, ctx).await,
        other => Err(unsupported(other)),
    }
}

pub async fn revoke(target: &Target, ctx: &TargetCtx<'_>) -> Result<(), TargetError> {
    match target {
        Target::None => Ok(()),
        Target::Command(c) => match ctx.previous {
            Some(prev) => run_opt(c, c.revoke.as_deref(), "revoke", prev, ctx).await,
            None => Ok(()),
        },
        other => Err(unsupported(other)),
    }
}

/// Whether the target has a revoke step at all.
pub fn has_revoke(target: &Target) -> bool {
    matches!(
        target,
        Target::Command(CommandTarget {
            revoke: Some(_),
            ..
        })
    )
}

fn unsupported(t: &Target) -> TargetError {
    TargetError::Other(format!(
        "target kind \"{}\" is not supported by this build",
        t.kind()
    ))
}

async fn run_opt(
    c: &CommandTarget,
    argv: Option<&[String]>,
    step: &'static str,
    value: &SecretString,
    ctx: &TargetCtx<'_>,
) -> Result<(), TargetError> {
    let Some(argv) = argv else { return Ok(()) };
    run(argv, step, value, c.timeout, ctx).await
}

/// Runs an operator program: no shell, the value on stdin only, a timeout, the exit
/// status as the verdict; output is logged with every occurrence of the value masked.
async fn run(
    argv: &[String],
    step: &'static str,
    value: &SecretString,
    timeout: std::time::Duration,
    ctx: &TargetCtx<'_>,
) -> Result<(), TargetError> {
    let program = argv.first().cloned().unwrap_or_default();
    let fail = |detail: String| TargetError::Command {
        step,
        program: program.clone(),
        detail,
    };
    let mut child = tokio::process::Command::new(&program)
        .args(&argv[1..])
        .env("SECRET_ROTATOR_SECRET", ctx.secret.as_str())
        .env("SECRET_ROTATOR_STEP", step)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(format!("cannot start: {e}")))?;
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let io = async {
        if let Some(mut s) = stdin.take() {
            // A program that does not read stdin closes the pipe; that is not an error.
            let _ = s.write_all(value.expose_secret().as_bytes()).await;
            let _ = s.shutdown().await;
        }
        let mut out = Vec::new();
        let mut err = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.take(64 * 1024).read_to_end(&mut out).await;
        }
        if let Some(s) = stderr.as_mut() {
            let _ = s.take(64 * 1024).read_to_end(&mut err).await;
        }
        let status = child.wait().await;
        (status, out, err)
    };
    let (status, out, err) = match tokio::time::timeout(timeout, io).await {
        Ok(r) => r,
        Err(_) => {
            return Err(fail(format!(
                "timed out after {}",
                crate::config::duration::format(timeout)
            )));
        }
    };
    let mask = |b: &[u8]| mask_value(&String::from_utf8_lossy(b), value);
    let out = mask(&out);
    let err = mask(&err);
    if !out.trim().is_empty() {
        tracing::info!(secret = %ctx.secret, step, program = %program, output = %out.trim(), "target command stdout");
    }
    if !err.trim().is_empty() {
        tracing::warn!(secret = %ctx.secret, step, program = %program, output = %err.trim(), "target command stderr");
    }
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(fail(format!("exit status {s}{}", last_line(&err)))),
        Err(e) => Err(fail(format!("wait failed: {e}"))),
    }
}

fn last_line(s: &str) -> String {
    match s.lines().rev().find(|l| !l.trim().is_empty()) {
        Some(l) => format!(": {}", l.trim()),
        None => String::new(),
    }
}

/// Replaces every occurrence of the value (and of any line of it) with `***`.
pub fn mask_value(text: &str, value: &SecretString) -> String {
    let v = value.expose_secret();
    if v.is_empty() {
        return text.to_owned();
    }
    text.replace(v, "***")
}
