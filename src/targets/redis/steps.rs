//! The steps: make the value, add its password (set), log in with it (test), remove the
//! previous one (revoke), and the remote check. Passwords reach the server as SHA-256
//! hashes (`#hex`, `!hex`), except in `AUTH`, which Redis never shows in MONITOR or
//! SLOWLOG.

use super::config::{Redis, RedisTarget};
use super::resp::{Conn, Reply};
use super::rd;
use crate::config::TargetKind;
use crate::rotation::generate::generate;
use crate::rotation::store::{Select, AWSCURRENT};
use crate::rotation::target::{Masker, TargetEnv, TargetError};
use crate::targets::shared::{masked, read_secret_current, JsonSecret};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sha2::{Digest, Sha256};

const SHAPE: &str = "host, port, username, password";

fn parse(v: &SecretString, which: &'static str) -> Result<JsonSecret, TargetError> {
    JsonSecret::parse(v, which, Redis::NAME, SHAPE)
}

/// The hash Redis keeps for a password (`ACL GETUSER` lists these): lower-case hex
/// SHA-256.
pub(super) fn password_hash(p: &SecretString) -> String {
    Sha256::digest(p.expose_secret().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The application secret's password, once its server and user are checked against the
/// configuration.
fn app_password(s: &JsonSecret, t: &RedisTarget) -> Result<SecretString, TargetError> {
    s.check_server(&t.host, t.port)?;
    s.user_in(std::slice::from_ref(&t.username), "username")?;
    s.password()
}

pub(super) async fn create_value(
    env: &TargetEnv<'_>,
    t: &RedisTarget,
) -> Result<SecretString, TargetError> {
    let (_, current) = env
        .store
        .get_value(&env.cfg.secret, Select::Stage(AWSCURRENT))
        .await?;
    let mut doc = parse(&current, "AWSCURRENT")?;
    app_password(&doc, t)?;
    let password = generate(&env.cfg.generate).map_err(|e| rd(e.to_string()))?;
    doc.doc.insert(
        "password".into(),
        Value::String(password.expose_secret().to_owned()),
    );
    doc.which = "pending";
    doc.to_secret()
}

/// Connects and authenticates as `user`.
async fn login(t: &RedisTarget, user: &str, password: &SecretString) -> Result<Conn, TargetError> {
    let at = format!("{}:{}", t.host, t.port);
    let mut c = Conn::open(t)
        .await
        .map_err(|e| rd(format!("cannot connect to {at}: {e}")))?;
    match c
        .call(&[b"AUTH", user.as_bytes(), password.expose_secret().as_bytes()])
        .await
    {
        Ok(Reply::Status(s)) if s == "OK" => Ok(c),
        Ok(Reply::Error(e)) => Err(rd(format!("cannot log in as \"{user}\" at {at}: {e}"))),
        Ok(other) => Err(rd(format!(
            "cannot log in as \"{user}\" at {at}: unexpected reply {other:?}"
        ))),
        Err(e) => Err(rd(format!("cannot log in as \"{user}\" at {at}: {e}"))),
    }
}

/// The admin's connection: its secret may not name another server, nor the rotated user.
async fn admin(env: &TargetEnv<'_>, t: &RedisTarget, masker: &mut Masker) -> Result<Conn, TargetError> {
    let v = read_secret_current(env, &t.admin_secret_id, Redis::NAME).await?;
    masker.add(&v);
    let a = parse(&v, "admin secret's")?;
    a.check_server(&t.host, t.port)?;
    let user = a.username()?;
    if user == t.username {
        return Err(rd(format!(
            "the admin secret's user \"{user}\" is the user this target rotates; refused"
        )));
    }
    login(t, user, &a.password()?).await
}

/// `ACL GETUSER user`: its password hashes, or `None` when the user does not exist.
async fn password_hashes(c: &mut Conn, t: &RedisTarget) -> Result<Option<Vec<String>>, TargetError> {
    let user = &t.username;
    let reply = c
        .call(&[b"ACL", b"GETUSER", user.as_bytes()])
        .await
        .map_err(|e| rd(format!("ACL GETUSER {user}: {e}")))?;
    let items = match reply {
        Reply::Array(None) | Reply::Bulk(None) => return Ok(None),
        Reply::Array(Some(items)) => items,
        Reply::Error(e) => return Err(rd(format!("ACL GETUSER {user} failed: {e}"))),
        other => return Err(rd(format!("ACL GETUSER {user}: unexpected reply {other:?}"))),
    };
    // A flat list of field name, value.
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        if k.text().as_deref() == Some("passwords") {
            return match v {
                Reply::Array(Some(list)) => Ok(Some(list.iter().filter_map(Reply::text).collect())),
                _ => Ok(Some(Vec::new())),
            };
        }
    }
    Ok(Some(Vec::new()))
}

/// `ACL SETUSER user <rule>`, expecting OK.
async fn setuser(c: &mut Conn, t: &RedisTarget, rule: &str, what: &str) -> Result<(), TargetError> {
    let user = &t.username;
    match c.call(&[b"ACL", b"SETUSER", user.as_bytes(), rule.as_bytes()]).await {
        Ok(Reply::Status(s)) if s == "OK" => Ok(()),
        Ok(Reply::Error(e)) => Err(rd(format!("ACL SETUSER {user} ({what}) failed: {e}"))),
        Ok(other) => Err(rd(format!("ACL SETUSER {user} ({what}): unexpected reply {other:?}"))),
        Err(e) => Err(rd(format!("ACL SETUSER {user} ({what}): {e}"))),
    }
}

/// set: the pending password is added next to the current one (`#hash`), so both log in
/// until revoke. Adding a hash the user has is a no-op: safe to run again.
pub(super) async fn set(
    env: &TargetEnv<'_>,
    t: &RedisTarget,
    value: &SecretString,
) -> Result<(), TargetError> {
    let mut masker = Masker::of(value);
    let run = async {
        let pending = parse(value, "pending")?;
        let new = app_password(&pending, t)?;
        masker.add_str(&password_hash(&new));
        let mut c = admin(env, t, &mut masker).await?;
        if password_hashes(&mut c, t).await?.is_none() {
            return Err(rd(format!(
                "ACL user \"{}\" does not exist (it is never created here)",
                t.username
            )));
        }
        setuser(&mut c, t, &format!("#{}", password_hash(&new)), "add the pending password").await
    };
    let r = run.await;
    r.map_err(|e| masked(&masker, e))
}

/// test: a fresh connection, `AUTH user pending`, `PING`. A user without `@connection`
/// gets `NOPERM` for the PING: its AUTH already proved the password.
pub(super) async fn test(t: &RedisTarget, value: &SecretString) -> Result<(), TargetError> {
    let masker = Masker::of(value);
    let run = async {
        let pending = parse(value, "pending")?;
        let new = app_password(&pending, t)?;
        let mut c = login(t, &t.username, &new).await?;
        match c.call(&[b"PING"]).await {
            Ok(Reply::Status(s)) if s == "PONG" => Ok(()),
            Ok(Reply::Error(e)) if e.starts_with("NOPERM") => Ok(()),
            Ok(other) => Err(rd(format!("PING as \"{}\": unexpected reply {other:?}", t.username))),
            Err(e) => Err(rd(format!("PING as \"{}\": {e}", t.username))),
        }
    };
    run.await.map_err(|e| masked(&masker, e))
}

/// revoke (every consumer is stable on the current value): every password but the
/// current one is removed (`!hash`): the previous one, and any an earlier attempt added
/// whose rotation failed or whose revoke was skipped. The ACL user's passwords are the
/// daemon's alone. Never the current one, and nothing when the user lacks it.
pub(super) async fn revoke(
    env: &TargetEnv<'_>,
    t: &RedisTarget,
    current: &SecretString,
    previous: Option<&SecretString>,
) -> Result<(), TargetError> {
    let Some(previous) = previous else {
        tracing::info!(secret = %env.cfg.name, "no previous value: nothing to revoke");
        return Ok(());
    };
    let mut masker = Masker::of(current);
    masker.add(previous);
    let run = async {
        let now = app_password(&parse(current, "AWSCURRENT")?, t)?;
        let old = match parse(previous, "AWSPREVIOUS") {
            Ok(p) => p.password()?,
            Err(e) => return Err(e),
        };
        let (now_hash, old_hash) = (password_hash(&now), password_hash(&old));
        masker.add_str(&now_hash);
        masker.add_str(&old_hash);
        let mut c = admin(env, t, &mut masker).await?;
        match password_hashes(&mut c, t).await? {
            None => Err(rd(format!("ACL user \"{}\" does not exist", t.username))),
            Some(h) if !h.contains(&now_hash) => Err(rd(format!(
                "ACL user \"{}\" does not have the current password; not removing the others (one may be the only one that works)",
                t.username
            ))),
            Some(h) => {
                let others: Vec<&String> = h.iter().filter(|x| **x != now_hash).collect();
                if others.is_empty() {
                    tracing::info!(secret = %env.cfg.name, user = %t.username, "only the current password is left");
                }
                // A rule is only ever made of a SHA-256 in hex (no rule injection).
                if others.iter().any(|o| o.len() != 64 || !o.bytes().all(|b| b.is_ascii_hexdigit())) {
                    return Err(rd(format!(
                        "ACL user \"{}\" has a password entry that is not a SHA-256 hash",
                        t.username
                    )));
                }
                for o in others {
                    let what = if *o == old_hash {
                        "remove the previous password"
                    } else {
                        "remove a password left by an earlier attempt"
                    };
                    setuser(&mut c, t, &format!("!{o}"), what).await?;
                }
                Ok(())
            }
        }
    };
    run.await.map_err(|e| masked(&masker, e))
}

/// `check --remote`: the admin logs in, the user exists, and the admin may run
/// `ACL SETUSER` on it (`ACL DRYRUN`, Redis 7+).
pub(super) async fn check_remote(
    env: &TargetEnv<'_>,
    t: &RedisTarget,
) -> Result<Vec<String>, TargetError> {
    let mut masker = Masker::default();
    let run = async {
        let (_, current) = env
            .store
            .get_value(&env.cfg.secret, Select::Stage(AWSCURRENT))
            .await?;
        masker.add(&current);
        app_password(&parse(&current, "AWSCURRENT")?, t)?;
        let mut c = admin(env, t, &mut masker).await?;
        let mut problems = Vec::new();
        if password_hashes(&mut c, t).await?.is_none() {
            problems.push(format!("ACL user \"{}\" does not exist", t.username));
        }
        let admin_user = {
            let v = read_secret_current(env, &t.admin_secret_id, Redis::NAME).await?;
            parse(&v, "admin secret's")?.username()?.to_owned()
        };
        let probe = c
            .call(&[
                b"ACL",
                b"DRYRUN",
                admin_user.as_bytes(),
                b"ACL",
                b"SETUSER",
                t.username.as_bytes(),
            ])
            .await
            .map_err(|e| rd(format!("ACL DRYRUN: {e}")))?;
        match probe {
            Reply::Status(s) if s == "OK" => {}
            // Before Redis 7 there is no DRYRUN: ACL GETUSER above worked, which the
            // usual admin grants (+@admin) come with.
            Reply::Error(e) if e.contains("unknown subcommand") => {}
            Reply::Error(e) | Reply::Status(e) => problems.push(format!(
                "the admin secret's user \"{admin_user}\" may not run ACL SETUSER {}: {e}",
                t.username
            )),
            Reply::Bulk(Some(b)) => problems.push(format!(
                "the admin secret's user \"{admin_user}\" may not run ACL SETUSER {}: {}",
                t.username,
                String::from_utf8_lossy(&b)
            )),
            other => problems.push(format!("ACL DRYRUN: unexpected reply {other:?}")),
        }
        Ok(problems)
    };
    let r = run.await;
    r.map_err(|e| masked(&masker, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_what_redis_stores() {
        // ACL SETUSER u >VerySecretPw1 then ACL GETUSER u on Redis 7.0.
        assert_eq!(
            password_hash(&SecretString::from("VerySecretPw1")),
            "8355a5b06493af25a818918031c5e625233f1f56fdb894ceec906471d84cc62f"
        );
    }
}
