//! Configurations for tests, two ways:
//! - in memory: [`SecretBuilder`] makes one `SecretConfig` (what the engine and the
//!   scheduler take) without going through TOML;
//! - on disk: [`ConfigToml`] assembles a configuration for N secrets as TOML,
//!   [`ConfigDir`] writes it to a temporary directory (removed on drop) and loads it
//!   with the daemon's own loader — what the CLI and the daemon read.

use rotator_core::config::{
    load_dir_with, CommandConsumer, Config, ConfigErrors, Consumer, Location, Registry,
    SecretConfig, Target, Window,
};
use rotator_core::ids::{
    Account, ClusterName, SecretId, SecretName, SecretRef, ServiceName, ServiceRef,
};
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// `cluster/service` as a consumer reference.
pub fn svc(cluster: &str, service: &str) -> ServiceRef {
    ServiceRef {
        cluster: ClusterName::from(cluster),
        service: ServiceName::from(service),
    }
}

/// A consumer command `argv` with a `verify` (or none), `timeout` and no extra
/// environment.
pub fn command(argv: &[&str], verify: Option<&[&str]>, timeout: Duration) -> CommandConsumer {
    let own = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    CommandConsumer {
        command: own(argv),
        verify: verify.map(own),
        timeout,
        env: Default::default(),
    }
}

/// A secret id in the default account and region.
pub fn secret_ref(id: &str) -> SecretRef {
    SecretRef {
        id: SecretId::from(id),
        account: Account::default(),
        store: Default::default(),
    }
}

/// One `SecretConfig`, as validation would produce it, with test defaults: rotated every
/// 30 days, no window, no jitter, the default generator, no target, no consumers, a
/// 10-minute stable timeout.
#[derive(Clone, Debug)]
pub struct SecretBuilder {
    cfg: SecretConfig,
}

impl SecretBuilder {
    /// Schedule `name`, for the secret whose id is `secret_id`.
    pub fn new(name: &str, secret_id: &str) -> Self {
        Self {
            cfg: SecretConfig {
                name: SecretName::from(name),
                secret: secret_ref(secret_id),
                every: Duration::from_secs(30 * 86_400).into(),
                window: None,
                jitter: Duration::ZERO.into(),
                generate: Default::default(),
                json_key: None,
                json_key_create: false,
                target: Target::None,
                redeploy: Box::default(),
                stable_timeout: Duration::from_secs(600).into(),
                origin: Location::at(Path::new("tests/test-kit.toml").into(), 1, 1),
                group: None,
            },
        }
    }

    pub fn every(mut self, d: Duration) -> Self {
        self.cfg.every = d.into();
        self
    }

    /// A rotation window: a 5-field cron expression (UTC) and how long it stays open.
    pub fn window(mut self, expr: &str, duration: Duration) -> Self {
        self.cfg.window = Some(Box::new(window(expr, duration)));
        self
    }

    pub fn jitter(mut self, d: Duration) -> Self {
        self.cfg.jitter = d.into();
        self
    }

    /// Consumers `services` on `cluster` (added to any already named).
    pub fn redeploy(mut self, cluster: &str, services: &[&str]) -> Self {
        let mut all = std::mem::take(&mut self.cfg.redeploy).into_vec();
        all.extend(services.iter().map(|s| Consumer::from(svc(cluster, s))));
        self.cfg.redeploy = all.into();
        self
    }

    /// A consumer restarted by command (added to any already named).
    pub fn command(mut self, consumer: CommandConsumer) -> Self {
        let mut all = std::mem::take(&mut self.cfg.redeploy).into_vec();
        all.push(consumer.into());
        self.cfg.redeploy = all.into();
        self
    }

    pub fn target(mut self, target: Target) -> Self {
        self.cfg.target = target;
        self
    }

    pub fn json_key(mut self, key: &str) -> Self {
        self.cfg.json_key = Some(key.into());
        self
    }

    pub fn stable_timeout(mut self, d: Duration) -> Self {
        self.cfg.stable_timeout = d.into();
        self
    }

    /// The file the configuration claims to come from (shown in errors).
    pub fn origin(mut self, file: &str) -> Self {
        self.cfg.origin.file = Path::new(file).into();
        self
    }

    pub fn build(self) -> SecretConfig {
        self.cfg
    }
}

/// A window as `[[secret]] window = { cron = .., duration = .. }` in UTC makes it.
pub fn window(expr: &str, duration: Duration) -> Window {
    Window {
        expr: expr.into(),
        cron: croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Disallowed)
            .build()
            .parse(expr)
            .unwrap_or_else(|e| panic!("bad cron {expr:?}: {e}")),
        duration,
        timezone: chrono_tz::UTC,
    }
}

/// One `[[secret]]` table.
#[derive(Clone, Debug)]
pub struct SecretToml {
    name: String,
    secret_id: String,
    every: String,
    lines: Vec<String>,
}

impl SecretToml {
    /// `name`, `secret_id`, rotated `every = "30d"`.
    pub fn new(name: &str, secret_id: &str) -> Self {
        Self {
            name: name.to_owned(),
            secret_id: secret_id.to_owned(),
            every: "30d".to_owned(),
            lines: vec![],
        }
    }

    /// `every` as the configuration writes it (`"30d"`, `"12h"`).
    pub fn every(mut self, every: &str) -> Self {
        self.every = every.to_owned();
        self
    }

    /// Any other `key = value` line of the table, as TOML (`redeploy = [...]`).
    pub fn line(mut self, toml: &str) -> Self {
        self.lines.push(toml.to_owned());
        self
    }

    fn write_to(&self, out: &mut String) {
        // Names and ids of tests are plain; quoting them as TOML basic strings suffices.
        let _ = write!(
            out,
            "[[secret]]\nname = \"{}\"\nsecret_id = \"{}\"\nevery = \"{}\"\n",
            self.name, self.secret_id, self.every
        );
        for l in &self.lines {
            out.push_str(l);
            out.push('\n');
        }
    }
}

/// A configuration file assembled from parts.
#[derive(Clone, Debug, Default)]
pub struct ConfigToml {
    daemon: Vec<String>,
    secrets: String,
    extra: String,
}

impl ConfigToml {
    pub fn new() -> Self {
        Self::default()
    }

    /// `key = value` under `[daemon]`; `value` is TOML (`8`, `"127.0.0.1:0"`, `"1h"`).
    pub fn daemon(mut self, key: &str, value: &str) -> Self {
        self.daemon.push(format!("{key} = {value}"));
        self
    }

    pub fn secret(mut self, s: SecretToml) -> Self {
        s.write_to(&mut self.secrets);
        self
    }

    /// `n` secrets, the `i`-th made by `f(i)`.
    pub fn secrets(mut self, n: usize, f: impl Fn(usize) -> SecretToml) -> Self {
        self.secrets.reserve(n * 64);
        for i in 0..n {
            f(i).write_to(&mut self.secrets);
        }
        self
    }

    /// Any other TOML, appended as is (`[aws]`, `[ha]`, ...).
    pub fn raw(mut self, toml: &str) -> Self {
        self.extra.push_str(toml);
        self.extra.push('\n');
        self
    }

    pub fn text(&self) -> String {
        let mut out = String::with_capacity(self.secrets.len() + 256);
        if !self.daemon.is_empty() {
            out.push_str("[daemon]\n");
            for l in &self.daemon {
                out.push_str(l);
                out.push('\n');
            }
        }
        out.push_str(&self.extra);
        out.push_str(&self.secrets);
        out
    }

    /// Writes the file into a new temporary configuration directory.
    pub fn write(&self) -> ConfigDir {
        ConfigDir::with_toml(&self.text())
    }
}

/// A temporary configuration directory (removed on drop).
pub struct ConfigDir {
    dir: tempfile::TempDir,
}

/// The file [`ConfigDir::with_toml`] writes.
pub const CONFIG_FILE: &str = "test.toml";

impl ConfigDir {
    /// A directory holding one file, `test.toml`, with this text.
    pub fn with_toml(toml: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join(CONFIG_FILE), toml).expect("write config");
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The directory as a string, for a command line.
    pub fn arg(&self) -> &str {
        self.path().to_str().expect("temp dir path is UTF-8")
    }

    /// Loads it with the daemon's loader (every file, validated), for target kind `none`
    /// only; [`Self::load_with`] takes the binary's registry.
    pub fn load(&self) -> Result<Config, ConfigErrors> {
        self.load_with(&Registry::new())
    }

    /// Loads it with the target kinds of `registry`.
    pub fn load_with(&self, registry: &Registry) -> Result<Config, ConfigErrors> {
        load_dir_with(self.path(), registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_builder_config_has_the_test_defaults_and_what_was_set() {
        let c = SecretBuilder::new("db", "app/db")
            .redeploy("prod", &["front", "api"])
            .stable_timeout(Duration::from_secs(60))
            .window("0 2 * * *", Duration::from_secs(3600))
            .build();
        assert_eq!(c.name.as_str(), "db");
        assert_eq!(c.secret.id.as_str(), "app/db");
        assert_eq!(c.every.get(), Duration::from_secs(30 * 86_400));
        assert_eq!(
            c.services().cloned().collect::<Vec<_>>(),
            [svc("prod", "front"), svc("prod", "api")]
        );
        assert_eq!(c.stable_timeout.get(), Duration::from_secs(60));
        assert_eq!(c.target.kind(), "none");
        assert_eq!(c.window.unwrap().duration, Duration::from_secs(3600));
    }

    #[test]
    fn a_written_config_for_n_secrets_loads_with_the_daemons_loader() {
        let dir = ConfigToml::new()
            .daemon("max_concurrent_rotations", "3")
            .daemon("listen", "\"127.0.0.1:0\"")
            .secrets(25, |i| {
                SecretToml::new(&format!("s{i}"), &format!("app/{i}")).every("12h")
            })
            .secret(
                SecretToml::new("db", "prod/db")
                    .line(r#"redeploy = [{ cluster = "prod", services = ["front"] }]"#),
            )
            .write();
        let cfg = dir.load().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.secrets.len(), 26);
        assert_eq!(cfg.daemon.max_concurrent_rotations, 3);
        let s7 = cfg.secret("s7").unwrap();
        assert_eq!(s7.secret.id.as_str(), "app/7");
        assert_eq!(s7.every.get(), Duration::from_secs(12 * 3600));
        let db = cfg.secret("db").unwrap();
        assert_eq!(
            db.services().cloned().collect::<Vec<_>>(),
            [svc("prod", "front")]
        );
    }

    #[test]
    fn a_mistake_in_the_file_is_reported_by_the_loader() {
        let dir = ConfigDir::with_toml("[[secret]]\nname = \"x\"\n");
        assert!(dir.load().is_err());
    }
}
