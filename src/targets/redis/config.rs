//! The `redis` table: which server, which ACL user, how to log in.

use crate::config::{Target, TargetKind, TargetTable, DURATION_EXPECTED};
use crate::ids::SecretId;
use crate::targets::shared::{parse_ca_file, parse_host, parse_port, parse_sslmode, parse_timeout, SslMode};
use serde::Deserialize;
use std::time::Duration;
use toml::Spanned;

/// `target = { kind = "redis", host, port, username, admin_secret_id, sslmode, ca_file,
/// timeout, allow_unsaved }`.
pub struct Redis;

/// The `redis` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedis {
    host: Option<Spanned<String>>,
    port: Option<Spanned<i64>>,
    username: Option<Spanned<String>>,
    admin_secret_id: Option<Spanned<String>>,
    sslmode: Option<Spanned<String>>,
    ca_file: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    allow_unsaved: Option<Spanned<bool>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisTarget {
    /// The only server this target may connect to.
    pub host: String,
    pub port: u16,
    /// The only ACL user whose passwords may change.
    pub username: String,
    /// A secret `{"username", "password"}` whose user may run `ACL SETUSER`.
    pub admin_secret_id: SecretId,
    pub(crate) sslmode: SslMode,
    pub ca_file: Option<std::path::PathBuf>,
    pub timeout: Duration,
    /// Rotate even when nothing can save the ACL change (no aclfile, no config file, or
    /// the admin may not save): a restart then brings the old password back. Default
    /// false: set refuses before ACL SETUSER.
    pub allow_unsaved: bool,
}

impl TargetKind for Redis {
    const NAME: &'static str = "redis";
    type Raw = RawRedis;
    const MAKES_VALUE: bool = true;

    fn expects(key: &str, _element: bool) -> Option<String> {
        (key == "timeout").then(|| DURATION_EXPECTED.into())
    }

    fn parse(&self, raw: RawRedis, t: &mut TargetTable<'_>) -> Option<Target> {
        let host = parse_host(t, raw.host.as_ref(), Self::NAME);
        let port = parse_port(t, raw.port.as_ref(), 6379);
        let username = match &raw.username {
            // An ACL user name is one RESP argument; ACL SETUSER refuses spaces in it.
            Some(u)
                if !u.get_ref().is_empty()
                    && u.get_ref().len() <= 256
                    && u.get_ref().chars().all(|c| c.is_ascii_graphic()) =>
            {
                u.get_ref().clone()
            }
            Some(u) => {
                t.error(
                    u.span(),
                    "username",
                    "must be an ACL user name of 1 to 256 printable characters, no space",
                );
                String::new()
            }
            None => {
                let span = t.span();
                t.error(span, "username",
                    "target kind \"redis\" needs `username`: the only ACL user whose password it may change (a secret naming another is refused)");
                String::new()
            }
        };
        let admin_secret_id = match &raw.admin_secret_id {
            Some(a) => t.secret_id("admin_secret_id", a),
            None => {
                let span = t.span();
                t.error(span, "admin_secret_id",
                    "target kind \"redis\" needs admin_secret_id (a secret whose user may run ACL SETUSER)");
                None
            }
        };
        let sslmode = parse_sslmode(t, raw.sslmode.as_ref());
        let ca_file = parse_ca_file(t, raw.ca_file.as_ref());
        let timeout = parse_timeout(t, raw.timeout.as_ref())?;
        Some(Target::new(RedisTarget {
            host,
            port,
            username,
            admin_secret_id: admin_secret_id?,
            sslmode,
            ca_file,
            timeout,
            allow_unsaved: raw.allow_unsaved.is_some_and(|a| *a.get_ref()),
        }))
    }
}
