//! The KMS Secrets Manager operations (API version 2016-01-20): parameters in, JSON out.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::error::{invalid_parameter, ApiError};
use crate::params::Params;
use crate::sim::Sim;
use crate::store::{NewSecret, Secret, Version};

pub const VERSION: &str = "2016-01-20";

/// KMS's time format: `2020-02-21T15:39:26Z`.
pub fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn handle(
    sim: &mut Sim,
    action: &str,
    p: &Params,
    now: DateTime<Utc>,
) -> Result<Value, ApiError> {
    match action {
        "CreateSecret" => create_secret(sim, p, now),
        "PutSecretValue" => put_secret_value(sim, p, now),
        "GetSecretValue" => get_secret_value(sim, p),
        "UpdateSecretVersionStage" => update_stage(sim, p, now),
        "DescribeSecret" => describe_secret(sim, p),
        "ListSecrets" => list_secrets(sim, p),
        "ListSecretVersionIds" => list_versions(sim, p),
        "TagResource" => tag_resource(sim, p, now),
        "UntagResource" => untag_resource(sim, p, now),
        "DeleteSecret" => delete_secret(sim, p, now),
        _ => Err(unknown_action()),
    }
}

pub fn unknown_action() -> ApiError {
    ApiError::new(
        404,
        "InvalidAction.NotFound",
        "Specified api is not found, please check your url and method.",
    )
}

fn stages_json(v: &Version) -> Value {
    json!({ "VersionStage": v.stages })
}

fn tags_json(s: &Secret) -> Value {
    let tags: Vec<Value> = s
        .tags
        .iter()
        .map(|(k, v)| json!({"TagKey": k, "TagValue": v}))
        .collect();
    json!({ "Tag": tags })
}

/// `[{"TagKey": ..., "TagValue": ...}]`.
fn parse_tags(p: &Params, name: &str) -> Result<Vec<(String, String)>, ApiError> {
    let Some(v) = p.json(name)? else {
        return Ok(Vec::new());
    };
    let bad = || invalid_parameter(format!("The specified parameter {name} is not valid."));
    v.as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|t| {
            let k = t.get("TagKey").and_then(Value::as_str).ok_or_else(bad)?;
            let v = t.get("TagValue").and_then(Value::as_str).unwrap_or("");
            Ok((k.to_owned(), v.to_owned()))
        })
        .collect()
}

fn data_type(p: &Params) -> Result<String, ApiError> {
    match p.get("SecretDataType") {
        None | Some("") | Some("text") => Ok("text".into()),
        Some("binary") => Ok("binary".into()),
        Some(_) => Err(invalid_parameter(
            "The specified parameter SecretDataType is not valid.",
        )),
    }
}

/// `30d`, `12h`, `90m`, `604800s` -> seconds.
fn interval_secs(s: &str) -> Option<u64> {
    let (n, unit) = s.split_at(s.len().checked_sub(1)?);
    let n: u64 = n.parse().ok()?;
    Some(match unit {
        "d" => n * 86_400,
        "h" => n * 3_600,
        "m" => n * 60,
        "s" => n,
        _ => return None,
    })
}

fn create_secret(sim: &mut Sim, p: &Params, now: DateTime<Utc>) -> Result<Value, ApiError> {
    let name = p.required("SecretName")?.to_owned();
    let version_id = p.required("VersionId")?.to_owned();
    let data = p.required("SecretData")?.to_owned();
    match p.get("SecretType") {
        None | Some("") | Some("Generic") => {}
        Some(_) => {
            return Err(invalid_parameter(
                "The simulator serves generic secrets only (SecretType=Generic).",
            ))
        }
    }
    let rotation_interval_secs = if p.flag("EnableAutomaticRotation", false)? {
        let secs = interval_secs(p.required("RotationInterval")?)
            .filter(|s| (6 * 3600..=8760 * 3600).contains(s))
            .ok_or_else(|| {
                invalid_parameter("The specified parameter RotationInterval is not valid.")
            })?;
        Some(secs)
    } else {
        None
    };
    let arn = format!("acs:kms:{}:{}:secret/{name}", sim.region, sim.account_id);
    let secret = sim.store.create(
        NewSecret {
            name,
            arn,
            version_id,
            data,
            data_type: data_type(p)?,
            description: p.get("Description").unwrap_or_default().to_owned(),
            tags: parse_tags(p, "Tags")?,
            rotation_interval_secs,
        },
        now,
    )?;
    let mut out = json!({
        "Arn": secret.arn,
        "SecretName": secret.name,
        "VersionId": secret.versions.first().map(|v| v.id.clone()),
        "SecretType": "Generic",
    });
    if let Some(secs) = secret.rotation_interval_secs {
        out["AutomaticRotation"] = json!("Enabled");
        out["RotationInterval"] = json!(format!("{secs}s"));
    }
    Ok(out)
}

fn put_secret_value(sim: &mut Sim, p: &Params, now: DateTime<Utc>) -> Result<Value, ApiError> {
    let name = p.required("SecretName")?;
    let version_id = p.required("VersionId")?;
    let data = p.required("SecretData")?;
    let stages = match p.json("VersionStages")? {
        None => None,
        Some(v) => Some(
            v.as_array()
                .and_then(|a| {
                    a.iter()
                        .map(|s| s.as_str().map(str::to_owned))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| {
                    invalid_parameter("The specified parameter VersionStages is not valid.")
                })?,
        ),
    };
    let dt = data_type(p)?;
    let v = sim
        .store
        .put_value(name, version_id, data, &dt, stages, now)?;
    let secret = sim.store.get(name)?;
    Ok(json!({
        "SecretName": secret.name,
        "VersionId": v.id,
        "VersionStages": stages_json(&v),
    }))
}

fn get_secret_value(sim: &mut Sim, p: &Params) -> Result<Value, ApiError> {
    let secret = sim.store.live(p.required("SecretName")?)?;
    let stage = p.get("VersionStage").filter(|s| !s.is_empty());
    let v = match p.get("VersionId").filter(|s| !s.is_empty()) {
        Some(id) => {
            let v = secret.version(id).ok_or_else(crate::error::not_found)?;
            // A version named with a stage must carry it.
            if let Some(stage) = stage {
                if !v.stages.iter().any(|s| s == stage) {
                    return Err(crate::error::not_found());
                }
            }
            v
        }
        None => secret
            .with_stage(stage.unwrap_or(crate::store::CURRENT))
            .ok_or_else(crate::error::not_found)?,
    };
    Ok(json!({
        "SecretName": secret.name,
        "SecretType": "Generic",
        "SecretData": v.data,
        "SecretDataType": v.data_type,
        "VersionId": v.id,
        "VersionStages": stages_json(v),
        "CreateTime": time(v.created),
    }))
}

fn update_stage(sim: &mut Sim, p: &Params, now: DateTime<Utc>) -> Result<Value, ApiError> {
    let name = p.required("SecretName")?;
    let stage = p.required("VersionStage")?;
    let to = p.get("MoveToVersion").filter(|s| !s.is_empty());
    let from = p.get("RemoveFromVersion").filter(|s| !s.is_empty());
    sim.store.update_stage(name, stage, to, from, now)?;
    Ok(json!({ "SecretName": sim.store.get(name)?.name }))
}

fn describe_secret(sim: &mut Sim, p: &Params) -> Result<Value, ApiError> {
    let secret = sim.store.get(p.required("SecretName")?)?;
    let mut out = json!({
        "Arn": secret.arn,
        "SecretName": secret.name,
        "SecretType": "Generic",
        "Description": secret.description,
        "CreateTime": time(secret.created),
        "UpdateTime": time(secret.updated),
    });
    if let Some(t) = secret.planned_delete {
        out["PlannedDeleteTime"] = json!(time(t));
    }
    if let Some(secs) = secret.rotation_interval_secs {
        out["AutomaticRotation"] = json!("Enabled");
        out["RotationInterval"] = json!(format!("{secs}s"));
    }
    if p.flag("FetchTags", false)? {
        out["Tags"] = tags_json(secret);
    }
    Ok(out)
}

fn list_secrets(sim: &mut Sim, p: &Params) -> Result<Value, ApiError> {
    let page = p.int("PageNumber", 1, 1, u64::from(u32::MAX))?;
    let size = p.int("PageSize", 10, 1, 100)?;
    let tags = p.flag("FetchTags", false)?;
    let all = sim.store.secrets();
    let start = usize::try_from((page - 1).saturating_mul(size)).unwrap_or(usize::MAX);
    let items: Vec<Value> = all
        .iter()
        .skip(start)
        .take(usize::try_from(size).unwrap_or(100))
        .map(|s| {
            let mut e = json!({
                "SecretName": s.name,
                "SecretType": "Generic",
                "CreateTime": time(s.created),
                "UpdateTime": time(s.updated),
            });
            if let Some(t) = s.planned_delete {
                e["PlannedDeleteTime"] = json!(time(t));
            }
            if tags {
                e["Tags"] = tags_json(s);
            }
            e
        })
        .collect();
    Ok(json!({
        "PageNumber": page,
        "PageSize": size,
        "TotalCount": all.len(),
        "SecretList": { "Secret": items },
    }))
}

fn list_versions(sim: &mut Sim, p: &Params) -> Result<Value, ApiError> {
    let secret = sim.store.get(p.required("SecretName")?)?;
    let page = p.int("PageNumber", 1, 1, u64::from(u32::MAX))?;
    let size = p.int("PageSize", 20, 1, 100)?;
    let deprecated = p.flag("IncludeDeprecated", false)?;
    let shown: Vec<&Version> = secret
        .versions
        .iter()
        .filter(|v| deprecated || !v.stages.is_empty())
        .collect();
    let start = usize::try_from((page - 1).saturating_mul(size)).unwrap_or(usize::MAX);
    let items: Vec<Value> = shown
        .iter()
        .skip(start)
        .take(usize::try_from(size).unwrap_or(100))
        .map(|v| {
            json!({
                "VersionId": v.id,
                "CreateTime": time(v.created),
                "VersionStages": stages_json(v),
            })
        })
        .collect();
    Ok(json!({
        "SecretName": secret.name,
        "PageNumber": page,
        "PageSize": size,
        "TotalCount": shown.len(),
        "VersionIds": { "VersionId": items },
    }))
}

/// TagResource / UntagResource name exactly one resource; the simulator has secrets only.
fn resource(p: &Params) -> Result<&str, ApiError> {
    if p.get("KeyId").is_some() || p.get("CertificateId").is_some() {
        return Err(invalid_parameter(
            "The simulator serves secrets only: specify SecretName.",
        ));
    }
    p.required("SecretName")
}

fn tag_resource(sim: &mut Sim, p: &Params, now: DateTime<Utc>) -> Result<Value, ApiError> {
    let name = resource(p)?;
    let tags = parse_tags(p, "Tags")?;
    if tags.is_empty() {
        return Err(crate::error::missing_parameter("Tags"));
    }
    sim.store.tag(name, &tags, now)?;
    Ok(json!({}))
}

fn untag_resource(sim: &mut Sim, p: &Params, now: DateTime<Utc>) -> Result<Value, ApiError> {
    let name = resource(p)?;
    let raw = p.required("TagKeys")?;
    // A JSON array, as the API reference shows; a comma-separated list, as the SDK says.
    let keys: Vec<String> = match serde_json::from_str::<Vec<String>>(raw) {
        Ok(k) => k,
        Err(_) => raw.split(',').map(|s| s.trim().to_owned()).collect(),
    };
    sim.store.untag(name, &keys, now)?;
    Ok(json!({}))
}

fn delete_secret(sim: &mut Sim, p: &Params, now: DateTime<Utc>) -> Result<Value, ApiError> {
    let name = p.required("SecretName")?.to_owned();
    let force = p.flag("ForceDeleteWithoutRecovery", false)?;
    let days = p.int("RecoveryWindowInDays", 30, 7, 30)?;
    let when = sim
        .store
        .delete(&name, force, i64::try_from(days).unwrap_or(30), now)?;
    let mut out = json!({ "SecretName": name });
    if let Some(t) = when {
        out["PlannedDeleteTime"] = json!(time(t));
    }
    Ok(out)
}
