//! ECS-style errors: an HTTP status plus the `__type` code clients dispatch on.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsError {
    /// 400 for client errors, 500 for server ones.
    pub status: u16,
    /// The ECS error code, e.g. `ServiceNotFoundException`.
    pub code: &'static str,
    pub message: String,
}

impl EcsError {
    fn client(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: 400,
            code,
            message: message.into(),
        }
    }

    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::client("InvalidParameterException", message)
    }

    pub fn client_exception(message: impl Into<String>) -> Self {
        Self::client("ClientException", message)
    }

    pub fn cluster_not_found() -> Self {
        Self::client("ClusterNotFoundException", "Cluster not found.")
    }

    pub fn service_not_found() -> Self {
        Self::client("ServiceNotFoundException", "Service not found.")
    }

    pub fn throttling() -> Self {
        Self::client("ThrottlingException", "Rate exceeded")
    }

    pub fn unknown_operation(target: &str) -> Self {
        Self::client(
            "UnknownOperationException",
            format!("Unknown operation {target}"),
        )
    }

    pub fn serialization(message: impl Into<String>) -> Self {
        Self::client("SerializationException", message)
    }

    pub fn server(message: impl Into<String>) -> Self {
        Self {
            status: 500,
            code: "ServerException",
            message: message.into(),
        }
    }
}

impl fmt::Display for EcsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for EcsError {}
