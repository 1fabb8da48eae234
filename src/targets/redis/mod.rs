//! The `redis` target: the password of one Redis ACL user (Redis 6+), in a secret
//! `{"host", "port", "username", "password"}` (any other key is kept, in place), changed
//! by an admin user from `admin_secret_id` (same shape).
//!
//! **Two passwords, one user.** set adds the pending password to the user
//! (`ACL SETUSER user #sha256`): the current and the pending one both log in, so
//! consumers still running with the old value keep working while they are redeployed.
//! revoke, once every consumer is stable, removes the previous one (`!sha256`). Only
//! hashes cross the wire for ACL; the password itself only in `AUTH`, which Redis never
//! shows in `MONITOR` or `SLOWLOG`. The user must exist: it is never created.
//!
//! **Saved.** Before each `ACL SETUSER` (set, before AWSCURRENT moves; revoke) the
//! target decides how the change survives a restart, as Redis documents it: `ACL SAVE`
//! when `aclfile` is set (`CONFIG GET aclfile`), else `CONFIG REWRITE` when the server
//! was started from a config file (`INFO server` `config_file`). The chosen command is
//! run once then (it writes the ACLs as they are), so a save that cannot work is known
//! while only the current password logs in; when `CONFIG GET` or `INFO` is refused
//! (NOPERM, CONFIG renamed or disabled) the saves themselves are tried in that order.
//! After `ACL SETUSER` the save runs again; a failure fails the step (the rerun does it
//! again). When nothing can save the change, set refuses before `ACL SETUSER` unless the
//! target says `allow_unsaved = true` (then a warning: a restart brings the old password
//! back); revoke removes the old passwords in memory anyway, then fails (retried, alerting)
//! unless the removal is saved or allowed unsaved. `check --remote` says how the user is
//! saved (a warning for `CONFIG REWRITE`, which keeps only what the config file alone
//! defines; a problem when nothing saves it, unless allowed) and warns about replicas
//! (ACLs are not replicated). The admin needs `ACL SETUSER` and `ACL GETUSER`, `ACL SAVE`
//! or `CONFIG REWRITE`, and preferably `CONFIG GET` and `INFO`.
//!
//! **What the secret may decide.** Nothing beyond the password: `host`, `port` and
//! `username` are pinned in the configuration, and a secret (application or admin) that
//! names another server or user is refused before connecting; the admin may not be the
//! rotated user.
//!
//! **test**: a fresh connection, `AUTH user pending`, `PING`.
//!
//! **sslmode**: as `postgres` (verify-full by default; verify-ca, require, disable).
//!
//! Out of scope: replicas, Redis Cluster (ACLs are per node: each node would need the
//! change) and Sentinel discovery; the target talks to one server (each node needs its
//! own secret and target). The client is the few lines of RESP2 in `resp.rs` (no client
//! crate: a handful of commands, with bounded replies).

mod config;
mod resp;
mod steps;

pub use config::{RawRedis, Redis, RedisTarget};

use crate::config::{SecretConfig, TargetKind};
use crate::rotation::target::{ConfiguredTarget, RemoteFinding, TargetEnv, TargetError};
use futures::future::BoxFuture;
use secrecy::SecretString;

/// `redis: ...`: a failure of this target; the text never holds a password (masked).
fn rd(msg: impl Into<String>) -> TargetError {
    crate::targets::shared::kind_error(Redis::NAME, msg)
}

impl ConfiguredTarget for RedisTarget {
    fn kind(&self) -> &'static str {
        Redis::NAME
    }

    fn makes_value(&self) -> bool {
        Redis::MAKES_VALUE
    }

    fn has_set(&self) -> bool {
        true
    }

    fn has_revoke(&self) -> bool {
        true
    }

    fn create_value<'a>(
        &'a self,
        env: &'a TargetEnv<'a>,
    ) -> BoxFuture<'a, Result<SecretString, TargetError>> {
        Box::pin(steps::create_value(env, self))
    }

    fn set<'a>(
        &'a self,
        env: &'a TargetEnv<'a>,
        value: &'a SecretString,
    ) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(steps::set(env, self, value))
    }

    fn test<'a>(
        &'a self,
        _env: &'a TargetEnv<'a>,
        value: &'a SecretString,
    ) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(steps::test(self, value))
    }

    fn revoke<'a>(
        &'a self,
        env: &'a TargetEnv<'a>,
        current: &'a SecretString,
        previous: Option<&'a SecretString>,
    ) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(steps::revoke(env, self, current, previous))
    }

    fn check_remote<'a>(
        &'a self,
        env: &'a TargetEnv<'a>,
    ) -> BoxFuture<'a, Result<Vec<RemoteFinding>, TargetError>> {
        Box::pin(steps::check_remote(env, self))
    }

    fn describe_create(&self, cfg: &SecretConfig) -> Option<String> {
        Some(format!(
            "make the new value: AWSCURRENT's JSON with a new {}-character password, written as AWSPENDING; set: the admin runs ACL SETUSER {} #<sha256 of the new password> (both passwords log in); test: a fresh AUTH {} <new> + PING",
            cfg.generate.length, self.username, self.username
        ))
    }

    fn describe_revoke(&self) -> String {
        format!(
            "the admin runs ACL SETUSER {} !<sha256 of the previous password> (the old password stops working)",
            self.username
        )
    }

    fn warnings(&self, cfg: &SecretConfig) -> Vec<String> {
        self.sslmode
            .warning(&cfg.name.to_string(), "AUTH passwords")
            .into_iter()
            .collect()
    }
}
