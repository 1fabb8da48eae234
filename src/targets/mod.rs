//! The target kinds of this binary: the systems that must learn a new value before it
//! becomes current, one folder each.
//!
//! | kind             | value made by                    | set                    | test                     | revoke                          |
//! |------------------|----------------------------------|------------------------|--------------------------|---------------------------------|
//! | `none`           | the engine (generator, json_key) | -                      | -                        | -                               |
//! | `command`        | the engine                       | operator program       | operator program         | operator program (old value)    |
//! | `postgres`       | the kind (JSON, new password)    | `ALTER`/`CREATE ROLE`  | fresh login + `SELECT 1` | - (see [`postgres`])            |
//! | `iam-access-key` | the kind (`CreateAccessKey`)     | -                      | STS `GetCallerIdentity`  | deactivate the old key          |
//! | `mysql`          | the kind (JSON, new password)    | `ALTER`/`CREATE USER` + copied grants | fresh login + `SELECT 1` | - (see [`mysql`]) |
//! | `redis`          | the kind (JSON, new password)    | `ACL SETUSER u #sha256` (both log in) | fresh `AUTH` + `PING` | `ACL SETUSER u !sha256` (old) |
//!
//! `none` is the core's; the others live here. The seam is two traits of the core:
//! [`TargetKind`](crate::config::TargetKind) reads a kind's `target` table (its keys are
//! the fields of the kind's `Raw` struct; the loader reports unknown keys, keys of
//! another kind and type errors the same way for every kind, as
//! `file:line:col: secret[NAME].target.KEY: ...`), and
//! [`ConfiguredTarget`](crate::rotation::target::ConfiguredTarget) is what the engine
//! calls: make the value, set, test, revoke, describe for `plan`, warnings for `check`,
//! whether a retry needs a fresh value, the step budget. A kind that needs a client at
//! rotation time looks it up by type in the engine's
//! [`TargetClients`](crate::rotation::target::TargetClients) (IAM does:
//! [`iam::WithIam`]); the core builds none.
//!
//! Each folder reads the same way: `mod.rs` (what the kind does, its `ConfiguredTarget`),
//! `config.rs` (its table), then its own parts.
//!
//! **Adding a kind** (say `mysql`): a folder `src/targets/mysql/` with a `TargetKind`
//! and a `ConfiguredTarget`, and one line `mysql::MySql,` in the list below. Nothing
//! else: config loading, `check`, `plan`, the dry run and the engine reach it through
//! the registry. docs/targets.md has the checklist.

use crate::config::Registry;

/// Declares each kind's folder and registers its kind, in the order error messages list
/// kinds: one line per kind.
macro_rules! kinds {
    ($($folder:ident :: $kind:ident),* $(,)?) => {
        $(pub mod $folder;)*

        /// Every target kind a configuration may use: the core's `none`, then these.
        pub fn registry() -> Registry {
            Registry::new()$(.with($folder::$kind))*
        }
    };
}

/// What the server-login kinds share (pinned server keys, JSON secrets, TLS roots).
mod shared;

kinds! {
    command::Command,
    postgres::Postgres,
    iam::IamAccessKey,
    mysql::MySql,
    redis::Redis,
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_kind_is_registered_once_in_order() {
        let r = super::registry();
        assert_eq!(
            r.names().collect::<Vec<_>>(),
            [
                "none",
                "command",
                "postgres",
                "iam-access-key",
                "mysql",
                "redis"
            ]
        );
        assert_eq!(
            r.keys("command"),
            Some(&["set", "test", "revoke", "timeout", "env"][..])
        );
        assert_eq!(
            r.keys("iam-access-key"),
            Some(&["user", "delete_after"][..])
        );
        assert_eq!(
            r.keys("redis"),
            Some(
                &[
                    "host",
                    "port",
                    "username",
                    "admin_secret_id",
                    "sslmode",
                    "ca_file",
                    "timeout",
                    "allow_unsaved"
                ][..]
            )
        );
        assert_eq!(
            r.keys("mysql"),
            Some(
                &[
                    "mode",
                    "admin_secret_id",
                    "sslmode",
                    "clone_suffix",
                    "host",
                    "port",
                    "user",
                    "user_host",
                    "ca_file",
                    "timeout"
                ][..]
            )
        );
    }
}
