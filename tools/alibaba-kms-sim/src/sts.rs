//! STS (API version 2015-04-01): AssumeRole, whose credentials the KMS side accepts with
//! their SecurityToken until they expire.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::auth::Key;
use crate::error::{invalid_parameter, ApiError};
use crate::params::Params;
use crate::sim::Sim;

pub const VERSION: &str = "2015-04-01";

pub fn handle(
    sim: &mut Sim,
    action: &str,
    p: &Params,
    now: DateTime<Utc>,
) -> Result<Value, ApiError> {
    match action {
        "AssumeRole" => assume_role(sim, p, now),
        _ => Err(crate::kms::unknown_action()),
    }
}

/// `acs:ram::<digits>:role/<name>`.
fn well_formed(arn: &str) -> bool {
    let Some(rest) = arn.strip_prefix("acs:ram::") else {
        return false;
    };
    let Some((uid, name)) = rest.split_once(":role/") else {
        return false;
    };
    !uid.is_empty() && uid.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty()
}

fn assume_role(sim: &mut Sim, p: &Params, now: DateTime<Utc>) -> Result<Value, ApiError> {
    let arn = p.required("RoleArn")?.to_owned();
    if !well_formed(&arn) {
        return Err(ApiError::new(
            400,
            "InvalidParameter.RoleArn",
            "The parameter RoleArn is wrongly formed.",
        ));
    }
    let session = p.required("RoleSessionName")?.to_owned();
    let session_ok = (2..=64).contains(&session.len())
        && session
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'@' | b'-' | b'_'));
    if !session_ok {
        return Err(ApiError::new(
            400,
            "InvalidParameter.RoleSessionName",
            "The parameter RoleSessionName is wrongly formed.",
        ));
    }
    // 900 s up to the role's maximum session (3600 s by default).
    let duration = p.int("DurationSeconds", 3600, 0, u64::MAX)?;
    if !(900..=3600).contains(&duration) {
        return Err(ApiError::new(
            400,
            "InvalidParameter.DurationSeconds",
            "The Min/Max value of DurationSeconds is 15min/1hr.",
        ));
    }
    if p.get("Policy")
        .is_some_and(|s| serde_json::from_str::<Value>(s).is_err())
    {
        return Err(invalid_parameter("The parameter Policy is not valid JSON."));
    }
    if !sim.roles.iter().any(|r| r.eq_ignore_ascii_case(&arn)) {
        return Err(ApiError::new(
            404,
            "EntityNotExist.Role",
            format!("The role not exists: {arn}."),
        ));
    }
    let ttl = sim.sts_ttl_cap.map_or(duration, |cap| duration.min(cap));
    let expires = now + chrono::Duration::seconds(i64::try_from(ttl).unwrap_or(3600));
    let ak = format!("STS.{}", sim.token(24));
    let secret = sim.token(40);
    let token = format!("CAIS{}", sim.token(120));
    sim.keys.add(
        ak.clone(),
        Key {
            secret: secret.clone(),
            session: Some((token.clone(), expires)),
            role: Some(arn.clone()),
        },
    );
    let role_name = arn.rsplit('/').next().unwrap_or_default();
    let uid = arn
        .strip_prefix("acs:ram::")
        .and_then(|r| r.split(':').next())
        .unwrap_or_default();
    let role_id = format!("3{}", sim.next_u64() % 1_000_000_000_000_000);
    Ok(json!({
        "AssumedRoleUser": {
            "AssumedRoleId": format!("{role_id}:{session}"),
            "Arn": format!("acs:ram::{uid}:role/{role_name}/{session}"),
        },
        "Credentials": {
            "AccessKeyId": ak,
            "AccessKeySecret": secret,
            "SecurityToken": token,
            "Expiration": crate::kms::time(expires),
        },
    }))
}
