//! Errors as Alibaba Cloud's API gateway returns them: an HTTP status and a JSON body
//! `{RequestId, HostId, Code, Message, Recommend}`.

use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// The JSON body, for the request `request_id` sent to `host`.
    pub fn body(&self, request_id: &str, host: &str, product: &str) -> serde_json::Value {
        json!({
            "RequestId": request_id,
            "HostId": host,
            "Code": self.code,
            "Message": self.message,
            "Recommend": format!(
                "https://api.aliyun.com/troubleshoot?q={}&product={product}",
                self.code
            ),
        })
    }
}

// The codes and messages below are the ones Alibaba Cloud documents for the KMS API
// (each operation's "Error codes" table) and for its API gateway (signature errors).

pub fn invalid_parameter(what: impl Into<String>) -> ApiError {
    ApiError::new(400, "InvalidParameter", what)
}

pub fn missing_parameter(name: &str) -> ApiError {
    ApiError::new(
        400,
        "MissingParameter",
        format!("The input parameter \"{name}\" that is mandatory for processing this request is not supplied."),
    )
}

pub fn not_found() -> ApiError {
    ApiError::new(
        404,
        "Forbidden.ResourceNotFound",
        "The resource is not found.",
    )
}

pub fn exists() -> ApiError {
    ApiError::new(
        409,
        "Rejected.ResourceExist",
        "The resource already exists.",
    )
}

pub fn in_delete_window() -> ApiError {
    ApiError::new(
        409,
        "Rejected.ResourceInDeleteWindow",
        "The secret is planned to be deleted.",
    )
}

pub fn limit_exceeded(what: &str) -> ApiError {
    ApiError::new(
        400,
        "Rejected.LimitExceeded",
        format!("The {what} quota is exceeded."),
    )
}
