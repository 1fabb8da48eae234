#![forbid(unsafe_code)]
//! fault-proxy: forwards HTTP requests to an upstream (moto) and injects the faults AWS
//! clients must survive: throttling (400 ThrottlingException), server errors (500),
//! added latency, connections dropped before forwarding, and connections dropped after
//! forwarding (the request took effect, the client never hears: retries must be
//! idempotent). Faults are drawn from a seeded generator so runs repeat.
//!
//!   fault-proxy --upstream http://127.0.0.1:5000 [--listen 127.0.0.1:0] [--throttle-rate 0.3]
//!               [--error-rate 0.1] [--drop-rate 0.05] [--drop-after-rate 0.05] [--latency-ms 20] [--seed 1]
//! Prints `fault-proxy listening on http://ADDR` first. `GET /_proxy/stats` returns counts.

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Parser, Debug, Clone)]
struct Args {
    #[arg(long)]
    upstream: String,
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    #[arg(long, default_value_t = 0.0)]
    throttle_rate: f64,
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Close the connection without forwarding.
    #[arg(long, default_value_t = 0.0)]
    drop_rate: f64,
    /// Forward, then close the connection without answering.
    #[arg(long, default_value_t = 0.0)]
    drop_after_rate: f64,
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Default)]
struct Stats {
    forwarded: AtomicU64,
    throttled: AtomicU64,
    errors: AtomicU64,
    dropped: AtomicU64,
    dropped_after: AtomicU64,
}

/// xorshift64*: small, seeded, good enough to pick faults.
struct Rng(u64);
impl Rng {
    fn unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

enum Fault {
    None,
    Throttle,
    Error,
    Drop,
    DropAfter,
}

struct Proxy {
    args: Args,
    rng: Mutex<Rng>,
    stats: Stats,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

impl Proxy {
    fn pick(&self) -> Fault {
        let r = self.rng.lock().map(|mut g| g.unit()).unwrap_or(1.0);
        let a = &self.args;
        let mut edge = a.throttle_rate;
        if r < edge {
            return Fault::Throttle;
        }
        edge += a.error_rate;
        if r < edge {
            return Fault::Error;
        }
        edge += a.drop_rate;
        if r < edge {
            return Fault::Drop;
        }
        edge += a.drop_after_rate;
        if r < edge {
            return Fault::DropAfter;
        }
        Fault::None
    }
}

fn aws_error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    let body = format!(r#"{{"__type":"{code}","message":"{message}"}}"#);
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amzn-requestid", "fault-proxy")
        .header("x-amzn-errortype", code)
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

/// `Err(())` means: drop the connection.
async fn handle(
    p: Arc<Proxy>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    if req.uri().path() == "/_proxy/stats" {
        let s = &p.stats;
        let body = format!(
            r#"{{"forwarded":{},"throttled":{},"errors":{},"dropped":{},"dropped_after":{}}}"#,
            s.forwarded.load(Ordering::Relaxed),
            s.throttled.load(Ordering::Relaxed),
            s.errors.load(Ordering::Relaxed),
            s.dropped.load(Ordering::Relaxed),
            s.dropped_after.load(Ordering::Relaxed)
        );
        return Ok(Response::new(Full::new(Bytes::from(body))));
    }
    if p.args.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(p.args.latency_ms)).await;
    }
    let fault = p.pick();
    match fault {
        Fault::Throttle => {
            p.stats.throttled.fetch_add(1, Ordering::Relaxed);
            return Ok(aws_error(
                StatusCode::BAD_REQUEST,
                "ThrottlingException",
                "Rate exceeded",
            ));
        }
        Fault::Error => {
            p.stats.errors.fetch_add(1, Ordering::Relaxed);
            return Ok(aws_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServiceError",
                "injected server error",
            ));
        }
        Fault::Drop => {
            p.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return Err(std::io::Error::other("dropped"));
        }
        _ => {}
    }
    let (parts, body) = req.into_parts();
    let bytes = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    let path = parts
        .uri
        .path_and_query()
        .map(|x| x.as_str())
        .unwrap_or("/");
    let uri: hyper::Uri = format!("{}{}", p.args.upstream.trim_end_matches('/'), path)
        .parse()
        .map_err(std::io::Error::other)?;
    let mut up = Request::builder().method(parts.method).uri(uri);
    for (k, v) in parts.headers.iter() {
        up = up.header(k, v);
    }
    let up = up.body(Full::new(bytes)).map_err(std::io::Error::other)?;
    let resp = p.client.request(up).await.map_err(std::io::Error::other)?;
    p.stats.forwarded.fetch_add(1, Ordering::Relaxed);
    if let Fault::DropAfter = fault {
        p.stats.dropped_after.fetch_add(1, Ordering::Relaxed);
        return Err(std::io::Error::other("dropped after forwarding"));
    }
    let (parts, body) = resp.into_parts();
    let bytes = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    Ok(Response::from_parts(parts, Full::new(bytes)))
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("fault-proxy: cannot listen on {}: {e}", args.listen);
            std::process::exit(69);
        }
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    println!("fault-proxy listening on http://{addr}");
    let _ = std::io::stdout().flush();
    let proxy = Arc::new(Proxy {
        rng: Mutex::new(Rng(args.seed.max(1))),
        args,
        stats: Stats::default(),
        client: Client::builder(TokioExecutor::new()).build_http(),
    });
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let p = proxy.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(p.clone(), req));
                    // An Err from the handler aborts the connection: that is the drop fault.
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
}
