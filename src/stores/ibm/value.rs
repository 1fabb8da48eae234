//! The rotator's text value of each secret type, and back:
//! - `arbitrary`: the payload;
//! - `kv`: the JSON text of `data` (a JSON object);
//! - `username_password`: `{"username": ..., "password": ...}`, so that `json_key =
//!   "password"` rotates the password. A new version sends only the password (IBM keeps
//!   the secret's username), so a value naming another username is refused.
//!
//! The pending holder keeps the part a new version will send: the payload, the `kv` JSON
//! text, or the password.

use super::types::SecretData;
use crate::error::{AwsError, ErrorClass};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Map, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Arbitrary,
    Kv,
    UsernamePassword,
}

impl Kind {
    pub(super) fn parse(op: &'static str, secret_type: &str) -> Result<Self, AwsError> {
        match secret_type {
            "arbitrary" => Ok(Kind::Arbitrary),
            "kv" => Ok(Kind::Kv),
            "username_password" => Ok(Kind::UsernamePassword),
            other => Err(AwsError::new(
                ErrorClass::Invalid,
                op,
                "UnsupportedSecretType",
                format!("secret type '{other}' cannot be rotated (arbitrary, kv and username_password can)"),
            )),
        }
    }
}

fn invalid(op: &'static str, why: &str) -> AwsError {
    AwsError::new(ErrorClass::Invalid, op, "InvalidSecretValue", why)
}

/// The rotator's value of IBM data.
pub(super) fn to_text(data: &SecretData) -> SecretString {
    match data {
        SecretData::Payload(p) | SecretData::Data(p) => p.clone(),
        SecretData::Credentials { username, password } => credentials(username, password),
    }
}

fn credentials(username: &str, password: &SecretString) -> SecretString {
    SecretString::from(
        json!({"username": username, "password": password.expose_secret()}).to_string(),
    )
}

/// The username of IBM data (username_password only).
pub(super) fn username(data: &SecretData) -> Option<&str> {
    match data {
        SecretData::Credentials { username, .. } => Some(username),
        _ => None,
    }
}

/// What the holder keeps for `value`: checked against the secret's type (and username).
pub(super) fn holder_payload(
    op: &'static str,
    kind: Kind,
    value: &SecretString,
    current_username: Option<&str>,
) -> Result<SecretString, AwsError> {
    let text = value.expose_secret();
    match kind {
        Kind::Arbitrary => {
            if text.is_empty() {
                return Err(invalid(op, "an arbitrary secret's value cannot be empty"));
            }
            Ok(value.clone())
        }
        Kind::Kv => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(_)) => Ok(value.clone()),
            _ => Err(invalid(op, "a kv secret's value must be a JSON object")),
        },
        Kind::UsernamePassword => {
            let Ok(Value::Object(o)) = serde_json::from_str::<Value>(text) else {
                return Err(invalid(op, "a username_password secret's value must be a JSON object with \"username\" and \"password\""));
            };
            if let Some(k) = o.keys().find(|k| *k != "username" && *k != "password") {
                return Err(invalid(op, &format!("a username_password secret's value has only \"username\" and \"password\", not \"{k}\"")));
            }
            let Some(password) = o.get("password").and_then(Value::as_str) else {
                return Err(invalid(op, "the value has no \"password\" string"));
            };
            match (o.get("username"), current_username) {
                (None, _) => {}
                (Some(Value::String(u)), Some(cur)) if u == cur => {}
                _ => {
                    return Err(invalid(op, "the value's \"username\" differs from the secret's: IBM keeps the username of a username_password secret, only the password rotates"))
                }
            }
            Ok(SecretString::from(password.to_owned()))
        }
    }
}

/// The rotator's value of what the holder keeps.
pub(super) fn from_holder(
    kind: Kind,
    payload: &SecretString,
    username: Option<&str>,
) -> SecretString {
    match kind {
        Kind::Arbitrary | Kind::Kv => payload.clone(),
        Kind::UsernamePassword => credentials(username.unwrap_or_default(), payload),
    }
}

/// The `SecretVersionPrototype` that makes the holder's value the secret's new version.
pub(super) fn version_prototype(
    op: &'static str,
    kind: Kind,
    payload: &SecretString,
    version_metadata: Map<String, Value>,
) -> Result<Value, AwsError> {
    let meta = Value::Object(version_metadata);
    Ok(match kind {
        Kind::Arbitrary => {
            json!({"payload": payload.expose_secret(), "version_custom_metadata": meta})
        }
        Kind::Kv => {
            let data: Value = serde_json::from_str(payload.expose_secret())
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| invalid(op, "the pending kv value is not a JSON object"))?;
            json!({"data": data, "version_custom_metadata": meta})
        }
        Kind::UsernamePassword => {
            json!({"password": payload.expose_secret(), "version_custom_metadata": meta})
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> SecretString {
        SecretString::from(v.to_owned())
    }

    #[test]
    fn credentials_rotate_the_password_only() {
        let op = "put_pending";
        let p = holder_payload(
            op,
            Kind::UsernamePassword,
            &s(r#"{"username":"app","password":"pw-2"}"#),
            Some("app"),
        )
        .unwrap();
        assert_eq!(p.expose_secret(), "pw-2");
        let back = from_holder(Kind::UsernamePassword, &p, Some("app"));
        assert_eq!(
            back.expose_secret(),
            r#"{"username":"app","password":"pw-2"}"#
        );
        let other = holder_payload(
            op,
            Kind::UsernamePassword,
            &s(r#"{"username":"root","password":"pw"}"#),
            Some("app"),
        );
        assert_eq!(other.unwrap_err().class, ErrorClass::Invalid);
        assert!(holder_payload(op, Kind::UsernamePassword, &s("pw"), Some("app")).is_err());
        // Error messages never carry the value.
        let e = holder_payload(
            op,
            Kind::UsernamePassword,
            &s(r#"{"username":"app","password":"pw","x":"leak"}"#),
            Some("app"),
        )
        .unwrap_err();
        assert!(
            !e.to_string().contains("leak") && !e.to_string().contains("pw\""),
            "{e}"
        );
    }

    #[test]
    fn kv_values_must_be_objects_and_become_data() {
        let op = "put_pending";
        assert!(holder_payload(op, Kind::Kv, &s("[1]"), None).is_err());
        let p = holder_payload(op, Kind::Kv, &s(r#"{"a":"1"}"#), None).unwrap();
        let proto = version_prototype(op, Kind::Kv, &p, Map::new()).unwrap();
        assert_eq!(proto["data"], json!({"a": "1"}));
        let proto = version_prototype(op, Kind::Arbitrary, &s("x"), Map::new()).unwrap();
        assert_eq!(proto["payload"], "x");
    }
}
