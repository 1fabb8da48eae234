//! IBM answers and transport failures as the core's [`AwsError`] classes. Secrets
//! Manager errors follow the IBM API Handbook (`{"errors": [{"code", "message"}],
//! "trace"}`), IAM's its own (`errorCode`, `errorMessage`). Messages keep IBM's code,
//! message and trace id, never a request body, a value, a token or the API key.

use crate::error::{AwsError, AwsErrorInfo, ErrorClass};
use crate::stores::http::{HttpError, Reply};

/// Longest server message kept in an error.
const MAX_MESSAGE: usize = 300;

/// The class of a Secrets Manager HTTP status.
pub fn class_of_status(status: u16) -> ErrorClass {
    match status {
        400 | 405 | 413 | 415 | 422 => ErrorClass::Invalid,
        401 | 403 => ErrorClass::AccessDenied,
        404 => ErrorClass::NotFound,
        // 412: a locked version ("the secret version is locked").
        409 | 412 => ErrorClass::Conflict,
        429 => ErrorClass::Throttled,
        500..=599 => ErrorClass::Transient,
        _ => ErrorClass::Other,
    }
}

fn clip(s: &str) -> String {
    let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(MAX_MESSAGE) {
        Some((i, _)) => format!("{}...", &one_line[..i]),
        None => one_line,
    }
}

/// A Secrets Manager error answer.
pub fn from_reply(operation: &'static str, reply: &Reply) -> AwsError {
    let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
    let first = &body["errors"][0];
    let code = first["code"]
        .as_str()
        .map_or_else(|| format!("HTTP{}", reply.status), str::to_owned);
    let message = first["message"]
        .as_str()
        .map_or_else(|| format!("HTTP status {}", reply.status), clip);
    let request_id = body["trace"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| reply.header("x-correlation-id").map(str::to_owned));
    AwsError {
        class: class_of_status(reply.status),
        info: AwsErrorInfo {
            operation,
            code: Some(code),
            message: Some(message),
            request_id,
        },
    }
}

/// An IAM token endpoint error answer. A refused key (400/401/403) is AccessDenied: a
/// retry with the same key cannot help. `key_env` names where the key came from.
pub fn from_iam_reply(reply: &Reply, key_env: &str) -> AwsError {
    let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
    let code = body["errorCode"]
        .as_str()
        .map_or_else(|| format!("HTTP{}", reply.status), str::to_owned);
    let what = body["errorMessage"]
        .as_str()
        .map_or_else(|| format!("HTTP status {}", reply.status), clip);
    let class = match reply.status {
        400 | 401 | 403 => ErrorClass::AccessDenied,
        s => class_of_status(s),
    };
    let request_id = body["context"]["requestId"].as_str().map(str::to_owned);
    AwsError {
        class,
        info: AwsErrorInfo {
            operation: "iam_token",
            code: Some(code),
            message: Some(format!("IAM refused the API key from {key_env}: {what}")),
            request_id,
        },
    }
}

/// No answer: a timeout or a connection failure is worth retrying; a request that could
/// not be built is a setup problem (a bad instance URL).
pub fn from_http(operation: &'static str, e: &HttpError) -> AwsError {
    let class = match e {
        HttpError::Timeout(_) | HttpError::Transport(_) => ErrorClass::Transient,
        HttpError::Request(_) => ErrorClass::Setup,
        HttpError::TooLarge(..) => ErrorClass::Other,
    };
    let code = match e {
        HttpError::Timeout(_) => "Timeout",
        HttpError::Transport(_) => "ConnectionError",
        HttpError::Request(_) => "InvalidEndpoint",
        HttpError::TooLarge(..) => "ResponseTooLarge",
    };
    AwsError::new(class, operation, code, e.to_string())
}

/// An answer that lacks what the documentation promises.
pub fn malformed(operation: &'static str, what: &str) -> AwsError {
    AwsError::new(
        ErrorClass::Other,
        operation,
        "MalformedResponse",
        format!("the response has no valid {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("x-correlation-id".into(), "hdr-trace".into())],
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn handbook_errors_keep_code_message_and_trace() {
        let e = from_reply(
            "get_secret",
            &reply(
                404,
                r#"{"errors":[{"code":"not_found","message":"Secret not found."}],"trace":"t-1","status_code":404}"#,
            ),
        );
        assert_eq!(e.class, ErrorClass::NotFound);
        assert_eq!(
            e.to_string(),
            "get_secret: not_found: Secret not found. (request id t-1)"
        );
        let e = from_reply("create_secret_version", &reply(412, "not json"));
        assert_eq!(e.class, ErrorClass::Conflict);
        assert_eq!(e.code(), Some("HTTP412"));
        assert_eq!(e.info.request_id.as_deref(), Some("hdr-trace"));
        for (s, c) in [
            (400, ErrorClass::Invalid),
            (401, ErrorClass::AccessDenied),
            (409, ErrorClass::Conflict),
            (429, ErrorClass::Throttled),
            (503, ErrorClass::Transient),
        ] {
            assert_eq!(class_of_status(s), c, "{s}");
        }
    }

    #[test]
    fn iam_refusals_are_access_denied_and_name_the_variable() {
        let e = from_iam_reply(
            &reply(
                400,
                r#"{"errorCode":"BXNIM0415E","errorMessage":"Provided API key could not be found.","context":{"requestId":"r-1"}}"#,
            ),
            "IBMCLOUD_API_KEY",
        );
        assert_eq!(e.class, ErrorClass::AccessDenied);
        assert_eq!(
            e.to_string(),
            "iam_token: BXNIM0415E: IAM refused the API key from IBMCLOUD_API_KEY: Provided API key could not be found. (request id r-1)"
        );
    }
}
