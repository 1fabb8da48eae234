//! A dry run: the phase's plan, from read calls only (the current value's JSON shape for
//! `json_key`, the consumers' precheck).

use super::context::Rotation;
use super::create::json_object;
use super::phase::{Phase, FOREIGN_PENDING_GRACE};
use super::{Outcome, Report, RotationError};
use crate::config::consumer::argv_text;
use crate::config::CommandConsumer;
use crate::rotation::deploy::Deployer;
use crate::rotation::store::{
    SecretStore, Select, AWSCURRENT, TAG_DEPLOYED_VERSION, TAG_LAST_ROTATED,
};
use crate::rotation::target;
use crate::rotation::Step;

/// One plan line for a consumer command: "run ...; then verify ... until it exits 0
/// (timeout ...)".
pub(crate) fn describe_command(c: &CommandConsumer) -> String {
    let timeout = crate::config::duration::format(c.timeout);
    match &c.verify {
        Some(v) => format!(
            "run consumer command {}, then {} until it exits 0 (timeout {timeout})",
            argv_text(&c.command),
            argv_text(v)
        ),
        None => format!(
            "run consumer command {} (timeout {timeout})",
            argv_text(&c.command)
        ),
    }
}

impl<S: SecretStore, D: Deployer> Rotation<'_, S, D> {
    pub(super) async fn dry_run(mut self, phase: Phase) -> Result<Report, RotationError> {
        let (cfg, current) = (self.cfg, &self.current);
        let mut plan = Vec::new();
        match &phase {
            Phase::Fresh => plan.push(target::describe_create(cfg).unwrap_or_else(|| format!("generate a new value ({} characters{}) and write it as AWSPENDING", cfg.generate.length, cfg.json_key.as_ref().map(|k| format!(", into JSON key \"{k}\"")).unwrap_or_default()))),
            // A real run that retries with a fresh value drops this one first; the plan
            // has always shown the pending version as what is continued.
            Phase::Resume { version } | Phase::Retry { version, .. } => plan.push(format!("resume: our pending version {version} exists; continue with it")),
            Phase::FinishPending { version } => plan.push(format!("resume: remove AWSPENDING from current version {version}")),
            Phase::Deploy { version } => plan.push(format!("resume: version {version} is current; consumers not confirmed stable")),
            Phase::Foreign { version } => plan.push(format!("a foreign AWSPENDING is on {version}: back off if younger than {}, else take it over", crate::config::duration::format(FOREIGN_PENDING_GRACE))),
        }
        if matches!(
            phase,
            Phase::Fresh | Phase::Resume { .. } | Phase::Retry { .. } | Phase::Foreign { .. }
        ) {
            if let Some(key) = &cfg.json_key {
                // Read-only check that the current value is a JSON object with the key.
                let (_, cur) = self
                    .call(Step::Create, || {
                        self.store()
                            .get_value(&cfg.secret, Select::Stage(AWSCURRENT))
                    })
                    .await?;
                json_object(cfg, key, &cur)?;
            }
            plan.push(format!("set: target {}", cfg.target.kind()));
            plan.push("test: read the pending version back and compare digests".into());
            plan.push(format!("finish: move AWSCURRENT from {current} to the new version (AWSPREVIOUS follows), remove AWSPENDING"));
        }
        self.precheck().await?;
        if cfg.has_services() {
            let names: Vec<String> = cfg.services().map(|s| s.to_string()).collect();
            plan.push(format!(
                "redeploy (force new deployment): {}",
                names.join(", ")
            ));
            plan.push(format!(
                "wait until stable (timeout {})",
                crate::config::duration::format(cfg.stable_timeout.get())
            ));
        }
        for c in cfg.commands() {
            plan.push(describe_command(c));
        }
        if target::has_revoke(&cfg.target) {
            plan.push(target::describe_revoke(&cfg.target));
        }
        plan.push(format!("tag {TAG_LAST_ROTATED} and {TAG_DEPLOYED_VERSION}"));
        self.report.outcome = Outcome::DryRun;
        self.report.plan = plan;
        Ok(self.report)
    }
}
