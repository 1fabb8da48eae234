//! Typed identifiers, so a cluster name is never passed where a service name belongs.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Shared, immutable text: a clone is a reference count, so the scheduler's maps,
        /// queues and metrics hold the configuration's one copy (100,000 secrets).
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            pub fn new(s: impl Into<String>) -> Self {
                Self(Arc::from(s.into()))
            }
            /// The same text as a value of `interner`, shared with every other id
            /// made from it (regions, roles, clusters repeat across secrets).
            pub fn interned(s: &str, interner: &mut Interner) -> Self {
                Self(interner.get(s))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(Arc::from(s))
            }
        }

        impl serde::Serialize for $name {
            fn serialize<Z: serde::Serializer>(&self, z: Z) -> Result<Z::Ok, Z::Error> {
                z.serialize_str(&self.0)
            }
        }
    };
}

/// One shared copy of each distinct string (see `interned` on each id).
#[derive(Debug, Default)]
pub struct Interner(HashSet<Arc<str>>);

impl Interner {
    pub fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.0.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        self.0.insert(a.clone());
        a
    }
}

string_id!(
    /// Our stable key for a rotation schedule: used in logs and metric labels.
    SecretName
);
string_id!(
    /// A `[[group]]`'s name: secrets rotated one after another (dev, staging, prod).
    GroupName
);
string_id!(
    /// A Secrets Manager secret id as configured: a name or an ARN.
    SecretId
);
string_id!(
    /// The full ARN of a secret, as Secrets Manager returns it.
    SecretArn
);
string_id!(
    /// A Secrets Manager version id (a UUID).
    VersionId
);
string_id!(
    /// An ECS cluster name or ARN.
    ClusterName
);
string_id!(
    /// An ECS service name or ARN.
    ServiceName
);
string_id!(
    /// The id of one ECS deployment (`ecs-svc/...`).
    DeploymentId
);
string_id!(
    /// An IAM role ARN to assume.
    RoleArn
);
string_id!(
    /// An AWS region code.
    Region
);

/// One consumer service: a service on a cluster.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct ServiceRef {
    pub cluster: ClusterName,
    pub service: ServiceName,
}

impl fmt::Display for ServiceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.cluster, self.service)
    }
}

/// Which credentials and region reach a secret or service: one client per distinct value.
///
/// A shared handle, equal and ordered by value: every secret's record holds one (8 bytes
/// instead of 32), and the configuration makes one per distinct value
/// ([`Account::interned`]). The daemon's default (no region, no role) allocates nothing.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Account(Option<Arc<AccountParts>>);

#[derive(Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
struct AccountParts {
    region: Option<Region>,
    role_arn: Option<RoleArn>,
}

impl Account {
    pub fn new(region: Option<Region>, role_arn: Option<RoleArn>) -> Self {
        if region.is_none() && role_arn.is_none() {
            return Account(None);
        }
        Account(Some(Arc::new(AccountParts { region, role_arn })))
    }

    /// The same value as a handle of `seen`, shared with every equal account made through
    /// it (most secrets of a fleet share a few accounts).
    pub fn interned(
        region: Option<Region>,
        role_arn: Option<RoleArn>,
        seen: &mut HashSet<Account>,
    ) -> Self {
        let a = Account::new(region, role_arn);
        if let Some(shared) = seen.get(&a) {
            return shared.clone();
        }
        seen.insert(a.clone());
        a
    }

    pub fn region(&self) -> Option<&Region> {
        self.0.as_ref().and_then(|p| p.region.as_ref())
    }

    pub fn role_arn(&self) -> Option<&RoleArn> {
        self.0.as_ref().and_then(|p| p.role_arn.as_ref())
    }

    /// This account with another region (the role kept).
    pub fn with_region(&self, region: Option<Region>) -> Self {
        Account::new(region, self.role_arn().cloned())
    }

    /// This account with another role (the region kept).
    pub fn with_role_arn(&self, role_arn: Option<RoleArn>) -> Self {
        Account::new(self.region().cloned(), role_arn)
    }
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("region", &self.region())
            .field("role_arn", &self.role_arn())
            .finish()
    }
}

impl serde::Serialize for Account {
    fn serialize<Z: serde::Serializer>(&self, z: Z) -> Result<Z::Ok, Z::Error> {
        use serde::ser::SerializeStruct;
        let mut s = z.serialize_struct("Account", 2)?;
        s.serialize_field("region", &self.region())?;
        s.serialize_field("role_arn", &self.role_arn())?;
        s.end()
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let region = self.region().map_or("default region", |r| r.as_str());
        match self.role_arn() {
            Some(role) => write!(f, "{region} as {role}"),
            None => write!(f, "{region}"),
        }
    }
}

string_id!(
    /// A store's base URL: an Alibaba Cloud KMS endpoint, an IBM Cloud Secrets Manager
    /// instance URL.
    Endpoint
);

/// Which vendor's secret store holds a secret.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// AWS Secrets Manager, reached through the secret's [`Account`].
    #[default]
    Aws,
    /// Alibaba Cloud KMS Secrets Manager.
    Alibaba,
    /// IBM Cloud Secrets Manager (API v2).
    Ibm,
}

impl StoreKind {
    pub const ALL: [StoreKind; 3] = [StoreKind::Aws, StoreKind::Alibaba, StoreKind::Ibm];

    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::Aws => "aws",
            StoreKind::Alibaba => "alibaba",
            StoreKind::Ibm => "ibm",
        }
    }
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which store holds a secret and what reaches it there. AWS, the default, allocates
/// nothing (its region and role are the secret's [`Account`], which also reaches its ECS
/// services); another vendor's store carries its own region, endpoint and role, shared
/// by every secret with the same values ([`StoreRoute::interned`]).
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreRoute(Option<Arc<StoreParts>>);

#[derive(Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct StoreParts {
    pub kind: StoreKind,
    /// Alibaba: the region (`cn-hangzhou`), which names the endpoint unless one is set.
    pub region: Option<Region>,
    /// Alibaba: an endpoint instead of `kms.<region>.aliyuncs.com`; IBM: the instance URL.
    pub endpoint: Option<Endpoint>,
    /// Alibaba: a RAM role assumed through STS.
    pub role_arn: Option<RoleArn>,
}

impl StoreRoute {
    pub fn new(parts: StoreParts) -> Self {
        if parts.kind == StoreKind::Aws {
            return StoreRoute(None);
        }
        StoreRoute(Some(Arc::new(parts)))
    }

    /// The same value as a handle of `seen`, shared with every equal route made through it.
    pub fn interned(parts: StoreParts, seen: &mut HashSet<StoreRoute>) -> Self {
        let r = StoreRoute::new(parts);
        if let Some(shared) = seen.get(&r) {
            return shared.clone();
        }
        seen.insert(r.clone());
        r
    }

    pub fn kind(&self) -> StoreKind {
        self.0.as_ref().map_or(StoreKind::Aws, |p| p.kind)
    }

    /// The vendor's settings; `None` for AWS.
    pub fn parts(&self) -> Option<&StoreParts> {
        self.0.as_deref()
    }
}

impl fmt::Debug for StoreRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => f.write_str("aws"),
            Some(p) => p.fmt(f),
        }
    }
}

impl serde::Serialize for StoreRoute {
    fn serialize<Z: serde::Serializer>(&self, z: Z) -> Result<Z::Ok, Z::Error> {
        match &self.0 {
            None => StoreKind::Aws.serialize(z),
            Some(p) => p.serialize(z),
        }
    }
}

/// Where a secret lives: its id, the account/region that reaches it (and its ECS
/// services), and the store that holds it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct SecretRef {
    pub id: SecretId,
    pub account: Account,
    /// AWS Secrets Manager unless the secret says `store = "alibaba" | "ibm"`.
    #[serde(skip_serializing_if = "is_aws")]
    pub store: StoreRoute,
}

fn is_aws(r: &StoreRoute) -> bool {
    r.kind() == StoreKind::Aws
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Equal accounts are one client's key however they were made; the configuration's
    /// copies share one allocation.
    #[test]
    fn accounts_compare_by_value_and_intern_to_one_copy() {
        let eu = || Some(Region::from("eu-west-1"));
        assert_eq!(Account::new(None, None), Account::default());
        assert_eq!(Account::new(eu(), None), Account::new(eu(), None));
        assert_ne!(Account::new(eu(), None), Account::default());
        let mut seen = HashSet::new();
        let a = Account::interned(eu(), None, &mut seen);
        let b = Account::interned(eu(), None, &mut seen);
        assert!(matches!((&a.0, &b.0), (Some(x), Some(y)) if Arc::ptr_eq(x, y)));
        assert_eq!(a.region().map(Region::as_str), Some("eu-west-1"));
        assert_eq!(a.with_region(None), Account::default());
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"region":"eu-west-1","role_arn":null}"#
        );
    }

    /// How logs and `plan` name the account a client is for.
    #[test]
    fn an_account_names_its_region_and_role() {
        assert_eq!(Account::default().to_string(), "default region");
        let a = Account::new(
            Some(Region::from("eu-west-1")),
            Some(RoleArn::from("arn:aws:iam::123456789012:role/r")),
        );
        assert_eq!(
            a.to_string(),
            "eu-west-1 as arn:aws:iam::123456789012:role/r"
        );
        let svc = ServiceRef {
            cluster: ClusterName::from("prod"),
            service: ServiceName::from("api"),
        };
        assert_eq!(svc.to_string(), "prod/api");
    }
}
