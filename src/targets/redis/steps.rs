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
use crate::rotation::target::{Masker, RemoteFinding, TargetEnv, TargetError};
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

/// A command that writes the server's ACLs to a file a restart reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Save {
    /// `ACL SAVE`: every user to the `aclfile`.
    AclSave,
    /// `CONFIG REWRITE`: the users into the config file the server started from.
    ConfigRewrite,
}

impl Save {
    fn cmd(self) -> &'static [&'static [u8]] {
        match self {
            Save::AclSave => &[b"ACL", b"SAVE"],
            Save::ConfigRewrite => &[b"CONFIG", b"REWRITE"],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Save::AclSave => "ACL SAVE",
            Save::ConfigRewrite => "CONFIG REWRITE",
        }
    }
}

/// How the server keeps an ACL change across a restart, decided before any ACL SETUSER.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Saving {
    By(Save),
    /// Nothing can: why.
    Not(String),
    /// `check --remote` (which changes nothing) could not tell: why. set then tries
    /// `ACL SAVE` and `CONFIG REWRITE` themselves.
    Unknown(String),
}

/// `INFO section`: its text, or the server's refusal (an error reply).
async fn info_reply(c: &mut Conn, section: &str) -> Result<Result<String, String>, TargetError> {
    match c.call(&[b"INFO", section.as_bytes()]).await {
        Ok(Reply::Bulk(Some(b))) => Ok(Ok(String::from_utf8_lossy(&b).into_owned())),
        Ok(Reply::Error(e)) => Ok(Err(e)),
        Ok(other) => Err(rd(format!("INFO {section}: unexpected reply {other:?}"))),
        Err(e) => Err(rd(format!("INFO {section}: {e}"))),
    }
}

/// The value of `key:value` in an INFO text.
fn info_field<'a>(info: &'a str, key: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(str::trim)
}

/// Whether an `aclfile` is set (`CONFIG GET aclfile`), or the server's refusal (CONFIG
/// renamed or disabled, or the admin may not run it).
async fn has_aclfile(c: &mut Conn) -> Result<Result<bool, String>, TargetError> {
    match c.call(&[b"CONFIG", b"GET", b"aclfile"]).await {
        Ok(Reply::Array(Some(items))) => Ok(Ok(items
            .get(1)
            .and_then(Reply::text)
            .is_some_and(|f| !f.is_empty()))),
        Ok(Reply::Error(e)) => Ok(Err(e)),
        Ok(other) => Err(rd(format!("CONFIG GET aclfile: unexpected reply {other:?}"))),
        Err(e) => Err(rd(format!("CONFIG GET aclfile: {e}"))),
    }
}

/// Whether the server was started from a config file (`INFO server` `config_file`), or
/// the server's refusal.
async fn has_config_file(c: &mut Conn) -> Result<Result<bool, String>, TargetError> {
    Ok(info_reply(c, "server")
        .await?
        .map(|text| info_field(&text, "config_file").is_some_and(|f| !f.is_empty())))
}

/// Runs a save: OK, or the server's refusal.
async fn run_save(c: &mut Conn, save: Save) -> Result<Result<(), String>, TargetError> {
    let what = save.name();
    match c.call(save.cmd()).await {
        Ok(Reply::Status(s)) if s == "OK" => Ok(Ok(())),
        Ok(Reply::Error(e)) => Ok(Err(e)),
        Ok(other) => Err(rd(format!("{what}: unexpected reply {other:?}"))),
        Err(e) => Err(rd(format!("{what}: {e}"))),
    }
}

/// As Redis documents it: an `aclfile` is saved with `ACL SAVE`; otherwise users live in
/// the config file the server was started from, saved with `CONFIG REWRITE`; otherwise
/// nowhere.
///
/// `probe` (set and revoke, before their ACL SETUSER): the chosen command is run once
/// (it writes the ACLs as they are, which the save after ACL SETUSER does anyway), so a
/// save that cannot work (no permission, CONFIG renamed or disabled, a file it cannot
/// write) is known before the password changes. When `CONFIG GET` or `INFO` is refused,
/// the save itself is the test: `ACL SAVE` works only with an aclfile, `CONFIG REWRITE`
/// only with a config file. Without `probe` (`check --remote`) nothing is written: a
/// refused `CONFIG GET` or `INFO` gives [`Saving::Unknown`].
async fn saved_by(c: &mut Conn, probe: bool) -> Result<Saving, TargetError> {
    let mut why = Vec::new();
    match has_aclfile(c).await? {
        Ok(true) if !probe => return Ok(Saving::By(Save::AclSave)),
        Ok(true) => {
            return Ok(match run_save(c, Save::AclSave).await? {
                Ok(()) => Saving::By(Save::AclSave),
                Err(e) => Saving::Not(format!("an aclfile is set but ACL SAVE failed: {e}")),
            })
        }
        Ok(false) => why.push("no aclfile is set".to_owned()),
        Err(e) if !probe => return Ok(Saving::Unknown(format!("CONFIG GET aclfile failed: {e}"))),
        Err(e) => match run_save(c, Save::AclSave).await? {
            Ok(()) => return Ok(Saving::By(Save::AclSave)),
            // Only Redis's own "no aclfile" answer says there is none. Any other refusal
            // (NOPERM, a file it cannot write) may hide an aclfile, and with one set
            // CONFIG REWRITE answers OK but writes no user: nothing is known to save.
            Err(e2) if no_aclfile(&e2) => why.push(format!(
                "CONFIG GET aclfile failed ({e}) and ACL SAVE says no aclfile is set"
            )),
            Err(e2) => {
                return Ok(Saving::Not(format!(
                    "CONFIG GET aclfile failed ({e}) and so did ACL SAVE ({e2}): an aclfile may be set, and CONFIG REWRITE saves no user then"
                )))
            }
        },
    }
    match has_config_file(c).await? {
        Ok(true) if !probe => Ok(Saving::By(Save::ConfigRewrite)),
        Ok(true) => Ok(match run_save(c, Save::ConfigRewrite).await? {
            Ok(()) => Saving::By(Save::ConfigRewrite),
            Err(e) => {
                why.push(format!("the server was started from a config file but CONFIG REWRITE failed: {e}"));
                Saving::Not(why.join("; "))
            }
        }),
        Ok(false) => {
            why.push("the server was started without a config file".into());
            Ok(Saving::Not(why.join("; ")))
        }
        Err(e) if !probe => Ok(Saving::Unknown(format!("{}; INFO server failed: {e}", why.join("; ")))),
        Err(e) => Ok(match run_save(c, Save::ConfigRewrite).await? {
            Ok(()) => Saving::By(Save::ConfigRewrite),
            Err(e2) => {
                why.push(format!("INFO server failed ({e}) and so did CONFIG REWRITE ({e2})"));
                Saving::Not(why.join("; "))
            }
        }),
    }
}

/// Redis's answer to `ACL SAVE` when no aclfile is set ("This Redis instance is not
/// configured to use an ACL file. ...").
fn no_aclfile(error: &str) -> bool {
    error
        .to_ascii_lowercase()
        .contains("not configured to use an acl file")
}

/// What set says when nothing can save the change and `allow_unsaved` is not set.
fn unsaved_refusal(t: &RedisTarget, why: &str) -> TargetError {
    rd(format!(
        "the new password of ACL user \"{}\" could not survive a restart ({why}); refused before ACL SETUSER. Configure an aclfile (ACL SAVE) or a config file (CONFIG REWRITE) and let the admin run it, or set allow_unsaved = true in the target to rotate anyway (a restart then brings the old password back)",
        t.username
    ))
}

/// Makes the ACL change survive a restart, as [`saved_by`] decided; a failure fails the
/// step (the rerun does it again).
async fn save(c: &mut Conn, saving: &Saving) -> Result<(), TargetError> {
    let Saving::By(save) = saving else {
        return Ok(());
    };
    match run_save(c, *save).await? {
        Ok(()) => Ok(()),
        Err(e) => Err(rd(format!("{} failed: {e}", save.name()))),
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
        // Decided (and the save tried) before the password changes: a change that a
        // restart would undo is refused unless allowed, and a save that cannot work
        // fails the step while only the current password logs in.
        let saving = saved_by(&mut c, true).await?;
        if let Saving::Not(why) = &saving {
            if !t.allow_unsaved {
                return Err(unsaved_refusal(t, why));
            }
            tracing::warn!(
                secret = %env.cfg.name,
                user = %t.username,
                why = %why,
                "the ACL change is not saved (allow_unsaved = true): a restart undoes it (the new password stops working)"
            );
        }
        setuser(&mut c, t, &format!("#{}", password_hash(&new)), "add the pending password").await?;
        // Saved before AWSCURRENT moves: a restart must not bring back a server without
        // the password the application is about to get.
        save(&mut c, &saving).await
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
                // Removing the old passwords is worth it even unsaved (they stop working
                // until a restart): they are removed, then the step fails if that cannot
                // be saved (unless allowed), so it is retried and alerts.
                let saving = saved_by(&mut c, true).await?;
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
                // Saved even when nothing was left to remove: an earlier revoke may have
                // stopped between its ACL SETUSER and the save.
                match &saving {
                    Saving::Not(why) if !t.allow_unsaved => Err(rd(format!(
                        "the old passwords of ACL user \"{}\" are removed but the change could not be saved ({why}): a restart brings them back; the step is retried",
                        t.username
                    ))),
                    Saving::Not(why) => {
                        tracing::warn!(secret = %env.cfg.name, user = %t.username, why = %why, "the removal of the old passwords is not saved (allow_unsaved = true): a restart brings them back");
                        Ok(())
                    }
                    _ => save(&mut c, &saving).await,
                }
            }
        }
    };
    run.await.map_err(|e| masked(&masker, e))
}

/// `ACL DRYRUN admin <command>` (Redis 7+): `None` when the admin may run it, else why
/// not. Before Redis 7 there is no DRYRUN (`ERR unknown subcommand`, or `Unknown` in
/// Redis 6): not a verdict, `None`; ACL GETUSER worked, which the usual admin grants
/// (+@admin) come with.
async fn refused(c: &mut Conn, admin: &str, cmd: &[&[u8]]) -> Result<Option<String>, TargetError> {
    let mut args: Vec<&[u8]> = vec![b"ACL", b"DRYRUN", admin.as_bytes()];
    args.extend_from_slice(cmd);
    let probe = c.call(&args).await.map_err(|e| rd(format!("ACL DRYRUN: {e}")))?;
    Ok(match probe {
        Reply::Status(s) if s == "OK" => None,
        // Redis 7 says "unknown subcommand", 6 "Unknown subcommand".
        Reply::Error(e) if e.to_ascii_lowercase().contains("unknown subcommand") => None,
        Reply::Error(e) | Reply::Status(e) => Some(e),
        Reply::Bulk(Some(b)) => Some(String::from_utf8_lossy(&b).into_owned()),
        other => Some(format!("unexpected reply {other:?}")),
    })
}

/// `check --remote`: the admin logs in, the user exists, and the admin may run
/// `ACL SETUSER` on it and save the change (`ACL DRYRUN`, Redis 7+). Also how the change
/// is saved (a note, or a warning when a restart would lose it) and whether replicas are
/// involved (ACLs are not replicated).
pub(super) async fn check_remote(
    env: &TargetEnv<'_>,
    t: &RedisTarget,
) -> Result<Vec<RemoteFinding>, TargetError> {
    let mut masker = Masker::default();
    let run = async {
        let (_, current) = env
            .store
            .get_value(&env.cfg.secret, Select::Stage(AWSCURRENT))
            .await?;
        masker.add(&current);
        app_password(&parse(&current, "AWSCURRENT")?, t)?;
        let mut c = admin(env, t, &mut masker).await?;
        let mut found = Vec::new();
        let user = &t.username;
        if password_hashes(&mut c, t).await?.is_none() {
            found.push(RemoteFinding::Problem(format!("ACL user \"{user}\" does not exist")));
        }
        let admin_user = {
            let v = read_secret_current(env, &t.admin_secret_id, Redis::NAME).await?;
            parse(&v, "admin secret's")?.username()?.to_owned()
        };
        if let Some(why) = refused(&mut c, &admin_user, &[b"ACL", b"SETUSER", user.as_bytes()]).await? {
            found.push(RemoteFinding::Problem(format!(
                "the admin secret's user \"{admin_user}\" may not run ACL SETUSER {user}: {why}"
            )));
        }
        let (save, how) = match saved_by(&mut c, false).await? {
            Saving::By(Save::AclSave) => (Some(Save::AclSave), RemoteFinding::Note(format!(
                "ACL user \"{user}\" is saved to the aclfile (ACL SAVE before and after each change)"
            ))),
            Saving::By(Save::ConfigRewrite) => (Some(Save::ConfigRewrite), RemoteFinding::Warning(format!(
                "ACL user \"{user}\" is saved with CONFIG REWRITE into the config file the server started from: a restart keeps the new password only if the user is defined in that file alone. If it is also defined on the command line (--user) or in an included file, or the file is regenerated at every start (containers), a restart brings the old password back or fails; prefer an aclfile"
            ))),
            Saving::Not(why) if t.allow_unsaved => (None, RemoteFinding::Warning(format!(
                "ACL user \"{user}\" is NOT saved ({why}): a restart loses the new password (allowed by allow_unsaved = true)"
            ))),
            Saving::Not(why) => (None, RemoteFinding::Problem(format!(
                "ACL user \"{user}\" is NOT saved ({why}): a restart would lose the new password, so set refuses; configure an aclfile or a config file, or set allow_unsaved = true"
            ))),
            Saving::Unknown(why) => (None, RemoteFinding::Warning(format!(
                "cannot tell how ACL user \"{user}\" is saved ({why}): set tries ACL SAVE, then CONFIG REWRITE, before ACL SETUSER, and if neither works {}",
                if t.allow_unsaved { "rotates unsaved (allow_unsaved = true)" } else { "refuses" }
            ))),
        };
        found.push(how);
        if let Some(save) = save {
            if let Some(why) = refused(&mut c, &admin_user, save.cmd()).await? {
                found.push(RemoteFinding::Problem(format!(
                    "the admin secret's user \"{admin_user}\" may not save the change ({}): {why}",
                    save.name()
                )));
            }
        }
        let scope = "ACL changes are not replicated: every node needs its own secret and target (Sentinel and Cluster are out of scope)";
        match info_reply(&mut c, "replication").await? {
            // INFO is not needed to rotate: not a problem.
            Err(e) => found.push(RemoteFinding::Warning(format!(
                "cannot tell whether replicas are involved (INFO replication failed: {e}); {scope}"
            ))),
            Ok(repl) => match info_field(&repl, "role") {
                Some("slave" | "replica") => found.push(RemoteFinding::Warning(format!(
                    "this server is a replica: its users are its own, not its primary's; {scope}"
                ))),
                _ => {
                    let n = info_field(&repl, "connected_slaves")
                        .and_then(|n| n.parse::<u64>().ok())
                        .unwrap_or(0);
                    if n > 0 {
                        found.push(RemoteFinding::Warning(format!(
                            "this server is a primary with {n} connected replica(s): after a failover the new password is missing and the old one works; {scope}"
                        )));
                    }
                }
            },
        }
        Ok(found)
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
