//! The JSON bodies of the answers, with the properties the SDK's models require
//! (`ibm_secrets_manager_sdk.secrets_manager_v2`: `ArbitrarySecretMetadata`,
//! `KVSecretVersion`, `SecretVersionMetadataCollection`, ...).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use crate::model::{Group, Secret, SecretData, SecretType};

/// Dates as IBM writes them: RFC 3339, milliseconds, `Z`.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `crn:v1:bluemix:public:secrets-manager:<region>:a/<account>:<instance>:secret:`
pub fn crn_prefix(region: &str, instance: &str) -> String {
    format!("crn:v1:bluemix:public:secrets-manager:{region}:a/791f5fb10986423e97aa8512f18b7e65:{instance}:secret:")
}

fn data_fields(out: &mut Map<String, Value>, data: &SecretData) {
    match data {
        SecretData::Payload(p) => {
            out.insert("payload".into(), json!(p));
        }
        SecretData::Data(d) => {
            out.insert("data".into(), Value::Object(d.clone()));
        }
        SecretData::Credentials { username, password } => {
            out.insert("username".into(), json!(username));
            out.insert("password".into(), json!(password));
        }
    }
}

pub fn secret_metadata(s: &Secret, crn_prefix: &str) -> Value {
    let mut m = Map::new();
    m.insert("created_by".into(), json!(s.created_by));
    m.insert("created_at".into(), json!(ts(s.created_at)));
    m.insert("crn".into(), json!(format!("{crn_prefix}{}", s.id)));
    m.insert(
        "custom_metadata".into(),
        Value::Object(s.custom_metadata.clone()),
    );
    if let Some(d) = &s.description {
        m.insert("description".into(), json!(d));
    }
    m.insert("downloaded".into(), json!(s.downloaded));
    m.insert("id".into(), json!(s.id));
    m.insert("labels".into(), json!(s.labels));
    m.insert("locks_total".into(), json!(s.locks_total()));
    m.insert("name".into(), json!(s.name));
    m.insert("secret_group_id".into(), json!(s.group_id));
    m.insert("secret_type".into(), json!(s.secret_type.as_str()));
    m.insert("state".into(), json!(1));
    m.insert("state_description".into(), json!("active"));
    m.insert("updated_at".into(), json!(ts(s.updated_at)));
    m.insert("versions_total".into(), json!(s.versions.len()));
    if let Some(t) = s.retrieved_at {
        m.insert("retrieved_at".into(), json!(ts(t)));
    }
    if let Some(e) = &s.expiration_date {
        m.insert("expiration_date".into(), json!(e));
    }
    if s.secret_type == SecretType::UsernamePassword {
        let rotation = s.rotation.clone().unwrap_or_default();
        if s.auto_rotate() {
            // Shown, not acted on: the simulator never rotates by itself.
            let days = rotation
                .get("interval")
                .and_then(Value::as_i64)
                .unwrap_or(30);
            let next = s.updated_at + chrono::Duration::days(days);
            m.insert("next_rotation_date".into(), json!(ts(next)));
        }
        m.insert("rotation".into(), Value::Object(rotation));
        if let Some(p) = &s.password_generation_policy {
            m.insert(
                "password_generation_policy".into(),
                Value::Object(p.clone()),
            );
        }
    }
    Value::Object(m)
}

/// A secret with its current version's data.
pub fn secret(s: &Secret, crn_prefix: &str) -> Value {
    let mut v = secret_metadata(s, crn_prefix);
    if let (Value::Object(m), Some(data)) = (&mut v, s.current().and_then(|c| c.data.as_ref())) {
        data_fields(m, data);
    }
    v
}

pub fn version_metadata(s: &Secret, i: usize) -> Value {
    let mut m = Map::new();
    let Some(v) = s.versions.get(i) else {
        return Value::Object(m);
    };
    m.insert("auto_rotated".into(), json!(false));
    m.insert("created_by".into(), json!(v.created_by));
    m.insert("created_at".into(), json!(ts(v.created_at)));
    m.insert("downloaded".into(), json!(v.downloaded));
    m.insert("id".into(), json!(v.id));
    m.insert("secret_name".into(), json!(s.name));
    m.insert("secret_type".into(), json!(s.secret_type.as_str()));
    m.insert("secret_group_id".into(), json!(s.group_id));
    m.insert("payload_available".into(), json!(v.data.is_some()));
    if let Some(a) = s.alias_of(i) {
        m.insert("alias".into(), json!(a));
    }
    m.insert(
        "version_custom_metadata".into(),
        Value::Object(v.custom_metadata.clone()),
    );
    m.insert("secret_id".into(), json!(s.id));
    if let Some(e) = &s.expiration_date {
        m.insert("expiration_date".into(), json!(e));
    }
    Value::Object(m)
}

/// A version with its data (the caller checked it is available).
pub fn version(s: &Secret, i: usize) -> Value {
    let mut out = version_metadata(s, i);
    if let (Value::Object(m), Some(data)) =
        (&mut out, s.versions.get(i).and_then(|v| v.data.as_ref()))
    {
        data_fields(m, data);
    }
    out
}

/// `SecretLocks`: the secret and, per version that has data, its lock names.
pub fn secret_locks(s: &Secret) -> Value {
    let versions: Vec<Value> = (0..s.versions.len())
        .filter_map(|i| {
            let alias = s.alias_of(i)?;
            let v = &s.versions[i];
            Some(json!({
                "version_id": v.id,
                "version_alias": alias,
                "locks": v.locks.iter().map(|l| l.name.clone()).collect::<Vec<_>>(),
                "payload_available": v.data.is_some(),
            }))
        })
        .collect();
    json!({
        "secret_id": s.id,
        "secret_group_id": s.group_id,
        "secret_type": s.secret_type.as_str(),
        "secret_name": s.name,
        "versions": versions,
    })
}

/// `SecretLocksPaginatedCollection` of one version's locks (all on one page).
pub fn version_locks(s: &Secret, i: usize, href: &str) -> Value {
    let locks: Vec<Value> = s
        .versions
        .get(i)
        .map(|v| {
            v.locks
                .iter()
                .map(|l| {
                    json!({
                        "name": l.name,
                        "description": l.description,
                        "attributes": l.attributes,
                        "created_at": ts(l.created_at),
                        "updated_at": ts(l.updated_at),
                        "created_by": l.created_by,
                        "secret_group_id": s.group_id,
                        "secret_id": s.id,
                        "secret_version_id": v.id,
                        "secret_version_alias": s.alias_of(i).unwrap_or("none"),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "total_count": locks.len(),
        "limit": 200,
        "offset": 0,
        "first": {"href": href},
        "last": {"href": href},
        "locks": locks,
    })
}

pub fn group(g: &Group) -> Value {
    json!({
        "id": g.id,
        "name": g.name,
        "description": g.description.clone().unwrap_or_default(),
        "created_at": ts(g.created_at),
        "created_by": "iam-ServiceId-simulator",
        "updated_at": ts(g.updated_at),
    })
}
