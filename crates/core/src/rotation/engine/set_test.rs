//! Steps 3 and 4, set and test: tell the target about the pending value, then read the
//! pending version back (digest equal) and let the target check the value.

use super::context::Rotation;
use super::RotationError;
use crate::ids::VersionId;
use crate::rotation::deploy::Deployer;
use crate::rotation::store::{SecretStore, Select, AWSPENDING};
use crate::rotation::target;
use crate::rotation::Step;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

impl<S: SecretStore, D: Deployer> Rotation<'_, S, D> {
    /// Step 3.
    pub(super) async fn set(
        &self,
        version: &VersionId,
        value: &SecretString,
    ) -> Result<(), RotationError> {
        let (cfg, env) = (self.cfg, self.target_env());
        self.note(
            Step::Set,
            Some(version),
            &format!("target {}", cfg.target.kind()),
        );
        self.timed(Step::Set, self.target_budget(), || target::set(&env, value))
            .await?
            .map_err(|e| RotationError::Target {
                step: Step::Set,
                source: e,
            })?;
        crate::failpoint!("after-set");
        Ok(())
    }

    /// Step 4.
    pub(super) async fn test(
        &self,
        version: &VersionId,
        value: &SecretString,
    ) -> Result<(), RotationError> {
        let (s, env) = (self.secret(), self.target_env());
        self.note(
            Step::Test,
            Some(version),
            "reading the pending version back",
        );
        let (read_version, read) = self
            .call(Step::Test, || {
                self.store()
                    .get_value(s, Select::Version(version, AWSPENDING))
            })
            .await?;
        if read_version != *version || digest(&read) != digest(value) {
            return Err(RotationError::Mismatch);
        }
        self.timed(Step::Test, self.target_budget(), || {
            target::test(&env, value)
        })
        .await?
        .map_err(|e| RotationError::Target {
            step: Step::Test,
            source: e,
        })?;
        crate::failpoint!("after-test");
        Ok(())
    }
}

fn digest(v: &SecretString) -> [u8; 32] {
    Sha256::digest(v.expose_secret().as_bytes()).into()
}
