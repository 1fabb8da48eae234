//! The Alibaba Cloud KMS store (`stores::alibaba`) against alibaba-kms-sim: every port
//! method, the idempotent pending put, retries, RAM roles through STS, and errors that
//! name no secret. Needs the simulator binary (`cargo build -p alibaba-kms-sim`).

mod common;

use common::alibaba::{AlibabaSim, ACCOUNT, AK, ROLE, SK};
use rotator_core::error::ErrorClass;
use rotator_core::ids::{
    Account, Endpoint, RoleArn, SecretId, SecretRef, StoreKind, StoreParts, StoreRoute, VersionId,
};
use rotator_core::rotation::store::{
    describe_all, SecretStore, Select, AWSCURRENT, AWSPENDING, AWSPREVIOUS, TAG_LAST_ROTATED,
};
use secrecy::{ExposeSecret, SecretString};
use secret_rotator::stores::alibaba::calls::Kms;
use secret_rotator::stores::alibaba::client::Transport;
use secret_rotator::stores::alibaba::{
    AlibabaSettings, AlibabaStore, Credentials, Endpoint as KmsEndpoint, Tuning, PENDING_STAGE,
};
use std::time::Duration;

fn creds(secret: &str) -> Credentials {
    Credentials::new(AK, SecretString::from(secret.to_owned()), None)
}

fn fast() -> Tuning {
    Tuning {
        timeout: Duration::from_secs(5),
        attempts: 4,
        backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
    }
}

fn store(sim: &AlibabaSim) -> AlibabaStore {
    AlibabaStore::with_credentials(
        AlibabaSettings {
            sts_endpoint: Some(sim.url.clone()),
        },
        creds(SK),
    )
    .with_tuning(fast())
}

fn secret(sim: &AlibabaSim, name: &str, role: Option<&str>) -> SecretRef {
    SecretRef {
        id: SecretId::new(name.to_owned()),
        account: Account::default(),
        store: StoreRoute::new(StoreParts {
            kind: StoreKind::Alibaba,
            region: Some("cn-hangzhou".into()),
            endpoint: Some(Endpoint::new(sim.url.clone())),
            role_arn: role.map(RoleArn::from),
        }),
    }
}

/// Creates `name` (version `v1`, ACSCurrent) through the client.
async fn create(sim: &AlibabaSim, name: &str, value: &str) {
    let transport = Transport::new(fast());
    let endpoint = KmsEndpoint::parse(&sim.url).unwrap();
    let c = creds(SK);
    let kms = Kms {
        transport: &transport,
        endpoint: &endpoint,
        creds: &c,
    };
    kms.create_secret(
        name,
        "v1",
        &SecretString::from(value.to_owned()),
        &[("team", "db".into())],
    )
    .await
    .unwrap();
}

fn v(s: &str) -> VersionId {
    VersionId::new(s.to_owned())
}

fn stages(meta: &rotator_core::rotation::store::SecretMeta) -> Vec<(String, Vec<String>)> {
    meta.versions
        .iter()
        .map(|(k, v)| {
            let mut s = v.clone();
            s.sort();
            (k.to_string(), s)
        })
        .collect()
}

#[tokio::test]
async fn every_port_method_against_the_simulator() {
    let sim = AlibabaSim::start(&[]);
    create(&sim, "app/db", "old-value").await;
    let store = store(&sim);
    let s = secret(&sim, "app/db", None);

    let meta = store.describe(&s).await.unwrap();
    assert_eq!(
        meta.arn.as_str(),
        format!("acs:kms:cn-hangzhou:{ACCOUNT}:secret/app/db")
    );
    assert_eq!(meta.name, "app/db");
    assert_eq!(
        stages(&meta),
        vec![("v1".into(), vec![AWSCURRENT.to_owned()])]
    );
    assert_eq!(meta.tags.get("team").map(String::as_str), Some("db"));
    assert!(!meta.rotation_enabled && !meta.deleted);
    assert!(meta.last_changed.is_some());

    let token = v("0b8e6f5e-1111-4c1e-9d7a-2f0c9a1b2c3d");
    let new = SecretString::from("new-value".to_owned());
    assert_eq!(store.put_pending(&s, &token, &new).await.unwrap(), token);
    let meta = store.describe(&s).await.unwrap();
    assert_eq!(meta.version_with(AWSPENDING), Some(&token));
    assert_eq!(meta.version_with(AWSCURRENT), Some(&v("v1")));

    let (id, got) = store
        .get_value(&s, Select::Stage(AWSPENDING))
        .await
        .unwrap();
    assert_eq!(
        (id.clone(), got.expose_secret()),
        (token.clone(), "new-value")
    );
    let (id, got) = store
        .get_value(&s, Select::Version(&token, AWSPENDING))
        .await
        .unwrap();
    assert_eq!((id, got.expose_secret()), (token.clone(), "new-value"));
    let err = store
        .get_value(&s, Select::Version(&token, AWSCURRENT))
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::NotFound);

    store
        .update_stage(&s, AWSCURRENT, Some(&token), Some(&v("v1")))
        .await
        .unwrap();
    store
        .update_stage(&s, AWSPENDING, None, Some(&token))
        .await
        .unwrap();
    let meta = store.describe(&s).await.unwrap();
    assert_eq!(
        stages(&meta),
        vec![
            (token.to_string(), vec![AWSCURRENT.to_owned()]),
            ("v1".into(), vec![AWSPREVIOUS.to_owned()]),
        ]
    );
    let (_, cur) = store
        .get_value(&s, Select::Stage(AWSCURRENT))
        .await
        .unwrap();
    assert_eq!(cur.expose_secret(), "new-value");
    let (_, prev) = store
        .get_value(&s, Select::Stage(AWSPREVIOUS))
        .await
        .unwrap();
    assert_eq!(prev.expose_secret(), "old-value");

    let versions = store.versions(&s).await.unwrap();
    assert_eq!(versions.len(), 2);
    assert!(versions.iter().all(|v| v.created.is_some()));
    assert_eq!(versions[0].id, v("v1"));
    assert_eq!(versions[0].stages, vec![AWSPREVIOUS.to_owned()]);

    // The core's tag keys and values fit Alibaba's tag rules as they are.
    store
        .tag(&s, &[(TAG_LAST_ROTATED, "2026-03-03T02:00:00Z".to_owned())])
        .await
        .unwrap();
    let meta = store.describe(&s).await.unwrap();
    assert_eq!(
        meta.tags.get(TAG_LAST_ROTATED).map(String::as_str),
        Some("2026-03-03T02:00:00Z")
    );
    assert_eq!(meta.tags.get("team").map(String::as_str), Some("db"));

    let missing = store
        .describe(&secret(&sim, "nope", None))
        .await
        .unwrap_err();
    assert_eq!(missing.class, ErrorClass::NotFound);
    assert_eq!(missing.code(), Some("Forbidden.ResourceNotFound"));
    assert!(missing.info.request_id.is_some());
}

#[tokio::test]
async fn the_pending_version_is_idempotent_per_token() {
    let sim = AlibabaSim::start(&[]);
    create(&sim, "idem", "old").await;
    let store = store(&sim);
    let s = secret(&sim, "idem", None);
    let token = v("tok-1");
    let value = SecretString::from("candidate".to_owned());
    assert_eq!(store.put_pending(&s, &token, &value).await.unwrap(), token);
    assert_eq!(store.put_pending(&s, &token, &value).await.unwrap(), token);
    let other = SecretString::from("another-candidate".to_owned());
    let err = store.put_pending(&s, &token, &other).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Conflict);
    assert_eq!(err.code(), Some("Rejected.ResourceExist"));
    let text = err.to_string();
    assert!(!text.contains("candidate"), "{text}");
    // The stored value is the first one; one pending version only.
    let (_, got) = store
        .get_value(&s, Select::Stage(AWSPENDING))
        .await
        .unwrap();
    assert_eq!(got.expose_secret(), "candidate");
    assert_eq!(store.describe(&s).await.unwrap().versions.len(), 2);
    assert_eq!(PENDING_STAGE, "SecretRotatorPending");
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_a_bounded_number_of_times() {
    let sim = AlibabaSim::start(&[]);
    create(&sim, "busy", "x").await;
    let store = store(&sim);
    let s = secret(&sim, "busy", None);
    sim.fault("throttle", 1, Some("GetSecretValue"));
    sim.fault("kms-throttle", 1, Some("GetSecretValue"));
    sim.fault("error", 1, Some("GetSecretValue"));
    let before = sim.calls("GetSecretValue");
    let (_, got) = store
        .get_value(&s, Select::Stage(AWSCURRENT))
        .await
        .unwrap();
    assert_eq!(got.expose_secret(), "x");
    assert_eq!(sim.calls("GetSecretValue") - before, 4);

    sim.fault("unavailable", 10, Some("GetSecretValue"));
    let before = sim.calls("GetSecretValue");
    let err = store
        .get_value(&s, Select::Stage(AWSCURRENT))
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::Transient);
    assert_eq!(sim.calls("GetSecretValue") - before, 4);

    // Not retried: a request KMS refuses.
    let before = sim.calls("UpdateSecretVersionStage");
    let err = store
        .update_stage(&s, AWSCURRENT, None, Some(&v("v1")))
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::Invalid);
    assert_eq!(sim.calls("UpdateSecretVersionStage") - before, 1);
}

#[tokio::test]
async fn a_call_without_an_answer_times_out_and_is_transient() {
    // A listener that accepts and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let store =
        AlibabaStore::with_credentials(AlibabaSettings::default(), creds(SK)).with_tuning(Tuning {
            timeout: Duration::from_millis(300),
            attempts: 2,
            backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(10),
        });
    let s = SecretRef {
        id: SecretId::from("x"),
        account: Account::default(),
        store: StoreRoute::new(StoreParts {
            kind: StoreKind::Alibaba,
            region: None,
            endpoint: Some(Endpoint::new(url)),
            role_arn: None,
        }),
    };
    let started = std::time::Instant::now();
    let err = store.describe(&s).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Transient, "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));
    drop(listener);
}

#[tokio::test]
async fn a_wrong_secret_key_is_a_setup_error_that_names_no_secret() {
    let sim = AlibabaSim::start(&[]);
    create(&sim, "guarded", "the-stored-value").await;
    let wrong = "wrong-key-secret-0123";
    let store = AlibabaStore::with_credentials(AlibabaSettings::default(), creds(wrong))
        .with_tuning(fast());
    let s = secret(&sim, "guarded", None);
    let before = sim.calls("GetSecretValue");
    let err = store
        .get_value(&s, Select::Stage(AWSCURRENT))
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::Setup);
    assert_eq!(err.code(), Some("SignatureDoesNotMatch"));
    assert_eq!(sim.calls("GetSecretValue") - before, 1, "not retried");
    let shown = format!("{err} {err:?}");
    for s in [wrong, SK, "the-stored-value"] {
        assert!(!shown.contains(s), "{shown}");
    }
    let unknown = AlibabaStore::with_credentials(
        AlibabaSettings::default(),
        Credentials::new("NoSuchKey", SecretString::from(SK.to_owned()), None),
    );
    let err = unknown.describe(&s).await.unwrap_err();
    assert_eq!(
        (err.class, err.code()),
        (ErrorClass::Setup, Some("InvalidAccessKeyId.NotFound"))
    );
}

#[tokio::test]
async fn a_ram_role_is_assumed_once_and_renewed_before_it_expires() {
    let sim = AlibabaSim::start(&[]);
    create(&sim, "role/db", "v").await;
    let s = secret(&sim, "role/db", Some(ROLE));
    let store = store(&sim);
    for _ in 0..3 {
        store
            .get_value(&s, Select::Stage(AWSCURRENT))
            .await
            .unwrap();
    }
    assert_eq!(sim.calls("AssumeRole"), 1);

    // Credentials with less than the renewal margin left are renewed on every use.
    sim.cap_sts_ttl(60);
    let short = self::store(&sim);
    for _ in 0..3 {
        short.describe(&s).await.unwrap();
    }
    assert_eq!(sim.calls("AssumeRole"), 4);

    let err = store
        .describe(&secret(
            &sim,
            "role/db",
            Some("acs:ram::1234567890123456:role/nobody"),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::Setup);
    assert_eq!(err.code(), Some("EntityNotExist.Role"));
}

#[tokio::test]
async fn describe_many_pages_through_list_secrets_and_answers_each_ref_once() {
    let sim = AlibabaSim::start(&[]);
    for i in 0..12 {
        create(&sim, &format!("many/{i:02}"), "x").await;
    }
    let store = store(&sim);
    let mut refs: Vec<SecretRef> = (0..11)
        .map(|i| secret(&sim, &format!("many/{i:02}"), None))
        .collect();
    refs.push(secret(&sim, "many/absent", None));
    // By ARN too.
    refs.push(secret(
        &sim,
        &format!("acs:kms:cn-hangzhou:{ACCOUNT}:secret/many/03"),
        None,
    ));
    let out = describe_all(&store, &refs).await;
    assert_eq!(out.len(), refs.len());
    for (i, r) in out.iter().enumerate().take(11) {
        let m = r.as_ref().unwrap();
        assert_eq!(m.name, format!("many/{i:02}"));
        assert_eq!(
            m.arn.as_str(),
            format!("acs:kms:cn-hangzhou:{ACCOUNT}:secret/many/{i:02}")
        );
        assert_eq!(m.version_with(AWSCURRENT), Some(&v("v1")));
        assert_eq!(m.tags.get("team").map(String::as_str), Some("db"));
    }
    assert_eq!(out[11].as_ref().unwrap_err().class, ErrorClass::NotFound);
    assert_eq!(out[12].as_ref().unwrap().name, "many/03");
    // One listing; DescribeSecret only for the ARN prefix and the secret not listed.
    assert_eq!(sim.calls("ListSecrets"), 1);
    assert_eq!(sim.calls("DescribeSecret"), 2);
}
