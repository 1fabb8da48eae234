//! The `command` table: which programs, how long they may run, their environment.

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
            if v.get_ref().is_empty() || v.get_ref()[0].trim().is_empty() {
                t.error(v.span(), name,
                    "must be a non-empty argv array, program first (e.g. [\"/usr/local/bin/set-key\", \"--user\", \"app\"]); no shell is used");
                return None;
            }
            // A relative name would be looked up in PATH or the working directory,
            // which whoever controls those could fill with a program of their own.
            if !v.get_ref()[0].starts_with('/') {
                t.error(
                    v.span(),
                    name,
                    format!(
                    "the program must be an absolute path (e.g. \"/usr/local/bin/{}\"), not \"{}\"",
                    v.get_ref()[0].rsplit('/').next().unwrap_or_default(), v.get_ref()[0]),
                );
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
                let bad_name = k.is_empty()
                    || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    || k.starts_with(|c: char| c.is_ascii_digit());
                if bad_name || k.starts_with("SECRET_ROTATOR_") || v.contains('\0') {
                    t.error(e.span(), "env", format!(
                        "\"{k}\": environment names are letters, digits and _ (not starting with a digit, not SECRET_ROTATOR_*), values without NUL"));
                } else {
                    env.insert(k.clone(), v.clone());
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
