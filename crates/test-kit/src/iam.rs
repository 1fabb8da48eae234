//! In-memory IAM access keys (two per user, as IAM's quota) and STS GetCallerIdentity
//! ([`FakeIam`]) behind the core's [`IamApi`](rotator_core::rotation::target::IamApi).
//! Calls are logged as `method key-or-user`; a handle can make one method hang.

use crate::clock::{Clock, ManualClock};
use crate::{lock, ACCOUNT_ID};
use chrono::{DateTime, Utc};
use rotator_core::error::{AwsError, ErrorClass};
use rotator_core::ids::Account;
use secrecy::{ExposeSecret, SecretString};
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug)]
pub struct IamKey {
    pub user: String,
    pub id: String,
    pub secret: String,
    pub active: bool,
    pub created: DateTime<Utc>,
}

#[derive(Default)]
struct IamState {
    keys: Vec<IamKey>,
    next: u64,
    /// `Operation key-id`, in order.
    calls: Vec<String>,
}

/// An in-memory IAM (two keys per user) and STS GetCallerIdentity.
#[derive(Clone)]
pub struct FakeIam {
    state: Arc<Mutex<IamState>>,
    clock: ManualClock,
    /// Operations that never answer (`caller_arn`, `set_active`, ...).
    hang: Arc<Vec<&'static str>>,
}

impl FakeIam {
    pub fn new(clock: &ManualClock) -> Self {
        Self {
            state: Arc::default(),
            clock: clock.clone(),
            hang: Arc::default(),
        }
    }

    /// Another handle whose calls to `op` never answer.
    pub fn hanging(&self, op: &'static str) -> Self {
        let mut h = (*self.hang).clone();
        h.push(op);
        Self {
            hang: Arc::new(h),
            ..self.clone()
        }
    }

    pub fn add_key(&self, user: &str, id: &str, secret: &str) {
        let created = self.clock.now();
        lock(&self.state).keys.push(IamKey {
            user: user.into(),
            id: id.into(),
            secret: secret.into(),
            active: true,
            created,
        });
    }

    pub fn key(&self, id: &str) -> Option<IamKey> {
        lock(&self.state).keys.iter().find(|k| k.id == id).cloned()
    }

    pub fn calls(&self) -> Vec<String> {
        lock(&self.state).calls.clone()
    }

    async fn enter(&self, op: &'static str, detail: &str) {
        lock(&self.state).calls.push(format!("{op} {detail}"));
        if self.hang.contains(&op) {
            futures::future::pending::<()>().await;
        }
    }
}

fn no_such_key(op: &'static str, id: &str) -> AwsError {
    AwsError::new(
        ErrorClass::NotFound,
        op,
        "NoSuchEntity",
        format!("The Access Key with id {id} cannot be found."),
    )
}

impl rotator_core::rotation::target::IamApi for FakeIam {
    fn list_keys<'a>(
        &'a self,
        _account: &'a Account,
        user: &'a str,
    ) -> futures::future::BoxFuture<
        'a,
        Result<Vec<rotator_core::rotation::target::AccessKeyInfo>, AwsError>,
    > {
        Box::pin(async move {
            self.enter("list_keys", user).await;
            Ok(lock(&self.state)
                .keys
                .iter()
                .filter(|k| k.user == user)
                .map(|k| rotator_core::rotation::target::AccessKeyInfo {
                    id: k.id.clone(),
                    active: k.active,
                    created: Some(k.created),
                })
                .collect())
        })
    }

    fn create_key<'a>(
        &'a self,
        _account: &'a Account,
        user: &'a str,
    ) -> futures::future::BoxFuture<
        'a,
        Result<rotator_core::rotation::target::NewAccessKey, AwsError>,
    > {
        Box::pin(async move {
            self.enter("create_key", user).await;
            let now = self.clock.now();
            let mut st = lock(&self.state);
            if st.keys.iter().filter(|k| k.user == user).count() >= 2 {
                return Err(AwsError::new(
                    ErrorClass::Conflict,
                    "CreateAccessKey",
                    "LimitExceeded",
                    format!("Cannot exceed quota for AccessKeysPerUser: 2 ({user})"),
                ));
            }
            st.next += 1;
            let id = format!("AKIAFAKE{:012}", st.next);
            let secret = format!("fake-secret-access-key-{:024}", st.next);
            st.keys.push(IamKey {
                user: user.into(),
                id: id.clone(),
                secret: secret.clone(),
                active: true,
                created: now,
            });
            Ok(rotator_core::rotation::target::NewAccessKey {
                id,
                secret: SecretString::from(secret),
            })
        })
    }

    fn set_active<'a>(
        &'a self,
        _account: &'a Account,
        _user: &'a str,
        key_id: &'a str,
        active: bool,
    ) -> futures::future::BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(async move {
            self.enter("set_active", key_id).await;
            let mut st = lock(&self.state);
            match st.keys.iter_mut().find(|k| k.id == key_id) {
                Some(k) => {
                    k.active = active;
                    Ok(())
                }
                None => Err(no_such_key("UpdateAccessKey", key_id)),
            }
        })
    }

    fn delete_key<'a>(
        &'a self,
        _account: &'a Account,
        _user: &'a str,
        key_id: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(async move {
            self.enter("delete_key", key_id).await;
            let mut st = lock(&self.state);
            let before = st.keys.len();
            st.keys.retain(|k| k.id != key_id);
            if st.keys.len() == before {
                return Err(no_such_key("DeleteAccessKey", key_id));
            }
            Ok(())
        })
    }

    fn caller_arn<'a>(
        &'a self,
        _account: &'a Account,
        key_id: &'a str,
        secret: &'a SecretString,
    ) -> futures::future::BoxFuture<'a, Result<String, AwsError>> {
        Box::pin(async move {
            self.enter("caller_arn", key_id).await;
            let st = lock(&self.state);
            match st
                .keys
                .iter()
                .find(|k| k.id == key_id && k.active && k.secret == secret.expose_secret())
            {
                Some(k) => Ok(format!("arn:aws:iam::{ACCOUNT_ID}:user/{}", k.user)),
                None => Err(AwsError::new(
                    ErrorClass::AccessDenied,
                    "GetCallerIdentity",
                    "InvalidClientTokenId",
                    "The security token included in the request is invalid.",
                )),
            }
        })
    }
}

#[cfg(test)]
mod tests;
