//! The `postgres` table: which server, which role(s), how to log in.

use crate::config::{Target, TargetKind, TargetTable, DURATION_EXPECTED};
use crate::ids::SecretId;
use serde::Deserialize;
use std::time::Duration;
use toml::Spanned;

/// `target = { kind = "postgres", host, port, dbname, role, mode, admin_secret_id,
/// sslmode, ca_file, clone_suffix, timeout }`.
pub struct Postgres;

/// The `postgres` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPostgres {
    mode: Option<Spanned<String>>,
    admin_secret_id: Option<Spanned<String>>,
    sslmode: Option<Spanned<String>>,
    clone_suffix: Option<Spanned<String>>,
    host: Option<Spanned<String>>,
    port: Option<Spanned<i64>>,
    dbname: Option<Spanned<String>>,
    role: Option<Spanned<String>>,
    ca_file: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostgresMode {
    SingleUser,
    AlternatingUsers,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostgresTarget {
    pub mode: PostgresMode,
    pub admin_secret_id: Option<SecretId>,
    pub sslmode: String,
    pub clone_suffix: String,
    /// The only server this target may connect to: a secret naming another host, port
    /// or database is refused before connecting (whoever can write the secret must not
    /// redirect the admin's login).
    pub host: String,
    pub port: u16,
    pub dbname: String,
    /// The only role whose password may be set (and, in alternating-users mode, its
    /// clone `role + clone_suffix`, which is created as a plain member of `role`).
    pub role: String,
    /// Extra trusted roots (PEM) for verify-ca / verify-full, besides the system's.
    pub ca_file: Option<std::path::PathBuf>,
    /// Bound on each connection attempt and each statement.
    pub timeout: Duration,
}

impl TargetKind for Postgres {
    const NAME: &'static str = "postgres";
    type Raw = RawPostgres;
    const MAKES_VALUE: bool = true;

    fn expects(key: &str, _element: bool) -> Option<String> {
        (key == "timeout").then(|| DURATION_EXPECTED.into())
    }

    fn parse(&self, raw: RawPostgres, t: &mut TargetTable<'_>) -> Option<Target> {
        let mode = match raw.mode.as_ref().map(|m| (m.get_ref().as_str(), m.span())) {
            None | Some(("single-user", _)) => PostgresMode::SingleUser,
            Some(("alternating-users", _)) => PostgresMode::AlternatingUsers,
            Some((other, span)) => {
                t.error(
                    span,
                    "mode",
                    format!("unknown mode \"{other}\" (allowed: single-user, alternating-users)"),
                );
                PostgresMode::SingleUser
            }
        };
        let admin_secret_id = match &raw.admin_secret_id {
            None => None,
            Some(a) => t.secret_id("admin_secret_id", a),
        };
        if mode == PostgresMode::AlternatingUsers && raw.admin_secret_id.is_none() {
            t.error(t.span(), "admin_secret_id",
                "alternating-users mode needs admin_secret_id (a secret whose user may ALTER and CREATE roles)");
        }
        // verify-full unless a weaker mode is written; no "prefer": it falls back to
        // plain text, so whoever sits on the path decides whether TLS is used.
        let sslmode = match raw.sslmode.as_ref() {
            None => "verify-full".to_owned(),
            Some(s)
                if ["disable", "require", "verify-ca", "verify-full"]
                    .contains(&s.get_ref().as_str()) =>
            {
                s.get_ref().clone()
            }
            Some(s) if s.get_ref() == "prefer" => {
                t.error(s.span(), "sslmode",
                    "\"prefer\" is not supported: it falls back to plain text whenever the path refuses TLS (allowed: verify-full, verify-ca, require, disable)");
                String::new()
            }
            Some(s) => {
                t.error(s.span(), "sslmode", format!(
                    "unknown sslmode \"{}\" (allowed: verify-full, verify-ca, require, disable)", s.get_ref()
                ));
                String::new()
            }
        };
        let host = match &raw.host {
            Some(h)
                if !h.get_ref().is_empty()
                    && h.get_ref().len() <= 253
                    && h.get_ref()
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".-:_".contains(c)) =>
            {
                h.get_ref().clone()
            }
            Some(h) => {
                t.error(
                    h.span(),
                    "host",
                    format!("\"{}\" is not a host name or IP address", h.get_ref()),
                );
                String::new()
            }
            None => {
                t.error(t.span(), "host",
                    "target kind \"postgres\" needs `host`: the only server it may connect to (a secret naming another is refused)");
                String::new()
            }
        };
        let port = match &raw.port {
            None => 5432,
            Some(p) => match u16::try_from(*p.get_ref()) {
                Ok(p) if p > 0 => p,
                _ => {
                    t.error(
                        p.span(),
                        "port",
                        format!("{} is out of range (allowed 1 to 65535)", p.get_ref()),
                    );
                    0
                }
            },
        };
        let dbname = match &raw.dbname {
            None => "postgres".to_owned(),
            Some(d) if !d.get_ref().is_empty() && !d.get_ref().contains('\0') => {
                d.get_ref().clone()
            }
            Some(d) => {
                t.error(d.span(), "dbname", "must be a non-empty database name");
                String::new()
            }
        };
        let role = match &raw.role {
            Some(r)
                if !r.get_ref().is_empty()
                    && r.get_ref().len() <= 63
                    && !r.get_ref().contains('\0') =>
            {
                r.get_ref().clone()
            }
            Some(r) => {
                t.error(r.span(), "role", "must be a role name of 1 to 63 bytes");
                String::new()
            }
            None => {
                t.error(t.span(), "role",
                    "target kind \"postgres\" needs `role`: the only role whose password it may set (a secret naming another is refused)");
                String::new()
            }
        };
        let ca_file = match &raw.ca_file {
            None => None,
            Some(f) if f.get_ref().starts_with('/') => Some(std::path::PathBuf::from(f.get_ref())),
            Some(f) => {
                t.error(
                    f.span(),
                    "ca_file",
                    "must be an absolute path to a PEM file",
                );
                None
            }
        };
        let timeout = match &raw.timeout {
            None => Duration::from_secs(30),
            Some(x) => t.duration(
                "timeout",
                x,
                Duration::from_secs(1),
                Duration::from_secs(600),
            )?,
        };
        let clone_suffix = match raw.clone_suffix.as_ref() {
            None => "_clone".to_owned(),
            Some(s)
                if !s.get_ref().is_empty()
                    && s.get_ref()
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                s.get_ref().clone()
            }
            Some(s) => {
                t.error(
                    s.span(),
                    "clone_suffix",
                    "must be non-empty letters, digits or _ (e.g. \"_clone\")",
                );
                String::new()
            }
        };
        Some(Target::new(PostgresTarget {
            mode,
            admin_secret_id,
            sslmode,
            clone_suffix,
            host,
            port,
            dbname,
            role,
            ca_file,
            timeout,
        }))
    }
}
