//! The bad-configuration corpus of the binary (`tests/config-bad/`, see
//! `tests/config_bad.rs` at the root for its format) run through the core's own loader,
//! with the one target kind the core has (`none`).
//!
//! The root test runs each case through `secret-rotator check` (exit code, stderr layout);
//! this one checks the same expected `FILE:LINE:COL: KEY: message` lines where the loader
//! lives, so that a change to validation is caught by the core's tests alone (and
//! `cargo mutants -p rotator-core` sees the corpus). Cases that name a target kind of
//! the binary (command, postgres, iam-access-key) are the root test's only.

use rotator_core::config::{load_dir_with, Registry};
use std::fs;
use std::path::{Path, PathBuf};

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/config-bad")
}

/// Kinds registered by the binary, not by the core: a case using one is skipped here.
const BINARY_KINDS: [&str; 3] = ["command", "postgres", "iam-access-key"];
/// Cases whose message depends on the keys of the binary's kinds (`set` is a key of
/// `command`, so the binary says "not a key of target kind" where the core alone says
/// "unknown key").
const BINARY_KEYS: [&str; 2] = ["target-missing-kind", "target-none-with-set"];

fn names_binary_kind(text: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim();
        (l.starts_with("kind") || l.contains("kind =") || l.contains("kind="))
            && BINARY_KINDS.iter().any(|k| l.contains(&format!("\"{k}\"")))
    }) || BINARY_KINDS
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
            .any(|t| names_binary_kind(&String::from_utf8_lossy(t)))
            || BINARY_KINDS.iter().any(|k| expected.contains(k))
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
