//! Due times read from the store. Used by `plan` and by the daemon at start-up, reload and
//! refresh.
//!
//! Due-ness comes from the stored state first, times second: an unfinished rotation of ours
//! (our AWSPENDING, or our AWSCURRENT not yet confirmed deployed) is due now, as a resume.
//! Otherwise due = last rotation (our `last-rotated` tag, else AWSCURRENT's creation date)
//! plus the schedule. A `last-rotated` tag in the future is invalid (due now), an unparseable
//! one counts as absent; both are reported so the daemon can warn and count them.

use crate::config::SecretConfig;
use crate::error::AwsError;
use crate::rotation::store::{
    no_answer, SecretMeta, SecretStore, TagRead, AWSCURRENT, AWSPENDING, AWSPREVIOUS,
};
use crate::rotation::token::attempt_of;
use crate::schedule::{next_due, Schedule};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use std::collections::VecDeque;
use std::task::Poll;

/// Concurrent ListSecretVersionIds calls for secrets without our tag.
const FALLBACK_CONCURRENCY: usize = 16;

/// Where an unfinished rotation of ours stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unfinished {
    /// Our pending value exists but is not current yet (stopped in create, set or test).
    Pending,
    /// AWSCURRENT moved to our value, AWSPENDING is still on it (stopped in finish).
    Finish,
    /// Our value is current; the consumers were not confirmed stable on it.
    Redeploy,
}

impl Unfinished {
    /// The new value is already AWSCURRENT: what is left only redeploys (no new value).
    pub fn value_is_current(self) -> bool {
        matches!(self, Unfinished::Finish | Unfinished::Redeploy)
    }

    /// For `plan` and logs.
    pub fn describe(self) -> &'static str {
        match self {
            Unfinished::Pending => "unfinished rotation",
            Unfinished::Finish | Unfinished::Redeploy => "redeploy pending",
        }
    }
}

/// Why a secret is due when it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "stage")]
pub enum DueStatus {
    /// By the schedule: last rotation + `every` (window, jitter).
    Scheduled,
    /// A rotation of ours stopped before it finished: due now, as a resume.
    Unfinished(Unfinished),
    /// The `last-rotated` tag is in the future: not trusted, due now.
    InvalidTag,
}

impl DueStatus {
    /// Due only to finish a rotation whose value is already current: a rotation started
    /// for it must not make a new value ([`crate::rotation::RotateOptions::resume_only`]).
    pub fn resume_only(self) -> bool {
        matches!(self, DueStatus::Unfinished(u) if u.value_is_current())
    }
}

/// A `last-rotated` tag that was not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TagProblem {
    Future,
    Unparseable,
}

impl TagProblem {
    pub fn label(self) -> &'static str {
        match self {
            TagProblem::Future => "future",
            TagProblem::Unparseable => "unparseable",
        }
    }
}

#[derive(Clone, Debug)]
pub struct DueInfo {
    /// None: the store has no usable date for the current value; the secret is due now.
    pub last_rotated: Option<DateTime<Utc>>,
    /// A rotation confirmed by our (valid) `last-rotated` tag, not a creation date.
    pub verified: Option<DateTime<Utc>>,
    pub due: DateTime<Utc>,
    /// The AWSCURRENT version the due time refers to (the one a rotation will replace).
    pub current: Option<crate::ids::VersionId>,
    pub status: DueStatus,
    pub tag_problem: Option<TagProblem>,
    /// The `secret-rotator:group-hold` tag's value, when it holds the secret's group.
    pub hold: Option<String>,
    /// A group stage that may not start yet: `due` is only when to read it again
    /// ([`crate::group::RECHECK`]), not a start ([`crate::group`] sets it).
    pub group_wait: bool,
    /// A group stage whose turn it is (due, possibly held, or in progress): a failure of
    /// it still counts. A stage that is done or waits owes nothing.
    pub group_owed: bool,
    /// A group stage's expected start (what its next due time means to people).
    pub group_expected: Option<DateTime<Utc>>,
}

/// The one place that decides whether the stored state shows an unfinished rotation of
/// ours. "Ours" is recognised as the engine does (`token::attempt_of`): a pending version
/// whose id is one of our tokens for replacing AWSCURRENT, or an AWSCURRENT whose id is
/// one of our tokens for replacing AWSPREVIOUS. A secret we never rotated (no tags,
/// AWSCURRENT not ours) and a foreign AWSPENDING are not unfinished.
pub fn unfinished(meta: &SecretMeta) -> Option<Unfinished> {
    let current = meta.version_with(AWSCURRENT)?;
    // The same notion of "ours" as the engine's phase detection: the token derivation,
    // or the pending-version tag written before the put (which still holds when someone
    // changed AWSCURRENT during set/test).
    let marker = meta.pending_version_tag();
    let current_is_ours = marker.as_ref() == Some(current)
        || meta
            .version_with(AWSPREVIOUS)
            .is_some_and(|prev| attempt_of(&meta.arn, prev, current).is_some());
    match meta.version_with(AWSPENDING) {
        Some(p) if p == current => current_is_ours.then_some(Unfinished::Finish),
        Some(p) => (attempt_of(&meta.arn, current, p).is_some() || marker.as_ref() == Some(p))
            .then_some(Unfinished::Pending),
        None => (current_is_ours && meta.deployed_version_tag().as_ref() != Some(current))
            .then_some(Unfinished::Redeploy),
    }
}

/// Due information for each secret, in input order.
pub async fn due_times<S: SecretStore>(
    store: &S,
    secrets: &[&SecretConfig],
    now: DateTime<Utc>,
) -> Vec<Result<DueInfo, AwsError>> {
    let mut out: Vec<Option<Result<DueInfo, AwsError>>> = vec![None; secrets.len()];
    due_times_each(store, secrets, now, |i, r| out[i] = Some(r)).await;
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| Err(no_answer())))
        .collect()
}

/// Like [`due_times`], but hands each result to `sink(index, result)` as soon as it is
/// known: secrets with our tag as their metadata arrives (page by page when the store
/// lists), the rest as their ListSecretVersionIds calls return (so one slow secret does
/// not hold back the others, and the first page's secrets not the last page).
pub async fn due_times_each<S: SecretStore>(
    store: &S,
    secrets: &[&SecretConfig],
    now: DateTime<Utc>,
    mut sink: impl FnMut(usize, Result<DueInfo, AwsError>) + Send,
) {
    let refs: Vec<_> = secrets.iter().map(|s| s.secret.clone()).collect();
    // The store's answers cross a channel to the loop below, which runs beside the
    // listing in this task: a page's secrets are answered while the next page is read.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let list = async move {
        store
            .describe_many(&refs, &mut |i, r| {
                let _ = tx.send((i, r));
            })
            .await;
        // `tx` is dropped here: the loop sees the end of the answers.
    };
    // Most secrets carry our tag: their due time needs no further call, so only the rest
    // become futures (boxed so the future stays Send for every lifetime when spawned),
    // at most FALLBACK_CONCURRENCY at a time.
    let mut waiting: VecDeque<(usize, SecretMeta, TagRead)> = VecDeque::new();
    let mut slow: FuturesUnordered<BoxFuture<'_, (usize, Result<DueInfo, AwsError>)>> =
        FuturesUnordered::new();
    let mut listing = true;
    let answer = futures::future::poll_fn(|cx| loop {
        let mut moved = false;
        if listing {
            match rx.poll_recv(cx) {
                Poll::Ready(Some((i, meta))) => {
                    moved = true;
                    match (secrets.get(i), meta) {
                        (Some(cfg), Ok(m)) => {
                            let tag = m.last_rotated_tag_at(now);
                            // A future tag is not used: the value's creation date (AWS's
                            // clock) needs the slower read, like a secret without our tag.
                            if matches!(tag, TagRead::Valid(_)) {
                                sink(i, Ok(from_meta(cfg, &m, None, tag, now)));
                            } else {
                                waiting.push_back((i, m, tag));
                            }
                        }
                        (Some(_), Err(e)) => sink(i, Err(e)),
                        // An index the store made up: nobody to answer.
                        (None, _) => {}
                    }
                }
                Poll::Ready(None) => {
                    moved = true;
                    listing = false;
                }
                Poll::Pending => {}
            }
        }
        while slow.len() < FALLBACK_CONCURRENCY {
            let Some((i, m, tag)) = waiting.pop_front() else {
                break;
            };
            // `i` was checked when it was queued.
            if let Some(cfg) = secrets.get(i) {
                slow.push(Box::pin(one(i, store, cfg, m, tag, now)));
            }
        }
        if let Poll::Ready(Some((i, r))) = slow.poll_next_unpin(cx) {
            moved = true;
            sink(i, r);
        }
        if !listing && slow.is_empty() && waiting.is_empty() {
            return Poll::Ready(());
        }
        if !moved {
            return Poll::Pending;
        }
    });
    futures::future::join(list, answer).await;
}

fn from_meta(
    cfg: &SecretConfig,
    meta: &SecretMeta,
    created: Option<DateTime<Utc>>,
    tag: TagRead,
    now: DateTime<Utc>,
) -> DueInfo {
    let (last, verified, tag_problem) = match tag {
        TagRead::Valid(t) => (Some(t), Some(t), None),
        TagRead::Absent => (created, None, None),
        TagRead::Unparseable => (created, None, Some(TagProblem::Unparseable)),
        // Not trusted, but not "due now" either: our own tag after the clock stepped back
        // would rotate again. The value's creation date decides (an attacker's future tag
        // cannot stop rotation, and a fresh value is not rotated twice).
        TagRead::Future(_) => (created, None, Some(TagProblem::Future)),
    };
    let status = match unfinished(meta) {
        Some(u) => DueStatus::Unfinished(u),
        None if tag_problem == Some(TagProblem::Future) => DueStatus::InvalidTag,
        None => DueStatus::Scheduled,
    };
    let scheduled = last.map(|t| next_due(t, &Schedule::of(cfg)));
    let due = match (status, scheduled) {
        (DueStatus::Scheduled | DueStatus::InvalidTag, Some(d)) => d,
        // Due now, or earlier if the schedule says so (an unfinished rotation of an
        // overdue secret stays overdue).
        (_, Some(d)) => d.min(now),
        (_, None) => now,
    };
    let current = meta.version_with(AWSCURRENT).cloned();
    let hold = meta
        .tags
        .get(crate::group::TAG_GROUP_HOLD)
        .filter(|v| crate::group::is_hold(v))
        .cloned();
    DueInfo {
        last_rotated: last,
        verified,
        due,
        current,
        status,
        tag_problem,
        hold,
        group_wait: false,
        group_owed: false,
        group_expected: None,
    }
}

/// The due time of secret `i` when it needs a ListSecretVersionIds call (no usable tag).
async fn one<S: SecretStore>(
    i: usize,
    store: &S,
    cfg: &SecretConfig,
    meta: SecretMeta,
    tag: TagRead,
    now: DateTime<Utc>,
) -> (usize, Result<DueInfo, AwsError>) {
    let r = async {
        let created = crate::rotation::store::current_created(store, &cfg.secret, &meta).await?;
        Ok(from_meta(cfg, &meta, created, tag, now))
    };
    (i, r.await)
}
