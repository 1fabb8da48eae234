//! The instance's state and its rules: secrets of three types, their versions with the
//! `current` / `previous` aliases, secret groups, custom metadata (JSON merge patch) and
//! version locks. No HTTP here: `api` calls these and renders the answers.
//!
//! Behaviour follows IBM's documentation:
//! - names: 2-256 characters, alphanumerics, dashes and dots, starting and ending with
//!   an alphanumeric; one secret of a type per name in the whole instance ("Known
//!   issues and limits");
//! - versions: the new one is `current`, the one before it `previous`; the metadata of
//!   up to 50 versions is kept, secret data only for current and previous;
//! - locks: a secret with a locked version cannot be deleted, and a new version is
//!   refused while the `previous` version is locked (412, "Locking secrets").

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::error::SmError;
use crate::rng::Rng;

/// Metadata of at most this many versions is kept per secret.
pub const MAX_VERSIONS: usize = 50;
/// `custom_metadata` and `version_custom_metadata` limit (10 KB).
const MAX_METADATA_BYTES: usize = 10 * 1024;
const MAX_ARBITRARY_BYTES: usize = 1024 * 1024;
const MAX_KV_BYTES: usize = 512 * 1024;
/// Alphabet of generated passwords (the default policy: digits, symbols, uppercase).
const PASSWORD_ALPHABET: &[u8] =
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!+";
pub const DEFAULT_GROUP: &str = "default";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretType {
    Arbitrary,
    Kv,
    UsernamePassword,
}

impl SecretType {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "arbitrary" => Some(Self::Arbitrary),
            "kv" => Some(Self::Kv),
            "username_password" => Some(Self::UsernamePassword),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Arbitrary => "arbitrary",
            Self::Kv => "kv",
            Self::UsernamePassword => "username_password",
        }
    }
}

/// The secret data of one version.
#[derive(Debug, Clone, PartialEq)]
pub enum SecretData {
    Payload(String),
    Data(Map<String, Value>),
    Credentials { username: String, password: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Lock {
    pub name: String,
    pub description: Option<String>,
    pub attributes: Option<Map<String, Value>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    /// `None` once the data is no longer retained (older than `previous`).
    pub data: Option<SecretData>,
    pub custom_metadata: Map<String, Value>,
    pub locks: Vec<Lock>,
    pub downloaded: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Secret {
    pub id: String,
    pub name: String,
    pub secret_type: SecretType,
    pub group_id: String,
    pub description: Option<String>,
    pub labels: Vec<String>,
    pub custom_metadata: Map<String, Value>,
    pub expiration_date: Option<String>,
    /// `username_password` only: the rotation policy (`auto_rotate`, `interval`, `unit`).
    pub rotation: Option<Map<String, Value>>,
    pub password_generation_policy: Option<Map<String, Value>>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
    pub retrieved_at: Option<DateTime<Utc>>,
    pub downloaded: bool,
    /// Oldest first; the last is `current`.
    pub versions: Vec<Version>,
}

impl Secret {
    /// Index of a version by id or by the aliases `current` / `previous`.
    pub fn version_index(&self, id: &str) -> Option<usize> {
        let n = self.versions.len();
        match id {
            "current" => n.checked_sub(1),
            "previous" => n.checked_sub(2),
            _ => self.versions.iter().position(|v| v.id == id),
        }
    }

    /// `current`, `previous` or none.
    pub fn alias_of(&self, index: usize) -> Option<&'static str> {
        let n = self.versions.len();
        if index + 1 == n {
            Some("current")
        } else if index + 2 == n {
            Some("previous")
        } else {
            None
        }
    }

    pub fn locks_total(&self) -> usize {
        self.versions.iter().map(|v| v.locks.len()).sum()
    }

    pub fn current(&self) -> Option<&Version> {
        self.versions.last()
    }

    pub fn auto_rotate(&self) -> bool {
        self.rotation
            .as_ref()
            .and_then(|r| r.get("auto_rotate"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Filters and paging of `GET /api/v2/secrets`.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub offset: usize,
    pub limit: usize,
    pub sort: Option<String>,
    pub search: Option<String>,
    pub groups: Vec<String>,
    pub secret_types: Vec<String>,
    pub match_all_labels: Vec<String>,
}

/// One instance.
#[derive(Debug)]
pub struct Instance {
    secrets: Vec<Secret>,
    groups: Vec<Group>,
    rng: Rng,
    created: DateTime<Utc>,
}

fn obj(v: &Value, what: &str) -> Result<Map<String, Value>, SmError> {
    v.as_object()
        .cloned()
        .ok_or_else(|| SmError::bad_request(format!("'{what}' must be a JSON object.")))
}

fn opt_str(body: &Map<String, Value>, key: &str) -> Result<Option<String>, SmError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(SmError::bad_request(format!("'{key}' must be a string."))),
    }
}

fn metadata(body: &Map<String, Value>, key: &str) -> Result<Map<String, Value>, SmError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(v) => {
            let m = obj(v, key)?;
            check_metadata_size(key, &m)?;
            Ok(m)
        }
    }
}

fn check_metadata_size(key: &str, m: &Map<String, Value>) -> Result<(), SmError> {
    let size = serde_json::to_vec(m).map(|b| b.len()).unwrap_or(usize::MAX);
    if size > MAX_METADATA_BYTES {
        return Err(SmError::bad_request(format!(
            "'{key}' is larger than 10 KB."
        )));
    }
    Ok(())
}

fn labels(body: &Map<String, Value>) -> Result<Vec<String>, SmError> {
    match body.get("labels") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) if a.len() <= 30 => a
            .iter()
            .map(|l| match l.as_str() {
                Some(s) if (2..=64).contains(&s.chars().count()) => Ok(s.to_owned()),
                _ => Err(SmError::bad_request(
                    "Each label must be a string of 2 - 64 characters.",
                )),
            })
            .collect(),
        Some(_) => Err(SmError::bad_request(
            "'labels' must be an array of at most 30 strings.",
        )),
    }
}

/// IBM's secret name rule.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    (2..=256).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'.')
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// RFC 7396 JSON merge patch: objects merge key by key, `null` removes a key, anything
/// else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

impl Instance {
    pub fn new(rng: Rng, now: DateTime<Utc>) -> Self {
        Self {
            secrets: Vec::new(),
            groups: Vec::new(),
            rng,
            created: now,
        }
    }

    // ------------------------------------------------------------------ groups

    pub fn default_group(&self) -> Group {
        Group {
            id: DEFAULT_GROUP.into(),
            name: DEFAULT_GROUP.into(),
            description: Some("The default secret group.".into()),
            created_at: self.created,
            updated_at: self.created,
        }
    }

    pub fn groups(&self) -> Vec<Group> {
        let mut all = vec![self.default_group()];
        all.extend(self.groups.iter().cloned());
        all
    }

    pub fn group(&self, id: &str) -> Result<Group, SmError> {
        self.groups()
            .into_iter()
            .find(|g| g.id == id)
            .ok_or_else(|| SmError::not_found("Secret group not found."))
    }

    pub fn create_group(&mut self, body: &Value, now: DateTime<Utc>) -> Result<Group, SmError> {
        let body = obj(body, "body")?;
        let name = opt_str(&body, "name")?
            .filter(|n| (2..=64).contains(&n.chars().count()))
            .ok_or_else(|| SmError::bad_request("'name' must be a string of 2 - 64 characters."))?;
        if self.groups().iter().any(|g| g.name == name) {
            return Err(SmError::conflict(
                "A secret group with the same name already exists.",
            ));
        }
        let g = Group {
            id: self.rng.uuid(),
            name,
            description: opt_str(&body, "description")?,
            created_at: now,
            updated_at: now,
        };
        self.groups.push(g.clone());
        Ok(g)
    }

    // ------------------------------------------------------------------ secrets

    pub fn secret(&self, id: &str) -> Result<&Secret, SmError> {
        self.secrets
            .iter()
            .find(|s| s.id == id)
            .ok_or_else(|| SmError::not_found("Secret not found."))
    }

    fn secret_mut(&mut self, id: &str) -> Result<&mut Secret, SmError> {
        self.secrets
            .iter_mut()
            .find(|s| s.id == id)
            .ok_or_else(|| SmError::not_found("Secret not found."))
    }

    /// `GET /secret_groups/{group name}/secret_types/{type}/secrets/{name}`.
    pub fn secret_by_name(
        &self,
        group_name: &str,
        ty: &str,
        name: &str,
    ) -> Result<&Secret, SmError> {
        let group = self
            .groups()
            .into_iter()
            .find(|g| g.name == group_name)
            .ok_or_else(|| SmError::not_found("Secret group not found."))?;
        self.secrets
            .iter()
            .find(|s| s.group_id == group.id && s.secret_type.as_str() == ty && s.name == name)
            .ok_or_else(|| SmError::not_found("Secret not found."))
    }

    /// The data of a new version from a prototype's fields (`payload`, `data` or
    /// `username` + `password`); `username` is the secret's for a new version.
    fn data_from(
        &mut self,
        ty: SecretType,
        body: &Map<String, Value>,
        username: Option<&str>,
    ) -> Result<SecretData, SmError> {
        match ty {
            SecretType::Arbitrary => {
                let p = opt_str(body, "payload")?
                    .ok_or_else(|| SmError::bad_request("'payload' is required."))?;
                if p.is_empty() || p.len() > MAX_ARBITRARY_BYTES {
                    return Err(SmError::bad_request("'payload' must hold 1 byte to 1 MB."));
                }
                Ok(SecretData::Payload(p))
            }
            SecretType::Kv => {
                let d = body
                    .get("data")
                    .ok_or_else(|| SmError::bad_request("'data' is required."))?;
                let d = obj(d, "data")?;
                let size = serde_json::to_vec(&d)
                    .map(|b| b.len())
                    .unwrap_or(usize::MAX);
                if size > MAX_KV_BYTES {
                    return Err(SmError::bad_request("'data' is larger than 512 KB."));
                }
                Ok(SecretData::Data(d))
            }
            SecretType::UsernamePassword => {
                let username = match username {
                    Some(u) => u.to_owned(),
                    None => opt_str(body, "username")?
                        .ok_or_else(|| SmError::bad_request("'username' is required."))?,
                };
                if !(2..=64).contains(&username.chars().count()) {
                    return Err(SmError::bad_request(
                        "'username' must have 2 - 64 characters.",
                    ));
                }
                let password = match opt_str(body, "password")? {
                    Some(p) => p,
                    // Omitted: Secrets Manager generates one (32 characters by default).
                    None => self.rng.text(PASSWORD_ALPHABET, 32),
                };
                if !(6..=256).contains(&password.chars().count()) {
                    return Err(SmError::bad_request(
                        "'password' must have 6 - 256 characters.",
                    ));
                }
                Ok(SecretData::Credentials { username, password })
            }
        }
    }

    pub fn create_secret(
        &mut self,
        body: &Value,
        who: &str,
        now: DateTime<Utc>,
    ) -> Result<&Secret, SmError> {
        let body = obj(body, "body")?;
        let ty = opt_str(&body, "secret_type")?
            .ok_or_else(|| SmError::bad_request("'secret_type' is required."))?;
        let ty = SecretType::parse(&ty).ok_or_else(|| {
            SmError::bad_request(format!(
                "Secret type '{ty}' is not supported by this simulator."
            ))
        })?;
        let name =
            opt_str(&body, "name")?.ok_or_else(|| SmError::bad_request("'name' is required."))?;
        if !valid_name(&name) {
            return Err(SmError::bad_request(
                "The name must have 2 - 256 characters: alphanumerics, dashes and dots, starting and ending with an alphanumeric character.",
            ));
        }
        let group_id = opt_str(&body, "secret_group_id")?.unwrap_or_else(|| DEFAULT_GROUP.into());
        self.group(&group_id)?;
        if self
            .secrets
            .iter()
            .any(|s| s.secret_type == ty && s.name == name)
        {
            return Err(SmError::conflict(
                "A secret with the same name and type already exists in this instance.",
            ));
        }
        let description = opt_str(&body, "description")?;
        let labels = labels(&body)?;
        let custom_metadata = metadata(&body, "custom_metadata")?;
        let version_custom_metadata = metadata(&body, "version_custom_metadata")?;
        let data = self.data_from(ty, &body, None)?;
        let (rotation, policy) = if ty == SecretType::UsernamePassword {
            let rotation = match body.get("rotation") {
                None | Some(Value::Null) => serde_json::json!({"auto_rotate": false}),
                Some(v) => Value::Object(obj(v, "rotation")?),
            };
            let policy = match body.get("password_generation_policy") {
                None | Some(Value::Null) => {
                    serde_json::json!({"length": 32, "include_digits": true, "include_symbols": true, "include_uppercase": true})
                }
                Some(v) => Value::Object(obj(v, "password_generation_policy")?),
            };
            (rotation.as_object().cloned(), policy.as_object().cloned())
        } else {
            (None, None)
        };
        let expiration_date = opt_str(&body, "expiration_date")?;
        let id = self.rng.uuid();
        let version = Version {
            id: self.rng.uuid(),
            created_at: now,
            created_by: who.to_owned(),
            data: Some(data),
            custom_metadata: version_custom_metadata,
            locks: Vec::new(),
            downloaded: false,
        };
        self.secrets.push(Secret {
            id,
            name,
            secret_type: ty,
            group_id,
            description,
            labels,
            custom_metadata,
            expiration_date,
            rotation,
            password_generation_policy: policy,
            created_at: now,
            created_by: who.to_owned(),
            updated_at: now,
            retrieved_at: None,
            downloaded: false,
            versions: vec![version],
        });
        self.secrets.last().ok_or_else(|| SmError::server(500))
    }

    /// `GET /secrets/{id}` and reads of a version's data: marks it downloaded.
    pub fn note_read(&mut self, id: &str, version: usize, now: DateTime<Utc>) {
        if let Ok(s) = self.secret_mut(id) {
            s.retrieved_at = Some(now);
            s.downloaded = true;
            if let Some(v) = s.versions.get_mut(version) {
                v.downloaded = true;
            }
        }
    }

    pub fn delete_secret(&mut self, id: &str) -> Result<(), SmError> {
        let s = self.secret(id)?;
        if s.locks_total() > 0 {
            return Err(SmError::locked());
        }
        self.secrets.retain(|s| s.id != id);
        Ok(())
    }

    /// `PATCH /secrets/{id}/metadata` (merge patch).
    pub fn update_metadata(
        &mut self,
        id: &str,
        patch: &Value,
        now: DateTime<Utc>,
    ) -> Result<&Secret, SmError> {
        let p = obj(patch, "body")?;
        let ty = self.secret(id)?.secret_type;
        let allowed: &[&str] = match ty {
            SecretType::Arbitrary => &[
                "name",
                "description",
                "labels",
                "custom_metadata",
                "expiration_date",
            ],
            SecretType::Kv => &["name", "description", "labels", "custom_metadata"],
            SecretType::UsernamePassword => &[
                "name",
                "description",
                "labels",
                "custom_metadata",
                "expiration_date",
                "rotation",
                "password_generation_policy",
            ],
        };
        if let Some(k) = p.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(SmError::bad_request(format!(
                "'{k}' cannot be updated for a secret of type {}.",
                ty.as_str()
            )));
        }
        let s = self.secret(id)?;
        let mut doc = serde_json::json!({
            "name": s.name,
            "description": s.description,
            "labels": s.labels,
            "custom_metadata": s.custom_metadata,
            "expiration_date": s.expiration_date,
            "rotation": s.rotation,
            "password_generation_policy": s.password_generation_policy,
        });
        merge_patch(&mut doc, patch);
        let doc = obj(&doc, "body")?;
        let name = opt_str(&doc, "name")?.unwrap_or_default();
        if !valid_name(&name) {
            return Err(SmError::bad_request(
                "The name does not follow the naming rules.",
            ));
        }
        if name != s.name
            && self
                .secrets
                .iter()
                .any(|o| o.id != id && o.secret_type == ty && o.name == name)
        {
            return Err(SmError::conflict(
                "A secret with the same name and type already exists in this instance.",
            ));
        }
        let description = opt_str(&doc, "description")?;
        let labels = labels(&doc)?;
        let custom_metadata = metadata(&doc, "custom_metadata")?;
        let expiration_date = opt_str(&doc, "expiration_date")?;
        let rotation = match doc.get("rotation") {
            Some(Value::Object(m)) => Some(m.clone()),
            _ => None,
        };
        let policy = match doc.get("password_generation_policy") {
            Some(Value::Object(m)) => Some(m.clone()),
            _ => None,
        };
        let s = self.secret_mut(id)?;
        s.name = name;
        s.description = description;
        s.labels = labels;
        s.custom_metadata = custom_metadata;
        s.expiration_date = expiration_date;
        if ty == SecretType::UsernamePassword {
            s.rotation = rotation.or_else(|| {
                serde_json::json!({"auto_rotate": false})
                    .as_object()
                    .cloned()
            });
            s.password_generation_policy = policy;
        }
        s.updated_at = now;
        Ok(s)
    }

    /// `POST /secrets/{id}/versions`: the new version becomes `current`.
    pub fn create_version(
        &mut self,
        id: &str,
        body: &Value,
        who: &str,
        now: DateTime<Utc>,
    ) -> Result<(&Secret, usize), SmError> {
        let body = obj(body, "body")?;
        let s = self.secret(id)?;
        let ty = s.secret_type;
        let username = match s.current().and_then(|v| v.data.as_ref()) {
            Some(SecretData::Credentials { username, .. }) => Some(username.clone()),
            _ => None,
        };
        if ty == SecretType::UsernamePassword && body.contains_key("username") {
            return Err(SmError::bad_request(
                "'username' cannot be changed by a new version.",
            ));
        }
        // Rotation is refused while the previous version is locked.
        if let Some(i) = s.version_index("previous") {
            if !s.versions[i].locks.is_empty() {
                return Err(SmError::locked());
            }
        }
        let version_custom_metadata = metadata(&body, "version_custom_metadata")?;
        let custom_metadata = match body.get("custom_metadata") {
            None | Some(Value::Null) => None,
            Some(_) => Some(metadata(&body, "custom_metadata")?),
        };
        let data = self.data_from(ty, &body, username.as_deref())?;
        let version = Version {
            id: self.rng.uuid(),
            created_at: now,
            created_by: who.to_owned(),
            data: Some(data),
            custom_metadata: version_custom_metadata,
            locks: Vec::new(),
            downloaded: false,
        };
        let s = self.secret_mut(id)?;
        s.versions.push(version);
        // Data is kept for current and previous only; metadata for MAX_VERSIONS.
        let n = s.versions.len();
        for v in s.versions.iter_mut().take(n.saturating_sub(2)) {
            v.data = None;
        }
        if n > MAX_VERSIONS {
            s.versions.drain(..n - MAX_VERSIONS);
        }
        if let Some(m) = custom_metadata {
            s.custom_metadata = m;
        }
        s.updated_at = now;
        let last = s.versions.len() - 1;
        Ok((s, last))
    }

    /// `PATCH /secrets/{id}/versions/{version}/metadata` (merge patch).
    pub fn update_version_metadata(
        &mut self,
        id: &str,
        version: &str,
        patch: &Value,
    ) -> Result<(&Secret, usize), SmError> {
        let p = obj(patch, "body")?;
        if let Some(k) = p.keys().find(|k| k.as_str() != "version_custom_metadata") {
            return Err(SmError::bad_request(format!(
                "'{k}' cannot be updated on a version."
            )));
        }
        let s = self.secret_mut(id)?;
        let i = s
            .version_index(version)
            .ok_or_else(|| SmError::not_found("Secret version not found."))?;
        let mut doc = serde_json::json!({"version_custom_metadata": s.versions[i].custom_metadata});
        merge_patch(&mut doc, patch);
        let doc = obj(&doc, "body")?;
        let m = metadata(&doc, "version_custom_metadata")?;
        s.versions[i].custom_metadata = m;
        Ok((s, i))
    }

    /// `GET /secrets`: filtered, sorted, then one page; and the total before paging.
    pub fn list(&self, q: &ListQuery) -> Result<(Vec<&Secret>, usize), SmError> {
        let search = q.search.as_deref().map(str::to_lowercase);
        let mut hits: Vec<&Secret> = self
            .secrets
            .iter()
            .filter(|s| q.groups.is_empty() || q.groups.contains(&s.group_id))
            .filter(|s| {
                q.secret_types.is_empty()
                    || q.secret_types.iter().any(|t| t == s.secret_type.as_str())
            })
            .filter(|s| q.match_all_labels.iter().all(|l| s.labels.contains(l)))
            .filter(|s| {
                let Some(needle) = &search else { return true };
                let hay = [
                    s.id.as_str(),
                    s.name.as_str(),
                    s.description.as_deref().unwrap_or(""),
                    s.secret_type.as_str(),
                ];
                hay.iter()
                    .any(|h| h.to_lowercase().contains(needle.as_str()))
                    || s.labels
                        .iter()
                        .any(|l| l.to_lowercase().contains(needle.as_str()))
            })
            .collect();
        if let Some(sort) = &q.sort {
            let (desc, field) = match sort.strip_prefix('-') {
                Some(f) => (true, f),
                None => (false, sort.as_str()),
            };
            match field {
                "id" => hits.sort_by(|a, b| a.id.cmp(&b.id)),
                "name" => hits.sort_by(|a, b| a.name.cmp(&b.name)),
                "created_at" => hits.sort_by_key(|s| s.created_at),
                "updated_at" => hits.sort_by_key(|s| s.updated_at),
                "retrieved_at" => hits.sort_by_key(|s| s.retrieved_at),
                "expiration_date" => hits.sort_by(|a, b| a.expiration_date.cmp(&b.expiration_date)),
                "secret_type" => hits.sort_by_key(|s| s.secret_type.as_str()),
                _ => return Err(SmError::bad_request(format!("Cannot sort by '{field}'."))),
            }
            if desc {
                hits.reverse();
            }
        }
        let total = hits.len();
        let page = hits.into_iter().skip(q.offset).take(q.limit).collect();
        Ok((page, total))
    }

    // ------------------------------------------------------------------ locks

    /// `POST .../versions/{version}/locks_bulk` (and `/secrets/{id}/locks_bulk` on
    /// `current`): adds or replaces locks by name. `mode=remove_previous` also removes
    /// locks of the same names from the previous version; `remove_previous_and_delete`
    /// then deletes the previous version's data if it has no lock left.
    pub fn create_locks(
        &mut self,
        id: &str,
        version: &str,
        body: &Value,
        mode: Option<&str>,
        who: &str,
        now: DateTime<Utc>,
    ) -> Result<&Secret, SmError> {
        let body = obj(body, "body")?;
        let locks = match body.get("locks") {
            Some(Value::Array(a)) if !a.is_empty() => a.clone(),
            _ => return Err(SmError::bad_request("'locks' must be a non-empty array.")),
        };
        let mut new = Vec::new();
        for l in &locks {
            let l = obj(l, "locks")?;
            let name = opt_str(&l, "name")?
                .filter(|n| (2..=64).contains(&n.chars().count()))
                .ok_or_else(|| {
                    SmError::bad_request("A lock needs a 'name' of 2 - 64 characters.")
                })?;
            let attributes = match l.get("attributes") {
                None | Some(Value::Null) => None,
                Some(v) => Some(obj(v, "attributes")?),
            };
            new.push(Lock {
                name,
                description: opt_str(&l, "description")?,
                attributes,
                created_at: now,
                updated_at: now,
                created_by: who.to_owned(),
            });
        }
        if !matches!(
            mode,
            None | Some("remove_previous") | Some("remove_previous_and_delete")
        ) {
            return Err(SmError::bad_request(
                "'mode' must be remove_previous or remove_previous_and_delete.",
            ));
        }
        let s = self.secret_mut(id)?;
        let i = s
            .version_index(version)
            .ok_or_else(|| SmError::not_found("Secret version not found."))?;
        if s.versions[i].data.is_none() {
            return Err(SmError::bad_request(
                "A lock can be applied only on a version that has secret data.",
            ));
        }
        let names: Vec<String> = new.iter().map(|l| l.name.clone()).collect();
        let v = &mut s.versions[i];
        v.locks.retain(|l| !names.contains(&l.name));
        v.locks.extend(new);
        if mode.is_some() && s.alias_of(i) == Some("current") {
            if let Some(p) = s.version_index("previous") {
                let prev = &mut s.versions[p];
                prev.locks.retain(|l| !names.contains(&l.name));
                if mode == Some("remove_previous_and_delete") && prev.locks.is_empty() {
                    prev.data = None;
                }
            }
        }
        s.updated_at = now;
        Ok(s)
    }

    /// `DELETE .../versions/{version}/locks_bulk?name=a,b`: no names removes them all.
    pub fn delete_locks(
        &mut self,
        id: &str,
        version: &str,
        names: &[String],
    ) -> Result<&Secret, SmError> {
        let s = self.secret_mut(id)?;
        let i = s
            .version_index(version)
            .ok_or_else(|| SmError::not_found("Secret version not found."))?;
        s.versions[i]
            .locks
            .retain(|l| !names.is_empty() && !names.contains(&l.name));
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    fn instance() -> Instance {
        Instance::new(Rng::new(1), t(0))
    }

    fn payload(s: &Secret, alias: &str) -> Option<String> {
        let i = s.version_index(alias)?;
        match &s.versions[i].data {
            Some(SecretData::Payload(p)) => Some(p.clone()),
            _ => None,
        }
    }

    fn arbitrary(i: &mut Instance, name: &str) -> String {
        i.create_secret(
            &json!({"secret_type": "arbitrary", "name": name, "payload": "v1"}),
            "me",
            t(1),
        )
        .unwrap()
        .id
        .clone()
    }

    /// The newest version is `current`, the one before it `previous`; ids resolve too.
    #[test]
    fn aliases_follow_the_newest_versions() {
        let mut i = instance();
        let id = arbitrary(&mut i, "db");
        let s = i.secret(&id).unwrap();
        assert_eq!(payload(s, "current").as_deref(), Some("v1"));
        assert_eq!(s.version_index("previous"), None);
        let first = s.versions[0].id.clone();

        let (_, idx) = i
            .create_version(&id, &json!({"payload": "v2"}), "me", t(2))
            .unwrap();
        assert_eq!(idx, 1);
        let s = i.secret(&id).unwrap();
        assert_eq!(payload(s, "current").as_deref(), Some("v2"));
        assert_eq!(payload(s, "previous").as_deref(), Some("v1"));
        assert_eq!(s.version_index(&first), Some(0));
        assert_eq!(s.alias_of(0), Some("previous"));
        assert_eq!(s.alias_of(1), Some("current"));
        assert_eq!(s.updated_at, t(2));
    }

    /// Data is kept for current and previous only; metadata for 50 versions.
    #[test]
    fn old_versions_lose_their_data_then_their_metadata() {
        let mut i = instance();
        let id = arbitrary(&mut i, "db");
        for n in 2..=3 {
            i.create_version(&id, &json!({"payload": format!("v{n}")}), "me", t(n))
                .unwrap();
        }
        let s = i.secret(&id).unwrap();
        assert!(s.versions[0].data.is_none());
        assert_eq!(s.alias_of(0), None);
        for n in 4..=60 {
            i.create_version(&id, &json!({"payload": format!("v{n}")}), "me", t(n))
                .unwrap();
        }
        let s = i.secret(&id).unwrap();
        assert_eq!(s.versions.len(), MAX_VERSIONS);
        assert_eq!(payload(s, "current").as_deref(), Some("v60"));
        assert_eq!(payload(s, "previous").as_deref(), Some("v59"));
    }

    /// One secret per (type, name) in the instance; names follow IBM's rule.
    #[test]
    fn names_are_unique_per_type_and_checked() {
        let mut i = instance();
        arbitrary(&mut i, "db");
        let again = i.create_secret(
            &json!({"secret_type": "arbitrary", "name": "db", "payload": "x"}),
            "me",
            t(1),
        );
        assert_eq!(again.unwrap_err().status, 409);
        let kv = i.create_secret(
            &json!({"secret_type": "kv", "name": "db", "data": {"a": 1}}),
            "me",
            t(1),
        );
        assert!(kv.is_ok());
        for bad in ["-db", "db-", "d", "d_b", "d b"] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(valid_name("db.prod-rotator-pending"));
    }

    /// A new username_password version keeps the username; the password may be generated.
    #[test]
    fn credentials_keep_their_username() {
        let mut i = instance();
        let id = i
            .create_secret(&json!({"secret_type": "username_password", "name": "app-user", "username": "app", "password": "secret-1"}), "me", t(1))
            .unwrap()
            .id
            .clone();
        let refused = i.create_version(
            &id,
            &json!({"username": "other", "password": "secret-2"}),
            "me",
            t(2),
        );
        assert_eq!(refused.unwrap_err().status, 400);
        let (s, idx) = i.create_version(&id, &json!({}), "me", t(2)).unwrap();
        match &s.versions[idx].data {
            Some(SecretData::Credentials { username, password }) => {
                assert_eq!(username, "app");
                assert_eq!(password.len(), 32);
            }
            other => panic!("{other:?}"),
        }
    }

    /// custom_metadata follows RFC 7396: keys merge, null removes.
    #[test]
    fn metadata_patches_merge() {
        let mut i = instance();
        let id = arbitrary(&mut i, "db");
        i.update_metadata(&id, &json!({"custom_metadata": {"a": "1", "b": "2"}}), t(2))
            .unwrap();
        let s = i
            .update_metadata(
                &id,
                &json!({"custom_metadata": {"b": null, "c": "3"}}),
                t(3),
            )
            .unwrap();
        assert_eq!(
            Value::Object(s.custom_metadata.clone()),
            json!({"a": "1", "c": "3"})
        );
        assert_eq!(s.name, "db");
        let bad = i.update_metadata(&id, &json!({"secret_type": "kv"}), t(4));
        assert_eq!(bad.unwrap_err().status, 400);
        let (s, v) = i
            .update_version_metadata(
                &id,
                "current",
                &json!({"version_custom_metadata": {"k": "v"}}),
            )
            .unwrap();
        assert_eq!(
            Value::Object(s.versions[v].custom_metadata.clone()),
            json!({"k": "v"})
        );
    }

    /// A locked previous version blocks a new version; a locked secret cannot be deleted.
    #[test]
    fn locks_block_rotation_and_deletion() {
        let mut i = instance();
        let id = arbitrary(&mut i, "db");
        i.create_version(&id, &json!({"payload": "v2"}), "me", t(2))
            .unwrap();
        i.create_locks(
            &id,
            "previous",
            &json!({"locks": [{"name": "app-1"}]}),
            None,
            "me",
            t(3),
        )
        .unwrap();
        let refused = i.create_version(&id, &json!({"payload": "v3"}), "me", t(4));
        assert_eq!(refused.unwrap_err().status, 412);
        assert_eq!(i.delete_secret(&id).unwrap_err().status, 412);
        // A lock on current with remove_previous takes the same name off previous.
        i.create_locks(
            &id,
            "current",
            &json!({"locks": [{"name": "app-1"}]}),
            Some("remove_previous"),
            "me",
            t(5),
        )
        .unwrap();
        i.create_version(&id, &json!({"payload": "v3"}), "me", t(6))
            .unwrap();
        i.delete_locks(&id, "previous", &[]).unwrap();
        assert!(i.delete_secret(&id).is_ok());
    }

    /// Paging, search and group filters.
    #[test]
    fn lists_page_and_filter() {
        let mut i = instance();
        for n in 0..5 {
            arbitrary(&mut i, &format!("app{n}"));
        }
        let g = i.create_group(&json!({"name": "team"}), t(1)).unwrap().id;
        i.create_secret(&json!({"secret_type": "arbitrary", "name": "other", "payload": "x", "secret_group_id": g}), "me", t(1)).unwrap();
        let q = ListQuery {
            limit: 2,
            offset: 2,
            ..Default::default()
        };
        let (page, total) = i.list(&q).unwrap();
        assert_eq!(total, 6);
        assert_eq!(
            page.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["app2", "app3"]
        );
        let q = ListQuery {
            limit: 10,
            search: Some("APP".into()),
            groups: vec!["default".into()],
            ..Default::default()
        };
        assert_eq!(i.list(&q).unwrap().1, 5);
        let q = ListQuery {
            limit: 10,
            groups: vec![g],
            ..Default::default()
        };
        assert_eq!(i.list(&q).unwrap().0[0].name, "other");
    }
}
