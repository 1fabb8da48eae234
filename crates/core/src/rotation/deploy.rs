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

/// A deployment UpdateService started: its id and, from the same response, its createdAt
/// (what later tells a superseding deployment from a rollback to an older one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forced {
    pub id: DeploymentId,
    pub created: Option<DateTime<Utc>>,
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

    /// UpdateService with forceNewDeployment; returns the new PRIMARY deployment.
    fn force_deploy(
        &self,
        account: &Account,
        service: &ServiceRef,
    ) -> impl Future<Output = Result<Forced, AwsError>> + Send;
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

/// Whether a service already runs only tasks started after `after`: ACTIVE, one
/// deployment left, PRIMARY with rolloutState COMPLETED, all its tasks running, and
/// created strictly after `after`. Without a createdAt or a rolloutState it cannot be
/// shown, so it is not (the caller forces a new deployment instead).
pub fn stable_since(state: &ServiceState, after: DateTime<Utc>) -> bool {
    let [only] = state.deployments.as_slice() else {
        return false;
    };
    state.status == "ACTIVE"
        && state.forceable()
        && only.status == "PRIMARY"
        && only.rollout_state.as_deref() == Some("COMPLETED")
        && only.running == only.desired
        && state.running == state.desired
        && only.created.is_some_and(|c| c > after)
}

/// Whether a service event names this deployment (the id as a whole word: the event of
/// `ecs-svc/12345` does not name `ecs-svc/123`).
pub fn names_deployment(event: &str, id: &DeploymentId) -> bool {
    let id = id.as_str();
    if id.is_empty() {
        return false;
    }
    event.match_indices(id).any(|(at, _)| {
        let before = event[..at].chars().next_back();
        let after = event[at + id.len()..].chars().next();
        let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '/');
        !word(before) && !word(after)
    })
}

/// The event saying that this deployment failed, if one is still among the latest.
fn failure_event<'a>(state: &'a ServiceState, ours: &DeploymentId) -> Option<&'a String> {
    state
        .events
        .iter()
        .find(|e| names_deployment(e, ours) && (e.contains("fail") || e.contains("roll")))
}

/// The stability rule. Stable means: our deployment is still PRIMARY, its rollout is
/// COMPLETED, it is the only deployment left, and running == desired. A FAILED rollout or
/// an older deployment back as PRIMARY (a circuit-breaker rollback) is a failure; a
/// PRIMARY created after ours (someone forced again) supersedes ours and is followed.
///
/// `ours_created` is our deployment's createdAt (from the UpdateService response, or from
/// an earlier describe). Without it no deployment can be shown to be newer, so a foreign
/// PRIMARY is a failure: following an older deployment could call a rollback "stable".
/// Events count only when they name our deployment id: ECS keeps a service's events for
/// weeks, and a "rolled back" line of an earlier deployment says nothing about ours.
pub fn judge(
    state: &ServiceState,
    ours: &DeploymentId,
    ours_created: Option<DateTime<Utc>>,
) -> Judgement {
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
    let ours_created = ours_created.or_else(|| mine.and_then(|m| m.created));
    let primary = state.primary();
    match primary {
        Some(p) if &p.id != ours => {
            if let Some(e) = failure_event(state, ours) {
                return Judgement::RolledBack(e.clone());
            }
            // A PRIMARY that ECS itself started to roll back says so in its own reason.
            if let Some(r) = p
                .rollout_state_reason
                .as_deref()
                .filter(|r| r.contains("circuit breaker") || r.contains("rolling back"))
            {
                return Judgement::RolledBack(format!(
                    "deployment {ours} is no longer PRIMARY: {} is a rollback ({r})",
                    p.id
                ));
            }
            match (p.created, ours_created) {
                (Some(pc), Some(oc)) if pc > oc => Judgement::Superseded(p.id.clone()),
                (Some(pc), Some(_)) => Judgement::RolledBack(format!(
                    "deployment {ours} is no longer PRIMARY: ECS went back to the earlier deployment {} (created {})",
                    p.id,
                    pc.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                )),
                _ => Judgement::RolledBack(format!(
                    "deployment {ours} is no longer PRIMARY and {} cannot be shown to be newer (no createdAt)",
                    p.id
                )),
            }
        }
        None => Judgement::RolledBack(format!(
            "deployment {ours} is gone and no deployment is PRIMARY"
        )),
        Some(p) => {
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
                &ours,
                None
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
        assert_eq!(judge(&s, &ours, None), Judgement::Draining);
        let s = svc(
            vec![
                dep("new", "PRIMARY", "IN_PROGRESS", 0, 2),
                dep("old", "ACTIVE", "COMPLETED", 2, 2),
            ],
            2,
        );
        assert_eq!(judge(&s, &ours, None), Judgement::Starting);
        // COMPLETED but running below desired: not yet.
        assert_ne!(
            judge(
                &svc(vec![dep("new", "PRIMARY", "COMPLETED", 1, 2)], 1),
                &ours,
                None
            ),
            Judgement::Stable
        );
    }

    #[test]
    fn settled_needs_ours_alone_and_every_count_full() {
        let ours = DeploymentId::from("new");
        // The old deployment is still listed (0 tasks): not settled yet.
        let s = svc(
            vec![
                dep("new", "PRIMARY", "COMPLETED", 2, 2),
                dep("old", "ACTIVE", "COMPLETED", 0, 0),
            ],
            2,
        );
        assert_eq!(judge(&s, &ours, None), Judgement::Draining);
        // A task of ours stopped and is not replaced yet (none pending): starting again.
        let mut d = dep("new", "PRIMARY", "IN_PROGRESS", 1, 2);
        d.pending = 0;
        assert_eq!(judge(&svc(vec![d], 1), &ours, None), Judgement::Starting);
    }

    #[test]
    fn a_newer_primary_that_says_it_rolls_back_is_a_rollback() {
        let ours = DeploymentId::from("new");
        let at = |s: i64| Some(DateTime::<Utc>::from_timestamp(1_772_000_000 + s, 0).unwrap());
        for reason in [
            "ECS deployment circuit breaker: rolling back to deploymentId old",
            "rolling back to deploymentId old",
            "circuit breaker: task failed to start",
        ] {
            let mut p = dep("back", "PRIMARY", "IN_PROGRESS", 1, 2);
            p.rollout_state_reason = Some(reason.into());
            p.created = at(60);
            let s = svc(vec![p, dep("new", "ACTIVE", "FAILED", 0, 2)], 1);
            assert!(
                matches!(judge(&s, &ours, at(0)), Judgement::RolledBack(_)),
                "{reason}"
            );
        }
        // Created in the same second as ours: not shown to be newer, so not a successor.
        let mut p = dep("other", "PRIMARY", "IN_PROGRESS", 1, 2);
        p.created = at(0);
        let s = svc(vec![p], 1);
        assert!(matches!(judge(&s, &ours, at(0)), Judgement::RolledBack(_)));
        // One second later: superseded.
        let mut p = dep("other", "PRIMARY", "IN_PROGRESS", 1, 2);
        p.created = at(1);
        assert_eq!(
            judge(&svc(vec![p], 1), &ours, at(0)),
            Judgement::Superseded(DeploymentId::from("other"))
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
        assert!(matches!(judge(&s, &ours, None), Judgement::RolledBack(_)));
    }

    #[test]
    fn a_later_deployment_supersedes_ours() {
        let ours = DeploymentId::from("new");
        // Ours gone without a failure, replaced by a newer one.
        let mut l = dep("later", "PRIMARY", "IN_PROGRESS", 0, 2);
        l.created = chrono::DateTime::from_timestamp(200, 0);
        let s = svc(vec![l], 2);
        assert_eq!(
            judge(&s, &ours, chrono::DateTime::from_timestamp(100, 0)),
            Judgement::Superseded(DeploymentId::from("later"))
        );
        // Without our createdAt nothing is shown to be newer: not followed.
        assert!(matches!(judge(&s, &ours, None), Judgement::RolledBack(_)));
        // Ours still draining behind a newer PRIMARY.
        let mut mine = dep("new", "ACTIVE", "IN_PROGRESS", 1, 2);
        mine.created = chrono::DateTime::from_timestamp(100, 0);
        let mut later = dep("later", "PRIMARY", "IN_PROGRESS", 0, 2);
        later.created = chrono::DateTime::from_timestamp(200, 0);
        let s = svc(vec![later.clone(), mine.clone()], 2);
        assert_eq!(
            judge(&s, &ours, None),
            Judgement::Superseded(DeploymentId::from("later"))
        );
        // An older deployment back as PRIMARY is a rollback.
        later.created = chrono::DateTime::from_timestamp(50, 0);
        let s = svc(vec![later, mine], 2);
        assert!(matches!(judge(&s, &ours, None), Judgement::RolledBack(_)));
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
            None,
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
            judge(&s, &DeploymentId::from("new"), None),
            Judgement::Missing(_)
        ));
    }

    #[test]
    fn events_name_a_deployment_only_as_a_whole_id() {
        let id = DeploymentId::from("ecs-svc/123");
        assert!(names_deployment(
            "(deployment ecs-svc/123) deployment failed",
            &id
        ));
        assert!(names_deployment(
            "rolling back to deployment ecs-svc/123.",
            &id
        ));
        assert!(!names_deployment(
            "(deployment ecs-svc/12345) deployment failed",
            &id
        ));
        assert!(!names_deployment("(deployment xecs-svc/123) failed", &id));
    }

    use proptest::prelude::*;

    /// A random deployment timeline around ours (created at t = 1000 s): deployments
    /// created before it (what a rollback goes back to) and after it (a CI deployment or
    /// another rotator), a PRIMARY among them, and old events about other deployments.
    #[derive(Debug, Clone)]
    struct Timeline {
        others: Vec<(i64, bool)>,
        primary: usize,
        ours_listed: bool,
        ours_failed_event: bool,
        noise: Vec<u8>,
    }

    fn timelines() -> impl Strategy<Value = Timeline> {
        (
            prop::collection::vec((0i64..2000, any::<bool>()), 1..5),
            any::<prop::sample::Index>(),
            any::<bool>(),
            any::<bool>(),
            prop::collection::vec(0u8..6, 0..12),
        )
            .prop_map(
                |(others, p, ours_listed, ours_failed_event, noise)| Timeline {
                    primary: p.index(others.len()),
                    others,
                    ours_listed,
                    ours_failed_event,
                    noise,
                },
            )
    }

    fn noise_event(kind: u8, n: usize) -> String {
        // Unrelated deployments: ids that share a prefix with ours but are not ours.
        let other = format!("ecs-svc/77{n}");
        match kind {
            0 => format!(
                "(service api) (deployment {other}) deployment failed: tasks failed to start."
            ),
            1 => format!("(service api) rolling back to deployment {other}."),
            2 => "(service api) ECS deployment circuit breaker: rolled back".into(),
            3 => "(service api) has reached a steady state.".into(),
            4 => format!("(service api) has started a deployment {other}."),
            _ => "(service api) has started 2 tasks: (task abc).".into(),
        }
    }

    proptest! {
        /// Older PRIMARY: rolled back, whatever the events. Newer PRIMARY: followed, unless
        /// an event names our deployment as failed. Events about others never decide.
        #[test]
        fn superseded_only_by_a_newer_deployment(t in timelines()) {
            let ours = DeploymentId::from("ecs-svc/77");
            let ours_at = chrono::DateTime::from_timestamp(1000, 0);
            let mut deps = Vec::new();
            for (i, (at, _)) in t.others.iter().enumerate() {
                // Distinct from ours: never exactly at 1000 s.
                let at = if *at == 1000 { 1001 } else { *at };
                let mut d = dep(&format!("ecs-svc/5{i}"), if i == t.primary { "PRIMARY" } else { "ACTIVE" }, "IN_PROGRESS", 1, 2);
                d.created = chrono::DateTime::from_timestamp(at, 0);
                deps.push(d);
            }
            if t.ours_listed {
                let mut m = dep("ecs-svc/77", "ACTIVE", "IN_PROGRESS", 1, 2);
                m.created = ours_at;
                deps.push(m);
            }
            let primary_at = deps[t.primary].created;
            let primary_id = deps[t.primary].id.clone();
            let mut s = svc(deps, 2);
            s.events = t.noise.iter().enumerate().map(|(n, k)| noise_event(*k, n)).collect();
            if t.ours_failed_event {
                s.events.insert(0, "(service api) (deployment ecs-svc/77) deployment failed: tasks failed to start.".into());
            }
            let j = judge(&s, &ours, ours_at);
            if t.ours_failed_event || primary_at <= ours_at {
                prop_assert!(matches!(j, Judgement::RolledBack(_)), "{j:?}");
            } else {
                prop_assert_eq!(j, Judgement::Superseded(primary_id));
            }
        }
    }
}
