//! Alibaba Cloud's error answers, `{RequestId, HostId, Code, Message, Recommend}` with an
//! HTTP status, as [`AwsError`]s with the class their retrier and the engine act on.

use crate::error::{AwsError, AwsErrorInfo, ErrorClass};
use crate::stores::http::HttpError;

/// The class of an error answer: by code first (Alibaba's codes are specific), by HTTP
/// status for codes not listed.
pub fn classify(operation: &str, status: u16, code: &str) -> ErrorClass {
    match code {
        // The gateway's flow control, and KMS's own QPS limit (HTTP 429).
        c if c.starts_with("Throttling") || c == "Rejected.Throttling" => ErrorClass::Throttled,
        "ServiceUnavailable"
        | "ServiceUnavailableTemporary"
        | "InternalFailure"
        | "InternalError"
        | "UnknownError" => ErrorClass::Transient,
        "Forbidden.ResourceNotFound" | "EntityNotExist.Role" => ErrorClass::NotFound,
        // PutSecretValue: "If the values are different, the request is rejected" (the
        // version exists with another value); CreateSecret: the name is taken.
        "Rejected.ResourceExist" | "Rejected.ResourceInDeleteWindow" => ErrorClass::Conflict,
        // A wrong secret key, unknown key, expired or mismatched STS token, or a clock
        // off by more than 15 minutes: retrying the same request cannot help.
        "SignatureDoesNotMatch"
        | "IncompleteSignature"
        | "InvalidAccessKeyId.NotFound"
        | "InvalidAccessKeyId.Inactive"
        | "InvalidTimeStamp.Expired"
        | "MissingSecurityToken"
        | "InvalidSecurityToken.Expired"
        | "InvalidSecurityToken.Malformed"
        | "InvalidSecurityToken.MismatchWithAccessKey" => ErrorClass::Setup,
        c if c.starts_with("Forbidden") || c == "NoPermission" || c.starts_with("AccessDenied") => {
            ErrorClass::AccessDenied
        }
        // A reused nonce: a new request (new nonce) succeeds.
        "SignatureNonceUsed" => ErrorClass::Transient,
        "InvalidVersion" | "InvalidAction.NotFound" => ErrorClass::Setup,
        _ => match status {
            403 => ErrorClass::AccessDenied,
            404 if operation == "AssumeRole" => ErrorClass::Setup,
            404 => ErrorClass::NotFound,
            409 => ErrorClass::Conflict,
            429 => ErrorClass::Throttled,
            s if s >= 500 => ErrorClass::Transient,
            400..=499 => ErrorClass::Invalid,
            _ => ErrorClass::Other,
        },
    }
}

/// An error answer (status >= 300) as an [`AwsError`]. Only the code, the message and the
/// request id are kept; the message of a signature mismatch stops before the server's
/// string to sign (a digest, but nothing a reader needs).
pub fn from_reply(operation: &'static str, status: u16, body: &[u8]) -> AwsError {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let text = |k: &str| {
        v.get(k)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    let code = text("Code").unwrap_or_else(|| format!("HTTP{status}"));
    let message = text("Message").map(|m| match m.find(" server string to sign") {
        Some(i) => m[..i].to_owned(),
        None => m,
    });
    AwsError {
        class: classify(operation, status, &code),
        info: AwsErrorInfo {
            operation,
            code: Some(code),
            message: message.or_else(|| Some(format!("HTTP status {status}"))),
            request_id: text("RequestId"),
        },
    }
}

/// A call that got no answer: timeouts and connection failures are worth retrying; a
/// request that could not even be built is a configuration problem.
pub fn from_http(operation: &'static str, e: &HttpError) -> AwsError {
    let class = match e {
        HttpError::Timeout(_) | HttpError::Transport(_) => ErrorClass::Transient,
        HttpError::TooLarge(..) => ErrorClass::Other,
        HttpError::Request(_) => ErrorClass::Setup,
    };
    AwsError::new(class, operation, "RequestFailed", e.to_string())
}

/// A 2xx answer that is not what the API documents.
pub fn malformed(operation: &'static str, what: &str) -> AwsError {
    AwsError::new(
        ErrorClass::Other,
        operation,
        "MalformedResponse",
        format!("the response has no {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_classes() {
        let c = |status, code| classify("GetSecretValue", status, code);
        assert_eq!(c(400, "Throttling.User"), ErrorClass::Throttled);
        assert_eq!(c(429, "Rejected.Throttling"), ErrorClass::Throttled);
        assert_eq!(c(500, "InternalFailure"), ErrorClass::Transient);
        assert_eq!(c(503, "Whatever"), ErrorClass::Transient);
        assert_eq!(c(404, "Forbidden.ResourceNotFound"), ErrorClass::NotFound);
        assert_eq!(c(409, "Rejected.ResourceExist"), ErrorClass::Conflict);
        assert_eq!(c(400, "SignatureDoesNotMatch"), ErrorClass::Setup);
        assert_eq!(c(404, "InvalidAccessKeyId.NotFound"), ErrorClass::Setup);
        assert_eq!(c(403, "Forbidden.NoPermission"), ErrorClass::AccessDenied);
        assert_eq!(c(400, "InvalidParameter"), ErrorClass::Invalid);
        assert_eq!(
            classify("AssumeRole", 404, "EntityNotExist.Role"),
            ErrorClass::NotFound
        );
    }

    #[test]
    fn an_error_keeps_code_message_and_request_id() {
        let e = from_reply(
            "GetSecretValue",
            400,
            br#"{"RequestId":"R-1","HostId":"h","Code":"SignatureDoesNotMatch","Message":"Specified signature does not match our calculation. server string to sign is:ACS3-HMAC-SHA256\nabc","Recommend":"x"}"#,
        );
        assert_eq!(e.class, ErrorClass::Setup);
        assert_eq!(
            e.to_string(),
            "GetSecretValue: SignatureDoesNotMatch: Specified signature does not match our calculation. (request id R-1)"
        );
        let e = from_reply("DescribeSecret", 502, b"<html>");
        assert_eq!(
            (e.class, e.code()),
            (ErrorClass::Transient, Some("HTTP502"))
        );
    }
}
