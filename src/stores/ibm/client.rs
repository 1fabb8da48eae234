//! The Secrets Manager v2 calls the store uses, on one instance URL per call: bearer
//! token from [`TokenSource`], retries per [`RetryPolicy`], one fresh token after a 401
//! (a token revoked or expired early), answers typed ([`super::types`]).

use super::errors;
use super::iam::{form_encode, TokenSource};
use super::retry::{retry_after, Idempotence, RetryPolicy};
use super::types::{Secret, SecretData, SecretMeta, SecretPage, Version, VersionMeta};
use crate::error::{AwsError, ErrorClass};
use crate::stores::http::HttpClient;
use secrecy::ExposeSecret;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(30);
/// An arbitrary payload is at most 1 MB; escaped in JSON it may grow.
const MAX_BODY: usize = 8 * 1024 * 1024;

/// Filters of `GET /api/v2/secrets`.
#[derive(Clone, Debug, Default)]
pub struct ListQuery<'a> {
    pub offset: u64,
    /// 1 - 1000; IBM's default is 200.
    pub limit: u64,
    pub search: Option<&'a str>,
    pub groups: Vec<&'a str>,
    pub secret_types: Vec<&'a str>,
}

#[derive(Clone, Debug)]
pub struct IbmClient {
    http: HttpClient,
    tokens: Arc<TokenSource>,
    retry: RetryPolicy,
}

/// Percent-encodes a path segment.
fn segment(s: &str) -> String {
    form_encode(s).replace('+', "%20")
}

impl IbmClient {
    pub fn new(http: HttpClient, tokens: Arc<TokenSource>, retry: RetryPolicy) -> Self {
        Self {
            http,
            tokens,
            retry,
        }
    }

    pub fn tokens(&self) -> &TokenSource {
        &self.tokens
    }

    /// One call, retried as the policy allows; the parsed JSON answer (`Null` for 204).
    #[allow(clippy::too_many_arguments)]
    async fn call(
        &self,
        base: &str,
        op: &'static str,
        method: http::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<(&Value, &str)>,
        idem: Idempotence,
    ) -> Result<Value, AwsError> {
        let mut url = format!("{}/api/v2/{path}", base.trim_end_matches('/'));
        if !query.is_empty() {
            let q: Vec<String> = query
                .iter()
                .map(|(k, v)| format!("{k}={}", form_encode(v)))
                .collect();
            url.push('?');
            url.push_str(&q.join("&"));
        }
        let payload = match body {
            Some((v, _)) => serde_json::to_vec(v).map_err(|_| {
                AwsError::new(
                    ErrorClass::Invalid,
                    op,
                    "InvalidBody",
                    "the request body cannot be serialized",
                )
            })?,
            None => Vec::new(),
        };
        let mut attempt = 0;
        let mut reauthorized = false;
        loop {
            attempt += 1;
            let token = self.tokens.token().await?;
            let mut req = http::Request::builder()
                .method(method.clone())
                .uri(&url)
                .header("accept", "application/json")
                .header("authorization", format!("Bearer {}", token.expose_secret()));
            if let Some((_, content_type)) = body {
                req = req.header("content-type", content_type);
            }
            let req = req.body(payload.clone()).map_err(|e| {
                AwsError::new(
                    ErrorClass::Setup,
                    op,
                    "InvalidEndpoint",
                    format!("bad instance URL {base}: {e}"),
                )
            })?;
            let (err, wait) = match self.http.send(req, TIMEOUT, MAX_BODY).await {
                Ok(r) if (200..300).contains(&r.status) => {
                    if r.body.is_empty() {
                        return Ok(Value::Null);
                    }
                    return serde_json::from_slice(&r.body)
                        .map_err(|_| errors::malformed(op, "JSON"));
                }
                Ok(r) if r.status == 401 && !reauthorized => {
                    // Revoked or expired early: one more try with a new token, not counted.
                    reauthorized = true;
                    attempt -= 1;
                    self.tokens.invalidate(&token).await;
                    continue;
                }
                Ok(r) => (
                    errors::from_reply(op, &r),
                    retry_after(r.header("retry-after")),
                ),
                Err(e) => (errors::from_http(op, &e), None),
            };
            if !self.retry.should_retry(&err, attempt, idem) {
                return Err(err);
            }
            let delay = self.retry.delay(attempt, wait);
            tracing::debug!(operation = op, attempt, error = %err, delay_ms = delay.as_millis() as u64, "retrying an IBM Secrets Manager call");
            tokio::time::sleep(delay).await;
        }
    }

    async fn get(
        &self,
        base: &str,
        op: &'static str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Value, AwsError> {
        self.call(
            base,
            op,
            http::Method::GET,
            path,
            query,
            None,
            Idempotence::Safe,
        )
        .await
    }

    fn secret(op: &'static str, v: &Value) -> Result<Secret, AwsError> {
        Ok(Secret {
            meta: SecretMeta::parse(op, v)?,
            data: SecretData::parse(op, v)?,
        })
    }

    fn version(op: &'static str, v: &Value) -> Result<Version, AwsError> {
        Ok(Version {
            meta: VersionMeta::parse(op, v)?,
            data: SecretData::parse(op, v)?,
        })
    }

    /// `POST /secrets` (a `SecretPrototype`).
    pub async fn create_secret(
        &self,
        base: &str,
        prototype: &Value,
    ) -> Result<SecretMeta, AwsError> {
        const OP: &str = "create_secret";
        let v = self
            .call(
                base,
                OP,
                http::Method::POST,
                "secrets",
                &[],
                Some((prototype, "application/json")),
                Idempotence::Create,
            )
            .await?;
        SecretMeta::parse(OP, &v)
    }

    /// `GET /secrets/{id}`: metadata and current data.
    pub async fn get_secret(&self, base: &str, id: &str) -> Result<Secret, AwsError> {
        const OP: &str = "get_secret";
        let v = self
            .get(base, OP, &format!("secrets/{}", segment(id)), &[])
            .await?;
        Self::secret(OP, &v)
    }

    pub async fn get_secret_metadata(&self, base: &str, id: &str) -> Result<SecretMeta, AwsError> {
        const OP: &str = "get_secret_metadata";
        let v = self
            .get(base, OP, &format!("secrets/{}/metadata", segment(id)), &[])
            .await?;
        SecretMeta::parse(OP, &v)
    }

    /// `PATCH /secrets/{id}/metadata` with a JSON merge patch.
    pub async fn update_secret_metadata(
        &self,
        base: &str,
        id: &str,
        patch: &Value,
    ) -> Result<SecretMeta, AwsError> {
        const OP: &str = "update_secret_metadata";
        let v = self
            .call(
                base,
                OP,
                http::Method::PATCH,
                &format!("secrets/{}/metadata", segment(id)),
                &[],
                Some((patch, "application/merge-patch+json")),
                Idempotence::Safe,
            )
            .await?;
        SecretMeta::parse(OP, &v)
    }

    pub async fn delete_secret(&self, base: &str, id: &str) -> Result<(), AwsError> {
        const OP: &str = "delete_secret";
        self.call(
            base,
            OP,
            http::Method::DELETE,
            &format!("secrets/{}", segment(id)),
            &[],
            None,
            Idempotence::Safe,
        )
        .await
        .map(drop)
    }

    /// One page of `GET /secrets`.
    pub async fn list_secrets(
        &self,
        base: &str,
        q: &ListQuery<'_>,
    ) -> Result<SecretPage, AwsError> {
        const OP: &str = "list_secrets";
        let mut query = vec![
            ("offset", q.offset.to_string()),
            ("limit", q.limit.clamp(1, 1000).to_string()),
        ];
        if let Some(s) = q.search {
            query.push(("search", s.to_owned()));
        }
        if !q.groups.is_empty() {
            query.push(("groups", q.groups.join(",")));
        }
        if !q.secret_types.is_empty() {
            query.push(("secret_types", q.secret_types.join(",")));
        }
        let v = self.get(base, OP, "secrets", &query).await?;
        SecretPage::parse(OP, &v)
    }

    /// `POST /secrets/{id}/versions` (a `SecretVersionPrototype`): the new current version.
    pub async fn create_version(
        &self,
        base: &str,
        id: &str,
        prototype: &Value,
    ) -> Result<VersionMeta, AwsError> {
        const OP: &str = "create_secret_version";
        let v = self
            .call(
                base,
                OP,
                http::Method::POST,
                &format!("secrets/{}/versions", segment(id)),
                &[],
                Some((prototype, "application/json")),
                Idempotence::Create,
            )
            .await?;
        VersionMeta::parse(OP, &v)
    }

    pub async fn list_versions(&self, base: &str, id: &str) -> Result<Vec<VersionMeta>, AwsError> {
        const OP: &str = "list_secret_versions";
        let v = self
            .get(base, OP, &format!("secrets/{}/versions", segment(id)), &[])
            .await?;
        v["versions"]
            .as_array()
            .ok_or_else(|| errors::malformed(OP, "versions"))?
            .iter()
            .map(|x| VersionMeta::parse(OP, x))
            .collect()
    }

    /// How many locks a version holds (`GET /secrets/{id}/versions/{version}/locks`); a
    /// version that does not exist holds none.
    pub async fn version_locks_total(
        &self,
        base: &str,
        id: &str,
        version: &str,
    ) -> Result<u64, AwsError> {
        const OP: &str = "list_secret_version_locks";
        let path = format!(
            "secrets/{}/versions/{}/locks",
            segment(id),
            segment(version)
        );
        match self.get(base, OP, &path, &[("limit", "1".into())]).await {
            Ok(v) => Ok(v["total_count"]
                .as_u64()
                .or_else(|| v["locks"].as_array().map(|l| l.len() as u64))
                .unwrap_or(0)),
            Err(e) if e.class == ErrorClass::NotFound => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// `GET /secrets/{id}/versions/{version}`; `version` may be `current` or `previous`.
    pub async fn get_version(
        &self,
        base: &str,
        id: &str,
        version: &str,
    ) -> Result<Version, AwsError> {
        const OP: &str = "get_secret_version";
        let v = self
            .get(
                base,
                OP,
                &format!("secrets/{}/versions/{}", segment(id), segment(version)),
                &[],
            )
            .await?;
        Self::version(OP, &v)
    }

    pub async fn get_version_metadata(
        &self,
        base: &str,
        id: &str,
        version: &str,
    ) -> Result<VersionMeta, AwsError> {
        const OP: &str = "get_secret_version_metadata";
        let v = self
            .get(
                base,
                OP,
                &format!(
                    "secrets/{}/versions/{}/metadata",
                    segment(id),
                    segment(version)
                ),
                &[],
            )
            .await?;
        VersionMeta::parse(OP, &v)
    }

    /// `PATCH /secrets/{id}/versions/{version}/metadata` with a JSON merge patch.
    pub async fn update_version_metadata(
        &self,
        base: &str,
        id: &str,
        version: &str,
        patch: &Value,
    ) -> Result<VersionMeta, AwsError> {
        const OP: &str = "update_secret_version_metadata";
        let v = self
            .call(
                base,
                OP,
                http::Method::PATCH,
                &format!(
                    "secrets/{}/versions/{}/metadata",
                    segment(id),
                    segment(version)
                ),
                &[],
                Some((patch, "application/merge-patch+json")),
                Idempotence::Safe,
            )
            .await?;
        VersionMeta::parse(OP, &v)
    }
}
