//! `rotate NAME [--dry-run] [--json]`: one rotation now, progress on stderr.

use crate::clock::SystemClock;
use crate::config::Config;
use crate::ids::{SecretName, ServiceRef};
use crate::rotation::deploy::Judgement;
use crate::rotation::{Observer, Outcome, RotateOptions, Step};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Prints each step, and each service's progress when it changes.
struct Progress {
    last: Mutex<HashMap<ServiceRef, String>>,
}

impl Observer for Progress {
    fn step(&self, secret: &SecretName, step: Step, detail: &str) {
        eprintln!("[{secret}] {step}: {detail}");
    }
    fn service_progress(&self, svc: &ServiceRef, j: &Judgement, running: i32, desired: i32) {
        let what = match j {
            Judgement::Stable => "stable".to_owned(),
            Judgement::Starting => format!("starting new tasks ({running}/{desired} running)"),
            Judgement::Draining => {
                format!("new tasks running ({running}/{desired}); old tasks draining")
            }
            Judgement::RolledBack(r) => format!("rolled back: {r}"),
            Judgement::Missing(r) => format!("missing: {r}"),
            Judgement::Superseded(d) => {
                format!("replaced by a later deployment {d}; waiting on it")
            }
        };
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.get(svc) != Some(&what) {
            eprintln!("    {svc}: {what}");
            last.insert(svc.clone(), what);
        }
    }
}

pub async fn run(cfg: &Config, name: &str, dry_run: bool, json: bool) -> i32 {
    let Some(secret) = cfg.secret(name) else {
        let known: Vec<_> = cfg.secrets.iter().map(|s| s.name.as_str()).collect();
        eprintln!(
            "error: no secret named \"{name}\" in the configuration (known: {})",
            known.join(", ")
        );
        return crate::exit::USAGE;
    };
    let engine = super::aws_engine(cfg, Arc::new(SystemClock)).await;
    // With [ha] lock_table, a manual rotation takes the secret's lease like the daemon.
    let ha = crate::ha::Ha::connect(cfg, Arc::new(SystemClock)).await;
    let obs = Progress {
        last: Mutex::default(),
    };
    let started = std::time::Instant::now();
    let leased = crate::ha::rotate(
        ha.as_deref(),
        &engine,
        secret,
        RotateOptions {
            fresh: false,
            dry_run,
            replaces: None,
        },
        &obs,
        false,
    )
    .await;
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
                m.rotations.with_label_values(&[name, "success"]).inc();
                m.rotation_duration
                    .with_label_values(&["success"])
                    .observe(started.elapsed().as_secs_f64());
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
            } else {
                println!(
                    "{name}: rotated; AWSCURRENT is {} (previous {}){}",
                    report.version.as_ref().map(|v| v.as_str()).unwrap_or("?"),
                    report.previous.as_ref().map(|v| v.as_str()).unwrap_or("-"),
                    if report.services.is_empty() {
                        String::new()
                    } else {
                        format!("; {} service(s) stable", report.services.len())
                    }
                );
            }
            crate::exit::OK
        }
        Err(e) => {
            let outcome = e.outcome();
            if json {
                let v = serde_json::json!({
                    "secret": name,
                    "outcome": outcome,
                    "step": e.step(),
                    "error": e.to_string(),
                });
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            }
            eprintln!("error: {name}: {} ({e})", outcome.label().replace('_', " "));
            if let crate::rotation::RotationError::Aws { source, .. } = &e {
                if source.class == crate::error::ErrorClass::Setup {
                    return crate::exit::UNAVAILABLE;
                }
            }
            crate::exit::FAILURE
        }
    }
}
