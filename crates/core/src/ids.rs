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
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Account {
    pub region: Option<Region>,
    pub role_arn: Option<RoleArn>,
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let region = self
            .region
            .as_ref()
            .map_or("default region", |r| r.as_str());
        match &self.role_arn {
            Some(role) => write!(f, "{region} as {role}"),
            None => write!(f, "{region}"),
        }
    }
}

/// Where a secret lives: its id plus the account/region that reaches it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct SecretRef {
    pub id: SecretId,
    pub account: Account,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How logs and `plan` name the account a client is for.
    #[test]
    fn an_account_names_its_region_and_role() {
        assert_eq!(Account::default().to_string(), "default region");
        let a = Account {
            region: Some(Region::from("eu-west-1")),
            role_arn: Some(RoleArn::from("arn:aws:iam::123456789012:role/r")),
        };
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
