//! IBM Cloud Secrets Manager (API v2) behind the core's `SecretStore` port.
//!
//! - `iam`: the IAM token for an API key, exchanged once at a time, cached and
//!   refreshed at 80% of its lifetime (as IBM's SDKs do);
//! - `client`: the v2 calls used here, with retries (`retry`) and typed answers
//!   (`types`); errors mapped to the core's classes (`errors`);
//! - `store`: the rotation protocol on top (IBM has no pending stage: the pending value
//!   waits in a *pending holder* secret, see `holder`), with value shapes per secret
//!   type in `value`.
//!
//! A secret is addressed by its IBM secret id (`SecretRef::id`) on the instance URL of
//! its route (`StoreParts::endpoint`,
//! `https://<instance-id>.<region>.secrets-manager.appdomain.cloud`).

pub mod client;
pub mod errors;
mod holder;
pub mod iam;
pub mod retry;
mod store;
pub mod types;
mod value;

pub use store::IbmStore;

/// Where the IBM store gets its credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IbmSettings {
    /// The IAM endpoint; `None` is IBM Cloud's public one, [`DEFAULT_IAM_ENDPOINT`].
    pub iam_endpoint: Option<String>,
    /// The environment variable holding the API key (read at each token exchange, never
    /// logged).
    pub api_key_env: String,
}

pub const DEFAULT_IAM_ENDPOINT: &str = "https://iam.cloud.ibm.com";
pub const DEFAULT_API_KEY_ENV: &str = "IBMCLOUD_API_KEY";

impl Default for IbmSettings {
    fn default() -> Self {
        Self {
            iam_endpoint: None,
            api_key_env: DEFAULT_API_KEY_ENV.to_owned(),
        }
    }
}

impl IbmSettings {
    pub fn iam_url(&self) -> &str {
        self.iam_endpoint.as_deref().unwrap_or(DEFAULT_IAM_ENDPOINT)
    }
}
