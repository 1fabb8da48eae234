//! Secret stores other than AWS Secrets Manager (which is in `aws`): one folder per
//! vendor, each an adapter behind the core's `SecretStore` port.

pub mod alibaba;
pub mod http;
pub mod ibm;

use crate::aws::{secrets::AwsSecrets, AwsContext};
use crate::config::Config;
use crate::ids::StoreKind;
use crate::rotation::router::StoreRouter;

/// Every store the daemon and the commands use: AWS always, each other vendor's when a
/// secret names it.
pub type Stores = StoreRouter<AwsSecrets, alibaba::AlibabaStore, ibm::IbmStore>;

/// The stores of a configuration. A vendor's store is made only when a secret uses it,
/// so a configuration without IBM secrets never needs an IBM API key.
pub fn stores(cfg: &Config, ctx: AwsContext) -> Stores {
    let uses = |kind: StoreKind| cfg.secrets.iter().any(|s| s.secret.store.kind() == kind);
    StoreRouter {
        aws: AwsSecrets::new(ctx),
        alibaba: uses(StoreKind::Alibaba).then(|| {
            alibaba::AlibabaStore::new(alibaba::AlibabaSettings {
                sts_endpoint: cfg.alibaba.sts_endpoint.clone(),
            })
        }),
        ibm: uses(StoreKind::Ibm).then(|| {
            ibm::IbmStore::new(ibm::IbmSettings {
                iam_endpoint: cfg.ibm.iam_endpoint.clone(),
                api_key_env: cfg.ibm.api_key_env.clone(),
            })
        }),
    }
}
