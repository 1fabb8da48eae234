//! Bad configurations must be refused by `secret-rotator check`, each problem reported
//! as `FILE:LINE:COL: KEY: message`, with exit code 78 and nothing on stdout.
//!
//! The cases live in `tests/config-bad/`: a case is a file `NAME.toml` or a directory
//! `NAME/` of `*.toml` files (for problems that span files), next to `NAME.expected`.
//! Adding a case needs no code change. In `NAME.expected`, one line per check:
//!
//! * `TEXT`: must appear in stderr (normally `FILE.toml:LINE:COL: KEY: ` and a fragment
//!   of the message; the path printed before `FILE.toml` is the temp dir of the run);
//! * `!TEXT`: must not appear in stderr;
//! * `# ...` and blank lines are ignored.
//!
//! Besides the expectations, every run must exit 78, print nothing on stdout, never
//! panic, print one problem per line (each starting with the config dir path) and end
//! with `error: N problem(s) ...` where N is the number of problem lines.
//!
//! Cases that cannot be committed (huge file, dangling symlink, a directory named
//! `x.toml`, a missing or empty directory) are made at run time by the small tests below.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CONFIG_EXIT: i32 = 78;
const USAGE_EXIT: i32 = 64;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_secret-rotator")
}

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/config-bad")
}

/// Runs the binary with a clean environment for the settings it reads.
fn run(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(bin())
        .args(args)
        .env_remove("SECRET_ROTATOR_CONFIG")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .output()
        .expect("run secret-rotator")
}

fn check(dir: &Path) -> Output {
    run(&["check".as_ref(), "--config".as_ref(), dir.as_os_str()])
}

#[derive(Debug)]
enum Expect {
    Present(String),
    Absent(String),
}

fn parse_expected(text: &str) -> Vec<Expect> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| match l.strip_prefix('!') {
            Some(rest) => Expect::Absent(rest.to_owned()),
            None => Expect::Present(l.to_owned()),
        })
        .collect()
}

struct Case {
    name: String,
    /// `NAME.toml` or `NAME/`.
    path: PathBuf,
    expected: Vec<Expect>,
}

/// Lists the cases; a case without expectations (or the reverse) is itself a failure.
fn discover() -> (Vec<Case>, Vec<String>) {
    let dir = cases_dir();
    let mut names = Vec::new();
    let mut expectations = Vec::new();
    let mut problems = Vec::new();
    for entry in fs::read_dir(&dir).expect("list tests/config-bad") {
        let entry = entry.expect("list tests/config-bad");
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if file_name.starts_with('.') {
            continue; // .gitattributes
        }
        let is_dir = entry.file_type().expect("file type").is_dir();
        if let Some(stem) = file_name.strip_suffix(".expected") {
            expectations.push(stem.to_owned());
        } else if is_dir {
            names.push((file_name.clone(), entry.path()));
        } else if let Some(stem) = file_name.strip_suffix(".toml") {
            names.push((stem.to_owned(), entry.path()));
        } else {
            problems.push(format!(
                "tests/config-bad/{file_name}: neither a case nor an .expected file"
            ));
        }
    }
    names.sort();
    for stem in &expectations {
        if !names.iter().any(|(n, _)| n == stem) {
            problems.push(format!(
                "tests/config-bad/{stem}.expected: no case {stem}.toml or {stem}/"
            ));
        }
    }
    let mut cases = Vec::new();
    for (name, path) in names {
        let exp_path = dir.join(format!("{name}.expected"));
        let Ok(text) = fs::read_to_string(&exp_path) else {
            problems.push(format!(
                "case {name}: missing tests/config-bad/{name}.expected"
            ));
            continue;
        };
        let expected = parse_expected(&text);
        if !expected.iter().any(|e| matches!(e, Expect::Present(_))) {
            problems.push(format!(
                "case {name}: {name}.expected lists nothing that must appear"
            ));
            continue;
        }
        cases.push(Case {
            name,
            path,
            expected,
        });
    }
    (cases, problems)
}

/// Copies a file or a directory tree byte for byte (invalid UTF-8, CRLF and BOM included).
fn copy_into(src: &Path, dst_dir: &Path) {
    if src.is_dir() {
        for entry in fs::read_dir(src).expect("list case dir") {
            let entry = entry.expect("list case dir");
            let to = dst_dir.join(entry.file_name());
            if entry.file_type().expect("file type").is_dir() {
                fs::create_dir(&to).expect("mkdir");
                copy_into(&entry.path(), &to);
            } else {
                fs::copy(entry.path(), &to).expect("copy case file");
            }
        }
    } else {
        fs::copy(src, dst_dir.join(src.file_name().expect("file name"))).expect("copy case file");
    }
}

/// The checks every refused configuration must pass; returns what went wrong.
fn refused_problems(out: &Output, dir: &Path, expected: &[Expect]) -> Vec<String> {
    let mut problems = Vec::new();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.code() != Some(CONFIG_EXIT) {
        problems.push(format!(
            "exit status {:?}, expected {CONFIG_EXIT}",
            out.status.code()
        ));
    }
    if !stdout.is_empty() {
        problems.push(format!("stdout is not empty: {stdout:?}"));
    }
    if stderr.contains("panicked") {
        problems.push("the loader panicked".to_owned());
    }
    for e in expected {
        match e {
            Expect::Present(s) if !stderr.contains(s.as_str()) => {
                problems.push(format!("missing:    {s}"))
            }
            Expect::Absent(s) if stderr.contains(s.as_str()) => {
                problems.push(format!("unexpected: {s}"))
            }
            _ => {}
        }
    }
    // Format: one problem per line, each starting with the config dir, then the summary.
    let prefix = dir.display().to_string();
    let lines: Vec<&str> = stderr.lines().collect();
    match lines.split_last() {
        None => problems.push("stderr is empty".to_owned()),
        Some((last, body)) => {
            let summary = format!(
                "error: {} problem(s) in the configuration; nothing was changed",
                body.len()
            );
            if *last != summary {
                problems.push(format!(
                    "last stderr line is {last:?}, expected {summary:?}"
                ));
            }
            for l in body {
                if !l.starts_with(&prefix) {
                    problems.push(format!(
                        "stderr line does not start with the config path: {l:?}"
                    ));
                }
            }
        }
    }
    problems
}

/// Stderr with the temp dir replaced by `<dir>`, indented, for failure reports.
fn show(out: &Output, dir: &Path) -> String {
    String::from_utf8_lossy(&out.stderr)
        .replace(&dir.display().to_string(), "<dir>")
        .lines()
        .map(|l| format!("      | {l}\n"))
        .collect()
}

fn assert_refused(out: &Output, dir: &Path, expected: &[Expect]) {
    let problems = refused_problems(out, dir, expected);
    assert!(
        problems.is_empty(),
        "{}\n    stderr:\n{}",
        problems.join("\n"),
        show(out, dir)
    );
}

#[test]
fn every_bad_case_is_refused_with_its_errors() {
    let (cases, mut failures) = discover();
    assert!(
        cases.len() >= 55,
        "only {} cases in tests/config-bad",
        cases.len()
    );
    for case in &cases {
        let tmp = tempfile::tempdir().expect("temp dir");
        copy_into(&case.path, tmp.path());
        let out = check(tmp.path());
        let problems = refused_problems(&out, tmp.path(), &case.expected);
        if !problems.is_empty() {
            let mut report = format!(
                "case {} (tests/config-bad/{}):\n",
                case.name,
                case.path.file_name().unwrap_or_default().to_string_lossy()
            );
            for p in problems {
                report.push_str(&format!("    {p}\n"));
            }
            report.push_str("    stderr:\n");
            report.push_str(&show(&out, tmp.path()));
            failures.push(report);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} config-bad cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn present(s: &str) -> Expect {
    Expect::Present(s.to_owned())
}

const VALID_SECRET: &str =
    "[[secret]]\nname = \"api\"\nsecret_id = \"prod/api\"\nevery = \"30d\"\n";

#[test]
fn file_over_64_mib_is_refused_unread() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("a.toml"), VALID_SECRET).unwrap();
    // Sparse: takes no disk space, and the loader must not read it to refuse it.
    let f = fs::File::create(tmp.path().join("huge.toml")).unwrap();
    f.set_len(64 * 1024 * 1024 + 1).unwrap();
    drop(f);
    let out = check(tmp.path());
    assert_refused(
        &out,
        tmp.path(),
        &[
            present("huge.toml: file is 67108865 bytes (at most 67108864 allowed)"),
            present("error: 1 problem(s)"),
        ],
    );
}

#[cfg(unix)]
#[test]
fn dangling_symlink_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("a.toml"), VALID_SECRET).unwrap();
    std::os::unix::fs::symlink(
        tmp.path().join("nowhere/secrets.toml"),
        tmp.path().join("linked.toml"),
    )
    .unwrap();
    let out = check(tmp.path());
    assert_refused(
        &out,
        tmp.path(),
        &[
            present("linked.toml: broken symbolic link"),
            present("error: 1 problem(s)"),
        ],
    );
}

#[test]
fn directory_named_toml_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("a.toml"), VALID_SECRET).unwrap();
    fs::create_dir(tmp.path().join("x.toml")).unwrap();
    let out = check(tmp.path());
    assert_refused(
        &out,
        tmp.path(),
        &[
            present("x.toml: not a regular file"),
            present("error: 1 problem(s)"),
        ],
    );
}

#[test]
fn missing_config_dir_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-dir");
    let out = check(&missing);
    assert_refused(&out, &missing, &[present(": cannot read config directory")]);
}

#[test]
fn config_path_that_is_a_file_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("secret-rotator.toml");
    fs::write(&file, VALID_SECRET).unwrap();
    let out = check(&file);
    assert_refused(&out, &file, &[present(": cannot read config directory")]);
}

#[test]
fn empty_config_dir_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = check(tmp.path());
    assert_refused(
        &out,
        tmp.path(),
        &[present(": no *.toml files in the config directory")],
    );
}

#[test]
fn shipped_example_config_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let out = check(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "check --config config failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("config ok: "), "stdout: {stdout:?}");
}

#[test]
fn command_line_misuse_exits_64() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().as_os_str();
    let cases: &[&[&std::ffi::OsStr]] = &[
        &["frobnicate".as_ref(), "--config".as_ref(), dir],
        &[
            "check".as_ref(),
            "--frobnicate".as_ref(),
            "--config".as_ref(),
            dir,
        ],
        &["--no-such-flag".as_ref(), "check".as_ref()],
        &["check".as_ref(), "--config".as_ref()],
        &[],
    ];
    for args in cases {
        let out = run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(USAGE_EXIT),
            "args {args:?}: stderr:\n{stderr}"
        );
        assert!(out.stdout.is_empty(), "args {args:?}: stdout not empty");
        assert!(!stderr.contains("panicked"), "args {args:?}: {stderr}");
    }
}
