//! Rotation groups: which stage of a `[[group]]` may start, decided from the members'
//! stored state alone (their `last-rotated` tags, unfinished rotations, and the hold
//! tag), so a restart, a second replica or the `group` command all see the same
//! progress.
//!
//! A cycle runs the stages in order. Stage k > 0 is *behind* when the stage before it
//! has a confirmed rotation (our `last-rotated` tag, written only once every consumer
//! was stable) newer than stage k's last rotation: its turn comes at that confirmation
//! plus the soak. The first stage that is behind or has an unfinished rotation is the
//! group's *current* stage; the stages after it wait. With no current stage the cycle
//! is complete, and the first stage is due on its own schedule (a new cycle).
//!
//! A failed stage stays current (its retry is the only way forward), so later stages
//! are neither skipped nor rotated. A held group starts no stage; a stage already begun
//! (an unfinished rotation) is still finished, since its target may accept only the new
//! value by then.

use crate::config::GroupConfig;
use crate::due::{DueInfo, DueStatus, Unfinished};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// Tag on a member secret: a value starting with `held` holds its group (written by
/// `secret-rotator group NAME hold`, cleared by `resume`).
pub const TAG_GROUP_HOLD: &str = "secret-rotator:group-hold";

/// How often a waiting stage's state is read again: a hold lifted, or an earlier stage
/// finished by another replica or by hand, is noticed within this.
pub const RECHECK: Duration = Duration::from_secs(300);

/// Whether a hold tag's value holds the group.
pub fn is_hold(value: &str) -> bool {
    value.starts_with("held")
}

/// Where one stage is in the group's cycle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StageState {
    /// Rotated in the current (or last complete) cycle; confirmed at `at` (None: never
    /// rotated by us, and no stage before it asks for it).
    Done { at: Option<DateTime<Utc>> },
    /// A rotation of this stage is unfinished in the store: it is resumed (held or not).
    InProgress { unfinished: Unfinished },
    /// Its turn: starts at `at` (the previous stage's confirmation plus the soak; for
    /// the first stage, its own schedule).
    Due { at: DateTime<Utc> },
    /// Waits for the stage at index `on`.
    Waiting { on: usize },
    /// Its state could not be read: it and the stages after it wait.
    Unknown,
}

impl StageState {
    pub fn label(&self) -> &'static str {
        match self {
            StageState::Done { .. } => "done",
            StageState::InProgress { .. } => "in_progress",
            StageState::Due { .. } => "due",
            StageState::Waiting { .. } => "waiting",
            StageState::Unknown => "unknown",
        }
    }
}

/// The group's progress as the stored state shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupView {
    /// The hold tag's value when the group is held.
    pub held: Option<String>,
    pub stages: Vec<StageState>,
    /// The stage whose turn it is (in progress or due), if the cycle is not complete;
    /// with a complete cycle, None (the first stage is then due on its schedule).
    pub current: Option<usize>,
    /// When each stage is expected to start (the soak after the one before; a rotation
    /// is counted as taking no time). None when it cannot be told (a stage unreadable).
    pub expected: Vec<Option<DateTime<Utc>>>,
}

impl GroupView {
    /// Whether stage `i` may start a rotation at `now`: a resume always, a new one only
    /// when it is the group's turn for it, its time has come and the group is not held.
    pub fn may_start(&self, i: usize, now: DateTime<Utc>) -> bool {
        match self.stages.get(i) {
            Some(StageState::InProgress { .. }) => true,
            Some(StageState::Due { at }) => self.held.is_none() && *at <= now,
            _ => false,
        }
    }

    /// When stage `i` next needs a look: its start time when it is due and not held; a
    /// resume now; otherwise None (it waits: read it again after [`RECHECK`]).
    pub fn start_at(&self, i: usize) -> Option<DateTime<Utc>> {
        match self.stages.get(i)? {
            StageState::InProgress { .. } => None,
            StageState::Due { at } if self.held.is_none() => Some(*at),
            _ => None,
        }
    }
}

/// What one member's stored state says, for [`evaluate`]: its due information and its
/// hold tag (None: the member could not be read).
pub type MemberRead<'a> = Option<(&'a DueInfo, Option<&'a str>)>;

/// The group's progress from its members' stored state, in stage order.
pub fn evaluate(group: &GroupConfig, members: &[MemberRead<'_>], now: DateTime<Utc>) -> GroupView {
    let soak = chrono::Duration::from_std(group.soak).unwrap_or_default();
    let n = members.len();
    let held = members
        .iter()
        .flatten()
        .find_map(|(_, h)| h.filter(|v| is_hold(v)).map(str::to_owned));
    let unfinished = |d: &DueInfo| match d.status {
        DueStatus::Unfinished(u) => Some(u),
        _ => None,
    };
    // The first stage that is unreadable, unfinished or behind the one before it.
    let mut stages: Vec<StageState> = Vec::with_capacity(n);
    let mut current = None;
    let mut blocked_at = None;
    for (k, m) in members.iter().enumerate() {
        let Some((d, _)) = m else {
            stages.push(StageState::Unknown);
            blocked_at.get_or_insert(k);
            continue;
        };
        let state = if let Some(u) = unfinished(d) {
            StageState::InProgress { unfinished: u }
        } else if k == 0 {
            StageState::Done { at: d.verified }
        } else {
            let before = members[k - 1]
                .and_then(|(p, _)| (unfinished(p).is_none()).then_some(p.verified).flatten());
            match before {
                Some(v) if d.last_rotated.is_none_or(|l| l < v) => StageState::Due { at: v + soak },
                _ => StageState::Done { at: d.verified },
            }
        };
        if matches!(
            state,
            StageState::InProgress { .. } | StageState::Due { .. }
        ) && current.is_none()
            && blocked_at.is_none()
        {
            current = Some(k);
        }
        stages.push(state);
    }
    // After the current (or an unreadable) stage, everything waits for it.
    let stop = match (current, blocked_at) {
        (Some(c), Some(b)) => Some(c.min(b)),
        (c, b) => c.or(b),
    };
    if let Some(stop) = stop {
        for s in stages.iter_mut().skip(stop + 1) {
            if !matches!(s, StageState::InProgress { .. } | StageState::Unknown) {
                *s = StageState::Waiting { on: stop };
            }
        }
    } else if let Some((d, _)) = members.first().copied().flatten() {
        // A complete cycle: the next one starts with the first stage, on its schedule.
        stages[0] = StageState::Due { at: d.due };
    }
    if current.is_some() && blocked_at.is_some_and(|b| Some(b) < current) {
        current = None;
    }
    let expected = expected_starts(&stages, stop.unwrap_or(0), soak, now);
    GroupView {
        held,
        stages,
        current,
        expected,
    }
}

/// Each stage's expected start: the stages before `first` (the current or unreadable
/// stage; 0 for a complete cycle) started when they were confirmed, `first` at its due
/// time (now when in progress), each later one a soak after the one before (a rotation
/// counted as taking no time).
fn expected_starts(
    stages: &[StageState],
    first: usize,
    soak: chrono::Duration,
    now: DateTime<Utc>,
) -> Vec<Option<DateTime<Utc>>> {
    let mut out: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(stages.len());
    for (k, s) in stages.iter().enumerate() {
        let e = if k < first {
            match s {
                StageState::Done { at } => *at,
                _ => None,
            }
        } else if k == first {
            match s {
                StageState::Due { at } => Some(*at),
                StageState::InProgress { .. } => Some(now),
                _ => None,
            }
        } else {
            out.last().copied().flatten().map(|l| l + soak)
        };
        out.push(e);
    }
    out
}
