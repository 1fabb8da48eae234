//! Fuzzes the configuration loader in-process with TOML-ish documents: random mixes of
//! real keys with plausible, wrong-typed and random values, random section headers, junk
//! and non-UTF-8 lines, deep nesting, huge numbers and unicode, spread over 1 to 3 files.
//!
//! `load_dir` must never panic; when it refuses, every problem must be one line starting
//! with the path of a file of the directory, and its line:col must lie within that file.
//!
//! 256 cases by default (a few seconds). For a longer run:
//!     PROPTEST_CASES=100000 cargo test --test config_fuzz
//! Failures are not persisted to a regressions file; proptest prints the minimal input.

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use std::path::{Path, PathBuf};

/// A TOML value, rendered by `render`.
#[derive(Clone, Debug)]
enum V {
    Str(String),
    Int(i64),
    /// A digit string too large for i64, or another number-like literal.
    Lit(String),
    Float(f64),
    Bool(bool),
    Arr(Vec<V>),
    Table(Vec<(String, V)>),
}

fn key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_owned()
    } else {
        quote(k)
    }
}

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn render(v: &V) -> String {
    match v {
        V::Str(s) => quote(s),
        V::Int(i) => i.to_string(),
        V::Lit(s) => s.clone(),
        V::Float(f) if f.is_nan() => "nan".into(),
        V::Float(f) if f.is_infinite() => {
            if *f > 0.0 {
                "inf".into()
            } else {
                "-inf".into()
            }
        }
        V::Float(f) => format!("{f:?}"),
        V::Bool(b) => b.to_string(),
        V::Arr(items) => format!(
            "[{}]",
            items.iter().map(render).collect::<Vec<_>>().join(", ")
        ),
        V::Table(kv) => format!(
            "{{ {} }}",
            kv.iter()
                .map(|(k, v)| format!("{} = {}", key(k), render(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Every key the loader knows, at any level.
const KEYS: &[&str] = &[
    "listen",
    "max_concurrent_rotations",
    "retry_initial",
    "retry_max",
    "max_attempts",
    "shutdown_grace",
    "refresh",
    "region",
    "profile",
    "role_arn",
    "name",
    "secret_id",
    "every",
    "window",
    "jitter",
    "generate",
    "json_key",
    "target",
    "redeploy",
    "stable_timeout",
    "cron",
    "duration",
    "timezone",
    "length",
    "exclude_characters",
    "exclude_lowercase",
    "exclude_uppercase",
    "exclude_numbers",
    "exclude_punctuation",
    "include_space",
    "require_each_included_type",
    "kind",
    "set",
    "test",
    "revoke",
    "timeout",
    "mode",
    "admin_secret_id",
    "sslmode",
    "clone_suffix",
    "user",
    "delete_after",
    "cluster",
    "services",
    "daemon",
    "aws",
    "secret",
];

fn any_key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(KEYS).prop_map(str::to_owned),
        1 => "[a-z_]{1,12}",
        1 => "\\PC{0,8}",
        1 => (prop::sample::select(KEYS), prop::sample::select(KEYS)).prop_map(|(a, b)| format!("{a}.{b}")),
    ]
}

fn duration_str() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(
            &[
                "30d",
                "1h",
                "90s",
                "1h 30m",
                "2w",
                "0s",
                "",
                " ",
                "30",
                "-5m",
                "1y",
                "1M",
                "1M 1d",
                "2 days",
                "1 month",
                "20000d",
                "3650d",
                "1.5h",
                "1e3s",
                "99999999999999999999s",
                "1ms",
                "5 m",
                "m",
                "1h30",
                "+1h",
                "⁵d",
                "1d ",
                "１d",
            ][..]
        )
        .prop_map(str::to_owned),
        (
            0u64..100_000,
            prop::sample::select(&["s", "m", "h", "d", "w", "x", "ns", "", "days", "min"][..])
        )
            .prop_map(|(n, u)| format!("{n}{u}")),
        "\\PC{0,10}",
    ]
}

fn cron_str() -> impl Strategy<Value = String> {
    let field = prop::sample::select(
        &[
            "*",
            "0",
            "2",
            "59",
            "60",
            "24",
            "31",
            "30",
            "29",
            "*/0",
            "*/15",
            "1-5",
            "5-1",
            "MON-FRI",
            "TUE-THU",
            "FEB",
            "L",
            "5L",
            "1W",
            "2#3",
            "?",
            "-1",
            "99999999999",
            ",",
            "1,2,,3",
            "é",
            "",
        ][..],
    );
    prop_oneof![
        4 => prop::collection::vec(field, 0..8).prop_map(|f| f.join(" ")),
        1 => prop::sample::select(&["0 0 30 2 *", "0 0 31 4 *", "0 0 29 2 *", "0 2 * * TUE-THU", "@daily", "@yearly"][..])
            .prop_map(str::to_owned),
        1 => "\\PC{0,16}",
    ]
}

/// Strings that are meaningful somewhere in the config, and some that are not.
fn plausible_str() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => duration_str(),
        2 => cron_str(),
        2 => prop::sample::select(&[
            "api", "api-db", "a\nb", "", "prod/api", "prod api", "Europe/London", "UTC", "Mars/Olympus",
            "eu-west-1", "EU-WEST-1", "127.0.0.1:9464", "[::1]:9464", "localhost:1", "0.0.0.0:99999",
            "arn:aws:iam::111111111111:role/r", "arn:aws:iam::1:user/u", "arn:aws:sts::111111111111:role/r",
            "arn:aws:secretsmanager:eu-west-1:111111111111:secret:x-AbCdEf", "arn:aws:ecs:eu-west-1:1:cluster/c",
            "arn:", "none", "command", "postgres", "iam-access-key", "mysql", "single-user",
            "alternating-users", "verify-full", "maybe", "_clone", "-", "0123456789",
            "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
            "é", "\u{0}", "\u{feff}", "😀", "ключ",
        ][..]).prop_map(str::to_owned),
        1 => "(?s).{0,24}",
        1 => "[a-z]{200,300}",
    ]
}

fn leaf() -> impl Strategy<Value = V> {
    prop_oneof![
        6 => plausible_str().prop_map(V::Str),
        2 => prop_oneof![Just(0i64), Just(-1), Just(7), Just(8), Just(4096), Just(4097), Just(1025), Just(i64::MIN), Just(i64::MAX), any::<i64>()].prop_map(V::Int),
        1 => prop::sample::select(&[
            "99999999999999999999", "-99999999999999999999", "0x7fffffffffffffff", "0o777", "0b1",
            "1979-05-27", "1979-05-27T07:32:00Z", "07:32:00", "1_000", "+1", "1e400",
        ][..]).prop_map(|s| V::Lit(s.to_owned())),
        1 => any::<f64>().prop_map(V::Float),
        1 => any::<bool>().prop_map(V::Bool),
    ]
}

fn value() -> impl Strategy<Value = V> {
    leaf().prop_recursive(4, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(V::Arr),
            prop::collection::vec((any_key(), inner), 0..6).prop_map(V::Table),
        ]
    })
}

/// A table whose keys are real ones with plausible values, e.g. a whole `[[secret]]`.
fn structured_table(keys: &'static [&'static str]) -> impl Strategy<Value = Vec<(String, V)>> {
    prop::collection::vec(
        (prop::sample::select(keys).prop_map(str::to_owned), value()),
        0..8,
    )
}

fn window() -> impl Strategy<Value = V> {
    (
        cron_str(),
        duration_str(),
        prop::option::of(plausible_str()),
    )
        .prop_map(|(c, d, tz)| {
            let mut kv = vec![
                ("cron".to_owned(), V::Str(c)),
                ("duration".to_owned(), V::Str(d)),
            ];
            if let Some(tz) = tz {
                kv.push(("timezone".to_owned(), V::Str(tz)));
            }
            V::Table(kv)
        })
}

fn target() -> impl Strategy<Value = V> {
    (
        prop::sample::select(&["none", "command", "postgres", "iam-access-key", "x"][..]),
        structured_table(&[
            "set",
            "test",
            "revoke",
            "timeout",
            "mode",
            "admin_secret_id",
            "sslmode",
            "clone_suffix",
            "user",
            "delete_after",
        ]),
    )
        .prop_map(|(kind, mut kv)| {
            kv.insert(0, ("kind".to_owned(), V::Str(kind.to_owned())));
            V::Table(kv)
        })
}

fn generate() -> impl Strategy<Value = V> {
    prop::collection::vec(
        (
            prop::sample::select(
                &[
                    "length",
                    "exclude_characters",
                    "exclude_lowercase",
                    "exclude_uppercase",
                    "exclude_numbers",
                    "exclude_punctuation",
                    "include_space",
                    "require_each_included_type",
                ][..],
            ),
            prop_oneof![any::<bool>().prop_map(V::Bool), leaf()],
        ),
        0..6,
    )
    .prop_map(|kv| V::Table(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
}

fn redeploy() -> impl Strategy<Value = V> {
    prop::collection::vec(
        (
            plausible_str(),
            prop::collection::vec(plausible_str(), 0..4),
        )
            .prop_map(|(c, s)| {
                V::Table(vec![
                    ("cluster".to_owned(), V::Str(c)),
                    (
                        "services".to_owned(),
                        V::Arr(s.into_iter().map(V::Str).collect()),
                    ),
                ])
            }),
        0..3,
    )
    .prop_map(V::Arr)
}

/// A mostly well-formed `[[secret]]` so that validation, not only parsing, is exercised.
fn secret_block() -> impl Strategy<Value = String> {
    (
        prop::option::weighted(0.9, prop_oneof![
            3 => prop::sample::select(&["api", "db", "web"][..]).prop_map(|s| V::Str(s.to_owned())),
            1 => leaf(),
        ]),
        prop::option::weighted(0.9, plausible_str()),
        prop::option::weighted(0.9, duration_str()),
        prop::option::of(window()),
        prop::option::of(duration_str()),
        prop::option::of(generate()),
        prop::option::of(target()),
        prop::option::of(redeploy()),
        structured_table(&["json_key", "stable_timeout", "region", "role_arn", "colour"]),
    )
        .prop_map(|(name, id, every, window, jitter, generate, target, redeploy, rest)| {
            let mut out = String::from("[[secret]]\n");
            let mut put = |k: &str, v: &V| out.push_str(&format!("{} = {}\n", key(k), render(v)));
            if let Some(v) = &name { put("name", v) }
            if let Some(v) = id { put("secret_id", &V::Str(v)) }
            if let Some(v) = every { put("every", &V::Str(v)) }
            if let Some(v) = &window { put("window", v) }
            if let Some(v) = jitter { put("jitter", &V::Str(v)) }
            if let Some(v) = &generate { put("generate", v) }
            if let Some(v) = &target { put("target", v) }
            if let Some(v) = &redeploy { put("redeploy", v) }
            for (k, v) in &rest { put(k, v) }
            out
        })
}

fn header() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(&[
            "[daemon]", "[aws]", "[[secret]]", "[secret]", "[[daemon]]", "[[aws]]", "[secret.window]",
            "[secret.target]", "[[secret.redeploy]]", "[secret.generate]", "[daemon.listen]", "[deamon]",
            "[a.b.c.d.e]", "[\"daemon\"]", "[ daemon ]", "[daemon", "[[secret]", "[]", "[[]]",
        ][..]).prop_map(str::to_owned),
        1 => any_key().prop_map(|k| format!("[{}]", key(&k))),
        1 => any_key().prop_map(|k| format!("[[{}]]", key(&k))),
    ]
}

/// One piece of a file, as bytes (some are not UTF-8 on purpose).
fn chunk() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => secret_block().prop_map(String::into_bytes),
        3 => header().prop_map(|h| format!("{h}\n").into_bytes()),
        6 => (any_key(), value()).prop_map(|(k, v)| format!("{} = {}\n", key(&k), render(&v)).into_bytes()),
        1 => (prop::sample::select(&["daemon", "aws"][..]), structured_table(KEYS))
            .prop_map(|(s, kv)| {
                let mut out = format!("[{s}]\n");
                for (k, v) in kv {
                    out.push_str(&format!("{} = {}\n", key(&k), render(&v)));
                }
                out.into_bytes()
            }),
        1 => "(?s).{0,40}".prop_map(|s| format!("{s}\n").into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..24),
        1 => (1usize..400, prop::sample::select(&["[", "{a=", "[{a=["][..])).prop_map(|(n, open)| {
            let close: String = open.chars().rev().filter_map(|c| match c { '[' => Some(']'), '{' => Some('}'), _ => None }).collect();
            format!("deep = {}1{}\n", open.repeat(n), close.repeat(n)).into_bytes()
        }),
        1 => prop::sample::select(&[
            "# comment\n", "\n", "\r\n", "\u{feff}", "key = \"unterminated\n", "'''\n", "\"\"\"\n",
            "a = 1\na = 2\n", "x.y = 1\nx = 2\n", "= 1\n", "\t\t  \n",
        ][..]).prop_map(|s| s.as_bytes().to_vec()),
    ]
}

/// One file's bytes; shown as text (escaped where not UTF-8) when a case fails.
#[derive(Clone)]
struct Doc(Vec<u8>);

impl std::fmt::Debug for Doc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match std::str::from_utf8(&self.0) {
            Ok(s) => write!(f, "{s:?}"),
            Err(_) => write!(f, "b\"{}\"", self.0.escape_ascii()),
        }
    }
}

/// Well-formed TOML with known sections and keys, so that most cases get past the parser.
fn clean_chunk() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => secret_block().prop_map(String::into_bytes),
        1 => (prop::sample::select(&["daemon", "aws"][..]), structured_table(KEYS)).prop_map(|(s, kv)| {
            let mut out = format!("[{s}]\n");
            for (k, v) in kv {
                out.push_str(&format!("{} = {}\n", key(&k), render(&v)));
            }
            out.into_bytes()
        }),
    ]
}

fn document() -> impl Strategy<Value = Doc> {
    prop_oneof![
        // Anything goes: mostly exercises the parser and error recovery.
        1 => prop::collection::vec(chunk(), 0..12),
        // Valid TOML: exercises validation.
        2 => prop::collection::vec(clean_chunk(), 1..6),
    ]
    .prop_map(|c| Doc(c.concat()))
}

fn config() -> ProptestConfig {
    // Default cases (256) unless PROPTEST_CASES says otherwise.
    ProptestConfig {
        failure_persistence: None,
        max_shrink_iters: 2048,
        ..ProptestConfig::default()
    }
}

/// `(line, col)` must exist in `text`: col may be one past the last char of the line.
fn within(text: &str, line: usize, col: usize) -> bool {
    let Some(l) = text.split('\n').nth(line.wrapping_sub(1)) else {
        return false;
    };
    line >= 1 && col >= 1 && col <= l.chars().count() + 1
}

fn check_dir(dir: &Path, files: &[(PathBuf, Vec<u8>)]) -> Result<(), TestCaseError> {
    let result = secret_rotator::config::load_dir(dir);
    let Err(errors) = result else { return Ok(()) };
    prop_assert!(!errors.0.is_empty(), "Err with no errors");
    let display = errors.to_string();
    for line in display.lines() {
        prop_assert!(
            files.iter().any(|(p, _)| line.starts_with(&p.display().to_string())),
            "a line of the error report does not start with a file path: {line:?}\nwhole report:\n{display}"
        );
    }
    for e in &errors.0 {
        let Some((_, bytes)) = files.iter().find(|(p, _)| p.as_path() == &*e.location.file) else {
            return Err(TestCaseError::fail(format!(
                "error for a file not in the directory: {e}"
            )));
        };
        if let Some((line, col)) = e.location.line_col() {
            let text = String::from_utf8_lossy(bytes);
            prop_assert!(
                within(&text, line as usize, col as usize),
                "{line}:{col} is outside the file ({} lines): {e}",
                text.split('\n').count()
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn loader_never_panics_and_locates_every_error(docs in prop::collection::vec(document(), 1..4)) {
        let tmp = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        for (i, doc) in docs.iter().enumerate() {
            let path = tmp.path().join(format!("{:02}-fuzz.toml", i * 10));
            std::fs::write(&path, &doc.0).unwrap();
            files.push((path, doc.0.clone()));
        }
        check_dir(tmp.path(), &files)?;
    }
}

/// The shapes the fuzzer is built from must reach validation, not stop at the parser:
/// a document made only of one plain secret block loads.
#[test]
fn a_plain_secret_block_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let doc = format!(
        "[[secret]]\nname = {}\nsecret_id = {}\nevery = {}\nwindow = {}\n",
        render(&V::Str("api".into())),
        render(&V::Str("prod/api".into())),
        render(&V::Str("30d".into())),
        render(&V::Table(vec![
            ("cron".into(), V::Str("0 2 * * *".into())),
            ("duration".into(), V::Str("3h".into()))
        ])),
    );
    std::fs::write(tmp.path().join("a.toml"), doc).unwrap();
    let cfg = secret_rotator::config::load_dir(tmp.path());
    assert!(cfg.is_ok(), "{}", cfg.err().unwrap());
}
