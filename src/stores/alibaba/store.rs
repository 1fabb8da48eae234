//! Alibaba Cloud KMS Secrets Manager behind the [`SecretStore`] port.
//!
//! The core speaks AWS's stage names; here they become Alibaba's: `AWSCURRENT` is
//! `ACSCurrent`, `AWSPREVIOUS` is `ACSPrevious` (both system stages that KMS moves the
//! same way: a version that loses ACSCurrent gets ACSPrevious), and `AWSPENDING` is the
//! custom stage [`PENDING_STAGE`]. Other stages pass through unchanged.
//!
//! `put_pending` is PutSecretValue with `VersionId` = the core's deterministic token,
//! which KMS makes idempotent as AWS does its ClientRequestToken: the same version id
//! with the same value succeeds without a change, with another value it is refused
//! (`Rejected.ResourceExist`, mapped to [`ErrorClass::Conflict`]).

use super::calls::{Kms, SecretInfo, VersionEntry};
use super::client::{Endpoint, Transport, Tuning};
use super::credentials::{CredentialSource, Credentials};
use crate::error::{AwsError, ErrorClass};
use crate::ids::{RoleArn, SecretArn, SecretRef, StoreKind, VersionId};
use crate::rotation::store::{
    Found, SecretMeta, SecretStore, Select, VersionInfo, AWSCURRENT, AWSPENDING, AWSPREVIOUS,
};
use futures::StreamExt;
use secrecy::SecretString;
use std::collections::{BTreeMap, HashMap};

/// The stage that marks a version being rotated in (the core's `AWSPENDING`).
///
/// Alibaba documents `ACSCurrent` and `ACSPrevious` as "system-reserved" and reserves
/// the `acs` prefix for itself elsewhere (secret names cannot start with `acs/`, tag
/// keys with `acs:`), so the pending stage is a custom stage outside that prefix: letters
/// only (the safest charset for a stage name, whose rules are not published), and named
/// after this tool so it never collides with a stage a team uses for its own purposes.
/// A secret has at most 8 stages; this one uses one of them while a rotation runs.
pub const PENDING_STAGE: &str = "SecretRotatorPending";
pub const CURRENT_STAGE: &str = "ACSCurrent";
pub const PREVIOUS_STAGE: &str = "ACSPrevious";

/// The STS endpoint unless [`AlibabaSettings::sts_endpoint`] says otherwise.
pub const DEFAULT_STS_ENDPOINT: &str = "https://sts.aliyuncs.com";

/// Below this many secrets behind one endpoint and role, DescribeSecret per secret is
/// cheaper than paging through every secret there with ListSecrets.
const LIST_THRESHOLD: usize = 10;
/// Concurrent describes.
const CONCURRENCY: usize = 8;

/// The core's stage name as Alibaba's.
pub fn to_alibaba(stage: &str) -> &str {
    match stage {
        AWSCURRENT => CURRENT_STAGE,
        AWSPREVIOUS => PREVIOUS_STAGE,
        AWSPENDING => PENDING_STAGE,
        s => s,
    }
}

/// Alibaba's stage name as the core's.
pub fn from_alibaba(stage: &str) -> &str {
    match stage {
        CURRENT_STAGE => AWSCURRENT,
        PREVIOUS_STAGE => AWSPREVIOUS,
        PENDING_STAGE => AWSPENDING,
        s => s,
    }
}

/// What the daemon configures for every Alibaba secret.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlibabaSettings {
    /// STS endpoint for RAM roles; `https://sts.aliyuncs.com` when unset.
    pub sts_endpoint: Option<String>,
}

pub struct AlibabaStore {
    transport: Transport,
    creds: CredentialSource,
}

impl std::fmt::Debug for AlibabaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlibabaStore").finish_non_exhaustive()
    }
}

/// Where one secret is, with the credentials that reach it.
struct Conn {
    endpoint: Endpoint,
    creds: Credentials,
}

/// Where one secret is, and as whom.
struct Route {
    endpoint: Endpoint,
    role: Option<RoleArn>,
}

impl AlibabaStore {
    /// Credentials from `ALIBABA_CLOUD_ACCESS_KEY_ID` / `ALIBABA_CLOUD_ACCESS_KEY_SECRET`
    /// (and `ALIBABA_CLOUD_SECURITY_TOKEN`). Without them the store still builds, and
    /// every call fails with a [`ErrorClass::Setup`] error that says what to set.
    pub fn new(settings: AlibabaSettings) -> Self {
        Self::build(settings, Credentials::from_env())
    }

    /// With the given base credentials instead of the environment's.
    pub fn with_credentials(settings: AlibabaSettings, creds: Credentials) -> Self {
        Self::build(settings, Ok(creds))
    }

    fn build(settings: AlibabaSettings, base: Result<Credentials, AwsError>) -> Self {
        let sts = settings
            .sts_endpoint
            .as_deref()
            .unwrap_or(DEFAULT_STS_ENDPOINT);
        let (sts, base) = match Endpoint::parse(sts) {
            Ok(e) => (e, base),
            // A bad STS endpoint fails every call, role or not: it is a configuration error.
            Err(e) => (Endpoint::https("sts.aliyuncs.com"), Err(e)),
        };
        Self {
            transport: Transport::new(Tuning::default()),
            creds: CredentialSource::new(base, sts),
        }
    }

    /// Other timeouts and retries (tests).
    pub fn with_tuning(mut self, tuning: Tuning) -> Self {
        self.transport.tuning = tuning;
        self
    }

    fn route(&self, s: &SecretRef, operation: &'static str) -> Result<Route, AwsError> {
        let setup = |m: &str| AwsError::new(ErrorClass::Setup, operation, "InvalidStoreRoute", m);
        let parts = s
            .store
            .parts()
            .filter(|p| p.kind == StoreKind::Alibaba)
            .ok_or_else(|| setup("the secret is not routed to the Alibaba store"))?;
        let endpoint = match (&parts.endpoint, &parts.region) {
            (Some(e), _) => Endpoint::parse(e.as_str())?,
            (None, Some(r)) => Endpoint::parse(&format!("https://kms.{r}.aliyuncs.com"))?,
            (None, None) => return Err(setup("an Alibaba secret needs a region or an endpoint")),
        };
        Ok(Route {
            endpoint,
            role: parts.role_arn.clone(),
        })
    }

    /// The endpoint and credentials for `s`.
    async fn conn(&self, s: &SecretRef, operation: &'static str) -> Result<Conn, AwsError> {
        let route = self.route(s, operation)?;
        let creds = self.creds.get(&self.transport, route.role.as_ref()).await?;
        Ok(Conn {
            endpoint: route.endpoint,
            creds,
        })
    }

    fn kms<'a>(&'a self, c: &'a Conn) -> Kms<'a> {
        Kms {
            transport: &self.transport,
            endpoint: &c.endpoint,
            creds: &c.creds,
        }
    }

    /// DescribeSecret (with tags) and the secret's staged versions.
    async fn describe_with(kms: &Kms<'_>, name: &str) -> Result<SecretMeta, AwsError> {
        let info = kms.describe_secret(name, true).await?;
        let versions = kms.all_versions(name, false).await?;
        Ok(meta(info, &versions))
    }

    async fn describe_each(
        &self,
        refs: &[SecretRef],
        which: Vec<usize>,
        report: &(dyn Fn(usize, Result<SecretMeta, AwsError>) + Sync),
    ) {
        let jobs: Vec<_> = which
            .into_iter()
            .filter_map(|i| Some((i, refs.get(i)?)))
            .map(|(i, r)| async move { (i, self.describe(r).await) })
            .collect();
        let mut done = futures::stream::iter(jobs).buffer_unordered(CONCURRENCY);
        while let Some((i, r)) = done.next().await {
            report(i, r);
        }
    }

    /// Answers the `wanted` refs (all behind `route`) from ListSecrets pages, returning
    /// those no page answered. KMS lists neither ARNs nor versions: the ARN is the first
    /// described secret's with its name replaced (`acs:kms:<region>:<uid>:secret/<name>`,
    /// the documented format), and each listed secret's versions come from
    /// ListSecretVersionIds. That makes one call per secret plus one per hundred, instead
    /// of two per secret.
    async fn list_wanted(
        &self,
        refs: &[SecretRef],
        wanted: Vec<usize>,
        report: &(dyn Fn(usize, Result<SecretMeta, AwsError>) + Sync),
    ) -> Vec<usize> {
        let Some(first) = wanted.first().and_then(|i| refs.get(*i)) else {
            return wanted;
        };
        let Ok(conn) = self.conn(first, "ListSecrets").await else {
            return wanted;
        };
        let kms = self.kms(&conn);
        // The ARN prefix, from one DescribeSecret.
        let prefix = match kms.describe_secret(first.id.as_str(), false).await {
            Ok(info) => match info.arn.strip_suffix(&format!("secret/{}", info.name)) {
                Some(p) => format!("{p}secret/"),
                None => return wanted,
            },
            Err(_) => return wanted,
        };
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        for &i in &wanted {
            if let Some(r) = refs.get(i) {
                let id = r.id.as_str();
                let name = id.strip_prefix(&prefix).unwrap_or(id);
                by_name.entry(name.to_owned()).or_default().push(i);
            }
        }
        const SIZE: u64 = 100;
        for page in 1.. {
            let p = match kms.list_secrets(page, SIZE, true).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(endpoint = %conn.endpoint, error = %e.error, "ListSecrets failed; describing the secrets not listed yet one by one");
                    break;
                }
            };
            let n = p.items.len();
            // Only generic secrets are answered from the listing: a managed secret (RDS,
            // RAM, ECS...) may be rotated by KMS itself, which only DescribeSecret's
            // AutomaticRotation tells, so it is described below.
            let listed: Vec<_> = p
                .items
                .into_iter()
                .filter(|l| l.secret_type.as_deref().is_none_or(|t| t == "Generic"))
                .filter_map(|l| Some((by_name.remove(&l.name)?, l)))
                .collect();
            let jobs = listed.into_iter().map(|(idx, l)| {
                let kms = &kms;
                let arn = format!("{prefix}{}", l.name);
                async move {
                    let r = kms
                        .all_versions(&l.name, false)
                        .await
                        .map_err(AwsError::from)
                        .map(|v| {
                            meta(
                                SecretInfo {
                                    arn,
                                    name: l.name.clone(),
                                    tags: l.tags.clone(),
                                    rotation_enabled: false,
                                    planned_delete: l.planned_delete,
                                    updated: l.updated,
                                },
                                &v,
                            )
                        });
                    (idx, r)
                }
            });
            let mut done = futures::stream::iter(jobs).buffer_unordered(CONCURRENCY);
            while let Some((idx, r)) = done.next().await {
                for i in idx {
                    report(i, r.clone());
                }
            }
            if n == 0 || page * SIZE >= p.total || by_name.is_empty() {
                break;
            }
        }
        by_name.into_values().flatten().collect()
    }
}

fn meta(info: SecretInfo, versions: &[VersionEntry]) -> SecretMeta {
    SecretMeta {
        arn: SecretArn::new(info.arn),
        name: info.name,
        versions: versions
            .iter()
            .map(|v| {
                (
                    VersionId::new(v.id.clone()),
                    v.stages
                        .iter()
                        .map(|s| from_alibaba(s).to_owned())
                        .collect(),
                )
            })
            .collect::<BTreeMap<_, _>>(),
        tags: info.tags.unwrap_or_default().into_iter().collect(),
        rotation_enabled: info.rotation_enabled,
        deleted: info.planned_delete,
        last_changed: info.updated,
    }
}

impl SecretStore for AlibabaStore {
    async fn describe(&self, s: &SecretRef) -> Result<SecretMeta, AwsError> {
        let c = self.conn(s, "DescribeSecret").await?;
        Self::describe_with(&self.kms(&c), s.id.as_str()).await
    }

    async fn describe_many(&self, refs: &[SecretRef], found: Found<'_>) {
        // Grouped by endpoint and role: one listing per place the secrets live.
        let mut groups: HashMap<(String, Option<RoleArn>), Vec<usize>> = HashMap::new();
        let mut unroutable = Vec::new();
        for (i, r) in refs.iter().enumerate() {
            match self.route(r, "DescribeSecret") {
                Ok(route) => groups
                    .entry((route.endpoint.to_string(), route.role))
                    .or_default()
                    .push(i),
                Err(_) => unroutable.push(i),
            }
        }
        let (lists, small): (Vec<_>, Vec<_>) = groups
            .into_values()
            .partition(|w| w.len() >= LIST_THRESHOLD);
        let mut small: Vec<usize> = small.into_iter().flatten().collect();
        small.extend(unroutable);
        small.sort_unstable();
        let found = std::sync::Mutex::new(found);
        let report = |i: usize, r: Result<SecretMeta, AwsError>| {
            let mut f = found
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            (*f)(i, r)
        };
        let listings = futures::future::join_all(
            lists
                .into_iter()
                .map(|w| self.list_wanted(refs, w, &report)),
        );
        let (left, ()) = futures::join!(listings, self.describe_each(refs, small, &report));
        let mut rest: Vec<usize> = left.into_iter().flatten().collect();
        rest.sort_unstable();
        self.describe_each(refs, rest, &report).await;
    }

    async fn versions(&self, s: &SecretRef) -> Result<Vec<VersionInfo>, AwsError> {
        let c = self.conn(s, "ListSecretVersionIds").await?;
        let all = self.kms(&c).all_versions(s.id.as_str(), true).await?;
        Ok(all
            .into_iter()
            .map(|v| VersionInfo {
                id: VersionId::new(v.id),
                stages: v
                    .stages
                    .iter()
                    .map(|st| from_alibaba(st).to_owned())
                    .collect(),
                created: v.created,
            })
            .collect())
    }

    async fn get_value(
        &self,
        s: &SecretRef,
        select: Select<'_>,
    ) -> Result<(VersionId, SecretString), AwsError> {
        let c = self.conn(s, "GetSecretValue").await?;
        // Always name the stage, as with AWS.
        let (stage, version) = match select {
            Select::Stage(st) => (to_alibaba(st), None),
            Select::Version(v, st) => (to_alibaba(st), Some(v.as_str())),
        };
        let got = self
            .kms(&c)
            .get_secret_value(s.id.as_str(), Some(stage), version)
            .await?;
        if got.data_type != "text" {
            return Err(AwsError::new(
                ErrorClass::Invalid,
                "GetSecretValue",
                "UnsupportedSecret",
                "the secret holds binary data (SecretDataType=binary); only text secrets can be rotated",
            ));
        }
        Ok((VersionId::new(got.version_id), got.value))
    }

    async fn put_pending(
        &self,
        s: &SecretRef,
        token: &VersionId,
        value: &SecretString,
    ) -> Result<VersionId, AwsError> {
        let c = self.conn(s, "PutSecretValue").await?;
        let out = self
            .kms(&c)
            .put_secret_value(s.id.as_str(), token.as_str(), value, Some(&[PENDING_STAGE]))
            .await?;
        Ok(VersionId::new(out.version_id))
    }

    async fn update_stage(
        &self,
        s: &SecretRef,
        stage: &str,
        to: Option<&VersionId>,
        from: Option<&VersionId>,
    ) -> Result<(), AwsError> {
        let c = self.conn(s, "UpdateSecretVersionStage").await?;
        let kms = self.kms(&c);
        kms.update_secret_version_stage(
            s.id.as_str(),
            to_alibaba(stage),
            to.map(VersionId::as_str),
            from.map(VersionId::as_str),
        )
        .await?;
        // Alibaba documents that ACSPrevious follows ACSCurrent for PutSecretValue, not for
        // UpdateSecretVersionStage: the replaced version is made ACSPrevious here unless
        // KMS already did, so a revoke of "previous" never reaches an older value.
        if let (AWSCURRENT, Some(_), Some(replaced)) = (stage, to, from) {
            let all = kms.all_versions(s.id.as_str(), true).await?;
            let holder = all
                .iter()
                .find(|v| v.stages.iter().any(|st| st == PREVIOUS_STAGE))
                .map(|v| v.id.as_str());
            if holder != Some(replaced.as_str()) {
                if let Err(e) = kms
                    .update_secret_version_stage(
                        s.id.as_str(),
                        PREVIOUS_STAGE,
                        Some(replaced.as_str()),
                        holder,
                    )
                    .await
                {
                    // ACSCurrent has moved: the engine counts the finish as done, so say
                    // loudly that ACSPrevious is not the replaced value.
                    let e = AwsError::from(e);
                    tracing::warn!(secret = %s.id, replaced = %replaced, error = %e, "ACSPrevious could not be moved to the replaced version; a revoke of the previous value may reach an older one");
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    async fn tag(&self, s: &SecretRef, tags: &[(&str, String)]) -> Result<(), AwsError> {
        // The core's tag keys (`secret-rotator:last-rotated`, ...) and values (RFC 3339
        // times, version ids) fit KMS's tag rules as they are: letters, digits and
        // `/\_-.+=:@`, up to 128 characters, keys not starting with `aliyun` or `acs:`.
        let c = self.conn(s, "TagResource").await?;
        self.kms(&c).tag_resource(s.id.as_str(), tags).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_map_both_ways() {
        for (core, ali) in [
            (AWSCURRENT, CURRENT_STAGE),
            (AWSPREVIOUS, PREVIOUS_STAGE),
            (AWSPENDING, PENDING_STAGE),
            ("custom", "custom"),
        ] {
            assert_eq!(to_alibaba(core), ali);
            assert_eq!(from_alibaba(ali), core);
        }
    }
}
