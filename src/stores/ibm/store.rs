//! [`IbmStore`]: the rotation protocol on IBM Cloud Secrets Manager, which has versions
//! (`current`, `previous`) but no pending stage.
//!
//! - AWSPENDING is the pending holder ([`super::holder`]) existing with a token; its
//!   logical version id is that token. The real secret never holds a value that the
//!   target has not accepted.
//! - The logical id of a version of the real secret is the token in its
//!   `version_custom_metadata.secret_rotator_token` when we created it, else IBM's
//!   version id. `current` is AWSCURRENT, `previous` AWSPREVIOUS.
//! - Finishing (AWSCURRENT to the token) creates a version on the real secret with the
//!   holder's value and the token, unless `current` already carries it (so a finish
//!   repeated after a crash creates nothing); removing AWSPENDING deletes the holder.
//!
//! Unlike AWS, IBM has no compare-and-set on a new version: a version created by
//! someone else between our check of `current` and our create becomes `previous`.

use super::client::IbmClient;
use super::holder::{self, Holder, KEY_FOR, KEY_TOKEN};
use super::iam::{ApiKey, TokenSource};
use super::retry::RetryPolicy;
use super::types::{SecretMeta as IbmMeta, VersionMeta};
use super::value::{self, Kind};
use super::IbmSettings;
use crate::error::{AwsError, ErrorClass};
use crate::ids::{SecretArn, SecretRef, VersionId};
use crate::rotation::store::{
    Found, SecretMeta, SecretStore, Select, VersionInfo, AWSCURRENT, AWSPENDING, AWSPREVIOUS,
};
use crate::stores::http::HttpClient;
use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Secrets described at once by `describe_many`.
const DESCRIBE_CONCURRENCY: usize = 8;

/// IBM Cloud Secrets Manager behind the core's `SecretStore` port. One API key (one IAM
/// token cache) for every instance the secrets name.
#[derive(Clone, Debug)]
pub struct IbmStore {
    client: IbmClient,
}

impl IbmStore {
    /// The API key is read from `settings.api_key_env` at each token exchange.
    pub fn new(settings: IbmSettings) -> Self {
        let key = ApiKey::Env(settings.api_key_env.clone());
        Self::with_key(&settings, key, RetryPolicy::default())
    }

    /// A store with the API key given (tests; a key from another source).
    pub fn with_api_key(settings: IbmSettings, key: SecretString) -> Self {
        Self::with_key(&settings, ApiKey::Value(key), RetryPolicy::default())
    }

    /// Another retry policy (tests shorten it).
    pub fn with_key(settings: &IbmSettings, key: ApiKey, retry: RetryPolicy) -> Self {
        let http = HttpClient::new();
        let tokens = Arc::new(TokenSource::new(
            http.clone(),
            settings.iam_url(),
            key,
            retry.clone(),
        ));
        Self {
            client: IbmClient::new(http, tokens, retry),
        }
    }

    /// The v2 client underneath (the conformance test drives it directly).
    pub fn client(&self) -> &IbmClient {
        &self.client
    }
}

/// The instance URL of a secret's route.
fn base<'a>(s: &'a SecretRef, op: &'static str) -> Result<&'a str, AwsError> {
    s.store
        .parts()
        .and_then(|p| p.endpoint.as_ref())
        .map(|e| e.as_str())
        .ok_or_else(|| {
            AwsError::new(
                ErrorClass::Setup,
                op,
                "MissingInstanceUrl",
                format!("secret {} has no IBM Secrets Manager instance URL", s.id),
            )
        })
}

/// The logical version id of a version of the real secret.
fn logical(v: &VersionMeta) -> VersionId {
    VersionId::new(v.custom(KEY_TOKEN).unwrap_or(&v.id).to_owned())
}

/// `current` and `previous` among listed versions: by alias when IBM gives one, else by
/// creation date (newest is current).
fn current_previous(versions: &[VersionMeta]) -> (Option<&VersionMeta>, Option<&VersionMeta>) {
    let alias = |a: &str| versions.iter().find(|v| v.alias.as_deref() == Some(a));
    if versions.iter().any(|v| v.alias.is_some()) {
        return (alias("current"), alias("previous"));
    }
    let mut by_date: Vec<&VersionMeta> = versions.iter().collect();
    by_date.sort_by_key(|v| std::cmp::Reverse(v.created_at));
    (by_date.first().copied(), by_date.get(1).copied())
}

fn not_found(op: &'static str, what: String) -> AwsError {
    AwsError::new(ErrorClass::NotFound, op, "ResourceNotFoundException", what)
}

fn conflict(op: &'static str, what: String) -> AwsError {
    AwsError::new(ErrorClass::Conflict, op, "VersionConflict", what)
}

fn holder_metadata(token: &VersionId, real: &IbmMeta) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(KEY_TOKEN.into(), json!(token.as_str()));
    m.insert(KEY_FOR.into(), json!(real.id));
    m
}

fn token_metadata(token: &VersionId) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(KEY_TOKEN.into(), json!(token.as_str()));
    m
}

impl IbmStore {
    /// The username of the real secret's current version (username_password only).
    async fn current_username(
        &self,
        base: &str,
        kind: Kind,
        id: &str,
    ) -> Result<Option<String>, AwsError> {
        if kind != Kind::UsernamePassword {
            return Ok(None);
        }
        let v = self.client.get_version(base, id, "current").await?;
        Ok(value::username(&v.data).map(str::to_owned))
    }

    /// The holder's value and token, read in one call (payload and metadata agree).
    async fn holder_value(
        &self,
        base: &str,
        holder: &Holder,
    ) -> Result<(Option<String>, SecretString), AwsError> {
        let h = self.client.get_secret(base, &holder.meta.id).await?;
        let token = h.meta.custom(KEY_TOKEN).map(str::to_owned);
        Ok((token, value::to_text(&h.data)))
    }

    async fn read_stage(
        &self,
        s: &SecretRef,
        stage: &str,
    ) -> Result<(VersionId, SecretString), AwsError> {
        const OP: &str = "get_secret_version";
        let base = base(s, OP)?;
        let id = s.id.as_str();
        match stage {
            AWSCURRENT | AWSPREVIOUS => {
                let alias = if stage == AWSCURRENT { "current" } else { "previous" };
                let v = self.client.get_version(base, id, alias).await.map_err(|e| {
                    if e.class == ErrorClass::NotFound && stage == AWSPREVIOUS {
                        not_found(OP, format!("secret {id} has no previous version"))
                    } else {
                        e
                    }
                })?;
                Ok((logical(&v.meta), value::to_text(&v.data)))
            }
            AWSPENDING => {
                let meta = self.client.get_secret_metadata(base, id).await?;
                let kind = Kind::parse(OP, &meta.secret_type)?;
                let holder = holder::find(&self.client, base, OP, &meta)
                    .await?
                    .ok_or_else(|| not_found(OP, format!("secret {id} has no AWSPENDING value")))?;
                let (token, payload) = self.holder_value(base, &holder).await?;
                let token = token.ok_or_else(|| not_found(OP, format!("secret {id} has no AWSPENDING value")))?;
                let username = self.current_username(base, kind, id).await?;
                Ok((VersionId::new(token), value::from_holder(kind, &payload, username.as_deref())))
            }
            other => Err(AwsError::new(
                ErrorClass::Invalid,
                OP,
                "InvalidStage",
                format!("stage {other} does not exist on IBM Secrets Manager (AWSCURRENT, AWSPREVIOUS, AWSPENDING do)"),
            )),
        }
    }

    /// AWSCURRENT to `to` (the holder's token), from `from`.
    async fn move_current(
        &self,
        s: &SecretRef,
        to: &VersionId,
        from: &VersionId,
    ) -> Result<(), AwsError> {
        const OP: &str = "create_secret_version";
        let base = base(s, OP)?;
        let id = s.id.as_str();
        let current = self
            .client
            .get_version_metadata(base, id, "current")
            .await?;
        let now = logical(&current);
        if &now == to {
            return Ok(());
        }
        if &now != from {
            return Err(conflict(
                OP,
                format!("AWSCURRENT of secret {id} is version {now}, not {from}"),
            ));
        }
        let meta = self.client.get_secret_metadata(base, id).await?;
        let kind = Kind::parse(OP, &meta.secret_type)?;
        let missing = || {
            not_found(
                OP,
                format!("secret {id} has no AWSPENDING value with version {to}"),
            )
        };
        let holder = holder::find(&self.client, base, OP, &meta)
            .await?
            .ok_or_else(missing)?;
        let h = self.client.get_secret(base, &holder.meta.id).await?;
        if h.meta.custom(KEY_TOKEN) != Some(to.as_str()) {
            return Err(missing());
        }
        let payload = value::to_text(&h.data);
        let proto = value::version_prototype(OP, kind, &payload, token_metadata(to))?;
        match self.client.create_version(base, id, &proto).await {
            Ok(_) => Ok(()),
            Err(e) if e.class == ErrorClass::Transient => {
                // No answer: the version may exist. `current` says whether it does.
                let again = self
                    .client
                    .get_version_metadata(base, id, "current")
                    .await?;
                if &logical(&again) == to {
                    Ok(())
                } else {
                    Err(e)
                }
            }
            Err(e) => Err(e),
        }
    }

    /// AWSPENDING off `from`: the holder goes if it carries `from`.
    async fn drop_pending(&self, s: &SecretRef, from: &VersionId) -> Result<(), AwsError> {
        const OP: &str = "delete_secret";
        let base = base(s, OP)?;
        let meta = self.client.get_secret_metadata(base, s.id.as_str()).await?;
        let Some(holder) = holder::find(&self.client, base, OP, &meta).await? else {
            return Ok(());
        };
        match holder.token.as_deref() {
            Some(t) if t == from.as_str() => {
                match self.client.delete_secret(base, &holder.meta.id).await {
                    // Deleting needs IBM's Manager role; Writer (what the rest of the
                    // protocol needs) may only edit. A holder without a token holds
                    // nothing pending, so taking the token off ends the pending value as
                    // well (the holder keeps the now-current value, in the same group).
                    Err(e) if e.class == ErrorClass::AccessDenied => {
                        tracing::warn!(secret = %s.id, holder = %holder.meta.name, "the API key may not delete the pending holder (IBM's Manager role); taking its token off instead");
                        // An empty token, not a null: the same result whether IBM merges
                        // custom_metadata key by key or replaces it whole.
                        let patch = serde_json::json!({"custom_metadata": {
                            holder::KEY_FOR: s.id.as_str(),
                            holder::KEY_TOKEN: "",
                        }});
                        self.client
                            .update_secret_metadata(base, &holder.meta.id, &patch)
                            .await
                            .map(|_| ())
                    }
                    Err(e) if e.class != ErrorClass::NotFound => Err(e),
                    _ => Ok(()),
                }
            }
            Some(t) => Err(conflict(
                OP,
                format!("AWSPENDING of secret {} is version {t}, not {from}", s.id),
            )),
            // A holder without a token holds nothing pending.
            None => Ok(()),
        }
    }

    /// Writes the holder: created, or its value and token replaced in one new version.
    async fn write_holder(
        &self,
        base: &str,
        real: &IbmMeta,
        existing: Option<&Holder>,
        token: &VersionId,
        payload: &SecretString,
    ) -> Result<(), AwsError> {
        const OP: &str = "put_pending";
        let meta = Value::Object(holder_metadata(token, real));
        let vmeta = Value::Object(token_metadata(token));
        if let Some(h) = existing {
            let proto = json!({"payload": payload.expose_secret(), "custom_metadata": meta, "version_custom_metadata": vmeta});
            return self
                .client
                .create_version(base, &h.meta.id, &proto)
                .await
                .map(drop);
        }
        let proto = json!({
            "secret_type": "arbitrary",
            "name": holder::name(OP, &real.name)?,
            "secret_group_id": real.group_id,
            "description": format!("Pending value of a secret-rotator rotation of secret {}; deleted when the rotation finishes.", real.id),
            "payload": payload.expose_secret(),
            "custom_metadata": meta,
            "version_custom_metadata": vmeta,
        });
        self.client.create_secret(base, &proto).await.map(drop)
    }
}

impl SecretStore for IbmStore {
    async fn describe(&self, s: &SecretRef) -> Result<SecretMeta, AwsError> {
        const OP: &str = "get_secret_metadata";
        let base = base(s, OP)?;
        let meta = self.client.get_secret_metadata(base, s.id.as_str()).await?;
        let listed = self.client.list_versions(base, s.id.as_str()).await?;
        let holder = holder::find(&self.client, base, OP, &meta).await?;
        let mut versions: BTreeMap<VersionId, Vec<String>> = BTreeMap::new();
        let (current, previous) = current_previous(&listed);
        for (v, stage) in [(current, AWSCURRENT), (previous, AWSPREVIOUS)] {
            if let Some(v) = v {
                versions
                    .entry(logical(v))
                    .or_default()
                    .push(stage.to_owned());
            }
        }
        let mut last_changed = meta.updated_at;
        if let Some(h) = &holder {
            if let Some(t) = &h.token {
                versions
                    .entry(VersionId::new(t.clone()))
                    .or_default()
                    .push(AWSPENDING.to_owned());
            }
            last_changed = last_changed.max(h.meta.updated_at);
        }
        let tags = meta
            .custom_metadata
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect();
        Ok(SecretMeta {
            arn: SecretArn::new(meta.crn.clone()),
            name: meta.name.clone(),
            versions,
            tags,
            rotation_enabled: meta.auto_rotate,
            deleted: false,
            last_changed,
        })
    }

    async fn describe_many(&self, refs: &[SecretRef], found: Found<'_>) {
        let jobs: Vec<_> = refs
            .iter()
            .enumerate()
            .map(|(i, r)| async move { (i, self.describe(r).await) })
            .collect();
        let mut described = futures::stream::iter(jobs).buffer_unordered(DESCRIBE_CONCURRENCY);
        while let Some((i, r)) = described.next().await {
            found(i, r);
        }
    }

    async fn versions(&self, s: &SecretRef) -> Result<Vec<VersionInfo>, AwsError> {
        const OP: &str = "list_secret_versions";
        let base = base(s, OP)?;
        let meta = self.client.get_secret_metadata(base, s.id.as_str()).await?;
        let listed = self.client.list_versions(base, s.id.as_str()).await?;
        let (current, previous) = current_previous(&listed);
        let (cur_id, prev_id) = (
            current.map(|v| v.id.clone()),
            previous.map(|v| v.id.clone()),
        );
        let mut out: Vec<VersionInfo> = listed
            .iter()
            .map(|v| {
                let mut stages = Vec::new();
                if Some(&v.id) == cur_id.as_ref() {
                    stages.push(AWSCURRENT.to_owned());
                }
                if Some(&v.id) == prev_id.as_ref() {
                    stages.push(AWSPREVIOUS.to_owned());
                }
                VersionInfo {
                    id: logical(v),
                    stages,
                    created: v.created_at,
                }
            })
            .collect();
        if let Some(h) = holder::find(&self.client, base, OP, &meta).await? {
            if let Some(t) = h.token {
                let id = VersionId::new(t);
                match out.iter_mut().find(|v| v.id == id) {
                    Some(v) => v.stages.push(AWSPENDING.to_owned()),
                    None => out.push(VersionInfo {
                        id,
                        stages: vec![AWSPENDING.to_owned()],
                        // When the pending value was last written.
                        created: h.meta.updated_at,
                    }),
                }
            }
        }
        Ok(out)
    }

    async fn get_value(
        &self,
        s: &SecretRef,
        select: Select<'_>,
    ) -> Result<(VersionId, SecretString), AwsError> {
        match select {
            Select::Stage(stage) => self.read_stage(s, stage).await,
            Select::Version(v, stage) => {
                let (id, value) = self.read_stage(s, stage).await?;
                if &id != v {
                    return Err(not_found(
                        "get_secret_version",
                        format!("secret {} has no version {v} with stage {stage}", s.id),
                    ));
                }
                Ok((id, value))
            }
        }
    }

    async fn put_pending(
        &self,
        s: &SecretRef,
        token: &VersionId,
        value: &SecretString,
    ) -> Result<VersionId, AwsError> {
        const OP: &str = "put_pending";
        let base = base(s, OP)?;
        let id = s.id.as_str();
        let meta = self.client.get_secret_metadata(base, id).await?;
        let kind = Kind::parse(OP, &meta.secret_type)?;
        let username = self.current_username(base, kind, id).await?;
        let payload = value::holder_payload(OP, kind, value, username.as_deref())?;
        // Twice at most: a create that lost a race (or whose answer was lost) is decided
        // again on what the holder then says.
        for round in 0..2 {
            let holder = holder::find(&self.client, base, OP, &meta).await?;
            if let Some(h) = &holder {
                if h.token.as_deref() == Some(token.as_str()) {
                    let (_, existing) = self.holder_value(base, h).await?;
                    return if existing.expose_secret() == payload.expose_secret() {
                        Ok(token.clone())
                    } else {
                        Err(conflict(
                            OP,
                            format!("version {token} of secret {id} already holds another value"),
                        ))
                    };
                }
            }
            // IBM refuses a new version while the previous one is locked (it would be
            // dropped). Found here, before the target learns the value, not at the finish
            // when the target would already hold a value that cannot become current.
            // A key whose role may not list locks (`secrets-manager.secret-version-locks.list`)
            // skips the check: a lock then shows at the finish, as IBM's own refusal.
            let locks = match self.client.version_locks_total(base, id, "previous").await {
                Err(e) if e.class == ErrorClass::AccessDenied => {
                    tracing::warn!(secret = %id, "the API key may not list version locks; a locked previous version will only be found at the finish");
                    0
                }
                other => other?,
            };
            if locks > 0 {
                return Err(AwsError::new(
                    ErrorClass::Invalid,
                    OP,
                    "previous_version_locked",
                    format!("the previous version of secret {id} is locked ({locks} lock(s)); IBM refuses a new version until it is unlocked, so nothing was changed"),
                ));
            }
            let listed = self.client.list_versions(base, id).await?;
            if listed.iter().any(|v| &logical(v) == token) {
                return Err(conflict(
                    OP,
                    format!("secret {id} already has a version {token}"),
                ));
            }
            match self
                .write_holder(base, &meta, holder.as_ref(), token, &payload)
                .await
            {
                Ok(()) => return Ok(token.clone()),
                Err(e)
                    if round == 0
                        && matches!(e.class, ErrorClass::Conflict | ErrorClass::Transient) =>
                {
                    tracing::debug!(secret = %id, error = %e, "writing the pending holder failed; looking again");
                }
                Err(e) => return Err(e),
            }
        }
        Err(conflict(
            OP,
            format!("the pending holder of secret {id} changed while it was written"),
        ))
    }

    async fn update_stage(
        &self,
        s: &SecretRef,
        stage: &str,
        to: Option<&VersionId>,
        from: Option<&VersionId>,
    ) -> Result<(), AwsError> {
        match (stage, to, from) {
            (AWSCURRENT, Some(to), Some(from)) => self.move_current(s, to, from).await,
            (AWSPENDING, None, Some(from)) => self.drop_pending(s, from).await,
            _ => Err(AwsError::new(
                ErrorClass::Invalid,
                "update_stage",
                "UnsupportedStageMove",
                format!(
                    "IBM Secrets Manager supports moving AWSCURRENT from one version to another and removing AWSPENDING, not {stage} to {} from {}",
                    to.map_or("none", |v| v.as_str()),
                    from.map_or("none", |v| v.as_str())
                ),
            )),
        }
    }

    async fn tag(&self, s: &SecretRef, tags: &[(&str, String)]) -> Result<(), AwsError> {
        const OP: &str = "update_secret_metadata";
        let base = base(s, OP)?;
        let id = s.id.as_str();
        // Read-modify-write: the whole map is sent, so other keys survive whether IBM
        // merges custom_metadata (merge patch) or replaces it.
        let meta = self.client.get_secret_metadata(base, id).await?;
        let mut custom = meta.custom_metadata.clone();
        for (k, v) in tags {
            custom.insert((*k).to_owned(), json!(v));
        }
        if custom == meta.custom_metadata {
            return Ok(());
        }
        self.client
            .update_secret_metadata(base, id, &json!({"custom_metadata": custom}))
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn v(id: &str, alias: Option<&str>, at: i64, token: Option<&str>) -> VersionMeta {
        VersionMeta {
            id: id.into(),
            alias: alias.map(str::to_owned),
            created_at: DateTime::<Utc>::from_timestamp(at, 0),
            custom_metadata: token
                .map(|t| token_metadata(&VersionId::from(t)))
                .unwrap_or_default(),
            payload_available: true,
        }
    }

    #[test]
    fn aliases_win_and_dates_are_the_fallback() {
        let listed = [
            v("a", Some("previous"), 5, None),
            v("b", Some("current"), 1, Some("tok")),
        ];
        let (c, p) = current_previous(&listed);
        assert_eq!(c.map(logical), Some(VersionId::from("tok")));
        assert_eq!(p.map(logical), Some(VersionId::from("a")));
        let listed = [
            v("old", None, 1, None),
            v("new", None, 9, None),
            v("mid", None, 5, None),
        ];
        let (c, p) = current_previous(&listed);
        assert_eq!(
            (c.unwrap().id.as_str(), p.unwrap().id.as_str()),
            ("new", "mid")
        );
    }
}
