//! What the rotation needs from ECS, as a trait, and the pure stability rules.

use crate::error::AwsError;
use crate::ids::{Account, ClusterName, DeploymentId, ServiceName, ServiceRef};
use chrono::{DateTime, Utc};
use std::future::Future;

/// ECS takes at most this many services per DescribeServices call.
pub const DESCRIBE_BATCH: usize = 10;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeploymentState {
    pub id: DeploymentId,
    /// PRIMARY, ACTIVE or INACTIVE.
    pub status: String,
    /// IN_PROGRESS, COMPLETED or FAILED (absent on very old services).
    pub rollout_state: Option<String>,
    pub rollout_state_reason: Option<String>,
    pub task_definition: Option<String>,
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    pub failed_tasks: i32,
    pub created: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceState {
    /// ACTIVE, DRAINING or INACTIVE.
    pub status: String,
    /// ECS, CODE_DEPLOY or EXTERNAL (absent means ECS).
    pub controller: Option<String>,
    pub desired: i32,
    pub running: i32,
    pub deployments: Vec<DeploymentState>,
    /// Newest first, a few at most.
    pub events: Vec<String>,
}

impl ServiceState {
    pub fn primary(&self) -> Option<&DeploymentState> {
        self.deployments.iter().find(|d| d.status == "PRIMARY")
    }

    pub fn forceable(&self) -> bool {
        matches!(self.controller.as_deref(), None | Some("ECS"))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Described {
    Found(ServiceState),
    /// DescribeServices listed it under `failures` (usually MISSING).
    Missing(String),
}

pub trait Deployer: Send + Sync + 'static {
    /// DescribeServices for at most [`DESCRIBE_BATCH`] services of one cluster; one entry
    /// per requested service, in order.
    fn describe(
        &self,
        account: &Account,
        cluster: &ClusterName,
        services: &[ServiceName],
    ) -> impl Future<Output = Result<Vec<Described>, AwsError>> + Send;

    /// UpdateService with forceNewDeployment; returns the id of the new PRIMARY deployment.
    fn force_deploy(
        &self,
        account: &Account,
        service: &ServiceRef,
    ) -> impl Future<Output = Result<DeploymentId, AwsError>> + Send;
}

/// Where one service stands relative to the deployment we started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Judgement {
    Stable,
    /// New tasks are still starting.
    Starting,
    /// The new deployment has all its tasks; older ones are draining.
    Draining,
    RolledBack(String),
    Missing(String),
    /// A later deployment (someone forced again, e.g. a second rotator) replaced ours. Its
    /// tasks start later still, so they read the new value too: wait on that one instead.
    Superseded(DeploymentId),
}

/// The stability rule. Stable means: our deployment is still PRIMARY, its rollout is
/// COMPLETED, it is the only deployment left, and running == desired. A FAILED rollout or
/// another PRIMARY (circuit-breaker rollback, or someone else's deployment) is a failure.
pub fn judge(state: &ServiceState, ours: &DeploymentId) -> Judgement {
    if state.status != "ACTIVE" {
        return Judgement::Missing(format!("service status is {}", state.status));
    }
    let mine = state.deployments.iter().find(|d| &d.id == ours);
    if let Some(d) = mine {
        if d.rollout_state.as_deref() == Some("FAILED") {
            return Judgement::RolledBack(
                d.rollout_state_reason
                    .clone()
                    .unwrap_or_else(|| "the deployment failed".into()),
            );
        }
    }
    let primary = state.primary();
    match (primary, mine) {
        (Some(p), Some(m)) if &p.id != ours => {
            // Ours is still listed and did not fail: a newer PRIMARY superseded it; an older
            // one taking over again means ECS went back to it.
            let newer = match (p.created, m.created) {
                (Some(pc), Some(mc)) => pc > mc,
                _ => true,
            };
            if newer {
                Judgement::Superseded(p.id.clone())
            } else {
                Judgement::RolledBack(format!(
                    "deployment {ours} is no longer PRIMARY: ECS went back to the earlier deployment {}",
                    p.id
                ))
            }
        }
        (Some(p), None) => {
            // Ours is gone. The service events say whether it failed (circuit breaker) or
            // was simply replaced by a later deployment.
            let failed = state.events.iter().find(|e| {
                (e.contains(ours.as_str()) && e.contains("fail"))
                    || e.contains("circuit breaker")
                    || e.contains("rolling back")
                    || e.contains("rolled back")
            });
            match failed {
                Some(e) => Judgement::RolledBack(e.clone()),
                None => Judgement::Superseded(p.id.clone()),
            }
        }
        (None, _) => Judgement::RolledBack(format!(
            "deployment {ours} is gone and no deployment is PRIMARY"
        )),
        (Some(p), Some(_)) => {
            // rolloutState is absent on services without it; then the classic rule applies.
            let completed = p.rollout_state.as_deref().is_none_or(|s| s == "COMPLETED");
            let settled = state.deployments.len() == 1
                && state.running == state.desired
                && p.running == p.desired;
            if completed && settled {
                Judgement::Stable
            } else if p.running >= p.desired && p.pending == 0 {
                Judgement::Draining
            } else {
                Judgement::Starting
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(id: &str, status: &str, rollout: &str, running: i32, desired: i32) -> DeploymentState {
        DeploymentState {
            id: DeploymentId::from(id),
            status: status.into(),
            rollout_state: Some(rollout.into()),
            rollout_state_reason: None,
            task_definition: None,
            desired,
            running,
            pending: desired - running,
            failed_tasks: 0,
            created: None,
        }
    }

    fn svc(deps: Vec<DeploymentState>, running: i32) -> ServiceState {
        ServiceState {
            status: "ACTIVE".into(),
            controller: None,
            desired: 2,
            running,
            deployments: deps,
            events: vec![],
        }
    }

    #[test]
    fn stable_only_when_ours_alone_completed_and_full() {
        let ours = DeploymentId::from("new");
        assert_eq!(
            judge(
                &svc(vec![dep("new", "PRIMARY", "COMPLETED", 2, 2)], 2),
                &ours
            ),
            Judgement::Stable
        );
        // Old deployment still draining.
        let s = svc(
            vec![
                dep("new", "PRIMARY", "IN_PROGRESS", 2, 2),
                dep("old", "ACTIVE", "COMPLETED", 1, 2),
            ],
            3,
        );
        assert_eq!(judge(&s, &ours), Judgement::Draining);
        let s = svc(
            vec![
                dep("new", "PRIMARY", "IN_PROGRESS", 0, 2),
                dep("old", "ACTIVE", "COMPLETED", 2, 2),
            ],
            2,
        );
        assert_eq!(judge(&s, &ours), Judgement::Starting);
        // COMPLETED but running below desired: not yet.
        assert_ne!(
            judge(
                &svc(vec![dep("new", "PRIMARY", "COMPLETED", 1, 2)], 1),
                &ours
            ),
            Judgement::Stable
        );
    }

    #[test]
    fn the_waiter_rule_would_call_a_rollback_stable_but_we_do_not() {
        // After a circuit-breaker rollback there is one deployment, running == desired:
        // `aws ecs wait services-stable` reports success. It is not ours.
        let ours = DeploymentId::from("new");
        let mut s = svc(vec![dep("rollback", "PRIMARY", "COMPLETED", 2, 2)], 2);
        s.events =
            vec!["(service api) (deployment new) deployment failed: tasks failed to start.".into()];
        assert!(matches!(judge(&s, &ours), Judgement::RolledBack(_)));
    }

    #[test]
    fn a_later_deployment_supersedes_ours() {
        let ours = DeploymentId::from("new");
        // Ours gone without a failure: replaced.
        let s = svc(vec![dep("later", "PRIMARY", "IN_PROGRESS", 0, 2)], 2);
        assert_eq!(
            judge(&s, &ours),
            Judgement::Superseded(DeploymentId::from("later"))
        );
        // Ours still draining behind a newer PRIMARY.
        let mut mine = dep("new", "ACTIVE", "IN_PROGRESS", 1, 2);
        mine.created = chrono::DateTime::from_timestamp(100, 0);
        let mut later = dep("later", "PRIMARY", "IN_PROGRESS", 0, 2);
        later.created = chrono::DateTime::from_timestamp(200, 0);
        let s = svc(vec![later.clone(), mine.clone()], 2);
        assert_eq!(
            judge(&s, &ours),
            Judgement::Superseded(DeploymentId::from("later"))
        );
        // An older deployment back as PRIMARY is a rollback.
        later.created = chrono::DateTime::from_timestamp(50, 0);
        let s = svc(vec![later, mine], 2);
        assert!(matches!(judge(&s, &ours), Judgement::RolledBack(_)));
    }

    #[test]
    fn failed_rollout_is_rolled_back_with_reason() {
        let ours = DeploymentId::from("new");
        let mut d = dep("new", "PRIMARY", "FAILED", 0, 2);
        d.rollout_state_reason =
            Some("ECS deployment circuit breaker: tasks failed to start.".into());
        match judge(
            &svc(vec![d, dep("old", "ACTIVE", "COMPLETED", 2, 2)], 2),
            &ours,
        ) {
            Judgement::RolledBack(r) => assert!(r.contains("circuit breaker")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn inactive_service_is_missing() {
        let mut s = svc(vec![dep("new", "PRIMARY", "COMPLETED", 2, 2)], 2);
        s.status = "INACTIVE".into();
        assert!(matches!(
            judge(&s, &DeploymentId::from("new")),
            Judgement::Missing(_)
        ));
    }
}
