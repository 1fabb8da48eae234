//! `[[notify]]`: where rotation events go. Each table is checked as it is read; the
//! secret and group names of its filters are checked once every file is read (they may
//! be in a later file). Header values are never quoted in an error (often credentials).

use super::super::error::{ConfigError, Location, SourceMap};
use super::super::raw::{RawNotify, S};
use super::super::{NotifyConfig, NotifyHeaders, NotifySink, SecretConfig, NOTIFY_RETRY_CAP};
use super::{valid_name, valid_region, Validator};
use crate::ids::{GroupName, Region, RoleArn, SecretName};
use crate::notify::EventKind;
use std::collections::HashSet;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

/// A `[[notify]]` as read, with where each filter name was written.
pub(in crate::config) struct PendingNotify {
    pub notify: NotifyConfig,
    pub secret_at: Vec<Location>,
    pub group_at: Vec<Location>,
}

const KINDS: &str = "\"webhook\", \"slack\", \"sns\", \"change-record\"";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_RETRY_INITIAL: Duration = Duration::from_secs(2);
const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// Headers the sinks set themselves (a table may not replace them).
const RESERVED_HEADERS: [&str; 6] = [
    "content-type",
    "content-length",
    "host",
    "user-agent",
    "transfer-encoding",
    "connection",
];

impl Validator<'_> {
    pub fn notify(
        &mut self,
        src: &SourceMap<'_>,
        span: Range<usize>,
        raw: RawNotify,
        dropped: &[String],
    ) {
        let before = self.errors.len();
        let label = match &raw.name {
            Some(n) => format!("notify[{}]", n.get_ref()),
            None => "notify".to_owned(),
        };
        let k = |key: &str| format!("{label}.{key}");
        let missing = |v: &mut Self, key: &str, what: &str| {
            if !dropped.iter().any(|d| d == key) {
                v.err(
                    src,
                    span.clone(),
                    &k(key),
                    format!("missing required key `{key}` ({what})"),
                );
            }
        };
        let name = match &raw.name {
            None => {
                missing(
                    self,
                    "name",
                    "a unique name for the sink, used in the notification metrics' `sink` label",
                );
                None
            }
            Some(n) if !valid_name(n.get_ref()) => {
                let msg = format!(
                    "\"{}\" is not a valid sink name (1 to 128 of A-Z a-z 0-9 _ . -)",
                    n.get_ref()
                );
                self.err(src, n.span(), &k("name"), msg);
                None
            }
            Some(n) => {
                if let Some(first) = self.notify_names.get(n.get_ref()).cloned() {
                    let msg = format!("duplicate sink name \"{}\" (also defined at {first}; names must be unique)", n.get_ref());
                    self.err(src, n.span(), &k("name"), msg);
                } else {
                    self.notify_names
                        .insert(n.get_ref().clone(), src.location(n.span().start));
                }
                Some(n.get_ref().clone())
            }
        };

        // Which keys belong to which kind: a key of another kind is an error naming it.
        let kind = raw.kind.as_ref().map(|k| k.get_ref().as_str());
        let own: &[&str] = match kind {
            Some("webhook") => &["url", "secret_env", "headers"],
            Some("slack") => &["url"],
            Some("sns") => &["topic_arn", "role_arn", "endpoint"],
            Some("change-record") => &["open_url", "close_url", "secret_env", "headers"],
            _ => &[],
        };
        if let Some(kind_name) = kind.filter(|_| !own.is_empty()) {
            let present: [(&str, Option<Range<usize>>); 8] = [
                ("url", raw.url.as_ref().map(S::span)),
                ("secret_env", raw.secret_env.as_ref().map(S::span)),
                ("headers", raw.headers.as_ref().map(S::span)),
                ("topic_arn", raw.topic_arn.as_ref().map(S::span)),
                ("role_arn", raw.role_arn.as_ref().map(S::span)),
                ("endpoint", raw.endpoint.as_ref().map(S::span)),
                ("open_url", raw.open_url.as_ref().map(S::span)),
                ("close_url", raw.close_url.as_ref().map(S::span)),
            ];
            for (key, at) in present {
                if let Some(at) = at {
                    if !own.contains(&key) {
                        let msg = format!(
                            "`{key}` does not apply to kind = \"{kind_name}\" (its keys: {})",
                            own.join(", ")
                        );
                        self.err(src, at, &k(key), msg);
                    }
                }
            }
        }

        let sink = match (&raw.kind, kind) {
            (None, _) => {
                missing(self, "kind", &format!("one of {KINDS}"));
                None
            }
            (Some(_), Some("webhook")) => {
                let url = self.notify_url(
                    src,
                    &k("url"),
                    raw.url.as_ref(),
                    span.clone(),
                    "the URL events are POSTed to",
                    dropped,
                );
                let secret_env = self.env_name(src, &k("secret_env"), raw.secret_env.as_ref());
                let headers = self.headers(src, &k("headers"), raw.headers.as_ref());
                url.map(|url| NotifySink::Webhook {
                    url,
                    secret_env,
                    headers,
                })
            }
            (Some(_), Some("slack")) => self
                .notify_url(
                    src,
                    &k("url"),
                    raw.url.as_ref(),
                    span.clone(),
                    "the Slack incoming-webhook URL",
                    dropped,
                )
                .map(|url| NotifySink::Slack { url }),
            (Some(_), Some("sns")) => {
                let role_arn = raw.role_arn.as_ref().and_then(|r| {
                    if super::valid_role_arn(r.get_ref()) {
                        Some(RoleArn::new(r.get_ref().as_str()))
                    } else {
                        let msg = format!("\"{}\" is not an IAM role ARN (expected arn:aws:iam::123456789012:role/NAME)", r.get_ref());
                        self.err(src, r.span(), &k("role_arn"), msg);
                        None
                    }
                });
                let endpoint = raw.endpoint.as_ref().and_then(|e| {
                    self.check_url(src, &k("endpoint"), e)
                        .then(|| e.get_ref().clone())
                });
                match &raw.topic_arn {
                    None => {
                        missing(
                            self,
                            "topic_arn",
                            "the SNS topic's ARN, arn:aws:sns:REGION:ACCOUNT:NAME",
                        );
                        None
                    }
                    Some(t) if t.get_ref().ends_with(".fifo") => {
                        let msg = format!("\"{}\" is a FIFO topic, which needs a message group id on every publish; use a standard topic (each sink already delivers its events in order)", t.get_ref());
                        self.err(src, t.span(), &k("topic_arn"), msg);
                        None
                    }
                    Some(t) => match topic_region(t.get_ref()) {
                        Some(region) => Some(NotifySink::Sns {
                            topic_arn: t.get_ref().clone(),
                            region: Region::new(region),
                            role_arn,
                            endpoint,
                        }),
                        None => {
                            let msg = format!("\"{}\" is not an SNS topic ARN (expected arn:aws:sns:REGION:ACCOUNT:NAME, e.g. arn:aws:sns:eu-west-1:123456789012:rotations)", t.get_ref());
                            self.err(src, t.span(), &k("topic_arn"), msg);
                            None
                        }
                    },
                }
            }
            (Some(_), Some("change-record")) => {
                let open = self.notify_url(
                    src,
                    &k("open_url"),
                    raw.open_url.as_ref(),
                    span.clone(),
                    "the URL a change record is opened with when a rotation starts",
                    dropped,
                );
                let close = self.notify_url(
                    src,
                    &k("close_url"),
                    raw.close_url.as_ref(),
                    span.clone(),
                    "the URL the change record is closed with when the rotation ends",
                    dropped,
                );
                let secret_env = self.env_name(src, &k("secret_env"), raw.secret_env.as_ref());
                let headers = self.headers(src, &k("headers"), raw.headers.as_ref());
                match (open, close) {
                    (Some(open_url), Some(close_url)) => Some(NotifySink::ChangeRecord {
                        open_url,
                        close_url,
                        secret_env,
                        headers,
                    }),
                    _ => None,
                }
            }
            (Some(kv), Some(other)) => {
                let msg = format!("unknown sink kind \"{other}\" (allowed: {KINDS})");
                self.err(src, kv.span(), &k("kind"), msg);
                None
            }
            (Some(_), None) => None,
        };

        let mut events = Vec::new();
        match &raw.events {
            None => events.extend(EventKind::ALL),
            Some(list) => {
                for e in list.get_ref() {
                    match EventKind::parse(e.get_ref()) {
                        Some(kind) if !events.contains(&kind) => events.push(kind),
                        Some(_) => {
                            let msg = format!("\"{}\" is listed twice", e.get_ref());
                            self.err(src, e.span(), &k("events"), msg);
                        }
                        None => {
                            let allowed: Vec<String> = EventKind::ALL
                                .iter()
                                .map(|k| format!("\"{}\"", k.label()))
                                .collect();
                            let msg = format!(
                                "unknown event kind \"{}\" (allowed: {})",
                                e.get_ref(),
                                allowed.join(", ")
                            );
                            self.err(src, e.span(), &k("events"), msg);
                        }
                    }
                }
                if list.get_ref().is_empty() {
                    self.err(
                        src,
                        list.span(),
                        &k("events"),
                        "an empty list delivers nothing (leave `events` out to deliver every kind)",
                    );
                }
            }
        }
        let (secrets, secret_at) = names(self, src, &k("secrets"), raw.secrets.as_ref());
        let (groups, group_at) = names(self, src, &k("groups"), raw.groups.as_ref());
        let timeout = match &raw.timeout {
            None => DEFAULT_TIMEOUT,
            Some(t) => self
                .duration(
                    src,
                    &k("timeout"),
                    t,
                    Duration::from_secs(1),
                    Duration::from_secs(120),
                )
                .unwrap_or(DEFAULT_TIMEOUT),
        };
        let retry_initial = match &raw.retry_initial {
            None => DEFAULT_RETRY_INITIAL,
            Some(t) => self
                .duration(
                    src,
                    &k("retry_initial"),
                    t,
                    Duration::from_secs(1),
                    NOTIFY_RETRY_CAP,
                )
                .unwrap_or(DEFAULT_RETRY_INITIAL),
        };
        let max_attempts = self
            .int_in_range(src, &raw.max_attempts, &k("max_attempts"), 1, 100)
            .map_or(DEFAULT_MAX_ATTEMPTS, |n| n as u32);

        if self.errors.len() != before {
            return;
        }
        if let (Some(name), Some(sink)) = (name, sink) {
            self.notify.push(PendingNotify {
                notify: NotifyConfig {
                    name,
                    sink,
                    events,
                    secrets: secrets.into_iter().map(SecretName::new).collect(),
                    groups: groups.into_iter().map(GroupName::new).collect(),
                    timeout,
                    max_attempts,
                    retry_initial,
                    origin: src.location(span.start),
                },
                secret_at,
                group_at,
            });
        }
    }

    /// A required URL key: http(s), http only to a loopback host.
    #[allow(clippy::too_many_arguments)]
    fn notify_url(
        &mut self,
        src: &SourceMap<'_>,
        key: &str,
        url: Option<&S<String>>,
        table: Range<usize>,
        what: &str,
        dropped: &[String],
    ) -> Option<String> {
        match url {
            None => {
                let short = key.rsplit('.').next().unwrap_or(key);
                if !dropped.iter().any(|d| d == short) {
                    self.err(
                        src,
                        table,
                        key,
                        format!("missing required key `{short}` ({what})"),
                    );
                }
                None
            }
            Some(u) => self.check_url(src, key, u).then(|| u.get_ref().clone()),
        }
    }

    /// Whether `u` is an http(s) URL (http only for loopback); else reports why. The URL
    /// is not quoted: a Slack webhook's path is its credential.
    fn check_url(&mut self, src: &SourceMap<'_>, key: &str, u: &S<String>) -> bool {
        match url_problem(u.get_ref()) {
            None => true,
            Some(p) => {
                self.err(src, u.span(), key, p);
                false
            }
        }
    }

    fn env_name(
        &mut self,
        src: &SourceMap<'_>,
        key: &str,
        v: Option<&S<String>>,
    ) -> Option<String> {
        let v = v?;
        let s = v.get_ref();
        let ok = !s.is_empty()
            && !s.starts_with(|c: char| c.is_ascii_digit())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if ok {
            return Some(s.clone());
        }
        let msg = format!("\"{s}\" is not an environment variable name (A-Z a-z 0-9 _, not starting with a digit; the variable holds the HMAC key, read at start)");
        self.err(src, v.span(), key, msg);
        None
    }

    fn headers(
        &mut self,
        src: &SourceMap<'_>,
        key: &str,
        h: Option<&S<std::collections::BTreeMap<String, S<String>>>>,
    ) -> NotifyHeaders {
        let mut out = Vec::new();
        let Some(h) = h else {
            return NotifyHeaders(out);
        };
        for (name, value) in h.get_ref() {
            let lower = name.to_ascii_lowercase();
            let token = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c));
            if !token {
                let msg = format!(
                    "\"{name}\" is not an HTTP header name (letters, digits and !#$%&'*+-.^_`|~)"
                );
                self.err(src, value.span(), &format!("{key}.{name}"), msg);
            } else if RESERVED_HEADERS.contains(&lower.as_str())
                || lower.starts_with("x-secret-rotator-")
            {
                let msg = format!("\"{name}\" is set by secret-rotator itself (extra headers may not replace Content-Type, Content-Length, Host, User-Agent or X-Secret-Rotator-*)");
                self.err(src, value.span(), &format!("{key}.{name}"), msg);
            } else if value.get_ref().chars().any(|c| c.is_control() && c != '\t')
                || !value.get_ref().is_ascii()
            {
                // The value itself is not quoted: it is often a credential.
                self.err(
                    src,
                    value.span(),
                    &format!("{key}.{name}"),
                    "the value must be printable ASCII (no line breaks or control characters)",
                );
            } else {
                out.push((name.clone(), value.get_ref().clone()));
            }
        }
        NotifyHeaders(out)
    }

    /// Checks the filters' names against the secrets and groups read (every file).
    pub(super) fn finish_notify(&mut self, secrets: &[Arc<SecretConfig>]) -> Vec<NotifyConfig> {
        let known: HashSet<&SecretName> = secrets.iter().map(|s| &s.name).collect();
        let mut out = Vec::new();
        for p in std::mem::take(&mut self.notify) {
            let mut ok = true;
            for (s, at) in p.notify.secrets.iter().zip(&p.secret_at) {
                if !known.contains(s) {
                    self.errors.push(ConfigError {
                        location: at.clone(),
                        key: format!("notify[{}].secrets", p.notify.name),
                        message: format!("no [[secret]] is named \"{s}\" (`secrets` lists the `name` of [[secret]] tables)"),
                    });
                    ok = false;
                }
            }
            for (g, at) in p.notify.groups.iter().zip(&p.group_at) {
                if !self.group_names.contains_key(g.as_str()) {
                    self.errors.push(ConfigError {
                        location: at.clone(),
                        key: format!("notify[{}].groups", p.notify.name),
                        message: format!("no [[group]] is named \"{g}\" (`groups` lists the `name` of [[group]] tables)"),
                    });
                    ok = false;
                }
            }
            if ok {
                out.push(p.notify);
            }
        }
        out
    }
}

/// A list of names (`secrets`, `groups`) and where each is; duplicates are errors.
fn names(
    v: &mut Validator<'_>,
    src: &SourceMap<'_>,
    key: &str,
    list: Option<&S<Vec<S<String>>>>,
) -> (Vec<String>, Vec<Location>) {
    let mut out = Vec::new();
    let mut at = Vec::new();
    for n in list.map(|l| l.get_ref().as_slice()).unwrap_or_default() {
        if out.contains(n.get_ref()) {
            let msg = format!("\"{}\" is listed twice", n.get_ref());
            v.err(src, n.span(), key, msg);
            continue;
        }
        out.push(n.get_ref().clone());
        at.push(src.location(n.span().start));
    }
    (out, at)
}

/// The region of `arn:aws:sns:REGION:ACCOUNT:NAME`, if `arn` is one.
pub(in crate::config) fn topic_region(arn: &str) -> Option<&str> {
    let p: Vec<&str> = arn.split(':').collect();
    let ["arn", partition, "sns", region, account, name] = p.as_slice() else {
        return None;
    };
    let name_ok = (1..=256).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        && (!name.contains('.') || name.ends_with(".fifo"));
    (["aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b"].contains(partition)
        && valid_region(region)
        && account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit())
        && name_ok)
        .then_some(*region)
}

/// Why `url` cannot be a sink URL, or None. Never quotes the URL (a Slack webhook URL's
/// path is its credential).
pub fn url_problem(url: &str) -> Option<String> {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (s.to_ascii_lowercase(), r),
        None => return Some("is not a URL (expected https://HOST/PATH, or http://127.0.0.1:PORT/PATH for a local receiver)".into()),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if scheme != "http" && scheme != "https" {
        return Some(format!(
            "the scheme \"{scheme}\" is not allowed (https, or http to a loopback host)"
        ));
    }
    if !url.is_ascii()
        || url
            .chars()
            .any(|c| c.is_ascii_whitespace() || c.is_ascii_control())
    {
        return Some("has characters a URL cannot carry as they are (non-ASCII, spaces, control characters): percent-encode them".into());
    }
    if authority.is_empty() || authority.contains('@') {
        return Some(if authority.contains('@') {
            "credentials in the URL are not allowed (put them in `headers`)".into()
        } else {
            "the URL has no host".into()
        });
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("the URL contains whitespace or control characters".into());
    }
    let host = if let Some(h) = authority.strip_prefix('[') {
        h.split(']').next().unwrap_or("")
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    if scheme == "http" && !is_loopback(host) {
        return Some(format!("http is allowed only to a loopback host (127.0.0.1, ::1, localhost); \"{host}\" needs https"));
    }
    None
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(url_problem("https://hooks.example.com/x"), None);
        assert_eq!(url_problem("http://127.0.0.1:8080/x"), None);
        assert_eq!(url_problem("http://[::1]:8080/x"), None);
        assert_eq!(url_problem("http://localhost/x"), None);
        assert!(url_problem("http://example.com/x")
            .unwrap()
            .contains("needs https"));
        assert!(url_problem("ftp://example.com/x").is_some());
        assert!(url_problem("https://user:pw@example.com/").is_some());
        assert!(url_problem("example.com").is_some());
    }

    #[test]
    fn topics() {
        assert_eq!(
            topic_region("arn:aws:sns:eu-west-1:123456789012:rotations"),
            Some("eu-west-1")
        );
        assert_eq!(
            topic_region("arn:aws:sns:eu-west-1:123456789012:r.fifo"),
            Some("eu-west-1")
        );
        assert_eq!(topic_region("arn:aws:sqs:eu-west-1:123456789012:r"), None);
        assert_eq!(topic_region("arn:aws:sns:eu-west-1:1234:r"), None);
        assert_eq!(topic_region("rotations"), None);
    }
}
