//! The consumers of a secret (`redeploy = [...]`): ECS services to force a new deployment
//! of, and programs that restart a consumer outside ECS (a Kubernetes deployment, a VM's
//! service, a Code Engine app). Also the argv and environment rules every operator
//! program follows, shared with the `command` target kind.

use crate::ids::ServiceRef;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// One entry of a secret's consumers, in configuration order.
///
/// The size of a [`ServiceRef`] (the command behind one pointer): a secret's consumer
/// list costs what it did before command consumers existed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Consumer {
    /// An ECS service: forced to a new deployment, waited on until stable.
    Service(ServiceRef),
    /// A program that restarts a consumer, and the one that tells it is healthy.
    Command(Arc<CommandConsumer>),
}

#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Consumer>() == std::mem::size_of::<ServiceRef>());

impl Consumer {
    pub fn service(&self) -> Option<&ServiceRef> {
        match self {
            Consumer::Service(s) => Some(s),
            Consumer::Command(_) => None,
        }
    }

    pub fn command(&self) -> Option<&Arc<CommandConsumer>> {
        match self {
            Consumer::Service(_) => None,
            Consumer::Command(c) => Some(c),
        }
    }
}

impl From<ServiceRef> for Consumer {
    fn from(s: ServiceRef) -> Self {
        Consumer::Service(s)
    }
}

impl From<CommandConsumer> for Consumer {
    fn from(c: CommandConsumer) -> Self {
        Consumer::Command(Arc::new(c))
    }
}

impl fmt::Display for Consumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Consumer::Service(s) => s.fmt(f),
            Consumer::Command(c) => c.fmt(f),
        }
    }
}

/// `{ command = [...], verify = [...], timeout = "...", env = { ... } }`: after the value
/// became current, `command` runs (argv only, no shell; the value is never given to it),
/// then `verify` until it exits 0, all within `timeout`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandConsumer {
    /// The program (an absolute path) and its arguments.
    pub command: Vec<String>,
    /// Run after `command` succeeded, again with backoff until it exits 0.
    pub verify: Option<Vec<String>>,
    /// For `command` and `verify` together (default: the secret's `stable_timeout`).
    pub timeout: Duration,
    /// Extra environment of both programs; nothing else of the daemon's is inherited.
    pub env: BTreeMap<String, String>,
}

impl CommandConsumer {
    /// What is run once for every secret that asks within the coalescing window: the
    /// same program, arguments and environment.
    pub fn run_key(&self) -> (&[String], &BTreeMap<String, String>) {
        (&self.command, &self.env)
    }
}

/// `command /usr/bin/kubectl rollout restart deployment/api`: how logs, reports, `plan`
/// and the metrics name it (arguments with spaces or quotes quoted).
impl fmt::Display for CommandConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("command ")?;
        f.write_str(&argv_text(&self.command))
    }
}

/// An argv as one line: arguments joined by spaces, those that need it quoted (for
/// reading only: nothing parses it back, and no shell ever runs it).
pub fn argv_text(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/._-=:,@%+".contains(c));
            if plain {
                a.clone()
            } else {
                format!("{a:?}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why `argv` cannot be run as an operator program, if it cannot: empty, a blank
/// program, or a program that is not an absolute path. `example` is a good argv for the
/// setting, as written in TOML.
pub fn argv_problem(argv: &[String], example: &str) -> Option<String> {
    let Some(program) = argv.first().filter(|p| !p.trim().is_empty()) else {
        return Some(format!(
            "must be a non-empty argv array, program first (e.g. {example}); no shell is used"
        ));
    };
    // A relative name would be looked up in PATH or the working directory, which
    // whoever controls those could fill with a program of their own.
    if !program.starts_with('/') {
        return Some(format!(
            "the program must be an absolute path (e.g. \"/usr/local/bin/{}\"), not \"{program}\"",
            program.rsplit('/').next().unwrap_or_default()
        ));
    }
    if argv.iter().any(|a| a.contains('\0')) {
        return Some("arguments cannot contain NUL".into());
    }
    None
}

/// Whether `name = value` may be given to an operator program: names of letters, digits
/// and `_` (not starting with a digit), not `SECRET_ROTATOR_*` (the daemon sets those),
/// values without NUL.
pub fn env_ok(name: &str, value: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && !name.starts_with("SECRET_ROTATOR_")
        && !value.contains('\0')
}

/// The message of a refused `env` entry.
pub fn env_problem(name: &str) -> String {
    format!("\"{name}\": environment names are letters, digits and _ (not starting with a digit, not SECRET_ROTATOR_*), values without NUL")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn argv_rules() {
        let e = "[\"/bin/true\"]";
        assert_eq!(argv_problem(&v(&["/usr/bin/kubectl", "get"]), e), None);
        let m = argv_problem(&[], e).unwrap();
        assert!(
            m.contains("non-empty argv array, program first (e.g. [\"/bin/true\"])"),
            "{m}"
        );
        assert!(argv_problem(&v(&[" "]), e).unwrap().contains("non-empty"));
        let m = argv_problem(&v(&["bin/kubectl"]), e).unwrap();
        assert!(
            m.contains("absolute path (e.g. \"/usr/local/bin/kubectl\")"),
            "{m}"
        );
        assert!(argv_problem(&v(&["/bin/x", "a\0b"]), e).is_some());
    }

    #[test]
    fn env_rules() {
        assert!(env_ok("KUBECONFIG", "/etc/k"));
        assert!(env_ok("_X1", ""));
        for bad in ["", "1X", "A-B", "SECRET_ROTATOR_SECRET"] {
            assert!(!env_ok(bad, "x"), "{bad}");
        }
        assert!(!env_ok("A", "x\0y"));
    }

    #[test]
    fn argv_reads_as_one_line() {
        assert_eq!(
            argv_text(&v(&[
                "/usr/bin/ssh",
                "vm-1",
                "sudo systemctl restart app",
                ""
            ])),
            "/usr/bin/ssh vm-1 \"sudo systemctl restart app\" \"\""
        );
        let c = CommandConsumer {
            command: v(&["/usr/bin/kubectl", "rollout", "restart", "deployment/api"]),
            verify: None,
            timeout: Duration::from_secs(60),
            env: BTreeMap::new(),
        };
        assert_eq!(
            Consumer::from(c).to_string(),
            "command /usr/bin/kubectl rollout restart deployment/api"
        );
    }
}
