//! Secret stores other than AWS Secrets Manager (which is in `aws`): one folder per
//! vendor, each an adapter behind the core's `SecretStore` port.

pub mod http;
pub mod ibm;

use crate::aws::{secrets::AwsSecrets, AwsContext};
use crate::config::Config;
use crate::ids::StoreKind;
use crate::rotation::router::StoreRouter;

/// Every store the daemon and the commands use: AWS always, each other vendor's when a
/// secret names it.
pub type Stores = StoreRouter<AwsSecrets, NoStore, ibm::IbmStore>;

/// The stores of a configuration. A vendor's store is made only when a secret uses it,
/// so a configuration without IBM secrets never needs an IBM API key.
pub fn stores(cfg: &Config, ctx: AwsContext) -> Stores {
    let uses = |kind: StoreKind| cfg.secrets.iter().any(|s| s.secret.store.kind() == kind);
    StoreRouter {
        aws: AwsSecrets::new(ctx),
        alibaba: None,
        ibm: uses(StoreKind::Ibm).then(|| {
            ibm::IbmStore::new(ibm::IbmSettings {
                iam_endpoint: cfg.ibm.iam_endpoint.clone(),
                api_key_env: cfg.ibm.api_key_env.clone(),
            })
        }),
    }
}

/// A store slot with no adapter in this build (never constructed).
pub enum NoStore {}

impl crate::rotation::store::SecretStore for NoStore {
    async fn describe(
        &self,
        _: &crate::ids::SecretRef,
    ) -> Result<crate::rotation::store::SecretMeta, crate::error::AwsError> {
        match *self {}
    }
    async fn describe_many(
        &self,
        _: &[crate::ids::SecretRef],
        _: crate::rotation::store::Found<'_>,
    ) {
        match *self {}
    }
    async fn versions(
        &self,
        _: &crate::ids::SecretRef,
    ) -> Result<Vec<crate::rotation::store::VersionInfo>, crate::error::AwsError> {
        match *self {}
    }
    async fn get_value(
        &self,
        _: &crate::ids::SecretRef,
        _: crate::rotation::store::Select<'_>,
    ) -> Result<(crate::ids::VersionId, secrecy::SecretString), crate::error::AwsError> {
        match *self {}
    }
    async fn put_pending(
        &self,
        _: &crate::ids::SecretRef,
        _: &crate::ids::VersionId,
        _: &secrecy::SecretString,
    ) -> Result<crate::ids::VersionId, crate::error::AwsError> {
        match *self {}
    }
    async fn update_stage(
        &self,
        _: &crate::ids::SecretRef,
        _: &str,
        _: Option<&crate::ids::VersionId>,
        _: Option<&crate::ids::VersionId>,
    ) -> Result<(), crate::error::AwsError> {
        match *self {}
    }
    async fn tag(
        &self,
        _: &crate::ids::SecretRef,
        _: &[(&str, String)],
    ) -> Result<(), crate::error::AwsError> {
        match *self {}
    }
}
