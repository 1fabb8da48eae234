//! The bad-configuration corpus of the binary (`tests/config-bad/`, see
//! `tests/config_bad.rs` at the root for its format) run through the core's own loader,
//! with the one target kind the core has (`none`).
//!
//! The root test runs each case through `secret-rotator check` (exit code, stderr layout);
//! this one checks the same expected `FILE:LINE:COL: KEY: message` lines where the loader
//! lives, so that a change to validation is caught by the core's tests alone (and
//! `cargo mutants -p rotator-core` sees the corpus). Cases that name a target kind of
//! the binary (any kind the corpus names that it does not expect to be unknown) are the
//! root test's only.

use rotator_core::config::{load_dir_with, Registry};
use std::fs;
use std::path::{Path, PathBuf};

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/config-bad")
}

/// Cases whose message depends on the keys of the binary's kinds (`set` is a key of
/// `command`, so the binary says "not a key of target kind" where the core alone says
/// "unknown key").
const BINARY_KEYS: [&str; 2] = ["target-missing-kind", "target-none-with-set"];

/// The values of `kind = "..."` in a case's text.
fn kinds_named(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for l in text.lines() {
        let mut rest = l;
        while let Some(i) = rest.find("kind") {
            rest = &rest[i + 4..];
            let Some(v) = rest.trim_start().strip_prefix('=') else {
                continue;
            };
            if let Some(v) = v.trim_start().strip_prefix('"') {
                if let Some(end) = v.find('"') {
                    out.push(v[..end].to_owned());
                }
            }
        }
    }
    out
}

/// The binary's kinds, read from the corpus itself: every kind a case names, except the
/// core's `none` and the kinds the corpus expects to be unknown. A kind added to the
/// binary (with cases of its own) needs no change here.
fn binary_kinds(dir: &Path) -> Vec<String> {
    let mut named = Vec::new();
    let mut expected = String::new();
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "expected") {
            expected.push_str(&fs::read_to_string(&path).unwrap());
        } else if path.extension().is_some_and(|e| e == "toml") || path.is_dir() {
            for t in texts(&path) {
                named.extend(kinds_named(&String::from_utf8_lossy(&t)));
            }
        }
    }
    named.sort();
    named.dedup();
    named
        .into_iter()
        .filter(|k| k != "none" && !expected.contains(&format!("unknown target kind \"{k}\"")))
        .collect()
}

fn names_binary_kind(text: &str, kinds: &[String]) -> bool {
    kinds_named(text).iter().any(|k| kinds.contains(k))
        || kinds
            .iter()
            .any(|k| text.contains(&format!("[secret.target.{k}")))
}

/// Every `.toml` text of a case (a file or a directory of files).
fn texts(path: &Path) -> Vec<Vec<u8>> {
    if path.is_dir() {
        fs::read_dir(path)
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_file())
            .map(|e| fs::read(e.path()).unwrap())
            .collect()
    } else {
        vec![fs::read(path).unwrap()]
    }
}

fn copy_into(src: &Path, dst: &Path) {
    if src.is_dir() {
        for entry in fs::read_dir(src).unwrap().flatten() {
            let to = dst.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                fs::create_dir(&to).unwrap();
                copy_into(&entry.path(), &to);
            } else {
                fs::copy(entry.path(), &to).unwrap();
            }
        }
    } else {
        fs::copy(src, dst.join(src.file_name().unwrap())).unwrap();
    }
}

#[test]
fn the_bad_configuration_corpus_is_refused_by_the_core_loader_with_each_expected_line() {
    let dir = cases_dir();
    let kinds = binary_kinds(&dir);
    assert!(
        kinds.iter().any(|k| k == "postgres"),
        "the corpus names the binary's kinds: {kinds:?}"
    );
    let mut ran = 0;
    let mut failures = Vec::new();
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .expect("tests/config-bad at the workspace root")
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(name) = file_name.strip_suffix(".expected") else {
            continue;
        };
        let case = if dir.join(name).is_dir() {
            dir.join(name)
        } else {
            dir.join(format!("{name}.toml"))
        };
        if !case.exists() || BINARY_KEYS.contains(&name) {
            continue; // the root test reports a lone .expected
        }
        let case_texts = texts(&case);
        let expected = fs::read_to_string(entry.path()).unwrap();
        if case_texts
            .iter()
            .any(|t| names_binary_kind(&String::from_utf8_lossy(t), &kinds))
            || kinds.iter().any(|k| expected.contains(k.as_str()))
        {
            continue;
        }
        let tmp = tempfile::tempdir().unwrap();
        copy_into(&case, tmp.path());
        ran += 1;
        let errors = match load_dir_with(tmp.path(), &Registry::new()) {
            Ok(_) => {
                failures.push(format!("{name}: accepted"));
                continue;
            }
            // The summary line `secret-rotator check` ends with.
            Err(e) => format!("{e}\nerror: {} problem(s)", e.0.len()),
        };
        for line in expected
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        {
            match line.strip_prefix('!') {
                Some(absent) if errors.contains(absent) => {
                    failures.push(format!("{name}: must not say {absent:?}; said:\n{errors}"))
                }
                Some(_) => {}
                None if !errors.contains(line) => {
                    failures.push(format!("{name}: must say {line:?}; said:\n{errors}"))
                }
                None => {}
            }
        }
    }
    assert!(
        ran >= 100,
        "only {ran} cases ran: is tests/config-bad there?"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
