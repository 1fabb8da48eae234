//! The IAM access token for an API key (`POST /identity/token`, grant type
//! `urn:ibm:params:oauth:grant-type:apikey`, form body), cached and shared by every call.
//!
//! As IBM's SDKs do (`ibm_cloud_sdk_core` `JWTTokenManager`): the token is refreshed once
//! 80% of its lifetime has passed, so a call never goes out with a token about to
//! expire; one exchange at a time (callers wait for the exchange in flight instead of
//! starting their own). Lifetime is taken from the answer's `expires_in` and
//! `expiration`, whichever ends first on the local clock. If a refresh fails while the
//! cached token still has a safe margin, the cached token is used and the refresh is
//! tried again on the next call.

use super::errors;
use super::retry::{retry_after, RetryPolicy};
use crate::error::{AwsError, ErrorClass};
use crate::stores::http::HttpClient;
use secrecy::{ExposeSecret, SecretString};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Mutex;
use tokio::time::Instant;

const GRANT_TYPE: &str = "urn:ibm:params:oauth:grant-type:apikey";
const TIMEOUT: Duration = Duration::from_secs(30);
const MAX_BODY: usize = 64 * 1024;
/// A cached token is not used within this much of its expiry (IBM SDKs: 10 s).
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);

/// Where the API key comes from.
#[derive(Clone)]
pub enum ApiKey {
    /// An environment variable, read at each exchange (a rotated key is picked up).
    Env(String),
    /// A key given directly (tests, or a key read from elsewhere).
    Value(SecretString),
}

impl ApiKey {
    /// Where the key comes from, for messages (never the key).
    pub fn source(&self) -> String {
        match self {
            ApiKey::Env(name) => name.clone(),
            ApiKey::Value(_) => "the configured key".to_owned(),
        }
    }

    fn read(&self) -> Result<SecretString, AwsError> {
        match self {
            ApiKey::Value(v) => Ok(v.clone()),
            ApiKey::Env(name) => match std::env::var(name) {
                Ok(v) if !v.trim().is_empty() => Ok(SecretString::from(v.trim().to_owned())),
                _ => Err(AwsError::new(
                    ErrorClass::Setup,
                    "iam_token",
                    "MissingApiKey",
                    format!("the IBM Cloud API key variable {name} is not set or empty"),
                )),
            },
        }
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKey({})", self.source())
    }
}

struct Cached {
    token: SecretString,
    /// From here on, the next call refreshes.
    refresh_at: Instant,
    /// From here on, the token is not used at all.
    stale_at: Instant,
}

/// The token cache of one API key at one IAM endpoint.
pub struct TokenSource {
    http: HttpClient,
    url: String,
    key: ApiKey,
    retry: RetryPolicy,
    cached: Mutex<Option<Cached>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("url", &self.url)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// `[0, 1]` fraction of a token's lifetime after which it is refreshed.
const REFRESH_AT: f64 = 0.8;

impl TokenSource {
    /// `iam_url` is the IAM base URL (`https://iam.cloud.ibm.com`); a URL that already
    /// ends in `/identity/token` is taken as is.
    pub fn new(http: HttpClient, iam_url: &str, key: ApiKey, retry: RetryPolicy) -> Self {
        let base = iam_url.trim_end_matches('/');
        let url = if base.ends_with("/identity/token") {
            base.to_owned()
        } else {
            format!("{base}/identity/token")
        };
        Self {
            http,
            url,
            key,
            retry,
            cached: Mutex::new(None),
        }
    }

    /// A valid token: the cached one, or a new one exchanged now.
    pub async fn token(&self) -> Result<SecretString, AwsError> {
        let mut cached = self.cached.lock().await;
        let now = Instant::now();
        if let Some(c) = cached.as_ref() {
            if now < c.refresh_at {
                return Ok(c.token.clone());
            }
        }
        match self.exchange().await {
            Ok(fresh) => {
                let token = fresh.token.clone();
                *cached = Some(fresh);
                Ok(token)
            }
            Err(e) => match cached.as_ref() {
                Some(c) if Instant::now() < c.stale_at => {
                    tracing::warn!(error = %e, "IAM token refresh failed; using the cached token until it nears expiry");
                    Ok(c.token.clone())
                }
                _ => Err(e),
            },
        }
    }

    /// Drops the cached token if it is `used` (the service refused it): the next call
    /// exchanges a new one.
    pub async fn invalidate(&self, used: &SecretString) {
        let mut cached = self.cached.lock().await;
        if cached
            .as_ref()
            .is_some_and(|c| c.token.expose_secret() == used.expose_secret())
        {
            *cached = None;
        }
    }

    async fn exchange(&self) -> Result<Cached, AwsError> {
        let key = self.key.read()?;
        let body = format!(
            "grant_type={}&apikey={}",
            form_encode(GRANT_TYPE),
            form_encode(key.expose_secret())
        );
        let mut attempt = 0;
        loop {
            attempt += 1;
            let req = http::Request::post(&self.url)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("accept", "application/json")
                .body(body.clone().into_bytes())
                .map_err(|e| {
                    AwsError::new(
                        ErrorClass::Setup,
                        "iam_token",
                        "InvalidEndpoint",
                        format!("bad IAM URL {}: {e}", self.url),
                    )
                })?;
            let sent_at = Instant::now();
            let (err, wait) = match self.http.send(req, TIMEOUT, MAX_BODY).await {
                Ok(reply) if reply.status == 200 => return parse(&reply.body, sent_at),
                Ok(reply) => (
                    redact(errors::from_iam_reply(&reply, &self.key.source()), &key),
                    retry_after(reply.header("retry-after")),
                ),
                Err(e) => (errors::from_http("iam_token", &e), None),
            };
            // An exchange changes nothing: repeat it after a throttle, a 5xx or a timeout.
            if attempt >= self.retry.max_attempts || !err.is_retryable() {
                return Err(err);
            }
            tokio::time::sleep(self.retry.delay(attempt, wait)).await;
        }
    }
}

/// A failure message never carries the key, even if a server echoed it.
fn redact(mut e: AwsError, key: &SecretString) -> AwsError {
    let k = key.expose_secret();
    if let Some(m) = e.info.message.as_mut() {
        if !k.is_empty() && m.contains(k) {
            *m = m.replace(k, "[redacted]");
        }
    }
    e
}

/// Longer than any IAM token lives (an hour): an answer claiming more is bounded, so the
/// arithmetic on `Instant` never overflows.
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

fn parse(body: &[u8], sent_at: Instant) -> Result<Cached, AwsError> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| errors::malformed("iam_token", "JSON"))?;
    let token = v["access_token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| errors::malformed("iam_token", "access_token"))?;
    let expires_in = v["expires_in"]
        .as_u64()
        .ok_or_else(|| errors::malformed("iam_token", "expires_in"))?;
    // `expiration` is absolute (epoch seconds): a token issued late in a second lives
    // less than `expires_in` from our point of view.
    let now_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let by_expiration = v["expiration"]
        .as_f64()
        .map(|exp| exp - now_epoch)
        .filter(|left| *left > 0.0);
    let lifetime = by_expiration
        .map_or(expires_in as f64, |left| left.min(expires_in as f64))
        .clamp(0.0, MAX_LIFETIME.as_secs_f64());
    let lifetime = Duration::from_secs_f64(lifetime);
    Ok(Cached {
        token: SecretString::from(token.to_owned()),
        refresh_at: sent_at + lifetime.mul_f64(REFRESH_AT),
        stale_at: sent_at + lifetime.saturating_sub(EXPIRY_MARGIN),
    })
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    /// An absurd lifetime from the token endpoint is bounded, not a panic (adversarial
    /// review of issue 17, finding 10).
    #[test]
    fn an_absurd_lifetime_is_bounded_not_a_panic() {
        let now = Instant::now();
        for body in [
            &br#"{"access_token":"t","expires_in":18446744073709551615}"#[..],
            &br#"{"access_token":"t","expires_in":3600,"expiration":1e300}"#[..],
        ] {
            let c = super::parse(body, now).expect("parsed");
            assert!(c.refresh_at <= now + super::MAX_LIFETIME);
        }
    }

    use super::*;

    #[test]
    fn form_values_are_encoded() {
        assert_eq!(form_encode("urn:ibm:x"), "urn%3Aibm%3Ax");
        assert_eq!(form_encode("a b/+é"), "a+b%2F%2B%C3%A9");
    }

    #[tokio::test]
    async fn lifetime_is_the_shorter_of_expires_in_and_expiration() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let body = format!(
            r#"{{"access_token":"t","expires_in":3600,"expiration":{}}}"#,
            now + 100
        );
        let sent = Instant::now();
        let c = parse(body.as_bytes(), sent).unwrap();
        let refresh = c.refresh_at - sent;
        assert!(
            refresh <= Duration::from_secs(80) && refresh >= Duration::from_secs(78),
            "{refresh:?}"
        );
        let body = r#"{"access_token":"t","expires_in":10}"#;
        let c = parse(body.as_bytes(), sent).unwrap();
        assert_eq!(c.refresh_at - sent, Duration::from_secs(8));
        assert!(parse(br#"{"expires_in":10}"#, sent).is_err());
    }

    #[test]
    fn a_missing_variable_is_a_setup_error_naming_it() {
        let e = ApiKey::Env("IBM_TEST_SURELY_UNSET_VAR".into())
            .read()
            .unwrap_err();
        assert_eq!(e.class, ErrorClass::Setup);
        assert!(e.to_string().contains("IBM_TEST_SURELY_UNSET_VAR"));
        assert_eq!(
            format!("{:?}", ApiKey::Value(SecretString::from("k"))),
            "ApiKey(the configured key)"
        );
    }
}
