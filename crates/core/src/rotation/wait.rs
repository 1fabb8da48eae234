//! The verdict of each redeployed service, and the pace of the polls that reach it.
//!
//! Pacing holds on any rollout shape: each rollout is polled on the AWS CLI waiter's
//! schedule (`aws ecs wait services-stable`: a call at once, then one every 15 s), so a
//! completion is never seen later than the waiter would see it, and never with more
//! calls by the same moment. The waiter's first call, at the moment the deployment
//! starts, tells nothing UpdateService's answer did not: that saved call is spent once,
//! a few seconds after the rollout looks about to complete (all new tasks running). The
//! polls themselves are made by the deploy coordinator (`coordinator`), one
//! DescribeServices per cluster for every service due.
//!
//! A stable timeout longer than the waiter's ten minutes (40 attempts) keeps the same
//! pace to the end: the comparison is with a waiter given the same time.
//!
//! ECS reads are eventually consistent ("might not be immediately visible to all
//! subsequent commands"): until our deployment has appeared in an answer, an answer
//! without it is not taken as a rollback (for [`VISIBILITY_GRACE`]).

use super::deploy::{DeploymentState, ServiceState};
use crate::ids::DeploymentId;
use std::time::Duration;
use tokio::time::Instant;

/// The CLI waiter's period: our schedule, and our call budget at any moment.
pub const WAITER_PERIOD: Duration = Duration::from_secs(15);
/// How long an answer that does not list the deployment UpdateService returned yet may
/// be a stale read. A real rollback takes minutes (failed tasks first), so judging one
/// this late costs little; judging a stale read as a rollback fails a healthy rotation.
pub const VISIBILITY_GRACE: Duration = Duration::from_secs(60);
/// The spare call comes this long after the rollout looked about to complete: old tasks
/// without a load balancer stop within seconds, and the deployment list follows.
pub const SPARE_DELAY: Duration = Duration::from_secs(3);
/// With deployment events: the poll that remains in case events are lost or late (a
/// service without circuit breaker sends no FAILED; its stall ends at the timeout).
pub const DEFAULT_SAFETY_POLL: Duration = Duration::from_secs(60);
/// An event's confirmation that did not show it yet (DescribeServices is eventually
/// consistent) is tried again this long after, doubling, this many times.
const CONFIRM_BACKOFF: Duration = Duration::from_secs(1);
const CONFIRM_RETRIES: u32 = 3;
/// Backoff after a throttled or failed DescribeServices, doubling up to the maximum.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Service events a stalled verdict reports.
pub(crate) const STALLED_EVENTS: usize = 10;

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
pub(crate) fn relevant_events(events: &[String], ours: &DeploymentId) -> Vec<String> {
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

/// What the last answer showed of a service: a stalled verdict reports it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Seen {
    pub(crate) running: i32,
    pub(crate) desired: i32,
    pub(crate) failed_tasks: i32,
    pub(crate) events: Vec<String>,
}

impl Seen {
    pub(crate) fn stalled(&self) -> ServiceVerdict {
        ServiceVerdict::Stalled {
            running: self.running,
            desired: self.desired,
            failed_tasks: self.failed_tasks,
            events: self.events.clone(),
        }
    }
}

/// Whether a rollout looks about to complete: our deployment is PRIMARY with all its
/// tasks running and none pending. What is left is old tasks stopping (seconds without a
/// load balancer, its deregistration delay with one) and ECS marking ours COMPLETED.
pub fn imminent(state: &ServiceState, ours: &DeploymentId) -> bool {
    state
        .primary()
        .filter(|p| &p.id == ours)
        .is_some_and(|p: &DeploymentState| p.running >= p.desired && p.pending == 0)
}

/// One rollout's polls on the CLI waiter's schedule.
///
/// The waiter calls at `origin` (when UpdateService answered) and then every
/// [`WAITER_PERIOD`]. To see any completion no later than it, a poll must fall on each of
/// its calls after the first: a completion just before one of them is seen by that call.
/// Its first call is ours to spend (see [`Pace::offer_spare`]). Rounds made for other
/// services of the cluster that include this one count as its calls, and move nothing:
/// the next poll is still the waiter's next call.
#[derive(Clone, Debug)]
pub struct Pace {
    origin: Instant,
    /// Calls that included this rollout so far.
    calls: u64,
    /// The latest poll that included it.
    last: Instant,
    spare_at: Option<Instant>,
    spare_spent: bool,
    /// After a throttled or failed call: no poll before this.
    hold: Option<Instant>,
    backoff: Duration,
    /// An event said the rollout changed: poll at this moment to confirm it.
    confirm_at: Option<Instant>,
    /// The latest poll was an event's confirmation.
    confirming: bool,
    confirms_left: u32,
}

/// How a rollout is followed: on the CLI waiter's schedule, or by deployment events with
/// a slow safety poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Waiter,
    Events { safety: Duration },
}

impl Pace {
    pub fn new(origin: Instant) -> Self {
        Self {
            origin,
            calls: 0,
            last: origin,
            spare_at: None,
            spare_spent: false,
            hold: None,
            backoff: Duration::ZERO,
            confirm_at: None,
            confirming: false,
            confirms_left: 0,
        }
    }

    pub fn origin(&self) -> Instant {
        self.origin
    }

    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// The waiter's calls by `at`: one at the origin, then one per period.
    pub fn budget(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.origin);
        1 + (since.as_nanos() / WAITER_PERIOD.as_nanos()) as u64
    }

    /// The waiter's first call after the latest poll.
    fn scheduled(&self) -> Instant {
        let since = self.last.saturating_duration_since(self.origin);
        let k = since.as_nanos() / WAITER_PERIOD.as_nanos() + 1;
        self.origin + WAITER_PERIOD * k as u32
    }

    /// When this rollout must be polled next.
    pub fn next(&self, mode: Mode) -> Instant {
        let mut at = match mode {
            Mode::Waiter => self.scheduled(),
            Mode::Events { safety } => self.last + safety,
        };
        // The spare only while within the waiter's count: rounds of other services that
        // included this one since it was planned may have used it up.
        let spare = self.spare_at.filter(|s| self.calls < self.budget(*s));
        for t in [spare, self.confirm_at].into_iter().flatten() {
            at = at.min(t);
        }
        match self.hold {
            Some(h) => at.max(h),
            None => at,
        }
    }

    /// A poll that included this rollout was made at `at` (answered or not).
    pub fn polled(&mut self, at: Instant) {
        self.calls += 1;
        self.last = self.last.max(at);
        if self.spare_at.is_some_and(|s| s <= at) {
            self.spare_at = None;
        }
        self.confirming = self.confirm_at.is_some_and(|c| c <= at);
        if self.confirming {
            self.confirm_at = None;
        }
    }

    /// A deployment event about this rollout arrived: confirm it with a poll now.
    pub fn confirm(&mut self, now: Instant) {
        self.confirm_at = Some(now);
        self.confirms_left = CONFIRM_RETRIES;
    }

    /// The answer gave no verdict. After an event's confirmation, ECS may not show the
    /// change yet: confirm again shortly, a few times.
    pub fn no_verdict(&mut self, now: Instant) {
        if std::mem::take(&mut self.confirming) && self.confirms_left > 0 {
            let n = CONFIRM_RETRIES - self.confirms_left;
            self.confirms_left -= 1;
            self.confirm_at = Some(now + CONFIRM_BACKOFF * 2u32.pow(n));
        }
    }

    /// The answer came: no more backoff.
    pub fn answered(&mut self) {
        self.hold = None;
        self.backoff = Duration::ZERO;
    }

    /// The call was throttled or failed: wait longer before the next, doubling up to a
    /// minute (a waiter would have stopped at the error).
    pub fn throttled(&mut self, now: Instant) {
        self.backoff = (self.backoff * 2).clamp(Duration::from_secs(2), MAX_BACKOFF);
        self.hold = Some(now + self.backoff);
    }

    /// The rollout looks about to complete (`imminent`): spend the saved call
    /// [`SPARE_DELAY`] from now, once per rollout, if it comes before the scheduled poll
    /// and the waiter would have made as many calls by then.
    pub fn offer_spare(&mut self, now: Instant) {
        if self.spare_spent {
            return;
        }
        let at = now + SPARE_DELAY;
        if at < self.scheduled() && self.calls < self.budget(at) {
            self.spare_at = Some(at);
            self.spare_spent = true;
        }
    }
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

    #[tokio::test(start_paused = true)]
    async fn the_pace_is_the_waiters_schedule_with_one_spare_call() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut p = Pace::new(t0);
        assert_eq!(p.budget(t0), 1);
        assert_eq!(p.budget(t0 + s(14)), 1);
        assert_eq!(p.budget(t0 + s(15)), 2);
        assert_eq!(p.next(Mode::Waiter), t0 + s(15));
        // A round for another service at 7 s includes this one: the next poll stays at 15.
        p.polled(t0 + s(7));
        assert_eq!(p.next(Mode::Waiter), t0 + s(15));
        p.polled(t0 + s(15));
        assert_eq!(p.next(Mode::Waiter), t0 + s(30));
        // Over budget after the extra call: no spare (2 calls by 18 s is the waiter's 2).
        p.offer_spare(t0 + s(15));
        assert_eq!(p.next(Mode::Waiter), t0 + s(30));
        let mut p = Pace::new(t0);
        p.polled(t0 + s(15));
        p.offer_spare(t0 + s(15));
        assert_eq!(p.next(Mode::Waiter), t0 + s(18));
        p.polled(t0 + s(18));
        assert_eq!(p.next(Mode::Waiter), t0 + s(30));
        // Spent once only.
        p.polled(t0 + s(30));
        p.offer_spare(t0 + s(30));
        assert_eq!(p.next(Mode::Waiter), t0 + s(45));
        // Planned, then used up by another service's round that listed this one: the
        // spare would be a third call by 18 s where the waiter made two.
        let mut p = Pace::new(t0);
        p.polled(t0 + s(15));
        p.offer_spare(t0 + s(15));
        p.polled(t0 + Duration::from_millis(15_500));
        assert_eq!(p.next(Mode::Waiter), t0 + s(30));
        let mut p = Pace::new(t0);
        p.polled(t0 + s(15));
        p.polled(t0 + s(18));
        p.polled(t0 + s(30));
        p.offer_spare(t0 + s(30));
        assert_eq!(p.next(Mode::Waiter), t0 + s(45));
        // Not when it would come after the scheduled poll.
        let mut p = Pace::new(t0);
        p.polled(t0 + s(15));
        p.offer_spare(t0 + s(28));
        assert_eq!(p.next(Mode::Waiter), t0 + s(30));
        // Throttled: held back, doubling, and released by an answer.
        p.throttled(t0 + s(29));
        assert_eq!(p.next(Mode::Waiter), t0 + s(31));
        p.throttled(t0 + s(29));
        assert_eq!(p.next(Mode::Waiter), t0 + s(33));
        p.answered();
        assert_eq!(p.next(Mode::Waiter), t0 + s(30));
    }

    #[tokio::test(start_paused = true)]
    async fn with_events_the_pace_is_a_safety_poll_and_confirmations() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let events = Mode::Events { safety: s(60) };
        let mut p = Pace::new(t0);
        assert_eq!(p.next(events), t0 + s(60));
        p.confirm(t0 + s(7));
        assert_eq!(p.next(events), t0 + s(7));
        p.polled(t0 + s(7));
        // Not shown yet: again after 1 s, 2 s, 4 s, then only the safety poll.
        for (at, again) in [(7, 8), (8, 10), (10, 14)] {
            p.no_verdict(t0 + s(at));
            assert_eq!(p.next(events), t0 + s(again));
            p.polled(t0 + s(again));
        }
        p.no_verdict(t0 + s(14));
        assert_eq!(p.next(events), t0 + s(74));
        // A poll that was not a confirmation does not start retries.
        p.polled(t0 + s(74));
        p.no_verdict(t0 + s(74));
        assert_eq!(p.next(events), t0 + s(134));
    }
}
