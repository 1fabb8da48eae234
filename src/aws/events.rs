//! ECS deployment state change events from an SQS queue (an EventBridge rule's target)
//! behind [`DeployEvents`]; deploy/eventbridge/ creates the rule, queue and policy.

use super::{map_sdk_error, AwsContext, CallCounter, Clients};
use crate::error::{AwsError, AwsErrorInfo, ErrorClass};
use crate::ids::Account;
use crate::rotation::events::{parse_event, DeployEvents, Received};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, QueueAttributeName};
use aws_sdk_sqs::Client;
use std::time::Duration;

/// SQS takes at most 10 messages per ReceiveMessage and entries per DeleteMessageBatch.
pub const BATCH: usize = 10;
/// The longest long poll SQS allows.
pub const MAX_WAIT: Duration = Duration::from_secs(20);

/// What `check --remote` learns about the queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueInfo {
    pub arn: Option<String>,
    /// Messages waiting (approximate, as SQS reports it).
    pub waiting: Option<u64>,
}

#[derive(Clone)]
pub struct SqsEvents {
    ctx: AwsContext,
    account: Account,
    queue_url: String,
    clients: Clients<Client>,
}

impl SqsEvents {
    /// `account` gives the region and role that reach the queue.
    pub fn new(ctx: AwsContext, account: Account, queue_url: impl Into<String>) -> Self {
        Self {
            ctx,
            account,
            queue_url: queue_url.into(),
            clients: Clients::default(),
        }
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    async fn client(&self) -> Client {
        self.clients
            .get(&self.account, self.ctx.sdk_config(&self.account), |sdk| {
                Client::from_conf(
                    aws_sdk_sqs::config::Builder::from(sdk)
                        .interceptor(CallCounter)
                        .build(),
                )
            })
            .await
    }

    /// `check --remote`: GetQueueAttributes, proving the queue exists and is readable
    /// with our credentials.
    pub async fn check(&self) -> Result<QueueInfo, AwsError> {
        let out = self
            .client()
            .await
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(|e| self.annotate(map_sdk_error("GetQueueAttributes", e)))?;
        let attrs = out.attributes();
        let get = |name: QueueAttributeName| attrs.and_then(|a| a.get(&name)).cloned();
        Ok(QueueInfo {
            arn: get(QueueAttributeName::QueueArn),
            waiting: get(QueueAttributeName::ApproximateNumberOfMessages)
                .and_then(|n| n.parse().ok()),
        })
    }

    /// Names the queue in a mapped error, and classifies SQS's own codes.
    fn annotate(&self, mut err: AwsError) -> AwsError {
        if let Some(class) = err.code().and_then(sqs_class) {
            err.class = class;
        }
        err.info.message = Some(match err.info.message.take().filter(|m| !m.is_empty()) {
            Some(m) => format!("queue {}: {m}", self.queue_url),
            None => format!("queue {}", self.queue_url),
        });
        err
    }
}

/// SQS error codes the shared mapping does not know (JSON and legacy query spellings).
fn sqs_class(code: &str) -> Option<ErrorClass> {
    match code {
        "QueueDoesNotExist" | "AWS.SimpleQueueService.NonExistentQueue" => {
            Some(ErrorClass::NotFound)
        }
        "RequestThrottled" | "KmsThrottled" | "OverLimit" => Some(ErrorClass::Throttled),
        "KmsAccessDenied" | "KmsDisabled" | "KmsInvalidKeyUsage" | "KmsInvalidState"
        | "KmsNotFound" | "KmsOptInRequired" => Some(ErrorClass::AccessDenied),
        "ReceiptHandleIsInvalid" | "InvalidIdFormat" | "QueueDeletedRecently" => {
            Some(ErrorClass::Invalid)
        }
        _ => None,
    }
}

/// The long poll SQS allows for `wait` (whole seconds, at most 20).
fn wait_seconds(wait: Duration) -> i32 {
    // At most 20, so the cast cannot truncate.
    wait.min(MAX_WAIT).as_secs() as i32
}

impl DeployEvents for SqsEvents {
    async fn receive(&self, wait: Duration) -> Result<Received, AwsError> {
        let out = self
            .client()
            .await
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(BATCH as i32)
            .wait_time_seconds(wait_seconds(wait))
            .send()
            .await
            .map_err(|e| self.annotate(map_sdk_error("ReceiveMessage", e)))?;
        let mut received = Received::default();
        for m in out.messages() {
            // A message without a handle cannot be deleted; SQS always sends one.
            let Some(handle) = m.receipt_handle() else {
                continue;
            };
            received.handles.push(handle.to_owned());
            if let Some(event) = m.body().and_then(parse_event) {
                received.events.push(event);
            }
        }
        Ok(received)
    }

    async fn delete(&self, handles: &[String]) -> Result<(), AwsError> {
        if handles.is_empty() {
            return Ok(());
        }
        let client = self.client().await;
        let mut failed: Vec<(String, bool, String)> = Vec::new();
        for chunk in handles.chunks(BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(h)
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    AwsError::new(
                        ErrorClass::Invalid,
                        "DeleteMessageBatch",
                        "InvalidRequest",
                        format!("queue {}: {e}", self.queue_url),
                    )
                })?;
            let out = client
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| self.annotate(map_sdk_error("DeleteMessageBatch", e)))?;
            // Keep going: every other batch still deserves its delete.
            failed.extend(out.failed().iter().map(|f| {
                let message = f.message().unwrap_or_default();
                (f.code().to_owned(), f.sender_fault(), message.to_owned())
            }));
        }
        match failed.first() {
            None => Ok(()),
            Some((code, sender_fault, message)) => Err(AwsError {
                // An expired or reused handle only means the message comes back once more.
                class: sqs_class(code).unwrap_or(if *sender_fault {
                    ErrorClass::Invalid
                } else {
                    ErrorClass::Transient
                }),
                info: AwsErrorInfo {
                    operation: "DeleteMessageBatch",
                    code: Some(code.clone()),
                    message: Some(format!(
                        "queue {}: {} of {} messages not deleted (first: {message})",
                        self.queue_url,
                        failed.len(),
                        handles.len()
                    )),
                    request_id: None,
                },
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_whole_seconds_up_to_twenty() {
        assert_eq!(wait_seconds(Duration::ZERO), 0);
        assert_eq!(wait_seconds(Duration::from_millis(1500)), 1);
        assert_eq!(wait_seconds(Duration::from_secs(20)), 20);
        assert_eq!(wait_seconds(Duration::from_secs(3600)), 20);
        assert_eq!(wait_seconds(Duration::MAX), 20);
    }

    #[test]
    fn sqs_codes_are_classified() {
        assert_eq!(sqs_class("QueueDoesNotExist"), Some(ErrorClass::NotFound));
        assert_eq!(
            sqs_class("AWS.SimpleQueueService.NonExistentQueue"),
            Some(ErrorClass::NotFound)
        );
        assert_eq!(sqs_class("RequestThrottled"), Some(ErrorClass::Throttled));
        assert_eq!(sqs_class("KmsAccessDenied"), Some(ErrorClass::AccessDenied));
        assert_eq!(
            sqs_class("ReceiptHandleIsInvalid"),
            Some(ErrorClass::Invalid)
        );
        assert_eq!(
            sqs_class("AccessDeniedException"),
            None,
            "the shared mapping's"
        );
    }
}
