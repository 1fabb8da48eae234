//! The `iam-access-key` target: the secret holds an IAM user's access key,
//! `{"AccessKeyId": "...", "SecretAccessKey": "..."}` (other keys of the document are kept).
//!
//! - create: IAM allows two keys per user. Before `CreateAccessKey` this makes room:
//!   inactive keys whose grace period (`delete_after`, counted from the deactivation this
//!   target recorded in the `secret-rotator:iam-deactivated` tag) is over are deleted;
//!   an active key that AWSCURRENT does not reference and that an earlier attempt of ours
//!   created (the `secret-rotator:iam-creating` tag names it by id) is deleted: a dropped
//!   or interrupted attempt's key; if two keys remain, an inactive one that is not
//!   AWSCURRENT's is deleted (with a warning if its grace period is not over). If both
//!   remaining keys are active, the rotation fails and says which key to deal with: an
//!   active key we cannot prove is ours may be in use elsewhere.
//!
//!   Tags and values can be written by others, so they alone never condemn a working
//!   key: a tagged key is deleted while active only if it is younger than AWSCURRENT's
//!   key (an interrupted attempt always made a newer key) and AWSCURRENT's key is itself
//!   listed and active (never the last working key); a time alone in the tag deletes
//!   nothing. Revoke deactivates the previous key only if it is older than the current
//!   one and the current one is active.
//! - set: nothing (the key exists in IAM from create on).
//! - test: STS `GetCallerIdentity` signed with the new key must name the configured user;
//!   retried for up to [`TEST_PROPAGATION`] because new keys take seconds to propagate.
//! - revoke (after every consumer is stable): the previous key (AWSPREVIOUS's
//!   `AccessKeyId`) is deactivated and the time recorded in the tag; it is deleted at the
//!   start of the first rotation after `delete_after` (at once when `delete_after` is 0).
//!
//! A crash at any point is safe: before the pending version is written the new key is an
//! orphan that the next create deletes; after, the engine resumes with the stored key.
//! The secret access key is never logged; key ids are not secret and are logged.

pub mod aws;

use crate::config::{SecretConfig, Target, TargetKind, TargetTable, DURATION_EXPECTED};
use crate::error::{AwsError, ErrorClass};
use crate::ids::Account;
use crate::rotation::deploy::Deployer;
use crate::rotation::lease::fence::Fenced;
use crate::rotation::store::{SecretStore, Select, AWSCURRENT};
use crate::rotation::target::{ConfiguredTarget, TargetEnv, TargetError};
use crate::rotation::Engine;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use toml::Spanned;

/// `<AccessKeyId>@<RFC 3339>`: the key this target deactivated last, and when.
pub const TAG_IAM_DEACTIVATED: &str = "secret-rotator:iam-deactivated";
/// `<RFC 3339>` written just before each `CreateAccessKey`, `<AccessKeyId>@<RFC 3339>`
/// right after: recognises the key of an attempt that was dropped or died before its
/// pending version became current.
pub const TAG_IAM_CREATING: &str = "secret-rotator:iam-creating";
/// How long the test step keeps trying a new key (IAM is eventually consistent).
pub const TEST_PROPAGATION: Duration = Duration::from_secs(30);
const TEST_RETRY_EVERY: Duration = Duration::from_secs(2);

const KEY_ID: &str = "AccessKeyId";
const KEY_SECRET: &str = "SecretAccessKey";

/// One access key as `ListAccessKeys` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessKeyInfo {
    pub id: String,
    pub active: bool,
    pub created: Option<DateTime<Utc>>,
}

/// A key `CreateAccessKey` just made.
pub struct NewAccessKey {
    pub id: String,
    pub secret: SecretString,
}

/// What this target needs from IAM and STS; the real client is [`aws::AwsIam`].
pub trait IamApi: Send + Sync {
    fn list_keys<'a>(
        &'a self,
        account: &'a Account,
        user: &'a str,
    ) -> BoxFuture<'a, Result<Vec<AccessKeyInfo>, AwsError>>;

    fn create_key<'a>(
        &'a self,
        account: &'a Account,
        user: &'a str,
    ) -> BoxFuture<'a, Result<NewAccessKey, AwsError>>;

    /// UpdateAccessKey: Active or Inactive.
    fn set_active<'a>(
        &'a self,
        account: &'a Account,
        user: &'a str,
        key_id: &'a str,
        active: bool,
    ) -> BoxFuture<'a, Result<(), AwsError>>;

    fn delete_key<'a>(
        &'a self,
        account: &'a Account,
        user: &'a str,
        key_id: &'a str,
    ) -> BoxFuture<'a, Result<(), AwsError>>;

    /// STS GetCallerIdentity signed with the given key: the caller's ARN.
    fn caller_arn<'a>(
        &'a self,
        account: &'a Account,
        key_id: &'a str,
        secret: &'a SecretString,
    ) -> BoxFuture<'a, Result<String, AwsError>>;
}

/// The engine with an IAM/STS client for this target (the binary's real one, fenced, or
/// a test's fake). Without one, the target's steps fail with a setup error.
pub trait WithIam {
    fn with_iam(self, iam: Arc<dyn IamApi>) -> Self;
}

impl<S: SecretStore, D: Deployer> WithIam for Engine<S, D> {
    fn with_iam(self, iam: Arc<dyn IamApi>) -> Self {
        self.with_target_client(iam)
    }
}

/// The IAM client the engine was given ([`WithIam`]).
fn iam<'a>(env: &'a TargetEnv<'a>) -> Result<&'a dyn IamApi, AwsError> {
    match env.clients.get::<Arc<dyn IamApi>>() {
        Some(c) => Ok(c.as_ref()),
        None => Err(AwsError::new(
            ErrorClass::Setup,
            "IAM",
            "NoIamClient",
            "no IAM client was given to the engine (Engine::with_iam)",
        )),
    }
}

// ---------------------------------------------------------------------------- config

/// `target = { kind = "iam-access-key", user, delete_after }`.
pub struct IamAccessKey;

/// The `iam-access-key` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIam {
    user: Option<Spanned<String>>,
    delete_after: Option<Spanned<String>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IamTarget {
    pub user: String,
    pub delete_after: Duration,
}

impl TargetKind for IamAccessKey {
    const NAME: &'static str = "iam-access-key";
    type Raw = RawIam;
    const MAKES_VALUE: bool = true;

    fn expects(key: &str, _element: bool) -> Option<String> {
        (key == "delete_after").then(|| DURATION_EXPECTED.into())
    }

    fn parse(&self, raw: RawIam, t: &mut TargetTable<'_>) -> Option<Target> {
        let user = match &raw.user {
            Some(u) if valid_iam_user(u.get_ref()) => u.get_ref().clone(),
            Some(u) => {
                t.error(
                    u.span(),
                    "user",
                    format!(
                        "\"{}\" is not an IAM user name (1 to 64 of A-Z a-z 0-9 + = , . @ _ -)",
                        u.get_ref()
                    ),
                );
                String::new()
            }
            None => {
                t.error(t.span(), "user", "target kind \"iam-access-key\" needs `user` (the IAM user whose key is rotated)");
                String::new()
            }
        };
        let delete_after = match &raw.delete_after {
            None => Duration::from_secs(86_400),
            Some(x) => t.duration("delete_after", x, Duration::ZERO, 90 * DAY)?,
        };
        Some(Target::new(IamTarget { user, delete_after }))
    }
}

const DAY: Duration = Duration::from_secs(86_400);

fn valid_iam_user(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

impl ConfiguredTarget for IamTarget {
    fn kind(&self) -> &'static str {
        IamAccessKey::NAME
    }

    /// The new key is made by IAM (`CreateAccessKey`).
    fn makes_value(&self) -> bool {
        IamAccessKey::MAKES_VALUE
    }

    /// Deactivates the previous key (set has nothing to do: the key exists from create).
    fn has_revoke(&self) -> bool {
        true
    }

    fn create_value<'a>(
        &'a self,
        env: &'a TargetEnv<'a>,
    ) -> BoxFuture<'a, Result<SecretString, TargetError>> {
        Box::pin(create_value(env, self))
    }

    fn test<'a>(
        &'a self,
        env: &'a TargetEnv<'a>,
        value: &'a SecretString,
    ) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(test(env, self, value))
    }

    fn revoke<'a>(
        &'a self,
        env: &'a TargetEnv<'a>,
        current: &'a SecretString,
        previous: Option<&'a SecretString>,
    ) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(revoke(env, self, current, previous))
    }

    fn describe_create(&self, _cfg: &SecretConfig) -> Option<String> {
        Some(format!(
            "create a new access key for IAM user {} (first deleting keys past delete_after, a key left by an interrupted attempt, or an inactive key if IAM's two-key limit requires it), written as AWSPENDING",
            self.user
        ))
    }

    fn describe_revoke(&self) -> String {
        if self.delete_after.is_zero() {
            "revoke: deactivate and delete the previous access key".into()
        } else {
            format!(
                "revoke: deactivate the previous access key (deleted at the first rotation after {})",
                crate::config::duration::format(self.delete_after)
            )
        }
    }
}

/// `iam-access-key: ...`: a problem that is not a plain AWS error.
fn iam_error(message: String) -> TargetError {
    TargetError::Kind {
        kind: IamAccessKey::NAME,
        message,
    }
}

fn parse_doc(v: &SecretString, which: &str) -> Result<Map<String, Value>, TargetError> {
    match serde_json::from_str::<Value>(v.expose_secret()) {
        Ok(Value::Object(o)) => Ok(o),
        _ => Err(iam_error(format!(
            "the {which} value is not a JSON object (expected {{\"{KEY_ID}\": ..., \"{KEY_SECRET}\": ...}}; start a new secret with {{}})"
        ))),
    }
}

/// The access key id a value holds, if any.
pub fn key_id_of(v: &SecretString) -> Option<String> {
    serde_json::from_str::<Value>(v.expose_secret())
        .ok()?
        .get(KEY_ID)?
        .as_str()
        .map(str::to_owned)
}

fn parse_deactivated(tags: &BTreeMap<String, String>) -> Option<(String, DateTime<Utc>)> {
    let (id, at) = tags.get(TAG_IAM_DEACTIVATED)?.split_once('@')?;
    let at = DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc);
    Some((id.to_owned(), at))
}

/// The creating tag: the key id (once created) and the time.
fn parse_creating(tags: &BTreeMap<String, String>) -> (Option<String>, Option<DateTime<Utc>>) {
    let Some(raw) = tags.get(TAG_IAM_CREATING) else {
        return (None, None);
    };
    let (id, at) = match raw.split_once('@') {
        Some((id, at)) => (Some(id.to_owned()).filter(|i| !i.is_empty()), at),
        None => (None, raw.as_str()),
    };
    let at = DateTime::parse_from_rfc3339(at)
        .ok()
        .map(|t| t.with_timezone(&Utc));
    (id, at)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A key to delete before creating the new one, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deletion {
    pub id: String,
    pub reason: String,
    /// Deleted inside its grace period to make room: worth a warning.
    pub early: bool,
}

/// Which keys to delete so that `CreateAccessKey` has room (pure; see the module docs).
pub fn plan_cleanup(
    user: &str,
    keys: &[AccessKeyInfo],
    current_id: Option<&str>,
    tags: &BTreeMap<String, String>,
    now: DateTime<Utc>,
    delete_after: Duration,
) -> Result<Vec<Deletion>, TargetError> {
    let deactivated = parse_deactivated(tags);
    let (created_id, _) = parse_creating(tags);
    let grace = chrono::Duration::from_std(delete_after).unwrap_or(chrono::Duration::MAX);
    let mut out = Vec::new();
    let mut remaining: Vec<&AccessKeyInfo> = Vec::new();
    for k in keys {
        if Some(k.id.as_str()) == current_id {
            remaining.push(k);
            continue;
        }
        if !k.active {
            if let Some((id, at)) = &deactivated {
                if *id == k.id && now - *at >= grace {
                    out.push(Deletion {
                        id: k.id.clone(),
                        reason: format!("inactive since {}, past delete_after", rfc3339(*at)),
                        early: false,
                    });
                    continue;
                }
            }
        } else {
            // Only a key named by id, younger than a working current key: whoever can
            // write the tag must not be able to condemn a key in use elsewhere, or the
            // user's last working key.
            let named = created_id.as_deref() == Some(k.id.as_str());
            let current = keys
                .iter()
                .find(|c| Some(c.id.as_str()) == current_id && c.active);
            let younger = match (current.and_then(|c| c.created), k.created) {
                (Some(cur), Some(created)) => created > cur,
                _ => false,
            };
            if named && younger {
                out.push(Deletion {
                    id: k.id.clone(),
                    reason: "active, referenced by no version: left by an interrupted rotation"
                        .into(),
                    early: false,
                });
                continue;
            }
        }
        remaining.push(k);
    }
    // Room for one more key: delete inactive keys that are not current, oldest first.
    let mut inactive: Vec<&AccessKeyInfo> = remaining
        .iter()
        .copied()
        .filter(|k| !k.active && Some(k.id.as_str()) != current_id)
        .collect();
    inactive.sort_by_key(|k| k.created);
    let mut inactive = inactive.into_iter();
    while remaining.len() >= 2 {
        let Some(k) = inactive.next() else { break };
        out.push(Deletion {
            id: k.id.clone(),
            reason: "inactive and not AWSCURRENT's; IAM allows two keys per user".into(),
            early: deactivated
                .as_ref()
                .is_some_and(|(id, at)| *id == k.id && now - *at < grace),
        });
        remaining.retain(|r| r.id != k.id);
    }
    if remaining.len() >= 2 {
        let others: Vec<String> = remaining
            .iter()
            .filter(|k| Some(k.id.as_str()) != current_id)
            .map(|k| {
                format!(
                    "{} ({})",
                    k.id,
                    if k.active { "active" } else { "inactive" }
                )
            })
            .collect();
        return Err(iam_error(format!(
            "IAM user {user} already has two access keys and IAM allows no third: {} {} not referenced by this secret's AWSCURRENT and may be in use elsewhere; deactivate or delete it, then retry",
            others.join(", "),
            if others.len() == 1 { "is" } else { "are" },
        )));
    }
    Ok(out)
}

/// Cleans up, creates the new key and returns the pending JSON value.
pub async fn create_value(env: &TargetEnv<'_>, t: &IamTarget) -> Result<SecretString, TargetError> {
    let s = &env.cfg.secret;
    let account = &s.account;
    let meta = env.store.describe(s).await?;
    let (_, current) = env.store.get_value(s, Select::Stage(AWSCURRENT)).await?;
    let mut doc = parse_doc(&current, "AWSCURRENT")?;
    let current_id = doc.get(KEY_ID).and_then(Value::as_str).map(str::to_owned);
    let iam = iam(env)?;
    let keys = iam.list_keys(account, &t.user).await?;
    let now = env.clock.now();
    for d in plan_cleanup(
        &t.user,
        &keys,
        current_id.as_deref(),
        &meta.tags,
        now,
        t.delete_after,
    )? {
        if d.early {
            tracing::warn!(secret = %env.cfg.name, user = %t.user, key = %d.id, "deleting an access key inside its delete_after grace period to make room: {}", d.reason);
        } else {
            tracing::info!(secret = %env.cfg.name, user = %t.user, key = %d.id, "deleting access key: {}", d.reason);
        }
        match iam.delete_key(account, &t.user, &d.id).await {
            Ok(()) => {}
            Err(e) if e.class == ErrorClass::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    env.store
        .tag(s, &[(TAG_IAM_CREATING, rfc3339(now))])
        .await?;
    let key = match iam.create_key(account, &t.user).await {
        Ok(k) => k,
        Err(e) if e.class == ErrorClass::Conflict => {
            return Err(iam_error(format!(
                "cannot create an access key for IAM user {}: {e} (a key was probably created meanwhile; the next attempt cleans up)",
                t.user
            )))
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(secret = %env.cfg.name, user = %t.user, key = %key.id, "created access key");
    env.store
        .tag(
            s,
            &[(TAG_IAM_CREATING, format!("{}@{}", key.id, rfc3339(now)))],
        )
        .await?;
    doc.insert(KEY_ID.into(), Value::String(key.id));
    doc.insert(
        KEY_SECRET.into(),
        Value::String(key.secret.expose_secret().to_owned()),
    );
    let out = serde_json::to_string(&Value::Object(doc))
        .map_err(|_| iam_error("cannot serialize the new value".into()))?;
    Ok(SecretString::from(out))
}

fn key_of(v: &SecretString, which: &str) -> Result<(String, SecretString), TargetError> {
    let doc = parse_doc(v, which)?;
    let id = doc.get(KEY_ID).and_then(Value::as_str);
    let secret = doc.get(KEY_SECRET).and_then(Value::as_str);
    match (id, secret) {
        (Some(id), Some(secret)) => Ok((id.to_owned(), SecretString::from(secret.to_owned()))),
        _ => Err(iam_error(format!(
            "the {which} value lacks \"{KEY_ID}\" or \"{KEY_SECRET}\""
        ))),
    }
}

/// Whether an ARN names the IAM user (with or without a path).
fn arn_is_user(arn: &str, user: &str) -> bool {
    arn.split_once(":user/")
        .is_some_and(|(_, rest)| rest.rsplit('/').next() == Some(user))
}

pub async fn test(
    env: &TargetEnv<'_>,
    t: &IamTarget,
    value: &SecretString,
) -> Result<(), TargetError> {
    let (id, secret) = key_of(value, "pending")?;
    let iam = iam(env)?;
    let account = &env.cfg.secret.account;
    let start = tokio::time::Instant::now();
    loop {
        match iam.caller_arn(account, &id, &secret).await {
            Ok(arn) if arn_is_user(&arn, &t.user) => return Ok(()),
            Ok(arn) => {
                return Err(iam_error(format!(
                    "GetCallerIdentity with the new key {id} names {arn}, not IAM user {}",
                    t.user
                )))
            }
            Err(e)
                if matches!(e.class, ErrorClass::AccessDenied | ErrorClass::Throttled)
                    || e.is_retryable() =>
            {
                if start.elapsed() >= TEST_PROPAGATION {
                    return Err(iam_error(format!(
                        "the new key {id} still fails after {}s: {e}",
                        TEST_PROPAGATION.as_secs()
                    )));
                }
                tracing::info!(secret = %env.cfg.name, key = %id, error = %e, "new key not usable yet; retrying");
                tokio::time::sleep(TEST_RETRY_EVERY).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

pub async fn revoke(
    env: &TargetEnv<'_>,
    t: &IamTarget,
    current: &SecretString,
    previous: Option<&SecretString>,
) -> Result<(), TargetError> {
    let Some(old) = previous.and_then(key_id_of) else {
        tracing::info!(secret = %env.cfg.name, "no previous access key to deactivate");
        return Ok(());
    };
    if key_id_of(current).as_deref() == Some(old.as_str()) {
        return Ok(());
    }
    let s = &env.cfg.secret;
    let account = &s.account;
    let iam = iam(env)?;
    // The previous value could have been written by someone else: deactivate only a key
    // older than the current one, while the current one works (never the last key).
    let keys = iam.list_keys(account, &t.user).await?;
    let cur = key_id_of(current).and_then(|id| keys.iter().find(|k| k.id == id));
    let Some(prev) = keys.iter().find(|k| k.id == old) else {
        return Ok(());
    };
    let safe = match cur {
        Some(c) => c.active && matches!((prev.created, c.created), (Some(p), Some(c)) if p <= c),
        None => false,
    };
    if !safe {
        tracing::warn!(secret = %env.cfg.name, user = %t.user, key = %old, "not deactivating the previous access key: it is not older than a working current key");
        return Err(iam_error(format!(
            "revoke refused: the previous access key {old} of IAM user {} is not older than the current, active key; it was left as it is",
            t.user
        )));
    }
    match iam.set_active(account, &t.user, &old, false).await {
        Ok(()) => {}
        // Deleted already (by a person or an earlier run): nothing left to revoke.
        Err(e) if e.class == ErrorClass::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    let now = env.clock.now();
    tracing::info!(secret = %env.cfg.name, user = %t.user, key = %old, "deactivated the previous access key");
    if t.delete_after.is_zero() {
        match iam.delete_key(account, &t.user, &old).await {
            Ok(()) => {}
            Err(e) if e.class == ErrorClass::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        tracing::info!(secret = %env.cfg.name, user = %t.user, key = %old, "deleted the previous access key (delete_after = 0)");
        return Ok(());
    }
    env.store
        .tag(
            s,
            &[(TAG_IAM_DEACTIVATED, format!("{old}@{}", rfc3339(now)))],
        )
        .await?;
    Ok(())
}

/// With `[ha] lock_table`, IAM writes check the rotation's lease first, like the store's
/// and ECS's (see `rotation::lease::fence`); reads pass through.
impl<I: IamApi> IamApi for Fenced<I> {
    fn list_keys<'a>(
        &'a self,
        account: &'a Account,
        user: &'a str,
    ) -> BoxFuture<'a, Result<Vec<AccessKeyInfo>, AwsError>> {
        self.inner().list_keys(account, user)
    }

    fn create_key<'a>(
        &'a self,
        account: &'a Account,
        user: &'a str,
    ) -> BoxFuture<'a, Result<NewAccessKey, AwsError>> {
        Box::pin(self.write("CreateAccessKey", self.inner().create_key(account, user)))
    }

    fn set_active<'a>(
        &'a self,
        account: &'a Account,
        user: &'a str,
        key_id: &'a str,
        active: bool,
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(self.write(
            "UpdateAccessKey",
            self.inner().set_active(account, user, key_id, active),
        ))
    }

    fn delete_key<'a>(
        &'a self,
        account: &'a Account,
        user: &'a str,
        key_id: &'a str,
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(self.write(
            "DeleteAccessKey",
            self.inner().delete_key(account, user, key_id),
        ))
    }

    fn caller_arn<'a>(
        &'a self,
        account: &'a Account,
        key_id: &'a str,
        secret: &'a SecretString,
    ) -> BoxFuture<'a, Result<String, AwsError>> {
        self.inner().caller_arn(account, key_id, secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }
    fn key(id: &str, active: bool, created: &str) -> AccessKeyInfo {
        AccessKeyInfo {
            id: id.into(),
            active,
            created: Some(t(created)),
        }
    }
    const DAY: Duration = Duration::from_secs(86_400);
    const NOW: &str = "2030-01-10T00:00:00Z";

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn one_key_needs_nothing() {
        let keys = [key("AKIACUR", true, "2030-01-01T00:00:00Z")];
        let d = plan_cleanup("u", &keys, Some("AKIACUR"), &tags(&[]), t(NOW), DAY).unwrap();
        assert!(d.is_empty());
    }

    #[test]
    fn inactive_old_key_is_deleted_to_make_room_and_flagged_early_inside_grace() {
        let keys = [
            key("AKIAOLD", false, "2029-12-01T00:00:00Z"),
            key("AKIACUR", true, "2030-01-01T00:00:00Z"),
        ];
        let tg = tags(&[(TAG_IAM_DEACTIVATED, "AKIAOLD@2030-01-09T12:00:00Z")]);
        let d = plan_cleanup("u", &keys, Some("AKIACUR"), &tg, t(NOW), DAY).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].id, "AKIAOLD");
        assert!(d[0].early);
        // Past the grace period: deleted, not early.
        let tg = tags(&[(TAG_IAM_DEACTIVATED, "AKIAOLD@2030-01-08T00:00:00Z")]);
        let d = plan_cleanup("u", &keys, Some("AKIACUR"), &tg, t(NOW), DAY).unwrap();
        assert_eq!(d.len(), 1);
        assert!(!d[0].early);
    }

    #[test]
    fn expired_inactive_key_is_deleted_even_with_room() {
        // The current key was deleted by hand; the old one is inactive past its grace.
        let keys = [key("AKIAOLD", false, "2029-12-01T00:00:00Z")];
        let tg = tags(&[(TAG_IAM_DEACTIVATED, "AKIAOLD@2030-01-01T00:00:00Z")]);
        let d = plan_cleanup("u", &keys, Some("AKIACUR"), &tg, t(NOW), DAY).unwrap();
        assert_eq!(
            d.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
            ["AKIAOLD"]
        );
        // Inside the grace period and with room: kept.
        let d = plan_cleanup("u", &keys, Some("AKIACUR"), &tg, t(NOW), 30 * DAY).unwrap();
        assert!(d.is_empty());
    }

    #[test]
    fn a_forged_creating_time_deletes_no_active_key() {
        // The tag holds only a time (written by anyone who can tag the secret), and a
        // key created just after it: not proof enough to delete a working key.
        let keys = [
            key("AKIACUR", true, "2030-01-01T00:00:00Z"),
            key("AKIAOTHER", true, "2030-01-09T23:00:03Z"),
        ];
        let tg = tags(&[(TAG_IAM_CREATING, "2030-01-09T23:00:00Z")]);
        let e = plan_cleanup("u", &keys, Some("AKIACUR"), &tg, t(NOW), DAY).unwrap_err();
        assert!(e.to_string().contains("AKIAOTHER (active)"), "{e}");
    }

    #[test]
    fn a_forged_creating_tag_cannot_delete_an_active_key_older_than_the_current_one() {
        let keys = [
            key("AKIACUR", true, "2030-01-05T00:00:00Z"),
            key("AKIAINUSE", true, "2029-06-01T00:00:00Z"),
        ];
        let tg = tags(&[(TAG_IAM_CREATING, "AKIAINUSE@2030-01-05T00:00:00Z")]);
        assert!(plan_cleanup("u", &keys, Some("AKIACUR"), &tg, t(NOW), DAY).is_err());
    }

    #[test]
    fn a_forged_value_and_tag_cannot_delete_the_last_working_key() {
        // AWSCURRENT rewritten to name a key that does not exist; the tag names the real,
        // only active key.
        let keys = [
            key("AKIAREAL", true, "2030-01-05T00:00:00Z"),
            key("AKIAOLD", false, "2029-06-01T00:00:00Z"),
        ];
        let tg = tags(&[(TAG_IAM_CREATING, "AKIAREAL@2030-01-05T00:00:00Z")]);
        let d = plan_cleanup("u", &keys, Some("AKIABOGUS"), &tg, t(NOW), DAY).unwrap();
        assert!(d.iter().all(|d| d.id != "AKIAREAL"), "{d:?}");
    }

    #[test]
    fn the_key_named_by_the_creating_tag_is_an_orphan_whenever_found() {
        let keys = [
            key("AKIACUR", true, "2030-01-01T00:00:00Z"),
            key("AKIADROPPED", true, "2030-01-02T00:00:00Z"),
        ];
        // Days later (a retry after a long backoff, or the next rotation).
        let tg = tags(&[(TAG_IAM_CREATING, "AKIADROPPED@2030-01-02T00:00:00Z")]);
        let d = plan_cleanup("u", &keys, Some("AKIACUR"), &tg, t(NOW), DAY).unwrap();
        assert_eq!(
            d.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
            ["AKIADROPPED"]
        );
        // The key named in the tag that became current is never deleted.
        let tg = tags(&[(TAG_IAM_CREATING, "AKIACUR@2030-01-01T00:00:00Z")]);
        let keys = [key("AKIACUR", true, "2030-01-01T00:00:00Z")];
        let d = plan_cleanup("u", &keys, Some("AKIACUR"), &tg, t(NOW), DAY).unwrap();
        assert!(d.is_empty());
    }

    #[test]
    fn two_active_keys_fail_clearly() {
        let keys = [
            key("AKIACUR", true, "2030-01-01T00:00:00Z"),
            key("AKIAHUMAN", true, "2029-06-01T00:00:00Z"),
        ];
        // A creating tag from long ago does not make the other key ours.
        let tg = tags(&[(TAG_IAM_CREATING, "2029-12-01T00:00:00Z")]);
        let e = plan_cleanup("svc-user", &keys, Some("AKIACUR"), &tg, t(NOW), DAY)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("svc-user") && e.contains("AKIAHUMAN (active)"),
            "{e}"
        );
    }

    #[test]
    fn current_key_is_never_deleted() {
        let keys = [
            key("AKIACUR", false, "2030-01-01T00:00:00Z"),
            key("AKIAOTHER", false, "2030-01-02T00:00:00Z"),
        ];
        let tg = tags(&[(TAG_IAM_DEACTIVATED, "AKIACUR@2020-01-01T00:00:00Z")]);
        let d = plan_cleanup("u", &keys, Some("AKIACUR"), &tg, t(NOW), DAY).unwrap();
        assert_eq!(
            d.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
            ["AKIAOTHER"]
        );
    }

    // ---- the steps against fakes -------------------------------------------------

    use crate::clock::ManualClock;
    use crate::config::{GeneratePolicy, Location, SecretConfig, Target};
    use crate::ids::{SecretArn, SecretId, SecretName, SecretRef, VersionId};
    use crate::rotation::store::{SecretMeta, VersionInfo};
    use crate::rotation::target::TargetClients;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Store {
        current: Mutex<String>,
        tags: Mutex<BTreeMap<String, String>>,
    }

    fn unused(op: &'static str) -> AwsError {
        AwsError::new(ErrorClass::Other, op, "Unused", "not used by these tests")
    }

    impl SecretStore for Store {
        async fn describe(&self, _s: &SecretRef) -> Result<SecretMeta, AwsError> {
            Ok(SecretMeta {
                arn: SecretArn::from("arn:aws:secretsmanager:us-east-1:1:secret:k"),
                name: "k".into(),
                versions: BTreeMap::new(),
                tags: self.tags.lock().unwrap().clone(),
                rotation_enabled: false,
                deleted: false,
                last_changed: None,
            })
        }
        async fn describe_many(&self, _r: &[SecretRef]) -> Vec<Result<SecretMeta, AwsError>> {
            Vec::new()
        }
        async fn versions(&self, _s: &SecretRef) -> Result<Vec<VersionInfo>, AwsError> {
            Err(unused("ListSecretVersionIds"))
        }
        async fn get_value(
            &self,
            _s: &SecretRef,
            _select: Select<'_>,
        ) -> Result<(VersionId, SecretString), AwsError> {
            let v = self.current.lock().unwrap().clone();
            Ok((VersionId::from("v1"), SecretString::from(v)))
        }
        async fn put_pending(
            &self,
            _s: &SecretRef,
            _t: &VersionId,
            _v: &SecretString,
        ) -> Result<VersionId, AwsError> {
            Err(unused("PutSecretValue"))
        }
        async fn update_stage(
            &self,
            _s: &SecretRef,
            _stage: &str,
            _to: Option<&VersionId>,
            _from: Option<&VersionId>,
        ) -> Result<(), AwsError> {
            Err(unused("UpdateSecretVersionStage"))
        }
        async fn tag(&self, _s: &SecretRef, tags: &[(&str, String)]) -> Result<(), AwsError> {
            let mut t = self.tags.lock().unwrap();
            for (k, v) in tags {
                t.insert(k.to_string(), v.clone());
            }
            Ok(())
        }
    }

    #[derive(Default)]
    struct Iam {
        keys: Mutex<Vec<AccessKeyInfo>>,
        log: Mutex<Vec<String>>,
        /// GetCallerIdentity answers InvalidClientTokenId this many times first.
        not_yet: Mutex<u32>,
    }

    impl IamApi for Iam {
        fn list_keys<'a>(
            &'a self,
            _a: &'a Account,
            _u: &'a str,
        ) -> BoxFuture<'a, Result<Vec<AccessKeyInfo>, AwsError>> {
            Box::pin(async move { Ok(self.keys.lock().unwrap().clone()) })
        }
        fn create_key<'a>(
            &'a self,
            _a: &'a Account,
            _u: &'a str,
        ) -> BoxFuture<'a, Result<NewAccessKey, AwsError>> {
            Box::pin(async move {
                let mut keys = self.keys.lock().unwrap();
                if keys.len() >= 2 {
                    return Err(AwsError::new(
                        ErrorClass::Conflict,
                        "CreateAccessKey",
                        "LimitExceeded",
                        "two keys",
                    ));
                }
                let id = format!("AKIANEW{}", keys.len());
                keys.push(AccessKeyInfo {
                    id: id.clone(),
                    active: true,
                    // IAM always reports CreateDate; revoke compares it.
                    created: Some(t(NOW)),
                });
                self.log.lock().unwrap().push(format!("create {id}"));
                Ok(NewAccessKey {
                    id,
                    secret: SecretString::from("s3cr3t-KEY-material".to_owned()),
                })
            })
        }
        fn set_active<'a>(
            &'a self,
            _a: &'a Account,
            _u: &'a str,
            key_id: &'a str,
            active: bool,
        ) -> BoxFuture<'a, Result<(), AwsError>> {
            Box::pin(async move {
                let mut keys = self.keys.lock().unwrap();
                let k = keys.iter_mut().find(|k| k.id == key_id).ok_or_else(|| {
                    AwsError::new(
                        ErrorClass::NotFound,
                        "UpdateAccessKey",
                        "NoSuchEntity",
                        "gone",
                    )
                })?;
                k.active = active;
                self.log
                    .lock()
                    .unwrap()
                    .push(format!("active={active} {key_id}"));
                Ok(())
            })
        }
        fn delete_key<'a>(
            &'a self,
            _a: &'a Account,
            _u: &'a str,
            key_id: &'a str,
        ) -> BoxFuture<'a, Result<(), AwsError>> {
            Box::pin(async move {
                self.keys.lock().unwrap().retain(|k| k.id != key_id);
                self.log.lock().unwrap().push(format!("delete {key_id}"));
                Ok(())
            })
        }
        fn caller_arn<'a>(
            &'a self,
            _a: &'a Account,
            _k: &'a str,
            _s: &'a SecretString,
        ) -> BoxFuture<'a, Result<String, AwsError>> {
            Box::pin(async move {
                let mut n = self.not_yet.lock().unwrap();
                if *n > 0 {
                    *n -= 1;
                    return Err(AwsError::new(
                        ErrorClass::AccessDenied,
                        "GetCallerIdentity",
                        "InvalidClientTokenId",
                        "The security token included in the request is invalid.",
                    ));
                }
                Ok("arn:aws:iam::123456789012:user/svc".into())
            })
        }
    }

    fn clients(iam: &Arc<Iam>) -> TargetClients {
        let mut c = TargetClients::default();
        c.insert::<Arc<dyn IamApi>>(iam.clone());
        c
    }

    fn secret_cfg(delete_after: Duration) -> (SecretConfig, IamTarget) {
        let t = IamTarget {
            user: "svc".into(),
            delete_after,
        };
        let cfg = SecretConfig {
            name: SecretName::from("svc-key"),
            secret: SecretRef {
                id: SecretId::from("svc/key"),
                account: Account::default(),
            },
            every: 30 * DAY,
            window: None,
            jitter: Duration::ZERO,
            generate: GeneratePolicy::default(),
            json_key: None,
            json_key_create: false,
            target: Target::new(t.clone()),
            redeploy: Vec::new(),
            stable_timeout: Duration::from_secs(60),
            origin: Location {
                file: "t.toml".into(),
                line_col: None,
            },
        };
        (cfg, t)
    }

    #[tokio::test(start_paused = true)]
    async fn create_test_revoke_against_fakes() {
        let store = Store::default();
        *store.current.lock().unwrap() =
            r#"{"AccessKeyId":"AKIACUR","SecretAccessKey":"old-secret","x":1}"#.into();
        store.tags.lock().unwrap().insert(
            TAG_IAM_DEACTIVATED.into(),
            "AKIAOLD@2030-01-01T00:00:00Z".into(),
        );
        let iam = Arc::new(Iam::default());
        *iam.keys.lock().unwrap() = vec![
            key("AKIAOLD", false, "2029-12-01T00:00:00Z"),
            key("AKIACUR", true, "2030-01-01T00:00:00Z"),
        ];
        *iam.not_yet.lock().unwrap() = 3;
        let clock = ManualClock::new(t(NOW));
        let (cfg, target) = secret_cfg(DAY);
        let clients = clients(&iam);
        let env = TargetEnv {
            cfg: &cfg,
            store: &store,
            clients: &clients,
            clock: &clock,
        };

        let value = create_value(&env, &target).await.unwrap();
        let doc: Value = serde_json::from_str(value.expose_secret()).unwrap();
        assert_eq!(doc["AccessKeyId"], "AKIANEW1");
        assert_eq!(doc["SecretAccessKey"], "s3cr3t-KEY-material");
        assert_eq!(doc["x"], 1);
        assert_eq!(
            *iam.log.lock().unwrap(),
            ["delete AKIAOLD", "create AKIANEW1"]
        );
        assert_eq!(
            store
                .tags
                .lock()
                .unwrap()
                .get(TAG_IAM_CREATING)
                .map(String::as_str),
            Some("AKIANEW1@2030-01-10T00:00:00Z")
        );

        // Not usable for 3 tries (propagation): retried on paused time, then accepted.
        let t0 = tokio::time::Instant::now();
        test(&env, &target, &value).await.unwrap();
        assert_eq!(t0.elapsed(), 3 * TEST_RETRY_EVERY);

        let previous = SecretString::from(store.current.lock().unwrap().clone());
        revoke(&env, &target, &value, Some(&previous))
            .await
            .unwrap();
        assert!(iam
            .keys
            .lock()
            .unwrap()
            .iter()
            .any(|k| k.id == "AKIACUR" && !k.active));
        assert_eq!(
            store
                .tags
                .lock()
                .unwrap()
                .get(TAG_IAM_DEACTIVATED)
                .map(String::as_str),
            // The clock follows the (paused) time the test step waited.
            Some("AKIACUR@2030-01-10T00:00:06Z")
        );
        // Again (a resumed run): idempotent.
        revoke(&env, &target, &value, Some(&previous))
            .await
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_that_never_works_fails_the_test_after_the_propagation_window() {
        let store = Store::default();
        let iam = Arc::new(Iam::default());
        *iam.not_yet.lock().unwrap() = u32::MAX;
        let clock = ManualClock::new(t(NOW));
        let (cfg, target) = secret_cfg(DAY);
        let clients = clients(&iam);
        let env = TargetEnv {
            cfg: &cfg,
            store: &store,
            clients: &clients,
            clock: &clock,
        };
        let value = SecretString::from(
            r#"{"AccessKeyId":"AKIANEW","SecretAccessKey":"never-shown-1234"}"#.to_owned(),
        );
        let e = test(&env, &target, &value).await.unwrap_err().to_string();
        assert!(
            e.contains("AKIANEW") && e.contains("InvalidClientTokenId"),
            "{e}"
        );
        assert!(!e.contains("never-shown-1234"), "{e}");
    }

    #[tokio::test]
    async fn delete_after_zero_deletes_at_revoke() {
        let store = Store::default();
        let iam = Arc::new(Iam::default());
        *iam.keys.lock().unwrap() = vec![
            key("AKIAOLD", true, "2029-12-01T00:00:00Z"),
            key("AKIANEW", true, "2030-01-01T00:00:00Z"),
        ];
        let clock = ManualClock::new(t(NOW));
        let (cfg, target) = secret_cfg(Duration::ZERO);
        let clients = clients(&iam);
        let env = TargetEnv {
            cfg: &cfg,
            store: &store,
            clients: &clients,
            clock: &clock,
        };
        let cur = SecretString::from(r#"{"AccessKeyId":"AKIANEW"}"#.to_owned());
        let prev = SecretString::from(r#"{"AccessKeyId":"AKIAOLD"}"#.to_owned());
        revoke(&env, &target, &cur, Some(&prev)).await.unwrap();
        assert_eq!(
            *iam.log.lock().unwrap(),
            ["active=false AKIAOLD", "delete AKIAOLD"]
        );
        assert!(store.tags.lock().unwrap().is_empty());
    }

    #[test]
    fn arn_matching() {
        assert!(arn_is_user("arn:aws:iam::123456789012:user/app", "app"));
        assert!(arn_is_user(
            "arn:aws:iam::123456789012:user/path/to/app",
            "app"
        ));
        assert!(!arn_is_user("arn:aws:iam::123456789012:user/app2", "app"));
        assert!(!arn_is_user(
            "arn:aws:sts::123456789012:assumed-role/app/x",
            "app"
        ));
    }
}
