//! Errors as IBM Cloud APIs answer them: the API Handbook's error container
//! (`{"errors": [{"code", "message", "more_info"}], "trace", "status_code"}`) for
//! Secrets Manager, and IAM's own shape (`errorCode`, `errorMessage`, `context`) for the
//! token endpoint.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

const MORE_INFO: &str = "https://cloud.ibm.com/apidocs/secrets-manager/secrets-manager-v2";

/// A Secrets Manager error: status, handbook code (snake case) and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header (429 and 503 only).
    pub retry_after: Option<u64>,
}

impl SmError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "bad_request", message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, "unauthorized", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "not_found", message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, "conflict", message)
    }
    /// A locked version (IBM: "412 Precondition Failed ... the secret version is locked").
    pub fn locked() -> Self {
        Self::new(
            412,
            "precondition_failed",
            "The requested action can't be completed because the secret version is locked.",
        )
    }
    pub fn too_many_requests(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                429,
                "too_many_requests",
                "Rate limit exceeded. Try again later.",
            )
        }
    }
    pub fn server(status: u16) -> Self {
        let (code, message) = match status {
            502 => ("bad_gateway", "Bad gateway."),
            503 => (
                "service_unavailable",
                "The service is temporarily unavailable.",
            ),
            504 => ("gateway_timeout", "Gateway timeout."),
            _ => ("internal_server_error", "An internal error occurred."),
        };
        Self::new(status, code, message)
    }

    pub fn into_response(self, trace: &str) -> Response {
        let body = json!({
            "errors": [{"code": self.code, "message": self.message, "more_info": MORE_INFO}],
            "trace": trace,
            "status_code": self.status,
        });
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut r = (status, axum::Json(body)).into_response();
        if let Ok(v) = HeaderValue::from_str(trace) {
            r.headers_mut().insert("x-correlation-id", v);
        }
        if let Some(s) = self.retry_after {
            r.headers_mut().insert("retry-after", HeaderValue::from(s));
        }
        r
    }
}

/// An IAM token endpoint error (IAM's `BXNIM...` codes).
pub fn iam_error(status: u16, code: &str, message: &str, trace: &str) -> Response {
    let body = json!({
        "errorCode": code,
        "errorMessage": message,
        "context": {"requestId": trace, "requestType": "incoming.OIDC_Token"},
    });
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, axum::Json(body)).into_response()
}
