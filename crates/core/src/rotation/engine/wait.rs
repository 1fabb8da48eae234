//! Step 7, wait: follow the deployments started until each is stable, rolled back,
//! failed or out of time (`crate::rotation::wait` judges the rollouts), and record the
//! verdicts.

use super::context::{boxed, Rotation};
use super::redeploy::Forcing;
use crate::ids::{ServiceRef, VersionId};
use crate::rotation::coordinator::collect;
use crate::rotation::deploy::Deployer;
use crate::rotation::store::SecretStore;
use crate::rotation::wait::ServiceVerdict;
use crate::rotation::Step;
use std::collections::BTreeMap;

impl<S: SecretStore, D: Deployer> Rotation<'_, S, D> {
    /// Step 7: the verdict of every consumer: the refused forces, the waited deployments,
    /// and the ones in `done` (already stable on the new value) as stable.
    pub(super) async fn wait(
        &self,
        version: &VersionId,
        forcing: Forcing,
        done: BTreeMap<ServiceRef, ()>,
    ) -> BTreeMap<ServiceRef, ServiceVerdict> {
        let (cfg, telemetry) = (self.cfg, &self.engine.telemetry);
        let Forcing {
            started,
            refused: mut verdicts,
            updates,
        } = forcing;
        self.note(
            Step::Wait,
            Some(version),
            &format!("waiting for {} deployments to be stable", started.len()),
        );
        let t0 = tokio::time::Instant::now();
        // The coordinator answers by each deadline; this guard only outlasts it.
        let guard = t0 + cfg.stable_timeout.get() + self.step_timeout();
        let waiting = started.into_iter().map(|(s, _)| s).collect();
        let waited = boxed(|| collect(updates, waiting, guard, self.progress)).await;
        let secs = t0.elapsed().as_secs_f64();
        for (svc, (v, polls)) in waited {
            telemetry.wait_finished(v.label(), secs);
            telemetry.wait_polls(polls);
            verdicts.insert(svc, v);
        }
        verdicts.extend(done.into_keys().map(|s| (s, ServiceVerdict::Stable)));
        for (svc, v) in &verdicts {
            telemetry.redeploy_finished(&cfg.name, svc, v.label());
            if *v == ServiceVerdict::Stable {
                tracing::info!(target: super::LOG_TARGET, secret = %cfg.name, cluster = %svc.cluster, service = %svc.service, outcome = v.label(), "service stable on the new deployment");
            } else {
                tracing::warn!(target: super::LOG_TARGET, secret = %cfg.name, cluster = %svc.cluster, service = %svc.service, outcome = v.label(), detail = %v, "service not stable");
            }
        }
        verdicts
    }
}
