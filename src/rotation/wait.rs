//! Waiting until every redeployed service is stable on the deployment we started.
//!
//! Polling is paced against the AWS CLI waiter (one DescribeServices every 15 s): we never
//! make more calls than it would have made by the same moment, poll slowly while new tasks
//! start, and spend the saved calls polling fast once only old tasks are draining, which is
//! when completion is near.

use super::deploy::{judge, Deployer, Described, Judgement, DESCRIBE_BATCH};
use super::Observer;
use crate::ids::{Account, ClusterName, DeploymentId, ServiceName, ServiceRef};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// The CLI waiter's period; our call budget at time t is what it would have used by then.
pub const WAITER_PERIOD: Duration = Duration::from_secs(15);
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

/// Polls until each service reaches a verdict or `timeout` passes.
pub async fn wait_stable<D: Deployer>(
    deployer: &D,
    account: &Account,
    ours: &[(ServiceRef, DeploymentId)],
    timeout: Duration,
    observer: &dyn Observer,
) -> BTreeMap<ServiceRef, ServiceVerdict> {
    let start = Instant::now();
    let deadline = start + timeout;
    // Which deployment each service is judged on; a superseding one takes over.
    let mut ours: Vec<(ServiceRef, DeploymentId)> = ours.to_vec();
    let mut verdicts = BTreeMap::new();
    let mut last: BTreeMap<ServiceRef, (Judgement, i32, i32, i32, Vec<String>)> = BTreeMap::new();
    let mut rounds: u64 = 0;
    let mut backoff = Duration::ZERO;
    let mut next = start + FIRST_POLL;

    loop {
        tokio::time::sleep_until(next.min(deadline)).await;
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
        let mut replaced: Vec<(ServiceRef, DeploymentId)> = Vec::new();
        for (cluster, items) in by_cluster {
            for chunk in items.chunks(DESCRIBE_BATCH) {
                let names: Vec<ServiceName> =
                    chunk.iter().map(|(s, _)| s.service.clone()).collect();
                match deployer.describe(account, cluster, &names).await {
                    Ok(states) => {
                        for ((svc, dep), st) in chunk.iter().map(|p| (&p.0, &p.1)).zip(states) {
                            match st {
                                Described::Missing(r) => {
                                    verdicts
                                        .insert(svc.clone(), ServiceVerdict::Missing { reason: r });
                                }
                                Described::Found(state) => {
                                    let j = judge(&state, dep);
                                    let mine = state.deployments.iter().find(|d| &d.id == dep);
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
                                            replaced.push((svc.clone(), later.clone()));
                                        }
                                        _ => {}
                                    }
                                    last.insert(svc.clone(), (j, run, des, failed, state.events));
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
        for (svc, later) in replaced {
            if let Some(entry) = ours.iter_mut().find(|(s, _)| *s == svc) {
                entry.1 = later;
            }
        }
        rounds += 1;
        crate::failpoint!("during-wait");
        if verdicts.len() == ours.len() {
            return verdicts;
        }
        let now = Instant::now();
        if now >= deadline {
            for (svc, _) in &ours {
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
            return verdicts;
        }
        backoff = if throttled {
            (backoff * 2).clamp(Duration::from_secs(2), MAX_BACKOFF)
        } else {
            Duration::ZERO
        };
        let draining = last
            .iter()
            .any(|(s, (j, ..))| !verdicts.contains_key(s) && *j == Judgement::Draining);
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
        next = at;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_matches_waiter_calls() {
        assert_eq!(budget(Duration::ZERO), 1);
        assert_eq!(budget(Duration::from_secs(14)), 1);
        assert_eq!(budget(Duration::from_secs(15)), 2);
        assert_eq!(budget(Duration::from_secs(31)), 3);
    }
}
