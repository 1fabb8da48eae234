//! Secrets Manager behind the [`SecretStore`] trait.

use super::{map_sdk_error, to_chrono, AwsContext, CallCounter, Clients};
use crate::error::{AwsError, ErrorClass};
use crate::ids::{Account, SecretArn, SecretRef, VersionId};
use crate::rotation::store::{Found, SecretMeta, SecretStore, Select, VersionInfo};
use aws_sdk_secretsmanager::types::{SecretListEntry, Tag};
use aws_sdk_secretsmanager::Client;
use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use std::collections::{BTreeMap, HashMap};

/// Below this many configured secrets in one account, DescribeSecret per secret is cheaper
/// than paging through every secret of the account with ListSecrets.
const LIST_THRESHOLD: usize = 10;
/// Concurrent DescribeSecret calls when falling back to one call per secret.
const DESCRIBE_CONCURRENCY: usize = 16;

#[derive(Clone)]
pub struct AwsSecrets {
    ctx: AwsContext,
    clients: Clients<Client>,
}

impl AwsSecrets {
    pub fn new(ctx: AwsContext) -> Self {
        Self {
            ctx,
            clients: Clients::default(),
        }
    }

    async fn client(&self, account: &Account) -> Client {
        self.clients
            .get(account, self.ctx.sdk_config(account), |sdk| {
                Client::from_conf(
                    aws_sdk_secretsmanager::config::Builder::from(sdk)
                        .interceptor(CallCounter)
                        .build(),
                )
            })
            .await
    }

    /// Answers the `wanted` refs (indices into `refs`, all of `account`) from ListSecrets
    /// pages (100 per page, tags and stages included) as each page arrives, and returns
    /// those no page answered: not listed (e.g. scheduled for deletion), or after a
    /// failed page. Only the wanted entries are kept: a listed secret is looked up by
    /// name and by ARN among the wanted refs, sorted by id, so the account's other
    /// secrets cost nothing beyond their page.
    async fn list_wanted(
        &self,
        account: &Account,
        refs: &[SecretRef],
        mut wanted: Vec<usize>,
        found: Found<'_>,
    ) -> Vec<usize> {
        let id = |i: usize| refs.get(i).map_or("", |r| r.id.as_str());
        wanted.sort_unstable_by(|a, b| id(*a).cmp(id(*b)));
        let mut answered = vec![false; wanted.len()];
        let client = self.client(account).await;
        let mut pages = client
            .list_secrets()
            .max_results(100)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(p) => p,
                Err(e) => {
                    let e = map_sdk_error("ListSecrets", e);
                    let left = answered.iter().filter(|a| !**a).count();
                    tracing::warn!(%account, error = %e, left, "ListSecrets failed; describing the secrets not listed yet one by one");
                    break;
                }
            };
            for entry in page.secret_list() {
                let (Some(name), Some(arn)) = (entry.name(), entry.arn()) else {
                    continue;
                };
                let mut meta: Option<SecretMeta> = None;
                for key in [name, arn] {
                    let from = wanted.partition_point(|&i| id(i) < key);
                    for pos in from..wanted.len() {
                        let i = wanted[pos];
                        if id(i) != key {
                            break;
                        }
                        // Listed twice (the account changed between pages): answered once.
                        if std::mem::replace(&mut answered[pos], true) {
                            continue;
                        }
                        let m = meta.get_or_insert_with(|| meta_from_list(entry, arn, name));
                        found(i, Ok(m.clone()));
                    }
                }
            }
        }
        wanted
            .into_iter()
            .zip(answered)
            .filter(|(_, a)| !a)
            .map(|(i, _)| i)
            .collect()
    }

    /// DescribeSecret for each of `which` (indices into `refs`), a few at a time.
    async fn describe_each(
        &self,
        refs: &[SecretRef],
        which: Vec<usize>,
        report: &(dyn Fn(usize, Result<SecretMeta, AwsError>) + Sync),
    ) {
        // Futures collected first: a stream holding the closure would not be Send.
        let jobs: Vec<_> = which
            .into_iter()
            .filter_map(|i| Some((i, refs.get(i)?)))
            .map(|(i, r)| async move { (i, self.describe(r).await) })
            .collect();
        let mut described = futures::stream::iter(jobs).buffer_unordered(DESCRIBE_CONCURRENCY);
        while let Some((i, r)) = described.next().await {
            report(i, r);
        }
    }
}

fn tags_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_owned(), t.value().unwrap_or("").to_owned())))
        .collect()
}

fn stages_map(m: Option<&HashMap<String, Vec<String>>>) -> BTreeMap<VersionId, Vec<String>> {
    m.map(|m| {
        m.iter()
            .map(|(k, v)| (VersionId::new(k.clone()), v.clone()))
            .collect()
    })
    .unwrap_or_default()
}

fn meta_from_list(e: &SecretListEntry, arn: &str, name: &str) -> SecretMeta {
    SecretMeta {
        arn: SecretArn::new(arn.to_owned()),
        name: name.to_owned(),
        versions: stages_map(e.secret_versions_to_stages()),
        tags: tags_map(e.tags()),
        rotation_enabled: e.rotation_enabled().unwrap_or(false),
        deleted: e.deleted_date().is_some(),
        last_changed: e.last_changed_date().and_then(to_chrono),
    }
}

fn malformed(operation: &'static str, what: &str) -> AwsError {
    AwsError::new(
        ErrorClass::Other,
        operation,
        "MalformedResponse",
        format!("the response has no {what}"),
    )
}

impl SecretStore for AwsSecrets {
    async fn describe(&self, s: &SecretRef) -> Result<SecretMeta, AwsError> {
        let client = self.client(&s.account).await;
        let out = client
            .describe_secret()
            .secret_id(s.id.as_str())
            .send()
            .await
            .map_err(|e| map_sdk_error("DescribeSecret", e))?;
        Ok(SecretMeta {
            arn: SecretArn::new(
                out.arn()
                    .ok_or_else(|| malformed("DescribeSecret", "ARN"))?
                    .to_owned(),
            ),
            name: out.name().unwrap_or_default().to_owned(),
            versions: stages_map(out.version_ids_to_stages()),
            tags: tags_map(out.tags()),
            rotation_enabled: out.rotation_enabled().unwrap_or(false),
            deleted: out.deleted_date().is_some(),
            last_changed: out.last_changed_date().and_then(to_chrono),
        })
    }

    async fn describe_many(&self, refs: &[SecretRef], found: Found<'_>) {
        let mut per_account: HashMap<&Account, Vec<usize>> = HashMap::new();
        for (i, r) in refs.iter().enumerate() {
            per_account.entry(&r.account).or_default().push(i);
        }
        let (lists, small): (Vec<_>, Vec<_>) = per_account
            .into_iter()
            .partition(|(_, wanted)| wanted.len() >= LIST_THRESHOLD);
        let mut small: Vec<usize> = small.into_iter().flat_map(|(_, w)| w).collect();
        small.sort_unstable();
        // The listings (one per large account) and the small accounts' DescribeSecret calls
        // run side by side: a secret alone in its account must not wait for another
        // account's thousand pages. The answers meet in `found`, locked only while it runs.
        let found = std::sync::Mutex::new(found);
        let report = |i: usize, r: Result<SecretMeta, AwsError>| {
            let mut f = found
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            (*f)(i, r)
        };
        let listings = futures::future::join_all(lists.into_iter().map(|(account, wanted)| {
            let report = &report;
            async move {
                self.list_wanted(account, refs, wanted, &mut |i, r| report(i, r))
                    .await
            }
        }));
        let (left, ()) = futures::join!(listings, self.describe_each(refs, small, &report));
        // What no listing answered: one DescribeSecret each, in input order.
        let mut rest: Vec<usize> = left.into_iter().flatten().collect();
        rest.sort_unstable();
        self.describe_each(refs, rest, &report).await;
    }

    async fn versions(&self, s: &SecretRef) -> Result<Vec<VersionInfo>, AwsError> {
        let client = self.client(&s.account).await;
        let mut pages = client
            .list_secret_version_ids()
            .secret_id(s.id.as_str())
            .max_results(100)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| map_sdk_error("ListSecretVersionIds", e))?;
            for v in page.versions() {
                let Some(id) = v.version_id() else { continue };
                out.push(VersionInfo {
                    id: VersionId::new(id.to_owned()),
                    stages: v.version_stages().to_vec(),
                    created: v.created_date().and_then(to_chrono),
                });
            }
        }
        Ok(out)
    }

    async fn get_value(
        &self,
        s: &SecretRef,
        select: Select<'_>,
    ) -> Result<(VersionId, SecretString), AwsError> {
        let client = self.client(&s.account).await;
        // Always name the stage: without it AWS returns AWSCURRENT, and some servers
        // return a stale version after a stage move.
        let req = match select {
            Select::Stage(stage) => client
                .get_secret_value()
                .secret_id(s.id.as_str())
                .version_stage(stage),
            Select::Version(v, stage) => client
                .get_secret_value()
                .secret_id(s.id.as_str())
                .version_id(v.as_str())
                .version_stage(stage),
        };
        let out = req
            .send()
            .await
            .map_err(|e| map_sdk_error("GetSecretValue", e))?;
        let version = VersionId::new(
            out.version_id()
                .ok_or_else(|| malformed("GetSecretValue", "VersionId"))?
                .to_owned(),
        );
        match out.secret_string() {
            Some(v) => Ok((version, SecretString::from(v.to_owned()))),
            None => Err(AwsError::new(
                ErrorClass::Invalid,
                "GetSecretValue",
                "UnsupportedSecret",
                "the secret holds binary data (SecretBinary); only SecretString secrets can be rotated",
            )),
        }
    }

    async fn put_pending(
        &self,
        s: &SecretRef,
        token: &VersionId,
        value: &SecretString,
    ) -> Result<VersionId, AwsError> {
        let client = self.client(&s.account).await;
        let out = client
            .put_secret_value()
            .secret_id(s.id.as_str())
            .client_request_token(token.as_str())
            .secret_string(value.expose_secret())
            .version_stages(crate::rotation::store::AWSPENDING)
            .send()
            .await
            .map_err(|e| map_sdk_error("PutSecretValue", e))?;
        Ok(VersionId::new(
            out.version_id().unwrap_or(token.as_str()).to_owned(),
        ))
    }

    async fn update_stage(
        &self,
        s: &SecretRef,
        stage: &str,
        to: Option<&VersionId>,
        from: Option<&VersionId>,
    ) -> Result<(), AwsError> {
        let client = self.client(&s.account).await;
        client
            .update_secret_version_stage()
            .secret_id(s.id.as_str())
            .version_stage(stage)
            .set_move_to_version_id(to.map(|v| v.as_str().to_owned()))
            .set_remove_from_version_id(from.map(|v| v.as_str().to_owned()))
            .send()
            .await
            .map_err(|e| map_sdk_error("UpdateSecretVersionStage", e))?;
        Ok(())
    }

    async fn tag(&self, s: &SecretRef, tags: &[(&str, String)]) -> Result<(), AwsError> {
        let client = self.client(&s.account).await;
        let mut req = client.tag_resource().secret_id(s.id.as_str());
        for (k, v) in tags {
            req = req.tags(Tag::builder().key(*k).value(v).build());
        }
        req.send()
            .await
            .map_err(|e| map_sdk_error("TagResource", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use serde_json::{json, Value};
    use std::sync::{Arc, Mutex};

    fn arn(name: &str) -> String {
        format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}-AbCdEf")
    }

    fn meta(name: &str, stages_key: &str) -> Value {
        json!({"ARN": arn(name), "Name": name, "Tags": [], stages_key: {"v1": ["AWSCURRENT"]}})
    }

    fn reply(status: StatusCode, body: Value) -> axum::response::Response {
        let mut headers = vec![("content-type", "application/x-amz-json-1.1".to_owned())];
        if let Some(code) = body["__type"].as_str() {
            headers.push(("x-amzn-errortype", code.to_owned()));
        }
        let mut r = (status, body.to_string()).into_response();
        for (k, v) in headers {
            r.headers_mut().insert(k, v.parse().unwrap());
        }
        r
    }

    /// Secrets Manager over local HTTP: the first ListSecrets page lists `a`, `b` and a
    /// secret nobody asked for; the second page fails (a non-retryable error); every
    /// DescribeSecret answers, but for `gone`. `log` records the calls.
    async fn server(log: Arc<Mutex<Vec<String>>>) -> String {
        server_with(log, std::time::Duration::ZERO).await
    }

    /// [`server`] whose first ListSecrets page takes `first_page`.
    async fn server_with(log: Arc<Mutex<Vec<String>>>, first_page: std::time::Duration) -> String {
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move |h: HeaderMap, body: Bytes| {
                let log = log.clone();
                async move {
                    let op = h
                        .get("x-amz-target")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .trim_start_matches("secretsmanager.")
                        .to_owned();
                    let req: Value = serde_json::from_slice(&body).unwrap_or_default();
                    let id = req["SecretId"].as_str().unwrap_or("").to_owned();
                    let entry = match op.as_str() {
                        "ListSecrets" if req["NextToken"].is_null() => "page 1".to_owned(),
                        "ListSecrets" => "page 2".to_owned(),
                        _ => format!("{op} {id}"),
                    };
                    log.lock().unwrap().push(entry.clone());
                    if entry == "page 1" {
                        tokio::time::sleep(first_page).await;
                    }
                    match (op.as_str(), entry.as_str()) {
                        (_, "page 1") => reply(
                            StatusCode::OK,
                            json!({"SecretList": [meta("a", "SecretVersionsToStages"), meta("b", "SecretVersionsToStages"), meta("other", "SecretVersionsToStages")], "NextToken": "2"}),
                        ),
                        (_, "page 2") => reply(
                            StatusCode::BAD_REQUEST,
                            json!({"__type": "InvalidRequestException", "message": "no"}),
                        ),
                        ("DescribeSecret", _) if id != "gone" => {
                            reply(StatusCode::OK, meta(&id, "VersionIdsToStages"))
                        }
                        _ => reply(
                            StatusCode::BAD_REQUEST,
                            json!({"__type": "ResourceNotFoundException", "message": "no such secret"}),
                        ),
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    /// The first page's secrets are answered before the second page is asked for (by
    /// name or by ARN, a ref listed twice in the config both times, a secret nobody
    /// configured not at all); after the failed page the rest are described one by one;
    /// every ref is answered exactly once.
    #[tokio::test]
    async fn answers_come_per_page_and_a_failed_page_falls_back_to_describe() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let url = server(log.clone()).await;
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&url)
            .credentials_provider(aws_credential_types::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .load()
            .await;
        let store = AwsSecrets::new(AwsContext::from_sdk(sdk));
        let r = |id: &str| SecretRef {
            id: crate::ids::SecretId::new(id.to_owned()),
            account: Account::default(),
            store: Default::default(),
        };
        let mut refs = vec![r("a"), r(&arn("b")), r("a"), r("gone")];
        refs.extend((0..7).map(|i| r(&format!("c{i}"))));
        assert!(refs.len() >= LIST_THRESHOLD);
        let mut answers: Vec<Vec<Result<SecretMeta, AwsError>>> = vec![Vec::new(); refs.len()];
        store
            .describe_many(&refs, &mut |i, m| {
                log.lock().unwrap().push(format!("found {i}"));
                answers[i].push(m);
            })
            .await;
        assert!(answers.iter().all(|a| a.len() == 1), "{answers:?}");
        let name = |i: usize| answers[i][0].as_ref().map(|m| m.name.clone());
        assert_eq!(name(0).unwrap(), "a");
        assert_eq!(name(1).unwrap(), "b");
        assert_eq!(name(2).unwrap(), "a");
        let gone = answers[3][0].as_ref().unwrap_err();
        assert_eq!(gone.code(), Some("ResourceNotFoundException"));
        assert_eq!(name(4).unwrap(), "c0");

        let log = log.lock().unwrap().clone();
        let at = |e: &str| log.iter().position(|l| l == e).unwrap_or(usize::MAX);
        assert!(at("page 1") < at("found 0"), "{log:?}");
        for i in 0..3 {
            assert!(at(&format!("found {i}")) < at("page 2"), "{log:?}");
        }
        assert!(at("page 2") < at("DescribeSecret c0"), "{log:?}");
        // Listed secrets are not described again; `a` and `b` came from the page.
        assert_eq!(
            log.iter()
                .filter(|l| l.starts_with("DescribeSecret"))
                .count(),
            8,
            "{log:?}"
        );
    }

    /// A secret alone in its account (described, not listed) is answered while another
    /// account's listing is still on its first page.
    #[tokio::test]
    async fn a_small_account_does_not_wait_for_a_large_accounts_listing() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let url = server_with(log.clone(), std::time::Duration::from_millis(800)).await;
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&url)
            .credentials_provider(aws_credential_types::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .load()
            .await;
        let store = AwsSecrets::new(AwsContext::from_sdk(sdk));
        let r = |id: &str, region: Option<&str>| SecretRef {
            id: crate::ids::SecretId::new(id.to_owned()),
            account: Account::new(region.map(crate::ids::Region::from), None),
            store: Default::default(),
        };
        let mut refs: Vec<SecretRef> = (0..LIST_THRESHOLD)
            .map(|i| r(&format!("c{i}"), None))
            .collect();
        refs.push(r("x0", Some("eu-west-1")));
        let mut answers = vec![0; refs.len()];
        store
            .describe_many(&refs, &mut |i, m| {
                assert!(m.is_ok(), "{i}: {m:?}");
                log.lock().unwrap().push(format!("found {i}"));
                answers[i] += 1;
            })
            .await;
        assert!(answers.iter().all(|a| *a == 1), "{answers:?}");
        let log = log.lock().unwrap().clone();
        let at = |e: &str| log.iter().position(|l| l == e).unwrap_or(usize::MAX);
        let small = format!("found {LIST_THRESHOLD}");
        assert!(at(&small) < at("page 2"), "{log:?}");
    }
}
