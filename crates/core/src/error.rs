//! What an AWS call failed with, kept whole: operation, error code, message, request id.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsErrorInfo {
    pub operation: &'static str,
    pub code: Option<String>,
    pub message: Option<String>,
    pub request_id: Option<String>,
}

impl fmt::Display for AwsErrorInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}",
            self.operation,
            self.code.as_deref().unwrap_or("error")
        )?;
        if let Some(m) = &self.message {
            write!(f, ": {m}")?;
        }
        if let Some(r) = &self.request_id {
            write!(f, " (request id {r})")?;
        }
        Ok(())
    }
}

/// How a failed call should be treated by whoever retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    NotFound,
    AccessDenied,
    Throttled,
    /// The request conflicts with the resource's state (e.g. a version already exists).
    Conflict,
    /// The request was refused as invalid.
    Invalid,
    /// Timeouts, connection failures, 5xx: worth retrying.
    Transient,
    /// Missing credentials, bad endpoint configuration: retrying will not help.
    Setup,
    Other,
}

/// An AWS failure, classified.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{info}")]
pub struct AwsError {
    pub class: ErrorClass,
    pub info: AwsErrorInfo,
}

impl AwsError {
    pub fn new(
        class: ErrorClass,
        operation: &'static str,
        code: &str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            class,
            info: AwsErrorInfo {
                operation,
                code: Some(code.to_owned()),
                message: Some(message.into()),
                request_id: None,
            },
        }
    }

    pub fn code(&self) -> Option<&str> {
        self.info.code.as_deref()
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self.class, ErrorClass::Throttled | ErrorClass::Transient)
    }
}
