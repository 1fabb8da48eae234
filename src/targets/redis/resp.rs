//! Just enough of the Redis protocol (RESP2) for `AUTH`, `PING`, `ACL`, `CONFIG` and
//! `INFO`: commands as arrays of bulk strings, replies read with bounds (a hostile server
//! cannot make it allocate without limit or recurse deeply: each item and the whole reply
//! are bounded), every call within the target's timeout.

use super::config::RedisTarget;
use crate::targets::shared::{no_answer, tls_client_config, SslMode};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// Largest bulk string or line accepted (ACL GETUSER answers are small).
const MAX_BULK: usize = 1 << 20;
/// Largest whole reply, counting what it makes us allocate (an array's slots included):
/// `INFO` is a few KiB, `ACL GETUSER` less.
const MAX_REPLY: usize = 4 << 20;
const MAX_ITEMS: usize = 10_000;
const MAX_DEPTH: usize = 4;

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

impl Reply {
    pub(super) fn text(&self) -> Option<String> {
        match self {
            Reply::Status(s) => Some(s.clone()),
            Reply::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub(super) struct Conn {
    io: BufReader<Box<dyn Io>>,
    limit: std::time::Duration,
}

impl Conn {
    /// TCP (and TLS unless `sslmode = "disable"`) to the configured server.
    pub(super) async fn open(t: &RedisTarget) -> Result<Self, String> {
        let attempt = async {
            let tcp = tokio::net::TcpStream::connect((t.host.as_str(), t.port))
                .await
                .map_err(|e| format!("cannot connect: {e}"))?;
            let _ = tcp.set_nodelay(true);
            let io: Box<dyn Io> = match t.sslmode {
                SslMode::Disable => Box::new(tcp),
                mode => {
                    let config = tls_client_config(mode, t.ca_file.as_deref())?;
                    let name = rustls::pki_types::ServerName::try_from(t.host.clone())
                        .map_err(|e| format!("TLS: {e}"))?;
                    let tls = tokio_rustls::TlsConnector::from(config)
                        .connect(name, tcp)
                        .await
                        .map_err(|e| format!("TLS: {e}"))?;
                    Box::new(tls)
                }
            };
            Ok(Self {
                io: BufReader::new(io),
                limit: t.timeout,
            })
        };
        match tokio::time::timeout(t.timeout, attempt).await {
            Ok(r) => r,
            Err(_) => Err(no_answer(t.timeout)),
        }
    }

    /// Sends one command and reads its reply. `Err` is a transport failure or a
    /// malformed reply; a server error is `Ok(Reply::Error)`.
    pub(super) async fn call(&mut self, args: &[&[u8]]) -> Result<Reply, String> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        let limit = self.limit;
        let mut budget = MAX_REPLY;
        let run = async {
            self.io
                .get_mut()
                .write_all(&out)
                .await
                .map_err(|e| format!("write: {e}"))?;
            self.io
                .get_mut()
                .flush()
                .await
                .map_err(|e| format!("write: {e}"))?;
            read_reply(&mut self.io, 0, &mut budget).await
        };
        let r = tokio::time::timeout(limit, run).await;
        // The command may hold a password: zero our copy.
        zeroize::Zeroize::zeroize(&mut out);
        match r {
            Ok(r) => r,
            Err(_) => Err(no_answer(limit)),
        }
    }
}

/// Takes `n` bytes from what the rest of the reply may still use.
fn spend(budget: &mut usize, n: usize) -> Result<(), String> {
    *budget = budget
        .checked_sub(n)
        .ok_or_else(|| format!("reply too large (over {} MiB)", MAX_REPLY >> 20))?;
    Ok(())
}

async fn read_line<R: AsyncBufReadExt + Unpin>(
    r: &mut R,
    budget: &mut usize,
) -> Result<String, String> {
    let mut line = Vec::new();
    let n = (&mut *r)
        .take(MAX_BULK as u64 + 2)
        .read_until(b'\n', &mut line)
        .await
        .map_err(|e| format!("read: {e}"))?;
    if n == 0 {
        return Err("the server closed the connection".into());
    }
    spend(budget, n)?;
    if !line.ends_with(b"\r\n") {
        return Err("malformed reply (line too long or unterminated)".into());
    }
    line.truncate(line.len() - 2);
    Ok(String::from_utf8_lossy(&line).into_owned())
}

fn read_reply<'a, R: AsyncBufReadExt + Unpin + Send>(
    r: &'a mut R,
    depth: usize,
    budget: &'a mut usize,
) -> futures::future::BoxFuture<'a, Result<Reply, String>> {
    Box::pin(async move {
        let line = read_line(r, budget).await?;
        let (kind, rest) = line.split_at(line.chars().next().map_or(0, char::len_utf8));
        let count = |s: &str| -> Result<i64, String> {
            s.parse::<i64>().map_err(|_| "malformed reply (bad length)".to_string())
        };
        match kind {
            "+" => Ok(Reply::Status(rest.to_owned())),
            "-" => Ok(Reply::Error(rest.to_owned())),
            ":" => Ok(Reply::Int(count(rest)?)),
            "$" => {
                let n = count(rest)?;
                if n < 0 {
                    return Ok(Reply::Bulk(None));
                }
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                if n > MAX_BULK {
                    return Err("reply too large".into());
                }
                spend(budget, n + 2)?;
                let mut buf = vec![0u8; n + 2];
                r.read_exact(&mut buf)
                    .await
                    .map_err(|e| format!("read: {e}"))?;
                if !buf.ends_with(b"\r\n") {
                    return Err("malformed reply (bulk string)".into());
                }
                buf.truncate(n);
                Ok(Reply::Bulk(Some(buf)))
            }
            "*" => {
                let n = count(rest)?;
                if n < 0 {
                    return Ok(Reply::Array(None));
                }
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                if n > MAX_ITEMS || depth >= MAX_DEPTH {
                    return Err("reply too large or too deep".into());
                }
                spend(budget, n * std::mem::size_of::<Reply>())?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(read_reply(r, depth + 1, &mut *budget).await?);
                }
                Ok(Reply::Array(Some(items)))
            }
            _ => Err("malformed reply (not RESP2)".into()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(bytes: &[u8]) -> Result<Reply, String> {
        let mut r = BufReader::new(bytes);
        let mut budget = MAX_REPLY;
        read_reply(&mut r, 0, &mut budget).await
    }

    #[tokio::test]
    async fn replies_are_read_with_bounds() {
        assert_eq!(parse(b"+OK\r\n").await, Ok(Reply::Status("OK".into())));
        assert_eq!(parse(b"-ERR x\r\n").await, Ok(Reply::Error("ERR x".into())));
        assert_eq!(parse(b":5\r\n").await, Ok(Reply::Int(5)));
        assert_eq!(parse(b"$-1\r\n").await, Ok(Reply::Bulk(None)));
        assert_eq!(
            parse(b"*2\r\n$2\r\nhi\r\n*1\r\n:1\r\n").await,
            Ok(Reply::Array(Some(vec![
                Reply::Bulk(Some(b"hi".to_vec())),
                Reply::Array(Some(vec![Reply::Int(1)]))
            ])))
        );
        for bad in [
            &b""[..],
            b"+OK",
            b"?x\r\n",
            b"$99999999999\r\n",
            b"*99999999\r\n",
            b"$2\r\nabc\r\n",
            b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
            b":x\r\n",
            b"\xff\r\n",
        ] {
            assert!(parse(bad).await.is_err(), "{bad:?}");
        }
        // Each item within its bound, the whole over the total one.
        let item = format!("${}\r\n{}\r\n", MAX_BULK, "x".repeat(MAX_BULK));
        let huge = format!("*5\r\n{}", item.repeat(5));
        assert!(parse(huge.as_bytes()).await.is_err());
        let fine = format!("*3\r\n{}", item.repeat(3));
        assert!(parse(fine.as_bytes()).await.is_ok());
    }
}
