//! Step 8, revoke (targets that have it): invalidate the previous value, only once every
//! consumer was confirmed stable on the new one.

use super::context::Rotation;
use super::error::aws;
use super::RotationError;
use crate::error::ErrorClass;
use crate::ids::VersionId;
use crate::rotation::deploy::Deployer;
use crate::rotation::store::{SecretStore, Select, AWSCURRENT, AWSPREVIOUS};
use crate::rotation::target;
use crate::rotation::Step;

impl<S: SecretStore, D: Deployer> Rotation<'_, S, D> {
    /// Step 8. Any error reading what to revoke is a failed revoke (retried and alerted,
    /// the rotation stays due): a throttle, AccessDenied or KMS error must never look like
    /// "no previous value", or the old credential would stay valid after a "success".
    pub(super) async fn revoke(&self, version: &VersionId) -> Result<(), RotationError> {
        let (cfg, s) = (self.cfg, self.secret());
        self.note(Step::Revoke, Some(version), "revoking the previous value");
        let read = self
            .timed(Step::Revoke, self.step_timeout(), || {
                self.store().get_value(s, Select::Stage(AWSPREVIOUS))
            })
            .await?;
        let previous = match read {
            Ok((_, v)) => Some(v),
            Err(e) if e.class == ErrorClass::NotFound => {
                // Only a secret that lists no AWSPREVIOUS version has nothing to revoke; a
                // not-found read of a listed one (a read racing the stage move) is an error.
                let meta = self.call(Step::Revoke, || self.store().describe(s)).await?;
                if meta.version_with(AWSPREVIOUS).is_some() {
                    return Err(aws(Step::Revoke)(e));
                }
                tracing::info!(target: super::LOG_TARGET, secret = %cfg.name, "no AWSPREVIOUS version: nothing to revoke");
                None
            }
            Err(e) => return Err(aws(Step::Revoke)(e)),
        };
        let (_, value) = self
            .call(Step::Revoke, || {
                self.store()
                    .get_value(s, Select::Version(version, AWSCURRENT))
            })
            .await?;
        let env = self.target_env();
        self.timed(Step::Revoke, self.target_budget(), || {
            target::revoke(&env, &value, previous.as_ref())
        })
        .await?
        .map_err(|e| RotationError::Target {
            step: Step::Revoke,
            source: e,
        })
    }
}
