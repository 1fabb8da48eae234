//! Statements and quoting: every identifier and literal quoted here, every statement
//! bounded by the target's timeout, and failures described without a password.

use super::pg;
use crate::rotation::target::TargetError;
use secrecy::{ExposeSecret, SecretString};
use std::future::Future;
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

/// PostgreSQL truncates longer identifiers (NAMEDATALEN - 1).
const MAX_IDENTIFIER: usize = 63;

/// A failed login or statement: whether the server refused the credentials, and what
/// it said (never a password).
#[derive(Debug)]
pub(super) struct PgFailure {
    pub(super) auth: bool,
    pub(super) text: String,
}

impl PgFailure {
    pub(super) fn from(e: &tokio_postgres::Error) -> Self {
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

pub(super) fn describe(e: &tokio_postgres::Error) -> String {
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
pub(super) fn quote_ident(name: &str) -> Result<String, TargetError> {
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
pub(super) fn quote_literal(s: &str) -> Result<String, TargetError> {
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

/// Runs `f` for at most `limit`: `Err(None)` when it did not answer in time.
pub(super) async fn bounded<T>(
    limit: Duration,
    f: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, Option<tokio_postgres::Error>> {
    match tokio::time::timeout(limit, f).await {
        Ok(r) => r.map_err(Some),
        Err(_) => Err(None),
    }
}

pub(super) fn failure_text(e: Option<tokio_postgres::Error>, limit: Duration) -> String {
    match e {
        Some(e) => describe(&e),
        None => format!(
            "no answer within {}",
            crate::config::duration::format(limit)
        ),
    }
}

pub(super) async fn role_exists(
    c: &Client,
    role: &str,
    limit: Duration,
) -> Result<bool, TargetError> {
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
pub(super) async fn privileges(
    c: &Client,
    role: &str,
    limit: Duration,
) -> Result<Vec<String>, TargetError> {
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
pub(super) async fn check_no_more_than(
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

pub(super) async fn alter_password(
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

pub(super) async fn create_role(
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
}
