//! Ready-made AWS errors, classified the way the adapters classify the real ones
//! (`src/aws/errors.rs` of the root crate): a fake or a fault wrapper returning one of
//! these looks to the engine exactly like the SDK error it stands for.

use crate::ACCOUNT_ID;
use rotator_core::error::{AwsError, ErrorClass};

/// `ThrottlingException` (retryable).
pub fn throttled(operation: &'static str) -> AwsError {
    AwsError::new(
        ErrorClass::Throttled,
        operation,
        "ThrottlingException",
        "Rate exceeded",
    )
}

/// A 5xx answer (`InternalServiceError` as Secrets Manager names it; retryable).
pub fn server_error(operation: &'static str) -> AwsError {
    AwsError::new(
        ErrorClass::Transient,
        operation,
        "InternalServiceError",
        "An error occurred on the server side.",
    )
}

/// What the adapters make of an SDK timeout (retryable): the caller cannot know whether
/// the request took effect.
pub fn timeout(operation: &'static str) -> AwsError {
    AwsError::new(
        ErrorClass::Transient,
        operation,
        "Timeout",
        "the request timed out",
    )
}

/// `AccessDeniedException` for the rotator's role.
pub fn access_denied(operation: &'static str) -> AwsError {
    AwsError::new(
        ErrorClass::AccessDenied,
        operation,
        "AccessDeniedException",
        format!("User: arn:aws:sts::{ACCOUNT_ID}:assumed-role/rotator/x is not authorized to perform: {operation}"),
    )
}

/// The code of [`crash`] errors.
pub const CRASH: &str = "Crash";

/// An injected "the process died": class `Other`, code [`CRASH`]. Not an AWS error; the
/// engine treats it like any unknown failure, and a test then starts a new engine on the
/// same stored state.
pub fn crash(operation: &'static str) -> AwsError {
    AwsError::new(
        ErrorClass::Other,
        operation,
        CRASH,
        "the rotator process died (simulated)",
    )
}

/// `ResourceNotFoundException` as Secrets Manager words it for a missing secret.
pub fn secret_not_found(operation: &'static str) -> AwsError {
    AwsError::new(
        ErrorClass::NotFound,
        operation,
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret.",
    )
}
