//! What the server-login kinds (`mysql`, `redis`) read and check the same way: the pinned
//! server and TLS keys of their tables, their JSON secrets, the trusted roots. Each kind
//! keeps its own wording (its name in every message); the checks are one copy.

use crate::config::TargetTable;
use crate::rotation::store::{Select, AWSCURRENT};
use crate::rotation::target::{Masker, TargetEnv, TargetError};
use rustls::pki_types::CertificateDer;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use std::time::Duration;
use toml::Spanned;

/// `KIND: message`: a failure of one kind; the text never holds a secret value.
pub(crate) fn kind_error(kind: &'static str, msg: impl Into<String>) -> TargetError {
    TargetError::Kind {
        kind,
        message: msg.into(),
    }
}

/// A failure's text without the `KIND: ` in front (a `check --remote` line names the kind
/// already).
pub(crate) fn message(e: TargetError) -> String {
    match e {
        TargetError::Kind { message, .. } => message,
        other => other.to_string(),
    }
}

/// Masks whatever a server or a driver echoed in a failure.
pub(crate) fn masked(masker: &Masker, e: TargetError) -> TargetError {
    match e {
        TargetError::Kind { kind, message } => TargetError::Kind {
            kind,
            message: masker.mask(&message),
        },
        other => other,
    }
}

/// How a TLS server certificate is checked (`sslmode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SslMode {
    /// No TLS at all.
    Disable,
    /// TLS for privacy only: any certificate.
    Require,
    /// The chain must lead to a trusted root, whatever name it carries.
    VerifyCa,
    /// And the certificate must name the host (the default).
    VerifyFull,
}

impl SslMode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// The `check` warning for a mode weaker than verify-full (`None` for verify-full).
    pub(crate) fn warning(self, secret: &str, what: &str) -> Option<String> {
        let why = match self {
            SslMode::VerifyFull => return None,
            SslMode::Disable => format!("sends everything, {what} included, in plain text"),
            SslMode::Require => {
                "encrypts but accepts any server certificate (a middle-man can answer)".into()
            }
            SslMode::VerifyCa => {
                "checks the certificate chain but not that it names the host".into()
            }
        };
        Some(format!(
            "{secret}: target.sslmode = \"{}\" {why}; verify-full is the default",
            self.as_str()
        ))
    }
}

/// `sslmode`: verify-full unless a weaker mode is written; no "prefer" (it falls back to
/// plain text, so whoever sits on the path decides whether TLS is used).
pub(crate) fn parse_sslmode(t: &mut TargetTable<'_>, raw: Option<&Spanned<String>>) -> SslMode {
    let Some(s) = raw else {
        return SslMode::VerifyFull;
    };
    match s.get_ref().as_str() {
        "disable" => SslMode::Disable,
        "require" => SslMode::Require,
        "verify-ca" => SslMode::VerifyCa,
        "verify-full" => SslMode::VerifyFull,
        "prefer" => {
            t.error(s.span(), "sslmode",
                "\"prefer\" is not supported: it falls back to plain text whenever the path refuses TLS (allowed: verify-full, verify-ca, require, disable)");
            SslMode::VerifyFull
        }
        other => {
            t.error(
                s.span(),
                "sslmode",
                format!(
                    "unknown sslmode \"{other}\" (allowed: verify-full, verify-ca, require, disable)"
                ),
            );
            SslMode::VerifyFull
        }
    }
}

/// `host`: required, the only server the kind may connect to.
pub(crate) fn parse_host(
    t: &mut TargetTable<'_>,
    raw: Option<&Spanned<String>>,
    kind: &str,
) -> String {
    match raw {
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
            let span = t.span();
            t.error(span, "host", format!(
                "target kind \"{kind}\" needs `host`: the only server it may connect to (a secret naming another is refused)"
            ));
            String::new()
        }
    }
}

/// `port`, `default` when absent.
pub(crate) fn parse_port(t: &mut TargetTable<'_>, raw: Option<&Spanned<i64>>, default: u16) -> u16 {
    match raw {
        None => default,
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
    }
}

/// `ca_file`: an absolute path to a PEM file.
pub(crate) fn parse_ca_file(
    t: &mut TargetTable<'_>,
    raw: Option<&Spanned<String>>,
) -> Option<std::path::PathBuf> {
    match raw {
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
    }
}

/// `timeout`: each connection and statement, 1s to 10m, 30s by default. `None` after a
/// reported problem.
pub(crate) fn parse_timeout(
    t: &mut TargetTable<'_>,
    raw: Option<&Spanned<String>>,
) -> Option<Duration> {
    match raw {
        None => Some(Duration::from_secs(30)),
        Some(x) => t.duration(
            "timeout",
            x,
            Duration::from_secs(1),
            Duration::from_secs(600),
        ),
    }
}

/// `clone_suffix`: letters, digits or `_` (it becomes part of a user name).
pub(crate) fn parse_clone_suffix(t: &mut TargetTable<'_>, raw: Option<&Spanned<String>>) -> String {
    match raw {
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
    }
}

/// A JSON secret (the application's or the admin's), kept whole (unknown keys stay in
/// place), with typed access to the fields a kind uses.
pub(crate) struct JsonSecret {
    pub(crate) doc: Map<String, Value>,
    /// Which secret, in messages: "AWSCURRENT", "pending", "admin secret's".
    pub(crate) which: &'static str,
    pub(crate) kind: &'static str,
}

impl JsonSecret {
    pub(crate) fn parse(
        v: &SecretString,
        which: &'static str,
        kind: &'static str,
        shape: &str,
    ) -> Result<Self, TargetError> {
        match serde_json::from_str::<Value>(v.expose_secret()) {
            Ok(Value::Object(doc)) => Ok(Self { doc, which, kind }),
            _ => Err(kind_error(
                kind,
                format!("the {which} value is not a JSON object with {shape}"),
            )),
        }
    }

    pub(crate) fn username(&self) -> Result<&str, TargetError> {
        match self.doc.get("username").and_then(Value::as_str) {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(kind_error(
                self.kind,
                format!("the {} value has no \"username\" string", self.which),
            )),
        }
    }

    pub(crate) fn password(&self) -> Result<SecretString, TargetError> {
        match self.doc.get("password").and_then(Value::as_str) {
            Some(p) => Ok(SecretString::from(p.to_owned())),
            None => Err(kind_error(
                self.kind,
                format!("the {} value has no \"password\" string", self.which),
            )),
        }
    }

    pub(crate) fn port(&self) -> Result<Option<u16>, TargetError> {
        let bad = || {
            kind_error(
                self.kind,
                format!("the {} value has an invalid \"port\"", self.which),
            )
        };
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

    /// Refuses a secret that names a server other than the pinned one: `host` and `port`
    /// may be absent (RDS master secrets hold only username and password), never different.
    pub(crate) fn check_server(&self, host: &str, port: u16) -> Result<(), TargetError> {
        let refuse = |what: &str, found: &str, pinned: &str| {
            kind_error(self.kind, format!(
                "the {} value names {what} {found} but this target may only connect to {what} {pinned} (target.{what}); refused before connecting",
                self.which
            ))
        };
        match self.doc.get("host") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.eq_ignore_ascii_case(host) => {}
            Some(Value::String(s)) => {
                return Err(refuse("host", &format!("\"{s}\""), &format!("\"{host}\"")))
            }
            Some(_) => return Err(refuse("host", "a non-string", &format!("\"{host}\""))),
        }
        match self.port()? {
            Some(p) if p != port => Err(refuse("port", &p.to_string(), &port.to_string())),
            _ => Ok(()),
        }
    }

    /// The secret's user, if it is one of `allowed` (the users this target may touch).
    pub(crate) fn user_in(&self, allowed: &[String], key: &str) -> Result<&str, TargetError> {
        let user = self.username()?;
        if allowed.iter().any(|r| r == user) {
            return Ok(user);
        }
        Err(kind_error(
            self.kind,
            format!(
                "the {} value names user \"{user}\" but this target may only touch {} (target.{key}); refused before connecting",
                self.which,
                allowed
                    .iter()
                    .map(|r| format!("\"{r}\""))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        ))
    }

    pub(crate) fn to_secret(&self) -> Result<SecretString, TargetError> {
        serde_json::to_string(&self.doc)
            .map(SecretString::from)
            .map_err(|_| kind_error(self.kind, "cannot serialize the new value"))
    }
}

/// Reads a secret (an admin's) at AWSCURRENT, in the application secret's account.
pub(crate) async fn read_secret_current(
    env: &TargetEnv<'_>,
    id: &crate::ids::SecretId,
    kind: &'static str,
) -> Result<SecretString, TargetError> {
    let r = crate::ids::SecretRef {
        id: id.clone(),
        account: env.cfg.secret.account.clone(),
        store: Default::default(),
    };
    env.store
        .get_value(&r, Select::Stage(AWSCURRENT))
        .await
        .map(|(_, v)| v)
        .map_err(|e| kind_error(kind, format!("admin secret {id}: {e}")))
}

/// The system's trusted roots plus `ca_file` (a PEM file, e.g. the RDS CA bundle), as
/// DER: only certificates rustls can use as roots are kept.
pub(crate) fn trusted_root_ders(
    ca_file: Option<&std::path::Path>,
) -> Result<Vec<CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    let mut out = Vec::new();
    let usable = |c: &CertificateDer<'static>| {
        let mut s = rustls::RootCertStore::empty();
        s.add(c.clone()).is_ok()
    };
    out.extend(
        rustls_native_certs::load_native_certs()
            .certs
            .into_iter()
            .filter(usable),
    );
    if let Some(path) = ca_file {
        let shown = path.display().to_string();
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("ca_file {shown}: {e}"))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("ca_file {shown}: {e}"))?;
        let before = out.len();
        out.extend(certs.into_iter().filter(usable));
        if out.len() == before {
            return Err(format!("ca_file {shown}: no certificate found"));
        }
    }
    if out.is_empty() {
        return Err(
            "no trusted root certificates found on this system (set target.ca_file)".into(),
        );
    }
    Ok(out)
}

/// Runs `f` for at most `limit`; on expiry, `what` took too long.
pub(crate) async fn bounded<T, E>(
    limit: Duration,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, Option<E>> {
    match tokio::time::timeout(limit, f).await {
        Ok(r) => r.map_err(Some),
        Err(_) => Err(None),
    }
}

/// "no answer within 30s".
pub(crate) fn no_answer(limit: Duration) -> String {
    format!(
        "no answer within {}",
        crate::config::duration::format(limit)
    )
}

/// A rustls client configuration for `mode` (not `Disable`), on the aws-lc-rs provider
/// the AWS SDK already uses: verify-full is the WebPKI check with the system's roots plus
/// `ca_file`; verify-ca the same without the name check; require checks only the
/// handshake signatures.
pub(crate) fn tls_client_config(
    mode: SslMode,
    ca_file: Option<&std::path::Path>,
) -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
    use rustls::client::danger::ServerCertVerifier;
    use rustls::client::WebPkiServerVerifier;
    use std::sync::Arc;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let verifier: Arc<dyn ServerCertVerifier> = match mode {
        SslMode::Disable => return Err("TLS is disabled (sslmode = \"disable\")".into()),
        SslMode::Require => Arc::new(tls::NoCertCheck(provider)),
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add_parsable_certificates(trusted_root_ders(ca_file)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("TLS setup: {e}"))?;
            if mode == SslMode::VerifyFull {
                webpki
            } else {
                Arc::new(tls::ChainOnly(webpki))
            }
        }
    };
    Ok(Arc::new(
        builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth(),
    ))
}

mod tls {
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::client::WebPkiServerVerifier;
    use rustls::crypto::CryptoProvider;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
    use std::sync::Arc;

    /// require: any certificate, but the handshake signatures are still checked.
    #[derive(Debug)]
    pub(super) struct NoCertCheck(pub(super) Arc<CryptoProvider>);

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
    pub(super) struct ChainOnly(pub(super) Arc<WebPkiServerVerifier>);

    impl ServerCertVerifier for ChainOnly {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            server_name: &ServerName<'_>,
            ocsp_response: &[u8],
            now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            match self.0.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ) {
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
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
}
