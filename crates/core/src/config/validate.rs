//! Raw tables -> validated configuration. Every check pushes an error and goes on, so one
//! run reports every problem.

use super::duration;
use super::error::{ConfigError, ConfigErrors, Location, SourceMap};
use super::raw::{RawAws, RawDaemon, RawEvents, RawGenerate, RawHa, RawSecret, RawWindow, S};
use super::target::{self, Registry};
use super::*;
use crate::ids::{ClusterName, Interner, SecretId, ServiceName, StoreRoute};
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use toml::de::DeValue;
use toml::Spanned;

mod groups;
mod notify;
mod stores;

const MIN: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
pub(super) const DAY: Duration = Duration::from_secs(86_400);
/// `stable_timeout` by default, and the bounds of it and of a command consumer's timeout.
const DEFAULT_STABLE_TIMEOUT: Duration = Duration::from_secs(20 * 60);
const MIN_STABLE_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_STABLE_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

pub struct Validator<'r> {
    /// The target kinds a `target` table may name.
    registry: &'r Registry,
    errors: Vec<ConfigError>,
    daemon: DaemonConfig,
    aws: AwsConfig,
    alibaba: AlibabaConfig,
    ibm: IbmConfig,
    /// Where each `[daemon]`/`[aws]` key was first set, to catch one set in two files.
    seen_keys: HashMap<String, Location>,
    /// Secrets validated so far, and their store keys as written, to resolve against
    /// `[aws]`, `[alibaba]`, `[ibm]` at the end.
    secrets: Vec<(Arc<SecretConfig>, stores::Route)>,
    names: HashMap<String, Location>,
    ha: HaConfig,
    events: EventsConfig,
    /// `[ha]` region/role as written (resolved against `[aws]` at the end), and where
    /// `replicas` was set (to point at it when `lock_table` is missing).
    ha_account: (Option<Region>, Option<RoleArn>),
    ha_replicas_at: Option<Location>,
    /// One copy of each region, role, cluster and service name for all secrets.
    interner: Interner,
    /// One copy of each `json_key`.
    json_keys: HashSet<ThinText>,
    /// Shared by every secret without a `generate` table.
    default_generate: Arc<GeneratePolicy>,
    /// `[[group]]`s read so far (members checked at the end) and where each name is.
    groups: Vec<groups::PendingGroup>,
    group_names: HashMap<String, Location>,
    /// `[[notify]]`s read so far (secret and group names checked at the end).
    notify: Vec<notify::PendingNotify>,
    notify_names: HashMap<String, Location>,
}

impl<'r> Validator<'r> {
    pub fn new(registry: &'r Registry) -> Self {
        Self {
            registry,
            errors: Vec::new(),
            daemon: DaemonConfig::default(),
            aws: AwsConfig::default(),
            alibaba: AlibabaConfig::default(),
            ibm: IbmConfig::default(),
            seen_keys: HashMap::new(),
            secrets: Vec::new(),
            names: HashMap::new(),
            ha: HaConfig::default(),
            events: EventsConfig::default(),
            interner: Interner::default(),
            json_keys: HashSet::new(),
            default_generate: Arc::default(),
            ha_account: (None, None),
            ha_replicas_at: None,
            groups: Vec::new(),
            group_names: HashMap::new(),
            notify: Vec::new(),
            notify_names: HashMap::new(),
        }
    }

    pub fn push(&mut self, e: ConfigError) {
        self.errors.push(e);
    }

    fn err(&mut self, src: &SourceMap<'_>, span: Range<usize>, key: &str, msg: impl Into<String>) {
        self.errors.push(src.error(span, key, msg));
    }

    /// An integer setting within `lo..=hi` (small bounds: the result fits every target
    /// type); out of range is reported at its span and yields None.
    fn int_in_range(
        &mut self,
        src: &SourceMap<'_>,
        n: &Option<S<i64>>,
        key: &str,
        lo: i64,
        hi: i64,
    ) -> Option<i64> {
        let n = n.as_ref()?;
        let v = *n.get_ref();
        if (lo..=hi).contains(&v) {
            return Some(v);
        }
        self.err(
            src,
            n.span(),
            key,
            format!("{v} is out of range (allowed {lo} to {hi})"),
        );
        None
    }

    /// Records `[section].key` and reports it when an earlier file set it already.
    fn claim_keys(
        &mut self,
        src: &SourceMap<'_>,
        section: &str,
        keys: Vec<(String, Range<usize>)>,
    ) {
        for (k, span) in keys {
            let full = format!("{section}.{k}");
            let here = src.location(span.start);
            if let Some(first) = self.seen_keys.get(&full) {
                let msg = format!("set again (first set at {first}; each [{section}] key may be set in one file only)");
                self.errors.push(ConfigError {
                    location: here,
                    key: full,
                    message: msg,
                });
            } else {
                self.seen_keys.insert(full, here);
            }
        }
    }

    pub fn daemon(
        &mut self,
        src: &SourceMap<'_>,
        keys: Vec<(String, Range<usize>)>,
        raw: RawDaemon,
    ) {
        self.claim_keys(src, "daemon", keys);
        if let Some(l) = raw.listen {
            match l.get_ref().parse() {
                Ok(a) => self.daemon.listen = a,
                Err(_) => self.err(
                    src,
                    l.span(),
                    "daemon.listen",
                    format!(
                        "\"{}\" is not an address:port (e.g. \"127.0.0.1:9464\" or \"[::1]:9464\")",
                        l.get_ref()
                    ),
                ),
            }
        }
        if let Some(v) = self.int_in_range(
            src,
            &raw.max_concurrent_rotations,
            "daemon.max_concurrent_rotations",
            1,
            1024,
        ) {
            self.daemon.max_concurrent_rotations = v as usize;
        }
        if let Some(v) = self.int_in_range(src, &raw.max_attempts, "daemon.max_attempts", 1, 1000) {
            self.daemon.max_attempts = v as u32;
        }
        if let Some(v) = self.int_in_range(
            src,
            &raw.max_starts_per_minute,
            "daemon.max_starts_per_minute",
            1,
            10_000,
        ) {
            self.daemon.max_starts_per_minute = v as u32;
        }
        let secs = Duration::from_secs;
        let fields = [
            ("daemon.retry_initial", raw.retry_initial, secs(1), DAY),
            ("daemon.retry_max", raw.retry_max, secs(1), 7 * DAY),
            ("daemon.shutdown_grace", raw.shutdown_grace, secs(1), HOUR),
            ("daemon.refresh", raw.refresh, MIN, 7 * DAY),
            ("daemon.step_timeout", raw.step_timeout, secs(10), HOUR),
            // Every redeploy waits this long; more than a minute only delays rotations.
            (
                "daemon.redeploy_coalesce",
                raw.redeploy_coalesce,
                Duration::ZERO,
                MIN,
            ),
        ];
        for (key, value, min, max) in fields {
            let Some(v) = value else { continue };
            let Some(d) = self.duration(src, key, &v, min, max) else {
                continue;
            };
            let slot = match key {
                "daemon.retry_initial" => &mut self.daemon.retry_initial,
                "daemon.retry_max" => &mut self.daemon.retry_max,
                "daemon.shutdown_grace" => &mut self.daemon.shutdown_grace,
                "daemon.step_timeout" => &mut self.daemon.step_timeout,
                "daemon.redeploy_coalesce" => &mut self.daemon.redeploy_coalesce,
                _ => &mut self.daemon.refresh,
            };
            *slot = d;
        }
    }

    pub fn events(
        &mut self,
        src: &SourceMap<'_>,
        keys: Vec<(String, Range<usize>)>,
        raw: RawEvents,
    ) {
        self.claim_keys(src, "events", keys);
        if let Some(u) = raw.queue_url {
            let url = u.get_ref().trim();
            let ok = (url.starts_with("https://") || url.starts_with("http://"))
                && url.len() > "https://".len()
                && !url.chars().any(char::is_whitespace);
            if ok {
                self.events.queue_url = Some(url.to_string());
            } else {
                self.err(
                    src,
                    u.span(),
                    "events.queue_url",
                    format!(
                        "\"{}\" is not an SQS queue URL (e.g. \"https://sqs.eu-west-1.amazonaws.com/111122223333/secret-rotator-events\")",
                        u.get_ref()
                    ),
                );
            }
        }
        if let Some(r) = raw.region {
            self.events.region = self.region(src, "events.region", &r);
        }
        if let Some(v) = raw.safety_poll {
            // At least the waiter's period: faster would poll more than without events.
            let min = crate::rotation::wait::WAITER_PERIOD;
            if let Some(d) = self.duration(src, "events.safety_poll", &v, min, HOUR) {
                self.events.safety_poll = d;
            }
        }
    }

    pub fn aws(&mut self, src: &SourceMap<'_>, keys: Vec<(String, Range<usize>)>, raw: RawAws) {
        self.claim_keys(src, "aws", keys);
        if let Some(r) = raw.region {
            self.aws.region = self.region(src, "aws.region", &r);
        }
        if let Some(p) = raw.profile {
            if p.get_ref().trim().is_empty() {
                self.err(
                    src,
                    p.span(),
                    "aws.profile",
                    "must not be empty (a profile name from ~/.aws/config)",
                );
            } else {
                self.aws.profile = Some(p.into_inner());
            }
        }
        if let Some(r) = raw.role_arn {
            self.aws.role_arn = self.role_arn(src, "aws.role_arn", &r);
        }
    }

    pub fn ha(&mut self, src: &SourceMap<'_>, keys: Vec<(String, Range<usize>)>, raw: RawHa) {
        self.claim_keys(src, "ha", keys);
        if let Some(t) = raw.lock_table {
            if valid_table_name(t.get_ref()) {
                self.ha.lock_table = Some(t.get_ref().clone());
            } else {
                self.err(
                    src,
                    t.span(),
                    "ha.lock_table",
                    format!(
                        "\"{}\" is not a DynamoDB table name (3 to 255 characters: letters, digits, _ . -)",
                        t.get_ref()
                    ),
                );
            }
        }
        if let Some(n) = raw.replicas {
            match u32::try_from(*n.get_ref()) {
                Ok(v) if (1..=100).contains(&v) => {
                    self.ha.replicas = v;
                    self.ha_replicas_at = Some(src.location(n.span().start));
                }
                _ => self.err(
                    src,
                    n.span(),
                    "ha.replicas",
                    format!("{} is out of range (allowed 1 to 100)", n.get_ref()),
                ),
            }
        }
        if let Some(r) = raw.region {
            self.ha_account.0 = self.region(src, "ha.region", &r);
        }
        if let Some(r) = raw.role_arn {
            self.ha_account.1 = self.role_arn(src, "ha.role_arn", &r);
        }
        if let Some(v) = raw.lease_ttl {
            // At least 5s: renewals every third of it must fit several round trips.
            if let Some(d) = self.duration(src, "ha.lease_ttl", &v, Duration::from_secs(5), HOUR) {
                self.ha.lease_ttl = d;
            }
        }
    }

    fn region(&mut self, src: &SourceMap<'_>, key: &str, r: &S<String>) -> Option<Region> {
        self.interned(
            src,
            key,
            r,
            valid_region,
            Region::interned,
            "is not an AWS region code (e.g. \"eu-west-1\", \"us-gov-west-1\")",
        )
    }

    fn role_arn(&mut self, src: &SourceMap<'_>, key: &str, r: &S<String>) -> Option<RoleArn> {
        self.interned(
            src,
            key,
            r,
            valid_role_arn,
            RoleArn::interned,
            "is not an IAM role ARN (expected arn:aws:iam::123456789012:role/NAME)",
        )
    }

    /// `r` as an interned id if `valid` accepts it; else an error: `"r" <what>`.
    fn interned<T>(
        &mut self,
        src: &SourceMap<'_>,
        key: &str,
        r: &S<String>,
        valid: fn(&str) -> bool,
        make: fn(&str, &mut Interner) -> T,
        what: &str,
    ) -> Option<T> {
        if valid(r.get_ref()) {
            return Some(make(r.get_ref(), &mut self.interner));
        }
        self.err(src, r.span(), key, format!("\"{}\" {what}", r.get_ref()));
        None
    }

    fn duration(
        &mut self,
        src: &SourceMap<'_>,
        key: &str,
        v: &S<String>,
        min: Duration,
        max: Duration,
    ) -> Option<Duration> {
        match duration::parse_within(v.get_ref(), min, max) {
            Ok(d) => Some(d),
            Err(m) => {
                self.err(src, v.span(), key, m);
                None
            }
        }
    }

    /// `dropped` names keys that were present but unreadable (already reported): they are
    /// not reported again as missing. `target` is the `target` table, if written, with
    /// the path the loader names it by (see [`target::read`]).
    pub fn secret(
        &mut self,
        src: &SourceMap<'_>,
        span: Range<usize>,
        raw: RawSecret,
        dropped: &[String],
        target: Option<(String, Spanned<DeValue<'_>>)>,
    ) {
        let missing = |key: &str| !dropped.iter().any(|d| d == key);
        let origin = src.location(span.start);
        let errors_before = self.errors.len();
        let label = match &raw.name {
            Some(n) => format!("secret[{}]", n.get_ref()),
            None => "secret".to_owned(),
        };
        let k = |key: &str| format!("{label}.{key}");

        let name = match &raw.name {
            None if !missing("name") => None,
            None => {
                self.err(
                    src,
                    span.clone(),
                    &label,
                    "missing required key `name` (a stable name for logs and metrics)",
                );
                None
            }
            Some(n) if !valid_name(n.get_ref()) => {
                self.err(
                    src,
                    n.span(),
                    &k("name"),
                    format!(
                        "\"{}\" is not a valid name (1 to 128 of A-Z a-z 0-9 _ . -)",
                        n.get_ref()
                    ),
                );
                None
            }
            Some(n) => {
                let here = src.location(n.span().start);
                if let Some(first) = self.names.get(n.get_ref()).cloned() {
                    let msg = format!("duplicate secret name \"{}\" (also defined at {first}; names must be unique)", n.get_ref());
                    self.err(src, n.span(), &k("name"), msg);
                    // Report both places, so whoever reads either finds the other.
                    let back = ConfigError {
                        location: first.clone(),
                        key: k("name"),
                        message: format!(
                            "duplicate secret name \"{}\" (also defined at {here})",
                            n.get_ref()
                        ),
                    };
                    self.errors.push(back);
                } else {
                    self.names.insert(n.get_ref().clone(), here);
                }
                Some(SecretName::new(n.get_ref().clone()))
            }
        };

        let route = self.secret_route(src, &label, &raw, &origin);
        let secret_id = match &raw.secret_id {
            None if !missing("secret_id") => None,
            None => {
                self.err(
                    src,
                    span.clone(),
                    &label,
                    "missing required key `secret_id` (a Secrets Manager secret name or ARN)",
                );
                None
            }
            Some(s) => match stores::check_store_secret_id(route.kind, s.get_ref()) {
                Ok(()) => Some(SecretId::new(s.get_ref().clone())),
                Err(m) => {
                    self.err(src, s.span(), &k("secret_id"), m);
                    None
                }
            },
        };

        let every = match &raw.every {
            None if !missing("every") => None,
            None => {
                self.err(
                    src,
                    span.clone(),
                    &label,
                    "missing required key `every` (the rotation interval, e.g. \"30d\")",
                );
                None
            }
            Some(e) => {
                let allow_short = raw
                    .allow_short_interval
                    .as_ref()
                    .is_some_and(|a| *a.get_ref());
                let min = if allow_short { MIN } else { Duration::ZERO };
                let d = self.duration(src, &k("every"), e, min, 3650 * DAY);
                match d {
                    Some(d) if d < HOUR && !allow_short => {
                        self.err(
                            src,
                            e.span(),
                            &k("every"),
                            if d < MIN {
                                format!("{} is out of range (allowed 1h to 3650d; from 1m with allow_short_interval = true)", e.get_ref())
                            } else {
                                short_interval_message(e.get_ref(), d)
                            },
                        );
                        None
                    }
                    d => d,
                }
            }
        };

        let window = raw
            .window
            .as_ref()
            .and_then(|w| self.window(src, &k("window"), w));

        let jitter = match &raw.jitter {
            None => Some(Duration::ZERO),
            Some(j) => match duration::parse(j.get_ref()) {
                Err(m) => {
                    self.err(src, j.span(), &k("jitter"), m);
                    None
                }
                Ok(d) => {
                    let mut ok = true;
                    if let Some(e) = every {
                        if d >= e {
                            self.err(
                                src,
                                j.span(),
                                &k("jitter"),
                                format!(
                                    "{} must be shorter than `every` ({})",
                                    j.get_ref(),
                                    duration::format(e)
                                ),
                            );
                            ok = false;
                        }
                    }
                    if let Some(w) = &window {
                        if ok && d >= w.duration {
                            self.err(src, j.span(), &k("jitter"), format!(
                                "{} must be shorter than the window duration ({}) so the start stays inside the window",
                                j.get_ref(), duration::format(w.duration)
                            ));
                            ok = false;
                        }
                    }
                    ok.then_some(d)
                }
            },
        };

        let generate = match &raw.generate {
            None => Some(self.default_generate.clone()),
            Some(g) => self
                .generate(src, &k("generate"), g.get_ref(), g.span())
                .map(Arc::new),
        };

        let target = match target {
            None => target::TargetRead {
                target: Some(Target::None),
                makes_value: None,
            },
            Some((read_path, t)) => target::read(
                self.registry,
                &mut self.errors,
                src,
                &k("target"),
                &read_path,
                t,
            ),
        };

        let json_key = match &raw.json_key {
            None => None,
            Some(j) if j.get_ref().is_empty() => {
                self.err(
                    src,
                    j.span(),
                    &k("json_key"),
                    "must not be empty (the key of the JSON secret to rotate)",
                );
                None
            }
            Some(j) => {
                // Judged on the written kind, so it is reported even when the target has
                // other errors.
                if target.makes_value == Some(true) {
                    self.err(
                        src,
                        j.span(),
                        &k("json_key"),
                        "cannot be used with this target kind (it writes its own JSON shape)",
                    );
                }
                let key = j.get_ref().as_str();
                Some(match self.json_keys.get(key) {
                    Some(shared) => shared.clone(),
                    None => {
                        let t = ThinText::from(key);
                        self.json_keys.insert(t.clone());
                        t
                    }
                })
            }
        };

        let json_key_create = match &raw.json_key_create {
            Some(c) if *c.get_ref() && json_key.is_none() && raw.json_key.is_none() => {
                self.err(
                    src,
                    c.span(),
                    &k("json_key_create"),
                    "needs json_key (the key to create)",
                );
                false
            }
            Some(c) => *c.get_ref(),
            None => false,
        };

        let stable_timeout = match &raw.stable_timeout {
            None => Some(DEFAULT_STABLE_TIMEOUT),
            Some(t) => self.duration(
                src,
                &k("stable_timeout"),
                t,
                MIN_STABLE_TIMEOUT,
                MAX_STABLE_TIMEOUT,
            ),
        };

        let redeploy = self.redeploy(src, &label, raw.redeploy.as_ref(), stable_timeout);

        if self.errors.len() != errors_before {
            return;
        }
        if let (
            Some(name),
            Some(id),
            Some(every),
            Some(jitter),
            Some(generate),
            Some(target),
            Some(stable_timeout),
        ) = (
            name,
            secret_id,
            every,
            jitter,
            generate,
            target.target,
            stable_timeout,
        ) {
            let cfg = SecretConfig {
                name,
                secret: SecretRef {
                    id,
                    account: Account::default(),
                    store: Default::default(),
                },
                every: every.into(),
                window: window.map(Box::new),
                jitter: jitter.into(),
                generate,
                json_key,
                json_key_create,
                target,
                redeploy: redeploy.into(),
                stable_timeout: stable_timeout.into(),
                origin,
                group: None,
            };
            self.secrets.push((Arc::new(cfg), route));
        }
    }

    fn window(&mut self, src: &SourceMap<'_>, key: &str, w: &S<RawWindow>) -> Option<Window> {
        let raw = w.get_ref();
        let cron = match croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Disallowed)
            .build()
            .parse(raw.cron.get_ref())
        {
            Ok(c) => Some(c),
            Err(e) => {
                let why = cron_problem(raw.cron.get_ref()).unwrap_or_else(|| e.to_string());
                self.err(src, raw.cron.span(), &format!("{key}.cron"), format!(
                    "invalid cron expression \"{}\": {why} (five fields: minute hour day-of-month month day-of-week, e.g. \"0 2 * * TUE-THU\")",
                    raw.cron.get_ref()
                ));
                None
            }
        };
        let duration = self.duration(
            src,
            &format!("{key}.duration"),
            &raw.duration,
            HOUR,
            31 * DAY,
        );
        let timezone = match &raw.timezone {
            None => Some(chrono_tz::UTC),
            Some(tz) => match tz.get_ref().parse::<chrono_tz::Tz>() {
                Ok(t) => Some(t),
                Err(_) => {
                    self.err(src, tz.span(), &format!("{key}.timezone"), format!(
                        "unknown time zone \"{}\" (an IANA name such as \"Europe/Paris\" or \"UTC\")",
                        tz.get_ref()
                    ));
                    None
                }
            },
        };
        let cron = cron?;
        // A cron that never fires (e.g. 30 February) would leave the secret never due.
        if let Some(tz) = timezone {
            let probe = chrono::Utc::now().with_timezone(&tz);
            if cron.find_next_occurrence(&probe, false).is_err() {
                self.err(
                    src,
                    raw.cron.span(),
                    &format!("{key}.cron"),
                    format!(
                    "cron expression \"{}\" never matches a date (check day-of-month and month)",
                    raw.cron.get_ref()
                ),
                );
                return None;
            }
        }
        Some(Window {
            expr: raw.cron.get_ref().clone(),
            cron,
            duration: duration?,
            timezone: timezone?,
        })
    }

    fn generate(
        &mut self,
        src: &SourceMap<'_>,
        key: &str,
        g: &RawGenerate,
        table: Range<usize>,
    ) -> Option<GeneratePolicy> {
        let mut p = GeneratePolicy::default();
        let before = self.errors.len();
        if let Some(l) = &g.length {
            match usize::try_from(*l.get_ref()) {
                Ok(n) if (8..=4096).contains(&n) => p.length = n,
                _ => self.err(
                    src,
                    l.span(),
                    &format!("{key}.length"),
                    format!("{} is out of range (allowed 8 to 4096)", l.get_ref()),
                ),
            }
        }
        let flag =
            |f: &Option<S<bool>>, default: bool| f.as_ref().map_or(default, |b| *b.get_ref());
        p.exclude_lowercase = flag(&g.exclude_lowercase, false);
        p.exclude_uppercase = flag(&g.exclude_uppercase, false);
        p.exclude_numbers = flag(&g.exclude_numbers, false);
        p.exclude_punctuation = flag(&g.exclude_punctuation, false);
        p.include_space = flag(&g.include_space, false);
        p.require_each_included_type = flag(&g.require_each_included_type, true);
        if let Some(x) = &g.exclude_characters {
            if let Some(bad) = x
                .get_ref()
                .chars()
                .find(|c| !c.is_ascii() || c.is_ascii_control())
            {
                self.err(src, x.span(), &format!("{key}.exclude_characters"), format!(
                    "{bad:?} is not a printable ASCII character (only printable ASCII can be generated)"
                ));
            }
            p.exclude_characters = x.get_ref().clone();
        }
        let classes = crate::rotation::generate::classes(&p);
        let span = g
            .exclude_characters
            .as_ref()
            .map(|x| x.span())
            .unwrap_or(table);
        if classes.iter().all(|c| c.chars.is_empty()) {
            self.err(src, span, &format!("{key}.exclude_characters"), 
                "no character is left to generate from (include at least one class and do not exclude all of its characters)");
        } else if p.require_each_included_type {
            for c in classes.iter().filter(|c| c.included && c.chars.is_empty()) {
                self.err(src, span.clone(), &format!("{key}.exclude_characters"), format!(
                    "excludes every {} character, but require_each_included_type needs one (exclude_{} = true, or exclude fewer characters)",
                    c.name, c.flag
                ));
            }
            // length >= 8 always leaves room for one of each of the (at most 5) classes.
        }
        (self.errors.len() == before).then_some(p)
    }

    fn redeploy(
        &mut self,
        src: &SourceMap<'_>,
        label: &str,
        r: Option<&S<Vec<S<super::raw::RawRedeploy>>>>,
        stable_timeout: Option<Duration>,
    ) -> Vec<Consumer> {
        let mut out: Vec<Consumer> = Vec::new();
        let Some(list) = r else { return out };
        for (i, entry) in list.get_ref().iter().enumerate() {
            let key = format!("{label}.redeploy[{i}]");
            let e = entry.get_ref();
            match &e.command {
                Some(command) => {
                    for (name, span) in [
                        ("cluster", e.cluster.as_ref().map(|c| c.span())),
                        ("services", e.services.as_ref().map(|s| s.span())),
                    ] {
                        if let Some(span) = span {
                            self.err(src, span, &format!("{key}.{name}"),
                                "cannot be used with `command` in one entry: an entry is either an ECS consumer (cluster, services) or a command consumer (command, verify, timeout, env); write two entries");
                        }
                    }
                    let c = self.command_consumer(src, &key, e, command, stable_timeout);
                    if let Some(c) = c {
                        let c = Consumer::from(c);
                        if out.contains(&c) {
                            self.err(
                                src,
                                command.span(),
                                &format!("{key}.command"),
                                format!("{c} is listed twice"),
                            );
                        } else {
                            out.push(c);
                        }
                    }
                }
                None => self.ecs_consumers(src, &key, entry, &mut out),
            }
        }
        out
    }

    /// `{ cluster = "...", services = [...] }`.
    fn ecs_consumers(
        &mut self,
        src: &SourceMap<'_>,
        key: &str,
        entry: &S<super::raw::RawRedeploy>,
        out: &mut Vec<Consumer>,
    ) {
        let e = entry.get_ref();
        for (name, span) in [
            ("verify", e.verify.as_ref().map(|v| v.span())),
            ("timeout", e.timeout.as_ref().map(|v| v.span())),
            ("env", e.env.as_ref().map(|v| v.span())),
        ] {
            if let Some(span) = span {
                self.err(src, span, &format!("{key}.{name}"),
                    "belongs to a command consumer (an entry with `command`); an ECS consumer is waited on for the secret's stable_timeout");
            }
        }
        let (Some(cluster), Some(services)) = (&e.cluster, &e.services) else {
            let missing = if e.cluster.is_none() {
                "missing required key `cluster` (the ECS cluster of the services; or `command` for a consumer restarted by a program)"
            } else {
                "missing required key `services` (the ECS services that read this secret)"
            };
            self.err(src, entry.span(), key, missing);
            return;
        };
        let cluster_name = cluster.get_ref();
        if !valid_ecs_name(cluster_name) {
            self.err(
                src,
                cluster.span(),
                &format!("{key}.cluster"),
                format!(
                    "\"{cluster_name}\" is not an ECS cluster name or ARN (1 to 255 of A-Z a-z 0-9 _ -)"
                ),
            );
        }
        if services.get_ref().is_empty() {
            self.err(src, services.span(), &format!("{key}.services"),
                "is empty (list the ECS services that read this secret, or remove the redeploy entry)");
        }
        for s in services.get_ref() {
            if !valid_ecs_name(s.get_ref()) {
                self.err(
                    src,
                    s.span(),
                    &format!("{key}.services"),
                    format!(
                        "\"{}\" is not an ECS service name or ARN (1 to 255 of A-Z a-z 0-9 _ -)",
                        s.get_ref()
                    ),
                );
                continue;
            }
            let svc = ServiceRef {
                cluster: ClusterName::interned(cluster_name, &mut self.interner),
                service: ServiceName::interned(s.get_ref(), &mut self.interner),
            };
            let svc = Consumer::Service(svc);
            if out.contains(&svc) {
                self.err(
                    src,
                    s.span(),
                    &format!("{key}.services"),
                    format!("service {svc} is listed twice"),
                );
            } else {
                out.push(svc);
            }
        }
    }

    /// `{ command = [...], verify = [...], timeout = "...", env = { ... } }`; the timeout
    /// defaults to the secret's stable timeout.
    fn command_consumer(
        &mut self,
        src: &SourceMap<'_>,
        key: &str,
        e: &super::raw::RawRedeploy,
        command: &S<Vec<String>>,
        stable_timeout: Option<Duration>,
    ) -> Option<CommandConsumer> {
        let before = self.errors.len();
        const EXAMPLE: &str =
            "command = [\"/usr/local/bin/kubectl\", \"rollout\", \"restart\", \"deployment/api\"]";
        if let Some(p) = consumer::argv_problem(command.get_ref(), EXAMPLE) {
            self.err(src, command.span(), &format!("{key}.command"), p);
        }
        if let Some(v) = &e.verify {
            const EXAMPLE: &str =
                "verify = [\"/usr/local/bin/kubectl\", \"rollout\", \"status\", \"deployment/api\"]";
            if let Some(p) = consumer::argv_problem(v.get_ref(), EXAMPLE) {
                self.err(src, v.span(), &format!("{key}.verify"), p);
            }
        }
        let timeout = match &e.timeout {
            None => stable_timeout.unwrap_or(DEFAULT_STABLE_TIMEOUT),
            Some(t) => self
                .duration(
                    src,
                    &format!("{key}.timeout"),
                    t,
                    MIN_STABLE_TIMEOUT,
                    MAX_STABLE_TIMEOUT,
                )
                .unwrap_or_default(),
        };
        let mut env = std::collections::BTreeMap::new();
        if let Some(written) = &e.env {
            for (k, v) in written.get_ref() {
                if consumer::env_ok(k, v) {
                    env.insert(k.clone(), v.clone());
                } else {
                    self.err(
                        src,
                        written.span(),
                        &format!("{key}.env"),
                        consumer::env_problem(k),
                    );
                }
            }
        }
        (self.errors.len() == before).then(|| CommandConsumer {
            command: command.get_ref().clone(),
            verify: e.verify.as_ref().map(|v| v.get_ref().clone()),
            timeout,
            env,
        })
    }

    pub fn finish(mut self, files: Vec<PathBuf>) -> Result<Config, ConfigErrors> {
        // A per-secret region/role/endpoint wins over its store's section; resolved last
        // since the sections may come later. In place: each secret is already in its final
        // allocation (no second copy).
        let mut secrets = Vec::with_capacity(self.secrets.len());
        let mut accounts = HashSet::new();
        let mut routes = HashSet::new();
        for (mut s, route) in std::mem::take(&mut self.secrets) {
            let (account, store) = self.resolve_route(route, &mut accounts, &mut routes);
            // Not shared yet, so this does not clone.
            let secret = &mut Arc::make_mut(&mut s).secret;
            secret.account = account;
            secret.store = store;
            secrets.push(s);
        }
        // One secret, one schedule: its last-rotated / deployed-version tags and its lease
        // are per secret, so two entries on it (say, two json_keys) would keep moving each
        // other's due time and one key would never rotate.
        let mut by_id: HashMap<(&str, &Account, &StoreRoute), &Arc<SecretConfig>> = HashMap::new();
        for s in &secrets {
            let key = (s.secret.id.as_str(), &s.secret.account, &s.secret.store);
            if let Some(first) = by_id.get(&key) {
                self.errors.push(ConfigError {
                    location: s.origin.clone(),
                    key: format!("secret[{}].secret_id", s.name),
                    message: format!(
                        "secret \"{}\" is already rotated by [[secret]] \"{}\" ({}); one secret can have only one schedule (its rotation tags and lease are per secret)",
                        s.secret.id, first.name, first.origin
                    ),
                });
            } else {
                by_id.insert(key, s);
            }
        }
        let groups = self.finish_groups(&mut secrets);
        let notify = self.finish_notify(&secrets);
        let (region, role) = std::mem::take(&mut self.ha_account);
        self.ha.account = Account::new(
            region.or_else(|| self.aws.region.clone()),
            role.or_else(|| self.aws.role_arn.clone()),
        );
        if self.ha.replicas > 1 && self.ha.lock_table.is_none() {
            // Checked once every file is read: the table may be named in another file.
            if let Some(location) = self.ha_replicas_at.take() {
                self.errors.push(ConfigError {
                    location,
                    key: "ha.replicas".into(),
                    message: format!(
                        "{} replicas need [ha] lock_table (a DynamoDB table for per-secret leases; see docs/ha.md): without it two replicas rotate the same secret at once",
                        self.ha.replicas
                    ),
                });
            }
        }
        if !self.errors.is_empty() {
            // File order first, then position, so the list reads like the files.
            let rank = |e: &ConfigError| {
                files
                    .iter()
                    .position(|f| f.as_path() == &*e.location.file)
                    .unwrap_or(usize::MAX)
            };
            self.errors
                .sort_by_key(|e| (rank(e), e.location.line_col()));
            return Err(ConfigErrors(self.errors));
        }
        Ok(Config {
            daemon: self.daemon,
            aws: self.aws,
            alibaba: self.alibaba,
            ibm: self.ibm,
            ha: self.ha,
            events: self.events,
            secrets,
            groups,
            notify,
            files,
        })
    }
}

/// DynamoDB table names: 3 to 255 of `[a-zA-Z0-9_.-]`.
fn valid_table_name(s: &str) -> bool {
    (3..=255).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

/// Why a five-field cron expression is wrong, in its own terms (field, value, what is
/// allowed); `None` when nothing specific is found and the parser's reason is used.
fn cron_problem(expr: &str) -> Option<String> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    if fields.len() != 5 {
        let extra = if fields.len() == 6 {
            " (there is no seconds field)"
        } else {
            ""
        };
        return Some(format!(
            "it has {} field(s), a window needs five{extra}",
            fields.len()
        ));
    }
    let specs: [(&str, u32, u32, &[&str]); 5] = [
        ("minute", 0, 59, &[]),
        ("hour", 0, 23, &[]),
        ("day-of-month", 1, 31, &[]),
        ("month", 1, 12, &MONTH_NAMES),
        ("day-of-week", 0, 7, &DAY_NAMES),
    ];
    for (field, (what, lo, hi, names)) in fields.iter().zip(specs) {
        for part in field.split(',') {
            let (range, step) = part.split_once('/').unwrap_or((part, ""));
            if !step.is_empty() && !matches!(step.parse::<u32>(), Ok(n) if n > 0) {
                return Some(format!("{what} step \"/{step}\" is not a positive number"));
            }
            for atom in range.split('-') {
                if atom == "*" || atom.is_empty() {
                    continue;
                }
                if let Ok(n) = atom.parse::<u32>() {
                    if n < lo || n > hi {
                        return Some(format!("{what} {n} is out of range ({lo}-{hi})"));
                    }
                } else if atom.chars().all(|c| c.is_ascii_alphabetic()) {
                    if names.is_empty() {
                        return Some(format!("{what} \"{atom}\" is not a number ({lo}-{hi})"));
                    }
                    if !names.contains(&atom.to_ascii_uppercase().as_str()) {
                        let kind = if what == "month" { "month" } else { "day" };
                        return Some(format!(
                            "unknown {kind} name \"{atom}\" in the {what} field (allowed: {}, or {lo}-{hi})",
                            names.join(" ")
                        ));
                    }
                }
            }
        }
    }
    None
}

/// "1m" is a minute, not a month: an interval under an hour restarts every consumer that
/// often, so it must be asked for explicitly.
fn short_interval_message(written: &str, d: Duration) -> String {
    format!(
        "\"{written}\" is {} (m = minutes, h = hours, d = days; a month is \"30d\"); an interval shorter than 1h restarts every consumer that often, so it needs allow_short_interval = true in this [[secret]]",
        duration::describe(d)
    )
}

pub(super) fn valid_name(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

fn valid_region(s: &str) -> bool {
    // e.g. eu-west-1, us-gov-west-1, ap-southeast-4, il-central-1
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

fn valid_role_arn(s: &str) -> bool {
    let mut it = s.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) = (
        it.next(),
        it.next(),
        it.next(),
        it.next(),
        it.next(),
        it.next(),
    ) else {
        return false;
    };
    let Some(path_name) = resource.strip_prefix("role/") else {
        return false;
    };
    ["aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b"].contains(&partition)
        && account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit())
        && !path_name.is_empty()
        && !path_name.ends_with('/')
        && path_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c))
}

fn valid_ecs_name(s: &str) -> bool {
    if s.starts_with("arn:") {
        return s.split(':').count() >= 6 && s.contains(":ecs:");
    }
    (1..=255).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
}

/// A Secrets Manager secret name or ARN, or why not.
pub(super) fn check_secret_id(s: &str) -> Result<(), String> {
    if s.starts_with("arn:") {
        let parts: Vec<&str> = s.splitn(7, ':').collect();
        if parts.len() == 7
            && parts[2] == "secretsmanager"
            && parts[5] == "secret"
            && !parts[6].is_empty()
        {
            return Ok(());
        }
        return Err(format!(
            "\"{s}\" is not a Secrets Manager ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)"
        ));
    }
    if (1..=512).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c))
    {
        Ok(())
    } else {
        Err(format!(
            "\"{s}\" is not a valid secret name (1 to 512 of A-Z a-z 0-9 / _ + = . @ -) or ARN"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns() {
        assert!(valid_role_arn("arn:aws:iam::111111111111:role/rotator"));
        assert!(valid_role_arn(
            "arn:aws:iam::111111111111:role/path/to/rotator"
        ));
        assert!(!valid_role_arn("arn:aws:iam::111111111111:user/rotator"));
        assert!(!valid_role_arn("arn:aws:iam::1111:role/rotator"));
        assert!(!valid_role_arn("arn:aws:sts::111111111111:role/rotator"));
        assert!(!valid_role_arn("rotator"));
    }

    #[test]
    fn cron_problems_name_the_field_and_what_is_allowed() {
        let m = cron_problem("0 2 * * FRIDAY-ISH").unwrap();
        assert!(m.contains("unknown day name \"FRIDAY\""), "{m}");
        assert!(m.contains("SUN MON TUE WED THU FRI SAT"), "{m}");
        assert_eq!(
            cron_problem("0 25 * * *").unwrap(),
            "hour 25 is out of range (0-23)"
        );
        assert!(cron_problem("0 2 * JANUARY *")
            .unwrap()
            .contains("unknown month name"));
        assert!(cron_problem("0 0 2 * * *")
            .unwrap()
            .contains("no seconds field"));
        assert_eq!(cron_problem("0 2 * * TUE-THU"), None);
        assert_eq!(cron_problem("*/15 2 1,15 JAN-MAR mon"), None);
    }

    #[test]
    fn regions() {
        for ok in ["eu-west-1", "us-gov-west-1", "ap-southeast-4"] {
            assert!(valid_region(ok), "{ok}");
        }
        for bad in ["eu-west", "EU-WEST-1", "euwest1", "eu--1", ""] {
            assert!(!valid_region(bad), "{bad}");
        }
    }
}
