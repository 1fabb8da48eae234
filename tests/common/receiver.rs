//! A tiny HTTP/1.1 receiver for the notification tests: records every request (method,
//! path, headers, body, when it came) and answers 200, or 503 for the first N requests;
//! it can also start late (its port closed until then: a sink that is down).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: SystemTime,
    pub instant: Instant,
    /// The status it was answered with.
    pub status: u16,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub struct Receiver {
    pub port: u16,
    seen: Arc<Mutex<Vec<Request>>>,
}

impl Receiver {
    /// Listening now; the first `fail_first` requests get 503.
    pub fn start(fail_first: usize) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().unwrap().port();
        Self::serve(l, port, fail_first)
    }

    /// Listening on `port` only after `delay` (connections are refused until then).
    pub fn start_later(port: u16, delay: Duration, fail_first: usize) -> Self {
        let seen: Arc<Mutex<Vec<Request>>> = Arc::default();
        let s = seen.clone();
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            let l = TcpListener::bind(("127.0.0.1", port)).expect("bind the late receiver");
            accept(l, s, fail_first);
        });
        Self { port, seen }
    }

    fn serve(l: TcpListener, port: u16, fail_first: usize) -> Self {
        let seen: Arc<Mutex<Vec<Request>>> = Arc::default();
        let s = seen.clone();
        std::thread::spawn(move || accept(l, s, fail_first));
        Self { port, seen }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.seen.lock().unwrap().clone()
    }

    /// Every body received, as one string (the leak checks).
    pub fn all_text(&self) -> String {
        self.requests()
            .iter()
            .map(|r| {
                let h: Vec<String> = r.headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                format!("{} {}\n{}\n{}\n", r.method, r.path, h.join("\n"), r.text())
            })
            .collect()
    }

    /// Waits until `f` accepts the requests answered 200 so far; returns them.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        f: impl Fn(&[Request]) -> bool,
    ) -> Vec<Request> {
        let start = Instant::now();
        loop {
            let ok: Vec<Request> = self
                .requests()
                .into_iter()
                .filter(|r| r.status == 200)
                .collect();
            if f(&ok) {
                return ok;
            }
            assert!(
                start.elapsed() < timeout,
                "timed out waiting for {what}; received: {:#?}",
                self.requests()
                    .iter()
                    .map(|r| (r.status, r.path.clone(), r.text()))
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn accept(l: TcpListener, seen: Arc<Mutex<Vec<Request>>>, fail_first: usize) {
    for stream in l.incoming().flatten() {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let mut w = stream.try_clone().expect("clone");
            let mut r = BufReader::new(stream);
            // Keep-alive: several requests may come on one connection.
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or_default().to_owned();
                let path = parts.next().unwrap_or_default().to_owned();
                let mut headers = Vec::new();
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap_or(0) == 0 {
                        return;
                    }
                    let h = h.trim_end();
                    if h.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                    }
                }
                let len: usize = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0u8; len];
                if r.read_exact(&mut body).is_err() {
                    return;
                }
                let status = {
                    let mut s = seen.lock().unwrap();
                    let status = if s.len() < fail_first { 503 } else { 200 };
                    s.push(Request {
                        method,
                        path,
                        headers,
                        body,
                        at: SystemTime::now(),
                        instant: Instant::now(),
                        status,
                    });
                    status
                };
                let reason = if status == 200 {
                    "OK"
                } else {
                    "Service Unavailable"
                };
                let _ = write!(
                    w,
                    "HTTP/1.1 {status} {reason}\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
                );
                let _ = w.flush();
            }
        });
    }
}
