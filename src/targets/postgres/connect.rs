//! Logging in: TCP, TLS (`shared::tls_client_config`) and authentication within the
//! target's timeout, never answering a request for the password in clear text or as an
//! MD5 hash.

use super::config::PostgresTarget;
use super::pg;
use super::secret::Login;
use super::sql::{describe, PgFailure};
use crate::rotation::target::TargetError;
use crate::targets::shared::tls_client_config;
use secrecy::ExposeSecret;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::{ChannelBinding, SslMode};
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::Client;
use tokio_postgres_rustls::MakeRustlsConnect;

pub(super) async fn connect(login: &Login, t: &PostgresTarget) -> Result<Client, TargetError> {
    connect_raw(login, t).await.map_err(|f| {
        pg(format!(
            "cannot log in as \"{}\" at {}:{}: {}",
            login.user, login.host, login.port, f.text
        ))
    })
}

/// Logs in (TCP, TLS and authentication all within the target's timeout); the
/// connection runs on its own task until the client is dropped.
pub(super) async fn connect_raw(login: &Login, t: &PostgresTarget) -> Result<Client, PgFailure> {
    let fail = |text: String| PgFailure { auth: false, text };
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(&login.host)
        .port(login.port)
        .dbname(&login.dbname)
        .user(&login.user)
        .password(login.password.expose_secret().as_bytes())
        .application_name("secret-rotator");
    let verify = match t.sslmode {
        crate::targets::shared::SslMode::Disable => None,
        mode => Some(mode),
    };
    let limit = t.timeout;
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect((login.host.as_str(), login.port))
            .await
            .map_err(|e| fail(format!("cannot connect: {e}")))?;
        let _ = tcp.set_nodelay(true);
        match verify {
            None => {
                // No TLS: only SCRAM (or no password at all) may be answered.
                cfg.ssl_mode(SslMode::Disable)
                    .channel_binding(ChannelBinding::Disable);
                let stream = NoClearAuth::new(tcp);
                let (client, conn) = cfg
                    .connect_raw(stream, tokio_postgres::NoTls)
                    .await
                    .map_err(|e| PgFailure::from(&e))?;
                spawn_connection(conn);
                Ok(client)
            }
            Some(v) => {
                // TLS: SCRAM bound to this TLS channel (a relaying middle-man fails), so
                // no cleartext or MD5 method either.
                cfg.ssl_mode(SslMode::Require)
                    .channel_binding(ChannelBinding::Require);
                let mut tls = MakeRustlsConnect::new(std::sync::Arc::unwrap_or_clone(
                    tls_client_config(v, t.ca_file.as_deref()).map_err(fail)?,
                ));
                let connector =
                    <MakeRustlsConnect as MakeTlsConnect<tokio::net::TcpStream>>::make_tls_connect(
                        &mut tls,
                        &login.host,
                    )
                    .map_err(|e| fail(format!("TLS setup: {e}")))?;
                let (client, conn) = cfg
                    .connect_raw(tcp, connector)
                    .await
                    .map_err(|e| PgFailure::from(&e))?;
                spawn_connection(conn);
                Ok(client)
            }
        }
    };
    match tokio::time::timeout(limit, attempt).await {
        Ok(r) => r,
        Err(_) => Err(fail(format!(
            "no answer within {}",
            crate::config::duration::format(limit)
        ))),
    }
}

pub(super) fn spawn_connection<F>(conn: F)
where
    F: Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %describe(&e), "postgres connection ended");
        }
    });
}

/// A plain-text connection that refuses, before the driver can answer it, a server's
/// request for the password in clear text (AuthenticationCleartextPassword) or as an
/// MD5 hash (which logs in as well as the password does).
pub(super) struct NoClearAuth<S> {
    inner: S,
    scan: AuthScan,
}

impl<S> NoClearAuth<S> {
    fn new(inner: S) -> Self {
        Self {
            inner,
            scan: AuthScan::default(),
        }
    }
}

/// Follows the server's messages until authentication is over.
#[derive(Debug)]
pub(super) enum AuthScan {
    /// Reading a message header: type byte and length.
    Header { buf: [u8; 5], have: usize },
    /// Reading an `R` message: its 4-byte code first, then skipping the rest.
    Auth {
        left: usize,
        code: [u8; 4],
        have: usize,
    },
    /// Authentication is over: pass everything through.
    Done,
}

impl Default for AuthScan {
    fn default() -> Self {
        AuthScan::Header {
            buf: [0; 5],
            have: 0,
        }
    }
}

const AUTH_OK: u32 = 0;
const AUTH_CLEARTEXT: u32 = 3;
const AUTH_MD5: u32 = 5;

impl AuthScan {
    fn feed(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        while !data.is_empty() {
            match self {
                AuthScan::Done => return Ok(()),
                AuthScan::Header { buf, have } => {
                    let n = (5 - *have).min(data.len());
                    buf[*have..*have + n].copy_from_slice(&data[..n]);
                    *have += n;
                    data = &data[n..];
                    if *have == 5 {
                        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
                        *self = if buf[0] == b'R' && len >= 8 {
                            AuthScan::Auth {
                                left: len - 4,
                                code: [0; 4],
                                have: 0,
                            }
                        } else {
                            // An error or the first post-authentication message.
                            AuthScan::Done
                        };
                    }
                }
                AuthScan::Auth { left, code, have } => {
                    if *have < 4 {
                        let n = (4 - *have).min(data.len());
                        code[*have..*have + n].copy_from_slice(&data[..n]);
                        *have += n;
                        *left -= n;
                        data = &data[n..];
                        if *have == 4 {
                            let c = u32::from_be_bytes(*code);
                            if c == AUTH_CLEARTEXT || c == AUTH_MD5 {
                                return Err(std::io::Error::new(
                                    std::io::ErrorKind::PermissionDenied,
                                    format!(
                                        "the server asked for the password {}; refused (configure scram-sha-256 in pg_hba.conf)",
                                        if c == AUTH_MD5 { "as an MD5 hash" } else { "in clear text" }
                                    ),
                                ));
                            }
                        }
                    } else {
                        let n = (*left).min(data.len());
                        *left -= n;
                        data = &data[n..];
                    }
                    if *have == 4 && *left == 0 {
                        *self = if u32::from_be_bytes(*code) == AUTH_OK {
                            AuthScan::Done
                        } else {
                            AuthScan::default()
                        };
                    }
                }
            }
        }
        Ok(())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for NoClearAuth<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let r = this.scan.feed(&buf.filled()[before..]);
                if r.is_err() {
                    // The driver never sees the request.
                    buf.set_filled(before);
                }
                Poll::Ready(r)
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for NoClearAuth<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth_request(code: u32) -> Vec<u8> {
        let mut m = vec![b'R'];
        m.extend_from_slice(&8u32.to_be_bytes());
        m.extend_from_slice(&code.to_be_bytes());
        m
    }

    #[test]
    fn cleartext_and_md5_requests_are_refused_in_any_split() {
        for code in [AUTH_CLEARTEXT, AUTH_MD5] {
            let msg = auth_request(code);
            for cut in 0..=msg.len() {
                let mut s = AuthScan::default();
                let r = s.feed(&msg[..cut]).and_then(|_| s.feed(&msg[cut..]));
                assert!(r.is_err(), "code {code} cut at {cut}");
            }
        }
        // SASL (10 with a body), continue (11), final (12), ok (0), then anything goes.
        let mut sasl = vec![b'R'];
        let body = b"SCRAM-SHA-256\0\0";
        sasl.extend_from_slice(&(8 + body.len() as u32).to_be_bytes());
        sasl.extend_from_slice(&10u32.to_be_bytes());
        sasl.extend_from_slice(body);
        let mut all = sasl;
        all.extend(auth_request(12));
        all.extend(auth_request(AUTH_OK));
        all.extend(auth_request(AUTH_CLEARTEXT)); // after authentication: data, not a request
        for cut in 0..=all.len() {
            let mut s = AuthScan::default();
            assert!(
                s.feed(&all[..cut])
                    .and_then(|_| s.feed(&all[cut..]))
                    .is_ok(),
                "cut {cut}"
            );
        }
    }
}
