//! The `postgres` table: which server, which role(s), how to log in.

use crate::config::{Target, TargetKind, TargetTable, DURATION_EXPECTED};
use crate::ids::SecretId;
use crate::targets::shared::{
    parse_ca_file, parse_clone_suffix, parse_host, parse_port, parse_sslmode, parse_timeout,
    SslMode,
};
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
    pub(crate) sslmode: SslMode,
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
        let sslmode = parse_sslmode(t, raw.sslmode.as_ref());
        let host = parse_host(t, raw.host.as_ref(), Self::NAME);
        let port = parse_port(t, raw.port.as_ref(), 5432);
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
        let ca_file = parse_ca_file(t, raw.ca_file.as_ref());
        let timeout = parse_timeout(t, raw.timeout.as_ref())?;
        let clone_suffix = parse_clone_suffix(t, raw.clone_suffix.as_ref());
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
