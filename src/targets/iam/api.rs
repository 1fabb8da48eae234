//! What this target needs from IAM and STS, how the engine is given it, and its
//! lease-fenced wrapper.

use crate::error::{AwsError, ErrorClass};
use crate::ids::Account;
use crate::rotation::deploy::Deployer;
use crate::rotation::lease::fence::Fenced;
use crate::rotation::store::SecretStore;
use crate::rotation::target::TargetEnv;
use crate::rotation::Engine;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use secrecy::SecretString;
use std::sync::Arc;

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

/// What this target needs from IAM and STS; the real client is [`super::aws::AwsIam`].
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
pub(super) fn iam<'a>(env: &'a TargetEnv<'a>) -> Result<&'a dyn IamApi, AwsError> {
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
