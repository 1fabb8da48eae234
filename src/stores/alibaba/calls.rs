//! The KMS Secrets Manager operations (API 2016-01-20) and STS AssumeRole (2015-04-01),
//! typed: parameters as the API reference names them, answers parsed into structs.

use super::client::{CallError, Endpoint, Transport};
use super::credentials::Credentials;
use super::errors::malformed;
use crate::error::{AwsError, ErrorClass};
use crate::ids::RoleArn;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

pub const KMS_VERSION: &str = "2016-01-20";
pub const STS_VERSION: &str = "2015-04-01";

/// Times as KMS and STS write them (`2020-02-21T15:39:26Z`).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn text(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_owned)
}

/// `{"VersionStage": [...]}`.
fn stages(v: &Value) -> Vec<String> {
    v.get("VersionStages")
        .and_then(|s| s.get("VersionStage"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `{"Tags": {"Tag": [{"TagKey", "TagValue"}]}}`; `None` when the answer has no tags.
fn tags(v: &Value) -> Option<Vec<(String, String)>> {
    let list = v.get("Tags")?.get("Tag").and_then(Value::as_array);
    Some(
        list.map(|a| {
            a.iter()
                .filter_map(|t| Some((text(t, "TagKey")?, text(t, "TagValue").unwrap_or_default())))
                .collect()
        })
        .unwrap_or_default(),
    )
}

fn total(v: &Value) -> u64 {
    v.get("TotalCount")
        .and_then(|t| {
            t.as_u64()
                .or_else(|| t.as_str().and_then(|s| s.parse().ok()))
        })
        .unwrap_or(0)
}

fn tags_json(tags: &[(&str, String)]) -> String {
    let list: Vec<Value> = tags
        .iter()
        .map(|(k, v)| serde_json::json!({"TagKey": k, "TagValue": v}))
        .collect();
    Value::Array(list).to_string()
}

/// GetSecretValue's answer.
pub struct SecretValue {
    pub version_id: String,
    pub value: SecretString,
    pub data_type: String,
    pub stages: Vec<String>,
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretValue")
            .field("version_id", &self.version_id)
            .field("data_type", &self.data_type)
            .field("stages", &self.stages)
            .finish_non_exhaustive()
    }
}

/// PutSecretValue's / CreateSecret's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub name: String,
    pub version_id: String,
    pub stages: Vec<String>,
    pub arn: Option<String>,
}

/// DescribeSecret's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretInfo {
    pub arn: String,
    pub name: String,
    /// Asked with FetchTags=true; `None` otherwise.
    pub tags: Option<Vec<(String, String)>>,
    /// `AutomaticRotation` is `Enabled` (KMS rotates the secret itself).
    pub rotation_enabled: bool,
    pub planned_delete: bool,
    pub updated: Option<DateTime<Utc>>,
}

/// One ListSecrets entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    /// `Generic`, or a managed type (`Rds`, `RAMCredentials`, `ECS`, ...).
    pub secret_type: Option<String>,
    pub tags: Option<Vec<(String, String)>>,
    pub planned_delete: bool,
    pub updated: Option<DateTime<Utc>>,
}

/// One ListSecretVersionIds entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionEntry {
    pub id: String,
    pub stages: Vec<String>,
    pub created: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
}

/// KMS, at one endpoint, with one set of credentials.
pub struct Kms<'a> {
    pub transport: &'a Transport,
    pub endpoint: &'a Endpoint,
    pub creds: &'a Credentials,
}

impl Kms<'_> {
    async fn call(
        &self,
        action: &'static str,
        query: &[(&str, String)],
        form: &[(&str, String)],
    ) -> Result<Value, CallError> {
        self.transport
            .call(self.endpoint, action, KMS_VERSION, query, form, self.creds)
            .await
    }

    /// CreateSecret (a generic secret; its first version gets ACSCurrent).
    pub async fn create_secret(
        &self,
        name: &str,
        version_id: &str,
        value: &SecretString,
        tags: &[(&str, String)],
    ) -> Result<Stored, CallError> {
        let mut q = vec![
            ("SecretName", name.to_owned()),
            ("VersionId", version_id.to_owned()),
        ];
        if !tags.is_empty() {
            q.push(("Tags", tags_json(tags)));
        }
        let v = self
            .call(
                "CreateSecret",
                &q,
                &[("SecretData", value.expose_secret().to_owned())],
            )
            .await?;
        Ok(Stored {
            name: text(&v, "SecretName").unwrap_or_else(|| name.to_owned()),
            version_id: text(&v, "VersionId").unwrap_or_else(|| version_id.to_owned()),
            stages: Vec::new(),
            arn: text(&v, "Arn"),
        })
    }

    /// PutSecretValue; `stages` `None` lets KMS make the version ACSCurrent.
    pub async fn put_secret_value(
        &self,
        name: &str,
        version_id: &str,
        value: &SecretString,
        stages_: Option<&[&str]>,
    ) -> Result<Stored, CallError> {
        let mut q = vec![
            ("SecretName", name.to_owned()),
            ("VersionId", version_id.to_owned()),
        ];
        if let Some(s) = stages_ {
            q.push(("VersionStages", serde_json::json!(s).to_string()));
        }
        let v = self
            .call(
                "PutSecretValue",
                &q,
                &[("SecretData", value.expose_secret().to_owned())],
            )
            .await?;
        Ok(Stored {
            name: text(&v, "SecretName").unwrap_or_else(|| name.to_owned()),
            version_id: text(&v, "VersionId").unwrap_or_else(|| version_id.to_owned()),
            stages: stages(&v),
            arn: None,
        })
    }

    /// GetSecretValue by stage, by version, or both (the version must carry the stage).
    pub async fn get_secret_value(
        &self,
        name: &str,
        stage: Option<&str>,
        version_id: Option<&str>,
    ) -> Result<SecretValue, CallError> {
        let mut q = vec![("SecretName", name.to_owned())];
        if let Some(s) = stage {
            q.push(("VersionStage", s.to_owned()));
        }
        if let Some(v) = version_id {
            q.push(("VersionId", v.to_owned()));
        }
        let v = self.call("GetSecretValue", &q, &[]).await?;
        Ok(SecretValue {
            version_id: text(&v, "VersionId")
                .ok_or_else(|| malformed("GetSecretValue", "VersionId"))?,
            value: SecretString::from(
                text(&v, "SecretData").ok_or_else(|| malformed("GetSecretValue", "SecretData"))?,
            ),
            data_type: text(&v, "SecretDataType").unwrap_or_else(|| "text".into()),
            stages: stages(&v),
        })
    }

    /// UpdateSecretVersionStage: `stage` to `to` and/or off `from`.
    pub async fn update_secret_version_stage(
        &self,
        name: &str,
        stage: &str,
        to: Option<&str>,
        from: Option<&str>,
    ) -> Result<(), CallError> {
        let mut q = vec![
            ("SecretName", name.to_owned()),
            ("VersionStage", stage.to_owned()),
        ];
        if let Some(t) = to {
            q.push(("MoveToVersion", t.to_owned()));
        }
        if let Some(f) = from {
            q.push(("RemoveFromVersion", f.to_owned()));
        }
        self.call("UpdateSecretVersionStage", &q, &[]).await?;
        Ok(())
    }

    pub async fn describe_secret(
        &self,
        name: &str,
        fetch_tags: bool,
    ) -> Result<SecretInfo, CallError> {
        let mut q = vec![("SecretName", name.to_owned())];
        if fetch_tags {
            q.push(("FetchTags", "true".to_owned()));
        }
        let v = self.call("DescribeSecret", &q, &[]).await?;
        Ok(SecretInfo {
            arn: text(&v, "Arn").ok_or_else(|| malformed("DescribeSecret", "Arn"))?,
            name: text(&v, "SecretName").unwrap_or_else(|| name.to_owned()),
            tags: tags(&v),
            rotation_enabled: text(&v, "AutomaticRotation").as_deref() == Some("Enabled"),
            planned_delete: text(&v, "PlannedDeleteTime").is_some_and(|t| !t.is_empty()),
            updated: text(&v, "UpdateTime").as_deref().and_then(parse_time),
        })
    }

    /// One page of ListSecrets (page numbers from 1; at most 100 a page).
    pub async fn list_secrets(
        &self,
        page: u64,
        size: u64,
        fetch_tags: bool,
    ) -> Result<Page<Listed>, CallError> {
        let mut q = vec![
            ("PageNumber", page.to_string()),
            ("PageSize", size.to_string()),
        ];
        if fetch_tags {
            q.push(("FetchTags", "true".to_owned()));
        }
        let v = self.call("ListSecrets", &q, &[]).await?;
        let items = v
            .get("SecretList")
            .and_then(|l| l.get("Secret"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| {
                        Some(Listed {
                            name: text(s, "SecretName")?,
                            secret_type: text(s, "SecretType"),
                            tags: tags(s),
                            planned_delete: text(s, "PlannedDeleteTime")
                                .is_some_and(|t| !t.is_empty()),
                            updated: text(s, "UpdateTime").as_deref().and_then(parse_time),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Page {
            items,
            total: total(&v),
        })
    }

    /// One page of ListSecretVersionIds.
    pub async fn list_secret_version_ids(
        &self,
        name: &str,
        page: u64,
        size: u64,
        include_deprecated: bool,
    ) -> Result<Page<VersionEntry>, CallError> {
        let q = vec![
            ("SecretName", name.to_owned()),
            ("PageNumber", page.to_string()),
            ("PageSize", size.to_string()),
            ("IncludeDeprecated", include_deprecated.to_string()),
        ];
        let v = self.call("ListSecretVersionIds", &q, &[]).await?;
        let items = v
            .get("VersionIds")
            .and_then(|l| l.get("VersionId"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|e| {
                        Some(VersionEntry {
                            id: text(e, "VersionId")?,
                            stages: stages(e),
                            created: text(e, "CreateTime").as_deref().and_then(parse_time),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Page {
            items,
            total: total(&v),
        })
    }

    /// Every version (all pages).
    pub async fn all_versions(
        &self,
        name: &str,
        include_deprecated: bool,
    ) -> Result<Vec<VersionEntry>, CallError> {
        const SIZE: u64 = 100;
        let mut out = Vec::new();
        for page in 1.. {
            let p = self
                .list_secret_version_ids(name, page, SIZE, include_deprecated)
                .await?;
            let n = p.items.len();
            out.extend(p.items);
            // A short or empty page ends it too, whatever TotalCount said.
            if n == 0 || page * SIZE >= p.total {
                break;
            }
        }
        Ok(out)
    }

    pub async fn tag_resource(&self, name: &str, tags: &[(&str, String)]) -> Result<(), CallError> {
        self.call(
            "TagResource",
            &[("SecretName", name.to_owned()), ("Tags", tags_json(tags))],
            &[],
        )
        .await?;
        Ok(())
    }

    pub async fn untag_resource(&self, name: &str, keys: &[&str]) -> Result<(), CallError> {
        self.call(
            "UntagResource",
            &[
                ("SecretName", name.to_owned()),
                ("TagKeys", serde_json::json!(keys).to_string()),
            ],
            &[],
        )
        .await?;
        Ok(())
    }
}

/// STS, with the credentials that assume the role.
pub struct Sts<'a> {
    pub transport: &'a Transport,
    pub endpoint: &'a Endpoint,
    pub creds: &'a Credentials,
}

impl Sts<'_> {
    /// AssumeRole: temporary credentials for `role` (`acs:ram::<uid>:role/<name>`).
    pub async fn assume_role(
        &self,
        role: &RoleArn,
        session: &str,
        secs: u64,
    ) -> Result<Credentials, AwsError> {
        let v = self
            .transport
            .call(
                self.endpoint,
                "AssumeRole",
                STS_VERSION,
                &[
                    ("RoleArn", role.as_str().to_owned()),
                    ("RoleSessionName", session.to_owned()),
                    ("DurationSeconds", secs.to_string()),
                ],
                &[],
                self.creds,
            )
            .await
            .map_err(|e| {
                let mut e = e.error;
                // The role or the right to assume it is missing: a configuration problem.
                if matches!(e.class, ErrorClass::NotFound | ErrorClass::AccessDenied) {
                    e.class = ErrorClass::Setup;
                }
                e
            })?;
        let c = v
            .get("Credentials")
            .ok_or_else(|| malformed("AssumeRole", "Credentials"))?;
        let field = |k: &str| text(c, k).ok_or_else(|| malformed("AssumeRole", k));
        let expires = parse_time(&field("Expiration")?)
            .ok_or_else(|| malformed("AssumeRole", "valid Expiration"))?;
        Ok(Credentials::new(
            field("AccessKeyId")?,
            SecretString::from(field("AccessKeySecret")?),
            Some(SecretString::from(field("SecurityToken")?)),
        )
        .expiring(expires))
    }
}
