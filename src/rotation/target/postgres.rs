//! The `postgres` target: a PostgreSQL role's password, in a secret shaped like the ones
//! AWS uses for databases: `{"engine", "host", "port", "username", "password", "dbname"}`
//! (any other key is kept as it was, in place).
//!
//! Passwords never cross the wire in clear: "set" computes a SCRAM-SHA-256 verifier here
//! and sends `ALTER ROLE "name" PASSWORD 'SCRAM-SHA-256$...'`, so neither the network nor
//! the server's statement log sees the password (the server stores the verifier as is).
//! Identifiers are double-quoted (`"` doubled), literals single-quoted (`'` doubled, and
//! `E'...'` with doubled backslashes when a backslash occurs, like libpq).
//!
//! **single-user**: the pending value is AWSCURRENT's document with a new password.
//! set logs in as the admin (`admin_secret_id`, read at AWSCURRENT), or else as the role
//! itself with AWSCURRENT's password, and alters the role's password. If the role's own
//! login is refused, set may have run already (a crash after set): the pending password
//! is tried, and if it logs in, set is done. The old password stops working at set, so
//! consumers that open new connections with it fail until they are redeployed; revoke has
//! nothing left to do. Without an admin secret, a retry after a failure resumes the same
//! pending value (see [`super::fresh_value_on_retry`]).
//!
//! **alternating-users**: two roles, `app` and `app<clone_suffix>`. The pending value
//! names the role that AWSCURRENT does not, with a new password; the admin sets it. The
//! first time, the admin creates the clone as `CREATE ROLE "app_clone" LOGIN PASSWORD
//! '...' IN ROLE "app"`: a member of the original that inherits its privileges (objects
//! the clone creates are owned by the clone; grant on them or `SET ROLE "app"` when that
//! matters). This is what AWS's alternating-users rotation Lambda does (`GRANT app TO
//! app_clone`). Consumers still running with the old role keep working throughout, and
//! nothing is revoked afterwards, as in AWS's Lambda: the old role keeps its password
//! until the next rotation gives it a new one.
//!
//! **test**: a fresh login with the pending value and `SELECT 1`.
//!
//! **sslmode** as in libpq: `disable`; `prefer` (TLS without certificate checks if the
//! server offers it, else plain; a failed handshake is retried in plain); `require` (TLS,
//! no certificate checks); `verify-ca` (the chain must lead to a trusted root);
//! `verify-full` (and the certificate must name the host). Trusted roots: the file named
//! by `PGSSLROOTCERT` if set (e.g. the RDS CA bundle), else the system's store.

use super::{Masker, TargetEnv, TargetError};
use crate::config::{PostgresMode, PostgresTarget};
use crate::ids::{SecretId, SecretRef};
use crate::rotation::generate::generate;
use crate::rotation::store::{SecretStore, Select, AWSCURRENT};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;
use tokio_postgres_rustls::MakeRustlsConnect;

const DEFAULT_PORT: u16 = 5432;
const DEFAULT_DBNAME: &str = "postgres";
/// PostgreSQL truncates longer identifiers (NAMEDATALEN - 1).
const MAX_IDENTIFIER: usize = 63;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound for one connection plus its statements: a hung server must not stall us.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(60);

fn pg(msg: impl Into<String>) -> TargetError {
    TargetError::Postgres(msg.into())
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

    fn to_secret(&self) -> Result<SecretString, TargetError> {
        serde_json::to_string(&self.doc)
            .map(SecretString::from)
            .map_err(|_| pg("cannot serialize the new value"))
    }
}

/// Where and as whom to log in.
struct Login {
    host: String,
    port: u16,
    dbname: String,
    user: String,
    password: SecretString,
}

impl Login {
    /// The login a secret describes.
    fn of(s: &DbSecret) -> Result<Self, TargetError> {
        Ok(Self {
            host: s.required("host")?.to_owned(),
            port: s.port()?.unwrap_or(DEFAULT_PORT),
            dbname: s.str_field("dbname").unwrap_or(DEFAULT_DBNAME).to_owned(),
            user: s.username()?.to_owned(),
            password: s.password()?,
        })
    }

    /// The admin's credentials; its host, port and dbname where the admin secret has
    /// them (RDS-managed master secrets hold only username and password), else the
    /// database's.
    fn admin(admin: &DbSecret, db: &DbSecret) -> Result<Self, TargetError> {
        let base = Login::of(db)?;
        Ok(Self {
            host: admin
                .str_field("host")
                .map(str::to_owned)
                .unwrap_or(base.host),
            port: admin.port()?.unwrap_or(base.port),
            dbname: admin
                .str_field("dbname")
                .map(str::to_owned)
                .unwrap_or(base.dbname),
            user: admin.username()?.to_owned(),
            password: admin.password()?,
        })
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

pub async fn create_value<S: SecretStore>(
    env: &TargetEnv<'_, S>,
    t: &PostgresTarget,
) -> Result<SecretString, TargetError> {
    let (_, current) = env
        .store
        .get_value(&env.cfg.secret, Select::Stage(AWSCURRENT))
        .await?;
    let mut doc = DbSecret::parse(&current, "AWSCURRENT")?;
    // Fail now, before anything is written, if the document cannot be used later.
    Login::of(&doc)?;
    let user = doc.username()?.to_owned();
    let new_user = match t.mode {
        PostgresMode::SingleUser => {
            quote_ident(&user)?;
            user
        }
        PostgresMode::AlternatingUsers => other_role(&user, &t.clone_suffix)?,
    };
    let password = generate(&env.cfg.generate).map_err(|e| pg(e.to_string()))?;
    doc.doc.insert("username".into(), Value::String(new_user));
    doc.doc.insert(
        "password".into(),
        Value::String(password.expose_secret().to_owned()),
    );
    doc.which = "pending";
    doc.to_secret()
}

async fn read_admin<S: SecretStore>(
    env: &TargetEnv<'_, S>,
    id: &SecretId,
) -> Result<DbSecret, TargetError> {
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

pub async fn set<S: SecretStore>(
    env: &TargetEnv<'_, S>,
    t: &PostgresTarget,
    value: &SecretString,
) -> Result<(), TargetError> {
    let pending = DbSecret::parse(value, "pending")?;
    let login = Login::of(&pending)?;
    let role = login.user.clone();
    let verifier = SecretString::from(postgres_protocol::password::scram_sha_256(
        login.password.expose_secret().as_bytes(),
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
    let mask = |e: TargetError| match e {
        TargetError::Postgres(m) => TargetError::Postgres(masker.mask(&m)),
        other => other,
    };
    let result = async {
        match (t.mode, admin) {
        (PostgresMode::SingleUser, Some(admin)) => {
            let c = connect(&Login::admin(&admin, &pending)?, &t.sslmode).await?;
            alter_password(&c, &role, &verifier).await
        }
        (PostgresMode::SingleUser, None) => {
            let cur_user = current.username()?;
            if cur_user != role {
                return Err(pg(format!(
                    "single-user mode: AWSCURRENT names role \"{cur_user}\" but the pending value \"{role}\""
                )));
            }
            let as_current = login.with_password(current.password()?);
            match connect_raw(&as_current, &t.sslmode).await {
                Ok(c) => alter_password(&c, &role, &verifier).await,
                Err(first) if first.auth => match connect_raw(&login, &t.sslmode).await {
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
            let member_of = current.username()?.to_owned();
            let c = connect(&Login::admin(&admin, &pending)?, &t.sslmode).await?;
            if role_exists(&c, &role).await? {
                alter_password(&c, &role, &verifier).await
            } else {
                tracing::info!(secret = %env.cfg.name, role = %role, member_of = %member_of, "creating the alternate role");
                match create_role(&c, &role, &verifier, &member_of).await {
                    Err(e) if e.code() == Some(&SqlState::DUPLICATE_OBJECT) => {
                        // Created meanwhile by another rotator.
                        alter_password(&c, &role, &verifier).await
                    }
                    Err(e) => Err(pg(format!(
                        "CREATE ROLE \"{role}\" IN ROLE \"{member_of}\" failed: {}",
                        describe(&e)
                    ))),
                    Ok(()) => Ok(()),
                }
            }
        }
        }
    }
    .await;
    result.map_err(mask)
}

pub async fn test(t: &PostgresTarget, value: &SecretString) -> Result<(), TargetError> {
    let pending = DbSecret::parse(value, "pending")?;
    let login = Login::of(&pending)?;
    let masker = Masker::of(value);
    let run = async {
        let c = connect(&login, &t.sslmode).await?;
        c.simple_query("SELECT 1").await.map_err(|e| {
            pg(format!(
                "SELECT 1 as \"{}\" failed: {}",
                login.user,
                describe(&e)
            ))
        })?;
        Ok(())
    };
    run.await.map_err(|e| match e {
        TargetError::Postgres(m) => TargetError::Postgres(masker.mask(&m)),
        other => other,
    })
}

// ---------------------------------------------------------------------------- SQL

async fn role_exists(c: &Client, role: &str) -> Result<bool, TargetError> {
    let rows = c
        .query(
            "SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1",
            &[&role],
        )
        .await
        .map_err(|e| pg(format!("looking up role \"{role}\": {}", describe(&e))))?;
    Ok(!rows.is_empty())
}

async fn alter_password(
    c: &Client,
    role: &str,
    verifier: &SecretString,
) -> Result<(), TargetError> {
    let sql = format!(
        "ALTER ROLE {} PASSWORD {}",
        quote_ident(role)?,
        quote_literal(verifier.expose_secret())?
    );
    with_timeout(c.batch_execute(&sql))
        .await
        .map_err(|e| pg(format!("ALTER ROLE \"{role}\" failed: {e}")))
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
    c.batch_execute(&format!(
        "CREATE ROLE {r} WITH LOGIN PASSWORD {p} IN ROLE {m}"
    ))
    .await
}

async fn with_timeout<T>(
    f: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(OPERATION_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(describe(&e)),
        Err(_) => Err(format!("no answer within {}s", OPERATION_TIMEOUT.as_secs())),
    }
}

// ---------------------------------------------------------------------------- connect

async fn connect(login: &Login, sslmode: &str) -> Result<Client, TargetError> {
    connect_raw(login, sslmode).await.map_err(|f| {
        pg(format!(
            "cannot log in as \"{}\" at {}:{}: {}",
            login.user, login.host, login.port, f.text
        ))
    })
}

/// Logs in; the connection runs on its own task until the client is dropped.
async fn connect_raw(login: &Login, sslmode: &str) -> Result<Client, PgFailure> {
    let fail = |text: String| PgFailure { auth: false, text };
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(&login.host)
        .port(login.port)
        .dbname(&login.dbname)
        .user(&login.user)
        .password(login.password.expose_secret().as_bytes())
        .application_name("secret-rotator")
        .connect_timeout(CONNECT_TIMEOUT);
    let (mode, tls) = match sslmode {
        "disable" => (SslMode::Disable, tls_config(Verify::None)),
        "prefer" => (SslMode::Prefer, tls_config(Verify::None)),
        "require" => (SslMode::Require, tls_config(Verify::None)),
        "verify-ca" => (SslMode::Require, tls_config(Verify::Chain)),
        "verify-full" => (SslMode::Require, tls_config(Verify::Full)),
        other => return Err(fail(format!("unknown sslmode \"{other}\""))),
    };
    let tls = tls.map_err(fail)?;
    cfg.ssl_mode(mode);
    match try_connect(&cfg, tls.clone()).await {
        // libpq's prefer: a failed TLS handshake is retried without TLS.
        Err(e) if mode == SslMode::Prefer && e.text.starts_with("error performing TLS") => {
            tracing::info!(host = %login.host, error = %e.text, "sslmode=prefer: TLS failed; retrying without TLS");
            cfg.ssl_mode(SslMode::Disable);
            try_connect(&cfg, tls).await
        }
        r => r,
    }
}

async fn try_connect(
    cfg: &tokio_postgres::Config,
    tls: MakeRustlsConnect,
) -> Result<Client, PgFailure> {
    match tokio::time::timeout(OPERATION_TIMEOUT, cfg.connect(tls)).await {
        Ok(Ok((client, conn))) => {
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %describe(&e), "postgres connection ended");
                }
            });
            Ok(client)
        }
        Ok(Err(e)) => Err(PgFailure::from(&e)),
        Err(_) => Err(PgFailure {
            auth: false,
            text: format!("no answer within {}s", OPERATION_TIMEOUT.as_secs()),
        }),
    }
}

#[derive(Clone, Copy)]
enum Verify {
    /// TLS for privacy only (libpq's prefer and require).
    None,
    /// The chain must lead to a trusted root (verify-ca).
    Chain,
    /// And the certificate must name the host (verify-full).
    Full,
}

fn tls_config(verify: Verify) -> Result<MakeRustlsConnect, String> {
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
            let roots = Arc::new(trusted_roots()?);
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

/// `PGSSLROOTCERT` (a PEM file) if set, else the system's trusted roots.
fn trusted_roots() -> Result<rustls::RootCertStore, String> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match std::env::var_os("PGSSLROOTCERT").filter(|p| !p.is_empty()) {
        Some(path) => {
            let shown = std::path::Path::new(&path).display().to_string();
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&path)
                .map_err(|e| format!("PGSSLROOTCERT {shown}: {e}"))?
                .collect::<Result<_, _>>()
                .map_err(|e| format!("PGSSLROOTCERT {shown}: {e}"))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!("PGSSLROOTCERT {shown}: no certificate found"));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(
                    "no trusted root certificates found on this system (set PGSSLROOTCERT)".into(),
                );
            }
        }
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

    #[test]
    fn secret_fields() {
        let s = DbSecret::parse(
            &SecretString::from(r#"{"host":"h","port":"6432","username":"u","password":"p"}"#),
            "test",
        )
        .unwrap();
        let l = Login::of(&s).unwrap();
        assert_eq!((l.port, l.dbname.as_str()), (6432, "postgres"));
        let s = DbSecret::parse(
            &SecretString::from(r#"{"host":"h","port":70000,"username":"u","password":"p"}"#),
            "test",
        )
        .unwrap();
        assert!(Login::of(&s).is_err());
        assert!(DbSecret::parse(&SecretString::from("nope"), "test").is_err());
    }
}
