//! The port through which the core runs operator programs (the consumers restarted by
//! command, `redeploy = [{ command = [...] }]`): the core never spawns a process itself;
//! the binary gives the engine a [`ProgramRunner`] (`src/process.rs`, shared with the
//! `command` target kind), a test its fake.
//!
//! What every runner guarantees: the argv runs as given (no shell), with only the
//! environment passed (nothing of the daemon's is inherited: its AWS credentials stay
//! with it), stdin from the value when one is given and empty otherwise, killed with its
//! whole process group at the timeout or when the run is dropped, its output bounded and
//! masked with the [`Masker`] before it leaves the runner.

use super::target::Masker;
use futures::future::BoxFuture;
use secrecy::SecretString;
use std::fmt;
use std::time::Duration;

/// One program to run.
pub struct ProgramRun<'a> {
    /// The program (an absolute path) and its arguments.
    pub argv: &'a [String],
    /// The environment besides `PATH` and `LANG` (which these may replace).
    pub env: &'a [(String, String)],
    /// Written to its stdin (the `command` target's set, test, revoke); None: stdin is
    /// empty (consumer commands never get the value).
    pub stdin: Option<&'a SecretString>,
    /// Killed with its process group after this.
    pub timeout: Duration,
    /// What to mask in its output.
    pub masker: &'a Masker,
}

/// How a program ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code (0: success).
    Code(i32),
    /// It was killed by this signal (not by us).
    Signal(i32),
    /// It outlived its timeout: it and its process group were killed.
    TimedOut(Duration),
    /// It could not be started (no such file, not executable, ...).
    NotStarted(String),
    /// Waiting for it failed.
    Lost(String),
}

impl Exit {
    pub fn success(&self) -> bool {
        *self == Exit::Code(0)
    }

    /// The exit code, when it exited.
    pub fn code(&self) -> Option<i32> {
        match self {
            Exit::Code(c) => Some(*c),
            _ => None,
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit status {c}"),
            Exit::Signal(s) => write!(f, "killed by signal {s}"),
            Exit::TimedOut(d) => write!(
                f,
                "timed out after {}; the program and its process group were killed",
                crate::config::duration::format(*d)
            ),
            Exit::NotStarted(why) => write!(f, "cannot start: {why}"),
            Exit::Lost(why) => write!(f, "wait failed: {why}"),
        }
    }
}

/// A program's end and its output (each stream bounded, masked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramExit {
    pub exit: Exit,
    pub stdout: String,
    pub stderr: String,
}

/// Runs operator programs (see the module documentation for what every runner
/// guarantees).
pub trait ProgramRunner: Send + Sync + 'static {
    /// Runs one program to its end (or its timeout). Dropping the future kills it.
    fn run<'a>(&'a self, run: ProgramRun<'a>) -> BoxFuture<'a, ProgramExit>;

    /// Whether `program` (an absolute path) exists and may be executed by this process:
    /// the precheck before a rotation changes anything, and `check --remote`.
    fn check(&self, program: &str) -> Result<(), String>;
}
