//! Waiting until every redeployed service is stable on the deployment we started.
//!
//! Polling is paced against the AWS CLI waiter (one DescribeServices every 15 s, at most
//! 40): we never make more calls than it would have made by the same moment, poll slowly
//! while new tasks start, and spend the saved calls polling fast once only old tasks are
//! draining, which is when completion is near. A stable timeout longer than the waiter's
//! ten minutes spreads the slow polls over it; a few fast ones still follow each sign of
//! draining.
//!
//! ECS reads are eventually consistent ("might not be immediately visible to all
//! subsequent commands"): until our deployment has appeared in an answer, an answer
//! without it is not taken as a rollback (for [`VISIBILITY_GRACE`]).

use super::deploy::{
    judge, names_deployment, Deployer, Described, Forced, Judgement, DESCRIBE_BATCH,
};
use super::Observer;
use crate::ids::{Account, ClusterName, DeploymentId, ServiceName, ServiceRef};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// The CLI waiter's period; our call budget at time t is what it would have used by then.
pub const WAITER_PERIOD: Duration = Duration::from_secs(15);
/// The CLI waiter gives up after this many DescribeServices calls: so do we, whatever the
/// stable timeout (then we sleep until the deadline and report what we last saw).
pub const WAITER_MAX_ATTEMPTS: u64 = 40;
/// Fast polls in a row after a service starts draining, before the even spread of a long
/// timeout applies again: enough to see a short drain complete within seconds, few
/// enough that a long one (a 300 s deregistration delay) leaves polls for the rest.
const DRAIN_BURST: u32 = 5;
/// Burst polls in one wait, however many services drain one after another: the other
/// 30 of the waiter's 40 stay spread to the deadline.
const BURST_POLLS: u32 = 10;
/// Service events a stalled verdict reports.
const STALLED_EVENTS: usize = 10;
/// How long an answer that does not list the deployment UpdateService returned yet may
/// be a stale read. A real rollback takes minutes (failed tasks first), so judging one
/// this late costs little; judging a stale read as a rollback fails a healthy rotation.
pub const VISIBILITY_GRACE: Duration = Duration::from_secs(60);
const FIRST_POLL: Duration = Duration::from_secs(2);
/// Slower than the waiter while new tasks start: the calls saved are spent near the end.
const STARTING_POLL: Duration = Duration::from_secs(30);
const DRAINING_POLL: Duration = Duration::from_secs(3);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum ServiceVerdict {
    Stable,
    RolledBack {
        reason: String,
        events: Vec<String>,
    },
    Stalled {
        running: i32,
        desired: i32,
        failed_tasks: i32,
        events: Vec<String>,
    },
    Missing {
        reason: String,
    },
    NotForceable {
        controller: String,
    },
    Failed {
        error: String,
    },
}

impl ServiceVerdict {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Stable => "stable",
            Self::RolledBack { .. } => "rolled_back",
            Self::Stalled { .. } => "stalled",
            Self::Missing { .. } => "missing",
            Self::NotForceable { .. } => "not_forceable",
            Self::Failed { .. } => "failed",
        }
    }
}

impl std::fmt::Display for ServiceVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stable => write!(f, "stable"),
            Self::RolledBack { reason, events } => {
                write!(f, "rolled back: {reason}")?;
                if let Some(e) = events.first() {
                    write!(f, " (last event: {e})")?;
                }
                Ok(())
            }
            Self::Stalled { running, desired, failed_tasks, .. } => write!(
                f,
                "stalled: {running}/{desired} tasks running on the new deployment, {failed_tasks} failed, at the timeout"
            ),
            Self::Missing { reason } => write!(f, "missing: {reason}"),
            Self::NotForceable { controller } => {
                write!(f, "cannot force a deployment: deployment controller is {controller}")
            }
            Self::Failed { error } => write!(f, "failed: {error}"),
        }
    }
}

/// The service events that explain a failure: those naming our deployment or a failure,
/// else the latest few.
fn relevant_events(events: &[String], ours: &DeploymentId) -> Vec<String> {
    let hits: Vec<String> = events
        .iter()
        .filter(|e| e.contains(ours.as_str()) || e.contains("fail") || e.contains("roll"))
        .take(3)
        .cloned()
        .collect();
    if hits.is_empty() {
        events.iter().take(3).cloned().collect()
    } else {
        hits
    }
}

/// Calls the CLI waiter has made `elapsed` after the deployment started: one at once, then
/// one per period. Never being ahead of it keeps our total at or below its total.
fn budget(elapsed: Duration) -> u64 {
    1 + elapsed.as_secs() / WAITER_PERIOD.as_secs()
}

/// Polls until each service reaches a verdict or `timeout` passes. At most
/// [`WAITER_MAX_ATTEMPTS`] rounds of DescribeServices, none at or after the deadline; a
/// DescribeServices call still unanswered at the deadline is abandoned.
pub async fn wait_stable<D: Deployer>(
    deployer: &D,
    account: &Account,
    ours: &[(ServiceRef, Forced)],
    timeout: Duration,
    observer: &dyn Observer,
) -> BTreeMap<ServiceRef, ServiceVerdict> {
    if ours.is_empty() {
        return BTreeMap::new();
    }
    let start = Instant::now();
    let deadline = start + timeout;
    // Which deployment each service is judged on (and its createdAt, when known); a
    // superseding one takes over.
    let mut created: BTreeMap<ServiceRef, chrono::DateTime<chrono::Utc>> = ours
        .iter()
        .filter_map(|(s, f)| f.created.map(|c| (s.clone(), c)))
        .collect();
    let mut ours: Vec<(ServiceRef, DeploymentId)> = ours
        .iter()
        .map(|(s, f)| (s.clone(), f.id.clone()))
        .collect();
    let mut verdicts = BTreeMap::new();
    let mut last: Last = BTreeMap::new();
    // Services whose deployment (ours, or the one that superseded it) ECS has listed.
    let mut seen: std::collections::BTreeSet<ServiceRef> = Default::default();
    let max_rounds = WAITER_MAX_ATTEMPTS;
    let mut fast_in_a_row: u32 = 0;
    let mut burst_left = BURST_POLLS;
    let mut was_draining: std::collections::BTreeSet<ServiceRef> = Default::default();
    let mut rounds: u64 = 0;
    let mut backoff = Duration::ZERO;
    let mut next = start + FIRST_POLL;

    loop {
        if next >= deadline || rounds >= max_rounds {
            // No poll at or after the deadline, none beyond the waiter's attempts.
            tokio::time::sleep_until(deadline).await;
            return stalled(&ours, verdicts, &last);
        }
        tokio::time::sleep_until(next).await;
        let pending: Vec<&(ServiceRef, DeploymentId)> = ours
            .iter()
            .filter(|(s, _)| !verdicts.contains_key(s))
            .collect();
        let mut by_cluster: BTreeMap<&ClusterName, Vec<&(ServiceRef, DeploymentId)>> =
            BTreeMap::new();
        for p in &pending {
            by_cluster.entry(&p.0.cluster).or_default().push(p);
        }
        let mut throttled = false;
        let mut replaced: Vec<(
            ServiceRef,
            DeploymentId,
            Option<chrono::DateTime<chrono::Utc>>,
        )> = Vec::new();
        for (cluster, items) in by_cluster {
            for chunk in items.chunks(DESCRIBE_BATCH) {
                let names: Vec<ServiceName> =
                    chunk.iter().map(|(s, _)| s.service.clone()).collect();
                let described =
                    tokio::time::timeout_at(deadline, deployer.describe(account, cluster, &names))
                        .await;
                let Ok(described) = described else {
                    tracing::warn!(%cluster, "DescribeServices did not answer before the stable timeout");
                    throttled = true;
                    continue;
                };
                match described {
                    Ok(states) => {
                        for ((svc, dep), st) in chunk.iter().map(|p| (&p.0, &p.1)).zip(states) {
                            match st {
                                Described::Missing(r) => {
                                    verdicts
                                        .insert(svc.clone(), ServiceVerdict::Missing { reason: r });
                                }
                                Described::Found(state) => {
                                    let mine = state.deployments.iter().find(|d| &d.id == dep);
                                    if let Some(c) = mine.and_then(|m| m.created) {
                                        created.entry(svc.clone()).or_insert(c);
                                    }
                                    if mine.is_some() {
                                        seen.insert(svc.clone());
                                    }
                                    let mut j = judge(&state, dep, created.get(svc).copied());
                                    if matches!(j, Judgement::RolledBack(_))
                                        && mine.is_none()
                                        && !seen.contains(svc)
                                        && start.elapsed() < VISIBILITY_GRACE
                                        && !state.events.iter().any(|e| names_deployment(e, dep))
                                    {
                                        // Possibly a read from before our UpdateService
                                        // (which cannot hold an event naming ours).
                                        j = Judgement::Starting;
                                    }
                                    let (run, des, failed) = mine
                                        .map_or((0, state.desired, 0), |d| {
                                            (d.running, d.desired, d.failed_tasks)
                                        });
                                    observer.service_progress(svc, &j, run, des);
                                    match &j {
                                        Judgement::Stable => {
                                            verdicts.insert(svc.clone(), ServiceVerdict::Stable);
                                        }
                                        Judgement::RolledBack(reason) => {
                                            verdicts.insert(
                                                svc.clone(),
                                                ServiceVerdict::RolledBack {
                                                    reason: reason.clone(),
                                                    events: relevant_events(&state.events, dep),
                                                },
                                            );
                                        }
                                        Judgement::Missing(reason) => {
                                            verdicts.insert(
                                                svc.clone(),
                                                ServiceVerdict::Missing {
                                                    reason: reason.clone(),
                                                },
                                            );
                                        }
                                        Judgement::Superseded(later) => {
                                            tracing::info!(cluster = %svc.cluster, service = %svc.service, deployment = %dep, replaced_by = %later, "a later deployment replaced ours; waiting on it");
                                            let later_created = state
                                                .deployments
                                                .iter()
                                                .find(|d| &d.id == later)
                                                .and_then(|d| d.created);
                                            replaced.push((
                                                svc.clone(),
                                                later.clone(),
                                                later_created,
                                            ));
                                        }
                                        _ => {}
                                    }
                                    // The latest few explain a stall; the judge saw them all.
                                    let latest =
                                        state.events.into_iter().take(STALLED_EVENTS).collect();
                                    last.insert(svc.clone(), (j, run, des, failed, latest));
                                }
                            }
                        }
                    }
                    Err(e) if e.is_retryable() => {
                        tracing::warn!(error = %e, %cluster, "DescribeServices failed; backing off");
                        throttled = true;
                    }
                    Err(e) => {
                        for (svc, _) in chunk.iter().map(|p| (&p.0, &p.1)) {
                            verdicts.insert(
                                svc.clone(),
                                ServiceVerdict::Failed {
                                    error: e.to_string(),
                                },
                            );
                        }
                    }
                }
            }
        }
        for (svc, later, later_created) in replaced {
            if let Some(entry) = ours.iter_mut().find(|(s, _)| *s == svc) {
                entry.1 = later;
            }
            match later_created {
                Some(c) => created.insert(svc, c),
                None => created.remove(&svc),
            };
        }
        rounds += 1;
        crate::failpoint!("during-wait");
        if verdicts.len() == ours.len() {
            return verdicts;
        }
        let now = Instant::now();
        if now >= deadline {
            return stalled(&ours, verdicts, &last);
        }
        backoff = if throttled {
            (backoff * 2).clamp(Duration::from_secs(2), MAX_BACKOFF)
        } else {
            Duration::ZERO
        };
        let draining_now: std::collections::BTreeSet<ServiceRef> = last
            .iter()
            .filter(|(s, (j, ..))| !verdicts.contains_key(*s) && *j == Judgement::Draining)
            .map(|(s, _)| s.clone())
            .collect();
        let draining = !draining_now.is_empty();
        // A service that started draining since the last poll gets its own burst.
        if draining_now.difference(&was_draining).next().is_some() {
            fast_in_a_row = 0;
        }
        was_draining = draining_now;
        let wanted = if draining {
            DRAINING_POLL
        } else {
            STARTING_POLL
        };
        let mut at = now + wanted.max(backoff);
        // Never run ahead of the waiter's call count: wait for the budget to allow it.
        while budget(at - start) <= rounds {
            at += Duration::from_millis(250);
        }
        fast_in_a_row = if draining { fast_in_a_row + 1 } else { 0 };
        // A timeout longer than the waiter's ten minutes: when the polls left, even at the
        // slow pace, would run out before the deadline, spread them evenly over the time
        // left, so a long rollout is still seen completing (not judged on a poll made
        // minutes before the deadline). Not for the first few polls of a drain: that is
        // when completion is near.
        let left = WAITER_MAX_ATTEMPTS.saturating_sub(rounds).max(1);
        let remaining = deadline.saturating_duration_since(now);
        let in_burst = burst_left > 0 && (1..=DRAIN_BURST).contains(&fast_in_a_row);
        if in_burst {
            burst_left -= 1;
        }
        if !in_burst && STARTING_POLL.saturating_mul(left as u32) < remaining {
            at = at.max(now + remaining / (left as u32 + 1));
        }
        next = at;
    }
}

type Last = BTreeMap<ServiceRef, (Judgement, i32, i32, i32, Vec<String>)>;

/// Verdicts at the deadline: services without one are stalled, with what was last seen.
fn stalled(
    ours: &[(ServiceRef, DeploymentId)],
    mut verdicts: BTreeMap<ServiceRef, ServiceVerdict>,
    last: &Last,
) -> BTreeMap<ServiceRef, ServiceVerdict> {
    for (svc, _) in ours {
        if !verdicts.contains_key(svc) {
            let v = match last.get(svc) {
                Some((_, run, des, failed, events)) => ServiceVerdict::Stalled {
                    running: *run,
                    desired: *des,
                    failed_tasks: *failed,
                    events: events.clone(),
                },
                None => ServiceVerdict::Stalled {
                    running: 0,
                    desired: 0,
                    failed_tasks: 0,
                    events: vec![],
                },
            };
            verdicts.insert(svc.clone(), v);
        }
    }
    verdicts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_labels_are_the_metric_values() {
        let labels: Vec<_> = [
            ServiceVerdict::Stable,
            ServiceVerdict::RolledBack {
                reason: String::new(),
                events: vec![],
            },
            ServiceVerdict::Stalled {
                running: 0,
                desired: 1,
                failed_tasks: 0,
                events: vec![],
            },
            ServiceVerdict::Missing {
                reason: String::new(),
            },
            ServiceVerdict::NotForceable {
                controller: String::new(),
            },
            ServiceVerdict::Failed {
                error: String::new(),
            },
        ]
        .iter()
        .map(ServiceVerdict::label)
        .collect();
        assert_eq!(
            labels,
            [
                "stable",
                "rolled_back",
                "stalled",
                "missing",
                "not_forceable",
                "failed"
            ]
        );
    }

    #[test]
    fn the_events_explaining_a_failure_are_ours_or_failures_else_the_latest() {
        let ours = DeploymentId::new("ecs-svc/2");
        let events: Vec<String> = [
            "(service api) has started 1 tasks",
            "(service api) (deployment ecs-svc/2) deployment failed: tasks failed to start.",
            "(service api) has reached a steady state.",
            "(service api) rolling back to deployment ecs-svc/1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            relevant_events(&events, &ours),
            [events[1].clone(), events[3].clone()]
        );
        let plain: Vec<String> = (0..5).map(|i| format!("event {i}")).collect();
        assert_eq!(relevant_events(&plain, &ours), plain[..3].to_vec());
    }

    #[test]
    fn budget_matches_waiter_calls() {
        assert_eq!(budget(Duration::ZERO), 1);
        assert_eq!(budget(Duration::from_secs(14)), 1);
        assert_eq!(budget(Duration::from_secs(15)), 2);
        assert_eq!(budget(Duration::from_secs(31)), 3);
    }
}
