//! The HTTP client of the stores that have no AWS SDK (Alibaba Cloud KMS, IBM Cloud
//! Secrets Manager): the AWS SDK's own connector (hyper, rustls on aws-lc-rs, the
//! platform's roots), so no second HTTP/TLS stack is compiled into the binary.

use aws_smithy_async::rt::sleep::{SharedAsyncSleep, TokioSleep};
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use bytes::Bytes;
use std::time::Duration;

/// A reply read whole (bounded by the caller's limit).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a call got no reply. Messages name the host and what failed, never a body.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The reply's status came (the second field), its body was too large.
    #[error("the reply is larger than {0} bytes")]
    TooLarge(usize, u16),
    #[error("bad request: {0}")]
    Request(String),
    #[error("{0}")]
    Transport(String),
}

/// Cheap to clone: one connection pool shared by its clones.
#[derive(Clone, Debug)]
pub struct HttpClient {
    conn: SharedHttpConnector,
}

impl HttpClient {
    pub fn new() -> Self {
        let settings = HttpConnectorSettings::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(30))
            .build();
        let conn = aws_smithy_http_client::default_connector(
            &settings,
            Some(SharedAsyncSleep::new(TokioSleep::new())),
        )
        .expect("the rustls-aws-lc feature of aws-smithy-http-client is enabled");
        Self { conn }
    }

    /// Sends one request and reads the whole reply, at most `max_body` bytes, all within
    /// `timeout`.
    pub async fn send(
        &self,
        req: http::Request<Vec<u8>>,
        timeout: Duration,
        max_body: usize,
    ) -> Result<Reply, HttpError> {
        let req = req.map(SdkBody::from);
        let req = HttpRequest::try_from(req).map_err(|e| HttpError::Request(e.to_string()))?;
        let call = async {
            let resp = self
                .conn
                .call(req)
                .await
                .map_err(|e| HttpError::Transport(one_line(&e)))?;
            let status = resp.status().as_u16();
            let headers = resp
                .headers()
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
                .collect();
            let mut stream = ByteStream::new(resp.into_body());
            let mut body = Vec::new();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| HttpError::Transport(one_line(&e)))?;
                if body.len() + chunk.len() > max_body {
                    return Err(HttpError::TooLarge(max_body, status));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Reply {
                status,
                headers,
                body: Bytes::from(body),
            })
        };
        tokio::time::timeout(timeout, call)
            .await
            .map_err(|_| HttpError::Timeout(timeout))?
    }
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

/// An error and its sources on one line (the connector's errors nest several deep).
fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        src = s.source();
    }
    out
}
