//! A small in-memory Secrets Manager and a no-op ECS for the scale and burst scenarios,
//! with a fixed latency per call to stand in for the network.

use secrecy::{ExposeSecret, SecretString};
use secret_rotator::error::{AwsError, ErrorClass};
use secret_rotator::ids::{
    Account, ClusterName, SecretArn, SecretRef, ServiceName, ServiceRef, VersionId,
};
use secret_rotator::rotation::deploy::{Deployer, Described};
use secret_rotator::rotation::store::*;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

struct Secret {
    arn: SecretArn,
    versions: BTreeMap<VersionId, (String, Vec<String>)>,
    tags: BTreeMap<String, String>,
}

pub struct MemStore {
    secrets: Mutex<HashMap<String, Secret>>,
    latency: Duration,
    pub puts: AtomicU64,
}

impl MemStore {
    pub fn new(n: usize, last_rotated: &str, latency: Duration) -> Self {
        let mut m = HashMap::with_capacity(n);
        for i in 0..n {
            let id = format!("bench/{i}");
            let mut versions = BTreeMap::new();
            versions.insert(
                VersionId::new(format!("v0-{i}")),
                ("initial".to_owned(), vec![AWSCURRENT.to_owned()]),
            );
            let mut tags = BTreeMap::new();
            tags.insert(TAG_LAST_ROTATED.to_owned(), last_rotated.to_owned());
            m.insert(
                id.clone(),
                Secret {
                    arn: SecretArn::new(format!(
                        "arn:aws:secretsmanager:us-east-1:111111111111:secret:{id}"
                    )),
                    versions,
                    tags,
                },
            );
        }
        Self {
            secrets: Mutex::new(m),
            latency,
            puts: AtomicU64::new(0),
        }
    }

    /// Secrets whose last-rotated tag is no longer `initial`.
    pub fn tagged_after(&self, initial: &str) -> usize {
        let g = self.secrets.lock().unwrap();
        g.values()
            .filter(|s| s.tags.get(TAG_LAST_ROTATED).is_some_and(|t| t != initial))
            .count()
    }

    async fn pause(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }

    fn with<T>(
        &self,
        s: &SecretRef,
        f: impl FnOnce(&mut Secret) -> Result<T, AwsError>,
    ) -> Result<T, AwsError> {
        let mut g = self.secrets.lock().unwrap();
        match g.get_mut(s.id.as_str()) {
            Some(sec) => f(sec),
            None => Err(AwsError::new(
                ErrorClass::NotFound,
                "DescribeSecret",
                "ResourceNotFoundException",
                "no such secret",
            )),
        }
    }
}

fn meta(id: &str, s: &Secret) -> SecretMeta {
    SecretMeta {
        arn: s.arn.clone(),
        name: id.to_owned(),
        versions: s
            .versions
            .iter()
            .map(|(k, (_, st))| (k.clone(), st.clone()))
            .collect(),
        tags: s.tags.clone(),
        rotation_enabled: false,
        deleted: false,
        last_changed: None,
    }
}

impl SecretStore for MemStore {
    async fn describe(&self, s: &SecretRef) -> Result<SecretMeta, AwsError> {
        self.pause().await;
        self.with(s, |sec| Ok(meta(s.id.as_str(), sec)))
    }
    async fn describe_many(&self, refs: &[SecretRef]) -> Vec<Result<SecretMeta, AwsError>> {
        // One page per 100 secrets, as ListSecrets.
        for _ in 0..refs.len().div_ceil(100) {
            self.pause().await;
        }
        refs.iter()
            .map(|r| self.with(r, |sec| Ok(meta(r.id.as_str(), sec))))
            .collect()
    }
    async fn versions(&self, s: &SecretRef) -> Result<Vec<VersionInfo>, AwsError> {
        self.pause().await;
        self.with(s, |sec| {
            Ok(sec
                .versions
                .iter()
                .map(|(k, (_, st))| VersionInfo {
                    id: k.clone(),
                    stages: st.clone(),
                    created: None,
                })
                .collect())
        })
    }
    async fn get_value(
        &self,
        s: &SecretRef,
        select: Select<'_>,
    ) -> Result<(VersionId, SecretString), AwsError> {
        self.pause().await;
        self.with(s, |sec| {
            let found = sec.versions.iter().find(|(k, (_, st))| match &select {
                Select::Stage(stage) => st.iter().any(|x| x == stage),
                Select::Version(v, stage) => *k == *v && st.iter().any(|x| x == stage),
            });
            found
                .map(|(k, (v, _))| (k.clone(), SecretString::from(v.clone())))
                .ok_or_else(|| {
                    AwsError::new(
                        ErrorClass::NotFound,
                        "GetSecretValue",
                        "ResourceNotFoundException",
                        "no such version",
                    )
                })
        })
    }
    async fn put_pending(
        &self,
        s: &SecretRef,
        token: &VersionId,
        value: &SecretString,
    ) -> Result<VersionId, AwsError> {
        self.pause().await;
        self.puts.fetch_add(1, Ordering::Relaxed);
        self.with(s, |sec| {
            for (_, st) in sec.versions.values_mut() {
                st.retain(|x| x != AWSPENDING);
            }
            sec.versions.insert(
                token.clone(),
                (
                    value.expose_secret().to_owned(),
                    vec![AWSPENDING.to_owned()],
                ),
            );
            Ok(token.clone())
        })
    }
    async fn update_stage(
        &self,
        s: &SecretRef,
        stage: &str,
        to: Option<&VersionId>,
        from: Option<&VersionId>,
    ) -> Result<(), AwsError> {
        self.pause().await;
        self.with(s, |sec| {
            if let Some(f) = from {
                if let Some((_, st)) = sec.versions.get_mut(f) {
                    st.retain(|x| x != stage);
                    if stage == AWSCURRENT {
                        for (_, st2) in sec.versions.values_mut() {
                            st2.retain(|x| x != AWSPREVIOUS);
                        }
                        if let Some((_, st)) = sec.versions.get_mut(f) {
                            st.push(AWSPREVIOUS.to_owned());
                        }
                    }
                }
            }
            if let Some(t) = to {
                if let Some((_, st)) = sec.versions.get_mut(t) {
                    st.push(stage.to_owned());
                }
            }
            Ok(())
        })
    }
    async fn tag(&self, s: &SecretRef, tags: &[(&str, String)]) -> Result<(), AwsError> {
        self.pause().await;
        self.with(s, |sec| {
            for (k, v) in tags {
                sec.tags.insert((*k).to_owned(), v.clone());
            }
            Ok(())
        })
    }
}

/// ECS with no services (the burst and scale scenarios redeploy nothing).
pub struct NoEcs;

impl Deployer for NoEcs {
    async fn describe(
        &self,
        _: &Account,
        _: &ClusterName,
        services: &[ServiceName],
    ) -> Result<Vec<Described>, AwsError> {
        Ok(services
            .iter()
            .map(|_| Described::Missing("MISSING".into()))
            .collect())
    }
    async fn force_deploy(
        &self,
        _: &Account,
        _: &ServiceRef,
    ) -> Result<secret_rotator::rotation::deploy::Forced, AwsError> {
        Err(AwsError::new(
            ErrorClass::NotFound,
            "UpdateService",
            "ServiceNotFoundException",
            "none",
        ))
    }
}
