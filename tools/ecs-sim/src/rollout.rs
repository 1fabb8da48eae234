//! The rollout state machine: how a service's deployments change over time.
//!
//! Every transition has an exact due instant, and `advance` replays all that
//! are due, so the state (and the recorded completion instants) do not depend
//! on how often anyone looks.

use std::collections::VecDeque;

use serde::Serialize;

use crate::model::{
    Behavior, Deployment, DeploymentStatus, Event, Phase, RolloutState, Service, ServiceSpec,
    StateChange, MAX_EVENTS,
};
use crate::rng::Rng;

/// Failures of the `failing` behaviour before the circuit breaker trips.
const BREAKER_THRESHOLD: u32 = 3;
/// `slow` starts take this many times `start_secs`.
const SLOW_FACTOR: f64 = 5.0;
/// Smallest gap between two task failures, so a zero `start_secs` cannot make
/// `advance` spin.
const MIN_FAILURE_GAP: f64 = 0.01;
/// Bound on transitions replayed per `advance`; only a breaker-less failing
/// service can have many, and it just catches up on the next call.
const MAX_STEPS: usize = 10_000;
/// How many task ids a "has started" event lists, as ECS truncates too.
const MAX_TASKS_IN_EVENT: u32 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    Completed,
    RolledBack,
    Failed,
}

/// A deployment reaching an end state, at simulated time `at`.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub deployment_id: String,
    pub kind: OutcomeKind,
    pub at: f64,
}

#[derive(Debug, Clone, Copy)]
enum Step {
    TasksRunning,
    TaskFailed,
    DrainDone,
    OldTaskStopped,
}

impl Service {
    /// A new service, already stable: one COMPLETED PRIMARY deployment.
    pub fn new(spec: ServiceSpec, cluster: &str, now: f64, rng: &mut Rng) -> Self {
        let id = rng.deployment_id();
        let deployment = Deployment {
            rollout_state_reason: format!("ECS deployment {id} completed."),
            id,
            status: DeploymentStatus::Primary,
            task_definition: spec.task_definition.clone(),
            desired_count: spec.desired_count,
            pending_count: 0,
            running_count: spec.desired_count,
            failed_tasks: 0,
            created_at: now,
            updated_at: now,
            rollout_state: RolloutState::Completed,
            is_rollback: false,
            drain_from: 0,
        };
        let mut service = Self {
            name: spec.name,
            cluster: cluster.to_owned(),
            desired_count: spec.desired_count,
            task_definition: spec.task_definition,
            controller: spec.controller,
            config: spec.config,
            settings: spec.settings,
            tags: spec.tags,
            created_at: now,
            deployments: vec![deployment],
            events: VecDeque::new(),
            phase: Phase::Settled,
            // A new service is born stable: no deployment changed state yet.
            changes: Vec::new(),
        };
        let msg = format!("(service {}) has reached a steady state.", service.name);
        service.push_event(now, msg, rng);
        service
    }

    /// Starts a new PRIMARY deployment; the previous ones become ACTIVE and
    /// keep their running tasks until the new one's tasks run.
    pub fn deploy(&mut self, task_definition: String, now: f64, rng: &mut Rng) {
        self.start_deployment(task_definition, now, rng, None);
    }

    /// `rollback_to`: the deployment a circuit-breaker rollback returns to.
    fn start_deployment(
        &mut self,
        task_definition: String,
        now: f64,
        rng: &mut Rng,
        rollback_to: Option<String>,
    ) {
        for old in &mut self.deployments {
            if old.status == DeploymentStatus::Primary {
                old.status = DeploymentStatus::Active;
                old.updated_at = now;
            }
            // A superseded deployment stops launching tasks.
            old.pending_count = 0;
        }
        let id = rng.deployment_id();
        let desired = self.desired_count;
        // The two reasons ECS documents for SERVICE_DEPLOYMENT_IN_PROGRESS.
        let change_reason = match &rollback_to {
            Some(to) => {
                format!("ECS deployment circuit breaker: rolling back to deploymentId {to}.")
            }
            None => format!("ECS deployment {id} in progress."),
        };
        self.changes.push(StateChange {
            deployment_id: id.clone(),
            state: RolloutState::InProgress,
            at: now,
            reason: change_reason,
        });
        let rollback = rollback_to.is_some();
        self.deployments.insert(
            0,
            Deployment {
                rollout_state_reason: format!("ECS deployment {id} in progress."),
                id,
                status: DeploymentStatus::Primary,
                task_definition: task_definition.clone(),
                desired_count: desired,
                pending_count: self.launch_batch(desired),
                running_count: 0,
                failed_tasks: 0,
                created_at: now,
                updated_at: now,
                rollout_state: RolloutState::InProgress,
                is_rollback: rollback,
                drain_from: 0,
            },
        );
        self.task_definition = task_definition;
        if desired > 0 {
            let tasks: Vec<String> = (0..desired.min(MAX_TASKS_IN_EVENT))
                .map(|_| format!("(task {})", rng.hex(32)))
                .collect();
            let msg = format!(
                "(service {}) has started {desired} tasks: {}.",
                self.name,
                tasks.join(" ")
            );
            self.push_event(now, msg, rng);
        }
        self.phase = Phase::Starting {
            due: self.start_due(now),
        };
    }

    /// Applies every transition due up to `now`, returning the end states
    /// reached (with their exact instants).
    pub fn advance(&mut self, now: f64, rng: &mut Rng) -> Vec<Outcome> {
        let mut outcomes = Vec::new();
        for _ in 0..MAX_STEPS {
            match self.next_step() {
                Some((at, step)) if at <= now => self.apply(step, at, rng, &mut outcomes),
                _ => break,
            }
        }
        self.update_draining(now);
        outcomes
    }

    /// Restarts the current phase's timer from `now`, after the behaviour or
    /// its durations changed at run time.
    pub fn reschedule(&mut self, now: f64) {
        match self.phase {
            Phase::Settled => {}
            Phase::Starting { .. } => {
                self.phase = Phase::Starting {
                    due: self.start_due(now),
                };
            }
            Phase::Draining { .. } => {
                for d in self.deployments.iter_mut().skip(1) {
                    d.drain_from = d.running_count;
                }
                self.phase = Phase::Draining {
                    since: now,
                    due: now + self.settings.drain_secs,
                };
            }
            Phase::Replacing { .. } => {
                self.phase = Phase::Replacing {
                    due: now + self.settings.deregistration_secs + self.settings.drain_secs,
                };
            }
        }
    }

    /// How many of `desired` new tasks are launched at a time: all of them, or one
    /// when replacing gradually.
    fn launch_batch(&self, desired: u32) -> u32 {
        if self.settings.gradual {
            desired.min(1)
        } else {
            desired
        }
    }

    fn old_running(&self) -> u32 {
        self.deployments
            .iter()
            .skip(1)
            .fold(0, |n, d| n.saturating_add(d.running_count))
    }

    /// Changes the desired count without a new deployment. Scaling is
    /// instantaneous in the model: only rollouts take time.
    pub fn scale(&mut self, desired: u32, now: f64) {
        self.desired_count = desired;
        let starting = matches!(self.phase, Phase::Starting { .. });
        let Some(primary) = self.deployments.first_mut() else {
            return;
        };
        primary.desired_count = desired;
        primary.updated_at = now;
        if primary.rollout_state == RolloutState::Failed {
            return;
        }
        if starting {
            primary.pending_count = if self.settings.gradual {
                desired.saturating_sub(primary.running_count).min(1)
            } else {
                desired
            };
        } else {
            primary.running_count = desired;
            primary.pending_count = 0;
        }
    }

    /// The behaviour of the PRIMARY deployment's tasks.
    fn behavior(&self) -> Behavior {
        match self.deployments.first() {
            Some(d) if d.is_rollback => Behavior::Healthy,
            _ => self.settings.behavior,
        }
    }

    fn start_due(&self, now: f64) -> Option<f64> {
        let start = self.settings.start_secs;
        if self.desired_count == 0 {
            // No task to start (or fail): the rollout moves straight on.
            return Some(now);
        }
        match self.behavior() {
            Behavior::Healthy => Some(now + start),
            Behavior::Slow => Some(now + SLOW_FACTOR * start),
            Behavior::Failing => Some(now + (start / 2.0).max(MIN_FAILURE_GAP)),
            Behavior::Stall => None,
        }
    }

    fn next_step(&self) -> Option<(f64, Step)> {
        match self.phase {
            Phase::Settled | Phase::Starting { due: None } => None,
            Phase::Starting { due: Some(at) } => {
                let failing = self.behavior() == Behavior::Failing && self.desired_count > 0;
                Some((
                    at,
                    if failing {
                        Step::TaskFailed
                    } else {
                        Step::TasksRunning
                    },
                ))
            }
            Phase::Draining { due, .. } => Some((due, Step::DrainDone)),
            Phase::Replacing { due } => Some((due, Step::OldTaskStopped)),
        }
    }

    fn apply(&mut self, step: Step, at: f64, rng: &mut Rng, outcomes: &mut Vec<Outcome>) {
        match step {
            Step::TasksRunning => self.tasks_running(at),
            Step::TaskFailed => self.task_failed(at, rng, outcomes),
            Step::DrainDone => self.drain_done(at, rng, outcomes),
            Step::OldTaskStopped => self.old_task_stopped(at),
        }
    }

    fn tasks_running(&mut self, at: f64) {
        let gradual = self.settings.gradual;
        let old_running = self.old_running();
        let Some(primary) = self.deployments.first_mut() else {
            self.phase = Phase::Settled;
            return;
        };
        primary.running_count = if gradual {
            primary
                .running_count
                .saturating_add(1)
                .min(primary.desired_count)
        } else {
            primary.desired_count
        };
        primary.pending_count = 0;
        primary.updated_at = at;
        if primary.running_count < primary.desired_count {
            // Gradual, more to start: one old task makes room first, if any is left.
            if old_running > 0 {
                self.phase = Phase::Replacing {
                    due: at + self.settings.deregistration_secs + self.settings.drain_secs,
                };
            } else {
                primary.pending_count = 1;
                self.phase = Phase::Starting {
                    due: self.start_due(at),
                };
            }
            return;
        }
        for old in self.deployments.iter_mut().skip(1) {
            old.drain_from = old.running_count;
            old.updated_at = at;
        }
        let since = at + self.settings.deregistration_secs;
        self.phase = Phase::Draining {
            since,
            due: since + self.settings.drain_secs,
        };
    }

    /// Gradual replacement: the oldest deployment still running loses one task, and
    /// the next new task starts.
    fn old_task_stopped(&mut self, at: f64) {
        if let Some(old) = self
            .deployments
            .iter_mut()
            .skip(1)
            .rev()
            .find(|d| d.running_count > 0)
        {
            old.running_count -= 1;
            old.updated_at = at;
        }
        if let Some(primary) = self.deployments.first_mut() {
            primary.pending_count = 1;
            primary.updated_at = at;
        }
        self.phase = Phase::Starting {
            due: self.start_due(at),
        };
    }

    fn drain_done(&mut self, at: f64, rng: &mut Rng, outcomes: &mut Vec<Outcome>) {
        self.deployments.truncate(1);
        self.phase = Phase::Settled;
        let Some(primary) = self.deployments.first_mut() else {
            return;
        };
        primary.rollout_state = RolloutState::Completed;
        primary.rollout_state_reason = format!("ECS deployment {} completed.", primary.id);
        primary.updated_at = at;
        let id = primary.id.clone();
        self.changes.push(StateChange {
            deployment_id: id.clone(),
            state: RolloutState::Completed,
            at,
            reason: primary.rollout_state_reason.clone(),
        });
        let kind = if primary.is_rollback {
            OutcomeKind::RolledBack
        } else {
            OutcomeKind::Completed
        };
        let name = self.name.clone();
        self.push_event(
            at,
            format!("(service {name}) (deployment {id}) deployment completed."),
            rng,
        );
        self.push_event(
            at,
            format!("(service {name}) has reached a steady state."),
            rng,
        );
        outcomes.push(Outcome {
            deployment_id: id,
            kind,
            at,
        });
    }

    fn task_failed(&mut self, at: f64, rng: &mut Rng, outcomes: &mut Vec<Outcome>) {
        let Some(primary) = self.deployments.first_mut() else {
            self.phase = Phase::Settled;
            return;
        };
        primary.failed_tasks = primary.failed_tasks.saturating_add(1);
        primary.updated_at = at;
        let failed = primary.failed_tasks;
        let msg = format!(
            "(service {}) (task {}) failed to start: essential container in task exited.",
            self.name,
            rng.hex(32)
        );
        self.push_event(at, msg, rng);
        if failed >= BREAKER_THRESHOLD && self.config.breaker_enable {
            self.trip_breaker(at, rng, outcomes);
        } else {
            // Without a breaker ECS keeps retrying, and failing, forever.
            self.phase = Phase::Starting {
                due: Some(at + (self.settings.start_secs / 2.0).max(MIN_FAILURE_GAP)),
            };
        }
    }

    fn trip_breaker(&mut self, at: f64, rng: &mut Rng, outcomes: &mut Vec<Outcome>) {
        let Some(primary) = self.deployments.first_mut() else {
            return;
        };
        primary.rollout_state = RolloutState::Failed;
        primary.rollout_state_reason =
            "ECS deployment circuit breaker: tasks failed to start.".to_owned();
        primary.pending_count = 0;
        let id = primary.id.clone();
        self.changes.push(StateChange {
            deployment_id: id.clone(),
            state: RolloutState::Failed,
            at,
            reason: primary.rollout_state_reason.clone(),
        });
        let msg = format!(
            "(service {}) (deployment {id}) deployment failed: tasks failed to start.",
            self.name
        );
        self.push_event(at, msg, rng);
        outcomes.push(Outcome {
            deployment_id: id,
            kind: OutcomeKind::Failed,
            at,
        });
        // Roll back to the last deployment that completed, else the newest
        // older one; with none there is nothing to go back to.
        let older = &self.deployments[1..];
        let target = older
            .iter()
            .find(|d| d.rollout_state == RolloutState::Completed)
            .or_else(|| older.first())
            .map(|d| (d.task_definition.clone(), d.id.clone()));
        match target {
            Some((task_definition, to)) if self.config.breaker_rollback => {
                self.deployments.remove(0);
                self.start_deployment(task_definition, at, rng, Some(to));
            }
            _ => self.phase = Phase::Settled,
        }
    }

    /// Old deployments lose their tasks linearly over the drain period.
    fn update_draining(&mut self, now: f64) {
        let Phase::Draining { since, due } = self.phase else {
            return;
        };
        // Before `since` (deregistration delay) old tasks all still run.
        let left = if now < since {
            1.0
        } else if due > since {
            ((due - now) / (due - since)).clamp(0.0, 1.0)
        } else {
            0.0
        };
        for old in self.deployments.iter_mut().skip(1) {
            // Truncation is fine: counts are small and `left` is in [0, 1].
            old.running_count = (f64::from(old.drain_from) * left).ceil() as u32;
        }
    }

    fn push_event(&mut self, at: f64, message: String, rng: &mut Rng) {
        self.events.push_front(Event {
            id: rng.uuid(),
            created_at: at,
            message,
        });
        self.events.truncate(MAX_EVENTS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Controller, DeploymentConfig, SimSettings};

    fn service(behavior: Behavior) -> (Service, Rng) {
        let mut rng = Rng::new(1);
        let spec = ServiceSpec {
            name: "front".into(),
            desired_count: 2,
            task_definition: "td:1".into(),
            controller: Controller::Ecs,
            config: DeploymentConfig::default(),
            settings: SimSettings {
                behavior,
                start_secs: 20.0,
                drain_secs: 10.0,
                ..SimSettings::default()
            },
            tags: vec![],
        };
        let s = Service::new(spec, "prod", 0.0, &mut rng);
        (s, rng)
    }

    #[test]
    fn new_service_is_stable() {
        let (s, _) = service(Behavior::Healthy);
        assert_eq!(s.deployments.len(), 1);
        assert_eq!(s.running_count(), 2);
        assert_eq!(s.deployments[0].rollout_state, RolloutState::Completed);
    }

    #[test]
    fn healthy_rollout_timeline() {
        let (mut s, mut rng) = service(Behavior::Healthy);
        s.deploy("td:2".into(), 100.0, &mut rng);
        assert_eq!(s.deployments.len(), 2);
        assert_eq!(s.deployments[0].pending_count, 2);
        assert_eq!(s.deployments[1].status, DeploymentStatus::Active);
        assert!(s.advance(119.0, &mut rng).is_empty());
        assert_eq!(s.deployments[0].running_count, 0);
        assert!(s.advance(125.0, &mut rng).is_empty());
        assert_eq!(s.deployments[0].running_count, 2);
        assert_eq!(s.deployments[1].running_count, 1, "half drained");
        let out = s.advance(1000.0, &mut rng);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].kind, OutcomeKind::Completed);
        assert_eq!(out[0].at, 130.0, "exact instant, not the observation time");
        assert_eq!(s.deployments.len(), 1);
        assert_eq!(s.running_count(), 2);
        assert!(s.events[0].message.ends_with("has reached a steady state."));
        assert!(s.events[1].message.contains("deployment completed"));
    }

    #[test]
    fn slow_takes_five_starts() {
        let (mut s, mut rng) = service(Behavior::Slow);
        s.deploy("td:2".into(), 0.0, &mut rng);
        assert!(s.advance(99.0, &mut rng).is_empty());
        assert_eq!(s.advance(110.0, &mut rng)[0].at, 110.0);
    }

    #[test]
    fn failing_trips_breaker_and_rolls_back() {
        let (mut s, mut rng) = service(Behavior::Failing);
        s.deploy("td:2".into(), 0.0, &mut rng);
        let failed_id = s.deployments[0].id.clone();
        s.advance(25.0, &mut rng);
        assert_eq!(s.deployments[0].failed_tasks, 2);
        let out = s.advance(30.0, &mut rng);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].kind, OutcomeKind::Failed);
        assert_eq!(out[0].deployment_id, failed_id);
        assert!(s.deployments[0].is_rollback);
        assert_eq!(s.deployments[0].task_definition, "td:1");
        assert_eq!(s.deployments.len(), 2, "failed one removed");
        let out = s.advance(60.0, &mut rng);
        assert_eq!(out[0].kind, OutcomeKind::RolledBack);
        assert_eq!(out[0].at, 60.0);
        assert_eq!(s.task_definition, "td:1");
    }

    #[test]
    fn failing_without_rollback_stays_failed() {
        let (mut s, mut rng) = service(Behavior::Failing);
        s.config.breaker_rollback = false;
        s.deploy("td:2".into(), 0.0, &mut rng);
        s.advance(1000.0, &mut rng);
        assert_eq!(s.deployments[0].rollout_state, RolloutState::Failed);
        assert_eq!(s.deployments.len(), 2);
        assert_eq!(s.deployments[1].running_count, 2);
    }

    #[test]
    fn stall_never_finishes() {
        let (mut s, mut rng) = service(Behavior::Stall);
        s.deploy("td:2".into(), 0.0, &mut rng);
        assert!(s.advance(1e6, &mut rng).is_empty());
        assert_eq!(s.deployments[0].rollout_state, RolloutState::InProgress);
        s.settings.behavior = Behavior::Healthy;
        s.reschedule(1e6);
        assert_eq!(s.advance(1e6 + 30.0, &mut rng).len(), 1);
    }

    #[test]
    fn supersede_drains_in_progress_deployment() {
        let (mut s, mut rng) = service(Behavior::Healthy);
        s.deploy("td:2".into(), 0.0, &mut rng);
        s.advance(5.0, &mut rng);
        s.deploy("td:3".into(), 5.0, &mut rng);
        assert_eq!(s.deployments.len(), 3);
        assert_eq!(s.deployments[1].status, DeploymentStatus::Active);
        assert_eq!(s.deployments[1].pending_count, 0);
        let out = s.advance(100.0, &mut rng);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].at, 35.0);
        assert_eq!(s.deployments.len(), 1);
        assert_eq!(s.task_definition, "td:3");
    }

    fn changes(s: &mut Service) -> Vec<(String, RolloutState, f64)> {
        std::mem::take(&mut s.changes)
            .into_iter()
            .map(|c| (c.deployment_id, c.state, c.at))
            .collect()
    }

    #[test]
    fn a_completed_rollout_records_in_progress_then_completed() {
        let (mut s, mut rng) = service(Behavior::Healthy);
        assert!(s.changes.is_empty(), "a new service changed nothing");
        s.deploy("td:2".into(), 100.0, &mut rng);
        let id = s.deployments[0].id.clone();
        s.advance(1000.0, &mut rng);
        assert_eq!(
            changes(&mut s),
            [
                (id.clone(), RolloutState::InProgress, 100.0),
                (id, RolloutState::Completed, 130.0),
            ]
        );
        s.advance(2000.0, &mut rng);
        assert!(s.changes.is_empty(), "each change once");
    }

    #[test]
    fn a_rollback_records_failed_then_the_rollback_deployment() {
        let (mut s, mut rng) = service(Behavior::Failing);
        let good = s.deployments[0].id.clone();
        s.deploy("td:2".into(), 0.0, &mut rng);
        let bad = s.deployments[0].id.clone();
        s.advance(1000.0, &mut rng);
        let back = s.deployments[0].id.clone();
        let all = std::mem::take(&mut s.changes);
        let got: Vec<_> = all
            .iter()
            .map(|c| (c.deployment_id.clone(), c.state, c.at))
            .collect();
        assert_eq!(
            got,
            [
                (bad.clone(), RolloutState::InProgress, 0.0),
                (bad, RolloutState::Failed, 30.0),
                (back.clone(), RolloutState::InProgress, 30.0),
                (back, RolloutState::Completed, 60.0),
            ]
        );
        assert_eq!(
            all[1].reason,
            "ECS deployment circuit breaker: tasks failed to start."
        );
        assert_eq!(
            all[2].reason,
            format!("ECS deployment circuit breaker: rolling back to deploymentId {good}.")
        );
    }

    /// (new pending, new running, old running) of a two-deployment service.
    fn counts(s: &Service) -> (u32, u32, u32) {
        let old = s.deployments.iter().skip(1).map(|d| d.running_count).sum();
        (
            s.deployments[0].pending_count,
            s.deployments[0].running_count,
            old,
        )
    }

    #[test]
    fn gradual_replaces_one_task_at_a_time() {
        let (mut s, mut rng) = service(Behavior::Healthy);
        s.settings.gradual = true;
        s.deploy("td:2".into(), 0.0, &mut rng);
        let mut seen = Vec::new();
        for t in [0.0, 19.0, 20.0, 29.0, 30.0, 49.0, 50.0, 59.0] {
            assert!(s.advance(t, &mut rng).is_empty(), "at {t}");
            seen.push((t, counts(&s)));
        }
        assert_eq!(
            seen,
            [
                (0.0, (1, 0, 2)),
                (19.0, (1, 0, 2)),
                (20.0, (0, 1, 2)),
                (29.0, (0, 1, 2)),
                (30.0, (1, 1, 1)),
                (49.0, (1, 1, 1)),
                (50.0, (0, 2, 1)),
                (59.0, (0, 2, 1)),
            ]
        );
        let out = s.advance(1000.0, &mut rng);
        assert_eq!(out[0].at, 60.0, "2 × start + 2 × drain");
        assert_eq!(s.deployments.len(), 1);
    }

    #[test]
    fn deregistration_delay_keeps_old_tasks_running() {
        let (mut s, mut rng) = service(Behavior::Healthy);
        s.settings.deregistration_secs = 100.0;
        s.deploy("td:2".into(), 0.0, &mut rng);
        s.advance(20.0, &mut rng);
        assert_eq!(counts(&s), (0, 2, 2));
        s.advance(119.0, &mut rng);
        assert_eq!(counts(&s), (0, 2, 2), "still deregistering");
        s.advance(125.0, &mut rng);
        assert_eq!(counts(&s), (0, 2, 1), "half drained");
        assert_eq!(s.advance(1000.0, &mut rng)[0].at, 130.0);
    }

    #[test]
    fn gradual_with_deregistration_delay_and_rollback() {
        let (mut s, mut rng) = service(Behavior::Failing);
        s.settings.gradual = true;
        s.settings.deregistration_secs = 100.0;
        s.deploy("td:2".into(), 0.0, &mut rng);
        assert_eq!(counts(&s), (1, 0, 2));
        let out = s.advance(30.0, &mut rng);
        assert_eq!(out[0].kind, OutcomeKind::Failed);
        assert!(s.deployments[0].is_rollback);
        assert_eq!(counts(&s), (1, 0, 2), "the rollback is gradual too");
        // Start 20, old task stops 110 later, start 20, then 100 + 10 for the last one.
        let out = s.advance(1000.0, &mut rng);
        assert_eq!(out[0].kind, OutcomeKind::RolledBack);
        assert_eq!(out[0].at, 30.0 + 20.0 + 110.0 + 20.0 + 110.0);
    }

    #[test]
    fn zero_start_failing_without_breaker_terminates() {
        let (mut s, mut rng) = service(Behavior::Failing);
        s.config.breaker_enable = false;
        s.settings.start_secs = 0.0;
        s.deploy("td:2".into(), 0.0, &mut rng);
        s.advance(1e6, &mut rng);
        assert_eq!(s.deployments[0].rollout_state, RolloutState::InProgress);
        assert!(s.events.len() <= MAX_EVENTS);
    }
}
