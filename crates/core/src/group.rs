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

use crate::config::{GroupConfig, SecretConfig};
use crate::due::{DueInfo, DueStatus, Unfinished};
use crate::error::AwsError;
use crate::ids::GroupName;
use crate::rotation::store::SecretStore;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
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

/// How often a waiting stage other than the one whose turn it is is read again: every
/// group read answers all its members, so one stage (the current one, or the first in a
/// complete cycle) watching at [`RECHECK`] is enough; the others only catch up with
/// changes made elsewhere (a hold lifted by hand is seen by the watching stage).
pub const IDLE_RECHECK: Duration = Duration::from_secs(3600);

/// One member's due information as its group allows: a stage whose turn it is keeps its
/// start time (the previous stage's confirmation plus the soak, or its own schedule for
/// the first stage); an unfinished one resumes now; any other waits, read again after
/// [`RECHECK`] (the stage whose turn it is, held) or [`IDLE_RECHECK`] (`group_wait`).
pub fn adjust(view: &GroupView, stage: usize, mut d: DueInfo, now: DateTime<Utc>) -> DueInfo {
    let state = view.stages.get(stage);
    d.group_owed = matches!(
        state,
        Some(StageState::Due { .. } | StageState::InProgress { .. })
    ) && view.current.is_none_or(|c| c == stage);
    d.group_expected = view.expected.get(stage).copied().flatten();
    match state {
        Some(StageState::InProgress { .. }) => {}
        _ => match view.start_at(stage) {
            Some(at) => {
                d.due = at;
                d.group_wait = false;
            }
            None => {
                let watcher = view.current.unwrap_or(0) == stage;
                let every = if watcher { RECHECK } else { IDLE_RECHECK };
                d.due = now + chrono::Duration::from_std(every).unwrap_or_default();
                d.group_wait = true;
            }
        },
    }
    d
}

/// A member read with another configuration of its group than the others (a reload
/// while it ran): it may not start until a read sees one configuration.
fn unsure(mut d: DueInfo, now: DateTime<Utc>) -> DueInfo {
    if !matches!(d.status, DueStatus::Unfinished(_)) {
        d.due = now + chrono::Duration::from_std(RECHECK).unwrap_or_default();
        d.group_wait = true;
    }
    d
}

/// [`crate::due::due_times_each`], with every group member's due time as its group
/// allows ([`adjust`]). A member is answered once every member of its group in
/// `secrets` has been read (pass whole groups: a member missing from `secrets` counts as
/// unreadable, so the stages after it wait). `on_group` gets each group's view as it is
/// evaluated.
pub async fn due_times_each<S: SecretStore>(
    store: &S,
    secrets: &[&SecretConfig],
    now: DateTime<Utc>,
    mut sink: impl FnMut(usize, Result<DueInfo, AwsError>) + Send,
    mut on_group: impl FnMut(&GroupConfig, &GroupView) + Send,
) {
    // Per group: the index in `secrets` of each of its stages, and what was read.
    let mut groups: HashMap<&GroupName, Pending<'_>> = HashMap::new();
    // Members whose group configuration differs from the first one seen (a reload).
    let mut mixed: Vec<bool> = vec![false; secrets.len()];
    for (i, s) in secrets.iter().enumerate() {
        if let Some(g) = &s.group {
            if let Some(stage) = g.stage_of(&s.name) {
                let p = groups.entry(&g.name).or_insert_with(|| Pending {
                    group: g,
                    index: vec![None; g.members.len()],
                    read: HashMap::new(),
                });
                match p.index.get_mut(stage) {
                    Some(slot @ None) if *p.group == **g => *slot = Some(i),
                    _ => mixed[i] = true,
                }
            }
        }
    }
    crate::due::due_times_each(store, secrets, now, |i, r| {
        let Some(g) = secrets.get(i).and_then(|s| s.group.as_ref()) else {
            return sink(i, r);
        };
        if mixed.get(i).copied().unwrap_or(true) {
            return sink(i, r.map(|d| unsure(d, now)));
        }
        let Some(p) = groups.get_mut(&g.name) else {
            return sink(i, r.map(|d| unsure(d, now)));
        };
        p.read.insert(i, r);
        let wanted = p.index.iter().flatten().count();
        if p.read.len() < wanted {
            return;
        }
        if let Some(p) = groups.remove(&g.name) {
            answer(p, now, &mut sink, &mut on_group);
        }
    })
    .await;
    // A store that left a member unanswered: the others are answered all the same (the
    // unanswered one counts as unreadable).
    for (_, p) in groups.drain() {
        answer(p, now, &mut sink, &mut on_group);
    }
}

fn answer(
    p: Pending<'_>,
    now: DateTime<Utc>,
    sink: &mut impl FnMut(usize, Result<DueInfo, AwsError>),
    on_group: &mut impl FnMut(&GroupConfig, &GroupView),
) {
    let reads: Vec<MemberRead<'_>> = p
        .index
        .iter()
        .map(|i| {
            i.and_then(|i| p.read.get(&i))
                .and_then(|r| r.as_ref().ok())
                .map(|d| (d, d.hold.as_deref()))
        })
        .collect();
    let view = evaluate(p.group, &reads, now);
    on_group(p.group, &view);
    let mut read = p.read;
    for (stage, i) in p.index.iter().enumerate() {
        let Some(i) = *i else { continue };
        match read.remove(&i) {
            Some(Ok(d)) => sink(i, Ok(adjust(&view, stage, d, now))),
            Some(Err(e)) => sink(i, Err(e)),
            None => {}
        }
    }
}

struct Pending<'a> {
    group: &'a GroupConfig,
    /// `secrets` index of each stage (None: not in this read).
    index: Vec<Option<usize>>,
    read: HashMap<usize, Result<DueInfo, AwsError>>,
}

/// Whether `cfg` (a member of its group, read with `members`) may start a rotation now:
/// a fresh read of the whole group says it is its turn, its time has come and the group
/// is not held (or its own rotation is unfinished). A read that fails says no (the
/// caller's next read reports the error).
pub async fn may_start_now<S: SecretStore>(
    store: &S,
    members: &[&SecretConfig],
    cfg: &SecretConfig,
    now: DateTime<Utc>,
) -> bool {
    match due_of(store, members, cfg, now).await {
        Some(Ok(d)) => !d.group_wait && d.due <= now,
        _ => false,
    }
}

/// `cfg`'s due information as its group allows, read with `secrets` (`cfg` and, for a
/// group stage, its whole group); None when `cfg` is not among them or went unanswered.
pub async fn due_of<S: SecretStore>(
    store: &S,
    secrets: &[&SecretConfig],
    cfg: &SecretConfig,
    now: DateTime<Utc>,
) -> Option<Result<DueInfo, AwsError>> {
    let i = secrets.iter().position(|m| m.name == cfg.name)?;
    let mut mine = None;
    due_times_each(
        store,
        secrets,
        now,
        |j, r| {
            if j == i {
                mine = Some(r);
            }
        },
        |_, _| {},
    )
    .await;
    mine
}
