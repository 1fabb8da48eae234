//! Step 1, start/resume: read the secret, decide the phase ([`super::phase`]), and before
//! anything changes check the consumers, take over an abandoned foreign AWSPENDING, or
//! drop our own failed attempt's pending value.

use super::context::{Progress, Rotation};
use super::phase::{self, Detected};
use super::redeploy::group_by_cluster;
use super::{Engine, Report, RotateOptions, RotationError};
use crate::config::SecretConfig;
use crate::ids::VersionId;
use crate::rotation::deploy::{Deployer, Described, DESCRIBE_BATCH};
use crate::rotation::store::{SecretStore, AWSPENDING};
use crate::rotation::target;
use crate::rotation::wait::ServiceVerdict;
use crate::rotation::Step;
use std::collections::BTreeMap;

impl<S: SecretStore, D: Deployer> Engine<S, D> {
    /// Reads the secret, detects the phase and runs the rotation from there.
    pub(super) async fn start(
        &self,
        cfg: &SecretConfig,
        opts: RotateOptions,
        progress: &Progress<'_>,
    ) -> Result<Report, RotationError> {
        let meta = self
            .call(Step::Start, || self.store.describe(&cfg.secret))
            .await?;
        // (A secret scheduled for deletion fails without this warning.)
        if meta.rotation_enabled && !meta.deleted {
            tracing::warn!(target: super::LOG_TARGET, secret = %cfg.name, "AWS-native rotation is also enabled on this secret; two rotators will fight over AWSPENDING");
        }
        let expected = phase::Expected {
            replaces: opts.replaces.as_ref(),
            resume_only: opts.resume_only,
            fresh_retry: opts.fresh && target::fresh_value_on_retry(&cfg.target),
        };
        match phase::detect(&meta, expected)? {
            Detected::AlreadyRotated { current } => {
                self.note(
                    progress,
                    cfg,
                    Step::Done,
                    Some(&current),
                    "already rotated by another rotator; nothing to do",
                );
                Ok(Report::already_rotated(
                    cfg,
                    Some(current.clone()),
                    Some(current),
                ))
            }
            Detected::Rotate { current, phase } => {
                let rotation = Rotation {
                    engine: self,
                    cfg,
                    opts,
                    progress,
                    meta,
                    report: Report::starting(cfg, &current),
                    current,
                };
                rotation.run(phase).await
            }
        }
    }
}

impl<S: SecretStore, D: Deployer> Rotation<'_, S, D> {
    /// Checks that every consumer exists and can be force-redeployed, and that every
    /// consumer command's programs can be run, before any change.
    pub(super) async fn precheck(&self) -> Result<(), RotationError> {
        let cfg = self.cfg;
        let mut verdicts = BTreeMap::new();
        let mut bad = false;
        for (cluster, services) in group_by_cluster(cfg.services()) {
            for chunk in services.chunks(DESCRIBE_BATCH) {
                let names: Vec<_> = chunk.iter().map(|s| s.service.clone()).collect();
                let states = self
                    .call(Step::Start, || {
                        self.deployer().describe(cfg.account(), &cluster, &names)
                    })
                    .await?;
                for (svc, st) in chunk.iter().zip(states) {
                    let v = match st {
                        Described::Missing(r) => ServiceVerdict::Missing { reason: r },
                        Described::Found(state) if state.status != "ACTIVE" => {
                            ServiceVerdict::Missing {
                                reason: format!("service status is {}", state.status),
                            }
                        }
                        Described::Found(state) if !state.forceable() => {
                            ServiceVerdict::NotForceable {
                                controller: state.controller.unwrap_or_default(),
                            }
                        }
                        Described::Found(_) => ServiceVerdict::Stable,
                    };
                    bad |= v != ServiceVerdict::Stable;
                    verdicts.insert((*svc).clone(), v);
                }
            }
        }
        let commands = self.precheck_commands();
        if bad || !commands.is_empty() {
            return Err(RotationError::Consumers {
                step: Step::Start,
                verdicts,
                commands,
            });
        }
        Ok(())
    }

    /// Backs off from a foreign AWSPENDING that may be in use, or takes AWSPENDING off an
    /// abandoned one (the version stays).
    pub(super) async fn take_over_foreign(&self, version: &VersionId) -> Result<(), RotationError> {
        let (cfg, s) = (self.cfg, self.secret());
        let versions = self.call(Step::Start, || self.store().versions(s)).await?;
        let created = versions
            .iter()
            .find(|v| &v.id == version)
            .and_then(|v| v.created);
        phase::foreign_takeover(version, created, self.engine.clock.now())?;
        tracing::warn!(target: super::LOG_TARGET, secret = %cfg.name, pending_version = %version, "taking over an abandoned AWSPENDING left by another tool");
        self.call(Step::Start, || {
            self.store()
                .update_stage(s, AWSPENDING, None, Some(version))
        })
        .await
    }

    /// A retry after a failure gets a fresh value: the failed attempt's pending value is
    /// dropped first (a value a target refused once would likely be refused again).
    pub(super) async fn drop_pending(&self, version: &VersionId) -> Result<(), RotationError> {
        self.note(
            Step::Create,
            Some(version),
            "dropping the failed attempt's pending value",
        );
        self.call(Step::Create, || {
            self.store()
                .update_stage(self.secret(), AWSPENDING, None, Some(version))
        })
        .await
    }
}
