//! `plan` against a real wire (moto): due dates from our tag, from the creation date of
//! AWSCURRENT, and with a window.

mod common;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use common::*;

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_shows_due_dates_from_tags_creation_and_windows() {
    let moto = Moto::start();
    let c = sm_client(&moto.url).await;
    let now = Utc::now().with_nanosecond_zero();
    let ago = |d: i64| now - Duration::days(d);
    for d in [0, 29, 31, 400] {
        create_secret(
            &c,
            &format!("app/s{d}"),
            "initial",
            &[("secret-rotator:last-rotated", &rfc(ago(d)))],
        )
        .await;
    }
    create_secret(&c, "app/untagged", "initial", &[]).await;
    // 400 days ago + 30 days is long past; the window moves it to the next Tuesday 02:00 UTC
    // after that, which is also in the past: due (overdue) at that opening.
    create_secret(
        &c,
        "app/windowed",
        "initial",
        &[("secret-rotator:last-rotated", "2026-01-01T00:00:00Z")],
    )
    .await;

    let mut toml = String::new();
    for name in ["s0", "s29", "s31", "s400", "untagged"] {
        toml.push_str(&format!(
            "[[secret]]\nname = \"{name}\"\nsecret_id = \"app/{name}\"\nevery = \"30d\"\n\n"
        ));
    }
    toml.push_str("[[secret]]\nname = \"windowed\"\nsecret_id = \"app/windowed\"\nevery = \"30d\"\nwindow = { cron = \"0 2 * * TUE\", duration = \"3h\" }\n");
    let dir = config_dir(&toml);

    let out = rotator(
        &["plan", "--json", "--config", dir.path().to_str().unwrap()],
        &aws_env(Some(&moto.url), None),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "plan failed: {stderr}");
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("plan json");
    let row = |n: &str| {
        rows.iter()
            .find(|r| r["name"] == n)
            .unwrap_or_else(|| panic!("no row {n}"))
            .clone()
    };

    for d in [0i64, 29, 31, 400] {
        let r = row(&format!("s{d}"));
        assert_eq!(r["last_rotated"], rfc(ago(d)), "s{d}");
        assert_eq!(r["next_due"], rfc(ago(d) + Duration::days(30)), "s{d}");
        let overdue = r["overdue_seconds"].as_u64().unwrap();
        let expected = (d - 30).max(0) as u64 * 86_400;
        // The plan ran a few seconds after `now`.
        assert!(
            overdue >= expected && overdue <= expected + 60,
            "s{d}: overdue {overdue}, expected ~{expected}"
        );
    }
    // No tag: the creation date of AWSCURRENT (just now) is the last rotation.
    let u = row("untagged");
    let due = DateTime::parse_from_rfc3339(u["next_due"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc);
    assert!(
        (due - (now + Duration::days(30))).num_seconds().abs() < 120,
        "untagged due {due}"
    );
    // Window: 2026-01-31 is a Saturday -> Tuesday 2026-02-03 02:00 UTC.
    assert_eq!(row("windowed")["next_due"], "2026-02-03T02:00:00Z");

    // Sorted by due time: the most overdue first.
    let names: Vec<_> = rows
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names[0], "s400", "{names:?}");

    // The table form prints every secret too.
    let out = rotator(
        &["plan", "--config", dir.path().to_str().unwrap()],
        &aws_env(Some(&moto.url), None),
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("NAME"), "{table}");
    for n in ["s0", "s29", "s31", "s400", "untagged", "windowed"] {
        assert!(table.contains(n), "{n} missing in\n{table}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_reads_many_secrets_with_list_secrets_pages() {
    let moto = Moto::start();
    let c = sm_client(&moto.url).await;
    let mut toml = String::new();
    for i in 0..150 {
        create_secret(
            &c,
            &format!("bulk/{i}"),
            "v",
            &[("secret-rotator:last-rotated", "2026-01-01T00:00:00Z")],
        )
        .await;
        toml.push_str(&format!(
            "[[secret]]\nname = \"b{i}\"\nsecret_id = \"bulk/{i}\"\nevery = \"30d\"\n"
        ));
    }
    let dir = config_dir(&toml);
    let out = rotator(
        &["plan", "--json", "--config", dir.path().to_str().unwrap()],
        &aws_env(Some(&moto.url), None),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 150);
    assert!(rows.iter().all(|r| r["next_due"] == "2026-01-31T00:00:00Z"));
}

async fn sm_client_in(url: &str, region: &str) -> aws_sdk_secretsmanager::Client {
    let conf = aws_sdk_secretsmanager::config::Builder::new()
        .endpoint_url(url)
        .region(aws_sdk_secretsmanager::config::Region::new(
            region.to_owned(),
        ))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .behavior_version_latest()
        .build();
    aws_sdk_secretsmanager::Client::from_conf(conf)
}

/// The shipped example at 80 columns: one secret overdue and outside its window, one fine,
/// one unreadable (another account's ARN that does not exist here). Errors are numbered
/// notes under the table, never a cell; the window opening is shown in UTC and London time.
#[tokio::test(flavor = "multi_thread")]
async fn plan_of_the_example_config_fits_80_columns() {
    let moto = Moto::start();
    let eu = sm_client_in(&moto.url, "eu-west-1").await;
    create_secret(
        &eu,
        "prod/api/db",
        r#"{"password":"initial"}"#,
        &[("secret-rotator:last-rotated", "2026-01-01T00:00:00Z")],
    )
    .await;
    create_secret(&eu, "prod/partner/api-key", "initial", &[]).await;
    let example = repo_root().join("config");
    let env = aws_env(Some(&moto.url), None);

    let out = rotator(&["plan", "--config", example.to_str().unwrap()], &env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "one secret is unreadable: {stderr}\n{stdout}"
    );
    for l in stdout.lines() {
        assert!(
            l.chars().count() <= 80,
            "{} columns: {l}\n{stdout}",
            l.chars().count()
        );
    }
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("NAME "), "{stdout}");
    assert!(
        lines[0].contains("STATUS") && lines[0].contains("NEXT DUE (UTC)"),
        "{stdout}"
    );
    let row = |name: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row {name}:\n{stdout}"))
    };
    let api = row("api-db");
    // Overdue since February, and its window is closed now.
    assert!(lines[api].contains(" overdue "), "{stdout}");
    let window = lines[api + 1];
    assert!(
        window.trim_start().starts_with("window closed; opens ")
            && window.contains(" UTC (")
            && window.contains("Europe/London"),
        "{stdout}"
    );
    assert!(lines[row("partner-api-key")].contains(" ok "), "{stdout}");
    let billing = lines[row("billing-signing-key")];
    assert!(billing.contains("unreadable [1]"), "{stdout}");
    assert!(
        !billing.contains("Exception"),
        "no error in a cell: {billing}"
    );
    assert!(
        stdout.contains("\n[1] billing-signing-key: DescribeSecret: "),
        "{stdout}"
    );
    assert_eq!(
        stderr.trim_end(),
        "error: 1 secret(s) could not be read (see the notes below the table)"
    );

    // --wide: every column, consumers included.
    let out = rotator(
        &["plan", "--wide", "--config", example.to_str().unwrap()],
        &env,
    );
    let wide = String::from_utf8_lossy(&out.stdout);
    assert!(
        wide.lines().next().unwrap_or("").contains("CONSUMERS"),
        "{wide}"
    );
    assert!(
        wide.contains("prod/front,prod/api,prod/pdf,prod/admin"),
        "{wide}"
    );

    // JSON carries the status and the window opening in both zones.
    let out = rotator(
        &["plan", "--json", "--config", example.to_str().unwrap()],
        &env,
    );
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("plan json");
    let api = rows.iter().find(|r| r["name"] == "api-db").unwrap();
    assert_eq!(api["status"], "outside_window");
    assert_eq!(api["window_opens"]["timezone"], "Europe/London");
    assert_eq!(api["every_seconds"], 30 * 86_400);
    let billing = rows
        .iter()
        .find(|r| r["name"] == "billing-signing-key")
        .unwrap();
    assert_eq!(billing["status"], "unreadable");
}

#[test]
fn unreachable_endpoint_is_one_clear_line() {
    let dir = config_dir("[[secret]]\nname = \"a\"\nsecret_id = \"x\"\nevery = \"30d\"\n[[secret]]\nname = \"b\"\nsecret_id = \"y\"\nevery = \"30d\"\n");
    // Nothing listens on port 9 (discard) here.
    let out = rotator(
        &["plan", "--config", dir.path().to_str().unwrap()],
        &aws_env(Some("http://127.0.0.1:9"), None),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "{stderr}");
    let lines: Vec<_> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0]
            .starts_with("error: cannot reach Secrets Manager: DescribeSecret: DispatchFailure"),
        "{stderr}"
    );
}

trait ZeroNanos {
    fn with_nanosecond_zero(self) -> Self;
}
impl ZeroNanos for DateTime<Utc> {
    fn with_nanosecond_zero(self) -> Self {
        use chrono::Timelike;
        self.with_nanosecond(0).unwrap()
    }
}
