//! The awsJson1_1 endpoint: `POST /` with `X-Amz-Target`.

mod input;
mod ops;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

pub use ops::Operation;

use crate::error::EcsError;
use crate::server::AppState;

const TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113.";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

pub async fn handle(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let request_id = app.request_id();
    let result = call(&app, &headers, &body).await;
    respond(result, &request_id)
}

async fn call(app: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Value, EcsError> {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let op = target
        .strip_prefix(TARGET_PREFIX)
        .and_then(Operation::from_name)
        .ok_or_else(|| EcsError::unknown_operation(target))?;
    app.calls.count(op.name());

    let verdict = crate::lock(&app.faults).judge();
    if !verdict.delay.is_zero() {
        tokio::time::sleep(verdict.delay).await;
    }
    if let Some(error) = verdict.error {
        return Err(error);
    }

    let input = parse_body(body)?;
    let mut sim = crate::lock(&app.sim);
    sim.advance_all();
    op.run(&mut sim, input)
}

/// An empty body means no input, as some clients send for input-less calls.
fn parse_body(body: &[u8]) -> Result<Value, EcsError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(EcsError::serialization(
            "Request body must be a JSON object.",
        )),
        Err(e) => Err(EcsError::serialization(format!("Malformed JSON: {e}"))),
    }
}

fn respond(result: Result<Value, EcsError>, request_id: &str) -> Response {
    let (status, body) = match result {
        Ok(v) => (StatusCode::OK, v),
        Err(e) => (
            StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
            json!({ "__type": e.code, "message": e.message }),
        ),
    };
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        assert_eq!(parse_body(b"").unwrap(), json!({}));
        assert_eq!(parse_body(b" {\"a\":1} ").unwrap()["a"], 1);
        assert_eq!(parse_body(b"{").unwrap_err().code, "SerializationException");
        assert_eq!(
            parse_body(b"[]").unwrap_err().code,
            "SerializationException"
        );
    }
}
