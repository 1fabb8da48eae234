//! Fencing: every write step of a rotation checks the lease it runs under.
//!
//! The rotation runs inside [`scope`]; the wrappers ([`Fenced`] around the secret store,
//! the ECS deployer, and in the binary IAM) and the target hooks ([`check_target`]) look the lease up
//! there, so the engine itself does not change. Before a write: the lease must be valid
//! locally and its record must still carry our owner and version; during the write, a
//! lapse abandons it (no SDK retry is sent after the lease is gone).

use super::Fence;
use crate::error::{AwsError, ErrorClass};
use crate::ids::{Account, ClusterName, SecretRef, ServiceName, ServiceRef, VersionId};
use crate::rotation::deploy::{Deployer, Described, Forced};
use crate::rotation::store::{Found, SecretMeta, SecretStore, Select, VersionInfo};
use secrecy::SecretString;
use std::future::Future;

tokio::task_local! {
    static FENCE: Fence;
}

/// The error code of a write refused (or abandoned) because the lease is gone.
pub const LEASE_LOST: &str = "LeaseLost";

/// Runs `f` (one rotation) under `fence`.
pub async fn scope<F: Future>(fence: Fence, f: F) -> F::Output {
    FENCE.scope(fence, f).await
}

/// The lease the running rotation holds, if any (the deploy coordinator sends a shared
/// force under one of its requesters' leases).
pub fn current() -> Option<Fence> {
    FENCE.try_with(|f| f.clone()).ok()
}

/// The error a fenced write returns: the operation it refused, and why.
pub fn lease_lost(operation: &'static str, why: &str) -> AwsError {
    // Not `Conflict`: the engine reads that as a client-token clash and would try again.
    AwsError::new(
        ErrorClass::Other,
        operation,
        LEASE_LOST,
        format!("lease lost ({why}); this replica stopped before writing"),
    )
}

/// Whether an error is a fenced write's refusal.
pub fn is_lease_lost(e: &AwsError) -> bool {
    e.code() == Some(LEASE_LOST)
}

/// Runs one write under the current lease. `required`: refuse when there is no lease
/// (leases are configured, so a rotation without one is a bug, not a single replica).
async fn write<T>(
    required: bool,
    operation: &'static str,
    f: impl Future<Output = Result<T, AwsError>>,
) -> Result<T, AwsError> {
    let Some(fence) = current() else {
        if required {
            return Err(lease_lost(operation, "no lease is held for this rotation"));
        }
        return f.await;
    };
    fence
        .verify()
        .await
        .map_err(|why| lease_lost(operation, &why))?;
    tokio::select! {
        biased;
        r = f => r,
        why = fence.lost() => Err(lease_lost(operation, &why)),
    }
}

/// For target steps that write outside AWS (an operator command, `ALTER ROLE`): checks
/// the lease when the rotation runs under one. (The whole rotation is also abandoned the
/// moment its lease lapses, which kills a running command.)
pub async fn check_target(step: &'static str) -> Result<(), AwsError> {
    match current() {
        Some(fence) => fence.verify().await.map_err(|why| lease_lost(step, &why)),
        None => Ok(()),
    }
}

/// A store, deployer or IAM client whose writes check the lease first. Reads pass through.
#[derive(Clone)]
pub struct Fenced<T> {
    inner: T,
    required: bool,
}

impl<T> Fenced<T> {
    /// `required`: leases are configured; a write outside a leased rotation is refused.
    pub fn new(inner: T, required: bool) -> Self {
        Self { inner, required }
    }

    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// Runs one write of the wrapped client under the current lease: for clients of
    /// ports outside the core (a target kind's), which wrap their writes the same way.
    pub async fn write<R>(
        &self,
        operation: &'static str,
        f: impl Future<Output = Result<R, AwsError>>,
    ) -> Result<R, AwsError> {
        write(self.required, operation, f).await
    }
}

impl<S: SecretStore> SecretStore for Fenced<S> {
    fn describe(&self, s: &SecretRef) -> impl Future<Output = Result<SecretMeta, AwsError>> + Send {
        self.inner.describe(s)
    }

    fn describe_many(
        &self,
        refs: &[SecretRef],
        found: Found<'_>,
    ) -> impl Future<Output = ()> + Send {
        self.inner.describe_many(refs, found)
    }

    fn versions(
        &self,
        s: &SecretRef,
    ) -> impl Future<Output = Result<Vec<VersionInfo>, AwsError>> + Send {
        self.inner.versions(s)
    }

    fn get_value(
        &self,
        s: &SecretRef,
        select: Select<'_>,
    ) -> impl Future<Output = Result<(VersionId, SecretString), AwsError>> + Send {
        self.inner.get_value(s, select)
    }

    fn put_pending(
        &self,
        s: &SecretRef,
        token: &VersionId,
        value: &SecretString,
    ) -> impl Future<Output = Result<VersionId, AwsError>> + Send {
        write(
            self.required,
            "PutSecretValue",
            self.inner.put_pending(s, token, value),
        )
    }

    fn update_stage(
        &self,
        s: &SecretRef,
        stage: &str,
        to: Option<&VersionId>,
        from: Option<&VersionId>,
    ) -> impl Future<Output = Result<(), AwsError>> + Send {
        write(
            self.required,
            "UpdateSecretVersionStage",
            self.inner.update_stage(s, stage, to, from),
        )
    }

    fn tag(
        &self,
        s: &SecretRef,
        tags: &[(&str, String)],
    ) -> impl Future<Output = Result<(), AwsError>> + Send {
        write(self.required, "TagResource", self.inner.tag(s, tags))
    }
}

impl<D: Deployer> Deployer for Fenced<D> {
    fn describe(
        &self,
        account: &Account,
        cluster: &ClusterName,
        services: &[ServiceName],
    ) -> impl Future<Output = Result<Vec<Described>, AwsError>> + Send {
        self.inner.describe(account, cluster, services)
    }

    fn force_deploy(
        &self,
        account: &Account,
        service: &ServiceRef,
    ) -> impl Future<Output = Result<Forced, AwsError>> + Send {
        write(
            self.required,
            "UpdateService",
            self.inner.force_deploy(account, service),
        )
    }
}
