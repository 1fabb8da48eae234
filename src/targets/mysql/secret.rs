//! The database secrets (the application's and the admin's) and whom they may log in as.

use super::config::{MySql, MySqlMode, MySqlTarget};
use crate::config::TargetKind;
use crate::rotation::target::TargetError;
use crate::targets::shared::{kind_error, JsonSecret};
use secrecy::SecretString;

pub(super) const SHAPE: &str = "host, port, username, password";

pub(super) fn parse(v: &SecretString, which: &'static str) -> Result<JsonSecret, TargetError> {
    JsonSecret::parse(v, which, MySql::NAME, SHAPE)
}

/// The users whose password this target may set: the configured one, and in
/// alternating-users mode its clone.
pub(super) fn allowed_users(t: &MySqlTarget) -> Vec<String> {
    match t.mode {
        MySqlMode::SingleUser => vec![t.user.clone()],
        MySqlMode::AlternatingUsers => vec![t.user.clone(), clone_of(t)],
    }
}

pub(super) fn clone_of(t: &MySqlTarget) -> String {
    format!("{}{}", t.user, t.clone_suffix)
}

/// As whom to log in (always on the configured server).
pub(super) struct Login {
    pub(super) user: String,
    pub(super) password: SecretString,
}

impl Login {
    /// The login an application secret describes, once checked against the config.
    pub(super) fn of(s: &JsonSecret, t: &MySqlTarget) -> Result<Self, TargetError> {
        s.check_server(&t.host, t.port)?;
        let user = s.user_in(&allowed_users(t), "user")?.to_owned();
        Ok(Self {
            user,
            password: s.password()?,
        })
    }

    /// The admin's login: on the configured server, never as a rotated user (the admin
    /// would then alter its own password and hand it to the application secret).
    pub(super) fn admin(admin: &JsonSecret, t: &MySqlTarget) -> Result<Self, TargetError> {
        admin.check_server(&t.host, t.port)?;
        let user = admin.username()?;
        if allowed_users(t).iter().any(|r| r == user) {
            return Err(kind_error(
                MySql::NAME,
                format!("the admin secret's user \"{user}\" is a user this target rotates; refused"),
            ));
        }
        Ok(Self {
            user: user.to_owned(),
            password: admin.password()?,
        })
    }

    pub(super) fn with_password(&self, password: SecretString) -> Self {
        Self {
            user: self.user.clone(),
            password,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::shared::SslMode;
    use std::time::Duration;

    pub(crate) fn target(mode: MySqlMode) -> MySqlTarget {
        MySqlTarget {
            mode,
            admin_secret_id: None,
            sslmode: SslMode::Disable,
            clone_suffix: "_clone".into(),
            host: "db.internal".into(),
            port: 3307,
            user: "app".into(),
            user_host: "%".into(),
            ca_file: None,
            timeout: Duration::from_secs(30),
        }
    }

    fn secret(json: &str) -> JsonSecret {
        parse(&SecretString::from(json.to_owned()), "test").unwrap()
    }

    #[test]
    fn secret_fields_are_checked_against_the_pinned_server_and_user() {
        let t = target(MySqlMode::AlternatingUsers);
        let ok = secret(
            r#"{"engine":"mysql","host":"DB.internal","port":"3307","username":"app_clone","password":"p","dbname":"shop"}"#,
        );
        assert_eq!(Login::of(&ok, &t).unwrap().user, "app_clone");
        assert!(Login::of(&secret(r#"{"username":"app","password":"p"}"#), &t).is_ok());
        for bad in [
            r#"{"host":"evil.example","username":"app","password":"p"}"#,
            r#"{"port":3306,"username":"app","password":"p"}"#,
            r#"{"port":70000,"username":"app","password":"p"}"#,
            r#"{"host":7,"username":"app","password":"p"}"#,
            r#"{"username":"root","password":"p"}"#,
            r#"{"username":"app_clone_clone","password":"p"}"#,
            r#"{"username":"app"}"#,
        ] {
            assert!(Login::of(&secret(bad), &t).is_err(), "{bad}");
        }
        assert!(Login::admin(&secret(r#"{"username":"app_clone","password":"p"}"#), &t).is_err());
        assert!(Login::admin(&secret(r#"{"username":"admin","password":"p"}"#), &t).is_ok());
        assert!(parse(&SecretString::from("nope"), "test").is_err());
        // single-user: the clone is not a user it may touch.
        let single = target(MySqlMode::SingleUser);
        assert!(Login::of(&secret(r#"{"username":"app_clone","password":"p"}"#), &single).is_err());
    }
}
