//! Steps 6 and 7 for the consumers restarted by command: each command consumer's run
//! (shared with other rotations asking within the coalescing window) and its verdict,
//! in parallel with the ECS consumers' forces and waits. Also their precheck: every
//! program exists and may be executed, before anything changes.

use super::context::{boxed, Rotation};
use super::RotationError;
use crate::config::CommandConsumer;
use crate::error::ErrorClass;
use crate::ids::VersionId;
use crate::rotation::deploy::Deployer;
use crate::rotation::restart::{CommandVerdict, Program, Requester};
use crate::rotation::store::{SecretStore, Select, AWSCURRENT, AWSPREVIOUS};
use crate::rotation::Step;
use secrecy::SecretString;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Each command consumer of a rotation and its verdict.
pub type CommandVerdicts = BTreeMap<Arc<CommandConsumer>, CommandVerdict>;

impl<S: SecretStore, D: Deployer> Rotation<'_, S, D> {
    /// Every command consumer's programs can be run (exist, executable): the verdicts of
    /// those that cannot.
    pub(super) fn precheck_commands(&self) -> CommandVerdicts {
        let mut bad = CommandVerdicts::new();
        for c in self.cfg.commands() {
            let programs = std::iter::once((Program::Command, &c.command))
                .chain(c.verify.as_ref().map(|v| (Program::Verify, v)));
            for (program, argv) in programs {
                let Some(path) = argv.first() else { continue };
                if let Err(why) = self.engine.restarts.check(path) {
                    bad.entry(c.clone()).or_insert(CommandVerdict::Failed {
                        program,
                        status: format!("cannot start {path}: {why}"),
                        exit_code: None,
                        verify_attempts: 0,
                        output: String::new(),
                    });
                }
            }
        }
        bad
    }

    /// Restarts every command consumer for `version` (in parallel) and returns each
    /// verdict. `value` is the value that became current, to mask the programs' output;
    /// when the caller does not hold it (a resumed run), it is read back.
    pub(super) async fn restart_commands(
        &self,
        version: &VersionId,
        value: Option<SecretString>,
    ) -> CommandVerdicts {
        let cfg = self.cfg;
        let consumers: Vec<&Arc<CommandConsumer>> = cfg.commands().collect();
        if consumers.is_empty() {
            return CommandVerdicts::new();
        }
        let mask = self.mask_values(version, value).await;
        self.note(
            Step::Redeploy,
            Some(version),
            &format!("running {} consumer command(s)", consumers.len()),
        );
        let runs = consumers.into_iter().map(|c| {
            let who = Requester {
                secret: &cfg.name,
                secret_id: &cfg.secret.id,
                version,
                mask: mask.clone(),
            };
            let restarts = &self.engine.restarts;
            async move { (c.clone(), restarts.restart(c, who).await) }
        });
        let verdicts: CommandVerdicts = boxed(|| futures::future::join_all(runs))
            .await
            .into_iter()
            .collect();
        crate::failpoint!("after-consumer-commands");
        let telemetry = &self.engine.telemetry;
        for (c, v) in &verdicts {
            telemetry.command_finished(&cfg.name, c, v.label());
            if v.is_ok() {
                tracing::info!(target: super::LOG_TARGET, secret = %cfg.name, consumer = %c, outcome = v.label(), detail = %v, "consumer command succeeded");
            } else {
                tracing::warn!(target: super::LOG_TARGET, secret = %cfg.name, consumer = %c, outcome = v.label(), detail = %v, "consumer command did not succeed");
            }
        }
        verdicts
    }

    /// The values masked in the consumer programs' output: the new one (`value`, else
    /// read back) and the one it replaced (a program may print what it reads itself, say
    /// a Kubernetes secret not synced yet). None (and their output is not shown) when
    /// one cannot be read; no AWSPREVIOUS at all is fine.
    async fn mask_values(
        &self,
        version: &VersionId,
        value: Option<SecretString>,
    ) -> Option<Arc<[SecretString]>> {
        let s = self.secret();
        let current = match value {
            Some(v) => Ok(v),
            None => self
                .call(Step::Redeploy, || {
                    self.store()
                        .get_value(s, Select::Version(version, AWSCURRENT))
                })
                .await
                .map(|(_, v)| v),
        };
        let previous = match self
            .call(Step::Redeploy, || {
                self.store().get_value(s, Select::Stage(AWSPREVIOUS))
            })
            .await
        {
            Ok((_, v)) => Ok(Some(v)),
            Err(RotationError::Aws { source, .. }) if source.class == ErrorClass::NotFound => {
                Ok(None)
            }
            Err(e) => Err(e),
        };
        match (current, previous) {
            (Ok(c), Ok(p)) => Some(std::iter::once(c).chain(p).collect()),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(target: super::LOG_TARGET, secret = %self.cfg.name, error = %e, "cannot read the values to mask the consumer commands' output; their output is not shown");
                None
            }
        }
    }
}
