//! The `mysql` table: which server, which user(s), how to log in.

use crate::config::{Target, TargetKind, TargetTable, DURATION_EXPECTED};
use crate::ids::SecretId;
use crate::targets::shared::{
    parse_ca_file, parse_clone_suffix, parse_host, parse_port, parse_sslmode, parse_timeout,
    SslMode,
};
use serde::Deserialize;
use std::time::Duration;
use toml::Spanned;

/// MariaDB allows 80 characters in a user name (MySQL 32); the server refuses longer.
pub(super) const MAX_USER: usize = 80;

/// `target = { kind = "mysql", host, port, user, user_host, mode, admin_secret_id,
/// sslmode, ca_file, clone_suffix, timeout }`.
pub struct MySql;

/// The `mysql` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMySql {
    mode: Option<Spanned<String>>,
    admin_secret_id: Option<Spanned<String>>,
    sslmode: Option<Spanned<String>>,
    clone_suffix: Option<Spanned<String>>,
    host: Option<Spanned<String>>,
    port: Option<Spanned<i64>>,
    user: Option<Spanned<String>>,
    user_host: Option<Spanned<String>>,
    ca_file: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MySqlMode {
    SingleUser,
    AlternatingUsers,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MySqlTarget {
    pub mode: MySqlMode,
    pub admin_secret_id: Option<SecretId>,
    pub(crate) sslmode: SslMode,
    pub clone_suffix: String,
    /// The only server this target may connect to: a secret naming another host or port
    /// is refused before connecting.
    pub host: String,
    pub port: u16,
    /// The only account whose password may be set: `'user'@'user_host'` (and, in
    /// alternating-users mode, `'user<clone_suffix>'@'user_host'`, created with exactly
    /// the grants of the original).
    pub user: String,
    pub user_host: String,
    /// Extra trusted roots (PEM) for verify-ca / verify-full, besides the system's.
    pub ca_file: Option<std::path::PathBuf>,
    /// Bound on each connection attempt and each statement.
    pub timeout: Duration,
}

impl TargetKind for MySql {
    const NAME: &'static str = "mysql";
    type Raw = RawMySql;
    const MAKES_VALUE: bool = true;

    fn expects(key: &str, _element: bool) -> Option<String> {
        (key == "timeout").then(|| DURATION_EXPECTED.into())
    }

    fn parse(&self, raw: RawMySql, t: &mut TargetTable<'_>) -> Option<Target> {
        let mode = match raw.mode.as_ref().map(|m| (m.get_ref().as_str(), m.span())) {
            None | Some(("single-user", _)) => MySqlMode::SingleUser,
            Some(("alternating-users", _)) => MySqlMode::AlternatingUsers,
            Some((other, span)) => {
                t.error(
                    span,
                    "mode",
                    format!("unknown mode \"{other}\" (allowed: single-user, alternating-users)"),
                );
                MySqlMode::SingleUser
            }
        };
        let admin_secret_id = match &raw.admin_secret_id {
            None => None,
            Some(a) => t.secret_id("admin_secret_id", a),
        };
        if mode == MySqlMode::AlternatingUsers && raw.admin_secret_id.is_none() {
            let span = t.span();
            t.error(span, "admin_secret_id",
                "alternating-users mode needs admin_secret_id (a secret whose user may CREATE USER, ALTER USER and GRANT)");
        }
        let sslmode = parse_sslmode(t, raw.sslmode.as_ref());
        let host = parse_host(t, raw.host.as_ref(), Self::NAME);
        let port = parse_port(t, raw.port.as_ref(), 3306);
        let clone_suffix = parse_clone_suffix(t, raw.clone_suffix.as_ref());
        let user = match &raw.user {
            Some(u)
                if !u.get_ref().is_empty()
                    && u.get_ref().len() + clone_suffix.len() <= MAX_USER
                    && !u.get_ref().contains('\0') =>
            {
                u.get_ref().clone()
            }
            Some(u) => {
                t.error(
                    u.span(),
                    "user",
                    format!("must be a user name of 1 to {MAX_USER} bytes (clone_suffix included)"),
                );
                String::new()
            }
            None => {
                let span = t.span();
                t.error(span, "user",
                    "target kind \"mysql\" needs `user`: the only user whose password it may set (a secret naming another is refused)");
                String::new()
            }
        };
        let user_host = match &raw.user_host {
            None => "%".to_owned(),
            Some(h)
                if !h.get_ref().is_empty()
                    && h.get_ref().len() <= 255
                    && !h.get_ref().contains('\0') =>
            {
                h.get_ref().clone()
            }
            Some(h) => {
                t.error(
                    h.span(),
                    "user_host",
                    "must be the host part of the account, as in 'user'@'%' (1 to 255 bytes)",
                );
                String::new()
            }
        };
        let ca_file = parse_ca_file(t, raw.ca_file.as_ref());
        let timeout = parse_timeout(t, raw.timeout.as_ref())?;
        Some(Target::new(MySqlTarget {
            mode,
            admin_secret_id,
            sslmode,
            clone_suffix,
            host,
            port,
            user,
            user_host,
            ca_file,
            timeout,
        }))
    }
}
