//! Secret stores other than AWS Secrets Manager (which is in `aws`): one folder per
//! vendor, each an adapter behind the core's `SecretStore` port.

pub mod alibaba;
pub mod http;
