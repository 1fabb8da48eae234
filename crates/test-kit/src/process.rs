//! [`FakeRunner`]: the core's [`ProgramRunner`] port without processes, for the
//! consumer-command tests: each program (by its path) answers from a script of
//! [`Answer`]s, one per run, the last repeated; on tokio time, so paused clocks jump over
//! the delays. A run that lasts as long as its timeout or longer ends `TimedOut` at the
//! timeout, as a real one is killed then. Every run is logged ([`Ran`]): its argv, its
//! environment, whether a stdin value was given, and when it started and ended.

use crate::lock;
use futures::future::BoxFuture;
use rotator_core::rotation::process::{Exit, ProgramExit, ProgramRun, ProgramRunner};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How one run of a program ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub code: i32,
    pub delay: Duration,
    pub stdout: String,
    pub stderr: String,
}

impl Answer {
    /// Exits with `code` after `delay`, printing nothing.
    pub fn exit(code: i32, delay: Duration) -> Self {
        Self {
            code,
            delay,
            stdout: String::new(),
            stderr: String::new(),
        }
    }

    /// The same, printing `stderr`.
    pub fn with_stderr(mut self, stderr: &str) -> Self {
        self.stderr = stderr.into();
        self
    }
}

/// One run as the fake saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ran {
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Whether a value was given on stdin.
    pub stdin: bool,
    pub timeout: Duration,
    pub started: Instant,
    /// None while it runs (or when the run was dropped).
    pub ended: Option<Instant>,
}

#[derive(Default)]
struct State {
    scripts: BTreeMap<String, Vec<Answer>>,
    missing: BTreeSet<String>,
    runs: Vec<Ran>,
}

/// A scriptable runner; a cheap handle over shared state (give a clone, as an
/// `Arc<dyn ProgramRunner>`, to the engine and keep one to script and inspect).
#[derive(Clone, Default)]
pub struct FakeRunner {
    state: Arc<Mutex<State>>,
}

impl FakeRunner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs of `program` answer `answers` in order, the last one again and again.
    /// Unscripted programs exit 0 at once.
    pub fn script(&self, program: &str, answers: Vec<Answer>) -> &Self {
        lock(&self.state)
            .scripts
            .insert(program.to_owned(), answers);
        self
    }

    /// `program` does not exist: `check` refuses it and a run does not start.
    pub fn missing(&self, program: &str) -> &Self {
        lock(&self.state).missing.insert(program.to_owned());
        self
    }

    /// The runner as the engine takes it.
    pub fn port(&self) -> Arc<dyn ProgramRunner> {
        Arc::new(self.clone())
    }

    /// Every run so far, in start order.
    pub fn runs(&self) -> Vec<Ran> {
        lock(&self.state).runs.clone()
    }

    /// The runs of `program`.
    pub fn runs_of(&self, program: &str) -> Vec<Ran> {
        self.runs()
            .into_iter()
            .filter(|r| r.argv.first().map(String::as_str) == Some(program))
            .collect()
    }
}

/// Marks a run ended when it is done or dropped.
struct Running {
    state: Arc<Mutex<State>>,
    index: usize,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(r) = lock(&self.state).runs.get_mut(self.index) {
            if r.ended.is_none() {
                r.ended = Some(Instant::now());
            }
        }
    }
}

impl ProgramRunner for FakeRunner {
    fn run<'a>(&'a self, run: ProgramRun<'a>) -> BoxFuture<'a, ProgramExit> {
        let program = run.argv.first().cloned().unwrap_or_default();
        let (answer, index, missing) = {
            let mut st = lock(&self.state);
            let missing = st.missing.contains(&program);
            let n = st.runs_of_count(&program);
            let answer = st
                .scripts
                .get(&program)
                .and_then(|a| a.get(n).or_else(|| a.last()))
                .cloned()
                .unwrap_or_else(|| Answer::exit(0, Duration::ZERO));
            st.runs.push(Ran {
                argv: run.argv.to_vec(),
                env: run.env.iter().cloned().collect(),
                stdin: run.stdin.is_some(),
                timeout: run.timeout,
                started: Instant::now(),
                ended: None,
            });
            (answer, st.runs.len() - 1, missing)
        };
        let guard = Running {
            state: self.state.clone(),
            index,
        };
        let (timeout, masker) = (run.timeout, run.masker);
        Box::pin(async move {
            let _guard = guard;
            let ended = |exit| ProgramExit {
                exit,
                stdout: String::new(),
                stderr: String::new(),
            };
            if missing {
                return ended(Exit::NotStarted(
                    "No such file or directory (os error 2)".into(),
                ));
            }
            if answer.delay >= timeout {
                tokio::time::sleep(timeout).await;
                return ended(Exit::TimedOut(timeout));
            }
            tokio::time::sleep(answer.delay).await;
            ProgramExit {
                exit: Exit::Code(answer.code),
                stdout: masker.mask(&answer.stdout),
                stderr: masker.mask(&answer.stderr),
            }
        })
    }

    fn check(&self, program: &str) -> Result<(), String> {
        if lock(&self.state).missing.contains(program) {
            Err("No such file or directory (os error 2)".into())
        } else {
            Ok(())
        }
    }
}

impl State {
    fn runs_of_count(&self, program: &str) -> usize {
        self.runs
            .iter()
            .filter(|r| r.argv.first().map(String::as_str) == Some(program))
            .count()
    }
}
