//! Maps SDK errors to [`AwsError`], keeping code, message and request id, in one line.

use crate::error::{AwsError, AwsErrorInfo, ErrorClass};
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::operation::RequestId;

/// The error's cause chain on one line, without the debug dump the SDK appends.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = e.source();
    while let Some(err) = cur {
        let text = err
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = err.source();
    }
    if parts.is_empty() {
        parts.push(e.to_string());
    }
    parts.join(": ")
}

/// An error and its causes on one line (the credential chain nests several).
pub(crate) fn one_line_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let own = e
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let causes = chain(e);
    if causes == own || causes.contains(&own) {
        causes
    } else {
        format!("{own}: {causes}")
    }
}

fn class_of(code: &str, status: Option<u16>) -> ErrorClass {
    match code {
        "ResourceNotFoundException"
        | "ClusterNotFoundException"
        | "ServiceNotFoundException"
        | "NoSuchEntity"
        | "NoSuchEntityException" => ErrorClass::NotFound,
        "AccessDeniedException"
        | "AccessDenied"
        | "UnrecognizedClientException"
        | "ExpiredTokenException"
        | "InvalidClientTokenId"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch"
        | "AccessDeniedForDependencyException"
        | "DecryptionFailure" => ErrorClass::AccessDenied,
        "ThrottlingException"
        | "Throttling"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "ProvisionedThroughputExceededException" => ErrorClass::Throttled,
        "ResourceExistsException" | "EntityAlreadyExists" | "LimitExceeded" => ErrorClass::Conflict,
        "InvalidRequestException"
        | "InvalidParameterException"
        | "ValidationException"
        | "InvalidParameterValue"
        | "ClientException"
        | "MalformedPolicyDocumentException"
        | "LimitExceededException"
        | "EncryptionFailure"
        | "PlatformTaskDefinitionIncompatibilityException"
        | "UnsupportedFeatureException"
        | "ServiceNotActiveException" => ErrorClass::Invalid,
        "InternalServiceError"
        | "InternalFailure"
        | "ServerException"
        | "ServiceUnavailable"
        | "ServiceUnavailableException"
        | "InternalServerError" => ErrorClass::Transient,
        _ => match status {
            Some(s) if s >= 500 => ErrorClass::Transient,
            Some(404) => ErrorClass::NotFound,
            Some(403) => ErrorClass::AccessDenied,
            Some(429) => ErrorClass::Throttled,
            _ => ErrorClass::Other,
        },
    }
}

/// Maps any SDK error of any AWS service crate (they share the smithy error types).
pub fn map_sdk_error<E, R>(operation: &'static str, e: SdkError<E, R>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + HttpStatus + Send + Sync + 'static,
{
    let request_id = match &e {
        SdkError::ServiceError(se) => se.err().meta().request_id().map(str::to_owned),
        _ => None,
    };
    let info = |code: &str, message: String| AwsErrorInfo {
        operation,
        code: Some(code.to_owned()),
        message: Some(message),
        request_id: request_id.clone(),
    };
    match &e {
        SdkError::ServiceError(se) => {
            let status = Some(se.raw().status_code());
            let code = se.err().code().unwrap_or("UnknownError").to_owned();
            let message = se.err().message().unwrap_or("").to_owned();
            let class = class_of(&code, status);
            AwsError {
                class,
                info: info(&code, message),
            }
        }
        SdkError::TimeoutError(_) => AwsError {
            class: ErrorClass::Transient,
            info: info("Timeout", "the request timed out".into()),
        },
        SdkError::DispatchFailure(d) => {
            let text = chain(&e);
            if text.contains("no credentials")
                || text.contains("CredentialsNotLoaded")
                || text.contains("credential provider")
            {
                return AwsError {
                    class: ErrorClass::Setup,
                    info: info(
                        "NoCredentials",
                        format!(
                            "no AWS credentials found ({})",
                            text.replace("the credential provider was not enabled: ", "")
                        ),
                    ),
                };
            }
            let class = if d.is_io() || d.is_timeout() || d.is_other() {
                ErrorClass::Transient
            } else {
                ErrorClass::Setup
            };
            AwsError {
                class,
                info: info("DispatchFailure", text),
            }
        }
        SdkError::ConstructionFailure(_) => AwsError {
            // Usually no credentials or no region: retrying will not fix it.
            class: ErrorClass::Setup,
            info: info("ConfigurationError", chain(&e)),
        },
        SdkError::ResponseError(_) => AwsError {
            class: ErrorClass::Transient,
            info: info("MalformedResponse", chain(&e)),
        },
        _ => AwsError {
            class: ErrorClass::Other,
            info: info("UnknownError", chain(&e)),
        },
    }
}

/// The HTTP status of a raw response, for classifying errors without a known code.
pub trait HttpStatus {
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}
