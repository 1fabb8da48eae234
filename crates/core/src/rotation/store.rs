//! What the rotation needs from a secret store (Secrets Manager), as a trait so the
//! engine runs against an in-memory fake in tests.

use crate::error::AwsError;
use crate::ids::{SecretArn, SecretRef, VersionId};
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use std::collections::BTreeMap;
use std::future::Future;

pub const AWSCURRENT: &str = "AWSCURRENT";
pub const AWSPENDING: &str = "AWSPENDING";
pub const AWSPREVIOUS: &str = "AWSPREVIOUS";
/// RFC 3339 time of the last completed rotation (value written and consumers stable).
pub const TAG_LAST_ROTATED: &str = "secret-rotator:last-rotated";
/// The AWSCURRENT version id that the consumers were last confirmed stable on.
pub const TAG_DEPLOYED_VERSION: &str = "secret-rotator:deployed-version";
/// The client request token of the pending version this rotator is about to write (or
/// wrote): written before every PutSecretValue, so the version stays recognisably ours
/// even when AWSCURRENT changes underneath and the token derivation no longer matches.
pub const TAG_PENDING_VERSION: &str = "secret-rotator:pending-version";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretMeta {
    pub arn: SecretArn,
    pub name: String,
    /// Version id -> staging labels, as `VersionIdsToStages` reports them.
    pub versions: BTreeMap<VersionId, Vec<String>>,
    pub tags: BTreeMap<String, String>,
    /// AWS-native rotation (a Lambda) is switched on: two rotators would fight.
    pub rotation_enabled: bool,
    pub deleted: bool,
    /// `LastChangedDate`: "the last date and time that this secret was modified in any
    /// way" (AWS's words), so never earlier than the last stage move.
    pub last_changed: Option<DateTime<Utc>>,
}

impl SecretMeta {
    pub fn version_with(&self, stage: &str) -> Option<&VersionId> {
        self.versions
            .iter()
            .find(|(_, stages)| stages.iter().any(|s| s == stage))
            .map(|(v, _)| v)
    }

    /// The `secret-rotator:pending-version` tag: the token of our latest pending version.
    pub fn pending_version_tag(&self) -> Option<VersionId> {
        self.tags
            .get(TAG_PENDING_VERSION)
            .map(|v| VersionId::new(v.clone()))
    }

    /// The `last-rotated` tag checked against `now`: whoever can write tags must not be
    /// able to stop rotation by writing a date far in the future.
    pub fn last_rotated_tag_at(&self, now: DateTime<Utc>) -> TagRead {
        let Some(raw) = self.tags.get(TAG_LAST_ROTATED) else {
            return TagRead::Absent;
        };
        match DateTime::parse_from_rfc3339(raw) {
            Err(_) => TagRead::Unparseable,
            Ok(t) => {
                let t = t.with_timezone(&Utc);
                if t > now + TAG_CLOCK_SKEW {
                    TagRead::Future(t)
                } else {
                    TagRead::Valid(t)
                }
            }
        }
    }

    pub fn deployed_version_tag(&self) -> Option<VersionId> {
        self.tags
            .get(TAG_DEPLOYED_VERSION)
            .map(|v| VersionId::new(v.clone()))
    }
}

/// How far in the future a `last-rotated` tag may be (clock skew between hosts).
pub const TAG_CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(5);

/// What the `last-rotated` tag says, once checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagRead {
    Absent,
    Valid(DateTime<Utc>),
    /// Not an RFC 3339 time: treated as absent.
    Unparseable,
    /// Beyond [`TAG_CLOCK_SKEW`] in the future: invalid, the secret is due now.
    Future(DateTime<Utc>),
}

/// One version of a secret as `ListSecretVersionIds` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionInfo {
    pub id: VersionId,
    pub stages: Vec<String>,
    pub created: Option<DateTime<Utc>>,
}

/// Which version to read: by staging label or by id (then the label is checked too).
#[derive(Clone, Debug)]
pub enum Select<'a> {
    Stage(&'a str),
    Version(&'a VersionId, &'a str),
}

/// Where [`SecretStore::describe_many`] hands each answer: the input's index, and the
/// secret's metadata or the error for it.
pub type Found<'a> = &'a mut (dyn FnMut(usize, Result<SecretMeta, AwsError>) + Send);

pub trait SecretStore: Send + Sync + 'static {
    /// DescribeSecret.
    fn describe(&self, s: &SecretRef) -> impl Future<Output = Result<SecretMeta, AwsError>> + Send;

    /// Metadata for many secrets at once (ListSecrets pages where possible), handed to
    /// `found(index into refs, answer)` as it arrives: once per input, in any order, so a
    /// caller acts on the first page's secrets before the last page is read. Collect with
    /// [`describe_all`].
    fn describe_many(
        &self,
        refs: &[SecretRef],
        found: Found<'_>,
    ) -> impl Future<Output = ()> + Send;

    /// ListSecretVersionIds: versions with creation dates.
    fn versions(
        &self,
        s: &SecretRef,
    ) -> impl Future<Output = Result<Vec<VersionInfo>, AwsError>> + Send;

    /// GetSecretValue, always with an explicit stage.
    fn get_value(
        &self,
        s: &SecretRef,
        select: Select<'_>,
    ) -> impl Future<Output = Result<(VersionId, SecretString), AwsError>> + Send;

    /// PutSecretValue with `VersionStages=[AWSPENDING]` and the given client request token.
    fn put_pending(
        &self,
        s: &SecretRef,
        token: &VersionId,
        value: &SecretString,
    ) -> impl Future<Output = Result<VersionId, AwsError>> + Send;

    /// UpdateSecretVersionStage: attach `stage` to `to` and/or remove it from `from`.
    fn update_stage(
        &self,
        s: &SecretRef,
        stage: &str,
        to: Option<&VersionId>,
        from: Option<&VersionId>,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;

    /// TagResource.
    fn tag(
        &self,
        s: &SecretRef,
        tags: &[(&str, String)],
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
}

/// A shared store is a store (so callers can keep a handle on the one an engine owns).
impl<T: SecretStore> SecretStore for std::sync::Arc<T> {
    fn describe(&self, s: &SecretRef) -> impl Future<Output = Result<SecretMeta, AwsError>> + Send {
        (**self).describe(s)
    }
    fn describe_many(
        &self,
        refs: &[SecretRef],
        found: Found<'_>,
    ) -> impl Future<Output = ()> + Send {
        (**self).describe_many(refs, found)
    }
    fn versions(
        &self,
        s: &SecretRef,
    ) -> impl Future<Output = Result<Vec<VersionInfo>, AwsError>> + Send {
        (**self).versions(s)
    }
    fn get_value(
        &self,
        s: &SecretRef,
        select: Select<'_>,
    ) -> impl Future<Output = Result<(VersionId, SecretString), AwsError>> + Send {
        (**self).get_value(s, select)
    }
    fn put_pending(
        &self,
        s: &SecretRef,
        token: &VersionId,
        value: &SecretString,
    ) -> impl Future<Output = Result<VersionId, AwsError>> + Send {
        (**self).put_pending(s, token, value)
    }
    fn update_stage(
        &self,
        s: &SecretRef,
        stage: &str,
        to: Option<&VersionId>,
        from: Option<&VersionId>,
    ) -> impl Future<Output = Result<(), AwsError>> + Send {
        (**self).update_stage(s, stage, to, from)
    }
    fn tag(
        &self,
        s: &SecretRef,
        tags: &[(&str, String)],
    ) -> impl Future<Output = Result<(), AwsError>> + Send {
        (**self).tag(s, tags)
    }
}

/// [`SecretStore::describe_many`] collected: one answer per input, in order (an input
/// the store left unanswered, a bug of the store, gets an error rather than a panic).
pub async fn describe_all<S: SecretStore>(
    store: &S,
    refs: &[SecretRef],
) -> Vec<Result<SecretMeta, AwsError>> {
    let mut out: Vec<Option<Result<SecretMeta, AwsError>>> = vec![None; refs.len()];
    store
        .describe_many(refs, &mut |i, r| {
            if let Some(slot) = out.get_mut(i) {
                *slot = Some(r);
            }
        })
        .await;
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| Err(no_answer())))
        .collect()
}

/// The answer for a secret the store did not answer for.
pub fn no_answer() -> AwsError {
    AwsError::new(
        crate::error::ErrorClass::Other,
        "DescribeSecret",
        "NoResult",
        "no result",
    )
}

/// The creation date of the AWSCURRENT version (ListSecretVersionIds), if the store has one.
pub async fn current_created<S: SecretStore>(
    store: &S,
    s: &SecretRef,
    meta: &SecretMeta,
) -> Result<Option<DateTime<Utc>>, AwsError> {
    let Some(current) = meta.version_with(AWSCURRENT) else {
        return Ok(None);
    };
    let versions = store.versions(s).await?;
    Ok(versions
        .into_iter()
        .find(|v| &v.id == current)
        .and_then(|v| v.created))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tag up to five minutes ahead (another host's clock) is used; beyond, it is not.
    #[test]
    fn a_tag_is_trusted_up_to_the_clock_skew_ahead() {
        let now = DateTime::parse_from_rfc3339("2026-03-03T02:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let meta = |t: DateTime<Utc>| SecretMeta {
            arn: SecretArn::from("arn:aws:secretsmanager:us-east-1:1:secret:a"),
            name: "a".into(),
            versions: BTreeMap::new(),
            tags: [(
                TAG_LAST_ROTATED.to_owned(),
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            )]
            .into(),
            rotation_enabled: false,
            deleted: false,
            last_changed: None,
        };
        let edge = now + TAG_CLOCK_SKEW;
        assert!(matches!(meta(edge).last_rotated_tag_at(now), TagRead::Valid(t) if t == edge));
        let beyond = edge + chrono::Duration::seconds(1);
        assert!(matches!(
            meta(beyond).last_rotated_tag_at(now),
            TagRead::Future(_)
        ));
    }
}
