//! The target-kind seam of the core, with a kind that exists only here (`flag`): what the
//! loader checks for every kind, what it leaves to the kind, and that the engine-facing
//! functions reach the kind's own answers. The binary's kinds have their own tests.

use rotator_core::config::{
    load_dir_with, Config, ConfigErrors, Registry, Target, TargetKind, TargetTable,
    DURATION_EXPECTED,
};
use rotator_core::rotation::target::{self, ConfiguredTarget};
use std::time::Duration;
use toml::Spanned;

/// `target = { kind = "flag", label, level, wait }`.
struct Flag;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlag {
    label: Option<Spanned<String>>,
    level: Option<Spanned<i64>>,
    wait: Option<Spanned<String>>,
}

#[derive(Debug)]
struct FlagTarget {
    label: String,
    level: u8,
    wait: Duration,
}

impl TargetKind for Flag {
    const NAME: &'static str = "flag";
    type Raw = RawFlag;
    const MAKES_VALUE: bool = true;

    fn expects(key: &str, _element: bool) -> Option<String> {
        (key == "wait").then(|| DURATION_EXPECTED.into())
    }

    fn parse(&self, raw: RawFlag, t: &mut TargetTable<'_>) -> Option<Target> {
        let label = match raw.label {
            Some(l) => l.into_inner(),
            None => {
                t.error(t.span(), "label", "target kind \"flag\" needs `label`");
                String::new()
            }
        };
        let level = match &raw.level {
            None => 1,
            Some(l) => match u8::try_from(*l.get_ref()) {
                Ok(v) if (1..=9).contains(&v) => v,
                _ => {
                    t.error(
                        l.span(),
                        "level",
                        format!("{} is out of range (allowed 1 to 9)", l.get_ref()),
                    );
                    0
                }
            },
        };
        let wait = match &raw.wait {
            None => Duration::from_secs(5),
            Some(w) => t.duration("wait", w, Duration::from_secs(1), Duration::from_secs(60))?,
        };
        Some(Target::new(FlagTarget { label, level, wait }))
    }
}

impl ConfiguredTarget for FlagTarget {
    fn kind(&self) -> &'static str {
        Flag::NAME
    }
    fn makes_value(&self) -> bool {
        Flag::MAKES_VALUE
    }
    fn fresh_value_on_retry(&self) -> bool {
        self.level < 5
    }
    fn step_budget(&self, step_timeout: Duration) -> Duration {
        step_timeout.max(self.wait * 100)
    }
    fn describe_create(&self, _cfg: &rotator_core::config::SecretConfig) -> Option<String> {
        Some(format!("raise flag {}", self.label))
    }
    fn create_value<'a>(
        &'a self,
        _env: &'a target::TargetEnv<'a>,
    ) -> futures::future::BoxFuture<'a, Result<secrecy::SecretString, target::TargetError>> {
        let v = format!("flag-{}", self.label);
        Box::pin(async move { Ok(v.into()) })
    }
    fn warnings(&self, cfg: &rotator_core::config::SecretConfig) -> Vec<String> {
        if self.level > 7 {
            vec![format!("{}: level {} is loud", cfg.name, self.level)]
        } else {
            Vec::new()
        }
    }
}

fn registry() -> Registry {
    Registry::new().with(Flag)
}

/// Loads one file holding one secret whose extra lines (target, json_key) are `rest`.
fn load(registry: &Registry, rest: &str) -> Result<Config, String> {
    let dir = tempfile::tempdir().unwrap();
    let text =
        format!("[[secret]]\nname = \"s\"\nsecret_id = \"app/s\"\nevery = \"30d\"\n{rest}\n");
    std::fs::write(dir.path().join("a.toml"), text).unwrap();
    let prefix = format!("{}/", dir.path().display());
    load_dir_with(dir.path(), registry)
        .map_err(|e: ConfigErrors| e.to_string().replace(&prefix, ""))
}

#[test]
fn a_registered_kind_loads_and_the_engine_facing_functions_reach_it() {
    let cfg = load(
        &registry(),
        r#"target = { kind = "flag", label = "red", level = 8, wait = "10s" }"#,
    )
    .unwrap();
    let s = &cfg.secrets[0];
    assert_eq!(s.target.kind(), "flag");
    let f = s.target.downcast_ref::<FlagTarget>().unwrap();
    assert_eq!((f.label.as_str(), f.level), ("red", 8));
    assert!(target::makes_value(&s.target));
    assert!(!target::fresh_value_on_retry(&s.target));
    assert!(!target::has_revoke(&s.target));
    assert_eq!(
        target::step_budget(&s.target, Duration::from_secs(300)),
        Duration::from_secs(1000)
    );
    assert_eq!(
        target::describe_create(s).as_deref(),
        Some("raise flag red")
    );
    assert_eq!(
        target::describe_revoke(&s.target),
        "revoke the previous value"
    );
    assert_eq!(target::config_warnings(s), ["s: level 8 is loud"]);
    assert!(!s.target.is_none());

    // No table, or kind "none": nothing to tell, the engine's defaults.
    for rest in ["", r#"target = { kind = "none" }"#] {
        let cfg = load(&registry(), rest).unwrap();
        let t = &cfg.secrets[0].target;
        assert!(t.is_none() && t.kind() == "none" && t.downcast_ref::<FlagTarget>().is_none());
        assert!(!target::makes_value(t) && target::fresh_value_on_retry(t));
        assert_eq!(
            target::step_budget(t, Duration::from_secs(300)),
            Duration::from_secs(300)
        );
    }
}

#[test]
fn only_registered_kinds_are_known() {
    let e = load(&Registry::new(), r#"target = { kind = "flag" }"#).unwrap_err();
    assert!(
        e.contains(
            r#"a.toml:5:19: secret[s].target.kind: unknown target kind "flag" (allowed: none)"#
        ),
        "{e}"
    );
    let e = load(&registry(), r#"target = { kind = "mysql" }"#).unwrap_err();
    assert!(
        e.contains(r#"unknown target kind "mysql" (allowed: none, flag)"#),
        "{e}"
    );
}

#[test]
fn the_loader_checks_what_every_kind_shares() {
    let r = registry();
    let cases = [
        (
            r#"target = { kind = "flag", lable = "x" }"#,
            "a.toml:5:27: secret[s].target.lable: unknown key `lable` (did you mean `label`?); allowed here: kind, label, level, wait",
        ),
        (
            r#"target = { kind = "none", level = 3 }"#,
            r#"a.toml:5:35: secret[s].target.level: not a key of target kind "none" (allowed: none)"#,
        ),
        (
            r#"target = { label = "x" }"#,
            "a.toml:5:10: secret[s].target: missing required key `kind`",
        ),
        (
            r#"target = { kind = 3 }"#,
            "a.toml:5:19: secret[s].target.kind: expected a string in quotes; found the number 3",
        ),
        (
            r#"target = "flag""#,
            r#"a.toml:5:10: secret[s].target: expected a table, e.g. target = { kind = "none" }; found the string "flag""#,
        ),
        (
            r#"target = { kind = "flag", label = "x", wait = 5 }"#,
            r#"a.toml:5:47: secret[s].target.wait: expected a duration in quotes, e.g. "30d", "12h" or "90s"; found the number 5"#,
        ),
    ];
    for (rest, expected) in cases {
        let e = load(&r, rest).unwrap_err();
        // The table's shape is reported alone, as the first problem serde met.
        assert_eq!(e, expected, "{rest}");
    }
}

#[test]
fn the_kind_reports_every_problem_of_its_table() {
    let e = load(&registry(), r#"target = { kind = "flag", level = 12 }"#).unwrap_err();
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(
        lines,
        [
            r#"a.toml:5:10: secret[s].target.label: target kind "flag" needs `label`"#,
            "a.toml:5:35: secret[s].target.level: 12 is out of range (allowed 1 to 9)",
        ],
        "{e}"
    );
    let e = load(
        &registry(),
        r#"target = { kind = "flag", label = "x", wait = "2h" }"#,
    )
    .unwrap_err();
    assert!(
        e.contains("secret[s].target.wait: 2h is out of range (allowed 1s to 1m)"),
        "{e}"
    );
}

#[test]
fn json_key_is_refused_with_a_kind_that_makes_its_value_even_when_its_table_is_bad() {
    let e = load(
        &registry(),
        "json_key = \"k\"\ntarget = { kind = \"flag\", level = 0 }",
    )
    .unwrap_err();
    assert!(
        e.contains("a.toml:5:12: secret[s].json_key: cannot be used with this target kind"),
        "{e}"
    );
    assert!(
        e.contains("secret[s].target.level: 0 is out of range"),
        "{e}"
    );
    assert!(load(
        &registry(),
        "json_key = \"k\"\ntarget = { kind = \"none\" }"
    )
    .is_ok());
}

/// A kind that makes its own value is asked for it through the engine-facing function.
#[tokio::test]
async fn a_kind_that_makes_its_value_is_asked_for_it() {
    use rotator_core::clock::SystemClock;
    use rotator_test_kit::{FakeStore, Sequence};
    use secrecy::ExposeSecret;
    let cfg = load(&registry(), r#"target = { kind = "flag", label = "red" }"#).unwrap();
    let store = FakeStore::new(&SystemClock, &Sequence::default());
    let clients = target::TargetClients::default();
    let env = target::TargetEnv {
        cfg: &cfg.secrets[0],
        store: &store,
        clients: &clients,
        clock: &SystemClock,
    };
    let v = target::create_value(&env).await.unwrap();
    assert_eq!(v.expose_secret(), "flag-red");
}

/// The registry lists each kind's table keys (what `check` and the docs show) and prints
/// as its kinds' names.
#[test]
fn the_registry_knows_each_kinds_keys() {
    let r = registry();
    assert_eq!(r.keys("flag"), Some(&["label", "level", "wait"][..]));
    assert_eq!(r.keys("none"), Some(&[][..]));
    assert_eq!(r.keys("nope"), None);
    assert_eq!(format!("{r:?}"), r#"["none", "flag"]"#);
}
