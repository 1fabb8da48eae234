//! The simulated ECS resources. Times are simulated seconds (see `clock`).

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::EcsError;

/// ECS keeps the last 100 service events; so do we, to bound memory.
pub const MAX_EVENTS: usize = 100;

/// Upper bound on configurable durations: keeps arithmetic finite and stops a
/// typo from scheduling a rollout for the year 3000.
pub const MAX_SECS: f64 = 1_000_000.0;

/// How a service's new tasks behave during a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Behavior {
    #[default]
    Healthy,
    Slow,
    Failing,
    Stall,
}

impl FromStr for Behavior {
    type Err = EcsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "healthy" => Ok(Self::Healthy),
            "slow" => Ok(Self::Slow),
            "failing" => Ok(Self::Failing),
            "stall" => Ok(Self::Stall),
            other => Err(EcsError::invalid_parameter(format!(
                "Unknown ecs-sim behavior '{other}': expected healthy, slow, failing or stall."
            ))),
        }
    }
}

/// Checks a start/drain duration given by a user.
pub fn validate_secs(what: &str, secs: f64) -> Result<f64, EcsError> {
    if secs.is_finite() && (0.0..=MAX_SECS).contains(&secs) {
        Ok(secs)
    } else {
        Err(EcsError::invalid_parameter(format!(
            "{what} must be between 0 and {MAX_SECS} seconds."
        )))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Controller {
    Ecs,
    CodeDeploy,
    External,
}

impl Controller {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ecs => "ECS",
            Self::CodeDeploy => "CODE_DEPLOY",
            Self::External => "EXTERNAL",
        }
    }
}

impl FromStr for Controller {
    type Err = EcsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ECS" => Ok(Self::Ecs),
            "CODE_DEPLOY" => Ok(Self::CodeDeploy),
            "EXTERNAL" => Ok(Self::External),
            other => Err(EcsError::invalid_parameter(format!(
                "Invalid deployment controller type: {other}"
            ))),
        }
    }
}

/// Per-service knobs of the simulation itself (not part of the ECS API).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimSettings {
    pub behavior: Behavior,
    pub start_secs: f64,
    pub drain_secs: f64,
    /// Replace tasks one at a time (start one new, stop one old, repeat), as ECS does
    /// with minimumHealthyPercent 100 and maximumPercent allowing one extra task;
    /// otherwise every new task starts at once, before any old one drains.
    pub gradual: bool,
    /// How long an old task stays RUNNING after ECS decided to stop it (the target
    /// group's deregistration delay) before it starts draining.
    pub deregistration_secs: f64,
}

impl Default for SimSettings {
    fn default() -> Self {
        Self {
            behavior: Behavior::Healthy,
            start_secs: 20.0,
            drain_secs: 10.0,
            gradual: false,
            deregistration_secs: 0.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeploymentConfig {
    pub breaker_enable: bool,
    pub breaker_rollback: bool,
    pub maximum_percent: u32,
    pub minimum_healthy_percent: u32,
}

impl Default for DeploymentConfig {
    /// Real ECS defaults the circuit breaker to off; the simulator turns it on
    /// so the `failing` behaviour demonstrates a rollback without extra setup.
    fn default() -> Self {
        Self {
            breaker_enable: true,
            breaker_rollback: true,
            maximum_percent: 200,
            minimum_healthy_percent: 100,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentStatus {
    Primary,
    Active,
}

impl DeploymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Primary => "PRIMARY",
            Self::Active => "ACTIVE",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutState {
    InProgress,
    Completed,
    Failed,
}

impl RolloutState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "IN_PROGRESS",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    pub id: String,
    pub status: DeploymentStatus,
    pub task_definition: String,
    pub desired_count: u32,
    pub pending_count: u32,
    pub running_count: u32,
    pub failed_tasks: u32,
    pub created_at: f64,
    pub updated_at: f64,
    pub rollout_state: RolloutState,
    pub rollout_state_reason: String,
    /// Created by the circuit breaker: always behaves healthy, or a failing
    /// service would roll back forever.
    pub is_rollback: bool,
    /// Running tasks when draining began, so the count can fall linearly.
    pub drain_from: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    pub created_at: f64,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// Where the PRIMARY deployment is in its rollout, with the next due instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Phase {
    /// Nothing scheduled: the rollout completed or failed without rollback.
    Settled,
    /// New tasks are starting; `None` means they never will (`stall`).
    Starting { due: Option<f64> },
    /// New tasks run; older deployments keep their tasks until `since` (deregistration
    /// delay), then drain linearly until `due`.
    Draining { since: f64, due: f64 },
    /// Gradual replacement: a new task runs and one old task stops at `due`, after
    /// which the next new task starts.
    Replacing { due: f64 },
}

/// Everything needed to create a service, from the API or the seed file.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    pub name: String,
    pub desired_count: u32,
    pub task_definition: String,
    pub controller: Controller,
    pub config: DeploymentConfig,
    pub settings: SimSettings,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub cluster: String,
    pub desired_count: u32,
    pub task_definition: String,
    pub controller: Controller,
    pub config: DeploymentConfig,
    pub settings: SimSettings,
    pub tags: Vec<Tag>,
    pub created_at: f64,
    /// Newest first; the PRIMARY one is always at index 0.
    pub deployments: Vec<Deployment>,
    /// Newest first, at most `MAX_EVENTS`.
    pub events: VecDeque<Event>,
    pub phase: Phase,
    /// Rollout state changes not yet taken by the simulation (see `Sim::take_changes`),
    /// oldest first: what ECS would publish as deployment state change events.
    pub changes: Vec<StateChange>,
}

/// A deployment's rolloutState changed (IN_PROGRESS when it is created, then COMPLETED
/// or FAILED), at simulated time `at`.
#[derive(Debug, Clone, PartialEq)]
pub struct StateChange {
    pub deployment_id: String,
    pub state: RolloutState,
    pub at: f64,
    /// The event's `reason`, worded as ECS words it.
    pub reason: String,
}

impl Service {
    pub fn running_count(&self) -> u32 {
        self.deployments
            .iter()
            .fold(0, |n, d| n.saturating_add(d.running_count))
    }

    pub fn pending_count(&self) -> u32 {
        self.deployments
            .iter()
            .fold(0, |n, d| n.saturating_add(d.pending_count))
    }
}

impl fmt::Display for Behavior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Healthy => "healthy",
            Self::Slow => "slow",
            Self::Failing => "failing",
            Self::Stall => "stall",
        })
    }
}
