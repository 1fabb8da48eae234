//! What this target needs from IAM and STS, how the engine is given it, and its
//! lease-fenced wrapper.

use crate::error::{AwsError, ErrorClass};
use crate::rotation::deploy::Deployer;
use crate::rotation::store::SecretStore;
use crate::rotation::target::TargetEnv;
use crate::rotation::Engine;
use std::sync::Arc;

pub use rotator_core::rotation::target::iam_port::{AccessKeyInfo, IamApi, NewAccessKey};

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

