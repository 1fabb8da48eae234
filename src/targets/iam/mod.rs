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
//! A crash is safe at every point but one: once the `iam-creating` tag names the new key
//! and before the pending version is written, the key is an orphan that the next create
//! deletes; after, the engine resumes with the stored key; a failed write of that naming
//! tag deletes the key at once. A crash between `CreateAccessKey` and the naming tag (one
//! IAM round trip) leaves a key no later attempt deletes: the secret fails and alerts
//! until an operator deletes it (RELIABILITY.md, "Simulation").
//! The secret access key is never logged; key ids are not secret and are logged.

mod api;
pub mod aws;
mod cleanup;
mod config;
mod steps;

pub use api::{AccessKeyInfo, IamApi, NewAccessKey, WithIam};
pub use cleanup::{plan_cleanup, Deletion, TAG_IAM_CREATING, TAG_IAM_DEACTIVATED};
pub use config::{IamAccessKey, IamTarget, RawIam};
pub use steps::{key_id_of, TEST_PROPAGATION};

use crate::config::{SecretConfig, TargetKind};
use crate::rotation::target::{ConfiguredTarget, TargetEnv, TargetError};
use futures::future::BoxFuture;
use secrecy::SecretString;

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
        Box::pin(steps::create_value(env, self))
    }

    fn test<'a>(
        &'a self,
        env: &'a TargetEnv<'a>,
        value: &'a SecretString,
    ) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(steps::test(env, self, value))
    }

    fn revoke<'a>(
        &'a self,
        env: &'a TargetEnv<'a>,
        current: &'a SecretString,
        previous: Option<&'a SecretString>,
    ) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(steps::revoke(env, self, current, previous))
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
