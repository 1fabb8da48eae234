//! The port the `iam-access-key` target kind (in the binary) needs from IAM and STS.
//! It lives in the core so that test doubles (the test kit's `FakeIam`) implement it
//! without depending on the binary; the real client is the binary's `targets::iam`.

use crate::error::AwsError;
use crate::ids::Account;
use crate::rotation::lease::fence::Fenced;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use secrecy::SecretString;

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

/// What this target needs from IAM and STS; the real client is the binary's `targets::iam::aws::AwsIam`.
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
