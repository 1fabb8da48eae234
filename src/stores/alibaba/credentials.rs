//! Which credentials sign a request: an AccessKey pair from the environment (with an STS
//! token when there is one), or a RAM role's STS credentials assumed with that pair and
//! kept until shortly before they expire.

use super::calls::Sts;
use super::client::{Endpoint, Transport};
use crate::error::{AwsError, ErrorClass};
use crate::ids::RoleArn;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::sync::Arc;

pub const ENV_ACCESS_KEY_ID: &str = "ALIBABA_CLOUD_ACCESS_KEY_ID";
pub const ENV_ACCESS_KEY_SECRET: &str = "ALIBABA_CLOUD_ACCESS_KEY_SECRET";
pub const ENV_SECURITY_TOKEN: &str = "ALIBABA_CLOUD_SECURITY_TOKEN";

/// Assumed-role credentials are renewed when less than this is left of them.
pub const REFRESH_BEFORE: chrono::Duration = chrono::Duration::minutes(5);
/// The session asked of AssumeRole: the documented default (and most roles' maximum).
pub const SESSION_SECS: u64 = 3600;
pub const SESSION_NAME: &str = "secret-rotator";

/// An AccessKey pair, with its STS token and expiry when it is temporary.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    secret: SecretString,
    token: Option<SecretString>,
    pub expires: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("has_token", &self.token.is_some())
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    pub fn new(
        access_key_id: impl Into<String>,
        secret: SecretString,
        token: Option<SecretString>,
    ) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret,
            token,
            expires: None,
        }
    }

    pub fn expiring(mut self, at: DateTime<Utc>) -> Self {
        self.expires = Some(at);
        self
    }

    /// `ALIBABA_CLOUD_ACCESS_KEY_ID` / `_SECRET` and the optional `_SECURITY_TOKEN`.
    pub fn from_env() -> Result<Self, AwsError> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        match (var(ENV_ACCESS_KEY_ID), var(ENV_ACCESS_KEY_SECRET)) {
            (Some(id), Some(secret)) => Ok(Self::new(
                id,
                SecretString::from(secret),
                var(ENV_SECURITY_TOKEN).map(SecretString::from),
            )),
            _ => Err(AwsError::new(
                ErrorClass::Setup,
                "Credentials",
                "NoCredentials",
                format!("no Alibaba Cloud credentials: set {ENV_ACCESS_KEY_ID} and {ENV_ACCESS_KEY_SECRET}"),
            )),
        }
    }

    pub(super) fn secret(&self) -> &str {
        self.secret.expose_secret()
    }

    pub(super) fn token(&self) -> Option<&str> {
        self.token.as_ref().map(|t| t.expose_secret())
    }

    fn fresh_at(&self, now: DateTime<Utc>) -> bool {
        self.expires.is_none_or(|e| e - now > REFRESH_BEFORE)
    }
}

/// One role's session, locked while it is being renewed.
type Session = Arc<tokio::sync::Mutex<Option<Credentials>>>;

/// The base credentials and the roles' sessions, one cached session per role.
pub struct CredentialSource {
    base: Result<Credentials, AwsError>,
    sts: Endpoint,
    sessions: tokio::sync::Mutex<HashMap<RoleArn, Session>>,
}

impl CredentialSource {
    pub fn new(base: Result<Credentials, AwsError>, sts: Endpoint) -> Self {
        Self {
            base,
            sts,
            sessions: Default::default(),
        }
    }

    /// The credentials for a secret reached directly (`None`) or through `role`.
    pub async fn get(
        &self,
        transport: &Transport,
        role: Option<&RoleArn>,
    ) -> Result<Credentials, AwsError> {
        let base = self.base.clone()?;
        let Some(role) = role else {
            return Ok(base);
        };
        let slot = {
            let mut map = self.sessions.lock().await;
            map.entry(role.clone()).or_default().clone()
        };
        // One AssumeRole per role at a time: concurrent callers wait for its answer.
        let mut cached = slot.lock().await;
        if let Some(c) = cached.as_ref().filter(|c| c.fresh_at(Utc::now())) {
            return Ok(c.clone());
        }
        let sts = Sts {
            transport,
            endpoint: &self.sts,
            creds: &base,
        };
        let fresh = sts.assume_role(role, SESSION_NAME, SESSION_SECS).await?;
        *cached = Some(fresh.clone());
        Ok(fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_secret() {
        let c = Credentials::new(
            "AK",
            SecretString::from("very-secret"),
            Some(SecretString::from("tok-secret")),
        );
        let d = format!("{c:?}");
        assert!(
            d.contains("AK") && !d.contains("very-secret") && !d.contains("tok-secret"),
            "{d}"
        );
    }

    #[test]
    fn credentials_are_renewed_five_minutes_before_they_expire() {
        let now = Utc::now();
        let c = Credentials::new("AK", SecretString::from("s"), None);
        assert!(c.fresh_at(now));
        assert!(c
            .clone()
            .expiring(now + chrono::Duration::minutes(6))
            .fresh_at(now));
        assert!(!c.expiring(now + chrono::Duration::minutes(4)).fresh_at(now));
    }
}
