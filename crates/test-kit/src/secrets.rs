//! An in-memory Secrets Manager ([`FakeStore`]) with the documented staging-label rules,
//! a call log and per-operation counters. Faults and latency are not here: wrap the store
//! in [`Faulty`](crate::Faulty) or [`Latency`](crate::Latency).
//!
//! The rules it follows, each from the Secrets Manager API reference:
//! - PutSecretValue: without `VersionStages` the new version gets AWSCURRENT; a label
//!   named moves here from whichever version had it; when AWSCURRENT moves, AWSPREVIOUS
//!   moves to the version it came from. A `ClientRequestToken` already used by a version
//!   of the secret: same value, the request is ignored (idempotent); another value, it
//!   fails with `ResourceExistsException` ("you can't modify an existing version").
//!   Tokens are 32 to 64 characters.
//! - UpdateSecretVersionStage: a label attached to another version moves only if that
//!   version is named in `RemoveFromVersionId` ("if the label is attached and you either
//!   do not specify this parameter, or the version ID does not match, then the operation
//!   fails"); AWSCURRENT cannot be removed without being moved; moving AWSCURRENT moves
//!   AWSPREVIOUS.
//! - A version without labels is deprecated: readable by id, but left out of
//!   ListSecretVersionIds (without `IncludeDeprecated`) and DescribeSecret's
//!   `VersionIdsToStages`.
//! - A secret scheduled for deletion can be described but not read or written
//!   (`InvalidRequestException`).
//! - TagResource merges keys.

use crate::clock::{Clock, Sequence};
use crate::errors::secret_not_found;
use crate::{lock, ACCOUNT_ID, REGION};
use chrono::{DateTime, Utc};
use rotator_core::error::{AwsError, ErrorClass};
use rotator_core::ids::{SecretArn, SecretId, SecretRef, VersionId};
use rotator_core::rotation::store::{
    Found, SecretMeta, SecretStore, Select, VersionInfo, AWSCURRENT, AWSPENDING, AWSPREVIOUS,
};
use secrecy::{ExposeSecret, SecretString};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::time::Instant;

/// One version of a stored secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredVersion {
    pub id: VersionId,
    pub value: String,
    pub stages: Vec<String>,
    pub created: DateTime<Utc>,
}

impl StoredVersion {
    pub fn has(&self, stage: &str) -> bool {
        self.stages.iter().any(|s| s == stage)
    }
}

/// A secret as the fake holds it (inspect with [`FakeStore::secret`], change with
/// [`FakeStore::edit`]).
#[derive(Clone, Debug)]
pub struct StoredSecret {
    pub arn: SecretArn,
    pub name: String,
    /// In creation order.
    pub versions: Vec<StoredVersion>,
    pub tags: BTreeMap<String, String>,
    pub rotation_enabled: bool,
    pub deleted: bool,
    /// LastChangedDate: the time of the last successful write of any kind.
    pub last_changed: DateTime<Utc>,
}

impl StoredSecret {
    pub fn holder(&self, stage: &str) -> Option<&StoredVersion> {
        self.versions.iter().find(|v| v.has(stage))
    }

    pub fn version(&self, id: &VersionId) -> Option<&StoredVersion> {
        self.versions.iter().find(|v| &v.id == id)
    }

    fn version_mut(&mut self, id: &VersionId) -> Option<&mut StoredVersion> {
        self.versions.iter_mut().find(|v| &v.id == id)
    }

    fn detach(&mut self, stage: &str) {
        for v in &mut self.versions {
            v.stages.retain(|s| s != stage);
        }
    }

    fn attach(&mut self, stage: &str, to: &VersionId) {
        self.detach(stage);
        if let Some(v) = self.version_mut(to) {
            v.stages.push(stage.to_owned());
        }
    }

    /// Attaches AWSCURRENT to `to`; as AWS documents, AWSPREVIOUS follows to the version
    /// AWSCURRENT was taken from.
    fn make_current(&mut self, to: &VersionId) {
        let old = self.holder(AWSCURRENT).map(|v| v.id.clone());
        if old.as_ref() == Some(to) {
            return;
        }
        self.attach(AWSCURRENT, to);
        if let Some(old) = old {
            self.attach(AWSPREVIOUS, &old);
        }
    }

    /// Attaches every label of `stages` to `to`, each moved from wherever it was.
    fn label(&mut self, to: &VersionId, stages: &[&str]) {
        for st in stages {
            if *st == AWSCURRENT {
                self.make_current(to);
            } else {
                self.attach(st, to);
            }
        }
    }

    /// DescribeSecret's view.
    pub fn meta(&self) -> SecretMeta {
        SecretMeta {
            arn: self.arn.clone(),
            name: self.name.clone(),
            // VersionIdsToStages lists only versions with labels (others are deprecated).
            versions: self
                .versions
                .iter()
                .filter(|v| !v.stages.is_empty())
                .map(|v| (v.id.clone(), v.stages.clone()))
                .collect(),
            tags: self.tags.clone(),
            rotation_enabled: self.rotation_enabled,
            deleted: self.deleted,
            last_changed: Some(self.last_changed),
        }
    }
}

/// One call the store received, in order.
#[derive(Clone, Debug)]
pub struct StoreCall {
    /// From the [`Sequence`] the store shares with other fakes.
    pub seq: u64,
    pub op: &'static str,
    pub at: Instant,
    /// The error returned, if the call failed.
    pub error: Option<String>,
    /// Stage/version details for writes, e.g. `AWSCURRENT to=.. from=..`.
    pub detail: String,
}

impl StoreCall {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// The operations that change a secret.
pub const WRITE_OPS: [&str; 3] = ["PutSecretValue", "UpdateSecretVersionStage", "TagResource"];

/// The secrets, indexed by name and by ARN (a bench holds 100,000).
#[derive(Default)]
struct Db {
    secrets: Vec<StoredSecret>,
    index: HashMap<String, usize>,
    next_version: u64,
    next_suffix: u64,
}

impl Db {
    fn position(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    fn reindex(&mut self, i: usize) {
        let s = &self.secrets[i];
        self.index.insert(s.name.clone(), i);
        self.index.insert(s.arn.as_str().to_owned(), i);
    }

    fn find(&mut self, id: &SecretId, op: &'static str) -> Result<&mut StoredSecret, AwsError> {
        match self.position(id.as_str()) {
            Some(i) => Ok(&mut self.secrets[i]),
            None => Err(secret_not_found(op)),
        }
    }

    /// A secret that may be read or written: not scheduled for deletion.
    fn live(&mut self, id: &SecretId, op: &'static str) -> Result<&mut StoredSecret, AwsError> {
        let s = self.find(id, op)?;
        if s.deleted {
            return Err(AwsError::new(
                ErrorClass::Invalid,
                op,
                "InvalidRequestException",
                "You can't perform this operation on the secret because it was marked for deletion.",
            ));
        }
        Ok(s)
    }

    fn new_version_id(&mut self) -> VersionId {
        self.next_version += 1;
        seeded_id(self.next_version)
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct OpCount {
    reached: usize,
    ok: usize,
}

struct StoreState {
    db: Db,
    log_calls: bool,
    calls: Vec<StoreCall>,
    counts: HashMap<&'static str, OpCount>,
    /// Writes that succeeded since the store was created (not reset by `clear_calls`).
    writes: usize,
}

/// An in-memory Secrets Manager; clones share the secrets.
#[derive(Clone)]
pub struct FakeStore {
    state: Arc<Mutex<StoreState>>,
    clock: Arc<dyn Clock>,
    seq: Sequence,
}

impl FakeStore {
    /// An empty store whose dates come from `clock` and whose calls take numbers from `seq`.
    pub fn new<C: Clock + Clone>(clock: &C, seq: &Sequence) -> Self {
        Self {
            state: Arc::new(Mutex::new(StoreState {
                db: Db::default(),
                log_calls: true,
                calls: Vec::new(),
                counts: HashMap::new(),
                writes: 0,
            })),
            clock: Arc::new(clock.clone()),
            seq: seq.clone(),
        }
    }

    /// Keeps counters only, no call log (a benchmark making millions of calls).
    pub fn without_call_log(self) -> Self {
        self.st().log_calls = false;
        self
    }

    fn st(&self) -> MutexGuard<'_, StoreState> {
        lock(&self.state)
    }

    // ---- set-up -------------------------------------------------------------------

    /// Creates a secret whose first version (AWSCURRENT) holds `value`; returns its ARN.
    /// Panics if the name is taken (set-up code).
    pub fn create_secret(&self, name: &str, value: &str) -> SecretArn {
        self.create_tagged(name, value, &[])
    }

    /// [`Self::create_secret`] with tags, as CreateSecret takes them.
    pub fn create_tagged(&self, name: &str, value: &str, tags: &[(&str, &str)]) -> SecretArn {
        let now = self.clock.now();
        let mut st = self.st();
        let db = &mut st.db;
        assert!(
            db.position(name).is_none(),
            "a secret named {name} already exists"
        );
        db.next_suffix += 1;
        let arn = SecretArn::new(format!(
            "arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:{name}-Ab{:04}",
            db.next_suffix
        ));
        let id = db.new_version_id();
        db.secrets.push(StoredSecret {
            arn: arn.clone(),
            name: name.to_owned(),
            versions: vec![StoredVersion {
                id,
                value: value.to_owned(),
                stages: vec![AWSCURRENT.to_owned()],
                created: now,
            }],
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            rotation_enabled: false,
            deleted: false,
            last_changed: now,
        });
        let i = db.secrets.len() - 1;
        db.reindex(i);
        arn
    }

    /// Adds a version as another tool would (no call logged), moving `stages` to it.
    pub fn seed_version(
        &self,
        name: &str,
        id: &str,
        value: &str,
        stages: &[&str],
        created: DateTime<Utc>,
    ) {
        self.edit(name, |s| {
            let id = VersionId::from(id);
            s.versions.push(StoredVersion {
                id: id.clone(),
                value: value.to_owned(),
                stages: vec![],
                created,
            });
            s.label(&id, stages);
        });
    }

    /// Changes a secret directly (no call logged). Panics if there is no such secret.
    pub fn edit(&self, name: &str, f: impl FnOnce(&mut StoredSecret)) {
        let mut st = self.st();
        let db = &mut st.db;
        let i = db.position(name).expect("no such secret");
        let (old_name, old_arn) = (db.secrets[i].name.clone(), db.secrets[i].arn.clone());
        f(&mut db.secrets[i]);
        if db.secrets[i].name != old_name || db.secrets[i].arn != old_arn {
            db.index.remove(&old_name);
            db.index.remove(old_arn.as_str());
            db.reindex(i);
        }
    }

    // ---- inspection ---------------------------------------------------------------

    /// The secret by name or ARN. Panics if there is none.
    pub fn secret(&self, name: &str) -> StoredSecret {
        let st = self.st();
        let i = st.db.position(name).expect("no such secret");
        st.db.secrets[i].clone()
    }

    /// How many secrets satisfy `pred` (without cloning them).
    pub fn count_secrets(&self, pred: impl Fn(&StoredSecret) -> bool) -> usize {
        self.st().db.secrets.iter().filter(|s| pred(s)).count()
    }

    pub fn holder(&self, name: &str, stage: &str) -> Option<VersionId> {
        self.secret(name).holder(stage).map(|v| v.id.clone())
    }

    pub fn value_of(&self, name: &str, id: &VersionId) -> String {
        self.secret(name)
            .version(id)
            .expect("no such version")
            .value
            .clone()
    }

    /// Every value any version of any secret has ever held (versions are immutable), to
    /// check that none appears in an output.
    pub fn all_values(&self) -> Vec<String> {
        self.st()
            .db
            .secrets
            .iter()
            .flat_map(|s| s.versions.iter().map(|v| v.value.clone()))
            .collect()
    }

    /// Every call that reached the store, in order (empty after `without_call_log`).
    pub fn calls(&self) -> Vec<StoreCall> {
        self.st().calls.clone()
    }

    /// Operation names of every call, in order.
    pub fn ops(&self) -> Vec<&'static str> {
        self.st().calls.iter().map(|c| c.op).collect()
    }

    /// Calls of `op` that reached the store (whatever their result).
    pub fn op_count(&self, op: &str) -> usize {
        self.st().counts.get(op).map_or(0, |c| c.reached)
    }

    /// Calls of `op` that succeeded.
    pub fn count_ok(&self, op: &str) -> usize {
        self.st().counts.get(op).map_or(0, |c| c.ok)
    }

    /// Calls that tried to change something (whatever their result).
    pub fn write_attempts(&self) -> usize {
        WRITE_OPS.iter().map(|op| self.op_count(op)).sum()
    }

    /// Writes that succeeded since the store was created.
    pub fn writes_ok(&self) -> usize {
        self.st().writes
    }

    /// Forgets the call log and the counters (not [`Self::writes_ok`]).
    pub fn clear_calls(&self) {
        let mut st = self.st();
        st.calls.clear();
        st.counts.clear();
    }

    // ---- the API --------------------------------------------------------------------

    /// Runs one API call on the state and logs it.
    fn call<T>(
        &self,
        op: &'static str,
        detail: impl FnOnce() -> String,
        f: impl FnOnce(&mut Db, DateTime<Utc>) -> Result<T, AwsError>,
    ) -> Result<T, AwsError> {
        let now = self.clock.now();
        let seq = self.seq.next();
        let mut st = self.st();
        let st = &mut *st;
        let result = f(&mut st.db, now);
        let count = st.counts.entry(op).or_default();
        count.reached += 1;
        if result.is_ok() {
            count.ok += 1;
            if WRITE_OPS.contains(&op) {
                st.writes += 1;
            }
        }
        if st.log_calls {
            st.calls.push(StoreCall {
                seq,
                op,
                at: Instant::now(),
                error: result.as_ref().err().map(|e| e.to_string()),
                detail: detail(),
            });
        }
        result
    }

    /// GetSecretValue: by `version_id` and/or `stage` (neither: AWSCURRENT). A version
    /// without labels (deprecated) is still readable by its id.
    pub async fn get_secret_value(
        &self,
        id: &SecretId,
        version_id: Option<&VersionId>,
        stage: Option<&str>,
    ) -> Result<(VersionId, String), AwsError> {
        const OP: &str = "GetSecretValue";
        self.call(OP, String::new, |db, _| {
            let s = db.live(id, OP)?;
            let stage = match (version_id, stage) {
                (None, None) => Some(AWSCURRENT),
                _ => stage,
            };
            let v = s.versions.iter().find(|v| {
                version_id.is_none_or(|want| &v.id == want) && stage.is_none_or(|st| v.has(st))
            });
            match v {
                Some(v) => Ok((v.id.clone(), v.value.clone())),
                None => Err(AwsError::new(
                    ErrorClass::NotFound,
                    OP,
                    "ResourceNotFoundException",
                    match (version_id, stage) {
                        (Some(v), Some(st)) => format!("Secrets Manager can't find the specified secret value for VersionId: {v} and staging label: {st}"),
                        (Some(v), None) => format!("Secrets Manager can't find the specified secret value for VersionId: {v}"),
                        (None, st) => format!("Secrets Manager can't find the specified secret value for staging label: {}", st.unwrap_or_default()),
                    },
                )),
            }
        })
    }

    /// PutSecretValue. A token equal to an existing version id: same value is an
    /// idempotent success that changes nothing; another value is ResourceExistsException.
    /// Labels default to AWSCURRENT; each label named moves here from any other version.
    pub async fn put_secret_value(
        &self,
        id: &SecretId,
        token: Option<&VersionId>,
        value: &str,
        stages: Option<&[&str]>,
    ) -> Result<VersionId, AwsError> {
        const OP: &str = "PutSecretValue";
        let detail = || {
            format!(
                "token={} stages={stages:?}",
                token.map_or("-", |t| t.as_str())
            )
        };
        self.call(OP, detail, |db, now| {
            if let Some(t) = token {
                if !(32..=64).contains(&t.as_str().len()) {
                    return Err(AwsError::new(
                        ErrorClass::Invalid,
                        OP,
                        "ValidationException",
                        "1 validation error detected: Value at 'clientRequestToken' failed to satisfy constraint: Member must have length between 32 and 64",
                    ));
                }
            }
            let vid = match token {
                Some(t) => t.clone(),
                None => db.new_version_id(),
            };
            let s = db.live(id, OP)?;
            if let Some(existing) = s.version(&vid) {
                return if existing.value == value {
                    Ok(existing.id.clone())
                } else {
                    Err(AwsError::new(
                        ErrorClass::Conflict,
                        OP,
                        "ResourceExistsException",
                        "You can't modify an existing version, you can only create a new version.",
                    ))
                };
            }
            s.versions.push(StoredVersion {
                id: vid.clone(),
                value: value.to_owned(),
                stages: vec![],
                created: now,
            });
            s.last_changed = now;
            s.label(&vid, stages.unwrap_or(&[AWSCURRENT][..]));
            Ok(vid)
        })
    }

    /// UpdateSecretVersionStage. Moving a label attached elsewhere requires naming that
    /// version in `remove_from`; removing a label from a version that lacks it fails;
    /// AWSCURRENT cannot be removed without being moved; moving AWSCURRENT moves
    /// AWSPREVIOUS to the version it came from.
    pub async fn update_secret_version_stage(
        &self,
        id: &SecretId,
        stage: &str,
        move_to: Option<&VersionId>,
        remove_from: Option<&VersionId>,
    ) -> Result<(), AwsError> {
        const OP: &str = "UpdateSecretVersionStage";
        let detail = || {
            format!(
                "{stage} to={} from={}",
                move_to.map_or("-", |v| v.as_str()),
                remove_from.map_or("-", |v| v.as_str())
            )
        };
        self.call(OP, detail, |db, now| {
            let invalid = |m: String| AwsError::new(ErrorClass::Invalid, OP, "InvalidParameterException", m);
            let s = db.live(id, OP)?;
            for v in [move_to, remove_from].into_iter().flatten() {
                if s.version(v).is_none() {
                    return Err(AwsError::new(
                        ErrorClass::NotFound,
                        OP,
                        "ResourceNotFoundException",
                        format!("Secrets Manager can't find the specified secret version: {v}"),
                    ));
                }
            }
            let holder = s.holder(stage).map(|v| v.id.clone());
            if let Some(from) = remove_from {
                if holder.as_ref() != Some(from) {
                    return Err(invalid(match &holder {
                        Some(h) => format!("The parameter RemoveFromVersionId can't be {from} because the staging label {stage} is currently attached to version {h}."),
                        None => format!("The staging label {stage} is not attached to version {from}."),
                    }));
                }
            }
            match move_to {
                None => {
                    if remove_from.is_none() {
                        return Err(invalid("You must specify MoveToVersionId or RemoveFromVersionId.".into()));
                    }
                    if stage == AWSCURRENT {
                        return Err(invalid("You can't remove the staging label AWSCURRENT from a version without moving it to another version.".into()));
                    }
                    s.detach(stage);
                }
                Some(to) => {
                    if let Some(h) = &holder {
                        if h != to && remove_from != Some(h) {
                            return Err(invalid(format!("The staging label {stage} is currently attached to version {h}; specify it in RemoveFromVersionId to move it.")));
                        }
                    }
                    s.label(to, &[stage]);
                }
            }
            s.last_changed = now;
            Ok(())
        })
    }

    /// TagResource: merges `tags` into the secret's.
    pub async fn tag_resource(
        &self,
        id: &SecretId,
        tags: &[(&str, String)],
    ) -> Result<(), AwsError> {
        const OP: &str = "TagResource";
        let detail = || {
            tags.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        self.call(OP, detail, |db, now| {
            let s = db.live(id, OP)?;
            for (k, v) in tags {
                s.tags.insert((*k).to_owned(), v.clone());
            }
            s.last_changed = now;
            Ok(())
        })
    }
}

/// A UUID-shaped id for versions not created with a client request token.
fn seeded_id(n: u64) -> VersionId {
    VersionId::new(format!("0000aaaa-0000-4000-8000-{n:012x}"))
}

impl SecretStore for FakeStore {
    async fn describe(&self, s: &SecretRef) -> Result<SecretMeta, AwsError> {
        const OP: &str = "DescribeSecret";
        self.call(OP, String::new, |db, _| Ok(db.find(&s.id, OP)?.meta()))
    }

    /// One DescribeSecret per ref, in order, each answered as it is made, errors in place
    /// (the adapter's path below ten secrets per account).
    async fn describe_many(&self, refs: &[SecretRef], found: Found<'_>) {
        for (i, r) in refs.iter().enumerate() {
            found(i, self.describe(r).await);
        }
    }

    async fn versions(&self, s: &SecretRef) -> Result<Vec<VersionInfo>, AwsError> {
        const OP: &str = "ListSecretVersionIds";
        self.call(OP, String::new, |db, _| {
            // Without IncludeDeprecated, versions without labels are left out.
            Ok(db
                .find(&s.id, OP)?
                .versions
                .iter()
                .filter(|v| !v.stages.is_empty())
                .map(|v| VersionInfo {
                    id: v.id.clone(),
                    stages: v.stages.clone(),
                    created: Some(v.created),
                })
                .collect())
        })
    }

    async fn get_value(
        &self,
        s: &SecretRef,
        select: Select<'_>,
    ) -> Result<(VersionId, SecretString), AwsError> {
        let (vid, stage) = match select {
            Select::Stage(st) => (None, st),
            Select::Version(v, st) => (Some(v), st),
        };
        let (v, value) = self.get_secret_value(&s.id, vid, Some(stage)).await?;
        Ok((v, SecretString::from(value)))
    }

    async fn put_pending(
        &self,
        s: &SecretRef,
        token: &VersionId,
        value: &SecretString,
    ) -> Result<VersionId, AwsError> {
        self.put_secret_value(
            &s.id,
            Some(token),
            value.expose_secret(),
            Some(&[AWSPENDING]),
        )
        .await
    }

    async fn update_stage(
        &self,
        s: &SecretRef,
        stage: &str,
        to: Option<&VersionId>,
        from: Option<&VersionId>,
    ) -> Result<(), AwsError> {
        self.update_secret_version_stage(&s.id, stage, to, from)
            .await
    }

    async fn tag(&self, s: &SecretRef, tags: &[(&str, String)]) -> Result<(), AwsError> {
        self.tag_resource(&s.id, tags).await
    }
}

#[cfg(test)]
mod tests;
