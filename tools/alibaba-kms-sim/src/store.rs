//! The secrets and their versions, with KMS Secrets Manager's stage rules:
//!
//! - a stage marks at most one version of a secret; giving it to a version takes it
//!   from the version that had it;
//! - when `ACSCurrent` leaves a version (PutSecretValue without stages, or
//!   UpdateSecretVersionStage), that version gets `ACSPrevious`;
//! - `ACSCurrent` and `ACSPrevious` cannot be removed, only moved ("system-reserved
//!   stages"); a secret has at most 8 stages and 10 versions (the earliest version
//!   without a stage goes when an 11th is stored);
//! - PutSecretValue with an existing VersionId succeeds without a change when the value
//!   is the same, and is refused when it differs;
//! - a version left without a stage is "deprecated": ListSecretVersionIds shows it only
//!   with IncludeDeprecated=true.

use chrono::{DateTime, Utc};

use crate::error::{self, ApiError};

pub const CURRENT: &str = "ACSCurrent";
pub const PREVIOUS: &str = "ACSPrevious";
pub const MAX_VERSIONS: usize = 10;
pub const MAX_STAGES: usize = 8;
pub const MAX_TAGS: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub id: String,
    pub data: String,
    pub data_type: String,
    pub stages: Vec<String>,
    pub created: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Secret {
    pub name: String,
    pub arn: String,
    pub description: String,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub planned_delete: Option<DateTime<Utc>>,
    /// Automatic rotation switched on at creation (`EnableAutomaticRotation`).
    pub rotation_interval_secs: Option<u64>,
    pub tags: Vec<(String, String)>,
    /// In the order they were stored.
    pub versions: Vec<Version>,
}

impl Secret {
    pub fn version(&self, id: &str) -> Option<&Version> {
        self.versions.iter().find(|v| v.id == id)
    }

    pub fn with_stage(&self, stage: &str) -> Option<&Version> {
        self.versions
            .iter()
            .find(|v| v.stages.iter().any(|s| s == stage))
    }

    fn index(&self, id: &str) -> Result<usize, ApiError> {
        self.versions
            .iter()
            .position(|v| v.id == id)
            .ok_or_else(error::not_found)
    }

    /// The distinct stages on any version.
    fn stage_count_with(&self, extra: &[String]) -> usize {
        let mut all: Vec<&str> = self
            .versions
            .iter()
            .flat_map(|v| v.stages.iter().map(String::as_str))
            .chain(extra.iter().map(String::as_str))
            .collect();
        all.sort_unstable();
        all.dedup();
        all.len()
    }

    /// Gives `stage` to version `to`, taking it from whichever version had it; moving
    /// `ACSCurrent` hands `ACSPrevious` to the version it left.
    fn attach(&mut self, stage: &str, to: usize) {
        self.attach_moving_previous(stage, to, true)
    }

    fn attach_moving_previous(&mut self, stage: &str, to: usize, move_previous: bool) {
        let had = self
            .versions
            .iter()
            .position(|v| v.stages.iter().any(|s| s == stage));
        if had == Some(to) {
            return;
        }
        if let Some(from) = had {
            self.versions[from].stages.retain(|s| s != stage);
        }
        self.versions[to].stages.push(stage.to_owned());
        if stage == CURRENT && move_previous {
            if let Some(from) = had {
                self.attach(PREVIOUS, from);
            }
        }
    }

    fn detach(&mut self, stage: &str, from: usize) {
        self.versions[from].stages.retain(|s| s != stage);
    }

    /// Drops the earliest versions without a stage until at most `MAX_VERSIONS` remain.
    fn trim(&mut self) {
        while self.versions.len() > MAX_VERSIONS {
            match self.versions.iter().position(|v| v.stages.is_empty()) {
                Some(i) => {
                    self.versions.remove(i);
                }
                None => break,
            }
        }
    }
}

/// Which stages a stored version gets.
fn check_stage(stage: &str) -> Result<(), ApiError> {
    let ok = !stage.is_empty()
        && stage.len() <= 64
        && stage
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(error::invalid_parameter(format!(
            "The specified parameter VersionStage is not valid: {stage:?}"
        )))
    }
}

pub fn check_secret_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 192
        && !name.starts_with("acs/")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_/+=.@-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(error::invalid_parameter(
            "The specified parameter SecretName is not valid.",
        ))
    }
}

fn check_version_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > 64 {
        return Err(error::invalid_parameter(
            "The specified parameter VersionId is not valid.",
        ));
    }
    Ok(())
}

/// Tag keys and values: up to 128 characters of letters, digits and `/\_-.+=:@`; a key
/// is not empty and does not start with `aliyun` or `acs:`.
pub fn check_tag(key: &str, value: &str) -> Result<(), ApiError> {
    let chars_ok = |s: &str| {
        s.len() <= 128
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/\\_-.+=:@".contains(&b))
    };
    let lower = key.to_ascii_lowercase();
    if key.is_empty()
        || !chars_ok(key)
        || !chars_ok(value)
        || lower.starts_with("aliyun")
        || lower.starts_with("acs:")
    {
        return Err(error::invalid_parameter(format!(
            "The specified tag is not valid: {key:?}"
        )));
    }
    Ok(())
}

#[derive(Debug, Default)]
pub struct Store {
    /// In creation order.
    secrets: Vec<Secret>,
    /// `--manual-previous`: moving ACSCurrent with UpdateSecretVersionStage does not move
    /// ACSPrevious.
    pub manual_previous: bool,
}

pub struct NewSecret {
    pub name: String,
    pub arn: String,
    pub version_id: String,
    pub data: String,
    pub data_type: String,
    pub description: String,
    pub tags: Vec<(String, String)>,
    pub rotation_interval_secs: Option<u64>,
}

impl Store {
    pub fn secrets(&self) -> &[Secret] {
        &self.secrets
    }

    /// A secret by name or ARN, deleted or not.
    pub fn get(&self, name: &str) -> Result<&Secret, ApiError> {
        self.secrets
            .iter()
            .find(|s| s.name == name || s.arn == name)
            .ok_or_else(error::not_found)
    }

    /// A secret that is not scheduled for deletion, for changes and reads of values.
    fn live_mut(&mut self, name: &str) -> Result<&mut Secret, ApiError> {
        let s = self
            .secrets
            .iter_mut()
            .find(|s| s.name == name || s.arn == name)
            .ok_or_else(error::not_found)?;
        if s.planned_delete.is_some() {
            return Err(error::in_delete_window());
        }
        Ok(s)
    }

    pub fn live(&self, name: &str) -> Result<&Secret, ApiError> {
        let s = self.get(name)?;
        if s.planned_delete.is_some() {
            return Err(error::in_delete_window());
        }
        Ok(s)
    }

    pub fn create(&mut self, new: NewSecret, now: DateTime<Utc>) -> Result<&Secret, ApiError> {
        check_secret_name(&new.name)?;
        check_version_id(&new.version_id)?;
        if new.tags.len() > MAX_TAGS {
            return Err(error::limit_exceeded("tag"));
        }
        for (k, v) in &new.tags {
            check_tag(k, v)?;
        }
        if let Some(s) = self.secrets.iter().find(|s| s.name == new.name) {
            return Err(if s.planned_delete.is_some() {
                error::in_delete_window()
            } else {
                error::exists()
            });
        }
        self.secrets.push(Secret {
            name: new.name,
            arn: new.arn,
            description: new.description,
            created: now,
            updated: now,
            planned_delete: None,
            rotation_interval_secs: new.rotation_interval_secs,
            tags: new.tags,
            versions: vec![Version {
                id: new.version_id,
                data: new.data,
                data_type: new.data_type,
                stages: vec![CURRENT.to_owned()],
                created: now,
            }],
        });
        self.secrets.last().ok_or_else(error::not_found)
    }

    /// PutSecretValue. `stages` is `None` when the request named none (then the new
    /// version becomes `ACSCurrent`). Returns the stored version.
    pub fn put_value(
        &mut self,
        name: &str,
        version_id: &str,
        data: &str,
        data_type: &str,
        stages: Option<Vec<String>>,
        now: DateTime<Utc>,
    ) -> Result<Version, ApiError> {
        check_version_id(version_id)?;
        let secret = self.live_mut(name)?;
        if let Some(existing) = secret.version(version_id) {
            // Idempotent on the same value; a different value never overwrites one.
            if existing.data == data && existing.data_type == data_type {
                return Ok(existing.clone());
            }
            return Err(error::exists());
        }
        let stages = stages.unwrap_or_else(|| vec![CURRENT.to_owned()]);
        for s in &stages {
            check_stage(s)?;
        }
        if secret.stage_count_with(&stages) > MAX_STAGES {
            return Err(error::limit_exceeded("version stage"));
        }
        secret.versions.push(Version {
            id: version_id.to_owned(),
            data: data.to_owned(),
            data_type: data_type.to_owned(),
            stages: Vec::new(),
            created: now,
        });
        let at = secret.versions.len() - 1;
        let mut seen: Vec<&str> = Vec::new();
        for s in &stages {
            if !seen.contains(&s.as_str()) {
                secret.attach(s, at);
                seen.push(s);
            }
        }
        secret.trim();
        secret.updated = now;
        secret
            .version(version_id)
            .cloned()
            .ok_or_else(error::not_found)
    }

    /// UpdateSecretVersionStage, in Alibaba's three scenarios: add (`to` only), remove
    /// (`from` only, custom stages), move (`from` and `to`).
    pub fn update_stage(
        &mut self,
        name: &str,
        stage: &str,
        to: Option<&str>,
        from: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        check_stage(stage)?;
        let reserved = stage == CURRENT || stage == PREVIOUS;
        let manual_previous = self.manual_previous;
        let secret = self.live_mut(name)?;
        match (to, from) {
            (None, None) => {
                return Err(error::invalid_parameter(
                    "Specify at least one of MoveToVersion and RemoveFromVersion.",
                ))
            }
            (None, Some(_)) if reserved => {
                return Err(error::invalid_parameter(format!(
                    "{stage} is a system-reserved stage: it can only be moved to another version (MoveToVersion)."
                )))
            }
            _ => {}
        }
        let from_at = from.map(|f| secret.index(f)).transpose()?;
        let to_at = to.map(|t| secret.index(t)).transpose()?;
        if let Some(f) = from_at {
            if !secret.versions[f].stages.iter().any(|s| s == stage) {
                return Err(error::invalid_parameter(format!(
                    "The version stage {stage} is not attached to the version in RemoveFromVersion."
                )));
            }
        }
        if to_at.is_some() && secret.stage_count_with(&[stage.to_owned()]) > MAX_STAGES {
            return Err(error::limit_exceeded("version stage"));
        }
        match (to_at, from_at) {
            (Some(t), _) => secret.attach_moving_previous(stage, t, !manual_previous),
            (None, Some(f)) => secret.detach(stage, f),
            (None, None) => {}
        }
        secret.updated = now;
        Ok(())
    }

    /// TagResource: adds tags, replacing the values of keys already there.
    pub fn tag(
        &mut self,
        name: &str,
        tags: &[(String, String)],
        now: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        for (k, v) in tags {
            check_tag(k, v)?;
        }
        let secret = self.live_mut(name)?;
        let mut merged = secret.tags.clone();
        for (k, v) in tags {
            match merged.iter_mut().find(|(mk, _)| mk == k) {
                Some(slot) => slot.1.clone_from(v),
                None => merged.push((k.clone(), v.clone())),
            }
        }
        if merged.len() > MAX_TAGS {
            return Err(error::limit_exceeded("tag"));
        }
        secret.tags = merged;
        secret.updated = now;
        Ok(())
    }

    pub fn untag(
        &mut self,
        name: &str,
        keys: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        let secret = self.live_mut(name)?;
        secret.tags.retain(|(k, _)| !keys.contains(k));
        secret.updated = now;
        Ok(())
    }

    /// DeleteSecret: at once with `force`, else after `window_days`.
    pub fn delete(
        &mut self,
        name: &str,
        force: bool,
        window_days: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, ApiError> {
        let at = self
            .secrets
            .iter()
            .position(|s| s.name == name || s.arn == name)
            .ok_or_else(error::not_found)?;
        if force {
            self.secrets.remove(at);
            return Ok(None);
        }
        let when = now + chrono::Duration::days(window_days);
        self.secrets[at].planned_delete = Some(when);
        Ok(Some(when))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(n: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + n, 0).unwrap_or_default()
    }

    fn store() -> Store {
        let mut s = Store::default();
        s.create(
            NewSecret {
                name: "db".into(),
                arn: "acs:kms:cn-hangzhou:1:secret/db".into(),
                version_id: "v1".into(),
                data: "one".into(),
                data_type: "text".into(),
                description: String::new(),
                tags: Vec::new(),
                rotation_interval_secs: None,
            },
            t(0),
        )
        .unwrap();
        s
    }

    fn stages(s: &Store) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<_> = s
            .get("db")
            .unwrap()
            .versions
            .iter()
            .map(|v| {
                let mut st = v.stages.clone();
                st.sort();
                (v.id.clone(), st)
            })
            .collect();
        out.sort();
        out
    }

    fn pair(v: &str, st: &[&str]) -> (String, Vec<String>) {
        (v.to_owned(), st.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn a_put_without_stages_becomes_current_and_the_old_current_previous() {
        let mut s = store();
        s.put_value("db", "v2", "two", "text", None, t(1)).unwrap();
        assert_eq!(
            stages(&s),
            vec![pair("v1", &[PREVIOUS]), pair("v2", &[CURRENT])]
        );
        s.put_value("db", "v3", "three", "text", None, t(2))
            .unwrap();
        assert_eq!(
            stages(&s),
            vec![
                pair("v1", &[]),
                pair("v2", &[PREVIOUS]),
                pair("v3", &[CURRENT])
            ]
        );
    }

    #[test]
    fn a_pending_version_then_a_move_of_current_drags_previous_along() {
        let mut s = store();
        s.put_value(
            "db",
            "v2",
            "two",
            "text",
            Some(vec!["Pending".into()]),
            t(1),
        )
        .unwrap();
        assert_eq!(
            stages(&s),
            vec![pair("v1", &[CURRENT]), pair("v2", &["Pending"])]
        );
        s.update_stage("db", CURRENT, Some("v2"), Some("v1"), t(2))
            .unwrap();
        assert_eq!(
            stages(&s),
            vec![pair("v1", &[PREVIOUS]), pair("v2", &[CURRENT, "Pending"])]
        );
        s.update_stage("db", "Pending", None, Some("v2"), t(3))
            .unwrap();
        assert_eq!(
            stages(&s),
            vec![pair("v1", &[PREVIOUS]), pair("v2", &[CURRENT])]
        );
        // Moving current to where it already is changes nothing.
        s.update_stage("db", CURRENT, Some("v2"), None, t(4))
            .unwrap();
        assert_eq!(
            stages(&s),
            vec![pair("v1", &[PREVIOUS]), pair("v2", &[CURRENT])]
        );
    }

    #[test]
    fn a_stage_added_to_a_version_leaves_the_one_that_had_it() {
        let mut s = store();
        s.put_value("db", "v2", "two", "text", Some(vec!["A".into()]), t(1))
            .unwrap();
        s.update_stage("db", "A", Some("v1"), None, t(2)).unwrap();
        assert_eq!(
            stages(&s),
            vec![pair("v1", &["A", CURRENT]), pair("v2", &[])]
        );
    }

    #[test]
    fn system_stages_are_moved_never_removed() {
        let mut s = store();
        s.put_value("db", "v2", "two", "text", None, t(1)).unwrap();
        for stage in [CURRENT, PREVIOUS] {
            let e = s
                .update_stage("db", stage, None, Some("v2"), t(2))
                .unwrap_err();
            assert_eq!(e.code, "InvalidParameter");
        }
        let e = s.update_stage("db", "X", None, None, t(2)).unwrap_err();
        assert_eq!(e.code, "InvalidParameter");
        // The stage must be on RemoveFromVersion.
        let e = s
            .update_stage("db", CURRENT, Some("v1"), Some("v1"), t(2))
            .unwrap_err();
        assert_eq!(e.code, "InvalidParameter");
        let e = s
            .update_stage("db", CURRENT, Some("nope"), None, t(2))
            .unwrap_err();
        assert_eq!((e.status, e.code), (404, "Forbidden.ResourceNotFound"));
    }

    #[test]
    fn an_existing_version_id_is_idempotent_on_the_same_value_only() {
        let mut s = store();
        let first = s
            .put_value("db", "v2", "two", "text", Some(vec!["P".into()]), t(1))
            .unwrap();
        // Same value: success, nothing moves (not even with other stages asked for).
        let again = s.put_value("db", "v2", "two", "text", None, t(2)).unwrap();
        assert_eq!(again, first);
        assert_eq!(stages(&s), vec![pair("v1", &[CURRENT]), pair("v2", &["P"])]);
        let e = s
            .put_value("db", "v2", "other", "text", Some(vec!["P".into()]), t(3))
            .unwrap_err();
        assert_eq!((e.status, e.code), (409, "Rejected.ResourceExist"));
        assert_eq!(s.get("db").unwrap().version("v2").unwrap().data, "two");
    }

    #[test]
    fn the_eleventh_version_drops_the_earliest_unstaged_one() {
        let mut s = store();
        for i in 2..=11 {
            s.put_value("db", &format!("v{i}"), &format!("d{i}"), "text", None, t(i))
                .unwrap();
        }
        let secret = s.get("db").unwrap();
        assert_eq!(secret.versions.len(), MAX_VERSIONS);
        assert!(secret.version("v1").is_none());
        assert_eq!(secret.with_stage(CURRENT).unwrap().id, "v11");
        assert_eq!(secret.with_stage(PREVIOUS).unwrap().id, "v10");
    }

    #[test]
    fn at_most_eight_stages() {
        let mut s = store();
        for i in 0..7 {
            s.update_stage("db", &format!("S{i}"), Some("v1"), None, t(1))
                .unwrap();
        }
        let e = s
            .update_stage("db", "S7", Some("v1"), None, t(1))
            .unwrap_err();
        assert_eq!(e.code, "Rejected.LimitExceeded");
    }

    #[test]
    fn tags_follow_the_documented_character_rules() {
        assert!(check_tag("secret-rotator:last-rotated", "2026-03-03T02:00:00Z").is_ok());
        assert!(check_tag("acs:x", "v").is_err());
        assert!(check_tag("AliyunX", "v").is_err());
        assert!(check_tag("a b", "v").is_err());
        assert!(check_tag(&"k".repeat(129), "v").is_err());
        let mut s = store();
        s.tag("db", &[("a".into(), "1".into())], t(1)).unwrap();
        s.tag(
            "db",
            &[("a".into(), "2".into()), ("b".into(), "3".into())],
            t(2),
        )
        .unwrap();
        assert_eq!(
            s.get("db").unwrap().tags,
            vec![
                ("a".to_owned(), "2".to_owned()),
                ("b".to_owned(), "3".to_owned())
            ]
        );
    }

    #[test]
    fn a_secret_in_its_delete_window_refuses_changes_and_its_name() {
        let mut s = store();
        s.delete("db", false, 7, t(1)).unwrap();
        let e = s
            .put_value("db", "v2", "x", "text", None, t(2))
            .unwrap_err();
        assert_eq!(e.code, "Rejected.ResourceInDeleteWindow");
        assert!(s.get("db").unwrap().planned_delete.is_some());
        s.delete("db", true, 0, t(3)).unwrap();
        assert_eq!(s.get("db").unwrap_err().code, "Forbidden.ResourceNotFound");
    }
}
