//! The parts of Secrets Manager v2 answers the store reads, typed. Secret data is moved
//! into [`SecretString`]s as it is parsed, so no `Debug` or log line can show it.

use super::errors::malformed;
use crate::error::AwsError;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde_json::{Map, Value};

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn date(v: &Value, key: &str) -> Option<DateTime<Utc>> {
    v.get(key)
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
}

fn object(v: &Value, key: &str) -> Map<String, Value> {
    v.get(key)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// A secret's metadata (`SecretMetadata`).
#[derive(Clone, Debug, PartialEq)]
pub struct SecretMeta {
    pub id: String,
    pub name: String,
    pub secret_type: String,
    pub group_id: String,
    pub crn: String,
    pub custom_metadata: Map<String, Value>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub versions_total: u64,
    /// IBM's own automatic rotation (`rotation.auto_rotate`).
    pub auto_rotate: bool,
}

impl SecretMeta {
    pub fn parse(op: &'static str, v: &Value) -> Result<Self, AwsError> {
        let need = |k: &str| text(v, k).ok_or_else(|| malformed(op, k));
        Ok(Self {
            id: need("id")?,
            name: text(v, "name").unwrap_or_default(),
            secret_type: need("secret_type")?,
            group_id: need("secret_group_id")?,
            crn: need("crn")?,
            custom_metadata: object(v, "custom_metadata"),
            created_at: date(v, "created_at"),
            updated_at: date(v, "updated_at"),
            versions_total: v["versions_total"].as_u64().unwrap_or(0),
            auto_rotate: v["rotation"]["auto_rotate"].as_bool().unwrap_or(false),
        })
    }

    /// A `custom_metadata` string value.
    pub fn custom(&self, key: &str) -> Option<&str> {
        self.custom_metadata.get(key).and_then(Value::as_str)
    }
}

/// A version's metadata (`SecretVersionMetadata`).
#[derive(Clone, Debug, PartialEq)]
pub struct VersionMeta {
    pub id: String,
    /// `current`, `previous`, or none for older versions.
    pub alias: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub custom_metadata: Map<String, Value>,
    pub payload_available: bool,
}

impl VersionMeta {
    pub fn parse(op: &'static str, v: &Value) -> Result<Self, AwsError> {
        Ok(Self {
            id: text(v, "id").ok_or_else(|| malformed(op, "id"))?,
            alias: text(v, "alias").map(|a| a.to_ascii_lowercase()),
            created_at: date(v, "created_at"),
            custom_metadata: object(v, "version_custom_metadata"),
            payload_available: v["payload_available"].as_bool().unwrap_or(true),
        })
    }

    /// A `version_custom_metadata` string value.
    pub fn custom(&self, key: &str) -> Option<&str> {
        self.custom_metadata.get(key).and_then(Value::as_str)
    }
}

/// The data of a secret or version, by type.
#[derive(Clone, Debug)]
pub enum SecretData {
    /// `arbitrary`: the payload.
    Payload(SecretString),
    /// `kv`: the JSON text of `data`.
    Data(SecretString),
    /// `username_password`.
    Credentials {
        username: String,
        password: SecretString,
    },
}

impl SecretData {
    /// The data fields of `v`, by its `secret_type`.
    pub fn parse(op: &'static str, v: &Value) -> Result<Self, AwsError> {
        let ty = v["secret_type"].as_str().unwrap_or("");
        match ty {
            "arbitrary" => v["payload"]
                .as_str()
                .map(|p| SecretData::Payload(SecretString::from(p.to_owned())))
                .ok_or_else(|| malformed(op, "payload")),
            "kv" => v
                .get("data")
                .filter(|d| d.is_object())
                .and_then(|d| serde_json::to_string(d).ok())
                .map(|d| SecretData::Data(SecretString::from(d)))
                .ok_or_else(|| malformed(op, "data")),
            "username_password" => {
                let username = v["username"]
                    .as_str()
                    .ok_or_else(|| malformed(op, "username"))?;
                let password = v["password"]
                    .as_str()
                    .ok_or_else(|| malformed(op, "password"))?;
                Ok(SecretData::Credentials {
                    username: username.to_owned(),
                    password: SecretString::from(password.to_owned()),
                })
            }
            _ => Err(AwsError::new(
                crate::error::ErrorClass::Invalid,
                op,
                "UnsupportedSecretType",
                format!(
                    "secret type '{ty}' is not supported (arbitrary, kv, username_password are)"
                ),
            )),
        }
    }
}

/// A secret with its current data (`GET /secrets/{id}`).
#[derive(Clone, Debug)]
pub struct Secret {
    pub meta: SecretMeta,
    pub data: SecretData,
}

/// A version with its data.
#[derive(Clone, Debug)]
pub struct Version {
    pub meta: VersionMeta,
    pub data: SecretData,
}

/// One page of `GET /secrets`.
#[derive(Clone, Debug)]
pub struct SecretPage {
    pub secrets: Vec<SecretMeta>,
    pub total_count: u64,
    /// The `offset` of the next page (from `next.href`), if there is one.
    pub next_offset: Option<u64>,
}

impl SecretPage {
    pub fn parse(op: &'static str, v: &Value) -> Result<Self, AwsError> {
        let secrets = v["secrets"]
            .as_array()
            .ok_or_else(|| malformed(op, "secrets"))?
            .iter()
            .map(|s| SecretMeta::parse(op, s))
            .collect::<Result<Vec<_>, _>>()?;
        let next_offset = v["next"]["href"].as_str().and_then(|href| {
            let query = href.split_once('?')?.1;
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix("offset="))
                .and_then(|o| o.parse().ok())
        });
        Ok(Self {
            secrets,
            total_count: v["total_count"].as_u64().unwrap_or(0),
            next_offset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use serde_json::json;

    #[test]
    fn data_is_parsed_by_type_and_never_shown() {
        let d = SecretData::parse(
            "get_secret",
            &json!({"secret_type": "kv", "data": {"b": 1, "a": "x"}}),
        )
        .unwrap();
        match &d {
            SecretData::Data(t) => assert_eq!(t.expose_secret(), r#"{"b":1,"a":"x"}"#),
            other => panic!("{other:?}"),
        }
        let c = SecretData::parse(
            "get_secret",
            &json!({"secret_type": "username_password", "username": "app", "password": "hunter22"}),
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("hunter22"));
        let e =
            SecretData::parse("get_secret", &json!({"secret_type": "imported_cert"})).unwrap_err();
        assert_eq!(e.class, crate::error::ErrorClass::Invalid);
    }

    #[test]
    fn pages_read_the_next_offset() {
        let p = SecretPage::parse(
            "list_secrets",
            &json!({"total_count": 3, "secrets": [], "next": {"href": "https://x/api/v2/secrets?limit=2&offset=2"}}),
        )
        .unwrap();
        assert_eq!(p.next_offset, Some(2));
        assert_eq!(p.total_count, 3);
    }
}
