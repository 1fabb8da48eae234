//! Reading the directory: which files, in which order, and turning TOML into raw tables.

use super::error::{ConfigError, ConfigErrors, Location, SourceMap};
use super::validate::Validator;
use super::Config;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

pub const DEFAULT_DIR: &str = "/etc/secret-rotator";

/// Files larger than this are refused: a schedule for 100,000 secrets fits in far less.
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

fn file_error(file: &Path, message: impl Into<String>) -> ConfigError {
    ConfigError {
        location: Location {
            file: file.to_path_buf(),
            line_col: None,
        },
        key: "-".into(),
        message: message.into(),
    }
}

/// Loads and validates every `*.toml` file of `dir`, in name order. Nothing is applied
/// unless everything is valid.
pub fn load_dir(dir: &Path) -> Result<Config, ConfigErrors> {
    let files = list_files(dir).map_err(|e| ConfigErrors(vec![e]))?;
    let mut v = Validator::default();
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

/// Parses one file's text and hands its tables to the validator.
pub(super) fn load_text(v: &mut Validator, file: &Path, text: &str) {
    let src = SourceMap::new(file, text);
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
            "daemon" | "aws" | "ha" if !value.get_ref().is_table() => {
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
            "ha" => {
                if let Some((raw, _)) = typed(v, &src, "ha", value.clone()) {
                    v.ha(&src, table_keys(&value), raw);
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
                for (i, mut item) in items.into_iter().enumerate() {
                    let span = item.span();
                    reject_arrays_of_tables(v, &src, &secret_label(&item, i), &mut item);
                    let label = secret_label(&item, i);
                    if let Some((raw, bad)) = typed(v, &src, &label, item) {
                        v.secret(&src, span, raw, &bad);
                    }
                }
            }
            other => v.push(src.error(
                key_span,
                other,
                "unknown section (allowed: [daemon], [aws], [ha], [[secret]])",
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
        v.push(src.error(at, label, describe_serde(err.message())));
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
                v.push(src.error(
                    at,
                    format!("{label}.{}", k.get_ref()),
                    describe_serde(e.message()),
                ));
                bad.push(k.get_ref().to_string());
            }
        }
    }
    if bad.is_empty() {
        let at = err.span().unwrap_or(span);
        v.push(src.error(at, label, describe_serde(err.message())));
        return None;
    }
    let rest = Spanned::new(span, DeValue::Table(good));
    T::deserialize(ValueDeserializer::from(rest))
        .ok()
        .map(|t| (t, bad))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// serde's wording, made a little closer to what a person wrote.
fn describe_serde(msg: &str) -> String {
    let mut msg = one_line(msg);
    for (internal, human) in [
        ("struct RawDaemon", "a table ([daemon])"),
        ("struct RawAws", "a table ([aws])"),
        ("struct RawHa", "a table ([ha])"),
        ("struct RawSecret", "a table ([[secret]])"),
        (
            "struct RawWindow",
            "a table { cron = \"...\", duration = \"...\" }",
        ),
        ("struct RawGenerate", "a table { length = ..., ... }"),
        ("struct RawTarget", "a table { kind = \"...\", ... }"),
        (
            "struct RawRedeploy",
            "a table { cluster = \"...\", services = [...] }",
        ),
        ("invalid type: map,", "invalid type: table or date,"),
        ("invalid type: sequence,", "invalid type: array,"),
        ("expected i64", "expected an integer"),
    ] {
        msg = msg.replace(internal, human);
    }
    if msg.contains(" as i128") || msg.contains(" as u128") {
        return "number out of range (expected a small integer)".to_owned();
    }
    if let Some(rest) = msg.strip_prefix("unknown field ") {
        return format!("unknown key {rest}");
    }
    if let Some(rest) = msg.strip_prefix("missing field ") {
        return format!("missing required key {rest}");
    }
    msg
}
