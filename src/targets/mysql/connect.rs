//! Logging in: TCP, TLS and authentication within the target's timeout, through
//! `mysql_async` (its rustls TLS, with the system's roots plus `ca_file` and no built-in
//! list; no cleartext-password plugin, no compression, no connection pool).

use super::config::MySqlTarget;
use super::my;
use super::secret::Login;
use super::sql::Server;
use crate::rotation::target::TargetError;
use crate::targets::shared::{bounded, no_answer, trusted_root_ders, SslMode};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, SslOpts};
use secrecy::ExposeSecret;

/// ER_ACCESS_DENIED_ERROR: wrong user or password.
const ACCESS_DENIED: u16 = 1045;

/// A failed login: whether the server refused the credentials, and what it said (never a
/// password).
#[derive(Debug)]
pub(super) struct MyFailure {
    pub(super) auth: bool,
    pub(super) text: String,
}

pub(super) fn describe(e: &mysql_async::Error) -> String {
    match e {
        mysql_async::Error::Server(s) => format!("ERROR {} ({}): {}", s.code, s.state, s.message),
        other => {
            let mut s = other.to_string();
            let mut cur = std::error::Error::source(other);
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
    }
}

pub(super) fn server_code(e: &mysql_async::Error) -> Option<u16> {
    match e {
        mysql_async::Error::Server(s) => Some(s.code),
        _ => None,
    }
}

fn ssl_opts(t: &MySqlTarget) -> Result<Option<SslOpts>, String> {
    // DER buffers (the crate's `PathOrBuf` is built through `From<Vec<u8>>`).
    let roots = || -> Result<Vec<_>, String> {
        Ok(trusted_root_ders(t.ca_file.as_deref())?
            .into_iter()
            .map(|c| c.to_vec().into())
            .collect())
    };
    Ok(match t.sslmode {
        SslMode::Disable => None,
        SslMode::Require => Some(SslOpts::default().with_danger_accept_invalid_certs(true)),
        SslMode::VerifyCa => Some(
            SslOpts::default()
                .with_root_certs(roots()?)
                .with_disable_built_in_roots(true)
                .with_danger_skip_domain_validation(true),
        ),
        SslMode::VerifyFull => Some(
            SslOpts::default()
                .with_root_certs(roots()?)
                .with_disable_built_in_roots(true),
        ),
    })
}

/// Logs in (TCP, TLS and authentication all within the target's timeout).
pub(super) async fn connect_raw(login: &Login, t: &MySqlTarget) -> Result<Conn, MyFailure> {
    let fail = |text: String| MyFailure { auth: false, text };
    let opts = OptsBuilder::default()
        .ip_or_hostname(t.host.clone())
        .tcp_port(t.port)
        .user(Some(login.user.clone()))
        .pass(Some(login.password.expose_secret().to_owned()))
        .db_name(None::<String>)
        // Never the local socket, never a password in clear (mysql_clear_password).
        .prefer_socket(false)
        .enable_cleartext_plugin(false)
        .stmt_cache_size(0)
        .ssl_opts(ssl_opts(t).map_err(fail)?);
    match bounded(t.timeout, Conn::new(opts)).await {
        Ok(c) => Ok(c),
        Err(Some(e)) => Err(MyFailure {
            auth: server_code(&e) == Some(ACCESS_DENIED),
            text: describe(&e),
        }),
        Err(None) => Err(fail(no_answer(t.timeout))),
    }
}

pub(super) async fn connect(login: &Login, t: &MySqlTarget) -> Result<Conn, TargetError> {
    connect_raw(login, t).await.map_err(|f| {
        my(format!(
            "cannot log in as \"{}\" at {}:{}: {}",
            login.user, t.host, t.port, f.text
        ))
    })
}

/// Ends a session politely, within the timeout (a server that does not answer is left).
pub(super) async fn close(c: Conn, t: &MySqlTarget) {
    let _ = tokio::time::timeout(t.timeout, c.disconnect()).await;
}

/// Runs one statement that returns no rows, within the timeout; `what` names it in the
/// error (the statement itself may hold a password hash and is never shown).
pub(super) async fn exec(
    c: &mut Conn,
    sql: &str,
    what: &str,
    t: &MySqlTarget,
) -> Result<(), (Option<u16>, TargetError)> {
    match bounded(t.timeout, c.query_drop(sql)).await {
        Ok(()) => Ok(()),
        Err(Some(e)) => Err((
            server_code(&e),
            my(format!("{what} failed: {}", describe(&e))),
        )),
        Err(None) => Err((None, my(format!("{what}: {}", no_answer(t.timeout))))),
    }
}

/// Rows of one text column, within the timeout.
pub(super) async fn query_strings(
    c: &mut Conn,
    sql: &str,
    what: &str,
    t: &MySqlTarget,
) -> Result<Vec<String>, (Option<u16>, TargetError)> {
    // Rows as `Row`, converted with `from_row_opt`: the typed `query::<String>` panics on
    // a value it cannot convert (a NULL, a hostile server).
    match bounded(t.timeout, c.query::<mysql_async::Row, _>(sql)).await {
        Ok(rows) => rows
            .into_iter()
            .map(|r| {
                mysql_async::from_row_opt::<String>(r)
                    .map_err(|_| (None, my(format!("{what}: a row that is not one text column"))))
            })
            .collect(),
        Err(Some(e)) => Err((
            server_code(&e),
            my(format!("{what} failed: {}", describe(&e))),
        )),
        Err(None) => Err((None, my(format!("{what}: {}", no_answer(t.timeout))))),
    }
}

/// Client character sets in which every byte below 0x80 is that ASCII character and
/// never part of a multibyte one: a quote or backslash in a literal is what it looks
/// like. In gbk, big5, sjis or cp932 a lead byte can take the next backslash as its
/// second half, and a password could then end the literal.
const ASCII_SAFE: [&str; 6] = ["utf8mb4", "utf8mb3", "utf8", "latin1", "ascii", "binary"];

/// Which server it is (MariaDB or MySQL) and whether backslashes escape in literals.
/// Refused (before any statement that changes something) when the session's
/// `character_set_client` is not one in which our quoting holds.
pub(super) async fn server(c: &mut Conn, t: &MySqlTarget) -> Result<Server, TargetError> {
    const Q: &str = "SELECT VERSION(), @@SESSION.sql_mode, @@SESSION.character_set_client";
    let row = bounded(t.timeout, c.query_first::<mysql_async::Row, _>(Q)).await;
    match row.map(|r| r.map(mysql_async::from_row_opt::<(String, String, String)>)) {
        Ok(Some(Err(_))) => Err(my(format!("{Q}: unexpected values"))),
        Ok(Some(Ok((version, mode, charset)))) => {
            if !ASCII_SAFE.iter().any(|s| s.eq_ignore_ascii_case(&charset)) {
                return Err(my(format!(
                    "the session's character_set_client is {charset}, in which a quoted value can escape its quotes (a multibyte character may take the escaping backslash); refused before any statement. Accepted: {} (the server imposes its own when started with --skip-character-set-client-handshake)",
                    ASCII_SAFE.join(", ")
                )));
            }
            Ok(Server {
                mariadb: version.contains("MariaDB"),
                no_backslash_escapes: mode
                    .split(',')
                    .any(|m| m.eq_ignore_ascii_case("NO_BACKSLASH_ESCAPES")),
            })
        }
        Ok(None) => Err(my("SELECT VERSION() returned nothing")),
        Err(Some(e)) => Err(my(format!("SELECT VERSION() failed: {}", describe(&e)))),
        Err(None) => Err(my(format!("SELECT VERSION(): {}", no_answer(t.timeout)))),
    }
}
