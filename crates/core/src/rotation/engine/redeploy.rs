//! Step 6, redeploy: force a new deployment of every consumer not already stable on the
//! new value, in parallel, and remember which deployment each call started.

use super::context::Rotation;
use crate::error::{AwsError, ErrorClass};
use crate::ids::{Account, ClusterName, ServiceRef, VersionId};
use crate::rotation::coordinator::{Update, Updates};
use crate::rotation::deploy::{stable_since, Deployer, Described, Forced, DESCRIBE_BATCH};
use crate::rotation::store::SecretStore;
use crate::rotation::wait::ServiceVerdict;
use crate::rotation::Step;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::StreamExt;
use std::collections::BTreeMap;
use tokio::sync::mpsc;

/// Forced deployments asked for at once per rotation.
const DEPLOY_CONCURRENCY: usize = 8;

/// What the forcing left to wait for.
pub(super) struct Forcing {
    /// The deployments started, one per service.
    pub(super) started: Vec<(ServiceRef, Forced)>,
    /// The services whose force failed, with their verdict.
    pub(super) refused: BTreeMap<ServiceRef, ServiceVerdict>,
    /// Where the coordinator reports the progress and verdicts of `started`.
    pub(super) updates: mpsc::UnboundedReceiver<Update>,
}

impl<S: SecretStore, D: Deployer> Rotation<'_, S, D> {
    /// The consumers already stable on a deployment created after `moved_before`.
    ///
    /// `moved_before` is the secret's LastChangedDate as read at the start of this run, in
    /// the Deploy phase (AWSCURRENT already on our version). AWS documents it as the last
    /// time the secret was modified in any way, so it is never earlier than the stage move
    /// that made our version current, and a deployment ECS created after it started its
    /// tasks after the move: they read the new value. The version's CreatedDate would not
    /// do: it is the put time, before set/test and the move, and a deployment between put
    /// and move read the old value. A later change (a tag) only makes this conservative.
    /// Any doubt (no date, no createdAt, a describe error) means "force again".
    pub(super) async fn stable_after(
        &self,
        moved_before: DateTime<Utc>,
    ) -> BTreeMap<ServiceRef, ()> {
        let cfg = self.cfg;
        let mut done = BTreeMap::new();
        for (cluster, services) in group_by_cluster(cfg.services()) {
            for chunk in services.chunks(DESCRIBE_BATCH) {
                let names: Vec<_> = chunk.iter().map(|s| s.service.clone()).collect();
                let states = match self
                    .call(Step::Redeploy, || {
                        self.deployer().describe(cfg.account(), &cluster, &names)
                    })
                    .await
                {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(target: super::LOG_TARGET, secret = %cfg.name, %cluster, error = %e, "cannot tell which consumers are already stable; forcing them all");
                        continue;
                    }
                };
                for (svc, st) in chunk.iter().zip(states) {
                    if let Described::Found(state) = st {
                        if stable_since(&state, moved_before) {
                            tracing::info!(target: super::LOG_TARGET, secret = %cfg.name, service = %svc, "already stable on a deployment started after the value became current; not forced again");
                            done.insert((*svc).clone(), ());
                        }
                    }
                }
            }
        }
        done
    }

    /// Step 6: forces a new deployment of every consumer not in `done`. A resumed run
    /// forces again rather than adopt a deployment it did not see start: only a deployment
    /// started after AWSCURRENT moved is sure to read the new value, and that moment is not
    /// recorded anywhere. (A deployment someone starts after ours supersedes it; the waiter
    /// follows that one, so two rotators forcing at once do not fail each other.)
    pub(super) async fn redeploy(
        &self,
        version: &VersionId,
        done: &BTreeMap<ServiceRef, ()>,
    ) -> Forcing {
        let cfg = self.cfg;
        let account = cfg.account();
        let todo: Vec<&ServiceRef> = cfg.services().filter(|s| !done.contains_key(*s)).collect();
        self.note(
            Step::Redeploy,
            Some(version),
            &format!(
                "forcing a new deployment of {} services ({} already stable on the new value)",
                todo.len(),
                done.len()
            ),
        );
        let (tx, rx) = mpsc::unbounded_channel();
        let jobs: Vec<BoxFuture<'_, (ServiceRef, Result<Forced, AwsError>)>> = todo
            .into_iter()
            .map(|svc| Box::pin(self.force(account, svc, &tx)) as BoxFuture<'_, _>)
            .collect();
        let results: Vec<_> = futures::stream::iter(jobs)
            .buffer_unordered(DEPLOY_CONCURRENCY)
            .collect()
            .await;
        crate::failpoint!("after-update-service");
        let mut verdicts = BTreeMap::new();
        let mut started = Vec::new();
        for (svc, r) in results {
            match r {
                Ok(d) => {
                    tracing::info!(target: super::LOG_TARGET, secret = %cfg.name, cluster = %svc.cluster, service = %svc.service, deployment = %d.id, "deployment started");
                    started.push((svc, d));
                }
                Err(e) => {
                    let v = match e.class {
                        ErrorClass::NotFound => ServiceVerdict::Missing {
                            reason: e.to_string(),
                        },
                        ErrorClass::Invalid
                            if e.info
                                .message
                                .as_deref()
                                .unwrap_or("")
                                .contains("deployment controller") =>
                        {
                            ServiceVerdict::NotForceable {
                                controller: e.to_string(),
                            }
                        }
                        _ => ServiceVerdict::Failed {
                            error: e.to_string(),
                        },
                    };
                    verdicts.insert(svc, v);
                }
            }
        }
        Forcing {
            started,
            refused: verdicts,
            updates: rx,
        }
    }

    /// Asks the coordinator for a deployment of `svc` (shared with other rotations asking
    /// within the coalescing window), followed for the stable timeout on `updates`.
    async fn force(
        &self,
        account: &Account,
        svc: &ServiceRef,
        updates: &Updates,
    ) -> (ServiceRef, Result<Forced, AwsError>) {
        // The coordinator times the call itself; this bounds the wait for the window too.
        let step_timeout = self.step_timeout() + self.engine.redeploy_coalesce;
        let forced =
            self.engine
                .coordinator
                .force(account, svc, self.cfg.stable_timeout.get(), updates);
        let r = match tokio::time::timeout(step_timeout, forced).await {
            Ok(r) => r,
            Err(_) => Err(AwsError::new(
                ErrorClass::Transient,
                "UpdateService",
                "Timeout",
                format!(
                    "timed out after {}",
                    crate::config::duration::format(step_timeout)
                ),
            )),
        };
        (svc.clone(), r)
    }
}

pub(super) fn group_by_cluster<'a>(
    services: impl Iterator<Item = &'a ServiceRef>,
) -> BTreeMap<ClusterName, Vec<&'a ServiceRef>> {
    let mut m: BTreeMap<_, Vec<&ServiceRef>> = BTreeMap::new();
    for s in services {
        m.entry(s.cluster.clone()).or_default().push(s);
    }
    m
}
