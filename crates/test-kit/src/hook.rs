//! A closure before every call of a secret store or a deployer: [`Hook`] tells the
//! closure the operation's AWS name (`PutSecretValue`, `UpdateService`, ...) and then
//! lets the call through. Tests use it to record when a replica's writes left it, to
//! freeze a replica at a given call, and the like, without a hand-written wrapper per
//! port method.

use rotator_core::error::AwsError;
use rotator_core::ids::{Account, ClusterName, SecretRef, ServiceName, ServiceRef, VersionId};
use rotator_core::rotation::deploy::{Deployer, Described, Forced};
use rotator_core::rotation::store::{Found, SecretMeta, SecretStore, Select, VersionInfo};
use secrecy::SecretString;
use std::sync::Arc;

type Before = Arc<dyn Fn(&'static str) + Send + Sync>;

/// A port that calls `before(op)` first.
#[derive(Clone)]
pub struct Hook<P> {
    inner: P,
    before: Before,
}

impl<P> Hook<P> {
    pub fn new(inner: P, before: impl Fn(&'static str) + Send + Sync + 'static) -> Self {
        Self {
            inner,
            before: Arc::new(before),
        }
    }

    pub fn inner(&self) -> &P {
        &self.inner
    }
}

impl<S: SecretStore> SecretStore for Hook<S> {
    async fn describe(&self, s: &SecretRef) -> Result<SecretMeta, AwsError> {
        (self.before)("DescribeSecret");
        self.inner.describe(s).await
    }

    async fn describe_many(&self, refs: &[SecretRef], found: Found<'_>) {
        (self.before)("ListSecrets");
        self.inner.describe_many(refs, found).await
    }

    async fn versions(&self, s: &SecretRef) -> Result<Vec<VersionInfo>, AwsError> {
        (self.before)("ListSecretVersionIds");
        self.inner.versions(s).await
    }

    async fn get_value(
        &self,
        s: &SecretRef,
        select: Select<'_>,
    ) -> Result<(VersionId, SecretString), AwsError> {
        (self.before)("GetSecretValue");
        self.inner.get_value(s, select).await
    }

    async fn put_pending(
        &self,
        s: &SecretRef,
        token: &VersionId,
        value: &SecretString,
    ) -> Result<VersionId, AwsError> {
        (self.before)("PutSecretValue");
        self.inner.put_pending(s, token, value).await
    }

    async fn update_stage(
        &self,
        s: &SecretRef,
        stage: &str,
        to: Option<&VersionId>,
        from: Option<&VersionId>,
    ) -> Result<(), AwsError> {
        (self.before)("UpdateSecretVersionStage");
        self.inner.update_stage(s, stage, to, from).await
    }

    async fn tag(&self, s: &SecretRef, tags: &[(&str, String)]) -> Result<(), AwsError> {
        (self.before)("TagResource");
        self.inner.tag(s, tags).await
    }
}

impl<D: Deployer> Deployer for Hook<D> {
    async fn describe(
        &self,
        account: &Account,
        cluster: &ClusterName,
        services: &[ServiceName],
    ) -> Result<Vec<Described>, AwsError> {
        (self.before)("DescribeServices");
        self.inner.describe(account, cluster, services).await
    }

    async fn force_deploy(
        &self,
        account: &Account,
        service: &ServiceRef,
    ) -> Result<Forced, AwsError> {
        (self.before)("UpdateService");
        self.inner.force_deploy(account, service).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{at, ManualClock, Sequence};
    use crate::FakeStore;
    use rotator_core::ids::SecretId;
    use std::sync::Mutex;

    #[tokio::test]
    async fn the_closure_sees_every_operation_before_it_runs() {
        let clock = ManualClock::new(at("2026-03-03T02:00:00Z"));
        let store = FakeStore::new(&clock, &Sequence::default());
        store.create_secret("s", "v");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let h = Hook::new(store.clone(), move |op| log.lock().unwrap().push(op));
        let r = SecretRef {
            id: SecretId::from("s"),
            account: Account::default(),
            store: Default::default(),
        };
        h.describe(&r).await.unwrap();
        h.tag(&r, &[("k", "v".into())]).await.unwrap();
        assert!(h
            .describe(&SecretRef {
                id: SecretId::from("nope"),
                ..r
            })
            .await
            .is_err());
        assert_eq!(
            *seen.lock().unwrap(),
            ["DescribeSecret", "TagResource", "DescribeSecret"]
        );
        assert_eq!(
            store.ops(),
            ["DescribeSecret", "TagResource", "DescribeSecret"]
        );
    }
}
