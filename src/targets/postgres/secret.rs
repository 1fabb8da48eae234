//! The database secrets (the application's and the admin's) and whom they may log in as.

use super::config::{PostgresMode, PostgresTarget};
use super::pg;
use crate::rotation::target::TargetError;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

/// A database secret: the JSON document, kept whole, with typed access to the fields used.
pub(super) struct DbSecret {
    pub(super) doc: Map<String, Value>,
    pub(super) which: &'static str,
}

impl DbSecret {
    pub(super) fn parse(v: &SecretString, which: &'static str) -> Result<Self, TargetError> {
        match serde_json::from_str::<Value>(v.expose_secret()) {
            Ok(Value::Object(doc)) => Ok(Self { doc, which }),
            _ => Err(pg(format!(
                "the {which} value is not a JSON object with host, port, username, password, dbname"
            ))),
        }
    }

    pub(super) fn str_field(&self, key: &str) -> Option<&str> {
        self.doc.get(key).and_then(Value::as_str)
    }

    pub(super) fn required(&self, key: &str) -> Result<&str, TargetError> {
        match self.str_field(key) {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(pg(format!(
                "the {} value has no \"{key}\" string",
                self.which
            ))),
        }
    }

    pub(super) fn username(&self) -> Result<&str, TargetError> {
        self.required("username")
    }

    pub(super) fn password(&self) -> Result<SecretString, TargetError> {
        match self.doc.get("password").and_then(Value::as_str) {
            Some(p) => Ok(SecretString::from(p.to_owned())),
            None => Err(pg(format!(
                "the {} value has no \"password\" string",
                self.which
            ))),
        }
    }

    pub(super) fn port(&self) -> Result<Option<u16>, TargetError> {
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
    pub(super) fn check_server(&self, t: &PostgresTarget) -> Result<(), TargetError> {
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
    pub(super) fn role(&self, t: &PostgresTarget) -> Result<&str, TargetError> {
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

    pub(super) fn to_secret(&self) -> Result<SecretString, TargetError> {
        serde_json::to_string(&self.doc)
            .map(SecretString::from)
            .map_err(|_| pg("cannot serialize the new value"))
    }
}

/// The roles whose password this target may set: the configured role, and in
/// alternating-users mode its clone.
pub(super) fn allowed_roles(t: &PostgresTarget) -> Vec<String> {
    match t.mode {
        PostgresMode::SingleUser => vec![t.role.clone()],
        PostgresMode::AlternatingUsers => vec![t.role.clone(), clone_of(t)],
    }
}

pub(super) fn clone_of(t: &PostgresTarget) -> String {
    format!("{}{}", t.role, t.clone_suffix)
}

/// Where and as whom to log in: always the configured server.
pub(super) struct Login {
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) dbname: String,
    pub(super) user: String,
    pub(super) password: SecretString,
}

impl Login {
    pub(super) fn to(t: &PostgresTarget, user: &str, password: SecretString) -> Self {
        Self {
            host: t.host.clone(),
            port: t.port,
            dbname: t.dbname.clone(),
            user: user.to_owned(),
            password,
        }
    }

    /// The login an application secret describes, once checked against the config.
    pub(super) fn of(s: &DbSecret, t: &PostgresTarget) -> Result<Self, TargetError> {
        s.check_server(t)?;
        let user = s.role(t)?;
        Ok(Self::to(t, user, s.password()?))
    }

    /// The admin's login: on the configured server, never as a rotated role (the admin
    /// would then alter its own password and hand it to the application secret).
    pub(super) fn admin(admin: &DbSecret, t: &PostgresTarget) -> Result<Self, TargetError> {
        admin.check_server(t)?;
        let user = admin.username()?;
        if allowed_roles(t).iter().any(|r| r == user) {
            return Err(pg(format!(
                "the admin secret's user \"{user}\" is a role this target rotates; refused"
            )));
        }
        Ok(Self::to(t, user, admin.password()?))
    }

    pub(super) fn with_password(&self, password: SecretString) -> Self {
        Self {
            host: self.host.clone(),
            port: self.port,
            dbname: self.dbname.clone(),
            user: self.user.clone(),
            password,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn target(mode: PostgresMode) -> PostgresTarget {
        PostgresTarget {
            mode,
            admin_secret_id: None,
            sslmode: crate::targets::shared::SslMode::Disable,
            clone_suffix: "_clone".into(),
            host: "db.internal".into(),
            port: 6432,
            dbname: "app".into(),
            role: "app".into(),
            ca_file: None,
            timeout: Duration::from_secs(30),
        }
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
}
