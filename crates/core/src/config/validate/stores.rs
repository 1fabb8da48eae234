//! `store = "aws" | "alibaba" | "ibm"`: the `[alibaba]` and `[ibm]` sections, each
//! secret's store keys, and the ids each store accepts.

use super::super::error::ConfigError;
use super::super::raw::{RawAlibaba, RawIbm, RawSecret, S};
use super::super::{AlibabaConfig, IbmConfig};
use super::Validator;
use crate::config::error::{Location, SourceMap};
use crate::ids::{Account, Endpoint, Region, RoleArn, StoreKind, StoreParts, StoreRoute};
use std::collections::HashSet;
use std::ops::Range;

/// A secret's store keys as written, resolved against the sections once every file is read.
#[derive(Clone, Debug, Default)]
pub(in crate::config) struct Route {
    pub kind: StoreKind,
    pub region: Option<Region>,
    pub role_arn: Option<RoleArn>,
    pub endpoint: Option<Endpoint>,
    pub origin: Option<Location>,
}

impl Validator<'_> {
    pub fn alibaba(
        &mut self,
        src: &SourceMap<'_>,
        keys: Vec<(String, Range<usize>)>,
        raw: RawAlibaba,
    ) {
        self.claim_keys(src, "alibaba", keys);
        if let Some(r) = raw.region {
            self.alibaba.region = self.alibaba_region(src, "alibaba.region", &r);
        }
        if let Some(e) = raw.endpoint {
            self.alibaba.endpoint = self.endpoint(src, "alibaba.endpoint", &e, ALIBABA_ENDPOINT);
        }
        if let Some(r) = raw.role_arn {
            self.alibaba.role_arn = self.ram_role(src, "alibaba.role_arn", &r);
        }
        if let Some(e) = raw.sts_endpoint {
            self.alibaba.sts_endpoint = self
                .endpoint(src, "alibaba.sts_endpoint", &e, "https://sts.aliyuncs.com")
                .map(|e| e.as_str().to_owned());
        }
    }

    pub fn ibm(&mut self, src: &SourceMap<'_>, keys: Vec<(String, Range<usize>)>, raw: RawIbm) {
        self.claim_keys(src, "ibm", keys);
        if let Some(e) = raw.endpoint {
            self.ibm.endpoint = self.endpoint(src, "ibm.endpoint", &e, IBM_ENDPOINT);
        }
        if let Some(e) = raw.iam_endpoint {
            self.ibm.iam_endpoint = self
                .endpoint(src, "ibm.iam_endpoint", &e, "https://iam.cloud.ibm.com")
                .map(|e| e.as_str().to_owned());
        }
        if let Some(v) = raw.api_key_env {
            if valid_env_name(v.get_ref()) {
                self.ibm.api_key_env = v.get_ref().clone();
            } else {
                self.err(
                    src,
                    v.span(),
                    "ibm.api_key_env",
                    format!(
                        "\"{}\" is not an environment variable name (A-Z a-z 0-9 _, not starting with a digit)",
                        v.get_ref()
                    ),
                );
            }
        }
    }

    /// The secret's `store` and the keys that reach it there. Region and role keys mean
    /// the store's own (an Alibaba region and RAM role for `store = "alibaba"`).
    pub(super) fn secret_route(
        &mut self,
        src: &SourceMap<'_>,
        label: &str,
        raw: &RawSecret,
        origin: &Location,
    ) -> Route {
        let k = |key: &str| format!("{label}.{key}");
        let kind = match &raw.store {
            None => StoreKind::Aws,
            Some(s) => match StoreKind::ALL.iter().find(|k| k.as_str() == s.get_ref()) {
                Some(kind) => *kind,
                None => {
                    self.err(
                        src,
                        s.span(),
                        &k("store"),
                        format!(
                            "unknown store \"{}\" (allowed: \"aws\", \"alibaba\", \"ibm\")",
                            s.get_ref()
                        ),
                    );
                    StoreKind::Aws
                }
            },
        };
        let mut route = Route {
            kind,
            origin: Some(origin.clone()),
            ..Route::default()
        };
        match kind {
            StoreKind::Aws => {
                route.region = raw
                    .region
                    .as_ref()
                    .and_then(|r| self.region(src, &k("region"), r));
                route.role_arn = raw
                    .role_arn
                    .as_ref()
                    .and_then(|r| self.role_arn(src, &k("role_arn"), r));
                if let Some(e) = &raw.endpoint {
                    self.err(src, e.span(), &k("endpoint"),
                        "applies to store = \"alibaba\" or \"ibm\" only (an AWS secret is reached through region and role_arn)");
                }
            }
            StoreKind::Alibaba => {
                route.region = raw
                    .region
                    .as_ref()
                    .and_then(|r| self.alibaba_region(src, &k("region"), r));
                route.role_arn = raw
                    .role_arn
                    .as_ref()
                    .and_then(|r| self.ram_role(src, &k("role_arn"), r));
                route.endpoint = raw
                    .endpoint
                    .as_ref()
                    .and_then(|e| self.endpoint(src, &k("endpoint"), e, ALIBABA_ENDPOINT));
            }
            StoreKind::Ibm => {
                for (key, v) in [("region", &raw.region), ("role_arn", &raw.role_arn)] {
                    if let Some(v) = v {
                        self.err(src, v.span(), &k(key),
                            "does not apply to store = \"ibm\" (an IBM instance is named by its endpoint URL; its API key by [ibm] api_key_env)");
                    }
                }
                route.endpoint = raw
                    .endpoint
                    .as_ref()
                    .and_then(|e| self.endpoint(src, &k("endpoint"), e, IBM_ENDPOINT));
            }
        }
        route
    }

    /// Region, role and endpoint of each secret, the sections' values filling what a
    /// secret leaves out. ECS consumers of a secret in another vendor's store are reached
    /// through `[aws]`.
    pub(super) fn resolve_route(
        &mut self,
        route: Route,
        accounts: &mut HashSet<Account>,
        routes: &mut HashSet<StoreRoute>,
    ) -> (Account, StoreRoute) {
        let aws_default = |v: &Validator<'_>, accounts: &mut HashSet<Account>| {
            Account::interned(v.aws.region.clone(), v.aws.role_arn.clone(), accounts)
        };
        match route.kind {
            StoreKind::Aws => (
                Account::interned(
                    route.region.or_else(|| self.aws.region.clone()),
                    route.role_arn.or_else(|| self.aws.role_arn.clone()),
                    accounts,
                ),
                StoreRoute::default(),
            ),
            StoreKind::Alibaba => {
                let parts = StoreParts {
                    kind: StoreKind::Alibaba,
                    region: route.region.or_else(|| self.alibaba.region.clone()),
                    endpoint: route.endpoint.or_else(|| self.alibaba.endpoint.clone()),
                    role_arn: route.role_arn.or_else(|| self.alibaba.role_arn.clone()),
                };
                if parts.region.is_none() && parts.endpoint.is_none() {
                    self.missing_store_key(route.origin, "alibaba",
                        "store = \"alibaba\" needs a region (e.g. region = \"cn-hangzhou\" here or in [alibaba]) or an endpoint");
                }
                (
                    aws_default(self, accounts),
                    StoreRoute::interned(parts, routes),
                )
            }
            StoreKind::Ibm => {
                let parts = StoreParts {
                    kind: StoreKind::Ibm,
                    region: None,
                    endpoint: route.endpoint.or_else(|| self.ibm.endpoint.clone()),
                    role_arn: None,
                };
                if parts.endpoint.is_none() {
                    self.missing_store_key(route.origin, "ibm",
                        "store = \"ibm\" needs the instance URL: endpoint = \"https://<instance-id>.<region>.secrets-manager.appdomain.cloud\" here or in [ibm]");
                }
                (
                    aws_default(self, accounts),
                    StoreRoute::interned(parts, routes),
                )
            }
        }
    }

    fn missing_store_key(&mut self, origin: Option<Location>, key: &str, message: &str) {
        if let Some(location) = origin {
            self.errors.push(ConfigError {
                location,
                key: key.into(),
                message: message.into(),
            });
        }
    }

    fn alibaba_region(&mut self, src: &SourceMap<'_>, key: &str, r: &S<String>) -> Option<Region> {
        self.interned(
            src,
            key,
            r,
            valid_alibaba_region,
            Region::interned,
            "is not an Alibaba Cloud region id (e.g. \"cn-hangzhou\", \"ap-southeast-1\")",
        )
    }

    fn ram_role(&mut self, src: &SourceMap<'_>, key: &str, r: &S<String>) -> Option<RoleArn> {
        self.interned(
            src,
            key,
            r,
            valid_ram_role,
            RoleArn::interned,
            "is not a RAM role ARN (expected acs:ram::1234567890123456:role/NAME)",
        )
    }

    fn endpoint(
        &mut self,
        src: &SourceMap<'_>,
        key: &str,
        e: &S<String>,
        example: &str,
    ) -> Option<Endpoint> {
        let url = e.get_ref().trim_end_matches('/');
        if valid_url(url) {
            Some(Endpoint::interned(url, &mut self.interner))
        } else {
            self.err(
                src,
                e.span(),
                key,
                format!(
                    "\"{}\" is not an http(s) URL of a host (e.g. \"{example}\")",
                    e.get_ref()
                ),
            );
            None
        }
    }
}

const ALIBABA_ENDPOINT: &str = "https://kms.cn-hangzhou.aliyuncs.com";
const IBM_ENDPOINT: &str = "https://<instance-id>.eu-de.secrets-manager.appdomain.cloud";

/// What a secret id must look like in each store; the message says what was expected.
pub(super) fn check_store_secret_id(kind: StoreKind, s: &str) -> Result<(), String> {
    match kind {
        StoreKind::Aws => super::check_secret_id(s),
        // Alibaba: "1 to 192 characters: letters, digits, and _ / + = . @ -".
        StoreKind::Alibaba => {
            if (1..=192).contains(&s.len())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_/+=.@-".contains(c))
            {
                Ok(())
            } else {
                Err(format!(
                    "\"{s}\" is not an Alibaba Cloud secret name (1 to 192 of A-Z a-z 0-9 _ / + = . @ -)"
                ))
            }
        }
        // IBM Secrets Manager v2 addresses a secret by its id, a UUID.
        StoreKind::Ibm => {
            if is_uuid(s) {
                Ok(())
            } else {
                Err(format!(
                    "\"{s}\" is not an IBM Cloud Secrets Manager secret id (a UUID such as \"0b5571f7-21e6-42b7-91c5-3f5ac9793a46\")"
                ))
            }
        }
    }
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

fn valid_alibaba_region(s: &str) -> bool {
    // cn-hangzhou, cn-north-2-gov-1, ap-southeast-1, eu-central-1, us-west-1
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 2
        && parts[0].len() == 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

fn valid_ram_role(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("acs:ram::") else {
        return false;
    };
    let Some((uid, name)) = rest.split_once(":role/") else {
        return false;
    };
    !uid.is_empty()
        && uid.len() <= 32
        && uid.chars().all(|c| c.is_ascii_digit())
        && (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

fn valid_url(s: &str) -> bool {
    let Some(rest) = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
    else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    !host.is_empty()
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        && !host.contains('@')
}

fn valid_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl AlibabaConfig {
    pub const DEFAULT_STS_ENDPOINT: &'static str = "https://sts.aliyuncs.com";
}

impl IbmConfig {
    pub const DEFAULT_IAM_ENDPOINT: &'static str = "https://iam.cloud.ibm.com";
    pub const DEFAULT_API_KEY_ENV: &'static str = "IBMCLOUD_API_KEY";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_each_store() {
        assert!(check_store_secret_id(StoreKind::Alibaba, "prod/api-db").is_ok());
        assert!(check_store_secret_id(StoreKind::Alibaba, "a b").is_err());
        assert!(check_store_secret_id(StoreKind::Alibaba, &"a".repeat(193)).is_err());
        assert!(
            check_store_secret_id(StoreKind::Ibm, "0b5571f7-21e6-42b7-91c5-3f5ac9793a46").is_ok()
        );
        assert!(check_store_secret_id(StoreKind::Ibm, "api-db").is_err());
    }

    #[test]
    fn region_role_url_shapes() {
        assert!(valid_alibaba_region("cn-hangzhou"));
        assert!(valid_alibaba_region("ap-southeast-1"));
        assert!(!valid_alibaba_region("Hangzhou"));
        assert!(valid_ram_role(
            "acs:ram::1234567890123456:role/secret-rotator"
        ));
        assert!(!valid_ram_role("arn:aws:iam::123456789012:role/x"));
        assert!(valid_url("http://127.0.0.1:8080"));
        assert!(!valid_url("ftp://x"));
        assert!(!valid_url("https://user:pw@host"));
        assert!(valid_env_name("IBMCLOUD_API_KEY"));
        assert!(!valid_env_name("1X"));
    }
}
