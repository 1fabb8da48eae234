//! The `command` table: which programs, how long they may run, their environment.

use crate::config::consumer::{argv_problem, env_ok, env_problem};
use crate::config::{Target, TargetKind, TargetTable, DURATION_EXPECTED};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;
use toml::Spanned;

const HOUR: Duration = Duration::from_secs(3600);

/// `target = { kind = "command", set, test, revoke, timeout, env }`.
pub struct Command;

/// The `command` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCommand {
    set: Option<Spanned<Vec<String>>>,
    test: Option<Spanned<Vec<String>>>,
    revoke: Option<Spanned<Vec<String>>>,
    timeout: Option<Spanned<String>>,
    env: Option<Spanned<BTreeMap<String, String>>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandTarget {
    pub set: Option<Vec<String>>,
    pub test: Option<Vec<String>>,
    pub revoke: Option<Vec<String>>,
    pub timeout: Duration,
    /// Extra environment for the programs (`env = { ... }`); nothing else is inherited.
    pub env: BTreeMap<String, String>,
}

impl TargetKind for Command {
    const NAME: &'static str = "command";
    type Raw = RawCommand;

    fn expects(key: &str, element: bool) -> Option<String> {
        match key {
            "set" | "test" | "revoke" if element => {
                Some("a string (the program and each argument in quotes)".into())
            }
            "set" | "test" | "revoke" => Some(format!(
                "a list of strings: the program, then its arguments (no shell is used), e.g. {key} = [\"/usr/local/bin/{key}-key\", \"--user\", \"app\"]"
            )),
            "timeout" => Some(DURATION_EXPECTED.into()),
            _ => None,
        }
    }

    fn parse(&self, raw: RawCommand, t: &mut TargetTable<'_>) -> Option<Target> {
        let mut argv = |name: &str, v: &Option<Spanned<Vec<String>>>| -> Option<Vec<String>> {
            let v = v.as_ref()?;
            let example = "[\"/usr/local/bin/set-key\", \"--user\", \"app\"]";
            if let Some(problem) = argv_problem(v.get_ref(), example) {
                t.error(v.span(), name, problem);
                return None;
            }
            Some(v.get_ref().clone())
        };
        let set = argv("set", &raw.set);
        let test = argv("test", &raw.test);
        let revoke = argv("revoke", &raw.revoke);
        if raw.set.is_none() && raw.test.is_none() && raw.revoke.is_none() {
            t.error(
                t.span(),
                "",
                "target kind \"command\" needs at least one of set, test, revoke",
            );
        }
        let timeout = match &raw.timeout {
            None => Duration::from_secs(60),
            Some(x) => t.duration("timeout", x, Duration::from_secs(1), HOUR)?,
        };
        let mut env = BTreeMap::new();
        if let Some(e) = &raw.env {
            for (k, v) in e.get_ref() {
                if env_ok(k, v) {
                    env.insert(k.clone(), v.clone());
                } else {
                    t.error(e.span(), "env", env_problem(k));
                }
            }
        }
        Some(Target::new(CommandTarget {
            set,
            test,
            revoke,
            timeout,
            env,
        }))
    }
}
