//! One API request: parameters, signature, faults, then the operation.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::Value;

use crate::auth::Request;
use crate::error::ApiError;
use crate::params::Params;
use crate::server::AppState;
use crate::{kms, sts};

/// The largest request body read (KMS secret values are at most 30 KiB).
pub const MAX_BODY: usize = 256 * 1024;

fn pairs(raw: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(raw)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub async fn handle(
    State(app): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let headers: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_ascii_lowercase(), v.to_str().ok()?.to_owned())))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let host = header("host").unwrap_or("localhost").to_owned();
    let query = pairs(uri.query().unwrap_or("").as_bytes());
    let is_form =
        header("content-type").is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let form = if is_form { pairs(&body) } else { Vec::new() };
    let req = Request {
        method: method.as_str(),
        path: uri.path(),
        query: &query,
        form: &form,
        headers: &headers,
        body: &body,
    };
    // V3 names the operation in headers, the older signature in parameters.
    let action = header("x-acs-action")
        .or_else(|| req.param("Action"))
        .unwrap_or("")
        .to_owned();
    let version = header("x-acs-version")
        .or_else(|| req.param("Version"))
        .unwrap_or("")
        .to_owned();
    let product = if version == sts::VERSION {
        "Sts"
    } else {
        "Kms"
    };

    let mut sim = crate::lock(&app.sim);
    let request_id = sim.request_id();
    *sim.calls.entry(action.clone()).or_default() += 1;
    let now = Utc::now();
    let result: Result<Value, ApiError> = (|| {
        sim.keys.verify(&req, now)?;
        if action.is_empty() {
            return Err(crate::error::missing_parameter("Action"));
        }
        if let Some(e) = sim.faults.next(&action) {
            return Err(e);
        }
        let mut params: Vec<(String, String)> = query.clone();
        params.extend(form.iter().cloned());
        let p = Params(params);
        match version.as_str() {
            kms::VERSION => kms::handle(&mut sim, &action, &p, now),
            sts::VERSION => sts::handle(&mut sim, &action, &p, now),
            _ => Err(ApiError::new(
                400,
                "InvalidVersion",
                "Specified parameter Version is not valid.",
            )),
        }
    })();
    drop(sim);

    let (status, mut body) = match result {
        Ok(mut v) => {
            if let Some(o) = v.as_object_mut() {
                o.insert("RequestId".into(), Value::String(request_id.clone()));
            }
            (200, v)
        }
        Err(e) => (e.status, e.body(&request_id, &host, product)),
    };
    if body.is_null() {
        body = Value::Object(Default::default());
    }
    let mut resp = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body.to_string(),
    )
        .into_response();
    let h = resp.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_static("application/json;charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("x-acs-request-id", v);
    }
    resp
}
