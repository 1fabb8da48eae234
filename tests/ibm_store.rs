//! The IBM store against ibm-sm-sim: every port method, the pending-holder protocol under
//! repeats and crashes, token expiry, throttling and bad credentials. No test prints a
//! secret value.

mod ibm_common;

use ibm_common::{admin, calls, faults, secret_ref, store, KEY};
use secrecy::{ExposeSecret, SecretString};
use secret_rotator::error::ErrorClass;
use secret_rotator::ids::{SecretRef, VersionId};
use secret_rotator::rotation::store::{SecretStore, Select, AWSCURRENT, AWSPENDING, AWSPREVIOUS};
use secret_rotator::stores::ibm::client::ListQuery;
use secret_rotator::stores::ibm::IbmStore;
use serde_json::{json, Value};

fn s(v: &str) -> SecretString {
    SecretString::from(v.to_owned())
}

fn tok(v: &str) -> VersionId {
    VersionId::from(v)
}

/// A secret created through the client: its ref.
async fn create(st: &IbmStore, url: &str, proto: Value) -> SecretRef {
    let m = st
        .client()
        .create_secret(url, &proto)
        .await
        .expect("create secret");
    secret_ref(url, &m.id)
}

async fn arbitrary(st: &IbmStore, url: &str, name: &str) -> SecretRef {
    create(st, url, json!({"secret_type": "arbitrary", "name": name, "payload": "value-0", "custom_metadata": {"team": "pay", "n": 1}})).await
}

async fn value_at(st: &IbmStore, r: &SecretRef, stage: &str) -> (VersionId, String) {
    let (v, val) = st
        .get_value(r, Select::Stage(stage))
        .await
        .expect("get value");
    (v, val.expose_secret().to_owned())
}

/// Whether two values are equal, without printing either.
fn same(a: &str, b: &str) -> bool {
    a == b
}

async fn versions_total(st: &IbmStore, url: &str, r: &SecretRef) -> u64 {
    st.client()
        .get_secret_metadata(url, r.id.as_str())
        .await
        .expect("metadata")
        .versions_total
}

async fn holders(st: &IbmStore, url: &str) -> Vec<String> {
    let q = ListQuery {
        offset: 0,
        limit: 200,
        search: Some("-rotator-pending"),
        groups: vec![],
        secret_types: vec![],
    };
    st.client()
        .list_secrets(url, &q)
        .await
        .expect("list")
        .secrets
        .into_iter()
        .map(|m| m.name)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_reports_current_previous_tags_and_crn() {
    let sim = ibm_common::sim(3600).await;
    let st = store(&sim.url, KEY, false);
    let r = arbitrary(&st, &sim.url, "db-a").await;
    let m = st.describe(&r).await.expect("describe");
    assert!(
        m.arn
            .as_str()
            .starts_with("crn:v1:bluemix:public:secrets-manager:"),
        "{}",
        m.arn
    );
    assert_eq!(m.name, "db-a");
    assert_eq!(m.tags.get("team").map(String::as_str), Some("pay"));
    assert!(
        !m.tags.contains_key("n"),
        "only string metadata values are tags"
    );
    assert!(!m.rotation_enabled && !m.deleted && m.last_changed.is_some());
    let current = m.version_with(AWSCURRENT).expect("current").clone();
    assert_eq!(m.versions.len(), 1);
    assert!(m.version_with(AWSPREVIOUS).is_none() && m.version_with(AWSPENDING).is_none());
    // A version someone else made: its IBM id is its logical id, the old one is previous.
    st.client()
        .create_version(&sim.url, r.id.as_str(), &json!({"payload": "value-1"}))
        .await
        .expect("version");
    let m = st.describe(&r).await.expect("describe");
    assert_eq!(m.version_with(AWSPREVIOUS), Some(&current));
    let (v, val) = value_at(&st, &r, AWSCURRENT).await;
    assert_eq!(m.version_with(AWSCURRENT), Some(&v));
    assert!(same(&val, "value-1"));
    let (pv, val) = value_at(&st, &r, AWSPREVIOUS).await;
    assert_eq!(pv, current);
    assert!(same(&val, "value-0"));
    let all = st.versions(&r).await.expect("versions");
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|v| v.created.is_some()));
    // describe_many answers each ref once.
    let missing = secret_ref(&sim.url, "00000000-0000-0000-0000-000000000009");
    let answers = secret_rotator::rotation::store::describe_all(&st, &[r.clone(), missing]).await;
    assert!(answers[0].is_ok());
    assert_eq!(answers[1].as_ref().unwrap_err().class, ErrorClass::NotFound);
}

/// The whole protocol, with every step repeated as a crash-and-resume would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_writes_the_holder_then_one_version_then_drops_the_holder() {
    let sim = ibm_common::sim(3600).await;
    let st = store(&sim.url, KEY, false);
    let r = arbitrary(&st, &sim.url, "db-b").await;
    let (old, _) = value_at(&st, &r, AWSCURRENT).await;
    let t = tok("tok-0001");

    assert_eq!(
        st.put_pending(&r, &t, &s("value-new")).await.expect("put"),
        t
    );
    // A put repeated with the same token and value joins; another value is refused.
    assert_eq!(
        st.put_pending(&r, &t, &s("value-new"))
            .await
            .expect("put again"),
        t
    );
    let e = st.put_pending(&r, &t, &s("value-other")).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Conflict);
    assert_eq!(holders(&st, &sim.url).await, ["db-b-rotator-pending"]);
    assert_eq!(
        versions_total(&st, &sim.url, &r).await,
        1,
        "the real secret is untouched"
    );

    let m = st.describe(&r).await.expect("describe");
    assert_eq!(m.version_with(AWSPENDING), Some(&t));
    assert_eq!(m.version_with(AWSCURRENT), Some(&old));
    let (v, val) = value_at(&st, &r, AWSPENDING).await;
    assert_eq!(v, t);
    assert!(same(&val, "value-new"));
    let (_, val) = st
        .get_value(&r, Select::Version(&t, AWSPENDING))
        .await
        .expect("by version");
    assert!(same(val.expose_secret(), "value-new"));
    let e = st
        .get_value(&r, Select::Version(&tok("other"), AWSPENDING))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::NotFound);
    let listed = st.versions(&r).await.expect("versions");
    assert!(listed
        .iter()
        .any(|v| v.id == t && v.stages == [AWSPENDING] && v.created.is_some()));

    // Finish, then the same finish again (a crash before the holder was deleted).
    st.update_stage(&r, AWSCURRENT, Some(&t), Some(&old))
        .await
        .expect("move current");
    st.update_stage(&r, AWSCURRENT, Some(&t), Some(&old))
        .await
        .expect("move current again");
    assert_eq!(
        versions_total(&st, &sim.url, &r).await,
        2,
        "exactly one new version"
    );
    let m = st.describe(&r).await.expect("describe");
    assert_eq!(
        m.versions.get(&t).map(Vec::len),
        Some(2),
        "current and pending on the token: {:?}",
        m.versions
    );
    assert_eq!(m.version_with(AWSPREVIOUS), Some(&old));
    // The holder still carries the token: a put repeated now joins it.
    assert_eq!(
        st.put_pending(&r, &t, &s("value-new"))
            .await
            .expect("put joins"),
        t
    );
    let (v, val) = value_at(&st, &r, AWSCURRENT).await;
    assert_eq!(v, t);
    assert!(same(&val, "value-new"));
    let (v, val) = value_at(&st, &r, AWSPREVIOUS).await;
    assert_eq!(v, old);
    assert!(same(&val, "value-0"));

    st.update_stage(&r, AWSPENDING, None, Some(&t))
        .await
        .expect("drop pending");
    st.update_stage(&r, AWSPENDING, None, Some(&t))
        .await
        .expect("drop pending again");
    assert!(holders(&st, &sim.url).await.is_empty());
    let m = st.describe(&r).await.expect("describe");
    assert_eq!(m.version_with(AWSPENDING), None);
    assert_eq!(m.versions.get(&t), Some(&vec![AWSCURRENT.to_owned()]));
    assert_eq!(
        st.get_value(&r, Select::Stage(AWSPENDING))
            .await
            .unwrap_err()
            .class,
        ErrorClass::NotFound
    );
    // The token is a version of the secret now: a put with it is refused.
    let e = st.put_pending(&r, &t, &s("value-new")).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Conflict);
    assert!(holders(&st, &sim.url).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_token_moves_pending_and_a_foreign_version_stops_the_finish() {
    let sim = ibm_common::sim(3600).await;
    let st = store(&sim.url, KEY, false);
    let r = arbitrary(&st, &sim.url, "db-c").await;
    let (old, _) = value_at(&st, &r, AWSCURRENT).await;
    st.put_pending(&r, &tok("tok-1"), &s("value-1"))
        .await
        .expect("put 1");
    st.put_pending(&r, &tok("tok-2"), &s("value-2"))
        .await
        .expect("put 2 replaces");
    assert_eq!(holders(&st, &sim.url).await.len(), 1);
    let m = st.describe(&r).await.expect("describe");
    assert_eq!(m.version_with(AWSPENDING), Some(&tok("tok-2")));
    // Removing AWSPENDING from a token it is not on.
    let e = st
        .update_stage(&r, AWSPENDING, None, Some(&tok("tok-1")))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Conflict);
    // Finishing a token that is not pending.
    let e = st
        .update_stage(&r, AWSCURRENT, Some(&tok("tok-1")), Some(&old))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::NotFound);

    // Someone writes a version between our put and our finish.
    st.client()
        .create_version(&sim.url, r.id.as_str(), &json!({"payload": "foreign"}))
        .await
        .expect("foreign");
    let e = st
        .update_stage(&r, AWSCURRENT, Some(&tok("tok-2")), Some(&old))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Conflict);
    assert_eq!(
        versions_total(&st, &sim.url, &r).await,
        2,
        "nothing written over the foreign version"
    );

    for (stage, to, from) in [
        (AWSPREVIOUS, Some(tok("x")), None),
        (AWSPENDING, Some(tok("x")), None),
        (AWSCURRENT, Some(tok("x")), None),
    ] {
        let e = st
            .update_stage(&r, stage, to.as_ref(), from.as_ref())
            .await
            .unwrap_err();
        assert_eq!(e.class, ErrorClass::Invalid, "{stage}");
    }
    // A version of ours already carries a token: a put with it is refused.
    st.client()
        .create_version(
            &sim.url,
            r.id.as_str(),
            &json!({"payload": "v", "version_custom_metadata": {"secret_rotator_token": "tok-9"}}),
        )
        .await
        .expect("tokened version");
    assert_eq!(
        st.put_pending(&r, &tok("tok-9"), &s("v"))
            .await
            .unwrap_err()
            .class,
        ErrorClass::Conflict
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_rotate_the_password_and_kv_the_json_data() {
    let sim = ibm_common::sim(3600).await;
    let st = store(&sim.url, KEY, false);
    let up = create(&st, &sim.url, json!({"secret_type": "username_password", "name": "db-user", "username": "app", "password": "password-0"})).await;
    let (old, cur) = value_at(&st, &up, AWSCURRENT).await;
    let cur: Value = serde_json::from_str(&cur).expect("json");
    assert_eq!(cur["username"], "app");
    assert!(cur["password"].is_string());
    let e = st
        .put_pending(
            &up,
            &tok("t-1"),
            &s(r#"{"username":"root","password":"password-1"}"#),
        )
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Invalid);
    st.put_pending(
        &up,
        &tok("t-1"),
        &s(r#"{"username":"app","password":"password-1"}"#),
    )
    .await
    .expect("put");
    let (_, pending) = value_at(&st, &up, AWSPENDING).await;
    let pending: Value = serde_json::from_str(&pending).expect("json");
    assert_eq!(pending["username"], "app");
    assert!(pending["password"] == "password-1");
    st.update_stage(&up, AWSCURRENT, Some(&tok("t-1")), Some(&old))
        .await
        .expect("finish");
    let (_, now) = value_at(&st, &up, AWSCURRENT).await;
    let now: Value = serde_json::from_str(&now).expect("json");
    assert!(now["password"] == "password-1" && now["username"] == "app");

    let kv = create(
        &st,
        &sim.url,
        json!({"secret_type": "kv", "name": "db-kv", "data": {"user": "app", "password": "p0"}}),
    )
    .await;
    let (old, cur) = value_at(&st, &kv, AWSCURRENT).await;
    let cur: Value = serde_json::from_str(&cur).expect("json");
    assert_eq!(cur["user"], "app");
    assert_eq!(
        st.put_pending(&kv, &tok("k-1"), &s("not json"))
            .await
            .unwrap_err()
            .class,
        ErrorClass::Invalid
    );
    st.put_pending(&kv, &tok("k-1"), &s(r#"{"user":"app","password":"p1"}"#))
        .await
        .expect("put");
    st.update_stage(&kv, AWSCURRENT, Some(&tok("k-1")), Some(&old))
        .await
        .expect("finish");
    let (_, now) = value_at(&st, &kv, AWSCURRENT).await;
    let now: Value = serde_json::from_str(&now).expect("json");
    assert!(now["password"] == "p1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_keep_other_metadata_and_holders_stay_in_the_group() {
    let sim = ibm_common::sim(3600).await;
    let st = store(&sim.url, KEY, false);
    let r = arbitrary(&st, &sim.url, "db-d").await;
    st.tag(
        &r,
        &[("secret-rotator:last-rotated", "2026-01-01T00:00:00Z".into())],
    )
    .await
    .expect("tag");
    let m = st.describe(&r).await.expect("describe");
    assert_eq!(m.tags.get("team").map(String::as_str), Some("pay"));
    assert_eq!(
        m.tags
            .get("secret-rotator:last-rotated")
            .map(String::as_str),
        Some("2026-01-01T00:00:00Z")
    );
    let raw = st
        .client()
        .get_secret_metadata(&sim.url, r.id.as_str())
        .await
        .expect("meta");
    assert_eq!(
        raw.custom_metadata.get("n"),
        Some(&json!(1)),
        "non-string metadata kept"
    );

    // A secret in its own group: the holder goes there too.
    let (status, group) = admin_create_group(&st, &sim.url).await;
    assert_eq!(status, "ok");
    let g = create(&st, &sim.url, json!({"secret_type": "arbitrary", "name": "db-e", "payload": "x", "secret_group_id": group})).await;
    st.put_pending(&g, &tok("g-1"), &s("y")).await.expect("put");
    let q = ListQuery {
        offset: 0,
        limit: 10,
        search: Some("db-e-rotator-pending"),
        groups: vec![group.as_str()],
        secret_types: vec![],
    };
    assert_eq!(
        st.client()
            .list_secrets(&sim.url, &q)
            .await
            .expect("list")
            .total_count,
        1
    );

    // An arbitrary secret that has the holder's name but is not ours.
    let f = arbitrary(&st, &sim.url, "db-f").await;
    create(
        &st,
        &sim.url,
        json!({"secret_type": "arbitrary", "name": "db-f-rotator-pending", "payload": "x"}),
    )
    .await;
    assert_eq!(
        st.describe(&f).await.unwrap_err().class,
        ErrorClass::Conflict
    );
    assert_eq!(
        st.put_pending(&f, &tok("f-1"), &s("y"))
            .await
            .unwrap_err()
            .class,
        ErrorClass::Conflict
    );
}

/// Secret groups have no call in the store's client: made over plain HTTP with a token.
async fn admin_create_group(st: &IbmStore, url: &str) -> (&'static str, String) {
    let token = st.client().tokens().token().await.expect("token");
    let host = url.trim_start_matches("http://").to_owned();
    let body = r#"{"name":"team-e"}"#;
    let bearer = token.expose_secret().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(&host).expect("connect");
        write!(c, "POST /api/v2/secret_groups HTTP/1.0\r\nHost: {host}\r\nAuthorization: Bearer {bearer}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).expect("write");
        let mut out = String::new();
        c.read_to_string(&mut out).expect("read");
        out
    })
    .await
    .expect("thread");
    let json: Value = out
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or_default();
    let id = json["id"].as_str().unwrap_or_default().to_owned();
    (
        if out.starts_with("HTTP/1.0 201") || out.starts_with("HTTP/1.1 201") {
            "ok"
        } else {
            "failed"
        },
        id,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_refreshed_before_expiry_and_after_a_refusal() {
    let sim = ibm_common::sim(2).await;
    let st = store(&sim.url, KEY, false);
    let r = arbitrary(&st, &sim.url, "db-g").await;
    // Calls across three token lifetimes: refreshed at 80%, none goes out expired.
    for _ in 0..6 {
        st.describe(&r).await.expect("describe");
        tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    }
    let c = calls(&sim.url);
    assert_eq!(c["rejected_expired"], 0, "{c}");
    assert!(c["iam_exchanges"].as_u64().unwrap_or(0) >= 3, "{c}");

    // Long-lived tokens from here on, so that no refresh interferes.
    let sim = ibm_common::sim(3600).await;
    let st = store(&sim.url, KEY, false);
    let r = arbitrary(&st, &sim.url, "db-g").await;
    // One exchange at a time: many concurrent calls on a fresh store share one token.
    let fresh = store(&sim.url, KEY, false);
    let before = calls(&sim.url)["iam_exchanges"].as_u64().unwrap_or(0);
    let all = futures::future::join_all((0..8).map(|_| fresh.describe(&r))).await;
    assert!(all.iter().all(Result::is_ok));
    assert_eq!(
        calls(&sim.url)["iam_exchanges"].as_u64().unwrap_or(0),
        before + 1
    );
    // A token the service stops accepting: one new exchange, the call goes through.
    let (status, _) = admin(&sim.url, "POST", "/_sim/tokens/expire", None);
    assert_eq!(status, 200);
    st.describe(&r).await.expect("describe after a refusal");
    let c = calls(&sim.url);
    assert_eq!(c["rejected_expired"], 1, "{c}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttles_and_server_errors_are_retried_and_bounded() {
    let sim = ibm_common::sim(3600).await;
    let st = store(&sim.url, KEY, true);
    let r = arbitrary(&st, &sim.url, "db-h").await;
    faults(&sim.url, 429, 2, 0);
    st.describe(&r).await.expect("retried after 429s");
    faults(&sim.url, 503, 2, 0);
    value_at(&st, &r, AWSCURRENT).await;
    faults(&sim.url, 429, 5, 0);
    let e = st.describe(&r).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Throttled);
    // A create is not repeated after a 5xx: it may have happened. Here it did (the
    // answer was lost): the put looks again and finds its own holder.
    ibm_common::fault(
        &sim.url,
        json!({"status": 500, "operation": "create_secret", "after": true}),
    );
    let before = ibm_common::ops(&sim.url, "create_secret");
    st.put_pending(&r, &tok("h-1"), &s("v"))
        .await
        .expect("put after a lost answer");
    assert_eq!(ibm_common::ops(&sim.url, "create_secret") - before, 1);
    assert_eq!(holders(&st, &sim.url).await.len(), 1);
    // Here it did not: the put surfaces nothing either, it creates the holder again.
    let r2 = arbitrary(&st, &sim.url, "db-h2").await;
    ibm_common::fault(
        &sim.url,
        json!({"status": 500, "operation": "create_secret"}),
    );
    st.put_pending(&r2, &tok("h-2"), &s("v"))
        .await
        .expect("put after a 5xx");
    assert_eq!(holders(&st, &sim.url).await.len(), 2);
    // The finish's version is created once even when its answer is lost.
    let (old, _) = value_at(&st, &r, AWSCURRENT).await;
    ibm_common::fault(
        &sim.url,
        json!({"status": 503, "operation": "create_secret_version", "after": true}),
    );
    st.update_stage(&r, AWSCURRENT, Some(&tok("h-1")), Some(&old))
        .await
        .expect("finish");
    assert_eq!(versions_total(&st, &sim.url, &r).await, 2);
    assert_eq!(value_at(&st, &r, AWSCURRENT).await.0, tok("h-1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_name_where_the_key_came_from_never_the_key() {
    let sim = ibm_common::sim(3600).await;
    let good = store(&sim.url, KEY, true);
    let r = arbitrary(&good, &sim.url, "db-i").await;
    let wrong = "wrong-key-value-123";
    let st = store(&sim.url, wrong, true);
    let e = st.describe(&r).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::AccessDenied);
    assert!(
        !e.to_string().contains(wrong) && !format!("{e:?}").contains(wrong),
        "{e}"
    );
    assert_eq!(
        calls(&sim.url)["iam_refused"],
        1,
        "a refused key is not retried"
    );

    let var = "IBM_STORE_TEST_KEY_NOT_SET";
    let unset = IbmStore::new(secret_rotator::stores::ibm::IbmSettings {
        iam_endpoint: Some(sim.url.clone()),
        api_key_env: var.into(),
    });
    let e = unset.describe(&r).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Setup);
    assert!(e.to_string().contains(var), "{e}");

    let no_url = secret_rotator::ids::SecretRef {
        id: r.id.clone(),
        account: Default::default(),
        store: Default::default(),
    };
    assert_eq!(
        good.describe(&no_url).await.unwrap_err().class,
        ErrorClass::Setup
    );
}
