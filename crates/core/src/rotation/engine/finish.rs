//! Step 5, finish: move AWSCURRENT to the new version (AWS moves AWSPREVIOUS by itself),
//! then remove AWSPENDING. Both calls count as done when a replica did them first.

use super::context::Rotation;
use super::error::aws;
use super::RotationError;
use crate::ids::VersionId;
use crate::rotation::deploy::Deployer;
use crate::rotation::store::{SecretStore, AWSCURRENT, AWSPENDING};
use crate::rotation::Step;

impl<S: SecretStore, D: Deployer> Rotation<'_, S, D> {
    /// Step 5.
    pub(super) async fn finish(&self, version: &VersionId) -> Result<(), RotationError> {
        self.note(Step::Finish, Some(version), "moving AWSCURRENT");
        self.move_current(version).await?;
        crate::failpoint!("after-move-current");
        self.remove_pending(version).await?;
        crate::failpoint!("after-remove-pending");
        Ok(())
    }

    async fn move_current(&self, version: &VersionId) -> Result<(), RotationError> {
        let s = self.secret();
        match self
            .timed(Step::Finish, self.step_timeout(), || {
                self.store()
                    .update_stage(s, AWSCURRENT, Some(version), Some(&self.current))
            })
            .await?
        {
            Ok(()) => Ok(()),
            Err(e) => {
                // A replica may have moved it already; that is success.
                let meta = self.call(Step::Finish, || self.store().describe(s)).await?;
                if meta.version_with(AWSCURRENT) == Some(version) {
                    Ok(())
                } else {
                    Err(aws(Step::Finish)(e))
                }
            }
        }
    }

    /// The second half of the finish; also how a run resumes a finish that stopped
    /// half-way.
    pub(super) async fn remove_pending(&self, version: &VersionId) -> Result<(), RotationError> {
        let s = self.secret();
        match self
            .timed(Step::Finish, self.step_timeout(), || {
                self.store()
                    .update_stage(s, AWSPENDING, None, Some(version))
            })
            .await?
        {
            Ok(()) => Ok(()),
            Err(e) => {
                let meta = self.call(Step::Finish, || self.store().describe(s)).await?;
                if meta.version_with(AWSPENDING).is_none() {
                    Ok(())
                } else {
                    Err(aws(Step::Finish)(e))
                }
            }
        }
    }
}
