//! In-memory fakes of Secrets Manager ([`FakeStore`]) and ECS ([`FakeEcs`]) that follow
//! AWS's documented behaviour, with a call log and fault injection, for engine tests on
//! paused tokio time.
//!
//! Both fakes are cheap handles over shared state: clone one into an `Engine` and keep
//! another in the test to inspect (or to hand to a second engine after a "crash").
#![allow(dead_code)] // Each test binary uses a different subset.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use secret_rotator::clock::{Clock, ManualClock};
use secret_rotator::error::{AwsError, ErrorClass};
use secret_rotator::ids::{
    Account, ClusterName, DeploymentId, SecretArn, SecretId, SecretRef, ServiceName, ServiceRef,
    VersionId,
};
use secret_rotator::rotation::deploy::{
    Deployer, DeploymentState, Described, Forced, ServiceState, DESCRIBE_BATCH,
};
use secret_rotator::rotation::store::{
    SecretMeta, SecretStore, Select, VersionInfo, AWSCURRENT, AWSPENDING, AWSPREVIOUS,
};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

pub const REGION: &str = "eu-west-1";
pub const ACCOUNT_ID: &str = "111111111111";

// ---------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------

/// A counter shared by both fakes, so a test can order store calls against ECS calls
/// (e.g. "every service was forced after AWSCURRENT moved"), which timestamps on paused
/// time cannot do.
#[derive(Clone, Debug, Default)]
pub struct Sequence(Arc<AtomicU64>);

impl Sequence {
    pub fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An injected "the process died" error (see [`FakeStore::crash_after_writes`]).
pub fn crash(operation: &'static str) -> AwsError {
    AwsError::new(
        ErrorClass::Other,
        operation,
        "Crash",
        "the rotator process died (simulated)",
    )
}

pub fn throttled(operation: &'static str) -> AwsError {
    AwsError::new(
        ErrorClass::Throttled,
        operation,
        "ThrottlingException",
        "Rate exceeded",
    )
}

pub fn access_denied(operation: &'static str) -> AwsError {
    AwsError::new(
        ErrorClass::AccessDenied,
        operation,
        "AccessDeniedException",
        format!("User: arn:aws:sts::{ACCOUNT_ID}:assumed-role/rotator/x is not authorized to perform: {operation}"),
    )
}

/// Per-operation queues of injected results: `None` lets a call through, `Some(e)` fails it.
#[derive(Default)]
struct Faults(HashMap<&'static str, VecDeque<Option<AwsError>>>);

impl Faults {
    fn push(&mut self, op: &'static str, skip: usize, errors: impl IntoIterator<Item = AwsError>) {
        let q = self.0.entry(op).or_default();
        q.extend(std::iter::repeat_n(None, skip));
        q.extend(errors.into_iter().map(Some));
    }

    fn take(&mut self, op: &'static str) -> Option<AwsError> {
        self.0.get_mut(op).and_then(|q| q.pop_front()).flatten()
    }
}

// ---------------------------------------------------------------------------------------
// Secrets Manager
// ---------------------------------------------------------------------------------------

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

    fn meta(&self) -> SecretMeta {
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
    pub seq: u64,
    pub op: &'static str,
    pub at: Instant,
    /// The error returned, if the call failed (injected or not).
    pub error: Option<String>,
    /// Stage/version details for writes, e.g. `AWSCURRENT to=.. from=..`.
    pub detail: String,
}

impl StoreCall {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

pub const WRITE_OPS: [&str; 3] = ["PutSecretValue", "UpdateSecretVersionStage", "TagResource"];

#[derive(Default)]
struct StoreState {
    secrets: Vec<StoredSecret>,
    calls: Vec<StoreCall>,
    faults: Faults,
    /// Injected failures of GetSecretValue by staging label (checked before `faults`).
    read_faults: HashMap<String, VecDeque<AwsError>>,
    /// Every call fails with `Crash` once this many writes have succeeded.
    crash_after_writes: Option<usize>,
    writes: usize,
    next_version: u64,
    next_suffix: u64,
}

/// An in-memory Secrets Manager.
#[derive(Clone)]
pub struct FakeStore {
    state: Arc<Mutex<StoreState>>,
    clock: ManualClock,
    seq: Sequence,
    /// Per-handle latency, by operation (`"*"` for all): a slow replica shares the state.
    latency: Arc<HashMap<&'static str, Duration>>,
}

impl FakeStore {
    pub fn new(clock: &ManualClock, seq: &Sequence) -> Self {
        Self {
            state: Arc::default(),
            clock: clock.clone(),
            seq: seq.clone(),
            latency: Arc::default(),
        }
    }

    /// Another handle on the same state whose calls to `op` (`"*"`: every call) take `d`.
    pub fn with_latency(&self, op: &'static str, d: Duration) -> Self {
        let mut l = (*self.latency).clone();
        l.insert(op, d);
        Self {
            latency: Arc::new(l),
            ..self.clone()
        }
    }

    fn st(&self) -> MutexGuard<'_, StoreState> {
        lock(&self.state)
    }

    // ---- set-up -------------------------------------------------------------------

    /// Creates a secret whose first version (AWSCURRENT) holds `value`; returns its ARN.
    pub fn create_secret(&self, name: &str, value: &str) -> SecretArn {
        let now = self.clock.now();
        let mut st = self.st();
        st.next_suffix += 1;
        let arn = SecretArn::new(format!(
            "arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:{name}-Ab{:04}",
            st.next_suffix
        ));
        st.next_version += 1;
        let id = seeded_id(st.next_version);
        st.secrets.push(StoredSecret {
            arn: arn.clone(),
            name: name.to_owned(),
            versions: vec![StoredVersion {
                id,
                value: value.to_owned(),
                stages: vec![AWSCURRENT.to_owned()],
                created: now,
            }],
            tags: BTreeMap::new(),
            rotation_enabled: false,
            deleted: false,
            last_changed: now,
        });
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
            s.versions.push(StoredVersion {
                id: VersionId::from(id),
                value: value.to_owned(),
                stages: vec![],
                created,
            });
            for st in stages {
                if *st == AWSCURRENT {
                    s.make_current(&VersionId::from(id));
                } else {
                    s.attach(st, &VersionId::from(id));
                }
            }
        });
    }

    /// Changes a secret directly (no call logged).
    pub fn edit(&self, name: &str, f: impl FnOnce(&mut StoredSecret)) {
        let mut st = self.st();
        let s = st
            .secrets
            .iter_mut()
            .find(|s| s.name == name)
            .expect("no such secret");
        f(s);
    }

    // ---- inspection ---------------------------------------------------------------

    pub fn secret(&self, name: &str) -> StoredSecret {
        self.st()
            .secrets
            .iter()
            .find(|s| s.name == name)
            .cloned()
            .expect("no such secret")
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

    /// Every value any version of any secret has ever held (versions are immutable).
    pub fn all_values(&self) -> Vec<String> {
        self.st()
            .secrets
            .iter()
            .flat_map(|s| s.versions.iter().map(|v| v.value.clone()))
            .collect()
    }

    pub fn calls(&self) -> Vec<StoreCall> {
        self.st().calls.clone()
    }

    /// Operation names of every call, in order.
    pub fn ops(&self) -> Vec<&'static str> {
        self.st().calls.iter().map(|c| c.op).collect()
    }

    /// Calls of `op` that succeeded.
    pub fn count_ok(&self, op: &str) -> usize {
        self.st()
            .calls
            .iter()
            .filter(|c| c.op == op && c.ok())
            .count()
    }

    /// Calls that tried to change something (whatever their result).
    pub fn write_attempts(&self) -> usize {
        self.st()
            .calls
            .iter()
            .filter(|c| WRITE_OPS.contains(&c.op))
            .count()
    }

    /// Writes that succeeded since the store was created.
    pub fn writes_ok(&self) -> usize {
        self.st().writes
    }

    pub fn clear_calls(&self) {
        self.st().calls.clear();
    }

    // ---- fault injection ----------------------------------------------------------

    /// The next calls of `op` fail with these errors, in order.
    pub fn fail_next(&self, op: &'static str, errors: impl IntoIterator<Item = AwsError>) {
        self.st().faults.push(op, 0, errors);
    }

    /// After `skip` more calls of `op` succeed, the following ones fail with `errors`.
    pub fn fail_after(
        &self,
        op: &'static str,
        skip: usize,
        errors: impl IntoIterator<Item = AwsError>,
    ) {
        self.st().faults.push(op, skip, errors);
    }

    /// The next GetSecretValue calls that name `stage` fail with these errors, in order
    /// (reads of other stages are not affected).
    pub fn fail_next_read(&self, stage: &str, errors: impl IntoIterator<Item = AwsError>) {
        self.st()
            .read_faults
            .entry(stage.to_owned())
            .or_default()
            .extend(errors);
    }

    /// Simulates the process dying after `n` more successful writes: from then on every
    /// call fails with class `Other`, code `Crash`, until [`Self::restart`].
    pub fn crash_after_writes(&self, n: usize) {
        let mut st = self.st();
        st.crash_after_writes = Some(st.writes + n);
    }

    /// A new process: calls work again (the stored state is kept).
    pub fn restart(&self) {
        let mut st = self.st();
        st.crash_after_writes = None;
        st.faults = Faults::default();
        st.read_faults.clear();
    }

    // ---- the API --------------------------------------------------------------------

    /// Runs one API call: latency, crash mode, injected faults, then `f` on the state.
    async fn call<T>(
        &self,
        op: &'static str,
        detail: String,
        f: impl FnOnce(&mut Vec<StoredSecret>, DateTime<Utc>, &mut u64) -> Result<T, AwsError>,
    ) -> Result<T, AwsError> {
        self.call_staged(op, None, detail, f).await
    }

    async fn call_staged<T>(
        &self,
        op: &'static str,
        stage: Option<&str>,
        detail: String,
        f: impl FnOnce(&mut Vec<StoredSecret>, DateTime<Utc>, &mut u64) -> Result<T, AwsError>,
    ) -> Result<T, AwsError> {
        let d = self
            .latency
            .get(op)
            .or_else(|| self.latency.get("*"))
            .copied();
        if let Some(d) = d {
            tokio::time::sleep(d).await;
        }
        let now = self.clock.now();
        let seq = self.seq.next();
        let mut st = self.st();
        let st = &mut *st;
        let write = WRITE_OPS.contains(&op);
        let staged = stage.and_then(|x| st.read_faults.get_mut(x).and_then(|q| q.pop_front()));
        let result = if st.crash_after_writes.is_some_and(|n| st.writes >= n) {
            Err(crash(op))
        } else if let Some(e) = staged {
            Err(e)
        } else if let Some(e) = st.faults.take(op) {
            Err(e)
        } else {
            f(&mut st.secrets, now, &mut st.next_version)
        };
        if write && result.is_ok() {
            st.writes += 1;
        }
        st.calls.push(StoreCall {
            seq,
            op,
            at: Instant::now(),
            error: result.as_ref().err().map(|e| e.to_string()),
            detail,
        });
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
        self.call_staged(OP, stage, String::new(), |secrets, _, _| {
            let s = live(secrets, id, OP)?;
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
        .await
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
        let detail = format!(
            "token={} stages={stages:?}",
            token.map_or("-", |t| t.as_str())
        );
        self.call(OP, detail, |secrets, now, next| {
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
            let s = live(secrets, id, OP)?;
            if let Some(existing) = token.and_then(|t| s.version(t)) {
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
            let vid = match token {
                Some(t) => t.clone(),
                None => {
                    *next += 1;
                    seeded_id(*next)
                }
            };
            s.versions.push(StoredVersion { id: vid.clone(), value: value.to_owned(), stages: vec![], created: now });
            s.last_changed = now;
            for st in stages.unwrap_or(&[AWSCURRENT][..]) {
                if *st == AWSCURRENT {
                    s.make_current(&vid);
                } else {
                    s.attach(st, &vid);
                }
            }
            Ok(vid)
        })
        .await
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
        let detail = format!(
            "{stage} to={} from={}",
            move_to.map_or("-", |v| v.as_str()),
            remove_from.map_or("-", |v| v.as_str())
        );
        self.call(OP, detail, |secrets, now, _| {
            let invalid = |m: String| AwsError::new(ErrorClass::Invalid, OP, "InvalidParameterException", m);
            let s = live(secrets, id, OP)?;
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
                    if stage == AWSCURRENT {
                        s.make_current(to);
                    } else {
                        s.attach(stage, to);
                    }
                }
            }
            s.last_changed = now;
            Ok(())
        })
        .await
    }
}

/// A UUID-shaped id for versions not created by the rotator.
fn seeded_id(n: u64) -> VersionId {
    VersionId::new(format!("0000aaaa-0000-4000-8000-{n:012x}"))
}

fn find<'a>(
    secrets: &'a mut [StoredSecret],
    id: &SecretId,
    op: &'static str,
) -> Result<&'a mut StoredSecret, AwsError> {
    secrets
        .iter_mut()
        .find(|s| s.name == id.as_str() || s.arn.as_str() == id.as_str())
        .ok_or_else(|| {
            AwsError::new(
                ErrorClass::NotFound,
                op,
                "ResourceNotFoundException",
                "Secrets Manager can't find the specified secret.",
            )
        })
}

/// A secret that may be read or written: not scheduled for deletion.
fn live<'a>(
    secrets: &'a mut [StoredSecret],
    id: &SecretId,
    op: &'static str,
) -> Result<&'a mut StoredSecret, AwsError> {
    let s = find(secrets, id, op)?;
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

impl SecretStore for FakeStore {
    async fn describe(&self, s: &SecretRef) -> Result<SecretMeta, AwsError> {
        const OP: &str = "DescribeSecret";
        self.call(OP, String::new(), |secrets, _, _| {
            Ok(find(secrets, &s.id, OP)?.meta())
        })
        .await
    }

    async fn describe_many(&self, refs: &[SecretRef]) -> Vec<Result<SecretMeta, AwsError>> {
        let mut out = Vec::with_capacity(refs.len());
        for r in refs {
            out.push(self.describe(r).await);
        }
        out
    }

    async fn versions(&self, s: &SecretRef) -> Result<Vec<VersionInfo>, AwsError> {
        const OP: &str = "ListSecretVersionIds";
        self.call(OP, String::new(), |secrets, _, _| {
            // Without IncludeDeprecated, versions without labels are left out.
            Ok(find(secrets, &s.id, OP)?
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
        .await
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
        const OP: &str = "TagResource";
        let detail = tags
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        self.call(OP, detail, |secrets, now, _| {
            let s = live(secrets, &s.id, OP)?;
            for (k, v) in tags {
                s.tags.insert((*k).to_owned(), v.clone());
            }
            s.last_changed = now;
            Ok(())
        })
        .await
    }
}

// ---------------------------------------------------------------------------------------
// ECS
// ---------------------------------------------------------------------------------------

/// How a service's forced deployments roll out (and what kind of service it is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// New tasks are all running `start` after the force; old tasks drain for `drain`
    /// more; then the rollout is COMPLETED and the old deployment is gone.
    Healthy { start: Duration, drain: Duration },
    /// Tasks keep failing; `start` after the force the circuit breaker marks the rollout
    /// FAILED and, as ECS does, the deployment before it becomes PRIMARY again (its own
    /// id and createdAt) and completes [`ROLLBACK_TIME`] later.
    Failing { start: Duration },
    /// One task never becomes healthy: the rollout stays IN_PROGRESS forever.
    Stall,
    /// `after` the force someone else forces another (healthy) deployment, which replaces
    /// ours as PRIMARY; rollouts otherwise take `start` + `drain`.
    Superseded {
        after: Duration,
        start: Duration,
        drain: Duration,
    },
    /// Blue/green through CodeDeploy: UpdateService cannot force a deployment.
    CodeDeploy,
    /// The service does not exist (DescribeServices lists it under failures: MISSING).
    Missing,
}

/// Service events DescribeServices shows here (the adapter keeps the latest 10 too).
pub const EVENTS_SHOWN: usize = 10;
/// How long a circuit-breaker rollback takes to complete once it starts.
pub const ROLLBACK_TIME: Duration = Duration::from_secs(30);
pub const CIRCUIT_BREAKER_REASON: &str = "ECS deployment circuit breaker: tasks failed to start.";
/// Stalled and failing deployments lose a task this often.
pub const TASK_FAILURE_EVERY: Duration = Duration::from_secs(20);

#[derive(Clone, Debug)]
enum DepKind {
    /// Running before the test began.
    Initial,
    /// Started by UpdateService(forceNewDeployment), rolling out per the behaviour.
    Forced(Behaviour),
    /// The circuit breaker's rollback, or someone else's deployment.
    Plain { start: Duration, drain: Duration },
}

#[derive(Clone, Debug)]
struct Dep {
    id: DeploymentId,
    task_definition: String,
    created: Instant,
    created_date: DateTime<Utc>,
    kind: DepKind,
    /// The circuit breaker fired (the rollout is FAILED).
    failed: bool,
    /// This deployment's scheduled event (failure, supersession) has been applied.
    fired: bool,
}

impl Dep {
    /// When all its tasks are running, and how long older tasks then take to drain.
    fn ready(&self) -> Option<(Instant, Duration)> {
        match &self.kind {
            DepKind::Initial => Some((self.created, Duration::ZERO)),
            DepKind::Forced(Behaviour::Healthy { start, drain })
            | DepKind::Forced(Behaviour::Superseded { start, drain, .. })
            | DepKind::Plain { start, drain } => Some((self.created + *start, *drain)),
            DepKind::Forced(_) => None,
        }
    }

    fn completed_at(&self) -> Option<Instant> {
        self.ready().map(|(r, d)| r + d)
    }

    /// The deployment's own scheduled event, if any: (when, what).
    fn event(&self) -> Option<(Instant, Event)> {
        if self.fired {
            return None;
        }
        match &self.kind {
            DepKind::Forced(Behaviour::Failing { start }) => {
                Some((self.created + *start, Event::CircuitBreaker))
            }
            DepKind::Forced(Behaviour::Superseded {
                after,
                start,
                drain,
            }) => Some((
                self.created + *after,
                Event::Supersede {
                    start: *start,
                    drain: *drain,
                },
            )),
            _ => None,
        }
    }

    fn failed_tasks(&self, now: Instant) -> i32 {
        match &self.kind {
            DepKind::Forced(Behaviour::Failing { .. }) | DepKind::Forced(Behaviour::Stall) => {
                let d = now.saturating_duration_since(self.created);
                (d.as_secs() / TASK_FAILURE_EVERY.as_secs()) as i32
            }
            _ => 0,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Event {
    CircuitBreaker,
    Supersede { start: Duration, drain: Duration },
}

#[derive(Clone, Debug)]
struct Svc {
    cluster: String,
    name: String,
    behaviour: Behaviour,
    desired: i32,
    status: String,
    /// Oldest first; the newest is PRIMARY.
    deps: Vec<Dep>,
    /// Newest last (reversed when described).
    events: Vec<String>,
    rollback_time: Duration,
}

/// One DescribeServices call.
#[derive(Clone, Debug)]
pub struct DescribeCall {
    pub seq: u64,
    pub at: Instant,
    pub cluster: String,
    pub services: Vec<String>,
    pub ok: bool,
}

/// One UpdateService(forceNewDeployment) call.
#[derive(Clone, Debug)]
pub struct ForceCall {
    pub seq: u64,
    pub at: Instant,
    pub service: ServiceRef,
    pub result: Result<DeploymentId, String>,
}

#[derive(Default)]
struct EcsState {
    services: Vec<Svc>,
    describes: Vec<DescribeCall>,
    forces: Vec<ForceCall>,
    faults: Faults,
    next_deployment: u64,
}

/// An in-memory ECS whose rollouts progress with tokio time, computed lazily at each call.
#[derive(Clone)]
pub struct FakeEcs {
    state: Arc<Mutex<EcsState>>,
    clock: ManualClock,
    seq: Sequence,
    /// Per-handle latency by operation (`UpdateService`, `DescribeServices`, `"*"`).
    latency: Arc<HashMap<&'static str, Duration>>,
}

impl FakeEcs {
    pub fn new(clock: &ManualClock, seq: &Sequence) -> Self {
        Self {
            state: Arc::default(),
            clock: clock.clone(),
            seq: seq.clone(),
            latency: Arc::default(),
        }
    }

    /// Another handle on the same ECS whose calls to `op` (`"*"`: every call) take `d`
    /// before they reach ECS.
    pub fn with_latency(&self, op: &'static str, d: Duration) -> Self {
        let mut l = (*self.latency).clone();
        l.insert(op, d);
        Self {
            latency: Arc::new(l),
            ..self.clone()
        }
    }

    async fn delay(&self, op: &'static str) {
        let d = self
            .latency
            .get(op)
            .or_else(|| self.latency.get("*"))
            .copied();
        if let Some(d) = d {
            tokio::time::sleep(d).await;
        }
    }

    /// How long a circuit-breaker rollback of this service takes (default [`ROLLBACK_TIME`]).
    pub fn set_rollback_time(&self, cluster: &str, name: &str, d: Duration) {
        let mut st = self.st();
        if let Some(s) = st
            .services
            .iter_mut()
            .find(|s| s.cluster == cluster && s.name == name)
        {
            s.rollback_time = d;
        }
    }

    /// Appends service events (newest last), after applying what is due by now.
    pub fn push_events(&self, svc: &ServiceRef, events: impl IntoIterator<Item = String>) {
        let now = Instant::now();
        let clock = self.clock.clone();
        let mut st = self.st();
        let st = &mut *st;
        let s = st
            .services
            .iter_mut()
            .find(|s| s.cluster == svc.cluster.as_str() && s.name == svc.service.as_str())
            .expect("no such service");
        advance(s, now, &clock, &mut st.next_deployment);
        s.events.extend(events);
    }

    fn st(&self) -> MutexGuard<'_, EcsState> {
        lock(&self.state)
    }

    /// Adds a service running `desired` tasks of its task definition, steady.
    pub fn add_service(&self, cluster: &str, name: &str, desired: i32, behaviour: Behaviour) {
        if behaviour == Behaviour::Missing {
            return;
        }
        let mut st = self.st();
        st.next_deployment += 1;
        let dep = Dep {
            id: DeploymentId::new(format!("ecs-svc/{}", st.next_deployment)),
            task_definition: format!("arn:aws:ecs:{REGION}:{ACCOUNT_ID}:task-definition/{name}:1"),
            created: Instant::now(),
            created_date: self.clock.now() - chrono::Duration::days(3),
            kind: DepKind::Initial,
            failed: false,
            fired: true,
        };
        st.services.push(Svc {
            cluster: cluster.to_owned(),
            name: name.to_owned(),
            behaviour,
            desired,
            status: "ACTIVE".into(),
            deps: vec![dep],
            events: vec![format!("(service {name}) has reached a steady state.")],
            rollback_time: ROLLBACK_TIME,
        });
    }

    pub fn set_behaviour(&self, cluster: &str, name: &str, b: Behaviour) {
        let mut st = self.st();
        let s = st
            .services
            .iter_mut()
            .find(|s| s.cluster == cluster && s.name == name)
            .expect("no such service");
        s.behaviour = b;
    }

    /// The service as DescribeServices would show it now.
    pub fn service(&self, svc: &ServiceRef) -> Option<ServiceState> {
        let now = Instant::now();
        let clock = self.clock.clone();
        let mut st = self.st();
        let st = &mut *st;
        let s = st
            .services
            .iter_mut()
            .find(|s| s.cluster == svc.cluster.as_str() && s.name == svc.service.as_str())?;
        advance(s, now, &clock, &mut st.next_deployment);
        Some(view(s, now))
    }

    /// Someone else's UpdateService(forceNewDeployment) now (not logged as ours): a
    /// healthy deployment that becomes PRIMARY. Returns its id.
    pub fn deploy_by_someone_else(
        &self,
        svc: &ServiceRef,
        start: Duration,
        drain: Duration,
    ) -> DeploymentId {
        let now = Instant::now();
        let mut st = self.st();
        let st = &mut *st;
        let s = st
            .services
            .iter_mut()
            .find(|s| s.cluster == svc.cluster.as_str() && s.name == svc.service.as_str())
            .expect("no such service");
        advance(s, now, &self.clock, &mut st.next_deployment);
        st.next_deployment += 1;
        let id = DeploymentId::new(format!("ecs-svc/{}", st.next_deployment));
        let td = s
            .deps
            .last()
            .map(|d| d.task_definition.clone())
            .unwrap_or_default();
        s.events.push(format!(
            "(service {}) has started a deployment {id}.",
            s.name
        ));
        s.deps.push(Dep {
            id: id.clone(),
            task_definition: td,
            created: now,
            created_date: self.clock.now(),
            kind: DepKind::Plain { start, drain },
            failed: false,
            fired: true,
        });
        id
    }

    pub fn describe_calls(&self) -> Vec<DescribeCall> {
        self.st().describes.clone()
    }

    pub fn force_calls(&self) -> Vec<ForceCall> {
        self.st().forces.clone()
    }

    /// Successful forced deployments of `svc`, in order.
    pub fn forced(&self, svc: &ServiceRef) -> Vec<(u64, DeploymentId)> {
        self.st()
            .forces
            .iter()
            .filter(|f| &f.service == svc)
            .filter_map(|f| f.result.as_ref().ok().map(|d| (f.seq, d.clone())))
            .collect()
    }

    pub fn fail_next(&self, op: &'static str, errors: impl IntoIterator<Item = AwsError>) {
        self.st().faults.push(op, 0, errors);
    }

    pub fn fail_after(
        &self,
        op: &'static str,
        skip: usize,
        errors: impl IntoIterator<Item = AwsError>,
    ) {
        self.st().faults.push(op, skip, errors);
    }

    pub fn clear_calls(&self) {
        let mut st = self.st();
        st.describes.clear();
        st.forces.clear();
    }
}

/// Applies every scheduled event up to `now`, in time order, and drops deployments that
/// a completed PRIMARY has replaced.
fn advance(s: &mut Svc, now: Instant, clock: &ManualClock, next_id: &mut u64) {
    loop {
        let next = s
            .deps
            .iter()
            .enumerate()
            .filter_map(|(i, d)| d.event().map(|(t, e)| (t, i, e)))
            .filter(|(t, ..)| *t <= now)
            .min_by_key(|(t, i, _)| (*t, *i));
        let Some((at, i, ev)) = next else { break };
        s.deps[i].fired = true;
        // Only a deployment that is still PRIMARY at that moment is affected.
        if i + 1 != s.deps.len() {
            continue;
        }
        let date = clock.now() - chrono::Duration::from_std(now - at).unwrap_or_default();
        let name = s.name.clone();
        match ev {
            Event::CircuitBreaker => {
                s.deps[i].failed = true;
                let failed_id = s.deps[i].id.clone();
                s.events.push(format!("(service {name}) (deployment {failed_id}) deployment failed: tasks failed to start."));
                // As ECS does: the deployment before this one (the last that completed)
                // becomes PRIMARY again, with its own id and createdAt; its tasks start
                // again over the rollback time.
                if i == 0 {
                    continue;
                }
                let mut back = s.deps.remove(i - 1);
                s.events.push(format!(
                    "(service {name}) rolling back to deployment {}.",
                    back.id
                ));
                back.created = at;
                back.kind = DepKind::Plain {
                    start: s.rollback_time,
                    drain: Duration::ZERO,
                };
                back.fired = true;
                s.deps.push(back);
            }
            Event::Supersede { start, drain } => {
                *next_id += 1;
                let id = DeploymentId::new(format!("ecs-svc/{next_id}"));
                let td = s.deps[i].task_definition.clone();
                s.events.push(format!("(service {name}) has started a deployment {id} (UpdateService by another principal)."));
                s.deps.push(Dep {
                    id,
                    task_definition: td,
                    created: at,
                    created_date: date,
                    kind: DepKind::Plain { start, drain },
                    failed: false,
                    fired: true,
                });
            }
        }
    }
    let primary = s.deps.last().expect("a service always has a deployment");
    if primary.completed_at().is_some_and(|c| c <= now) && s.deps.len() > 1 {
        let keep = s.deps.len() - 1;
        s.deps.drain(..keep);
        s.events
            .push(format!("(service {}) has reached a steady state.", s.name));
    }
}

fn view(s: &Svc, now: Instant) -> ServiceState {
    let n = s.deps.len();
    let deployments: Vec<DeploymentState> = s
        .deps
        .iter()
        .enumerate()
        .rev()
        .map(|(i, d)| {
            let is_primary = i + 1 == n;
            let ready = d.ready().is_some_and(|(r, _)| r <= now);
            let completed = d.completed_at().is_some_and(|c| c <= now);
            let (desired, running) = if is_primary {
                let running = if ready {
                    s.desired
                } else if matches!(d.kind, DepKind::Forced(Behaviour::Stall)) {
                    s.desired - 1
                } else {
                    0
                };
                (s.desired, running)
            } else if d.failed {
                (0, 0)
            } else if ready {
                // Old tasks keep serving while the new ones start, then drain.
                (s.desired, s.desired)
            } else {
                (0, 0)
            };
            DeploymentState {
                id: d.id.clone(),
                status: if is_primary { "PRIMARY" } else { "ACTIVE" }.into(),
                rollout_state: Some(
                    if d.failed {
                        "FAILED"
                    } else if completed && (n == 1 || !is_primary) {
                        "COMPLETED"
                    } else {
                        "IN_PROGRESS"
                    }
                    .into(),
                ),
                rollout_state_reason: Some(if d.failed {
                    CIRCUIT_BREAKER_REASON.to_owned()
                } else if completed {
                    format!("ECS deployment {} completed.", d.id)
                } else {
                    format!("ECS deployment {} in progress.", d.id)
                }),
                task_definition: Some(d.task_definition.clone()),
                desired,
                running,
                pending: (desired - running).max(0),
                failed_tasks: d.failed_tasks(now),
                created: Some(d.created_date),
            }
        })
        .collect();
    ServiceState {
        status: s.status.clone(),
        controller: Some(
            if s.behaviour == Behaviour::CodeDeploy {
                "CODE_DEPLOY"
            } else {
                "ECS"
            }
            .into(),
        ),
        desired: s.desired,
        running: deployments.iter().map(|d| d.running).sum(),
        deployments,
        events: s.events.iter().rev().take(EVENTS_SHOWN).cloned().collect(),
    }
}

impl Deployer for FakeEcs {
    async fn describe(
        &self,
        _account: &Account,
        cluster: &ClusterName,
        services: &[ServiceName],
    ) -> Result<Vec<Described>, AwsError> {
        const OP: &str = "DescribeServices";
        self.delay(OP).await;
        let now = Instant::now();
        let seq = self.seq.next();
        let mut st = self.st();
        let st = &mut *st;
        let result = if services.len() > DESCRIBE_BATCH {
            Err(AwsError::new(
                ErrorClass::Invalid,
                OP,
                "InvalidParameterException",
                "services can have at most 10 items.",
            ))
        } else if let Some(e) = st.faults.take(OP) {
            Err(e)
        } else if !st.services.iter().any(|s| s.cluster == cluster.as_str()) {
            Err(AwsError::new(
                ErrorClass::NotFound,
                OP,
                "ClusterNotFoundException",
                "Cluster not found.",
            ))
        } else {
            Ok(services
                .iter()
                .map(|want| {
                    match st
                        .services
                        .iter_mut()
                        .find(|s| s.cluster == cluster.as_str() && s.name == want.as_str())
                    {
                        Some(s) => {
                            advance(s, now, &self.clock, &mut st.next_deployment);
                            Described::Found(view(s, now))
                        }
                        None => Described::Missing("MISSING".into()),
                    }
                })
                .collect())
        };
        st.describes.push(DescribeCall {
            seq,
            at: now,
            cluster: cluster.to_string(),
            services: services.iter().map(|s| s.to_string()).collect(),
            ok: result.is_ok(),
        });
        result
    }

    async fn force_deploy(&self, _account: &Account, svc: &ServiceRef) -> Result<Forced, AwsError> {
        const OP: &str = "UpdateService";
        self.delay(OP).await;
        let now = Instant::now();
        let seq = self.seq.next();
        let mut st = self.st();
        let st = &mut *st;
        let result = (|| {
            if let Some(e) = st.faults.take(OP) {
                return Err(e);
            }
            let Some(s) = st
                .services
                .iter_mut()
                .find(|s| s.cluster == svc.cluster.as_str() && s.name == svc.service.as_str())
            else {
                return Err(AwsError::new(
                    ErrorClass::NotFound,
                    OP,
                    "ServiceNotFoundException",
                    "Service not found.",
                ));
            };
            if s.status != "ACTIVE" {
                return Err(AwsError::new(
                    ErrorClass::Invalid,
                    OP,
                    "ServiceNotActiveException",
                    "Service was not ACTIVE.",
                ));
            }
            if s.behaviour == Behaviour::CodeDeploy {
                return Err(AwsError::new(
                    ErrorClass::Invalid,
                    OP,
                    "InvalidParameterException",
                    "Unable to update task definition on services with a CODE_DEPLOY deployment controller. Use AWS CodeDeploy to trigger a new deployment.",
                ));
            }
            advance(s, now, &self.clock, &mut st.next_deployment);
            st.next_deployment += 1;
            let id = DeploymentId::new(format!("ecs-svc/{}", st.next_deployment));
            let td = s
                .deps
                .last()
                .map(|d| d.task_definition.clone())
                .unwrap_or_default();
            s.events.push(format!(
                "(service {}) has started a deployment {id}.",
                s.name
            ));
            s.deps.push(Dep {
                id: id.clone(),
                task_definition: td,
                created: now,
                created_date: self.clock.now(),
                kind: DepKind::Forced(s.behaviour.clone()),
                failed: false,
                fired: false,
            });
            Ok(Forced {
                id,
                created: Some(self.clock.now()),
            })
        })();
        st.forces.push(ForceCall {
            seq,
            at: now,
            service: svc.clone(),
            result: result
                .as_ref()
                .map(|f| f.id.clone())
                .map_err(|e| e.to_string()),
        });
        result
    }
}

/// A deployer that dies part-way through the redeploy: `n` forced deployments succeed;
/// from the attempt after them on, every call fails with `Crash` (the process is gone). Optionally waits
/// `delay` before each force (a slow UpdateService), so the deployments it does start are
/// clearly newer than the secret version.
#[derive(Clone)]
pub struct CrashingDeployer<D> {
    pub inner: D,
    n: usize,
    delay: Duration,
    forced: Arc<AtomicU64>,
}

impl<D: Deployer> CrashingDeployer<D> {
    pub fn new(inner: D, n: usize, delay: Duration) -> Self {
        Self {
            inner,
            n,
            delay,
            forced: Arc::default(),
        }
    }

    fn dead(&self) -> bool {
        self.forced.load(Ordering::SeqCst) as usize > self.n
    }
}

impl<D: Deployer + Clone> Deployer for CrashingDeployer<D> {
    async fn describe(
        &self,
        account: &Account,
        cluster: &ClusterName,
        services: &[ServiceName],
    ) -> Result<Vec<Described>, AwsError> {
        if self.dead() {
            return Err(crash("DescribeServices"));
        }
        self.inner.describe(account, cluster, services).await
    }

    async fn force_deploy(
        &self,
        account: &Account,
        service: &ServiceRef,
    ) -> Result<Forced, AwsError> {
        tokio::time::sleep(self.delay).await;
        // Claim a slot before calling, so concurrent forces cannot exceed `n`.
        let slot = self.forced.fetch_add(1, Ordering::SeqCst) as usize;
        if slot >= self.n {
            return Err(crash("UpdateService"));
        }
        self.inner.force_deploy(account, service).await
    }
}

// ---------------------------------------------------------------------------------------
// IAM and STS
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct IamKey {
    pub user: String,
    pub id: String,
    pub secret: String,
    pub active: bool,
    pub created: DateTime<Utc>,
}

#[derive(Default)]
struct IamState {
    keys: Vec<IamKey>,
    next: u64,
    /// `Operation key-id`, in order.
    calls: Vec<String>,
}

/// An in-memory IAM (two keys per user) and STS GetCallerIdentity.
#[derive(Clone)]
pub struct FakeIam {
    state: Arc<Mutex<IamState>>,
    clock: ManualClock,
    /// Operations that never answer (`caller_arn`, `set_active`, ...).
    hang: Arc<Vec<&'static str>>,
}

impl FakeIam {
    pub fn new(clock: &ManualClock) -> Self {
        Self {
            state: Arc::default(),
            clock: clock.clone(),
            hang: Arc::default(),
        }
    }

    /// Another handle whose calls to `op` never answer.
    pub fn hanging(&self, op: &'static str) -> Self {
        let mut h = (*self.hang).clone();
        h.push(op);
        Self {
            hang: Arc::new(h),
            ..self.clone()
        }
    }

    pub fn add_key(&self, user: &str, id: &str, secret: &str) {
        let created = self.clock.now();
        lock(&self.state).keys.push(IamKey {
            user: user.into(),
            id: id.into(),
            secret: secret.into(),
            active: true,
            created,
        });
    }

    pub fn key(&self, id: &str) -> Option<IamKey> {
        lock(&self.state).keys.iter().find(|k| k.id == id).cloned()
    }

    pub fn calls(&self) -> Vec<String> {
        lock(&self.state).calls.clone()
    }

    async fn enter(&self, op: &'static str, detail: &str) {
        lock(&self.state).calls.push(format!("{op} {detail}"));
        if self.hang.contains(&op) {
            futures::future::pending::<()>().await;
        }
    }
}

fn no_such_key(op: &'static str, id: &str) -> AwsError {
    AwsError::new(
        ErrorClass::NotFound,
        op,
        "NoSuchEntity",
        format!("The Access Key with id {id} cannot be found."),
    )
}

impl secret_rotator::targets::iam::IamApi for FakeIam {
    fn list_keys<'a>(
        &'a self,
        _account: &'a Account,
        user: &'a str,
    ) -> futures::future::BoxFuture<
        'a,
        Result<Vec<secret_rotator::targets::iam::AccessKeyInfo>, AwsError>,
    > {
        Box::pin(async move {
            self.enter("list_keys", user).await;
            Ok(lock(&self.state)
                .keys
                .iter()
                .filter(|k| k.user == user)
                .map(|k| secret_rotator::targets::iam::AccessKeyInfo {
                    id: k.id.clone(),
                    active: k.active,
                    created: Some(k.created),
                })
                .collect())
        })
    }

    fn create_key<'a>(
        &'a self,
        _account: &'a Account,
        user: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<secret_rotator::targets::iam::NewAccessKey, AwsError>>
    {
        Box::pin(async move {
            self.enter("create_key", user).await;
            let now = self.clock.now();
            let mut st = lock(&self.state);
            if st.keys.iter().filter(|k| k.user == user).count() >= 2 {
                return Err(AwsError::new(
                    ErrorClass::Conflict,
                    "CreateAccessKey",
                    "LimitExceeded",
                    format!("Cannot exceed quota for AccessKeysPerUser: 2 ({user})"),
                ));
            }
            st.next += 1;
            let id = format!("AKIAFAKE{:012}", st.next);
            let secret = format!("fake-secret-access-key-{:024}", st.next);
            st.keys.push(IamKey {
                user: user.into(),
                id: id.clone(),
                secret: secret.clone(),
                active: true,
                created: now,
            });
            Ok(secret_rotator::targets::iam::NewAccessKey {
                id,
                secret: SecretString::from(secret),
            })
        })
    }

    fn set_active<'a>(
        &'a self,
        _account: &'a Account,
        _user: &'a str,
        key_id: &'a str,
        active: bool,
    ) -> futures::future::BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(async move {
            self.enter("set_active", key_id).await;
            let mut st = lock(&self.state);
            match st.keys.iter_mut().find(|k| k.id == key_id) {
                Some(k) => {
                    k.active = active;
                    Ok(())
                }
                None => Err(no_such_key("UpdateAccessKey", key_id)),
            }
        })
    }

    fn delete_key<'a>(
        &'a self,
        _account: &'a Account,
        _user: &'a str,
        key_id: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(async move {
            self.enter("delete_key", key_id).await;
            let mut st = lock(&self.state);
            let before = st.keys.len();
            st.keys.retain(|k| k.id != key_id);
            if st.keys.len() == before {
                return Err(no_such_key("DeleteAccessKey", key_id));
            }
            Ok(())
        })
    }

    fn caller_arn<'a>(
        &'a self,
        _account: &'a Account,
        key_id: &'a str,
        secret: &'a SecretString,
    ) -> futures::future::BoxFuture<'a, Result<String, AwsError>> {
        Box::pin(async move {
            self.enter("caller_arn", key_id).await;
            let st = lock(&self.state);
            match st
                .keys
                .iter()
                .find(|k| k.id == key_id && k.active && k.secret == secret.expose_secret())
            {
                Some(k) => Ok(format!("arn:aws:iam::{ACCOUNT_ID}:user/{}", k.user)),
                None => Err(AwsError::new(
                    ErrorClass::AccessDenied,
                    "GetCallerIdentity",
                    "InvalidClientTokenId",
                    "The security token included in the request is invalid.",
                )),
            }
        })
    }
}
