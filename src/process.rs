//! Running operator programs: the `command` target's set, test and revoke, and the
//! consumers restarted by command (the core's [`ProgramRunner`] port).
//!
//! No shell: the argv runs as given (an absolute path, checked in config). The
//! environment is not inherited: the daemon's AWS credentials and session tokens,
//! `NOTIFY_SOCKET` and the rest stay with the daemon; a program gets `PATH`
//! ([`DEFAULT_PATH`]), `LANG` (the daemon's, else `C.UTF-8`) and what the caller passes
//! (which may replace both). Stdin carries the value when the caller gives one (never
//! argv or the environment, which other users can read in /proc), and is empty
//! otherwise. A program that outlives its timeout is killed with its whole process group,
//! as is one whose run is dropped (a rotation abandoned when its lease lapsed). Its
//! output is kept up to [`OUTPUT_LIMIT`] per stream and masked before it leaves here.

use rotator_core::rotation::process::{Exit, ProgramExit, ProgramRun, ProgramRunner};
use secrecy::ExposeSecret;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// Output kept per stream; the rest is read and dropped so the program never blocks.
pub const OUTPUT_LIMIT: u64 = 64 * 1024;
/// `PATH` for operator programs unless their `env` sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The binary's [`ProgramRunner`]: real processes, as [`run`] starts them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Processes;

impl ProgramRunner for Processes {
    fn run<'a>(&'a self, run: ProgramRun<'a>) -> futures::future::BoxFuture<'a, ProgramExit> {
        Box::pin(self::run(run))
    }

    fn check(&self, program: &str) -> Result<(), String> {
        check(program)
    }
}

/// Whether `program` is a regular file with an execute bit (`check --remote` and the
/// precheck of a rotation). The exec itself has the last word (ownership, ACLs, noexec
/// mounts); this finds the missing or mistyped paths before anything changes.
pub fn check(program: &str) -> Result<(), String> {
    let meta = std::fs::metadata(program).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err("not executable (no execute permission)".into());
    }
    Ok(())
}

/// Up to [`OUTPUT_LIMIT`] bytes, and whether more was dropped.
async fn read_limited<R: AsyncRead + Unpin>(r: Option<R>) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut cut = false;
    if let Some(mut r) = r {
        let _ = (&mut r).take(OUTPUT_LIMIT).read_to_end(&mut out).await;
        cut = tokio::io::copy(&mut r, &mut tokio::io::sink())
            .await
            .is_ok_and(|n| n > 0);
    }
    (out, cut)
}

/// Runs one program to its end or its timeout (see the module documentation).
pub async fn run(p: ProgramRun<'_>) -> ProgramExit {
    let ended = |exit: Exit| ProgramExit {
        exit,
        stdout: String::new(),
        stderr: String::new(),
    };
    let Some(program) = p.argv.first() else {
        return ended(Exit::NotStarted("empty argv".into()));
    };
    let lang = std::env::var("LANG").unwrap_or_else(|_| "C.UTF-8".into());
    let spawned = tokio::process::Command::new(program)
        .args(&p.argv[1..])
        .env_clear()
        .env("PATH", DEFAULT_PATH)
        .env("LANG", lang)
        .envs(p.env.iter().map(|(k, v)| (k, v)))
        .stdin(if p.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so that a timeout kills what it started too.
        .process_group(0)
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => return ended(Exit::NotStarted(e.to_string())),
    };
    // Abandoned mid-run (e.g. the rotation stopped because its lease lapsed): kill what the
    // program started too, not only the program, so nothing keeps changing the target.
    let mut group = KillGroupOnDrop(child.id());
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let value = p.stdin;
    let io = async {
        let feed = async {
            if let (Some(mut s), Some(v)) = (stdin, value) {
                // A program that does not read stdin closes the pipe; that is not an error.
                let _ = s.write_all(v.expose_secret().as_bytes()).await;
                let _ = s.shutdown().await;
            }
        };
        let (_, out, err) = tokio::join!(feed, read_limited(stdout), read_limited(stderr));
        let status = child.wait().await;
        (status, out, err)
    };
    let (status, out, err) = match tokio::time::timeout(p.timeout, io).await {
        Ok(r) => {
            group.0 = None;
            r
        }
        Err(_) => {
            kill_group(group.0.take());
            return ended(Exit::TimedOut(p.timeout));
        }
    };
    // A value cut at the limit leaves a prefix at the end of the kept output.
    let mask = |(b, cut): &(Vec<u8>, bool)| {
        let text = String::from_utf8_lossy(b);
        if *cut {
            p.masker.mask_cut(&text)
        } else {
            p.masker.mask(&text)
        }
    };
    let exit = match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(c), _) => Exit::Code(c),
            (None, Some(sig)) => Exit::Signal(sig),
            (None, None) => Exit::Lost(s.to_string()),
        },
        Err(e) => Exit::Lost(e.to_string()),
    };
    ProgramExit {
        exit,
        stdout: mask(&out),
        stderr: mask(&err),
    }
}

struct KillGroupOnDrop(Option<u32>);

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        kill_group(self.0.take());
    }
}

/// SIGKILL to the program's process group (the program itself is also killed when its
/// handle is dropped).
fn kill_group(pid: Option<u32>) {
    let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) else {
        return;
    };
    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rotator_core::rotation::target::Masker;
    use secrecy::SecretString;
    use std::time::Duration;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn exit_codes_output_and_a_clean_environment() {
        let masker = Masker::of(&SecretString::from("hunter2-long-enough"));
        let a = argv(&[
            "/bin/sh",
            "-c",
            "echo \"$A:${HOME:-none}:hunter2-long-enough\"; echo oops >&2; exit 3",
        ]);
        let env = [("A".to_string(), "x".to_string())];
        let e = run(ProgramRun {
            argv: &a,
            env: &env,
            stdin: None,
            timeout: Duration::from_secs(10),
            masker: &masker,
        })
        .await;
        assert_eq!(e.exit, Exit::Code(3));
        assert_eq!(e.stdout.trim(), "x:none:***");
        assert_eq!(e.stderr.trim(), "oops");
    }

    #[tokio::test]
    async fn a_missing_program_does_not_start_and_a_slow_one_times_out() {
        let masker = Masker::new();
        let a = argv(&["/nonexistent/prog"]);
        let e = run(ProgramRun {
            argv: &a,
            env: &[],
            stdin: None,
            timeout: Duration::from_secs(10),
            masker: &masker,
        })
        .await;
        assert!(matches!(e.exit, Exit::NotStarted(_)), "{:?}", e.exit);
        let a = argv(&["/bin/sleep", "30"]);
        let e = run(ProgramRun {
            argv: &a,
            env: &[],
            stdin: None,
            timeout: Duration::from_millis(200),
            masker: &masker,
        })
        .await;
        assert_eq!(e.exit, Exit::TimedOut(Duration::from_millis(200)));
    }

    #[test]
    fn check_finds_missing_and_non_executable_programs() {
        assert_eq!(check("/bin/sh"), Ok(()));
        assert!(check("/nonexistent/prog").is_err());
        assert_eq!(check("/"), Err("not a regular file".into()));
        let f = tempfile::NamedTempFile::new().unwrap();
        assert!(check(f.path().to_str().unwrap())
            .unwrap_err()
            .contains("not executable"));
    }
}
