//! Alibaba Cloud KMS Secrets Manager: the RPC API (2016-01-20) over the shared HTTP
//! client, V3 (`ACS3-HMAC-SHA256`) signatures, credentials from the environment or a
//! RAM role assumed through STS, behind the core's `SecretStore` port.
//!
//! - `signing`: the V3 signature;
//! - `credentials`: AccessKey pair, STS token, RAM role sessions (cached, renewed);
//! - `client`: one signed call with a timeout, retries with jittered backoff;
//! - `calls`: the KMS and STS operations, typed;
//! - `errors`: Alibaba's error answers as classified `AwsError`s;
//! - `store`: `impl SecretStore for AlibabaStore`, stage names mapped.

pub mod calls;
pub mod client;
pub mod credentials;
pub mod errors;
pub mod signing;
mod store;

pub use client::{Endpoint, Tuning};
pub use credentials::Credentials;
pub use store::{
    from_alibaba, to_alibaba, AlibabaSettings, AlibabaStore, CURRENT_STAGE, DEFAULT_STS_ENDPOINT,
    PENDING_STAGE, PREVIOUS_STAGE,
};
