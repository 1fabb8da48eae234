//! SNS: the Query API's `Publish`, signed with SigV4 (no SNS SDK: it would add megabytes
//! to the binary for one call). Credentials come from the daemon's AWS provider chain
//! (`[aws]`, the default chain, and `role_arn` assumed through STS).

use crate::stores::alibaba::signing::percent_encode;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use std::time::SystemTime;

/// One topic and how to reach it.
pub struct Topic {
    pub arn: String,
    pub region: String,
    /// `https://sns.REGION.amazonaws.com` unless `endpoint` or `AWS_ENDPOINT_URL_SNS` /
    /// `AWS_ENDPOINT_URL` says otherwise.
    pub endpoint: String,
    pub credentials: Option<SharedCredentialsProvider>,
    /// The last credentials loaded: the SDK config's provider does not cache (the SDK
    /// clients' identity cache does), and an AssumeRole per event would be throttled.
    pub cached: tokio::sync::Mutex<Option<aws_credential_types::Credentials>>,
}

/// How long loading credentials may take (STS, IMDS) before the attempt fails.
const CREDENTIALS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Credentials this close to their expiry are loaded again.
const CREDENTIALS_MARGIN: std::time::Duration = std::time::Duration::from_secs(300);

/// The endpoint for `region`: configured, else the SDK's environment overrides, else AWS's.
pub fn endpoint(configured: Option<&str>, region: &str, arn: &str) -> String {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let url = configured
        .map(str::to_owned)
        .or_else(|| env("AWS_ENDPOINT_URL_SNS"))
        .or_else(|| env("AWS_ENDPOINT_URL"))
        .unwrap_or_else(|| {
            let suffix = if arn.starts_with("arn:aws-cn:") {
                "amazonaws.com.cn"
            } else {
                "amazonaws.com"
            };
            format!("https://sns.{region}.{suffix}")
        });
    let url = url.trim_end_matches('/').to_owned();
    format!("{url}/")
}

/// `Subject`: fewer than 100 ASCII characters, no line breaks (SNS refuses others).
pub fn subject(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                ' '
            }
        })
        .take(99)
        .collect()
}

/// The form body of `Publish` (message attributes `kind` and `secret`, for filter
/// policies on subscriptions).
pub fn publish_form(arn: &str, subject: &str, message: &str, kind: &str, secret: &str) -> String {
    let pairs = [
        ("Action", "Publish"),
        ("Version", "2010-03-31"),
        ("TopicArn", arn),
        ("Subject", subject),
        ("Message", message),
        ("MessageAttributes.entry.1.Name", "kind"),
        ("MessageAttributes.entry.1.Value.DataType", "String"),
        ("MessageAttributes.entry.1.Value.StringValue", kind),
        ("MessageAttributes.entry.2.Name", "secret"),
        ("MessageAttributes.entry.2.Value.DataType", "String"),
        ("MessageAttributes.entry.2.Value.StringValue", secret),
    ];
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

impl Topic {
    /// The signed `Publish` request carrying `form`, signed at `now`.
    pub async fn request(
        &self,
        form: &[u8],
        now: SystemTime,
    ) -> Result<http::Request<Vec<u8>>, String> {
        use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
        let uri: http::Uri = self
            .endpoint
            .parse()
            .map_err(|_| "the SNS endpoint is not a valid URL".to_owned())?;
        let host = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        let mut req = http::Request::builder()
            .method("POST")
            .uri(uri)
            .header("host", &host)
            .header(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .header("user-agent", super::USER_AGENT)
            .body(form.to_vec())
            .map_err(|e| format!("cannot build the SNS request: {e}"))?;
        let Some(provider) = &self.credentials else {
            return Err("no AWS credentials for SNS".into());
        };
        let mut cached = self.cached.lock().await;
        let fresh = cached.as_ref().filter(|c| {
            c.expiry()
                .is_none_or(|e| e > SystemTime::now() + CREDENTIALS_MARGIN)
        });
        let creds = match fresh {
            Some(c) => c.clone(),
            None => {
                let c = tokio::time::timeout(CREDENTIALS_TIMEOUT, provider.provide_credentials())
                    .await
                    .map_err(|_| "AWS credentials for SNS did not load within 30s".to_owned())?
                    .map_err(|e| format!("AWS credentials for SNS could not be loaded: {e}"))?;
                *cached = Some(c.clone());
                c
            }
        };
        drop(cached);
        let identity = creds.into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("sns")
            .time(now)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| format!("cannot sign the SNS request: {e}"))?
            .into();
        let headers: Vec<(String, String)> = req
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let signable = SignableRequest::new(
            "POST",
            self.endpoint.as_str(),
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(form),
        )
        .map_err(|e| format!("cannot sign the SNS request: {e}"))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| format!("cannot sign the SNS request: {e}"))?
            .into_parts();
        instructions.apply_to_request_http1x(&mut req);
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts the loads; answers credentials valid for an hour.
    #[derive(Debug, Default, Clone)]
    struct Counting(std::sync::Arc<std::sync::atomic::AtomicUsize>);

    impl aws_credential_types::provider::ProvideCredentials for Counting {
        fn provide_credentials<'a>(
            &'a self,
        ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            aws_credential_types::provider::future::ProvideCredentials::ready(Ok(
                aws_credential_types::Credentials::new(
                    "AKIDEXAMPLE",
                    "secret",
                    Some("token".into()),
                    Some(SystemTime::now() + std::time::Duration::from_secs(3600)),
                    "test",
                ),
            ))
        }
    }

    /// An AssumeRole (or IMDS call) per event would be throttled: the credentials are
    /// loaded once and reused until close to their expiry.
    #[tokio::test]
    async fn credentials_are_loaded_once_for_many_publishes() {
        let counting = Counting::default();
        let topic = Topic {
            arn: "arn:aws:sns:eu-west-1:123456789012:rotations".into(),
            region: "eu-west-1".into(),
            endpoint: "https://sns.eu-west-1.amazonaws.com/".into(),
            credentials: Some(SharedCredentialsProvider::new(counting.clone())),
            cached: Default::default(),
        };
        for _ in 0..3 {
            let req = topic
                .request(b"Action=Publish", SystemTime::now())
                .await
                .unwrap();
            assert!(req.headers().contains_key("authorization"));
        }
        assert_eq!(counting.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn subjects_are_short_ascii_lines() {
        let s = subject(&format!("a\nb é {}", "x".repeat(200)));
        assert_eq!(s.len(), 99);
        assert!(s.starts_with("a b   x"));
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            endpoint(Some("http://127.0.0.1:5000"), "eu-west-1", "arn:aws:sns:x"),
            "http://127.0.0.1:5000/"
        );
    }

    #[test]
    fn form_is_percent_encoded() {
        let f = publish_form(
            "arn:aws:sns:eu-west-1:123456789012:t",
            "s j",
            "{\"a\":1}",
            "failed",
            "db",
        );
        assert!(f.starts_with("Action=Publish&Version=2010-03-31&TopicArn=arn%3Aaws%3Asns%3Aeu-west-1%3A123456789012%3At&Subject=s%20j&Message=%7B%22a%22%3A1%7D"));
        assert!(f.contains("MessageAttributes.entry.1.Value.StringValue=failed"));
    }
}
