//! Reading the directory: which files, in which order, and turning TOML into raw tables.

use super::error::{ConfigError, ConfigErrors, Location, SourceMap};
use super::target::Registry;
use super::validate::Validator;
use super::Config;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

pub const DEFAULT_DIR: &str = "/etc/secret-rotator";

/// Files larger than this are refused: a schedule for 100,000 secrets fits in far less.
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

fn file_error(file: &Path, message: impl Into<String>) -> ConfigError {
    ConfigError {
        location: Location::whole(Arc::from(file)),
        key: "-".into(),
        message: message.into(),
    }
}

/// Loads and validates every `*.toml` file of `dir`, in name order, with the target
/// kinds of `registry`. Nothing is applied unless everything is valid.
pub fn load_dir_with(dir: &Path, registry: &Registry) -> Result<Config, ConfigErrors> {
    let files = list_files(dir).map_err(|e| ConfigErrors(vec![e]))?;
    let mut v = Validator::new(registry);
    for file in &files {
        match read_text(file) {
            Ok(text) => load_text(&mut v, file, &text),
            Err(e) => v.push(e),
        }
    }
    v.finish(files)
}

fn list_files(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| file_error(dir, format!("cannot read config directory: {e}")))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| file_error(dir, format!("cannot list directory: {e}")))?;
        let path = entry.path();
        let is_toml = path.extension().is_some_and(|x| x == "toml");
        // Editors leave hidden files like `.foo.toml.swp`; only visible *.toml files count.
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if is_toml && !hidden {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(file_error(
            dir,
            "no *.toml files in the config directory (expected at least one file with [[secret]] tables)",
        ));
    }
    Ok(files)
}

fn read_text(file: &Path) -> Result<String, ConfigError> {
    let meta = std::fs::metadata(file).map_err(|e| {
        let what = if std::fs::symlink_metadata(file).is_ok() {
            "broken symbolic link"
        } else {
            "cannot read file"
        };
        file_error(file, format!("{what}: {e}"))
    })?;
    if !meta.is_file() {
        return Err(file_error(file, "not a regular file"));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(file_error(
            file,
            format!(
                "file is {} bytes (at most {MAX_FILE_BYTES} allowed)",
                meta.len()
            ),
        ));
    }
    let bytes =
        std::fs::read(file).map_err(|e| file_error(file, format!("cannot read file: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let text = String::from_utf8_lossy(&e.as_bytes()[..valid]).into_owned();
        SourceMap::new(file, &text).error(
            valid..valid,
            "-",
            "file is not valid UTF-8 (TOML files must be UTF-8)",
        )
    })
}

/// Parses one file's text and hands its tables to the validator: part by part when the
/// file splits ([`super::split`]), so only one table's tree exists at a time.
pub(super) fn load_text(v: &mut Validator, file: &Path, text: &str) {
    let src = SourceMap::new(file, text);
    // Unnamed secrets are labelled by their place in the file.
    let mut index = 0;
    match super::split::parts(text) {
        Some(parts) => {
            for part in parts {
                let next = index + usize::from(part.secret);
                let start = part.range.start;
                load_part(v, &src.at(start), &text[part.range], &mut index);
                if part.secret {
                    index = next;
                }
            }
        }
        None => load_part(v, &src, text, &mut index),
    }
}

/// Parses a part of a file (`src` maps its offsets into the file) into the validator.
fn load_part(v: &mut Validator, src: &SourceMap<'_>, text: &str, index: &mut usize) {
    let src = src.clone();
    let (doc, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        for e in syntax {
            let span = e.span().unwrap_or(0..0);
            v.push(src.error(span, "-", format!("TOML syntax: {}", one_line(e.message()))));
        }
        return;
    }
    for (key, value) in doc.into_inner() {
        let key_span = key.span();
        match key.get_ref().as_ref() {
            "daemon" | "aws" | "alibaba" | "ibm" | "ha" | "events" if !value.get_ref().is_table() => {
                let name = key.get_ref().to_string();
                v.push(src.error(
                    value.span(),
                    name.clone(),
                    format!("must be a table: write [{name}] (once), not [[{name}]] or a value"),
                ));
            }
            "daemon" => {
                if let Some((raw, _)) = typed(v, &src, "daemon", value.clone()) {
                    v.daemon(&src, table_keys(&value), raw);
                }
            }
            "aws" => {
                if let Some((raw, _)) = typed(v, &src, "aws", value.clone()) {
                    v.aws(&src, table_keys(&value), raw);
                }
            }
            "alibaba" => {
                if let Some((raw, _)) = typed(v, &src, "alibaba", value.clone()) {
                    v.alibaba(&src, table_keys(&value), raw);
                }
            }
            "ibm" => {
                if let Some((raw, _)) = typed(v, &src, "ibm", value.clone()) {
                    v.ibm(&src, table_keys(&value), raw);
                }
            }
            "ha" => {
                if let Some((raw, _)) = typed(v, &src, "ha", value.clone()) {
                    v.ha(&src, table_keys(&value), raw);
                }
            }
            "events" => {
                if let Some((raw, _)) = typed(v, &src, "events", value.clone()) {
                    v.events(&src, table_keys(&value), raw);
                }
            }
            "secret" => {
                let span = value.span();
                let DeValue::Array(items) = value.into_inner() else {
                    v.push(src.error(
                        span,
                        "secret",
                        "must be an array of tables: write [[secret]]",
                    ));
                    continue;
                };
                for mut item in items {
                    let i = *index;
                    *index += 1;
                    let span = item.span();
                    reject_arrays_of_tables(v, &src, &secret_label(&item, i), &mut item);
                    let label = secret_label(&item, i);
                    // The target table is read by its kind (see `target`), not by serde.
                    let target = take_key(&mut item, "target");
                    if let Some((raw, bad)) = typed(v, &src, &label, item) {
                        let target = target.map(|t| (format!("{label}.target"), t));
                        v.secret(&src, span, raw, &bad, target);
                    }
                }
            }
            "group" => {
                let span = value.span();
                let DeValue::Array(items) = value.into_inner() else {
                    v.push(src.error(span, "group", "must be an array of tables: write [[group]]"));
                    continue;
                };
                for item in items {
                    let span = item.span();
                    let label = match item.get_ref().get("name").and_then(|n| n.get_ref().as_str()) {
                        Some(n) => format!("group[{n}]"),
                        None => "group".to_owned(),
                    };
                    if let Some((raw, bad)) = typed(v, &src, &label, item) {
                        v.group(&src, span, raw, &bad);
                    }
                }
            }
            "notify" => {
                let span = value.span();
                let DeValue::Array(items) = value.into_inner() else {
                    v.push(src.error(span, "notify", "must be an array of tables: write [[notify]]"));
                    continue;
                };
                for item in items {
                    let span = item.span();
                    let label = match item.get_ref().get("name").and_then(|n| n.get_ref().as_str()) {
                        Some(n) => format!("notify[{n}]"),
                        None => "notify".to_owned(),
                    };
                    if let Some((raw, bad)) = typed(v, &src, &label, item) {
                        v.notify(&src, span, raw, &bad);
                    }
                }
            }
            other => v.push(src.error(
                key_span,
                other,
                "unknown section (allowed: [daemon], [aws], [alibaba], [ibm], [ha], [events], [[secret]], [[group]], [[notify]])",
            )),
        }
    }
}

/// `target`, `window` and `generate` are single inline tables; `[[secret.target]]` would
/// otherwise be read positionally and reported as a baffling type error.
fn reject_arrays_of_tables(
    v: &mut Validator,
    src: &SourceMap<'_>,
    label: &str,
    item: &mut Spanned<DeValue<'_>>,
) {
    let span = item.span();
    let DeValue::Table(table) = item.get_mut() else {
        return;
    };
    let mut bad = Vec::new();
    for (k, val) in table.iter() {
        let name = k.get_ref().to_string();
        if matches!(name.as_str(), "target" | "window" | "generate") && val.get_ref().is_array() {
            v.push(src.error(
                val.span(),
                format!("{label}.{name}"),
                format!("must be an inline table, e.g. {name} = {{ ... }} (not [[secret.{name}]] or an array)"),
            ));
            bad.push(k.clone());
        }
    }
    for k in bad {
        table.remove(&k);
    }
    let _ = span;
}

/// Removes `key` from a table and returns its value.
fn take_key<'i>(item: &mut Spanned<DeValue<'i>>, key: &str) -> Option<Spanned<DeValue<'i>>> {
    match item.get_mut() {
        DeValue::Table(t) => t.remove(key),
        _ => None,
    }
}

/// `secret[NAME]` when the table has a string name, else `secret[#N]` (1-based in the file).
fn secret_label(item: &Spanned<DeValue<'_>>, index: usize) -> String {
    match item
        .get_ref()
        .get("name")
        .and_then(|n| n.get_ref().as_str())
    {
        Some(name) => format!("secret[{name}]"),
        None => format!("secret[#{}]", index + 1),
    }
}

fn table_keys(value: &Spanned<DeValue<'_>>) -> Vec<(String, std::ops::Range<usize>)> {
    match value.get_ref() {
        DeValue::Table(t) => t
            .iter()
            .map(|(k, _)| (k.get_ref().to_string(), k.span()))
            .collect(),
        _ => Vec::new(),
    }
}

/// Deserializes one table. When that fails, each key is tried on its own so that every
/// bad key of the table is reported, not only the first (all raw fields are optional);
/// the table is then read without its bad keys so that the rest is still validated.
/// Returns the value and the names of the keys that were dropped.
fn typed<T: DeserializeOwned>(
    v: &mut Validator,
    src: &SourceMap<'_>,
    label: &str,
    value: Spanned<DeValue<'_>>,
) -> Option<(T, Vec<String>)> {
    let span = value.span();
    let err = match T::deserialize(ValueDeserializer::from(value.clone())) {
        Ok(t) => return Some((t, Vec::new())),
        Err(e) => e,
    };
    let DeValue::Table(table) = value.get_ref() else {
        let at = err.span().unwrap_or(span);
        v.push(src.error(at, label, describe_serde(err.message(), label, &no_hint)));
        return None;
    };
    let mut bad = Vec::new();
    let mut good = DeTable::new();
    for (k, item) in table.iter() {
        let mut one = DeTable::new();
        one.insert(k.clone(), item.clone());
        let single = Spanned::new(span.clone(), DeValue::Table(one));
        match T::deserialize(ValueDeserializer::from(single)) {
            Ok(_) => {
                good.insert(k.clone(), item.clone());
            }
            Err(e) => {
                let at = e.span().unwrap_or_else(|| k.span());
                let path = format!("{label}.{}{}", k.get_ref(), nested_path(item, at.start));
                let message = describe_serde(e.message(), &path, &no_hint);
                v.push(src.error(at, path, message));
                bad.push(k.get_ref().to_string());
            }
        }
    }
    if bad.is_empty() {
        let at = err.span().unwrap_or(span);
        v.push(src.error(at, label, describe_serde(err.message(), label, &no_hint)));
        return None;
    }
    let rest = Spanned::new(span, DeValue::Table(good));
    T::deserialize(ValueDeserializer::from(rest))
        .ok()
        .map(|t| (t, bad))
}

/// A key-specific wording of what a key expects (see `TargetKind::expects`): the key
/// and whether one element of a list is wrong.
pub(super) type Hint<'a> = &'a dyn Fn(&str, bool) -> Option<String>;

fn no_hint(_: &str, _: bool) -> Option<String> {
    None
}

/// A serde error of `value` (read at `path`) as a configuration error: at the offending
/// value, with the key path down to it and the configuration's wording.
pub(super) fn serde_error(
    src: &SourceMap<'_>,
    path: &str,
    value: &Spanned<DeValue<'_>>,
    e: &toml::de::Error,
    hint: Hint<'_>,
) -> ConfigError {
    let at = e.span().unwrap_or_else(|| value.span());
    let path = format!("{path}{}", nested_path(value, at.start));
    let message = describe_serde(e.message(), &path, hint);
    src.error(at, path, message)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Where inside `value` the offset `at` falls, as a key path suffix (`[0].services`), so an
/// error deep in an inline table names the key that is wrong, not only the top-level one.
fn nested_path(value: &Spanned<DeValue<'_>>, at: usize) -> String {
    let mut path = String::new();
    let mut cur = value;
    'outer: loop {
        match cur.get_ref() {
            DeValue::Table(t) => {
                for (k, v) in t.iter() {
                    if k.span().contains(&at) {
                        path.push('.');
                        path.push_str(k.get_ref());
                        break 'outer;
                    }
                    if v.span().contains(&at) {
                        path.push('.');
                        path.push_str(k.get_ref());
                        cur = v;
                        continue 'outer;
                    }
                }
                break;
            }
            DeValue::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    if v.span().contains(&at) {
                        path.push_str(&format!("[{i}]"));
                        cur = v;
                        continue 'outer;
                    }
                }
                break;
            }
            _ => break,
        }
    }
    path
}

/// The last key of a path like `secret[api].redeploy[0].services`, without its index.
fn last_key(path: &str) -> &str {
    let last = path.rsplit('.').next().unwrap_or(path);
    last.split('[').next().unwrap_or(last)
}

/// What a duration key expects, for `TargetKind::expects` of kinds too.
pub const DURATION_EXPECTED: &str = "a duration in quotes, e.g. \"30d\", \"12h\" or \"90s\"";

const DURATION_KEYS: &[&str] = &[
    "every",
    "jitter",
    "stable_timeout",
    "duration",
    "retry_initial",
    "retry_max",
    "shutdown_grace",
    "refresh",
    "redeploy_coalesce",
    "safety_poll",
    "timeout",
];

/// What a key expects, in the words of the configuration (not of serde). `path` ends in
/// `[n]` when the problem is one element of a list; `hint` has the first word.
fn expected_for(path: &str, serde_expected: &str, hint: Hint<'_>) -> String {
    let key = last_key(path);
    if let Some(h) = hint(key, path.ends_with(']')) {
        return h;
    }
    if path.ends_with(']') {
        match key {
            "services" => return "an ECS service name in quotes, e.g. \"front\"".into(),
            "redeploy" => {
                return "a table, e.g. { cluster = \"prod\", services = [\"front\"] } or { command = [\"/usr/local/bin/kubectl\", \"rollout\", \"restart\", \"deployment/api\"] }".into()
            }
            "command" | "verify" => {
                return "a string (the program and each argument in quotes)".into()
            }
            _ => {}
        }
    }
    match key {
        "services" => {
            return "a list of ECS service names, e.g. services = [\"front\", \"api\"]".into()
        }
        "redeploy" => {
            return "a list of tables, e.g. redeploy = [{ cluster = \"prod\", services = [\"front\"] }]"
                .into()
        }
        "command" | "verify" => {
            return format!("a list of strings: the program, then its arguments (no shell is used), e.g. {key} = [\"/usr/local/bin/kubectl\", \"rollout\", \"{}\", \"deployment/api\"]", if key == "command" { "restart" } else { "status" })
        }
        "window" => {
            return "a table, e.g. window = { cron = \"0 2 * * TUE-THU\", duration = \"3h\" }".into()
        }
        "generate" => return "a table, e.g. generate = { length = 32 }".into(),
        "target" => return "a table, e.g. target = { kind = \"none\" }".into(),
        k if DURATION_KEYS.contains(&k) => return DURATION_EXPECTED.into(),
        _ => {}
    }
    let e = serde_expected.trim();
    if e.starts_with("struct Raw") || e == "a map" {
        return "a table".into();
    }
    match e {
        "a string" => "a string in quotes".into(),
        "a sequence" => "a list [...]".into(),
        "i64" | "an integer" | "u64" | "i32" | "u32" => "a whole number".into(),
        "a boolean" => "true or false".into(),
        other => other.to_owned(),
    }
}

/// What was found, as it looks in the file.
fn found_as_written(serde_found: &str) -> String {
    let f = serde_found.trim();
    if let Some(rest) = f.strip_prefix("string ") {
        return format!("the string {rest}");
    }
    for (prefix, what) in [
        ("integer ", "the number "),
        ("floating point ", "the number "),
        ("boolean ", ""),
    ] {
        if let Some(rest) = f.strip_prefix(prefix) {
            return format!("{what}{}", rest.trim_matches('`'));
        }
    }
    match f {
        "map" => "a table or a date".into(),
        "sequence" => "a list".into(),
        other => other.to_owned(),
    }
}

/// The closest allowed key to an unknown one, if one is close enough to be a typo.
fn did_you_mean<'a>(unknown: &str, allowed: &[&'a str]) -> Option<&'a str> {
    let u = unknown.to_ascii_lowercase();
    allowed
        .iter()
        .map(|a| {
            let d = strsim::levenshtein(&u, a);
            // "role" for "role_arn", "tz" is too short to guess from.
            let contained = u.len() >= 3 && (a.contains(u.as_str()) || u.contains(a));
            let score = if contained { d.min(1) } else { d };
            (score, *a)
        })
        .filter(|(d, a)| *d <= (a.len().max(u.len()) / 5).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

/// `unknown key `x` (did you mean `y`?); allowed here: a, b`.
pub(super) fn unknown_key(unknown: &str, allowed: &[&str]) -> String {
    let mut out = format!("unknown key `{unknown}`");
    if let Some(m) = did_you_mean(unknown, allowed) {
        out.push_str(&format!(" (did you mean `{m}`?)"));
    }
    if !allowed.is_empty() {
        out.push_str(&format!("; allowed here: {}", allowed.join(", ")));
    }
    out
}

/// serde's wording turned into the configuration's: what the key expects, what was
/// written, and for an unknown key the closest allowed one.
fn describe_serde(msg: &str, path: &str, hint: Hint<'_>) -> String {
    let msg = one_line(msg);
    if msg.contains(" as i128") || msg.contains(" as u128") {
        return "number out of range (expected a small integer)".to_owned();
    }
    if let Some(rest) = msg.strip_prefix("unknown field ") {
        // "`x`, expected one of `a`, `b`" / "`x`, expected `a`" / "`x`, there are no fields"
        let names: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
        let Some((unknown, allowed)) = names.split_first() else {
            return format!("unknown key {rest}");
        };
        return unknown_key(unknown, allowed);
    }
    if let Some(rest) = msg.strip_prefix("missing field ") {
        return format!("missing required key {rest}");
    }
    if let Some(rest) = msg.strip_prefix("invalid type: ") {
        if let Some((found, expected)) = rest.rsplit_once(", expected ") {
            return format!(
                "expected {}; found {}",
                expected_for(path, expected, hint),
                found_as_written(found)
            );
        }
    }
    if let Some(rest) = msg.strip_prefix("invalid length ") {
        return format!("wrong number of items: {rest}");
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_closest_key_for_a_typo() {
        let allowed = ["listen", "max_concurrent_rotations", "retry_max"];
        assert_eq!(
            did_you_mean("max_concurent_rotations", &allowed),
            Some("max_concurrent_rotations")
        );
        assert_eq!(did_you_mean("colour", &allowed), None);
        assert_eq!(
            did_you_mean("role", &["region", "profile", "role_arn"]),
            Some("role_arn")
        );
        assert_eq!(
            did_you_mean("service", &["cluster", "services"]),
            Some("services")
        );
    }

    #[test]
    fn type_errors_speak_of_the_key_not_of_serde() {
        let m = describe_serde(
            "invalid type: string \"front\", expected a sequence",
            "secret[api].redeploy[0].services",
            &no_hint,
        );
        assert_eq!(
            m,
            "expected a list of ECS service names, e.g. services = [\"front\", \"api\"]; found the string \"front\""
        );
        let m = describe_serde(
            "invalid type: integer `30`, expected a string",
            "secret[a].every",
            &no_hint,
        );
        assert!(m.starts_with("expected a duration in quotes"), "{m}");
        assert!(m.ends_with("found the number 30"), "{m}");
    }

    /// Loads one file's text, split into parts or whole.
    fn load(text: &str, split: bool) -> Result<String, Vec<String>> {
        let registry = Registry::new();
        let mut v = Validator::new(&registry);
        let file = Path::new("s.toml");
        if split {
            load_text(&mut v, file, text);
        } else {
            let src = SourceMap::new(file, text);
            load_part(&mut v, &src, text, &mut 0);
        }
        v.finish(vec![file.to_path_buf()])
            .map(|c| format!("{:?}", c.secrets))
            .map_err(|e| e.0.iter().map(|e| e.to_string()).collect())
    }

    /// Pieces of configuration files: tables, sub-tables, keys, lookalikes of headers
    /// inside strings and comments, TOML errors.
    const PIECES: &[&str] = &[
        "[daemon]\nmax_concurrent_rotations = 4\n",
        "[daemon]\nretry_max = \"2h\"\n",
        "[aws]\nregion = \"eu-west-1\"\n",
        "[[secret]]\nname = \"s{n}\"\nsecret_id = \"app/{n}\"\nevery = \"30d\"\n",
        "[[secret]]\nsecret_id = \"app/u{n}\"\nevery = \"1d\"\n",
        "[[secret]]\nsecret_id = 5\n",
        "[[secret]]\nname = \"s{n}\"\nsecret_id = \"app/{n}\"\nevery = \"often\"\n",
        "[secret.target]\nkind = \"none\"\n",
        "[secret.generate]\nlength = 40\n",
        "[[secret.redeploy]]\ncluster = \"c\"\nservices = [\"a\"]\n",
        "every = \"7d\"\n",
        "name = \"dup\"\n",
        "x = [\n\"[[secret]]\",\n]\n",
        "# [[secret]]\n",
        "s = \"\"\"\n[aws]\n\"\"\"\n",
        "[events]\nsafety_poll = \"1m\"\n",
        "[secret]\n",
        "[ha]\nreplicas = 2\n",
        "bad = \n",
        "[\"aws\"]\nregion = \"us-east-1\"\n",
        "window = { cron = \"0 2 * * *\", duration = \"2h\" }\n",
        "jitter = \"bad\"\n",
        "[daemon.x]\n",
        "[[secret]]\nsecret_id = \"b\\q\"\nevery = \"1d\"\n",
        "# note \u{7f}\n",
        "[events]\nsafety_poll = 1__2\n",
        "ports = [\n  [1, 2],\n  [3],\n]\n",
        "t = { a = [1], b = { c = 2 } }\n",
        "  [[secret]]\n  name = \"i{n}\"\n  secret_id = \"app/i{n}\"\n  every = \"1d\"\n",
        "[[secret]]\r\nname = \"c{n}\"\r\nsecret_id = \"app/c{n}\"\r\nevery = \"1d\"\r\n",
        "[ secret . target ]\nkind = \"none\"\n",
        "[[secret]] # c\nname = \"h{n}\"\nsecret_id = \"app/h{n}\"\nevery = \"1d\"\n",
        "x = 1 [aws]\n",
        "[aws]]\n",
        "[[secret]\n",
        "\n  # comment\n\n",
    ];

    /// What the split load must report beside the TOML errors: the file's other errors,
    /// as the whole load reports them for the same file with each part that does not
    /// parse blanked (a secret's part by a placeholder secret, so that later unnamed
    /// secrets keep their number; lines kept, so that every line:col stays).
    fn errors_beside_toml_errors(text: &str) -> Vec<String> {
        let Some(parts) = super::super::split::parts(text) else {
            return Vec::new();
        };
        let mut blanked = String::new();
        for p in parts {
            let part = &text[p.range.clone()];
            if DeTable::parse_recoverable(part).1.is_empty() {
                blanked.push_str(part);
                continue;
            }
            let lines = part.matches('\n').count();
            let tail = &part[part.rfind('\n').map_or(0, |i| i + 1)..];
            let mut stub = if p.secret {
                "[[secret]]\nname = \"blanked-part\"\n".to_owned()
            } else {
                String::new()
            };
            let pad = lines.saturating_sub(stub.matches('\n').count());
            stub.push_str(&"\n".repeat(pad));
            stub.push_str(tail);
            blanked.push_str(&stub);
        }
        match load(&blanked, false) {
            Ok(_) => Vec::new(),
            Err(e) => e
                .into_iter()
                .filter(|e| !e.contains("blanked-part"))
                .collect(),
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 512,
            failure_persistence: None,
            ..Default::default()
        })]

        /// Split or whole, a file means the same: the same secrets, or the same errors. A
        /// TOML error fails its own part only, so the split load also reports the other
        /// parts' problems, exactly as they are (same line:col, same secret[#N]).
        #[test]
        fn a_split_file_loads_as_the_whole_file_does(
            picks in proptest::collection::vec(0..PIECES.len(), 0..14)
        ) {
            let text: String = picks
                .iter()
                .enumerate()
                .map(|(n, &i)| PIECES[i].replace("{n}", &n.to_string()))
                .collect();
            let whole = load(&text, false);
            let split = load(&text, true);
            let is_toml = |e: &String| e.contains("TOML syntax");
            match (&whole, &split) {
                (Err(w), Err(s)) if w.iter().any(is_toml) && super::super::split::parts(&text).is_some() => {
                    let toml = |v: &Vec<String>| {
                        let mut t: Vec<String> = v.iter().filter(|e| is_toml(e)).cloned().collect();
                        t.sort();
                        t
                    };
                    proptest::prop_assert_eq!(toml(w), toml(s), "{}", text);
                    let mut rest: Vec<String> = s.iter().filter(|e| !is_toml(e)).cloned().collect();
                    let mut expected = errors_beside_toml_errors(&text);
                    rest.sort();
                    expected.sort();
                    proptest::prop_assert_eq!(rest, expected, "{}", text);
                }
                _ => proptest::prop_assert_eq!(&whole, &split, "{}", text),
            }
        }
    }
}
