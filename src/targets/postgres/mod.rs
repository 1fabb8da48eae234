//! The `postgres` target: a PostgreSQL role's password, in a secret shaped like the ones
//! AWS uses for databases: `{"engine", "host", "port", "username", "password", "dbname"}`
//! (any other key is kept as it was, in place).
//!
//! **What the secret may decide.** Whoever can write the application secret must gain
//! nothing beyond it. The server (`host`, `port`, `dbname`) and the role(s) are pinned
//! in the target's configuration; a secret (application or admin) that names another
//! server or role is refused before any connection is made, so a written secret cannot
//! send the admin's password elsewhere, make the admin alter its own role, or put a new
//! role inside a privileged one. The admin secret's user may never be a rotated role.
//!
//! Passwords never cross the wire in clear: "set" computes a SCRAM-SHA-256 verifier here
//! and sends `ALTER ROLE "name" PASSWORD 'SCRAM-SHA-256$...'`, so neither the network nor
//! the server's statement log sees the password (the server stores the verifier as is).
//! Logins refuse a server that asks for the password in clear text or as an MD5 hash;
//! over TLS, SCRAM with channel binding is required (a relaying middle-man fails).
//! Identifiers are double-quoted (`"` doubled), literals single-quoted (`'` doubled, and
//! `E'...'` with doubled backslashes when a backslash occurs, like libpq).
//!
//! **single-user**: the pending value is AWSCURRENT's document with a new password for
//! `role`. set logs in as the admin (`admin_secret_id`, read at AWSCURRENT), or else as
//! the role itself with AWSCURRENT's password, and alters the role's password. If the
//! role's own login is refused, set may have run already (a crash after set): the pending
//! password is tried, and if it logs in, set is done. The old password stops working at
//! set, so consumers that open new connections with it fail until they are redeployed;
//! revoke has nothing left to do. Without an admin secret, a retry after a failure
//! resumes the same pending value (see `fresh_value_on_retry` below).
//!
//! **alternating-users**: two roles, `role` and `role<clone_suffix>`. The pending value
//! names the role that AWSCURRENT does not, with a new password; the admin sets it. The
//! first time, the admin creates the clone as `CREATE ROLE "app_clone" LOGIN PASSWORD
//! '...' IN ROLE "app"`: a plain member of the configured role (no attribute such as
//! SUPERUSER or CREATEROLE). This is what AWS's alternating-users rotation Lambda does
//! (`GRANT app TO app_clone`). An existing clone with an attribute or membership the
//! original lacks is refused. Consumers still running with the old role keep working
//! throughout, and nothing is revoked afterwards, as in AWS's Lambda.
//!
//! **test**: a fresh login with the pending value and `SELECT 1`.
//!
//! **sslmode**: `verify-full` by default (the chain must lead to a trusted root: the
//! system's plus `ca_file`, and the certificate must name the host); `verify-ca` (no
//! name check); `require` (TLS, no certificate check); `disable`. No `prefer`: a TLS
//! failure never falls back to plain text.
//!
//! **timeout**: every connection (TCP, TLS, login) and every statement is bounded by the
//! target's `timeout`: a hung or hostile server fails the step instead of holding a
//! rotation slot forever.

mod config;
mod connect;
mod secret;
mod sql;
mod steps;

pub use config::{Postgres, PostgresMode, PostgresTarget, RawPostgres};

use crate::config::{SecretConfig, TargetKind};
use crate::rotation::target::{ConfiguredTarget, Masker, TargetEnv, TargetError};
use futures::future::BoxFuture;
use secrecy::SecretString;

/// `postgres: ...`: a failure of this target; the text never holds a password (it is
/// masked).
fn pg(msg: impl Into<String>) -> TargetError {
    TargetError::Kind {
        kind: Postgres::NAME,
        message: msg.into(),
    }
}

/// Masks whatever a server or the driver echoed in a failure of this target.
fn masked(masker: &Masker, e: TargetError) -> TargetError {
    match e {
        TargetError::Kind { kind, message } => TargetError::Kind {
            kind,
            message: masker.mask(&message),
        },
        other => other,
    }
}

impl ConfiguredTarget for PostgresTarget {
    fn kind(&self) -> &'static str {
        Postgres::NAME
    }

    /// The pending value is AWSCURRENT's JSON document with a new password (and, in
    /// alternating-users mode, the other role).
    fn makes_value(&self) -> bool {
        Postgres::MAKES_VALUE
    }

    /// Not in single-user mode without an admin secret: once "set" ran, the role's
    /// password is the pending one, and only that password can log in to change it
    /// again. The value is a SCRAM verifier computed here, so the server never judges the
    /// password itself and cannot refuse it: resuming the same value loses nothing.
    fn fresh_value_on_retry(&self) -> bool {
        !(self.mode == PostgresMode::SingleUser && self.admin_secret_id.is_none())
    }

    fn has_set(&self) -> bool {
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

    fn describe_create(&self, cfg: &SecretConfig) -> Option<String> {
        Some(format!(
            "make the new value: AWSCURRENT's JSON with a new {}-character password{}, written as AWSPENDING",
            cfg.generate.length,
            match self.mode {
                PostgresMode::SingleUser => String::new(),
                PostgresMode::AlternatingUsers => format!(
                    " for the other role of the pair (username with or without \"{}\")",
                    self.clone_suffix
                ),
            }
        ))
    }

    fn warnings(&self, cfg: &SecretConfig) -> Vec<String> {
        self.sslmode
            .warning(&cfg.name.to_string(), "new password verifiers")
            .into_iter()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SecretId;
    use std::time::Duration;

    fn target(mode: PostgresMode) -> PostgresTarget {
        PostgresTarget {
            mode,
            admin_secret_id: None,
            sslmode: crate::targets::shared::SslMode::Disable,
            clone_suffix: "_clone".into(),
            host: "db.internal".into(),
            port: 6432,
            dbname: "app".into(),
            role: "app".into(),
            ca_file: None,
            timeout: Duration::from_secs(30),
        }
    }

    #[test]
    fn fresh_retry_policy() {
        let pg = |mode, admin: Option<&str>| PostgresTarget {
            admin_secret_id: admin.map(SecretId::from),
            ..target(mode)
        };
        assert!(!pg(PostgresMode::SingleUser, None).fresh_value_on_retry());
        assert!(pg(PostgresMode::SingleUser, Some("a")).fresh_value_on_retry());
        assert!(pg(PostgresMode::AlternatingUsers, Some("a")).fresh_value_on_retry());
        assert!(crate::config::Target::None.ops().fresh_value_on_retry());
    }
}
