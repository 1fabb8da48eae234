//! The steps: make the value, set it (as the admin or the user itself), test it, and the
//! remote check.

use super::config::{MySql, MySqlMode, MySqlTarget};
use super::connect::{close, connect, connect_raw, exec, query_strings, server};
use super::my;
use super::secret::{clone_of, parse, Login};
use super::sql::{
    alter_password_sql, attributes, attributes_sql, create_user_sql, native_password_hash,
    own_password_sql, quote_account, reconcile, Attributes,
};
use crate::config::TargetKind;
use crate::rotation::generate::generate;
use crate::rotation::store::{Select, AWSCURRENT, AWSPREVIOUS};
use crate::rotation::target::{Masker, RemoteFinding, TargetEnv, TargetError};
use crate::targets::shared::{masked, message, read_secret_current, JsonSecret, SslMode};
use mysql_async::Conn;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

/// ER_NONEXISTING_GRANT: `SHOW GRANTS FOR` an account that does not exist.
const NO_SUCH_GRANT: u16 = 1141;
/// ER_CANNOT_USER: `CREATE USER` of an account that exists.
const CANNOT_USER: u16 = 1396;

pub(super) async fn create_value(
    env: &TargetEnv<'_>,
    t: &MySqlTarget,
) -> Result<SecretString, TargetError> {
    let (_, current) = env
        .store
        .get_value(&env.cfg.secret, Select::Stage(AWSCURRENT))
        .await?;
    let mut doc = parse(&current, "AWSCURRENT")?;
    // Fail now, before anything is written, if the document cannot be used later (or
    // names a server or user this target may not touch).
    let user = Login::of(&doc, t)?.user;
    let new_user = match t.mode {
        MySqlMode::SingleUser => user,
        MySqlMode::AlternatingUsers if user == t.user => clone_of(t),
        MySqlMode::AlternatingUsers => t.user.clone(),
    };
    quote_account(&new_user, &t.user_host)?;
    let password = generate(&env.cfg.generate).map_err(|e| my(e.to_string()))?;
    doc.doc.insert("username".into(), Value::String(new_user));
    doc.doc.insert(
        "password".into(),
        Value::String(password.expose_secret().to_owned()),
    );
    doc.which = "pending";
    doc.to_secret()
}

/// AWSPREVIOUS's document, when the secret has one that reads as ours (a value that does
/// not parse is no evidence of anything: `None`).
async fn read_previous(env: &TargetEnv<'_>) -> Result<Option<JsonSecret>, TargetError> {
    let meta = env.store.describe(&env.cfg.secret).await?;
    if meta.version_with(AWSPREVIOUS).is_none() {
        return Ok(None);
    }
    let (_, v) = env
        .store
        .get_value(&env.cfg.secret, Select::Stage(AWSPREVIOUS))
        .await?;
    Ok(parse(&v, "AWSPREVIOUS").ok())
}

async fn read_admin(env: &TargetEnv<'_>, t: &MySqlTarget) -> Result<Option<JsonSecret>, TargetError> {
    match &t.admin_secret_id {
        None => Ok(None),
        Some(id) => {
            let v = read_secret_current(env, id, MySql::NAME).await?;
            parse(&v, "admin secret's").map(Some)
        }
    }
}

/// A masker for everything a failure might echo: every password in play and the
/// pending password's hash.
fn masker_for(value: &SecretString, others: &[&JsonSecret]) -> Masker {
    let mut masker = Masker::of(value);
    for s in others {
        if let Ok(p) = s.password() {
            masker.add(&p);
            masker.add_str(native_password_hash(&p).expose_secret());
        }
    }
    masker
}

pub(super) async fn set(
    env: &TargetEnv<'_>,
    t: &MySqlTarget,
    value: &SecretString,
) -> Result<(), TargetError> {
    let pending = parse(value, "pending")?;
    let (_, current) = env
        .store
        .get_value(&env.cfg.secret, Select::Stage(AWSCURRENT))
        .await?;
    let current = parse(&current, "AWSCURRENT")?;
    let admin = read_admin(env, t).await?;
    let previous = match t.mode {
        MySqlMode::AlternatingUsers => read_previous(env).await?,
        MySqlMode::SingleUser => None,
    };
    let mut all = vec![&pending, &current];
    all.extend(admin.as_ref());
    all.extend(previous.as_ref());
    let masker = masker_for(value, &all);
    let result = async {
        let login = Login::of(&pending, t)?;
        let current_login = Login::of(&current, t)?;
        match (t.mode, admin.as_ref()) {
            (MySqlMode::SingleUser, Some(admin)) => {
                let mut c = connect(&Login::admin(admin, t)?, t).await?;
                let r = async {
                    // An account whose test login must fail is refused before its
                    // password changes. When its SHOW CREATE USER cannot be read (no
                    // SELECT on mysql, MySQL 5.7's quoting) nothing is known: a warning,
                    // and `check --remote` says so. (Requiring a working login instead
                    // locked the application out after a failed test: the retry's fresh
                    // password and AWSCURRENT's were both dead by then.)
                    match original_attributes(&mut c, t).await {
                        Ok(a) => refuse_untestable(&a, t)?,
                        Err(e) => tracing::warn!(secret = %env.cfg.name, error = %message(e), "the account's SHOW CREATE USER is not readable: whether the test login can work (REQUIRE X509, SSL) is not checked; give the admin SELECT on mysql.*"),
                    }
                    alter(&mut c, &login, t).await
                }
                .await;
                close(c, t).await;
                r
            }
            (MySqlMode::SingleUser, None) => set_own(env, t, &login, current_login).await,
            (MySqlMode::AlternatingUsers, None) => {
                Err(my("alternating-users mode needs admin_secret_id"))
            }
            (MySqlMode::AlternatingUsers, Some(admin)) => {
                if login.user == current_login.user {
                    return Err(my(format!(
                        "alternating-users mode: the pending value names the same user as AWSCURRENT (\"{}\")",
                        login.user
                    )));
                }
                let mut c = connect(&Login::admin(admin, t)?, t).await?;
                let r = async {
                    // Both accounts have the original's attributes: checked before any
                    // statement, whichever account is next.
                    let attrs = alternating_attributes(&mut c, t).await?;
                    if login.user == t.user {
                        alter(&mut c, &login, t).await
                    } else {
                        // The versions of this secret that name the clone: one whose
                        // password logs in as it proves the clone ours.
                        let named: Vec<Login> = [Some(&current), previous.as_ref()]
                            .into_iter()
                            .flatten()
                            .filter(|d| d.username().is_ok_and(|u| u == login.user))
                            .filter_map(|d| Login::of(d, t).ok())
                            .collect();
                        set_clone(env, &mut c, &login, t, attrs, &named).await
                    }
                }
                .await;
                close(c, t).await;
                r
            }
        }
    }
    .await;
    result.map_err(|e| masked(&masker, e))
}

/// Whether a fresh login like the test step's works.
async fn logs_in(login: &Login, t: &MySqlTarget) -> bool {
    match connect_raw(login, t).await {
        Ok(c) => {
            close(c, t).await;
            true
        }
        Err(_) => false,
    }
}

/// `SHOW GRANTS` of an account with no privilege at all (what CREATE USER leaves).
fn usage_only(lines: &[String]) -> bool {
    lines.iter().all(|l| l.starts_with("GRANT USAGE ON *.* TO "))
}

/// The mysql_native_password hash `SHOW GRANTS` shows for the account (MariaDB:
/// `... IDENTIFIED BY PASSWORD '*<40 hex>'`).
fn stored_native_hash(lines: &[String]) -> Option<&str> {
    lines.iter().find_map(|l| {
        let at = l.find("IDENTIFIED BY PASSWORD '*")? + "IDENTIFIED BY PASSWORD '".len();
        let h = l.get(at..at + 41)?;
        (h[1..].bytes().all(|b| b.is_ascii_hexdigit()) && l[at + 41..].starts_with('\''))
            .then_some(h)
    })
}

/// Whether a `SHOW CREATE USER` line locks the account after failed logins (MySQL
/// 8.0.19+ `FAILED_LOGIN_ATTEMPTS n`, n > 0).
fn locks_on_failed_logins(line: &str) -> bool {
    line.split_whitespace()
        .skip_while(|w| *w != "FAILED_LOGIN_ATTEMPTS")
        .nth(1)
        .is_some_and(|n| n != "0")
}

/// Whether an existing clone is ours: a password of this secret is its password, one of
/// a version naming it (AWSCURRENT, AWSPREVIOUS: `named`) or this rotation's pending one
/// (a set killed right after CREATE USER, which gives it that password). A name alone
/// proves nothing: anyone who may write the secret can write one.
///
/// Where the server shows the account's mysql_native_password hash (MariaDB, where the
/// daemon sets passwords that way) the hashes are compared: no login at all. Elsewhere a
/// login like the test step's is tried, and only on an account whose `SHOW CREATE USER`
/// (`line`) sets no `FAILED_LOGIN_ATTEMPTS` (a wrong password, retried with backoff,
/// would lock someone else's account), with the pending password only on an account
/// without any privilege. Left: on MySQL 8 a set killed while giving the first clone its
/// grants leaves one that is not tried, and refused (drop it by hand).
async fn proves_ours(
    existing: &[String],
    line: Option<&str>,
    pending: &Login,
    named: &[Login],
    t: &MySqlTarget,
) -> bool {
    if let Some(stored) = stored_native_hash(existing) {
        return named
            .iter()
            .chain([pending])
            .any(|l| native_password_hash(&l.password).expose_secret() == stored);
    }
    if line.is_none_or(locks_on_failed_logins) {
        return false;
    }
    let pending_probe = usage_only(existing).then_some(pending);
    for l in named.iter().chain(pending_probe) {
        if logs_in(l, t).await {
            return true;
        }
    }
    false
}

/// `ALTER USER` of the login's account, as the admin.
async fn alter(c: &mut Conn, login: &Login, t: &MySqlTarget) -> Result<(), TargetError> {
    let srv = server(c, t).await?;
    let account = quote_account(&login.user, &t.user_host)?;
    let sql = alter_password_sql(&account, &login.password, &srv)?;
    exec(c, sql.expose_secret(), &format!("ALTER USER {account}"), t)
        .await
        .map_err(|(_, e)| e)
}

/// single-user without an admin: the user sets its own password, logged in with
/// AWSCURRENT's. If that login is refused, set may have run already (a crash after set):
/// when the pending password logs in, set is done.
async fn set_own(
    env: &TargetEnv<'_>,
    t: &MySqlTarget,
    login: &Login,
    current: Login,
) -> Result<(), TargetError> {
    let user = &login.user;
    let as_current = login.with_password(current.password);
    match connect_raw(&as_current, t).await {
        Ok(mut c) => {
            let r = async {
                let srv = server(&mut c, t).await?;
                let sql = own_password_sql(&login.password, &srv)?;
                exec(&mut c, sql.expose_secret(), &format!("setting the password of \"{user}\""), t)
                    .await
                    .map_err(|(_, e)| e)
            }
            .await;
            close(c, t).await;
            r
        }
        Err(first) if first.auth => match connect_raw(login, t).await {
            Ok(c) => {
                close(c, t).await;
                tracing::info!(secret = %env.cfg.name, user = %user, "the user already logs in with the pending password: set was done by an earlier run");
                Ok(())
            }
            Err(second) => Err(my(format!(
                "cannot log in as \"{user}\" with AWSCURRENT's password ({}) nor with the pending one ({}); the password was changed outside this rotation: configure admin_secret_id or reset it",
                first.text, second.text
            ))),
        },
        Err(e) => Err(my(format!(
            "cannot log in as \"{user}\" at {}:{}: {}",
            t.host, t.port, e.text
        ))),
    }
}

/// `SHOW GRANTS FOR account`, or `None` when the account does not exist.
async fn grants(c: &mut Conn, account: &str, t: &MySqlTarget) -> Result<Option<Vec<String>>, TargetError> {
    match query_strings(c, &format!("SHOW GRANTS FOR {account}"), &format!("SHOW GRANTS FOR {account}"), t).await {
        Ok(v) => Ok(Some(v)),
        Err((Some(NO_SUCH_GRANT), _)) => Ok(None),
        Err((_, e)) => Err(e),
    }
}

/// `SHOW CREATE USER account`: the one line.
async fn create_user_line(c: &mut Conn, account: &str, t: &MySqlTarget) -> Result<String, TargetError> {
    let q = format!("SHOW CREATE USER {account}");
    match query_strings(c, &q, &q, t).await.map_err(|(_, e)| e)?.pop() {
        Some(l) => Ok(l),
        None => Err(my(format!("{q} returned nothing"))),
    }
}

/// The original account's attributes (`SHOW CREATE USER`).
async fn original_attributes(c: &mut Conn, t: &MySqlTarget) -> Result<Attributes, TargetError> {
    let base = quote_account(&t.user, &t.user_host)?;
    attributes(&create_user_line(c, &base, t).await?, &base).map_err(my)
}

/// Refuses an account whose login by this daemon (the test step) cannot work: one that
/// needs a client certificate, or TLS when `sslmode` is `disable`.
fn refuse_untestable(a: &Attributes, t: &MySqlTarget) -> Result<(), TargetError> {
    match a.untestable(!matches!(t.sslmode, SslMode::Disable)) {
        None => Ok(()),
        Some(why) => Err(my(format!(
            "user {} {why}: the test login with the new password would fail; refused before any change",
            quote_account(&t.user, &t.user_host)?
        ))),
    }
}

/// alternating-users: the original's attributes, refused when the accounts could not be
/// tested or when the original has MySQL 8 default roles (not copied: the clone would
/// log in with no active role).
async fn alternating_attributes(c: &mut Conn, t: &MySqlTarget) -> Result<Attributes, TargetError> {
    let a = original_attributes(c, t).await?;
    refuse_untestable(&a, t)?;
    if let Some(roles) = a.default_role() {
        return Err(my(format!(
            "user {} has default roles (DEFAULT ROLE {roles}), which alternating-users does not copy: the clone would log in with no active role; refused before any change (use single-user mode, or grant the privileges directly)",
            quote_account(&t.user, &t.user_host)?
        )));
    }
    Ok(a)
}

/// alternating-users, the clone: created with no privilege, then brought to exactly the
/// original's grants (`SHOW GRANTS FOR` each: what it lacks granted, what it has beyond
/// revoked) and account attributes (`SHOW CREATE USER`: REQUIRE and resource limits),
/// checked again, and only then given the password. A clone made earlier follows what
/// changed on the original since; one that still differs afterwards gets no password.
///
/// Only a clone that is `ours` (created here, or named by this secret's AWSCURRENT or
/// AWSPREVIOUS) is changed that way. An existing account of that name that this secret
/// never rotated to may be someone else's (a reporting account `app_ro`): if its grants
/// or attributes differ from the original's it is refused, and no statement reaches it.
async fn set_clone(
    env: &TargetEnv<'_>,
    c: &mut Conn,
    login: &Login,
    t: &MySqlTarget,
    base_attrs: Attributes,
    named: &[Login],
) -> Result<(), TargetError> {
    let srv = server(c, t).await?;
    let base = quote_account(&t.user, &t.user_host)?;
    let clone = quote_account(&login.user, &t.user_host)?;
    let Some(base_grants) = grants(c, &base, t).await? else {
        return Err(my(format!("the original user {base} does not exist")));
    };
    // The original's grants must read back before anything is created.
    reconcile(&base_grants, &[], &base, &clone).map_err(my)?;
    let existing = match grants(c, &clone, t).await? {
        Some(g) => g,
        None => {
            tracing::info!(secret = %env.cfg.name, user = %login.user, like = %t.user, "creating the alternate user with the original's grants");
            let sql = create_user_sql(&clone, &login.password, &srv)?;
            match exec(c, sql.expose_secret(), &format!("CREATE USER {clone}"), t).await {
                Ok(()) => {
                    rotator_core::failpoint!("mysql-after-create-user");
                    // Made here: a failure before it is complete drops it again, or the
                    // retry (with a fresh password) would find an account it cannot
                    // prove its own.
                    let r = bring_clone(c, login, t, &srv, (&base, &base_grants, &base_attrs), &clone, true).await;
                    if r.is_err() {
                        let drop = format!("DROP USER {clone}");
                        if let Err((_, e)) = exec(c, &drop, &drop, t).await {
                            tracing::warn!(secret = %env.cfg.name, user = %login.user, error = %message(e), "could not drop the alternate user this failed set created; drop it by hand");
                        }
                    }
                    return r;
                }
                // Created meanwhile by someone else: judged like any existing account.
                Err((Some(CANNOT_USER), _)) => {}
                Err((_, e)) => return Err(e),
            }
            grants(c, &clone, t)
                .await?
                .ok_or_else(|| my(format!("user {clone} vanished after CREATE USER")))?
        }
    };
    let (take, give) = reconcile(&base_grants, &existing, &base, &clone).map_err(my)?;
    let line = match stored_native_hash(&existing) {
        Some(_) => None,
        None => create_user_line(c, &clone, t).await.ok(),
    };
    let ours = proves_ours(&existing, line.as_deref(), login, named, t).await;
    if !ours {
        let attrs = attributes(&create_user_line(c, &clone, t).await?, &clone).map_err(my)?;
        if !take.is_empty() || !give.is_empty() || attrs != base_attrs {
            let mut diff: Vec<String> = take.iter().chain(&give).cloned().collect();
            if attrs != base_attrs {
                diff.push("account attributes (REQUIRE, resource limits)".into());
            }
            return Err(my(format!(
                "user {clone} already exists, none of this secret's passwords (AWSCURRENT's, AWSPREVIOUS's, the pending one) is its password, and it differs from {base} ({}); refusing to change another account's grants or password. Drop it if it is a leftover of an earlier rotation of this secret, give it exactly the grants of {base}, or choose another clone_suffix",
                diff.join("; ")
            )));
        }
    }
    bring_clone(c, login, t, &srv, (&base, &base_grants, &base_attrs), &clone, ours).await
}

/// The clone brought to the original's grants (what it lacks granted, what it has beyond
/// revoked) and, when `ours`, its attributes; both read again, and only then the
/// password.
async fn bring_clone(
    c: &mut Conn,
    login: &Login,
    t: &MySqlTarget,
    srv: &super::sql::Server,
    (base, base_grants, base_attrs): (&str, &[String], &Attributes),
    clone: &str,
    ours: bool,
) -> Result<(), TargetError> {
    let existing = grants(c, clone, t).await?.unwrap_or_default();
    let (take, give) = reconcile(base_grants, &existing, base, clone).map_err(my)?;
    for s in take.iter().chain(&give) {
        exec(c, s, &format!("bringing {clone} to the grants of {base} ({s})"), t)
            .await
            .map_err(|(_, e)| e)?;
    }
    if ours {
        let sql = attributes_sql(base_attrs, clone, srv)?;
        exec(c, &sql, &format!("copying the account attributes of {base} ({sql})"), t)
            .await
            .map_err(|(_, e)| e)?;
    }
    // Never a password for a clone that holds more (or other) than the original.
    let now = grants(c, clone, t).await?.unwrap_or_default();
    let (take, give) = reconcile(base_grants, &now, base, clone).map_err(my)?;
    let attrs = attributes(&create_user_line(c, clone, t).await?, clone).map_err(my)?;
    if !take.is_empty() || !give.is_empty() || attrs != *base_attrs {
        let mut diff: Vec<String> = take.iter().chain(&give).cloned().collect();
        if attrs != *base_attrs {
            diff.push("account attributes (REQUIRE, resource limits, default roles)".into());
        }
        return Err(my(format!(
            "user {clone} still differs from {base} after copying its grants and attributes ({}); refusing to set its password (fix the user by hand)",
            diff.join("; ")
        )));
    }
    let sql = alter_password_sql(clone, &login.password, srv)?;
    exec(c, sql.expose_secret(), &format!("ALTER USER {clone}"), t)
        .await
        .map_err(|(_, e)| e)
}

pub(super) async fn test(t: &MySqlTarget, value: &SecretString) -> Result<(), TargetError> {
    let pending = parse(value, "pending")?;
    let masker = masker_for(value, &[&pending]);
    let run = async {
        let login = Login::of(&pending, t)?;
        let mut c = connect(&login, t).await?;
        let r = query_strings(&mut c, "SELECT '1'", &format!("SELECT 1 as \"{}\"", login.user), t)
            .await
            .map_err(|(_, e)| e);
        close(c, t).await;
        r.map(|_| ())
    };
    run.await.map_err(|e| masked(&masker, e))
}

/// `check --remote`: the admin (or, without one, the user itself) logs in, the user
/// exists, and the admin may see its grants and alter it. Each problem is one line.
pub(super) async fn check_remote(
    env: &TargetEnv<'_>,
    t: &MySqlTarget,
) -> Result<Vec<RemoteFinding>, TargetError> {
    let (_, current) = env
        .store
        .get_value(&env.cfg.secret, Select::Stage(AWSCURRENT))
        .await?;
    let current_doc = parse(&current, "AWSCURRENT")?;
    let admin = read_admin(env, t).await?;
    let mut all = vec![&current_doc];
    all.extend(admin.as_ref());
    let masker = masker_for(&current, &all);
    let run = async {
        let app = Login::of(&current_doc, t)?;
        let Some(admin) = admin.as_ref() else {
            // The user changes its own password: its own login (in a session our
            // quoting is safe in) is the whole check.
            let mut c = connect(&app, t).await?;
            let r = server(&mut c, t).await;
            close(c, t).await;
            return Ok(r
                .err()
                .map(|e| RemoteFinding::Problem(message(e)))
                .into_iter()
                .collect());
        };
        let mut c = connect(&Login::admin(admin, t)?, t).await?;
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        if let Err(e) = server(&mut c, t).await {
            problems.push(message(e));
        }
        let base = quote_account(&t.user, &t.user_host)?;
        match grants(&mut c, &base, t).await {
            Ok(Some(_)) => {
                // What set refuses before any change: an account the test login cannot
                // log in as; in alternating-users, MySQL 8 default roles.
                let checked = match t.mode {
                    MySqlMode::AlternatingUsers => alternating_attributes(&mut c, t).await.map(|_| ()),
                    MySqlMode::SingleUser => match original_attributes(&mut c, t).await {
                        Ok(a) => refuse_untestable(&a, t),
                        Err(e) => {
                            warnings.push(format!(
                                "the admin cannot read SHOW CREATE USER {base} ({}): whether the test login can work (REQUIRE X509, SSL) is not checked before the password changes; give the admin SELECT on mysql.*",
                                message(e)
                            ));
                            Ok(())
                        }
                    },
                };
                if let Err(e) = checked {
                    problems.push(message(e));
                }
            }
            Ok(None) => problems.push(format!("user {base} does not exist")),
            Err(e) => problems.push(e.to_string()),
        }
        // The privilege ALTER USER and CREATE USER need (MariaDB and MySQL alike).
        let mine = query_strings(&mut c, "SHOW GRANTS", "SHOW GRANTS", t)
            .await
            .map_err(|(_, e)| e)?;
        // CREATE USER is a global privilege: only a grant ON *.* can hold it.
        let can = mine.iter().any(|g| {
            let head = g.split(" ON ").next().unwrap_or_default();
            g.contains(" ON *.* TO ")
                && (head.contains("ALL PRIVILEGES") || head.contains("CREATE USER"))
        });
        if !can {
            problems.push(format!(
                "the admin secret's user \"{}\" lacks the CREATE USER privilege (needed to ALTER USER {base})",
                admin.username()?
            ));
        }
        close(c, t).await;
        Ok(problems
            .into_iter()
            .map(RemoteFinding::Problem)
            .chain(warnings.into_iter().map(RemoteFinding::Warning))
            .collect())
    };
    run.await.map_err(|e| masked(&masker, e))
}

#[cfg(test)]
mod tests {
    use super::locks_on_failed_logins;

    /// Fifth review: a login probe with a wrong password, retried with backoff, locked a
    /// MySQL 8 account that sets FAILED_LOGIN_ATTEMPTS; such an account is never probed.
    #[test]
    fn an_account_that_locks_on_failed_logins_is_recognised() {
        let m8 = "CREATE USER `app_ro`@`%` IDENTIFIED WITH 'caching_sha2_password' AS '$A$005$x' REQUIRE NONE PASSWORD EXPIRE DEFAULT ACCOUNT UNLOCK PASSWORD HISTORY DEFAULT PASSWORD REUSE INTERVAL DEFAULT PASSWORD REQUIRE CURRENT DEFAULT FAILED_LOGIN_ATTEMPTS 3 PASSWORD_LOCK_TIME UNBOUNDED";
        assert!(locks_on_failed_logins(m8));
        assert!(!locks_on_failed_logins(&m8.replace("ATTEMPTS 3", "ATTEMPTS 0")));
        assert!(!locks_on_failed_logins(
            "CREATE USER `app_ro`@`%` IDENTIFIED WITH 'caching_sha2_password' AS '$A$005$x' REQUIRE NONE"
        ));
    }
}
