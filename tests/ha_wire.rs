//! Several replicas on the real wire: the DynamoDB lease table against moto, `check` with
//! `[ha]`, `rotate` under a held lease, and three daemons on one configuration.

mod common;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use chrono::{DateTime, Utc};
use common::*;
use secret_rotator::clock::SystemClock;
use secret_rotator::config::AwsConfig;
use secret_rotator::ids::{Account, Region};
use secret_rotator::rotation::lease::{
    AcquireOutcome, AcquireRequest, LeaseError, LeaseRecord, LeaseStore, Leases, Taken,
};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TABLE: &str = "secret-rotator-leases";

async fn ddb(url: &str) -> aws_sdk_dynamodb::Client {
    let conf = aws_sdk_dynamodb::config::Builder::new()
        .endpoint_url(url)
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .behavior_version_latest()
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

/// The table as docs/ha.md describes it.
async fn create_table(c: &aws_sdk_dynamodb::Client, name: &str, key: &str) {
    c.create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(key)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(key)
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("create table");
}

async fn table_store(url: &str, table: &str) -> secret_rotator::aws::lease::DynamoLeases {
    point_sdk_at(Some(url), None);
    let ctx = secret_rotator::aws::AwsContext::load(&AwsConfig {
        region: Some(Region::new("us-east-1".to_owned())),
        ..AwsConfig::default()
    })
    .await;
    secret_rotator::aws::lease::DynamoLeases::new(ctx, Account::default(), table)
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
}

fn req(owner: &str, now: i64) -> AcquireRequest {
    AcquireRequest {
        key: "us-east-1:app/db".into(),
        owner: owner.into(),
        expires_at: at(now + 60),
        cutoff: at(now - 15),
    }
}

fn acquired(o: AcquireOutcome) -> LeaseRecord {
    match o {
        AcquireOutcome::Acquired(r) => r,
        other => panic!("expected the lease: {other:?}"),
    }
}

fn is_lost(r: Result<(), LeaseError>) -> bool {
    matches!(r, Err(LeaseError::Lost { .. }))
}

#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_lease_table_follows_the_protocol() {
    let moto = Moto::start();
    let c = ddb(&moto.url).await;
    create_table(&c, TABLE, "pk").await;
    let t = table_store(&moto.url, TABLE).await;

    let a1 = acquired(t.acquire(&req("a", 0)).await.unwrap());
    assert_eq!((a1.owner.as_str(), a1.version), ("a", 1));
    assert_eq!(a1.expires_at, at(60));
    // Held: b is refused (and told by whom, where the server returns the old item).
    match t.acquire(&req("b", 30)).await.unwrap() {
        AcquireOutcome::Held(Some(r)) => assert_eq!(r.owner, "a"),
        AcquireOutcome::Held(None) => {}
        other => panic!("b took a held lease: {other:?}"),
    }
    // Expired, but not by the skew allowance yet (60 + 15 > 70): still refused.
    assert!(matches!(
        t.acquire(&req("b", 70)).await.unwrap(),
        AcquireOutcome::Held(_)
    ));
    t.renew(&a1, at(100)).await.unwrap();
    t.verify(&a1).await.unwrap();
    // A renewal or check with another owner or an old version is refused.
    let b_fake = LeaseRecord {
        owner: "b".into(),
        ..a1.clone()
    };
    assert!(is_lost(t.renew(&b_fake, at(200)).await));
    assert!(is_lost(t.verify(&b_fake).await));
    let stale = LeaseRecord {
        version: 0,
        ..a1.clone()
    };
    assert!(is_lost(t.renew(&stale, at(200)).await));
    // Renewed to 100: b takes over only after 115.
    assert!(matches!(
        t.acquire(&req("b", 110)).await.unwrap(),
        AcquireOutcome::Held(_)
    ));
    let b2 = acquired(t.acquire(&req("b", 116)).await.unwrap());
    assert_eq!((b2.owner.as_str(), b2.version), ("b", 2));
    // a's lease is gone for every write.
    assert!(is_lost(t.verify(&a1).await));
    assert!(is_lost(t.renew(&a1, at(300)).await));
    assert!(is_lost(t.release(&a1).await));
    // Released: free at once, and the version keeps going up.
    t.release(&b2).await.unwrap();
    let c3 = acquired(t.acquire(&req("c", 117)).await.unwrap());
    assert_eq!((c3.owner.as_str(), c3.version), ("c", 3));
    // The stored item: the TTL attribute a week after the expiry.
    let item = c
        .get_item()
        .table_name(TABLE)
        .key("pk", AttributeValue::S("us-east-1:app/db".into()))
        .send()
        .await
        .unwrap();
    let purge: i64 = item.item().unwrap()["purge_at"]
        .as_n()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(purge, at(117 + 60).timestamp() + 7 * 86_400);

    // check --remote's table check.
    assert_eq!(t.check_table().await.unwrap(), Vec::<String>::new());
    create_table(&c, "wrong-key", "id").await;
    let wrong = table_store(&moto.url, "wrong-key").await;
    assert_eq!(wrong.check_table().await.unwrap().len(), 1);
    let missing = table_store(&moto.url, "no-such-table").await;
    assert!(missing.check_table().await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lease_is_renewed_over_the_wire_until_released() {
    let moto = Moto::start();
    let c = ddb(&moto.url).await;
    create_table(&c, TABLE, "pk").await;
    let store: Arc<dyn LeaseStore> = Arc::new(table_store(&moto.url, TABLE).await);
    let ttl = Duration::from_secs(6);
    let a = Leases::new(store.clone(), "a", ttl, Arc::new(SystemClock));
    let b = Leases::new(store, "b", ttl, Arc::new(SystemClock));
    let Taken::Ours(g) = a.acquire("k").await.unwrap() else {
        panic!("free lease")
    };
    // Two ttls: renewed in the background (every 2 s) the whole time.
    tokio::time::sleep(ttl * 2).await;
    assert!(g.fence().verify().await.is_ok());
    assert!(matches!(b.acquire("k").await.unwrap(), Taken::Busy { holder: Some(h) } if h == "a"));
    g.release().await.unwrap();
    assert!(matches!(b.acquire("k").await.unwrap(), Taken::Ours(_)));
}

#[test]
fn check_requires_a_lock_table_for_several_replicas() {
    let dir = config_dir(
        "[ha]\nreplicas = 3\n\n[[secret]]\nname = \"s\"\nsecret_id = \"a/b\"\nevery = \"30d\"\n",
    );
    let out = rotator(&["check", "--config", dir.path().to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("test.toml:2:12: ha.replicas: 3 replicas need [ha] lock_table"),
        "{err}"
    );
    let dir = config_dir("[ha]\nreplicas = 3\nlock_table = \"leases\"\n\n[[secret]]\nname = \"s\"\nsecret_id = \"a/b\"\nevery = \"30d\"\n");
    let out = rotator(&["check", "--config", dir.path().to_str().unwrap()], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ha: 3 replica(s)"));
}

#[tokio::test(flavor = "multi_thread")]
async fn rotate_waits_for_nobody_and_changes_nothing_while_another_replica_holds_the_lease() {
    let moto = Moto::start();
    let sim = EcsSim::start(
        &["--time-scale", "20"],
        r#"{"clusters":[{"name":"prod","services":[{"name":"api"}]}]}"#,
    );
    let c = ddb(&moto.url).await;
    create_table(&c, TABLE, "pk").await;
    let sm = sm_client(&moto.url).await;
    create_secret(&sm, "held/db", "initial", &[]).await;
    let env = aws_env(Some(&moto.url), Some(&sim.url));
    let dir = config_dir(&format!(
        "[aws]\nregion = \"us-east-1\"\n[ha]\nlock_table = \"{TABLE}\"\nreplicas = 2\n\n[[secret]]\nname = \"held\"\nsecret_id = \"held/db\"\nevery = \"30d\"\nredeploy = [{{ cluster = \"prod\", services = [\"api\"] }}]\n"
    ));
    let cfg_dir = dir.path().to_str().unwrap();
    let out = rotator(&["check", "--remote", "--config", cfg_dir], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("lock table usable"));

    // Another replica holds the secret's lease.
    let store: Arc<dyn LeaseStore> = Arc::new(table_store(&moto.url, TABLE).await);
    let other = Leases::new(
        store,
        "other-host/1/x",
        Duration::from_secs(60),
        Arc::new(SystemClock),
    );
    let Taken::Ours(g) = other.acquire("us-east-1:held/db").await.unwrap() else {
        panic!("free lease")
    };
    let out = rotator(&["rotate", "held", "--config", cfg_dir], &env);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("other-host/1/x") && err.contains("nothing was changed"),
        "{err}"
    );
    assert_eq!(version_count(&sm, "held/db").await, 1);
    assert_eq!(sim.calls()["UpdateService"].as_u64().unwrap_or(0), 0);
    // A dry run needs no lease.
    let out = rotator(&["rotate", "held", "--dry-run", "--config", cfg_dir], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    g.release().await.unwrap();
    let out = rotator(&["rotate", "held", "--config", cfg_dir], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(version_count(&sm, "held/db").await, 2);
}

/// The target command of the three-replica test: a per-secret lock directory that a
/// second concurrent `set`/`revoke` of the same secret finds taken (then it records an
/// overlap), and a start/end line per run.
const TARGET_SCRIPT: &str = r#"#!/bin/sh
dir="$1"
name="$SECRET_ROTATOR_SECRET"
cat >/dev/null
if ! mkdir "$dir/$name.lock" 2>/dev/null; then
    echo "$name $SECRET_ROTATOR_STEP" >>"$dir/overlaps"
fi
echo "start $name $SECRET_ROTATOR_STEP" >>"$dir/events"
sleep 0.2
echo "end $name $SECRET_ROTATOR_STEP" >>"$dir/events"
rmdir "$dir/$name.lock" 2>/dev/null
exit 0
"#;

#[tokio::test(flavor = "multi_thread")]
async fn three_replicas_rotate_each_secret_once_under_leases() {
    const N: usize = 50;
    let moto = Moto::start();
    let services: Vec<String> = (0..N)
        .map(|i| format!(r#"{{"name":"svc{i}","desiredCount":1}}"#))
        .collect();
    let seed = format!(
        r#"{{"clusters":[{{"name":"prod","services":[{}]}}]}}"#,
        services.join(",")
    );
    let sim = EcsSim::start(&["--time-scale", "20"], &seed);
    let c = sm_client(&moto.url).await;
    create_table(&ddb(&moto.url).await, TABLE, "pk").await;
    let work = tempfile::tempdir().unwrap();
    let script = work.path().join("target.sh");
    std::fs::write(&script, TARGET_SCRIPT).unwrap();
    let w = work.path().to_str().unwrap();
    let s = script.to_str().unwrap();
    let mut secrets = format!(
        "[aws]\nregion = \"us-east-1\"\n\n[ha]\nlock_table = \"{TABLE}\"\nreplicas = 3\nlease_ttl = \"6s\"\n\n"
    );
    for i in 0..N {
        create_secret(
            &c,
            &format!("ha/{i}"),
            "initial",
            &[("secret-rotator:last-rotated", "2026-01-01T00:00:00Z")],
        )
        .await;
        secrets.push_str(&format!(
            "[[secret]]\nname = \"s{i}\"\nsecret_id = \"ha/{i}\"\nevery = \"30d\"\n\
             target = {{ kind = \"command\", set = [\"/bin/sh\", \"{s}\", \"{w}\"], revoke = [\"/bin/sh\", \"{s}\", \"{w}\"] }}\n\
             redeploy = [{{ cluster = \"prod\", services = [\"svc{i}\"] }}]\n"
        ));
    }
    let env = aws_env(Some(&moto.url), Some(&sim.url));
    // One configuration; only the listen address differs per daemon (its own file).
    let mut daemons = Vec::new();
    let mut ports = Vec::new();
    let mut dirs = Vec::new();
    for r in 0..3 {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secrets.toml"), &secrets).unwrap();
        std::fs::write(
            dir.path().join("daemon.toml"),
            format!("[daemon]\nlisten = \"127.0.0.1:{port}\"\nretry_initial = \"1s\"\nretry_max = \"4s\"\nmax_starts_per_minute = 10000\n"),
        )
        .unwrap();
        let mut cmd = Command::new(rotator_bin());
        cmd.args(["run", "--config", dir.path().to_str().unwrap()])
            .stdout(Stdio::null());
        match std::env::var("REPLICA_LOGS") {
            Ok(d) => cmd.stderr(std::fs::File::create(format!("{d}/ha-{r}.log")).unwrap()),
            Err(_) => cmd.stderr(Stdio::null()),
        };
        for (k, v) in &env {
            cmd.env(k, v);
        }
        daemons.push(Bg(cmd.spawn().unwrap()));
        ports.push(port);
        dirs.push(dir);
    }

    let start = Instant::now();
    loop {
        let mut done = 0;
        for i in 0..N {
            let d = c
                .describe_secret()
                .secret_id(format!("ha/{i}"))
                .send()
                .await
                .unwrap();
            let deployed = d
                .tags()
                .iter()
                .any(|t| t.key() == Some("secret-rotator:deployed-version"));
            done += usize::from(deployed);
        }
        if done == N {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(100),
            "only {done}/{N} rotated"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Let the replicas that found a lease held come back (after 1/2 to 3/4 ttl) and find
    // the work done.
    tokio::time::sleep(Duration::from_secs(6)).await;
    eprintln!("three replicas: {N} secrets in {:?}", start.elapsed());

    let mut contended = 0.0;
    let mut failed = 0.0;
    let mut lost = 0.0;
    for p in &ports {
        let (_, body) = http_get(&format!("http://127.0.0.1:{p}/metrics")).unwrap();
        contended += metric_sum(&body, "secret_rotator_lease_contended_total");
        lost += metric_sum(&body, "secret_rotator_lease_lost_total");
        failed += body
            .lines()
            .filter(|l| l.starts_with("secret_rotator_rotations_total") && !l.contains("success"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
    }
    drop(daemons);
    // The replicas really competed for the same secrets.
    assert!(contended > 0.0, "no lease was ever contended");
    // No failure but a lost lease: a replica whose lease another took (seen here under
    // load, right after two replicas' first acquires) stops before writing, which is the
    // fence doing its job; the checks below show each secret still rotated once.
    assert_eq!(failed, lost, "failed rotations other than a lost lease");

    for i in 0..N {
        let id = format!("ha/{i}");
        let st = stages(&c, &id).await;
        assert_eq!(version_count(&c, &id).await, 2, "{id}: {st:?}");
        assert!(!st.contains_key("AWSPENDING"), "{id}: {st:?}");
    }
    // Exactly one forced deployment per consumer, and it completed once.
    let forced = sim.calls()["UpdateService"].as_u64().unwrap_or(0);
    assert_eq!(forced, N as u64, "forced deployments for {N} consumers");
    let completions = sim.completions();
    for i in 0..N {
        let svc = format!("svc{i}");
        let n = completions
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["service"] == svc.as_str())
            .count();
        assert_eq!(n, 1, "{svc}: {completions}");
    }
    // Never two set (or revoke) commands of one secret at once; each ran once.
    let overlaps = std::fs::read_to_string(work.path().join("overlaps")).unwrap_or_default();
    assert!(
        overlaps.is_empty(),
        "concurrent target commands: {overlaps}"
    );
    let events = std::fs::read_to_string(work.path().join("events")).unwrap();
    for i in 0..N {
        for step in ["set", "revoke"] {
            let line = format!("start s{i} {step}");
            let n = events.lines().filter(|l| *l == line).count();
            assert_eq!(n, 1, "{line}: ran {n} times");
        }
    }
}
