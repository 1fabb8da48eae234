//! The systems that must learn a new value before it becomes current (step 3 "set",
//! step 4 "test") and may have to forget the old one (step 8 "revoke").
//!
//! | kind             | value made by                    | set                    | test                     | revoke                          |
//! |------------------|----------------------------------|------------------------|--------------------------|---------------------------------|
//! | `none`           | the engine (generator, json_key) | -                      | -                        | -                               |
//! | `command`        | the engine                       | operator program       | operator program         | operator program (old value)    |
//! | `postgres`       | this module (JSON, new password) | `ALTER`/`CREATE ROLE`  | fresh login + `SELECT 1` | - (see [`postgres`])            |
//! | `iam-access-key` | this module (`CreateAccessKey`)  | -                      | STS `GetCallerIdentity`  | deactivate the old key          |
//!
//! Every step must be safe to run again after a crash: the engine resumes an interrupted
//! rotation at "set" with the stored pending value, and runs "revoke" again when the
//! deployed-version tag was not written. Revoke runs only after every consumer service
//! was confirmed stable on the new value (never after a failed or rolled-back redeploy).

pub mod command;
pub mod iam;
pub mod postgres;

pub use iam::{AccessKeyInfo, IamApi, NewAccessKey};

use super::store::SecretStore;
use crate::clock::Clock;
use crate::config::{PostgresMode, SecretConfig, Target};
use crate::error::AwsError;
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("{step} command {program} failed: {detail}")]
    Command {
        step: &'static str,
        program: String,
        detail: String,
    },
    /// A PostgreSQL failure; the text never holds a password (it is masked).
    #[error("postgres: {0}")]
    Postgres(String),
    /// An IAM access key problem that is not a plain AWS error.
    #[error("iam-access-key: {0}")]
    Iam(String),
    /// An AWS call failed (code and request id kept).
    #[error("{0}")]
    Aws(#[from] AwsError),
    #[error("{0}")]
    Other(String),
}

/// What a target step may use besides the value: the secret's configuration, the store
/// (to read the current value or an admin secret, to tag), IAM, and the clock.
pub struct TargetEnv<'a, S> {
    pub cfg: &'a SecretConfig,
    pub store: &'a S,
    pub iam: &'a dyn IamApi,
    pub clock: &'a dyn Clock,
}

/// Whether the target makes the new value itself instead of the engine's generator
/// (and `json_key`): PostgreSQL and IAM write their own JSON shapes.
pub fn makes_value(target: &Target) -> bool {
    matches!(target, Target::Postgres(_) | Target::IamAccessKey(_))
}

/// Whether a retry after a failure should drop the pending value and make a new one.
///
/// Not for PostgreSQL single-user mode without an admin secret: once "set" ran, the role's
/// password is the pending one, and only that password can log in to change it again.
/// The value is a SCRAM verifier computed here, so the server never judges the password
/// itself and cannot refuse it: resuming the same value loses nothing.
pub fn fresh_value_on_retry(target: &Target) -> bool {
    !matches!(
        target,
        Target::Postgres(crate::config::PostgresTarget {
            mode: PostgresMode::SingleUser,
            admin_secret_id: None,
            ..
        })
    )
}

/// Makes the new value for targets that own it (see [`makes_value`]).
pub async fn create_value<S: SecretStore>(
    env: &TargetEnv<'_, S>,
) -> Result<SecretString, TargetError> {
    match &env.cfg.target {
        Target::Postgres(t) => postgres::create_value(env, t).await,
        Target::IamAccessKey(t) => iam::create_value(env, t).await,
        other => Err(TargetError::Other(format!(
            "target kind \"{}\" does not make values",
            other.kind()
        ))),
    }
}

/// Step 3: tells the target about the pending value.
pub async fn set<S: SecretStore>(
    env: &TargetEnv<'_, S>,
    value: &SecretString,
) -> Result<(), TargetError> {
    if has_set(&env.cfg.target) {
        // Under a lease (several replicas): only the holder may change the target.
        super::lease::fence::check_target("set").await?;
    }
    match &env.cfg.target {
        Target::None => Ok(()),
        Target::Command(c) => command::run_step(c, "set", value, env.cfg).await,
        Target::Postgres(t) => postgres::set(env, t, value).await,
        // CreateAccessKey (at create) already made the key known to IAM.
        Target::IamAccessKey(_) => Ok(()),
    }
}

/// Step 4: checks that the pending value works.
pub async fn test<S: SecretStore>(
    env: &TargetEnv<'_, S>,
    value: &SecretString,
) -> Result<(), TargetError> {
    match &env.cfg.target {
        Target::None => Ok(()),
        Target::Command(c) => command::run_step(c, "test", value, env.cfg).await,
        Target::Postgres(t) => postgres::test(t, value).await,
        Target::IamAccessKey(t) => iam::test(env, t, value).await,
    }
}

/// Step 8: invalidates the previous value. `current` is the value now current,
/// `previous` the one it replaced (AWSPREVIOUS), when it could be read.
pub async fn revoke<S: SecretStore>(
    env: &TargetEnv<'_, S>,
    current: &SecretString,
    previous: Option<&SecretString>,
) -> Result<(), TargetError> {
    if has_revoke(&env.cfg.target) {
        super::lease::fence::check_target("revoke").await?;
    }
    match &env.cfg.target {
        Target::Command(c) => match previous {
            Some(prev) => command::run_step(c, "revoke", prev, env.cfg).await,
            None => Ok(()),
        },
        Target::IamAccessKey(t) => iam::revoke(env, t, current, previous).await,
        Target::None | Target::Postgres(_) => Ok(()),
    }
}

/// Whether "set" changes anything outside the store (IAM's key is made at create).
fn has_set(target: &Target) -> bool {
    match target {
        Target::Command(c) => c.set.is_some(),
        Target::Postgres(_) => true,
        Target::None | Target::IamAccessKey(_) => false,
    }
}

/// Whether the target has a revoke step at all.
pub fn has_revoke(target: &Target) -> bool {
    match target {
        Target::Command(c) => c.revoke.is_some(),
        Target::IamAccessKey(_) => true,
        Target::None | Target::Postgres(_) => false,
    }
}

/// Weaker-than-default settings worth a warning at `check` (allowed, because written).
pub fn config_warnings(cfg: &SecretConfig) -> Vec<String> {
    match &cfg.target {
        Target::Postgres(t) if t.sslmode != "verify-full" => vec![format!(
            "{}: target.sslmode = \"{}\" {}; verify-full is the default",
            cfg.name,
            t.sslmode,
            match t.sslmode.as_str() {
                "disable" => "sends everything, new password verifiers included, in plain text",
                "require" =>
                    "encrypts but accepts any server certificate (a middle-man can answer)",
                _ => "checks the certificate chain but not that it names the host",
            }
        )],
        _ => Vec::new(),
    }
}

/// For a dry run: how a target that makes its own value makes it.
pub fn describe_create(cfg: &SecretConfig) -> Option<String> {
    match &cfg.target {
        Target::Postgres(t) => Some(format!(
            "make the new value: AWSCURRENT's JSON with a new {}-character password{}, written as AWSPENDING",
            cfg.generate.length,
            match t.mode {
                PostgresMode::SingleUser => String::new(),
                PostgresMode::AlternatingUsers => format!(
                    " for the other role of the pair (username with or without \"{}\")",
                    t.clone_suffix
                ),
            }
        )),
        Target::IamAccessKey(t) => Some(format!(
            "create a new access key for IAM user {} (first deleting keys past delete_after, a key left by an interrupted attempt, or an inactive key if IAM's two-key limit requires it), written as AWSPENDING",
            t.user
        )),
        _ => None,
    }
}

/// For a dry run: what revoke will do.
pub fn describe_revoke(target: &Target) -> String {
    match target {
        Target::IamAccessKey(t) if t.delete_after.is_zero() => {
            "revoke: deactivate and delete the previous access key".into()
        }
        Target::IamAccessKey(t) => format!(
            "revoke: deactivate the previous access key (deleted at the first rotation after {})",
            crate::config::duration::format(t.delete_after)
        ),
        _ => "revoke the previous value".into(),
    }
}

/// JSON keys whose values are not secret (connection coordinates, key ids): everything
/// else in a JSON secret is masked.
const NOT_SECRET_KEYS: &[&str] = &[
    "engine",
    "host",
    "port",
    "username",
    "dbname",
    "dbClusterIdentifier",
    "dbInstanceIdentifier",
    "AccessKeyId",
];
/// Shorter strings are not masked (masking "a" everywhere would hide the message).
const MIN_MASKED: usize = 4;

/// Replaces secret text in output and error messages with `***`: a whole value, and, when
/// the value is a JSON object, each of its secret-looking fields on its own (a script that
/// prints only the password of a JSON secret must not leak it either).
#[derive(Default)]
pub struct Masker {
    needles: Vec<Zeroizing<String>>,
}

impl Masker {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn of(value: &SecretString) -> Self {
        let mut m = Self::new();
        m.add(value);
        m
    }

    /// Masks the value and, for a JSON document, every string field not named in
    /// [`NOT_SECRET_KEYS`].
    pub fn add(&mut self, value: &SecretString) {
        let v = value.expose_secret();
        self.add_str(v);
        if let Ok(doc) = serde_json::from_str::<serde_json::Value>(v) {
            self.add_json(&doc, None);
        }
    }

    fn add_json(&mut self, v: &serde_json::Value, key: Option<&str>) {
        match v {
            serde_json::Value::String(s) if !key.is_some_and(|k| NOT_SECRET_KEYS.contains(&k)) => {
                self.add_str(s);
                // The same text as it appears inside JSON output.
                if let Ok(quoted) = serde_json::to_string(s) {
                    let inner = quoted.strip_prefix('"').and_then(|q| q.strip_suffix('"'));
                    self.add_str(inner.unwrap_or(&quoted));
                }
            }
            serde_json::Value::Object(o) => {
                for (k, v) in o {
                    self.add_json(v, Some(k));
                }
            }
            serde_json::Value::Array(a) => {
                for v in a {
                    self.add_json(v, key);
                }
            }
            _ => {}
        }
    }

    /// Masks `s` and its common encodings: base64 (standard and URL-safe, with and
    /// without padding), hex (both cases), URL-encoding and JSON string escaping.
    pub fn add_str(&mut self, s: &str) {
        if s.len() < MIN_MASKED {
            return;
        }
        let b = s.as_bytes();
        let mut forms = vec![s.to_owned()];
        for (alphabet, pad) in [(B64_STD, true), (B64_URL, false)] {
            let e = base64(b, alphabet);
            forms.push(e.trim_end_matches('=').to_owned());
            if pad {
                forms.push(e);
            }
        }
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        forms.push(hex.to_ascii_uppercase());
        forms.push(hex);
        forms.push(url_encode(s, false));
        forms.push(url_encode(s, true));
        if let Ok(quoted) = serde_json::to_string(s) {
            if let Some(inner) = quoted.strip_prefix('"').and_then(|q| q.strip_suffix('"')) {
                forms.push(inner.to_owned());
            }
        }
        for f in forms {
            self.add_exact(f);
        }
    }

    fn add_exact(&mut self, s: String) {
        if s.len() >= MIN_MASKED && !self.needles.iter().any(|n| n.as_str() == s) {
            self.needles.push(Zeroizing::new(s));
            // Longest first, so a value is masked whole before its parts.
            self.needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        }
    }

    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for n in &self.needles {
            if out.contains(n.as_str()) {
                out = out.replace(n.as_str(), "***");
            }
        }
        out
    }

    /// For text cut at a length limit: also masks a secret's beginning at the very end.
    pub fn mask_cut(&self, text: &str) -> String {
        let out = self.mask(text);
        for n in &self.needles {
            // The longest prefix of the needle that ends the text (at least a few bytes,
            // so ordinary endings are not eaten).
            for len in (MIN_MASKED..n.len()).rev() {
                if let Some(prefix) = n.get(..len) {
                    if out.ends_with(prefix) {
                        return format!("{}***", &out[..out.len() - len]);
                    }
                }
            }
        }
        out
    }
}

const B64_STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64(b: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for chunk in b.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(alphabet[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Percent-encoding of everything but unreserved characters; `form`: space as `+`.
fn url_encode(s: &str, form: bool) -> String {
    let mut out = String::new();
    for &c in s.as_bytes() {
        match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(c))
            }
            b' ' if form => out.push('+'),
            _ => out.push_str(&format!("%{c:02X}")),
        }
    }
    out
}

/// Replaces every occurrence of the value (and of each secret field of a JSON value)
/// with `***`.
pub fn mask_value(text: &str, value: &SecretString) -> String {
    Masker::of(value).mask(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_whole_value_and_secret_json_fields() {
        let v = SecretString::from(
            r#"{"username":"app-user","password":"p@ss\"word!","host":"db.example"}"#,
        );
        let m = Masker::of(&v);
        assert_eq!(m.mask("pw p@ss\"word! end"), "pw *** end");
        assert_eq!(m.mask(r#"json "p@ss\"word!""#), r#"json "***""#);
        // Coordinates stay readable.
        assert_eq!(
            m.mask("user app-user at db.example"),
            "user app-user at db.example"
        );
        assert_eq!(m.mask(v.expose_secret()), "***");
    }

    #[test]
    fn encoded_and_cut_values_are_masked() {
        let raw = "s3cr3t value/with+symbols&=?";
        let m = Masker::of(&SecretString::from(raw));
        let hex: String = raw.bytes().map(|b| format!("{b:02x}")).collect();
        for shown in [
            base64(raw.as_bytes(), B64_STD),
            base64(raw.as_bytes(), B64_URL)
                .trim_end_matches('=')
                .to_owned(),
            hex.clone(),
            hex.to_ascii_uppercase(),
            url_encode(raw, false),
            url_encode(raw, true),
        ] {
            assert_eq!(
                m.mask(&format!("got {shown} end")),
                "got *** end",
                "{shown}"
            );
        }
        assert_eq!(
            base64(b"any carnal pleas", B64_STD),
            "YW55IGNhcm5hbCBwbGVhcw=="
        );
        // Output cut at the limit in the middle of the value.
        assert_eq!(m.mask_cut("value: s3cr3t val"), "value: ***");
        assert_eq!(m.mask_cut("done"), "done");
    }

    #[test]
    fn short_strings_are_not_masked() {
        let m = Masker::of(&SecretString::from(r#"{"k":"ab"}"#));
        assert_eq!(m.mask("ab cd"), "ab cd");
    }

    #[test]
    fn fresh_retry_policy() {
        use crate::config::{PostgresTarget, Target};
        let pg = |mode, admin: Option<&str>| {
            Target::Postgres(PostgresTarget {
                mode,
                admin_secret_id: admin.map(crate::ids::SecretId::from),
                sslmode: "disable".into(),
                clone_suffix: "_clone".into(),
                host: "db".into(),
                port: 5432,
                dbname: "postgres".into(),
                role: "app".into(),
                ca_file: None,
                timeout: std::time::Duration::from_secs(30),
            })
        };
        assert!(!fresh_value_on_retry(&pg(PostgresMode::SingleUser, None)));
        assert!(fresh_value_on_retry(&pg(
            PostgresMode::SingleUser,
            Some("a")
        )));
        assert!(fresh_value_on_retry(&pg(
            PostgresMode::AlternatingUsers,
            Some("a")
        )));
        assert!(fresh_value_on_retry(&Target::None));
    }
}
