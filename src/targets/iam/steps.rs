//! The steps: create the key (after making room), test it through STS, revoke the
//! previous one.

use super::api::iam;
use super::cleanup::{plan_cleanup, rfc3339, TAG_IAM_CREATING, TAG_IAM_DEACTIVATED};
use super::config::IamTarget;
use super::iam_error;
use crate::error::ErrorClass;
use crate::rotation::store::{Select, AWSCURRENT};
use crate::rotation::target::{TargetEnv, TargetError};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use std::time::Duration;

/// How long the test step keeps trying a new key (IAM is eventually consistent).
pub const TEST_PROPAGATION: Duration = Duration::from_secs(30);
const TEST_RETRY_EVERY: Duration = Duration::from_secs(2);

const KEY_ID: &str = "AccessKeyId";
const KEY_SECRET: &str = "SecretAccessKey";

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

/// Cleans up, creates the new key and returns the pending JSON value.
pub(super) async fn create_value(
    env: &TargetEnv<'_>,
    t: &IamTarget,
) -> Result<SecretString, TargetError> {
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
    let named = env
        .store
        .tag(
            s,
            &[(TAG_IAM_CREATING, format!("{}@{}", key.id, rfc3339(now)))],
        )
        .await;
    if let Err(e) = named {
        // Only this tag lets a later attempt find and delete the key (a time alone
        // condemns none: tags can be forged), so the key goes now, while its id is known.
        return Err(match iam.delete_key(account, &t.user, &key.id).await {
            Ok(()) => {
                tracing::warn!(secret = %env.cfg.name, user = %t.user, key = %key.id, error = %e, "deleted the new access key: the tag naming it could not be written");
                e.into()
            }
            Err(d) if d.class == ErrorClass::NotFound => e.into(),
            Err(d) => iam_error(format!(
                "created access key {} for IAM user {} but could not record it ({e}) nor delete it ({d}); delete that key by hand, or every later rotation stops at the two-key limit",
                key.id, t.user
            )),
        });
    }
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

pub(super) async fn test(
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

pub(super) async fn revoke(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AwsError;
    use crate::ids::Account;
    use crate::rotation::store::SecretStore;
    use crate::targets::iam::{AccessKeyInfo, IamApi, NewAccessKey};
    use chrono::{DateTime, Utc};
    use futures::future::BoxFuture;
    use std::collections::BTreeMap;
    use std::sync::Arc;

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

    use crate::clock::ManualClock;
    use crate::config::{Location, SecretConfig, Target};
    use crate::ids::{SecretArn, SecretId, SecretName, SecretRef, VersionId};
    use crate::rotation::store::{SecretMeta, VersionInfo};
    use crate::rotation::target::TargetClients;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Store {
        current: Mutex<String>,
        tags: Mutex<BTreeMap<String, String>>,
        /// Some(n): the tag writes after the next n fail.
        tag_writes_left: Mutex<Option<usize>>,
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
        async fn describe_many(
            &self,
            _r: &[SecretRef],
            _found: rotator_core::rotation::store::Found<'_>,
        ) {
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
            if let Some(n) = self.tag_writes_left.lock().unwrap().as_mut() {
                if *n == 0 {
                    return Err(AwsError::new(
                        ErrorClass::Throttled,
                        "TagResource",
                        "ThrottlingException",
                        "Rate exceeded",
                    ));
                }
                *n -= 1;
            }
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
                store: Default::default(),
            },
            every: (30 * DAY).into(),
            window: None,
            jitter: Duration::ZERO.into(),
            generate: Default::default(),
            json_key: None,
            json_key_create: false,
            target: Target::new(t.clone()),
            redeploy: Box::default(),
            stable_timeout: Duration::from_secs(60).into(),
            origin: Location::whole(std::path::Path::new("t.toml").into()),
            group: None,
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

    /// The tag naming the new key is what lets a later attempt clean it up; without it
    /// the key would stay active and unnamed, and every later rotation would stop at
    /// "two access keys".
    #[tokio::test(start_paused = true)]
    async fn a_new_key_whose_naming_tag_cannot_be_written_is_deleted_at_once() {
        let store = Store::default();
        *store.current.lock().unwrap() =
            r#"{"AccessKeyId":"AKIACUR","SecretAccessKey":"old-secret"}"#.into();
        // The creating-time tag goes through, the tag naming the key does not.
        *store.tag_writes_left.lock().unwrap() = Some(1);
        let iam = Arc::new(Iam::default());
        *iam.keys.lock().unwrap() = vec![key("AKIACUR", true, "2030-01-01T00:00:00Z")];
        let clock = ManualClock::new(t(NOW));
        let (cfg, target) = secret_cfg(DAY);
        let clients = clients(&iam);
        let env = TargetEnv {
            cfg: &cfg,
            store: &store,
            clients: &clients,
            clock: &clock,
        };
        let e = create_value(&env, &target)
            .await
            .expect_err("the naming tag failed");
        let msg = e.to_string();
        assert!(msg.contains("ThrottlingException"), "{msg}");
        assert!(!msg.contains("s3cr3t-KEY-material"), "{msg}");
        assert_eq!(
            *iam.log.lock().unwrap(),
            ["create AKIANEW1", "delete AKIANEW1"]
        );
        let ids: Vec<_> = iam.keys.lock().unwrap().iter().map(|k| k.id.clone()).collect();
        assert_eq!(ids, ["AKIACUR"]);

        // The next attempt has room for its key.
        *store.tag_writes_left.lock().unwrap() = None;
        create_value(&env, &target).await.expect("the retry creates a key");
        assert_eq!(iam.keys.lock().unwrap().len(), 2);
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
