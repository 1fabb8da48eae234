//! Rotation events for people: started, succeeded, failed (with each consumer's verdict
//! and the ECS events that explain it), a group halted, a secret overdue. The scheduler
//! tells a [`Notifier`]; the binary's sinks (webhook, Slack, SNS, change records) deliver,
//! each on its own queue, so a slow or dead sink never delays a rotation.
//!
//! An event holds names, ids, verdicts and error texts, never a secret value: the
//! errors it carries are the rotation's own, which never hold one.

use crate::config::SecretConfig;
use crate::ids::{GroupName, SecretName, VersionId};
use crate::rotation::wait::ServiceVerdict;
use crate::rotation::{RotationError, Step};
use chrono::{DateTime, Utc};

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A rotation started (each attempt).
    Started,
    /// A rotation finished: value current, every consumer stable, tags written.
    Succeeded,
    /// A rotation attempt failed (it is retried with backoff until `max_attempts`).
    Failed,
    /// A stage of a group failed: the stages after it wait until it succeeds.
    GroupHalted,
    /// A secret is more than an hour past its due time and not rotated.
    Overdue,
}

impl EventKind {
    pub const ALL: [EventKind; 5] = [
        EventKind::Started,
        EventKind::Succeeded,
        EventKind::Failed,
        EventKind::GroupHalted,
        EventKind::Overdue,
    ];

    /// The name in configuration filters, JSON bodies and metric labels.
    pub fn label(self) -> &'static str {
        match self {
            EventKind::Started => "started",
            EventKind::Succeeded => "succeeded",
            EventKind::Failed => "failed",
            EventKind::GroupHalted => "group_halted",
            EventKind::Overdue => "overdue",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.label() == s)
    }
}

/// One consumer's verdict, as a person reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerReport {
    /// `cluster/service` for ECS, the command's name for a command consumer.
    pub consumer: String,
    /// `stable`, `rolled_back`, `stalled`, `missing`, `failed`, ... (the metric label).
    pub verdict: &'static str,
    /// The verdict in words (the reason ECS gave, the exit status).
    pub detail: String,
    /// The ECS service events that explain it (most relevant first).
    pub events: Vec<String>,
}

/// The group stage an event is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageRef {
    pub group: GroupName,
    /// 0-based index of the stage in the group's `secrets`.
    pub stage: usize,
    pub stages: usize,
    /// The stage after this one (it waits on this one's success).
    pub next: Option<SecretName>,
}

/// One rotation event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub at: DateTime<Utc>,
    pub secret: SecretName,
    /// The store's secret id as configured.
    pub secret_id: String,
    pub group: Option<StageRef>,
    /// 1 for the first attempt of a rotation; counts failed attempts in a row.
    pub attempt: u32,
    /// `success`, `rolled_back`, `stalled`, `failed` (finished events only).
    pub outcome: Option<&'static str>,
    /// Where a failure happened.
    pub step: Option<Step>,
    /// The failure in words.
    pub error: Option<String>,
    /// Every consumer's verdict (failed events: the ones that were not healthy first).
    pub consumers: Vec<ConsumerReport>,
    /// The new AWSCURRENT version (succeeded events).
    pub version: Option<VersionId>,
    /// What an operator should do next, in one sentence.
    pub action: Option<String>,
}

impl Event {
    /// An event about `cfg` with nothing but its names filled in.
    pub fn new(kind: EventKind, cfg: &SecretConfig, at: DateTime<Utc>, attempt: u32) -> Self {
        let group = cfg.group.as_ref().and_then(|g| {
            let stage = g.stage_of(&cfg.name)?;
            Some(StageRef {
                group: g.name.clone(),
                stage,
                stages: g.members.len(),
                next: g.members.get(stage + 1).cloned(),
            })
        });
        Self {
            kind,
            at,
            secret: cfg.name.clone(),
            secret_id: cfg.secret.id.as_str().to_owned(),
            group,
            attempt,
            outcome: None,
            step: None,
            error: None,
            consumers: Vec::new(),
            version: None,
            action: None,
        }
    }

    /// Fills in a failure: its outcome, step, text and the consumers' verdicts.
    pub fn with_failure(mut self, err: &RotationError) -> Self {
        self.outcome = Some(err.outcome().label());
        self.step = Some(err.step());
        self.error = Some(err.to_string());
        if let RotationError::Consumers {
            verdicts, commands, ..
        } = err
        {
            let mut all: Vec<ConsumerReport> = verdicts
                .iter()
                .map(|(svc, v)| ConsumerReport {
                    consumer: svc.to_string(),
                    verdict: v.label(),
                    detail: v.to_string(),
                    events: match v {
                        ServiceVerdict::RolledBack { events, .. }
                        | ServiceVerdict::Stalled { events, .. } => events.clone(),
                        _ => Vec::new(),
                    },
                })
                .chain(commands.iter().map(|(k, v)| ConsumerReport {
                    consumer: k.to_string(),
                    verdict: v.label(),
                    detail: v.to_string(),
                    events: Vec::new(),
                }))
                .collect();
            // The unhealthy ones first: they are what the reader is looking for.
            all.sort_by_key(|c| matches!(c.verdict, "stable" | "ok"));
            self.consumers = all;
        }
        self
    }
}

/// Receives rotation events. `notify` must return at once (queue, never wait on a
/// network): the scheduler calls it from its loop.
pub trait Notifier: Send + Sync {
    fn notify(&self, event: Event);
}

/// Drops every event (no `[[notify]]` configured; tests).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoNotifier;
impl Notifier for NoNotifier {
    fn notify(&self, _event: Event) {}
}
