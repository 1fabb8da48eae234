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

use crate::config::{SecretConfig, Target, TargetKind, TargetTable, DURATION_EXPECTED};
use crate::ids::{SecretId, SecretRef};
use crate::rotation::generate::generate;
use crate::rotation::store::{Select, AWSCURRENT};
use crate::rotation::target::{ConfiguredTarget, Masker, TargetEnv, TargetError};
use futures::future::BoxFuture;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::{ChannelBinding, SslMode};
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::Client;
use tokio_postgres_rustls::MakeRustlsConnect;
use toml::Spanned;

/// PostgreSQL truncates longer identifiers (NAMEDATALEN - 1).
const MAX_IDENTIFIER: usize = 63;

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

// ---------------------------------------------------------------------------- config

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
        Box::pin(create_value(env, self))
    }

    fn set<'a>(
        &'a self,
        env: &'a TargetEnv<'a>,
        value: &'a SecretString,
    ) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(set(env, self, value))
    }

    fn test<'a>(
        &'a self,
        _env: &'a TargetEnv<'a>,
        value: &'a SecretString,
    ) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(test(self, value))
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
        if self.sslmode == "verify-full" {
            return Vec::new();
        }
        vec![format!(
            "{}: target.sslmode = \"{}\" {}; verify-full is the default",
            cfg.name,
            self.sslmode,
            match self.sslmode.as_str() {
                "disable" => "sends everything, new password verifiers included, in plain text",
                "require" =>
                    "encrypts but accepts any server certificate (a middle-man can answer)",
                _ => "checks the certificate chain but not that it names the host",
            }
        )]
    }
}

/// A database secret: the JSON document, kept whole, with typed access to the fields used.
struct DbSecret {
    doc: Map<String, Value>,
    which: &'static str,
}

impl DbSecret {
    fn parse(v: &SecretString, which: &'static str) -> Result<Self, TargetError> {
        match serde_json::from_str::<Value>(v.expose_secret()) {
            Ok(Value::Object(doc)) => Ok(Self { doc, which }),
            _ => Err(pg(format!(
                "the {which} value is not a JSON object with host, port, username, password, dbname"
            ))),
        }
    }

    fn str_field(&self, key: &str) -> Option<&str> {
        self.doc.get(key).and_then(Value::as_str)
    }

    fn required(&self, key: &str) -> Result<&str, TargetError> {
        match self.str_field(key) {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(pg(format!(
                "the {} value has no \"{key}\" string",
                self.which
            ))),
        }
    }

    fn username(&self) -> Result<&str, TargetError> {
        self.required("username")
    }

    fn password(&self) -> Result<SecretString, TargetError> {
        match self.doc.get("password").and_then(Value::as_str) {
            Some(p) => Ok(SecretString::from(p.to_owned())),
            None => Err(pg(format!(
                "the {} value has no \"password\" string",
                self.which
            ))),
        }
    }

    fn port(&self) -> Result<Option<u16>, TargetError> {
        let bad = || pg(format!("the {} value has an invalid \"port\"", self.which));
        match self.doc.get("port") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .map(Some)
                .ok_or_else(bad),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| bad()),
            Some(_) => Err(bad()),
        }
    }

    /// Refuses a secret that names a server other than the configured one: its fields
    /// may be absent (RDS master secrets hold only username and password), never different.
    fn check_server(&self, t: &PostgresTarget) -> Result<(), TargetError> {
        let refuse = |what: &str, found: &str, pinned: &str| {
            pg(format!(
                "the {} value names {what} {found} but this target may only connect to {what} {pinned} (target.{what}); refused before connecting",
                self.which
            ))
        };
        for (key, pinned) in [("host", &t.host), ("dbname", &t.dbname)] {
            match self.doc.get(key) {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) if s.eq_ignore_ascii_case(pinned) => {}
                Some(Value::String(s)) => {
                    return Err(refuse(key, &format!("\"{s}\""), &format!("\"{pinned}\"")))
                }
                Some(_) => return Err(refuse(key, "a non-string", &format!("\"{pinned}\""))),
            }
        }
        match self.port()? {
            Some(p) if p != t.port => Err(refuse("port", &p.to_string(), &t.port.to_string())),
            _ => Ok(()),
        }
    }

    /// The secret's role, if it is one this target may touch.
    fn role(&self, t: &PostgresTarget) -> Result<&str, TargetError> {
        let user = self.username()?;
        let allowed = allowed_roles(t);
        if allowed.iter().any(|r| r == user) {
            Ok(user)
        } else {
            Err(pg(format!(
                "the {} value names role \"{user}\" but this target may only touch {} (target.role); refused before connecting",
                self.which,
                allowed
                    .iter()
                    .map(|r| format!("\"{r}\""))
                    .collect::<Vec<_>>()
                    .join(" and ")
            )))
        }
    }

    fn to_secret(&self) -> Result<SecretString, TargetError> {
        serde_json::to_string(&self.doc)
            .map(SecretString::from)
            .map_err(|_| pg("cannot serialize the new value"))
    }
}

/// The roles whose password this target may set: the configured role, and in
/// alternating-users mode its clone.
fn allowed_roles(t: &PostgresTarget) -> Vec<String> {
    match t.mode {
        PostgresMode::SingleUser => vec![t.role.clone()],
        PostgresMode::AlternatingUsers => vec![t.role.clone(), clone_of(t)],
    }
}

fn clone_of(t: &PostgresTarget) -> String {
    format!("{}{}", t.role, t.clone_suffix)
}

/// Where and as whom to log in: always the configured server.
struct Login {
    host: String,
    port: u16,
    dbname: String,
    user: String,
    password: SecretString,
}

impl Login {
    fn to(t: &PostgresTarget, user: &str, password: SecretString) -> Self {
        Self {
            host: t.host.clone(),
            port: t.port,
            dbname: t.dbname.clone(),
            user: user.to_owned(),
            password,
        }
    }

    /// The login an application secret describes, once checked against the config.
    fn of(s: &DbSecret, t: &PostgresTarget) -> Result<Self, TargetError> {
        s.check_server(t)?;
        let user = s.role(t)?;
        Ok(Self::to(t, user, s.password()?))
    }

    /// The admin's login: on the configured server, never as a rotated role (the admin
    /// would then alter its own password and hand it to the application secret).
    fn admin(admin: &DbSecret, t: &PostgresTarget) -> Result<Self, TargetError> {
        admin.check_server(t)?;
        let user = admin.username()?;
        if allowed_roles(t).iter().any(|r| r == user) {
            return Err(pg(format!(
                "the admin secret's user \"{user}\" is a role this target rotates; refused"
            )));
        }
        Ok(Self::to(t, user, admin.password()?))
    }

    fn with_password(&self, password: SecretString) -> Self {
        Self {
            host: self.host.clone(),
            port: self.port,
            dbname: self.dbname.clone(),
            user: self.user.clone(),
            password,
        }
    }
}

/// A failed login or statement: whether the server refused the credentials, and what
/// it said (never a password).
#[derive(Debug)]
struct PgFailure {
    auth: bool,
    text: String,
}

impl PgFailure {
    fn from(e: &tokio_postgres::Error) -> Self {
        let auth = matches!(
            e.code(),
            Some(c) if *c == SqlState::INVALID_PASSWORD
                || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        );
        Self {
            auth,
            text: describe(e),
        }
    }
}

fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
        if let Some(d) = db.detail() {
            s.push_str(&format!(" ({d})"));
        }
        return s;
    }
    let mut s = e.to_string();
    let mut cur = std::error::Error::source(e);
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// `"name"` with `"` doubled.
pub fn quote_ident(name: &str) -> Result<String, TargetError> {
    if name.is_empty() || name.contains('\0') {
        return Err(pg("a role name must be non-empty and contain no NUL"));
    }
    if name.len() > MAX_IDENTIFIER {
        return Err(pg(format!(
            "role name \"{name}\" is longer than {MAX_IDENTIFIER} bytes; PostgreSQL would truncate it"
        )));
    }
    Ok(format!("\"{}\"", name.replace('"', "\"\"")))
}

/// A string literal that reads the same whatever `standard_conforming_strings` is.
pub fn quote_literal(s: &str) -> Result<String, TargetError> {
    if s.contains('\0') {
        return Err(pg("a string literal cannot contain NUL"));
    }
    let body = s.replace('\'', "''");
    Ok(if s.contains('\\') {
        format!("E'{}'", body.replace('\\', "\\\\"))
    } else {
        format!("'{body}'")
    })
}

/// The other role of an alternating pair.
pub fn other_role(current: &str, suffix: &str) -> Result<String, TargetError> {
    let other = match current.strip_suffix(suffix) {
        Some(base) if !base.is_empty() => base.to_owned(),
        _ => format!("{current}{suffix}"),
    };
    quote_ident(&other)?;
    Ok(other)
}

// ---------------------------------------------------------------------------- steps

pub async fn create_value(
    env: &TargetEnv<'_>,
    t: &PostgresTarget,
) -> Result<SecretString, TargetError> {
    let (_, current) = env
        .store
        .get_value(&env.cfg.secret, Select::Stage(AWSCURRENT))
        .await?;
    let mut doc = DbSecret::parse(&current, "AWSCURRENT")?;
    // Fail now, before anything is written, if the document cannot be used later (or
    // names a server or role this target may not touch).
    let user = Login::of(&doc, t)?.user;
    let new_user = match t.mode {
        PostgresMode::SingleUser => user,
        PostgresMode::AlternatingUsers if user == t.role => clone_of(t),
        PostgresMode::AlternatingUsers => t.role.clone(),
    };
    quote_ident(&new_user)?;
    let password = generate(&env.cfg.generate).map_err(|e| pg(e.to_string()))?;
    doc.doc.insert("username".into(), Value::String(new_user));
    doc.doc.insert(
        "password".into(),
        Value::String(password.expose_secret().to_owned()),
    );
    doc.which = "pending";
    doc.to_secret()
}

async fn read_admin(env: &TargetEnv<'_>, id: &SecretId) -> Result<DbSecret, TargetError> {
    let r = SecretRef {
        id: id.clone(),
        account: env.cfg.secret.account.clone(),
    };
    let (_, v) = env
        .store
        .get_value(&r, Select::Stage(AWSCURRENT))
        .await
        .map_err(|e| pg(format!("admin secret {id}: {e}")))?;
    DbSecret::parse(&v, "admin secret's")
}

pub async fn set(
    env: &TargetEnv<'_>,
    t: &PostgresTarget,
    value: &SecretString,
) -> Result<(), TargetError> {
    let pending = DbSecret::parse(value, "pending")?;
    let verifier = SecretString::from(postgres_protocol::password::scram_sha_256(
        pending.password()?.expose_secret().as_bytes(),
    ));
    let (_, current) = env
        .store
        .get_value(&env.cfg.secret, Select::Stage(AWSCURRENT))
        .await?;
    let current = DbSecret::parse(&current, "AWSCURRENT")?;
    let admin = match &t.admin_secret_id {
        Some(id) => Some(read_admin(env, id).await?),
        None => None,
    };
    // Whatever the server or a library echoes, no password or verifier gets out.
    let mut masker = Masker::of(value);
    masker.add_str(verifier.expose_secret());
    for s in std::iter::once(&current).chain(admin.as_ref()) {
        if let Ok(p) = s.password() {
            masker.add(&p);
        }
    }
    let result = async {
        let login = Login::of(&pending, t)?;
        let role = login.user.clone();
        let current_login = Login::of(&current, t)?;
        match (t.mode, admin) {
        (PostgresMode::SingleUser, Some(admin)) => {
            let c = connect(&Login::admin(&admin, t)?, t).await?;
            alter_password(&c, &role, &verifier, t.timeout).await
        }
        (PostgresMode::SingleUser, None) => {
            let as_current = login.with_password(current_login.password);
            match connect_raw(&as_current, t).await {
                Ok(c) => alter_password(&c, &role, &verifier, t.timeout).await,
                Err(first) if first.auth => match connect_raw(&login, t).await {
                    Ok(_) => {
                        tracing::info!(secret = %env.cfg.name, role = %role, "the role already logs in with the pending password: set was done by an earlier run");
                        Ok(())
                    }
                    Err(second) => Err(pg(format!(
                        "cannot log in as \"{role}\" with AWSCURRENT's password ({}) nor with the pending one ({}); the role's password was changed outside this rotation: configure admin_secret_id or reset it",
                        first.text, second.text
                    ))),
                },
                Err(e) => Err(pg(format!("cannot log in as \"{role}\": {}", e.text))),
            }
        }
        (PostgresMode::AlternatingUsers, admin) => {
            let Some(admin) = admin else {
                return Err(pg("alternating-users mode needs admin_secret_id"));
            };
            if role == current_login.user {
                return Err(pg(format!(
                    "alternating-users mode: the pending value names the same role as AWSCURRENT (\"{role}\")"
                )));
            }
            let c = connect(&Login::admin(&admin, t)?, t).await?;
            let base = t.role.as_str();
            if role == base {
                return alter_password(&c, &role, &verifier, t.timeout).await;
            }
            // The clone: created as a plain member of the configured role, or, when it
            // exists, never given a new password while it holds more than the original.
            if role_exists(&c, &role, t.timeout).await? {
                check_no_more_than(&c, &role, base, t.timeout).await?;
                alter_password(&c, &role, &verifier, t.timeout).await
            } else {
                tracing::info!(secret = %env.cfg.name, role = %role, member_of = %base, "creating the alternate role");
                match bounded(t.timeout, create_role(&c, &role, &verifier, base)).await {
                    Err(Some(e)) if e.code() == Some(&SqlState::DUPLICATE_OBJECT) => {
                        // Created meanwhile by another rotator.
                        check_no_more_than(&c, &role, base, t.timeout).await?;
                        alter_password(&c, &role, &verifier, t.timeout).await
                    }
                    Err(Some(e)) => Err(pg(format!(
                        "CREATE ROLE \"{role}\" IN ROLE \"{base}\" failed: {}",
                        describe(&e)
                    ))),
                    Err(None) => Err(pg(format!(
                        "CREATE ROLE \"{role}\": no answer within {}",
                        crate::config::duration::format(t.timeout)
                    ))),
                    Ok(()) => Ok(()),
                }
            }
        }
        }
    }
    .await;
    result.map_err(|e| masked(&masker, e))
}

pub async fn test(t: &PostgresTarget, value: &SecretString) -> Result<(), TargetError> {
    let pending = DbSecret::parse(value, "pending")?;
    let masker = Masker::of(value);
    let run = async {
        let login = Login::of(&pending, t)?;
        let c = connect(&login, t).await?;
        bounded(t.timeout, c.simple_query("SELECT 1"))
            .await
            .map_err(|e| {
                pg(format!(
                    "SELECT 1 as \"{}\" failed: {}",
                    login.user,
                    failure_text(e, t.timeout)
                ))
            })?;
        Ok(())
    };
    run.await.map_err(|e| masked(&masker, e))
}

// ---------------------------------------------------------------------------- SQL

/// Runs `f` for at most `limit`: `Err(None)` when it did not answer in time.
async fn bounded<T>(
    limit: Duration,
    f: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, Option<tokio_postgres::Error>> {
    match tokio::time::timeout(limit, f).await {
        Ok(r) => r.map_err(Some),
        Err(_) => Err(None),
    }
}

fn failure_text(e: Option<tokio_postgres::Error>, limit: Duration) -> String {
    match e {
        Some(e) => describe(&e),
        None => format!(
            "no answer within {}",
            crate::config::duration::format(limit)
        ),
    }
}

async fn role_exists(c: &Client, role: &str, limit: Duration) -> Result<bool, TargetError> {
    let rows = bounded(
        limit,
        c.query(
            "SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1",
            &[&role],
        ),
    )
    .await
    .map_err(|e| {
        pg(format!(
            "looking up role \"{role}\": {}",
            failure_text(e, limit)
        ))
    })?;
    Ok(!rows.is_empty())
}

/// A role's attributes (as `SUPERUSER`, ...) and the roles it is a member of.
async fn privileges(c: &Client, role: &str, limit: Duration) -> Result<Vec<String>, TargetError> {
    let sql = "SELECT array_remove(ARRAY[
            CASE WHEN r.rolsuper THEN 'SUPERUSER' END,
            CASE WHEN r.rolcreaterole THEN 'CREATEROLE' END,
            CASE WHEN r.rolcreatedb THEN 'CREATEDB' END,
            CASE WHEN r.rolreplication THEN 'REPLICATION' END,
            CASE WHEN r.rolbypassrls THEN 'BYPASSRLS' END], NULL)
          || ARRAY(SELECT 'member of ' || b.rolname::text
                   FROM pg_catalog.pg_auth_members m
                   JOIN pg_catalog.pg_roles b ON b.oid = m.roleid
                   WHERE m.member = r.oid)
        FROM pg_catalog.pg_roles r WHERE r.rolname = $1";
    let rows = bounded(limit, c.query(sql, &[&role])).await.map_err(|e| {
        pg(format!(
            "reading the privileges of role \"{role}\": {}",
            failure_text(e, limit)
        ))
    })?;
    match rows.first().map(|r| r.try_get::<_, Vec<String>>(0)) {
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) => Err(pg(format!(
            "reading the privileges of role \"{role}\": {e}"
        ))),
        None => Err(pg(format!("role \"{role}\" does not exist"))),
    }
}

/// Refuses to give a password to `clone` when it holds an attribute or a membership that
/// `base` lacks (membership in `base` itself is what it is for).
async fn check_no_more_than(
    c: &Client,
    clone: &str,
    base: &str,
    limit: Duration,
) -> Result<(), TargetError> {
    let theirs = privileges(c, base, limit).await?;
    // Role names compared as stored (unquoted): quote_ident quotes only when needed, so a
    // quoted form on one side would miss a plain name like `app`.
    let own = format!("member of {base}");
    let extra: Vec<String> = privileges(c, clone, limit)
        .await?
        .into_iter()
        .filter(|p| !theirs.contains(p) && *p != own)
        .collect();
    if extra.is_empty() {
        Ok(())
    } else {
        Err(pg(format!(
            "role \"{clone}\" has {} that \"{base}\" lacks; refusing to set its password (fix the role by hand)",
            extra.join(", ")
        )))
    }
}

async fn alter_password(
    c: &Client,
    role: &str,
    verifier: &SecretString,
    limit: Duration,
) -> Result<(), TargetError> {
    let sql = format!(
        "ALTER ROLE {} PASSWORD {}",
        quote_ident(role)?,
        quote_literal(verifier.expose_secret())?
    );
    bounded(limit, c.batch_execute(&sql)).await.map_err(|e| {
        pg(format!(
            "ALTER ROLE \"{role}\" failed: {}",
            failure_text(e, limit)
        ))
    })
}

async fn create_role(
    c: &Client,
    role: &str,
    verifier: &SecretString,
    member_of: &str,
) -> Result<(), tokio_postgres::Error> {
    let (Ok(r), Ok(p), Ok(m)) = (
        quote_ident(role),
        quote_literal(verifier.expose_secret()),
        quote_ident(member_of),
    ) else {
        // Validated when the value was made; unreachable in practice.
        return c.batch_execute("SELECT 'invalid role name'::int").await;
    };
    // Every attribute spelled out: the clone never holds more than a login.
    c.batch_execute(&format!(
        "CREATE ROLE {r} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT PASSWORD {p} IN ROLE {m}"
    ))
    .await
}

// ---------------------------------------------------------------------------- connect

async fn connect(login: &Login, t: &PostgresTarget) -> Result<Client, TargetError> {
    connect_raw(login, t).await.map_err(|f| {
        pg(format!(
            "cannot log in as \"{}\" at {}:{}: {}",
            login.user, login.host, login.port, f.text
        ))
    })
}

/// Logs in (TCP, TLS and authentication all within the target's timeout); the
/// connection runs on its own task until the client is dropped.
async fn connect_raw(login: &Login, t: &PostgresTarget) -> Result<Client, PgFailure> {
    let fail = |text: String| PgFailure { auth: false, text };
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(&login.host)
        .port(login.port)
        .dbname(&login.dbname)
        .user(&login.user)
        .password(login.password.expose_secret().as_bytes())
        .application_name("secret-rotator");
    let verify = match t.sslmode.as_str() {
        "disable" => None,
        "require" => Some(Verify::None),
        "verify-ca" => Some(Verify::Chain),
        "verify-full" => Some(Verify::Full),
        other => return Err(fail(format!("unknown sslmode \"{other}\""))),
    };
    let limit = t.timeout;
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect((login.host.as_str(), login.port))
            .await
            .map_err(|e| fail(format!("cannot connect: {e}")))?;
        let _ = tcp.set_nodelay(true);
        match verify {
            None => {
                // No TLS: only SCRAM (or no password at all) may be answered.
                cfg.ssl_mode(SslMode::Disable)
                    .channel_binding(ChannelBinding::Disable);
                let stream = NoClearAuth::new(tcp);
                let (client, conn) = cfg
                    .connect_raw(stream, tokio_postgres::NoTls)
                    .await
                    .map_err(|e| PgFailure::from(&e))?;
                spawn_connection(conn);
                Ok(client)
            }
            Some(v) => {
                // TLS: SCRAM bound to this TLS channel (a relaying middle-man fails), so
                // no cleartext or MD5 method either.
                cfg.ssl_mode(SslMode::Require)
                    .channel_binding(ChannelBinding::Require);
                let mut tls = tls_config(v, t.ca_file.as_deref()).map_err(fail)?;
                let connector =
                    <MakeRustlsConnect as MakeTlsConnect<tokio::net::TcpStream>>::make_tls_connect(
                        &mut tls,
                        &login.host,
                    )
                    .map_err(|e| fail(format!("TLS setup: {e}")))?;
                let (client, conn) = cfg
                    .connect_raw(tcp, connector)
                    .await
                    .map_err(|e| PgFailure::from(&e))?;
                spawn_connection(conn);
                Ok(client)
            }
        }
    };
    match tokio::time::timeout(limit, attempt).await {
        Ok(r) => r,
        Err(_) => Err(fail(format!(
            "no answer within {}",
            crate::config::duration::format(limit)
        ))),
    }
}

fn spawn_connection<F>(conn: F)
where
    F: Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %describe(&e), "postgres connection ended");
        }
    });
}

/// A plain-text connection that refuses, before the driver can answer it, a server's
/// request for the password in clear text (AuthenticationCleartextPassword) or as an
/// MD5 hash (which logs in as well as the password does).
struct NoClearAuth<S> {
    inner: S,
    scan: AuthScan,
}

impl<S> NoClearAuth<S> {
    fn new(inner: S) -> Self {
        Self {
            inner,
            scan: AuthScan::default(),
        }
    }
}

/// Follows the server's messages until authentication is over.
#[derive(Debug)]
enum AuthScan {
    /// Reading a message header: type byte and length.
    Header { buf: [u8; 5], have: usize },
    /// Reading an `R` message: its 4-byte code first, then skipping the rest.
    Auth {
        left: usize,
        code: [u8; 4],
        have: usize,
    },
    /// Authentication is over: pass everything through.
    Done,
}

impl Default for AuthScan {
    fn default() -> Self {
        AuthScan::Header {
            buf: [0; 5],
            have: 0,
        }
    }
}

const AUTH_OK: u32 = 0;
const AUTH_CLEARTEXT: u32 = 3;
const AUTH_MD5: u32 = 5;

impl AuthScan {
    fn feed(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        while !data.is_empty() {
            match self {
                AuthScan::Done => return Ok(()),
                AuthScan::Header { buf, have } => {
                    let n = (5 - *have).min(data.len());
                    buf[*have..*have + n].copy_from_slice(&data[..n]);
                    *have += n;
                    data = &data[n..];
                    if *have == 5 {
                        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
                        *self = if buf[0] == b'R' && len >= 8 {
                            AuthScan::Auth {
                                left: len - 4,
                                code: [0; 4],
                                have: 0,
                            }
                        } else {
                            // An error or the first post-authentication message.
                            AuthScan::Done
                        };
                    }
                }
                AuthScan::Auth { left, code, have } => {
                    if *have < 4 {
                        let n = (4 - *have).min(data.len());
                        code[*have..*have + n].copy_from_slice(&data[..n]);
                        *have += n;
                        *left -= n;
                        data = &data[n..];
                        if *have == 4 {
                            let c = u32::from_be_bytes(*code);
                            if c == AUTH_CLEARTEXT || c == AUTH_MD5 {
                                return Err(std::io::Error::new(
                                    std::io::ErrorKind::PermissionDenied,
                                    format!(
                                        "the server asked for the password {}; refused (configure scram-sha-256 in pg_hba.conf)",
                                        if c == AUTH_MD5 { "as an MD5 hash" } else { "in clear text" }
                                    ),
                                ));
                            }
                        }
                    } else {
                        let n = (*left).min(data.len());
                        *left -= n;
                        data = &data[n..];
                    }
                    if *have == 4 && *left == 0 {
                        *self = if u32::from_be_bytes(*code) == AUTH_OK {
                            AuthScan::Done
                        } else {
                            AuthScan::default()
                        };
                    }
                }
            }
        }
        Ok(())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for NoClearAuth<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let r = this.scan.feed(&buf.filled()[before..]);
                if r.is_err() {
                    // The driver never sees the request.
                    buf.set_filled(before);
                }
                Poll::Ready(r)
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for NoClearAuth<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[derive(Clone, Copy)]
enum Verify {
    /// TLS for privacy only (require).
    None,
    /// The chain must lead to a trusted root (verify-ca).
    Chain,
    /// And the certificate must name the host (verify-full).
    Full,
}

fn tls_config(
    verify: Verify,
    ca_file: Option<&std::path::Path>,
) -> Result<MakeRustlsConnect, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let config = match verify {
        Verify::None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoCertCheck(provider)))
            .with_no_client_auth(),
        Verify::Chain | Verify::Full => {
            let roots = Arc::new(trusted_roots(ca_file)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| format!("TLS setup: {e}"))?;
            let verifier: Arc<dyn ServerCertVerifier> = match verify {
                Verify::Full => webpki,
                _ => Arc::new(ChainOnly(webpki)),
            };
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth()
        }
    };
    Ok(MakeRustlsConnect::new(config))
}

/// The system's trusted roots plus `ca_file` (a PEM file, e.g. the RDS CA bundle).
fn trusted_roots(ca_file: Option<&std::path::Path>) -> Result<rustls::RootCertStore, String> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(found.certs);
    if let Some(path) = ca_file {
        let shown = path.display().to_string();
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("ca_file {shown}: {e}"))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("ca_file {shown}: {e}"))?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(format!("ca_file {shown}: no certificate found"));
        }
    }
    if roots.is_empty() {
        return Err(
            "no trusted root certificates found on this system (set target.ca_file)".into(),
        );
    }
    Ok(roots)
}

/// Accepts any certificate but still checks the handshake signatures.
#[derive(Debug)]
struct NoCertCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCertCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// verify-ca: the full WebPKI check except the host name.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(quote_ident("app-user").unwrap(), "\"app-user\"");
        assert_eq!(quote_ident("we\"ird").unwrap(), "\"we\"\"ird\"");
        assert!(quote_ident("").is_err());
        assert!(quote_ident(&"a".repeat(64)).is_err());
        assert_eq!(quote_literal("it's").unwrap(), "'it''s'");
        assert_eq!(quote_literal("a\\'b").unwrap(), "E'a\\\\''b'");
        assert!(quote_literal("a\0").is_err());
    }

    #[test]
    fn alternating_roles() {
        assert_eq!(other_role("app", "_clone").unwrap(), "app_clone");
        assert_eq!(other_role("app_clone", "_clone").unwrap(), "app");
        // A role that is only the suffix gets the suffix added.
        assert_eq!(other_role("_clone", "_clone").unwrap(), "_clone_clone");
        assert!(other_role(&"a".repeat(60), "_clone").is_err());
    }

    fn target(mode: PostgresMode) -> PostgresTarget {
        PostgresTarget {
            mode,
            admin_secret_id: None,
            sslmode: "disable".into(),
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

    fn secret(json: &str) -> DbSecret {
        DbSecret::parse(&SecretString::from(json.to_owned()), "test").unwrap()
    }

    #[test]
    fn secret_fields_are_checked_against_the_pinned_server_and_role() {
        let t = target(PostgresMode::AlternatingUsers);
        let ok = secret(
            r#"{"host":"DB.internal","port":"6432","username":"app_clone","password":"p","dbname":"app"}"#,
        );
        let l = Login::of(&ok, &t).unwrap();
        assert_eq!(
            (l.host.as_str(), l.port, l.user.as_str()),
            ("db.internal", 6432, "app_clone")
        );
        // Absent coordinates are the configured ones.
        assert!(Login::of(&secret(r#"{"username":"app","password":"p"}"#), &t).is_ok());
        for bad in [
            r#"{"host":"evil.example","username":"app","password":"p"}"#,
            r#"{"port":5432,"username":"app","password":"p"}"#,
            r#"{"port":70000,"username":"app","password":"p"}"#,
            r#"{"dbname":"postgres","username":"app","password":"p"}"#,
            r#"{"host":7,"username":"app","password":"p"}"#,
            r#"{"username":"admin","password":"p"}"#,
            r#"{"username":"app_clone_clone","password":"p"}"#,
        ] {
            assert!(Login::of(&secret(bad), &t).is_err(), "{bad}");
        }
        // The admin may not be one of the rotated roles.
        assert!(Login::admin(&secret(r#"{"username":"app_clone","password":"p"}"#), &t).is_err());
        assert!(Login::admin(&secret(r#"{"username":"admin","password":"p"}"#), &t).is_ok());
        assert!(DbSecret::parse(&SecretString::from("nope"), "test").is_err());
    }

    fn auth_request(code: u32) -> Vec<u8> {
        let mut m = vec![b'R'];
        m.extend_from_slice(&8u32.to_be_bytes());
        m.extend_from_slice(&code.to_be_bytes());
        m
    }

    #[test]
    fn cleartext_and_md5_requests_are_refused_in_any_split() {
        for code in [AUTH_CLEARTEXT, AUTH_MD5] {
            let msg = auth_request(code);
            for cut in 0..=msg.len() {
                let mut s = AuthScan::default();
                let r = s.feed(&msg[..cut]).and_then(|_| s.feed(&msg[cut..]));
                assert!(r.is_err(), "code {code} cut at {cut}");
            }
        }
        // SASL (10 with a body), continue (11), final (12), ok (0), then anything goes.
        let mut sasl = vec![b'R'];
        let body = b"SCRAM-SHA-256\0\0";
        sasl.extend_from_slice(&(8 + body.len() as u32).to_be_bytes());
        sasl.extend_from_slice(&10u32.to_be_bytes());
        sasl.extend_from_slice(body);
        let mut all = sasl;
        all.extend(auth_request(12));
        all.extend(auth_request(AUTH_OK));
        all.extend(auth_request(AUTH_CLEARTEXT)); // after authentication: data, not a request
        for cut in 0..=all.len() {
            let mut s = AuthScan::default();
            assert!(
                s.feed(&all[..cut])
                    .and_then(|_| s.feed(&all[cut..]))
                    .is_ok(),
                "cut {cut}"
            );
        }
    }
}
