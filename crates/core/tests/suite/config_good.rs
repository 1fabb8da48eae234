//! A valid configuration is read as written: every key, at a value other than its default,
//! lands in the field the daemon uses (a key that validates but is then dropped would
//! silently run the default: a 30-day rotation at the wrong length, a retry at the wrong
//! pace).

use rotator_core::config::{load_dir_with, Config, GeneratePolicy, Registry, Target};
use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);

fn load(files: &[(&str, &str)]) -> Config {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    match load_dir_with(dir.path(), &Registry::new()) {
        Ok(c) => c,
        Err(e) => panic!("refused:\n{e}"),
    }
}

const FULL: &str = r#"
[daemon]
listen = "127.0.0.1:19464"
max_concurrent_rotations = 3
retry_initial = "2m"
retry_max = "3h"
max_attempts = 4
shutdown_grace = "45s"
refresh = "20m"
step_timeout = "90s"
max_starts_per_minute = 7
redeploy_coalesce = "8s"

[aws]
region = "eu-west-1"
profile = "ops"
role_arn = "arn:aws:iam::123456789012:role/rotator"

[ha]
lock_table = "rotator-leases"
replicas = 3
region = "eu-central-1"
role_arn = "arn:aws:iam::123456789012:role/leases"
lease_ttl = "30s"

[events]
queue_url = "https://sqs.eu-west-1.amazonaws.com/123456789012/rotator-events"
region = "eu-west-1"
safety_poll = "2m"

[[secret]]
name = "api-db"
secret_id = "prod/api/db"
every = "45d"
window = { cron = "0 2 * * TUE-THU", duration = "3h", timezone = "Europe/London" }
jitter = "2h"
generate = { length = 48, exclude_characters = "xyz", exclude_lowercase = true, exclude_numbers = true, include_space = true, require_each_included_type = false }
json_key = "password"
json_key_create = true
redeploy = [{ cluster = "prod", services = ["front", "api"] }, { cluster = "jobs", services = ["worker"] }]
stable_timeout = "35m"
region = "us-east-1"
role_arn = "arn:aws:iam::222222222222:role/billing"

[[secret]]
name = "short"
secret_id = "arn:aws:secretsmanager:us-east-1:222222222222:secret:billing/key-AbCdEf"
every = "5m"
allow_short_interval = true
generate = { length = 8, exclude_uppercase = true, exclude_punctuation = true }
"#;

#[test]
fn every_key_is_read_into_the_setting_it_names() {
    let c = load(&[("a.toml", FULL)]);
    let d = &c.daemon;
    assert_eq!(d.listen.to_string(), "127.0.0.1:19464");
    assert_eq!(d.max_concurrent_rotations, 3);
    assert_eq!(d.retry_initial, Duration::from_secs(120));
    assert_eq!(d.retry_max, Duration::from_secs(3 * 3600));
    assert_eq!(d.max_attempts, 4);
    assert_eq!(d.shutdown_grace, Duration::from_secs(45));
    assert_eq!(d.refresh, Duration::from_secs(20 * 60));
    assert_eq!(d.step_timeout, Duration::from_secs(90));
    assert_eq!(d.max_starts_per_minute, 7);
    assert_eq!(d.redeploy_coalesce, Duration::from_secs(8));
    assert_eq!(
        c.events.queue_url.as_deref(),
        Some("https://sqs.eu-west-1.amazonaws.com/123456789012/rotator-events")
    );
    assert_eq!(c.events.region.as_ref().unwrap().as_str(), "eu-west-1");
    assert_eq!(c.events.safety_poll, Duration::from_secs(120));

    assert_eq!(c.aws.region.as_ref().unwrap().as_str(), "eu-west-1");
    assert_eq!(c.aws.profile.as_deref(), Some("ops"));
    assert_eq!(
        c.aws.role_arn.as_ref().unwrap().as_str(),
        "arn:aws:iam::123456789012:role/rotator"
    );

    assert!(c.ha.enabled());
    assert_eq!(c.ha.lock_table.as_deref(), Some("rotator-leases"));
    assert_eq!(c.ha.replicas, 3);
    assert_eq!(c.ha.account.region().unwrap().as_str(), "eu-central-1");
    assert_eq!(
        c.ha.account.role_arn().unwrap().as_str(),
        "arn:aws:iam::123456789012:role/leases"
    );
    assert_eq!(c.ha.lease_ttl, Duration::from_secs(30));

    assert_eq!(c.secrets.len(), 2);
    let s = c.secret("api-db").unwrap();
    assert_eq!(s.secret.id.as_str(), "prod/api/db");
    assert_eq!(s.every.get(), 45 * DAY);
    let w = s.window.as_ref().unwrap();
    assert_eq!(w.expr, "0 2 * * TUE-THU");
    assert_eq!(w.duration, Duration::from_secs(3 * 3600));
    assert_eq!(w.timezone, chrono_tz::Europe::London);
    // How plan and the logs show it.
    assert_eq!(w.to_string(), "0 2 * * TUE-THU for 3h (Europe/London)");
    assert_eq!(s.jitter.get(), Duration::from_secs(2 * 3600));
    assert_eq!(
        *s.generate,
        GeneratePolicy {
            length: 48,
            exclude_characters: "xyz".into(),
            exclude_lowercase: true,
            exclude_uppercase: false,
            exclude_numbers: true,
            exclude_punctuation: false,
            include_space: true,
            require_each_included_type: false,
        }
    );
    assert_eq!(s.json_key.as_deref(), Some("password"));
    assert!(s.json_key_create);
    assert!(matches!(s.target, Target::None));
    assert!(s.target.is_none());
    let services: Vec<String> = s.redeploy.iter().map(|r| r.to_string()).collect();
    assert_eq!(services, ["prod/front", "prod/api", "jobs/worker"]);
    assert_eq!(s.stable_timeout.get(), Duration::from_secs(35 * 60));
    // Per-secret account over [aws].
    assert_eq!(s.account().region().unwrap().as_str(), "us-east-1");
    assert_eq!(
        s.account().role_arn().unwrap().as_str(),
        "arn:aws:iam::222222222222:role/billing"
    );
    assert_eq!(s.origin.line_col(), Some((31, 1)));

    let short = c.secret("short").unwrap();
    assert_eq!(short.every.get(), Duration::from_secs(300));
    assert_eq!(short.jitter.get(), Duration::ZERO);
    assert_eq!(short.generate.length, 8);
    assert!(short.generate.exclude_uppercase && short.generate.exclude_punctuation);
    assert!(short.generate.require_each_included_type);
    assert_eq!(
        short.generate.exclude_characters,
        rotator_core::config::DEFAULT_EXCLUDED
    );
    assert_eq!(short.json_key, None);
    assert!(!short.json_key_create);
    assert!(short.redeploy.is_empty());
    assert_eq!(short.stable_timeout.get(), Duration::from_secs(20 * 60));
    // No per-secret account: [aws]'s.
    assert_eq!(short.account().region().unwrap().as_str(), "eu-west-1");
}

#[test]
fn the_bounds_of_each_range_are_accepted() {
    let c = load(&[(
        "a.toml",
        r#"
[daemon]
retry_initial = "1s"
retry_max = "7d"
step_timeout = "10s"
[ha]
lock_table = "abc"
replicas = 100
[[secret]]
name = "a"
secret_id = "a"
every = "1h"
generate = { length = 4096 }
stable_timeout = "6h"
[[secret]]
name = "b"
secret_id = "b"
every = "3650d"
jitter = "3649d"
generate = { length = 8 }
stable_timeout = "10s"
[[secret]]
name = "c"
secret_id = "c"
every = "1m"
allow_short_interval = true
"#,
    )]);
    assert_eq!(c.daemon.retry_initial, Duration::from_secs(1));
    assert_eq!(c.daemon.retry_max, 7 * DAY);
    assert_eq!(c.daemon.step_timeout, Duration::from_secs(10));
    assert_eq!(c.ha.replicas, 100);
    assert_eq!(
        c.secret("a").unwrap().every.get(),
        Duration::from_secs(3600)
    );
    assert_eq!(c.secret("a").unwrap().generate.length, 4096);
    assert_eq!(c.secret("b").unwrap().every.get(), 3650 * DAY);
    assert_eq!(c.secret("b").unwrap().generate.length, 8);
    assert_eq!(c.secret("c").unwrap().every.get(), Duration::from_secs(60));
}

/// `[daemon]` and `[aws]` keys may come from different files; secrets from any file, in
/// name order.
#[test]
fn settings_and_secrets_are_merged_across_files_in_name_order() {
    let c = load(&[
        ("20-b.toml", "[[secret]]\nname = \"b\"\nsecret_id = \"b\"\nevery = \"30d\"\n[aws]\nprofile = \"p\"\n"),
        ("10-a.toml", "[daemon]\nmax_attempts = 2\n[[secret]]\nname = \"a\"\nsecret_id = \"a\"\nevery = \"30d\"\n"),
    ]);
    let names: Vec<&str> = c.secrets.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(c.daemon.max_attempts, 2);
    assert_eq!(c.aws.profile.as_deref(), Some("p"));
    assert_eq!(c.files.len(), 2);
    assert!(c.files[0].ends_with("10-a.toml"));
}

/// Files up to 64 MiB are read (a schedule for 100,000 secrets is far smaller); a larger
/// one is refused before it is read, saying so.
#[test]
fn files_up_to_64_mib_are_read_and_larger_ones_refused() {
    const MAX: u64 = 64 * 1024 * 1024;
    // Two megabytes of comments around one secret: read.
    let comment = "# ".to_owned() + &"x".repeat(98) + "\n";
    let big =
        comment.repeat(20_000) + "[[secret]]\nname = \"a\"\nsecret_id = \"a\"\nevery = \"30d\"\n";
    let c = load(&[("big.toml", &big)]);
    assert_eq!(c.secrets.len(), 1);

    for (len, refused) in [(MAX, false), (MAX + 1, true)] {
        let dir = tempfile::tempdir().unwrap();
        let f = std::fs::File::create(dir.path().join("huge.toml")).unwrap();
        f.set_len(len).unwrap();
        let e = load_dir_with(dir.path(), &Registry::new())
            .expect_err("NUL bytes are no TOML")
            .to_string();
        assert_eq!(
            e.contains("at most 67108864 allowed"),
            refused,
            "{len} bytes: {}",
            &e[..e.len().min(300)]
        );
    }
}

/// `[ha] replicas = 1` needs no lock table; `json_key_create = false` needs no json_key.
#[test]
fn settings_at_their_neutral_value_need_nothing_else() {
    let c = load(&[(
        "a.toml",
        "[ha]\nreplicas = 1\n[[secret]]\nname = \"a\"\nsecret_id = \"a\"\nevery = \"30d\"\njson_key_create = false\n",
    )]);
    assert_eq!(c.ha.replicas, 1);
    assert!(!c.ha.enabled());
    assert!(!c.secrets[0].json_key_create);
}

/// Problems are listed file by file, in the files' name order, whichever check found
/// them (duplicates are found only once every file is read).
#[test]
fn problems_are_listed_in_file_order() {
    let dir = tempfile::tempdir().unwrap();
    let secret = |name: &str, every: &str| {
        format!("[[secret]]\nname = \"{name}\"\nsecret_id = \"{name}\"\nevery = \"{every}\"\n")
    };
    std::fs::write(
        dir.path().join("10-a.toml"),
        secret("dup", "30d") + &secret("a", "1s"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("20-b.toml"),
        secret("b", "2s") + &secret("dup", "30d"),
    )
    .unwrap();
    let e = load_dir_with(dir.path(), &Registry::new()).unwrap_err();
    let files: Vec<String> =
        e.0.iter()
            .map(|e| {
                e.location
                    .file
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
    assert_eq!(
        files,
        ["10-a.toml", "10-a.toml", "20-b.toml", "20-b.toml"],
        "{e}"
    );
    let lines: Vec<u32> =
        e.0.iter()
            .map(|e| e.location.line_col().unwrap().0)
            .collect();
    assert!(lines[0] < lines[1] && lines[2] < lines[3], "{e}");
}

/// Store keys (issue 17): a secret's own region/role/endpoint win over its store's
/// section, the sections fill the rest, and the ECS side of another store's secret is
/// `[aws]`'s.
#[test]
fn store_keys_land_in_each_secrets_route() {
    use rotator_core::ids::StoreKind;
    let cfg = load(&[(
        "a.toml",
        r#"
[aws]
region = "eu-west-1"

[alibaba]
region = "cn-hangzhou"
role_arn = "acs:ram::1234567890123456:role/rotator"
sts_endpoint = "https://sts.cn-hangzhou.aliyuncs.com"

[ibm]
endpoint = "https://x.eu-de.secrets-manager.appdomain.cloud/"
iam_endpoint = "https://iam.test.cloud.ibm.com"
api_key_env = "SM_API_KEY"

[[secret]]
name = "cn-default"
store = "alibaba"
secret_id = "prod/db"
every = "30d"

[[secret]]
name = "cn-own"
store = "alibaba"
secret_id = "prod/db2"
region = "cn-shanghai"
endpoint = "http://127.0.0.1:9"
every = "30d"

[[secret]]
name = "ibm"
store = "ibm"
secret_id = "0b5571f7-21e6-42b7-91c5-3f5ac9793a46"
every = "30d"

[[secret]]
name = "aws"
secret_id = "prod/db"
every = "30d"
"#,
    )]);
    let route = |n: &str| cfg.secret(n).unwrap().secret.store.clone();
    let p = route("cn-default");
    let p = p.parts().unwrap();
    assert_eq!(p.kind, StoreKind::Alibaba);
    assert_eq!(p.region.as_ref().unwrap().as_str(), "cn-hangzhou");
    assert_eq!(
        p.role_arn.as_ref().unwrap().as_str(),
        "acs:ram::1234567890123456:role/rotator"
    );
    assert!(p.endpoint.is_none());
    let own = route("cn-own");
    let own = own.parts().unwrap();
    assert_eq!(own.region.as_ref().unwrap().as_str(), "cn-shanghai");
    assert_eq!(
        own.endpoint.as_ref().unwrap().as_str(),
        "http://127.0.0.1:9"
    );
    let ibm = route("ibm");
    assert_eq!(ibm.kind(), StoreKind::Ibm);
    assert_eq!(
        ibm.parts().unwrap().endpoint.as_ref().unwrap().as_str(),
        "https://x.eu-de.secrets-manager.appdomain.cloud"
    );
    assert_eq!(route("aws").kind(), StoreKind::Aws);
    // The Alibaba secret's ECS consumers use [aws]; the same secret_id in two stores is
    // two secrets.
    assert_eq!(
        cfg.secret("cn-default")
            .unwrap()
            .account()
            .region()
            .unwrap()
            .as_str(),
        "eu-west-1"
    );
    assert_eq!(
        cfg.alibaba.sts_endpoint.as_deref(),
        Some("https://sts.cn-hangzhou.aliyuncs.com")
    );
    assert_eq!(
        cfg.ibm.iam_endpoint.as_deref(),
        Some("https://iam.test.cloud.ibm.com")
    );
    assert_eq!(cfg.ibm.api_key_env, "SM_API_KEY");
}
