//! What a target step may use besides the value: the secret's configuration, the store,
//! the clock, and the clients its kind needs ([`TargetClients`]).

use crate::clock::Clock;
use crate::config::SecretConfig;
use crate::error::AwsError;
use crate::ids::{SecretRef, VersionId};
use crate::rotation::store::{SecretMeta, SecretStore, Select};
use futures::future::BoxFuture;
use secrecy::SecretString;
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// What a target step gets from the engine.
pub struct TargetEnv<'a> {
    pub cfg: &'a SecretConfig,
    /// The engine's store (fenced like every other write when leases are on): to read the
    /// current value or an admin secret, and to tag.
    pub store: &'a dyn TargetStore,
    /// The clients the binary (or a test) gave the engine for its target kinds.
    pub clients: &'a TargetClients,
    pub clock: &'a dyn Clock,
}

/// The part of [`SecretStore`] a target may use, callable through `dyn` (every
/// `SecretStore` is one).
pub trait TargetStore: Send + Sync {
    /// DescribeSecret (tags, versions).
    fn describe<'a>(&'a self, s: &'a SecretRef) -> BoxFuture<'a, Result<SecretMeta, AwsError>>;

    /// GetSecretValue.
    fn get_value<'a>(
        &'a self,
        s: &'a SecretRef,
        select: Select<'a>,
    ) -> BoxFuture<'a, Result<(VersionId, SecretString), AwsError>>;

    /// TagResource.
    fn tag<'a>(
        &'a self,
        s: &'a SecretRef,
        tags: &'a [(&'a str, String)],
    ) -> BoxFuture<'a, Result<(), AwsError>>;
}

impl<S: SecretStore> TargetStore for S {
    fn describe<'a>(&'a self, s: &'a SecretRef) -> BoxFuture<'a, Result<SecretMeta, AwsError>> {
        Box::pin(SecretStore::describe(self, s))
    }

    fn get_value<'a>(
        &'a self,
        s: &'a SecretRef,
        select: Select<'a>,
    ) -> BoxFuture<'a, Result<(VersionId, SecretString), AwsError>> {
        Box::pin(SecretStore::get_value(self, s, select))
    }

    fn tag<'a>(
        &'a self,
        s: &'a SecretRef,
        tags: &'a [(&'a str, String)],
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(SecretStore::tag(self, s, tags))
    }
}

/// Clients that target kinds need at rotation time (say, IAM for access keys), one per
/// type. The core builds none: the binary adds its real clients to the engine, a test
/// its fakes, and a kind looks its own up by type ([`TargetClients::get`]), failing its
/// step with a clear error when it is missing.
#[derive(Clone, Default)]
pub struct TargetClients {
    by_type: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl TargetClients {
    /// Adds (or replaces) the client of type `T`, e.g. an `Arc<dyn SomeApi>`.
    pub fn insert<T: Any + Send + Sync>(&mut self, client: T) {
        self.by_type.insert(TypeId::of::<T>(), Arc::new(client));
    }

    /// The client of type `T`, if one was added.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.by_type.get(&TypeId::of::<T>())?.downcast_ref()
    }
}

impl fmt::Debug for TargetClients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TargetClients({} client(s))", self.by_type.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    trait Api: Send + Sync {
        fn name(&self) -> &'static str;
    }
    struct Real;
    impl Api for Real {
        fn name(&self) -> &'static str {
            "real"
        }
    }

    #[test]
    fn clients_are_found_by_type() {
        let mut c = TargetClients::default();
        assert!(c.get::<Arc<dyn Api>>().is_none());
        c.insert::<Arc<dyn Api>>(Arc::new(Real));
        c.insert(7u32);
        assert_eq!(c.get::<Arc<dyn Api>>().map(|a| a.name()), Some("real"));
        assert_eq!(c.get::<u32>(), Some(&7));
        assert!(c.get::<Arc<Real>>().is_none());
    }
}
