//! Due times read from the store: last rotation (our tag, else AWSCURRENT's creation date)
//! and the schedule. Used by `plan` and by the daemon at start-up, reload and refresh.

use crate::config::SecretConfig;
use crate::error::AwsError;
use crate::rotation::store::{last_rotated, SecretStore};
use crate::schedule::{next_due, Schedule};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::StreamExt;

/// Concurrent ListSecretVersionIds calls for secrets without our tag.
const FALLBACK_CONCURRENCY: usize = 16;

#[derive(Clone, Debug)]
pub struct DueInfo {
    /// None: the store has no date for the current value; the secret is due now.
    pub last_rotated: Option<DateTime<Utc>>,
    pub due: DateTime<Utc>,
    /// The AWSCURRENT version the due time refers to (the one a rotation will replace).
    pub current: Option<crate::ids::VersionId>,
}

/// Due information for each secret, in input order.
pub async fn due_times<S: SecretStore>(
    store: &S,
    secrets: &[&SecretConfig],
    now: DateTime<Utc>,
) -> Vec<Result<DueInfo, AwsError>> {
    let refs: Vec<_> = secrets.iter().map(|s| s.secret.clone()).collect();
    let metas = store.describe_many(&refs).await;
    drop(refs);
    // Most secrets carry our tag: their due time needs no further call, so only the rest
    // become futures (boxed so the future stays Send for every lifetime when spawned).
    let mut out: Vec<Option<Result<DueInfo, AwsError>>> = Vec::with_capacity(secrets.len());
    let mut slow: Vec<BoxFuture<'_, (usize, Result<DueInfo, AwsError>)>> = Vec::new();
    for (i, (cfg, meta)) in secrets.iter().zip(metas).enumerate() {
        let tagged = meta.as_ref().ok().and_then(|m| m.last_rotated_tag());
        match (meta, tagged) {
            (Ok(m), Some(t)) => out.push(Some(Ok(from_meta(cfg, &m, Some(t), now)))),
            (other, _) => {
                out.push(None);
                slow.push(Box::pin(one(i, store, cfg, other, now)));
            }
        }
    }
    let done: Vec<(usize, Result<DueInfo, AwsError>)> = futures::stream::iter(slow)
        .buffer_unordered(FALLBACK_CONCURRENCY)
        .collect()
        .await;
    for (i, r) in done {
        out[i] = Some(r);
    }
    out.into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(AwsError::new(
                    crate::error::ErrorClass::Other,
                    "DescribeSecret",
                    "NoResult",
                    "no result",
                ))
            })
        })
        .collect()
}

fn from_meta(
    cfg: &SecretConfig,
    meta: &crate::rotation::store::SecretMeta,
    last: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> DueInfo {
    let due = match last {
        Some(t) => next_due(t, &Schedule::of(cfg)),
        None => now,
    };
    let current = meta
        .version_with(crate::rotation::store::AWSCURRENT)
        .cloned();
    DueInfo {
        last_rotated: last,
        due,
        current,
    }
}

/// The due time of secret `i` when it needs a ListSecretVersionIds call (no tag).
async fn one<S: SecretStore>(
    i: usize,
    store: &S,
    cfg: &SecretConfig,
    meta: Result<crate::rotation::store::SecretMeta, AwsError>,
    now: DateTime<Utc>,
) -> (usize, Result<DueInfo, AwsError>) {
    let r = async {
        let meta = meta?;
        let last = last_rotated(store, &cfg.secret, &meta).await?;
        Ok(from_meta(cfg, &meta, last, now))
    };
    (i, r.await)
}
