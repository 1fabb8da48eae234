//! The lease table on DynamoDB behind [`LeaseStore`] (docs/ha.md has the schema).
//!
//! One item per secret, `pk` (string) its key. Every write is one conditional UpdateItem,
//! so a write either happens whole under its condition or not at all. Items are never
//! deleted by us (release marks them expired), so `lease_version` only goes up; the
//! `purge_at` attribute (epoch seconds, a week after the last expiry) lets DynamoDB's
//! TTL clean up secrets that left the configuration.

use super::{map_sdk_error, AwsContext, CallCounter, Clients};
use crate::error::AwsError;
use crate::ids::Account;
use crate::rotation::lease::{AcquireOutcome, AcquireRequest, LeaseError, LeaseRecord, LeaseStore};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeyType, ReturnValue, ReturnValuesOnConditionCheckFailure, ScalarAttributeType,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use std::collections::HashMap;

pub const KEY: &str = "pk";
const OWNER: &str = "lease_owner";
const VERSION: &str = "lease_version";
const EXPIRES: &str = "lease_expires_ms";
/// The table's TTL attribute.
pub const PURGE: &str = "purge_at";
const PURGE_AFTER_SECS: i64 = 7 * 86_400;

#[derive(Clone)]
pub struct DynamoLeases {
    ctx: AwsContext,
    account: Account,
    table: String,
    clients: Clients<Client>,
}

impl DynamoLeases {
    pub fn new(ctx: AwsContext, account: Account, table: impl Into<String>) -> Self {
        Self {
            ctx,
            account,
            table: table.into(),
            clients: Clients::default(),
        }
    }

    async fn client(&self) -> Client {
        self.clients
            .get(&self.account, self.ctx.sdk_config(&self.account), |sdk| {
                Client::from_conf(
                    aws_sdk_dynamodb::config::Builder::from(sdk)
                        .interceptor(CallCounter)
                        .build(),
                )
            })
            .await
    }

    /// `check --remote`: the table exists, is usable and has the expected key. Returns the
    /// problems found (empty when fine).
    pub async fn check_table(&self) -> Result<Vec<String>, AwsError> {
        let out = self
            .client()
            .await
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| map_sdk_error("DescribeTable", e))?;
        let mut problems = Vec::new();
        let Some(t) = out.table() else {
            return Ok(vec![format!(
                "lock table {}: DescribeTable returned no table",
                self.table
            )]);
        };
        let hash: Vec<&str> = t
            .key_schema()
            .iter()
            .filter(|k| k.key_type() == &KeyType::Hash)
            .map(|k| k.attribute_name())
            .collect();
        let ranged = t
            .key_schema()
            .iter()
            .any(|k| k.key_type() == &KeyType::Range);
        let string_pk = t
            .attribute_definitions()
            .iter()
            .any(|a| a.attribute_name() == KEY && a.attribute_type() == &ScalarAttributeType::S);
        if hash != [KEY] || ranged || !string_pk {
            problems.push(format!(
                "lock table {}: the key must be a string hash key named \"{KEY}\" and nothing else (see docs/ha.md)",
                self.table
            ));
        }
        if let Some(s) = t.table_status() {
            if !matches!(s.as_str(), "ACTIVE" | "UPDATING") {
                problems.push(format!("lock table {} is {}", self.table, s.as_str()));
            }
        }
        Ok(problems)
    }

    fn names<'a>(
        b: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
        names: &[(&'a str, &'a str)],
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        names
            .iter()
            .fold(b, |b, (k, v)| b.expression_attribute_names(*k, *v))
    }

    /// Renew and release: UpdateItem `set_expr`, only if owner and version still match.
    async fn update_if_ours(
        &self,
        lease: &LeaseRecord,
        expires_ms: i64,
        purge_from_ms: i64,
        what: &str,
    ) -> Result<(), LeaseError> {
        let b = self
            .client()
            .await
            .update_item()
            .table_name(&self.table)
            .key(KEY, AttributeValue::S(lease.key.clone()))
            .update_expression("SET #e = :exp, #p = :purge")
            .condition_expression("#o = :me AND #v = :ver")
            .expression_attribute_values(":exp", n(expires_ms))
            .expression_attribute_values(":purge", n(purge_at(purge_from_ms)))
            .expression_attribute_values(":me", AttributeValue::S(lease.owner.clone()))
            .expression_attribute_values(":ver", n(lease.version))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let b = Self::names(
            b,
            &[
                ("#e", EXPIRES),
                ("#p", PURGE),
                ("#o", OWNER),
                ("#v", VERSION),
            ],
        );
        match b.send().await {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(se)) if se.err().is_conditional_check_failed_exception() => {
                let now = old_item(se.err()).and_then(|i| parse(&lease.key, i).ok());
                Err(LeaseError::Lost {
                    key: lease.key.clone(),
                    why: match now {
                        Some(r) => format!(
                            "{what} refused: now held by {} (version {})",
                            r.owner, r.version
                        ),
                        None => format!("{what} refused: the record is no longer ours"),
                    },
                })
            }
            Err(e) => Err(LeaseError::Store(map_sdk_error("UpdateItem", e))),
        }
    }
}

/// The item as it was when a condition failed (ReturnValuesOnConditionCheckFailure).
fn old_item(e: &UpdateItemError) -> Option<&HashMap<String, AttributeValue>> {
    match e {
        UpdateItemError::ConditionalCheckFailedException(c) => c.item(),
        _ => None,
    }
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn purge_at(expires_ms: i64) -> i64 {
    expires_ms.div_euclid(1000) + PURGE_AFTER_SECS
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// A stored item as a lease record.
fn parse(key: &str, item: &HashMap<String, AttributeValue>) -> Result<LeaseRecord, LeaseError> {
    let bad = |why: &str| LeaseError::Malformed {
        key: key.to_owned(),
        why: why.to_owned(),
    };
    let owner = item
        .get(OWNER)
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| bad("no lease_owner string"))?;
    let version = item
        .get(VERSION)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| bad("no lease_version number"))?;
    let expires = item
        .get(EXPIRES)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .ok_or_else(|| bad("no lease_expires_ms number"))?;
    Ok(LeaseRecord {
        key: key.to_owned(),
        owner: owner.clone(),
        version,
        expires_at: expires,
    })
}

impl LeaseStore for DynamoLeases {
    fn acquire<'a>(
        &'a self,
        req: &'a AcquireRequest,
    ) -> BoxFuture<'a, Result<AcquireOutcome, LeaseError>> {
        Box::pin(async move {
            let expires = ms(req.expires_at);
            let b = self
                .client()
                .await
                .update_item()
                .table_name(&self.table)
                .key(KEY, AttributeValue::S(req.key.clone()))
                // UpdateItem creates the item when absent; the version is read-modify-write
                // inside one conditional request.
                .update_expression(
                    "SET #o = :me, #e = :exp, #p = :purge, #v = if_not_exists(#v, :zero) + :one",
                )
                .condition_expression("attribute_not_exists(#k) OR #e < :cutoff OR #o = :me")
                .expression_attribute_values(":me", AttributeValue::S(req.owner.clone()))
                .expression_attribute_values(":exp", n(expires))
                .expression_attribute_values(":purge", n(purge_at(expires)))
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":cutoff", n(ms(req.cutoff)))
                .return_values(ReturnValue::AllNew)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
            let b = Self::names(
                b,
                &[
                    ("#k", KEY),
                    ("#o", OWNER),
                    ("#e", EXPIRES),
                    ("#p", PURGE),
                    ("#v", VERSION),
                ],
            );
            match b.send().await {
                Ok(out) => {
                    let item = out.attributes().ok_or_else(|| LeaseError::Malformed {
                        key: req.key.clone(),
                        why: "UpdateItem returned no attributes".into(),
                    })?;
                    Ok(AcquireOutcome::Acquired(parse(&req.key, item)?))
                }
                Err(SdkError::ServiceError(se))
                    if se.err().is_conditional_check_failed_exception() =>
                {
                    let holder = old_item(se.err()).and_then(|i| parse(&req.key, i).ok());
                    Ok(AcquireOutcome::Held(holder))
                }
                Err(e) => Err(LeaseError::Store(map_sdk_error("UpdateItem", e))),
            }
        })
    }

    fn renew<'a>(
        &'a self,
        lease: &'a LeaseRecord,
        expires_at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<(), LeaseError>> {
        Box::pin(self.update_if_ours(lease, ms(expires_at), ms(expires_at), "renewal"))
    }

    fn release<'a>(&'a self, lease: &'a LeaseRecord) -> BoxFuture<'a, Result<(), LeaseError>> {
        // Expired, not deleted: the version must keep going up.
        Box::pin(self.update_if_ours(lease, 0, ms(lease.expires_at), "release"))
    }

    fn verify<'a>(&'a self, lease: &'a LeaseRecord) -> BoxFuture<'a, Result<(), LeaseError>> {
        Box::pin(async move {
            let out = self
                .client()
                .await
                .get_item()
                .table_name(&self.table)
                .key(KEY, AttributeValue::S(lease.key.clone()))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| LeaseError::Store(map_sdk_error("GetItem", e)))?;
            let lost = |why: String| LeaseError::Lost {
                key: lease.key.clone(),
                why,
            };
            let Some(item) = out.item() else {
                return Err(lost("the record is gone".into()));
            };
            let now = parse(&lease.key, item)?;
            if now.owner != lease.owner || now.version != lease.version {
                return Err(lost(format!(
                    "now held by {} (version {})",
                    now.owner, now.version
                )));
            }
            Ok(())
        })
    }
}
