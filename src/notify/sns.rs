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
}

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

/// `Subject`: at most 100 ASCII characters, no line breaks (SNS refuses others).
pub fn subject(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                ' '
            }
        })
        .take(100)
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
        let creds = provider
            .provide_credentials()
            .await
            .map_err(|e| format!("AWS credentials for SNS could not be loaded: {e}"))?;
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

    #[test]
    fn subjects_are_short_ascii_lines() {
        let s = subject(&format!("a\nb é {}", "x".repeat(200)));
        assert_eq!(s.len(), 100);
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
