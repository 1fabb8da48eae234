//! The `mysql` target: a MySQL or MariaDB account's password, in a secret shaped like the
//! ones AWS uses for RDS MySQL/MariaDB: `{"engine", "host", "port", "username",
//! "password", "dbname"}` (any other key is kept as it was, in place).
//!
//! **What the secret may decide.** Nothing beyond the password. The server (`host`,
//! `port`) and the account (`user`, `user_host`) are pinned in the target's
//! configuration; a secret (application or admin) that names another server or user is
//! refused before any connection is made, so a written secret cannot send the admin's
//! password elsewhere or make the admin alter another account (its own included: the
//! admin secret's user may never be a rotated user). `dbname` is kept but never used.
//!
//! **Passwords in logs.** MariaDB writes `ALTER USER ... IDENTIFIED BY 'password'` to its
//! general and slow logs as sent. So on MariaDB "set" computes the mysql_native_password
//! hash here and sends `IDENTIFIED BY PASSWORD '*hash'` (the server stores the hash as
//! is). On MySQL (which rewrites passwords out of its logs, and whose 8.4+ may have no
//! mysql_native_password) it sends `IDENTIFIED BY '...'` quoted for the session's
//! `sql_mode`. Accounts are backtick-quoted identifiers, which read the same in every
//! `sql_mode`. A session whose `character_set_client` is not one in which this quoting
//! holds (utf8mb4, utf8mb3, utf8, latin1, ascii, binary) is refused before any statement:
//! in gbk, big5, sjis or cp932 a multibyte character can take an escaping backslash.
//! Logins never offer the password in clear (no mysql_clear_password).
//!
//! **single-user**: the pending value is AWSCURRENT's document with a new password. set
//! logs in as the admin (`admin_secret_id`, read at AWSCURRENT) and runs `ALTER USER`, or
//! else as the user itself with AWSCURRENT's password and sets its own password. If the
//! user's own login is refused, set may have run already (a crash after set): the
//! pending password is tried, and if it logs in, set is done. The old password stops
//! working at set; revoke has nothing left to do.
//!
//! **alternating-users**: two accounts, `user` and `user<clone_suffix>` (same
//! `user_host`). The pending value names the one AWSCURRENT does not, with a new
//! password; the admin sets it. The first time, the admin creates the clone with no
//! privilege. Each time, before its password, the clone is brought to exactly the
//! original's grants, line by line from `SHOW GRANTS` (grantee rewritten, MariaDB's
//! password clause dropped): what it lacks is granted (a privilege given to the original
//! since), what it has beyond is revoked (one given to the clone alone, or taken from the
//! original). Its account attributes follow the same way (`SHOW CREATE USER`: REQUIRE
//! and resource limits; not lock or expiry). Both are read again: a clone that still
//! differs gets no password. Only a clone that is ours is changed that way: one created
//! here (or by an interrupted run of this rotation: it accepts the pending password), or
//! named by this secret's AWSCURRENT or AWSPREVIOUS. An existing account of
//! that name that this secret never rotated to may be someone else's: if its grants or
//! attributes differ from the original's it is refused, and no statement reaches it. An
//! original with MySQL 8 default roles (`DEFAULT ROLE` in `SHOW CREATE USER`, not
//! copied) is refused.
//! The previous account keeps working, as in AWS's alternating-users Lambda.
//!
//! **Accounts the test cannot log in as** (both modes, with an admin): an account that
//! requires a client certificate (`REQUIRE X509`, `ISSUER`, `SUBJECT`: the daemon has
//! none), or TLS (`REQUIRE SSL`, `CIPHER`) while `sslmode = "disable"`, is refused
//! before any change; `check --remote` reports it.
//!
//! **test**: a fresh login with the pending value and `SELECT 1`.
//!
//! **sslmode**: as `postgres`: `verify-full` by default (the system's roots plus
//! `ca_file`; RDS needs its CA bundle there), `verify-ca`, `require`, `disable`; no
//! fallback to plain text. Note: with `disable`, a MySQL account on caching_sha2_password
//! that needs a full authentication gets its password RSA-encrypted with a key the
//! server (or whoever answers) sends; use TLS.
//!
//! **timeout**: every connection (TCP, TLS, login) and every statement is bounded by the
//! target's `timeout`.
//!
//! Client: `mysql_async` (pure Rust, tokio, rustls on the aws-lc-rs stack the AWS SDK
//! already uses; no pool, no compression, no local socket).

mod config;
mod connect;
mod secret;
mod sql;
mod steps;

pub use config::{MySql, MySqlMode, MySqlTarget, RawMySql};

use crate::config::{SecretConfig, TargetKind};
use crate::rotation::target::{ConfiguredTarget, RemoteFinding, TargetEnv, TargetError};
use futures::future::BoxFuture;
use secrecy::SecretString;

/// `mysql: ...`: a failure of this target; the text never holds a password (masked).
fn my(msg: impl Into<String>) -> TargetError {
    crate::targets::shared::kind_error(MySql::NAME, msg)
}

impl ConfiguredTarget for MySqlTarget {
    fn kind(&self) -> &'static str {
        MySql::NAME
    }

    fn makes_value(&self) -> bool {
        MySql::MAKES_VALUE
    }

    /// Not in single-user mode without an admin: once "set" ran, only the pending
    /// password can log in to change it again.
    fn fresh_value_on_retry(&self) -> bool {
        !(self.mode == MySqlMode::SingleUser && self.admin_secret_id.is_none())
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

    fn check_remote<'a>(
        &'a self,
        env: &'a TargetEnv<'a>,
    ) -> BoxFuture<'a, Result<Vec<RemoteFinding>, TargetError>> {
        Box::pin(steps::check_remote(env, self))
    }

    fn describe_create(&self, cfg: &SecretConfig) -> Option<String> {
        let account = format!("'{}'@'{}'", self.user, self.user_host);
        Some(match self.mode {
            MySqlMode::SingleUser => format!(
                "make the new value: AWSCURRENT's JSON with a new {}-character password, written as AWSPENDING; set: {}; test: a fresh login + SELECT 1",
                cfg.generate.length,
                if self.admin_secret_id.is_some() {
                    format!("the admin runs ALTER USER {account} IDENTIFIED BY PASSWORD <hash> (MariaDB) or BY <password> (MySQL)")
                } else {
                    format!("{account} logs in with AWSCURRENT's password and runs SET PASSWORD = <hash> (MariaDB) or ALTER USER USER() IDENTIFIED BY <password> (MySQL)")
                },
            ),
            MySqlMode::AlternatingUsers => format!(
                "make the new value: AWSCURRENT's JSON with a new {}-character password for the other account of the pair ({account} or '{}{}'@'{}'), written as AWSPENDING; set: the admin runs CREATE USER (first time) + the original's SHOW GRANTS copied to the clone, then ALTER USER <that account> IDENTIFIED BY PASSWORD <hash>; test: a fresh login + SELECT 1",
                cfg.generate.length, self.user, self.clone_suffix, self.user_host
            ),
        })
    }

    fn warnings(&self, cfg: &SecretConfig) -> Vec<String> {
        self.sslmode
            .warning(&cfg.name.to_string(), "password hashes and logins")
            .into_iter()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SecretId;
    use crate::targets::shared::SslMode;
    use std::time::Duration;

    fn target(mode: MySqlMode, admin: Option<&str>) -> MySqlTarget {
        MySqlTarget {
            mode,
            admin_secret_id: admin.map(SecretId::from),
            sslmode: SslMode::Disable,
            clone_suffix: "_clone".into(),
            host: "db.internal".into(),
            port: 3306,
            user: "app".into(),
            user_host: "%".into(),
            ca_file: None,
            timeout: Duration::from_secs(30),
        }
    }

    #[test]
    fn fresh_retry_policy() {
        assert!(!target(MySqlMode::SingleUser, None).fresh_value_on_retry());
        assert!(target(MySqlMode::SingleUser, Some("a")).fresh_value_on_retry());
        assert!(target(MySqlMode::AlternatingUsers, Some("a")).fresh_value_on_retry());
        assert!(target(MySqlMode::SingleUser, None).has_set());
        assert!(!target(MySqlMode::SingleUser, None).has_revoke());
    }
}
