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
    // Boxed so the future stays Send for every lifetime (a closure here trips the compiler's
    // higher-ranked lifetime check when the caller is spawned).
    let jobs: Vec<BoxFuture<'_, Result<DueInfo, AwsError>>> = secrets
        .iter()
        .zip(metas)
        .map(|(cfg, meta)| Box::pin(one(store, cfg, meta, now)) as BoxFuture<'_, _>)
        .collect();
    futures::stream::iter(jobs)
        .buffered(FALLBACK_CONCURRENCY)
        .collect()
        .await
}

async fn one<S: SecretStore>(
    store: &S,
    cfg: &SecretConfig,
    meta: Result<crate::rotation::store::SecretMeta, AwsError>,
    now: DateTime<Utc>,
) -> Result<DueInfo, AwsError> {
    let meta = meta?;
    let last = last_rotated(store, &cfg.secret, &meta).await?;
    let due = match last {
        Some(t) => next_due(t, &Schedule::of(cfg)),
        None => now,
    };
    let current = meta
        .version_with(crate::rotation::store::AWSCURRENT)
        .cloned();
    Ok(DueInfo {
        last_rotated: last,
        due,
        current,
    })
}
