//! One [`SecretStore`] over the three vendors': each call goes to the store its secret
//! names (`SecretRef::store`), so the engine, the scheduler and the commands stay
//! unaware that more than one store exists.

use crate::error::{AwsError, ErrorClass};
use crate::ids::{SecretRef, StoreKind, VersionId};
use crate::rotation::store::{Found, SecretMeta, SecretStore, Select, VersionInfo};
use secrecy::SecretString;

/// AWS always; Alibaba and IBM when a secret uses them (`None`: not set up, each call on
/// such a secret fails with a setup error that says so).
pub struct StoreRouter<A, B, C> {
    pub aws: A,
    pub alibaba: Option<B>,
    pub ibm: Option<C>,
}

/// A store that is not set up: every call says which one.
fn not_set_up(kind: StoreKind, operation: &'static str) -> AwsError {
    AwsError::new(
        ErrorClass::Setup,
        operation,
        "StoreNotConfigured",
        format!("the {kind} store is not set up in this process"),
    )
}

/// Dispatches one call: `$call` is run on whichever store `$s` names.
macro_rules! route {
    ($self:ident, $s:expr, $op:literal, |$st:ident| $call:expr) => {
        match $s.store.kind() {
            StoreKind::Aws => {
                let $st = &$self.aws;
                $call.await
            }
            StoreKind::Alibaba => match &$self.alibaba {
                Some($st) => $call.await,
                None => Err(not_set_up(StoreKind::Alibaba, $op)),
            },
            StoreKind::Ibm => match &$self.ibm {
                Some($st) => $call.await,
                None => Err(not_set_up(StoreKind::Ibm, $op)),
            },
        }
    };
}

impl<A: SecretStore, B: SecretStore, C: SecretStore> SecretStore for StoreRouter<A, B, C> {
    async fn describe(&self, s: &SecretRef) -> Result<SecretMeta, AwsError> {
        route!(self, s, "DescribeSecret", |st| st.describe(s))
    }

    async fn describe_many(&self, refs: &[SecretRef], found: Found<'_>) {
        // Each store pages its own secrets; answers go back under the caller's index.
        for kind in StoreKind::ALL {
            let picked: Vec<usize> = (0..refs.len())
                .filter(|&i| refs[i].store.kind() == kind)
                .collect();
            if picked.is_empty() {
                continue;
            }
            let subset: Vec<SecretRef> = picked.iter().map(|&i| refs[i].clone()).collect();
            let mut back = |j: usize, r: Result<SecretMeta, AwsError>| {
                if let Some(&i) = picked.get(j) {
                    found(i, r);
                }
            };
            match kind {
                StoreKind::Aws => self.aws.describe_many(&subset, &mut back).await,
                StoreKind::Alibaba => match &self.alibaba {
                    Some(st) => st.describe_many(&subset, &mut back).await,
                    None => (0..subset.len())
                        .for_each(|j| back(j, Err(not_set_up(kind, "ListSecrets")))),
                },
                StoreKind::Ibm => match &self.ibm {
                    Some(st) => st.describe_many(&subset, &mut back).await,
                    None => (0..subset.len())
                        .for_each(|j| back(j, Err(not_set_up(kind, "ListSecrets")))),
                },
            }
        }
    }

    async fn versions(&self, s: &SecretRef) -> Result<Vec<VersionInfo>, AwsError> {
        route!(self, s, "ListSecretVersionIds", |st| st.versions(s))
    }

    async fn get_value(
        &self,
        s: &SecretRef,
        select: Select<'_>,
    ) -> Result<(VersionId, SecretString), AwsError> {
        route!(self, s, "GetSecretValue", |st| st.get_value(s, select))
    }

    async fn put_pending(
        &self,
        s: &SecretRef,
        token: &VersionId,
        value: &SecretString,
    ) -> Result<VersionId, AwsError> {
        route!(self, s, "PutSecretValue", |st| st
            .put_pending(s, token, value))
    }

    async fn update_stage(
        &self,
        s: &SecretRef,
        stage: &str,
        to: Option<&VersionId>,
        from: Option<&VersionId>,
    ) -> Result<(), AwsError> {
        route!(self, s, "UpdateSecretVersionStage", |st| st
            .update_stage(s, stage, to, from))
    }

    async fn tag(&self, s: &SecretRef, tags: &[(&str, String)]) -> Result<(), AwsError> {
        route!(self, s, "TagResource", |st| st.tag(s, tags))
    }
}
