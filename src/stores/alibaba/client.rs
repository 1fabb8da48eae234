//! One RPC call over HTTP: sign (V3), send within a timeout, read the JSON answer, and
//! retry throttling, 5xx and timeouts a bounded number of times with jittered backoff.

use super::credentials::Credentials;
use super::errors;
use super::signing::{authorization, canonical_query, sha256_hex, Signable};
use crate::error::{AwsError, ErrorClass};
use crate::stores::http::HttpClient;
use std::time::Duration;

/// The largest answer read (a secret value is at most 30 KiB; list pages are small).
const MAX_REPLY: usize = 1024 * 1024;

/// Where calls go: `https://kms.cn-hangzhou.aliyuncs.com`, or a configured URL.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    scheme: String,
    authority: String,
}

impl Endpoint {
    /// `https://host[:port]`, `http://host:port` (tests), or a bare host (HTTPS).
    pub fn parse(s: &str) -> Result<Self, AwsError> {
        let (scheme, rest) = match s.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => ("https".to_owned(), s),
        };
        let authority = rest.trim_end_matches('/');
        let ok = matches!(scheme.as_str(), "http" | "https")
            && !authority.is_empty()
            && !authority.contains(['/', '?', '#', '@', ' ']);
        if !ok {
            return Err(AwsError::new(
                ErrorClass::Setup,
                "Endpoint",
                "InvalidEndpoint",
                format!("not an endpoint URL: {s:?} (expected https://host[:port])"),
            ));
        }
        Ok(Self {
            scheme,
            authority: authority.to_owned(),
        })
    }

    /// `https://<authority>`, for a known-good host.
    pub(crate) fn https(authority: &str) -> Self {
        Self {
            scheme: "https".into(),
            authority: authority.into(),
        }
    }

    pub fn authority(&self) -> &str {
        &self.authority
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.authority)
    }
}

/// Timeouts and retries.
#[derive(Clone, Copy, Debug)]
pub struct Tuning {
    /// One attempt, connection to last byte.
    pub timeout: Duration,
    /// Attempts in all (1: no retry).
    pub attempts: u32,
    /// The first retry waits up to this long; each next one up to twice as long.
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            attempts: 4,
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// A failed call, with the HTTP status when there was an answer.
#[derive(Debug, Clone)]
pub struct CallError {
    pub status: Option<u16>,
    pub error: AwsError,
}

impl From<CallError> for AwsError {
    fn from(e: CallError) -> Self {
        e.error
    }
}

impl From<AwsError> for CallError {
    fn from(error: AwsError) -> Self {
        Self {
            status: None,
            error,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Transport {
    http: HttpClient,
    pub tuning: Tuning,
}

/// 16 random bytes in hex: the signature nonce.
fn nonce() -> String {
    let mut b = [0u8; 16];
    // Without the OS generator, a clock-derived nonce still differs per request.
    if getrandom::fill(&mut b).is_err() {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        b = n.to_le_bytes();
    }
    super::signing::hex(&b)
}

/// A uniform draw in [0, 1) for the backoff's jitter.
fn unit() -> f64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

impl Transport {
    pub fn new(tuning: Tuning) -> Self {
        Self {
            http: HttpClient::new(),
            tuning,
        }
    }

    /// The wait before retry `n` (1-based): "equal jitter", half fixed, half random, of
    /// an exponentially growing, capped step.
    fn backoff(&self, n: u32) -> Duration {
        let step = self
            .tuning
            .backoff
            .saturating_mul(1u32 << n.saturating_sub(1).min(16))
            .min(self.tuning.max_backoff);
        step / 2 + step.mul_f64(unit() / 2.0)
    }

    /// Calls `action` (API `version`) with `query` in the URL and `form` in the body (the
    /// body is where secret values go: URLs end up in proxies' logs).
    pub async fn call(
        &self,
        endpoint: &Endpoint,
        action: &'static str,
        version: &str,
        query: &[(&str, String)],
        form: &[(&str, String)],
        creds: &Credentials,
    ) -> Result<serde_json::Value, CallError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .once(endpoint, action, version, query, form, creds)
                .await
            {
                Ok(v) => return Ok(v),
                Err(e) if e.error.is_retryable() && attempt < self.tuning.attempts => {
                    let wait = self.backoff(attempt);
                    tracing::debug!(action, %endpoint, attempt, error = %e.error, ?wait, "retrying");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn once(
        &self,
        endpoint: &Endpoint,
        action: &'static str,
        version: &str,
        query: &[(&str, String)],
        form: &[(&str, String)],
        creds: &Credentials,
    ) -> Result<serde_json::Value, CallError> {
        let query = canonical_query(query);
        let body = canonical_query(form).into_bytes();
        let payload_hash = sha256_hex(&body);
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), endpoint.authority.clone()),
            (
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            ),
            ("x-acs-action".into(), action.into()),
            ("x-acs-version".into(), version.into()),
            (
                "x-acs-date".into(),
                chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            ),
            ("x-acs-signature-nonce".into(), nonce()),
            ("x-acs-content-sha256".into(), payload_hash.clone()),
        ];
        if let Some(token) = creds.token() {
            headers.push(("x-acs-security-token".into(), token.to_owned()));
        }
        let auth = authorization(
            &Signable {
                method: "POST",
                path: "/",
                query: &query,
                headers: &headers,
                payload_hash: &payload_hash,
            },
            &creds.access_key_id,
            creds.secret(),
        );
        let mut req = http::Request::builder()
            .method("POST")
            .uri(format!("{endpoint}/?{query}"))
            .header("accept", "application/json")
            .header("authorization", auth);
        for (k, v) in &headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req.body(body).map_err(|e| {
            AwsError::new(ErrorClass::Setup, action, "RequestFailed", e.to_string())
        })?;
        let reply = self
            .http
            .send(req, self.tuning.timeout, MAX_REPLY)
            .await
            .map_err(|e| errors::from_http(action, &e))?;
        if !(200..300).contains(&reply.status) {
            return Err(CallError {
                status: Some(reply.status),
                error: errors::from_reply(action, reply.status, &reply.body),
            });
        }
        serde_json::from_slice(&reply.body)
            .map_err(|_| errors::malformed(action, "JSON body").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_with_or_without_a_scheme() {
        let e = Endpoint::parse("kms.cn-hangzhou.aliyuncs.com").unwrap();
        assert_eq!(e.to_string(), "https://kms.cn-hangzhou.aliyuncs.com");
        let e = Endpoint::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(e.authority(), "127.0.0.1:8080");
        assert!(Endpoint::parse("ftp://x").is_err());
        assert!(Endpoint::parse("https://a/b").is_err());
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let t = Transport::new(Tuning {
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            ..Tuning::default()
        });
        for _ in 0..50 {
            let b1 = t.backoff(1);
            assert!(b1 >= Duration::from_millis(50) && b1 <= Duration::from_millis(100));
            let b5 = t.backoff(5);
            assert!(b5 >= Duration::from_millis(150) && b5 <= Duration::from_millis(300));
        }
    }
}
