//! Request dispatch: the IAM token endpoint and the Secrets Manager v2 routes. Every
//! `/api/v2` call first takes a queued fault (if any), then checks its bearer token,
//! then runs; errors are answered in the API Handbook's error container.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde_json::{json, Value};

use crate::error::{iam_error, SmError};
use crate::iam::Refused;
use crate::model::ListQuery;
use crate::render;
use crate::state::{pairs, AppState, FaultTarget, Sim};

/// Every request that no `/_sim` route took.
pub async fn dispatch(
    State(st): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().trim_end_matches('/').to_owned();
    let query = uri.query().unwrap_or("").to_owned();
    let mut sim = st.lock();
    let trace = sim.rng.uuid();
    if path == "/identity/token" {
        return token(&mut sim, &method, &headers, &body, &trace);
    }
    let Some(rest) = path.strip_prefix("/api/v2/") else {
        return SmError::not_found("No such resource.").into_response(&trace);
    };
    let segments: Vec<String> = rest
        .split('/')
        .map(|s| {
            form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        })
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let Some(op) = operation(&method, &segs) else {
        return SmError::not_found("No such resource.").into_response(&trace);
    };
    sim.count(op);
    let fault = sim.take_fault(FaultTarget::Api, op).map(|f| {
        let e = if f.status == 429 {
            SmError::too_many_requests(f.retry_after.unwrap_or(1))
        } else if f.status == 403 {
            SmError::new(
                403,
                "forbidden",
                "You are not authorized to perform this action.",
            )
        } else {
            SmError {
                retry_after: f.retry_after,
                ..SmError::server(f.status)
            }
        };
        (e, f.after)
    });
    let fault = match fault {
        Some((e, false)) => return e.into_response(&trace),
        Some((e, true)) => Some(e),
        None => None,
    };
    let now = Utc::now();
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    let who = match sim.tokens.check(auth, now.timestamp_millis()) {
        Ok(who) => who,
        Err(r) => {
            let message = match r {
                Refused::Missing => {
                    sim.counts.rejected_missing += 1;
                    "The request has no bearer token."
                }
                Refused::Unknown => {
                    sim.counts.rejected_unknown += 1;
                    "The IAM token is not valid."
                }
                Refused::Expired => {
                    sim.counts.rejected_expired += 1;
                    "The IAM token has expired."
                }
            };
            return SmError::unauthorized(message).into_response(&trace);
        }
    };
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_owned();
    let ctx = Ctx {
        crn: &st.crn_prefix,
        who: &who,
        host: &host,
        query: &query,
        now,
    };
    let answer = if matches!(method, Method::POST | Method::PATCH) {
        match serde_json::from_slice::<Value>(&body) {
            Ok(b) => run(&mut sim, op, &segs, &b, &ctx),
            Err(_) => Err(SmError::bad_request("The request body is not valid JSON.")),
        }
    } else {
        run(&mut sim, op, &segs, &Value::Null, &ctx)
    };
    if let Some(e) = fault {
        // The call was done; its answer is lost.
        return e.into_response(&trace);
    }
    match answer {
        Ok((status, Some(body))) => {
            let mut r = (status, Json(body)).into_response();
            if let Ok(v) = HeaderValue::from_str(&trace) {
                r.headers_mut().insert("x-correlation-id", v);
            }
            r
        }
        Ok((status, None)) => status.into_response(),
        Err(e) => e.into_response(&trace),
    }
}

struct Ctx<'a> {
    crn: &'a str,
    who: &'a str,
    host: &'a str,
    query: &'a str,
    now: chrono::DateTime<Utc>,
}

/// The SDK's operation id for a method and path.
fn operation(m: &Method, s: &[&str]) -> Option<&'static str> {
    Some(match (m.as_str(), s) {
        ("POST", ["secret_groups"]) => "create_secret_group",
        ("GET", ["secret_groups"]) => "list_secret_groups",
        ("GET", ["secret_groups", _]) => "get_secret_group",
        ("GET", ["secret_groups", _, "secret_types", _, "secrets", _]) => "get_secret_by_name_type",
        ("POST", ["secrets"]) => "create_secret",
        ("GET", ["secrets"]) => "list_secrets",
        ("GET", ["secrets", _]) => "get_secret",
        ("DELETE", ["secrets", _]) => "delete_secret",
        ("GET", ["secrets", _, "metadata"]) => "get_secret_metadata",
        ("PATCH", ["secrets", _, "metadata"]) => "update_secret_metadata",
        ("POST", ["secrets", _, "locks_bulk"]) => "create_secret_locks_bulk",
        ("POST", ["secrets", _, "versions"]) => "create_secret_version",
        ("GET", ["secrets", _, "versions"]) => "list_secret_versions",
        ("GET", ["secrets", _, "versions", _]) => "get_secret_version",
        ("GET", ["secrets", _, "versions", _, "metadata"]) => "get_secret_version_metadata",
        ("PATCH", ["secrets", _, "versions", _, "metadata"]) => "update_secret_version_metadata",
        ("GET", ["secrets", _, "versions", _, "locks"]) => "list_secret_version_locks",
        ("POST", ["secrets", _, "versions", _, "locks_bulk"]) => "create_secret_version_locks_bulk",
        ("DELETE", ["secrets", _, "versions", _, "locks_bulk"]) => {
            "delete_secret_version_locks_bulk"
        }
        _ => return None,
    })
}

type Answer = Result<(StatusCode, Option<Value>), SmError>;

fn ok(v: Value) -> Answer {
    Ok((StatusCode::OK, Some(v)))
}

fn created(v: Value) -> Answer {
    Ok((StatusCode::CREATED, Some(v)))
}

fn list_of(q: &std::collections::HashMap<String, String>, key: &str) -> Vec<String> {
    q.get(key)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn number(
    q: &std::collections::HashMap<String, String>,
    key: &str,
) -> Result<Option<usize>, SmError> {
    q.get(key)
        .map(|v| {
            v.parse::<usize>().map_err(|_| {
                SmError::bad_request(format!("'{key}' must be a non-negative integer."))
            })
        })
        .transpose()
}

fn run(sim: &mut Sim, op: &str, s: &[&str], body: &Value, c: &Ctx<'_>) -> Answer {
    let inst = &mut sim.instance;
    let q = pairs(c.query);
    match (op, s) {
        ("create_secret_group", _) => created(render::group(&inst.create_group(body, c.now)?)),
        ("list_secret_groups", _) => {
            let groups: Vec<Value> = inst.groups().iter().map(render::group).collect();
            ok(json!({"total_count": groups.len(), "secret_groups": groups}))
        }
        ("get_secret_group", [_, id, ..]) => ok(render::group(&inst.group(id)?)),
        ("get_secret_by_name_type", [_, group, _, ty, _, name]) => {
            let sec = inst.secret_by_name(group, ty, name)?;
            let (id, last) = (sec.id.clone(), sec.versions.len().saturating_sub(1));
            inst.note_read(&id, last, c.now);
            ok(render::secret(inst.secret(&id)?, c.crn))
        }
        ("create_secret", _) => created(render::secret(
            inst.create_secret(body, c.who, c.now)?,
            c.crn,
        )),
        ("list_secrets", _) => {
            let offset = number(&q, "offset")?.unwrap_or(0);
            let limit = number(&q, "limit")?.unwrap_or(200);
            if !(1..=1000).contains(&limit) {
                return Err(SmError::bad_request("'limit' must be 1 - 1000."));
            }
            let lq = ListQuery {
                offset,
                limit,
                sort: q.get("sort").cloned(),
                search: q.get("search").cloned().filter(|s| !s.is_empty()),
                groups: list_of(&q, "groups"),
                secret_types: list_of(&q, "secret_types"),
                match_all_labels: list_of(&q, "match_all_labels"),
            };
            let (page, total) = inst.list(&lq)?;
            let href = |off: usize| {
                let mut ser = form_urlencoded::Serializer::new(String::new());
                for (k, v) in &q {
                    if k != "offset" && k != "limit" {
                        ser.append_pair(k, v);
                    }
                }
                ser.append_pair("limit", &limit.to_string());
                ser.append_pair("offset", &off.to_string());
                json!({"href": format!("http://{}/api/v2/secrets?{}", c.host, ser.finish())})
            };
            let last = if total == 0 {
                0
            } else {
                (total - 1) / limit * limit
            };
            let mut out = json!({
                "total_count": total,
                "limit": limit,
                "offset": offset,
                "first": href(0),
                "last": href(last),
                "secrets": page.iter().map(|sec| render::secret_metadata(sec, c.crn)).collect::<Vec<_>>(),
            });
            if offset + limit < total {
                out["next"] = href(offset + limit);
            }
            if offset > 0 {
                out["previous"] = href(offset.saturating_sub(limit));
            }
            ok(out)
        }
        ("get_secret", [_, id, ..]) => {
            let last = inst.secret(id)?.versions.len().saturating_sub(1);
            inst.note_read(id, last, c.now);
            ok(render::secret(inst.secret(id)?, c.crn))
        }
        ("delete_secret", [_, id, ..]) => {
            inst.delete_secret(id)?;
            Ok((StatusCode::NO_CONTENT, None))
        }
        ("get_secret_metadata", [_, id, ..]) => {
            ok(render::secret_metadata(inst.secret(id)?, c.crn))
        }
        ("update_secret_metadata", [_, id, ..]) => ok(render::secret_metadata(
            inst.update_metadata(id, body, c.now)?,
            c.crn,
        )),
        ("create_secret_locks_bulk", [_, id, ..]) => {
            let sec = inst.create_locks(
                id,
                "current",
                body,
                q.get("mode").map(String::as_str),
                c.who,
                c.now,
            )?;
            created(render::secret_locks(sec))
        }
        ("create_secret_version", [_, id, ..]) => {
            let (sec, i) = inst.create_version(id, body, c.who, c.now)?;
            created(render::version(sec, i))
        }
        ("list_secret_versions", [_, id, ..]) => {
            let sec = inst.secret(id)?;
            // Newest first, as the console shows the version history.
            let versions: Vec<Value> = (0..sec.versions.len())
                .rev()
                .map(|i| render::version_metadata(sec, i))
                .collect();
            ok(json!({"versions": versions, "total_count": versions.len()}))
        }
        ("get_secret_version", [_, id, _, v, ..]) => {
            let sec = inst.secret(id)?;
            let i = sec
                .version_index(v)
                .ok_or_else(|| SmError::not_found("Secret version not found."))?;
            if sec.versions[i].data.is_none() {
                return Err(SmError::not_found(
                    "The data of this secret version is no longer available.",
                ));
            }
            inst.note_read(id, i, c.now);
            ok(render::version(inst.secret(id)?, i))
        }
        ("get_secret_version_metadata", [_, id, _, v, ..]) => {
            let sec = inst.secret(id)?;
            let i = sec
                .version_index(v)
                .ok_or_else(|| SmError::not_found("Secret version not found."))?;
            ok(render::version_metadata(sec, i))
        }
        ("update_secret_version_metadata", [_, id, _, v, ..]) => {
            let (sec, i) = inst.update_version_metadata(id, v, body)?;
            ok(render::version_metadata(sec, i))
        }
        ("list_secret_version_locks", [_, id, _, v, ..]) => {
            let sec = inst.secret(id)?;
            let i = sec
                .version_index(v)
                .ok_or_else(|| SmError::not_found("Secret version not found."))?;
            let href = format!("http://{}/api/v2/secrets/{id}/versions/{v}/locks", c.host);
            ok(render::version_locks(sec, i, &href))
        }
        ("create_secret_version_locks_bulk", [_, id, _, v, ..]) => {
            let sec =
                inst.create_locks(id, v, body, q.get("mode").map(String::as_str), c.who, c.now)?;
            created(render::secret_locks(sec))
        }
        ("delete_secret_version_locks_bulk", [_, id, _, v, ..]) => {
            let names = list_of(&q, "name");
            ok(render::secret_locks(inst.delete_locks(id, v, &names)?))
        }
        _ => Err(SmError::not_found("No such resource.")),
    }
}

/// `POST /identity/token`.
fn token(
    sim: &mut Sim,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
    trace: &str,
) -> Response {
    if method != Method::POST {
        return iam_error(405, "BXNIM0100E", "Method not allowed.", trace);
    }
    if let Some(f) = sim.take_fault(FaultTarget::Iam, "iam_token") {
        let mut r = iam_error(
            f.status,
            "BXNIM0999E",
            "Service temporarily unavailable.",
            trace,
        );
        if let Some(s) = f.retry_after.or((f.status == 429).then_some(1)) {
            r.headers_mut().insert("retry-after", HeaderValue::from(s));
        }
        return r;
    }
    let form_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !form_type.starts_with("application/x-www-form-urlencoded") {
        sim.counts.iam_refused += 1;
        return iam_error(
            400,
            "BXNIM0109E",
            "The body must be application/x-www-form-urlencoded.",
            trace,
        );
    }
    let form = pairs(&String::from_utf8_lossy(body));
    let now = Utc::now().timestamp_millis();
    let (keys, ttl) = (sim.api_keys.clone(), sim.token_ttl);
    let Sim {
        tokens,
        rng,
        counts,
        ..
    } = sim;
    match tokens.exchange(&form, &keys, ttl, now, rng) {
        Ok(v) => {
            counts.iam_exchanges += 1;
            (StatusCode::OK, Json(v)).into_response()
        }
        Err((status, code, message)) => {
            counts.iam_refused += 1;
            iam_error(status, code, message, trace)
        }
    }
}
