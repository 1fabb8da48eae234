//! IAM (access keys) and STS (checking a new key) behind [`IamApi`].

use super::{AccessKeyInfo, IamApi, NewAccessKey};
use crate::aws::{map_sdk_error, to_chrono, AwsContext, CallCounter, Clients};
use crate::config::AwsConfig;
use crate::error::{AwsError, ErrorClass};
use crate::ids::Account;
use aws_sdk_iam::types::StatusType;
use aws_sdk_iam::Client;
use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use tokio::sync::OnceCell;

/// The real IAM/STS client, one per account (region and role), like the other clients.
#[derive(Clone)]
pub struct AwsIam {
    ctx: Arc<OnceCell<AwsContext>>,
    /// Used only when the context is loaded lazily.
    base: AwsConfig,
    clients: Clients<Client>,
}

impl AwsIam {
    /// Shares the process's AWS context (its `[aws]` profile and region, roles, caches).
    pub fn new(ctx: AwsContext) -> Self {
        Self {
            ctx: Arc::new(OnceCell::new_with(Some(ctx))),
            base: AwsConfig::default(),
            clients: Clients::default(),
        }
    }

    /// Loads the AWS configuration on first use from the default chain (environment,
    /// `AWS_PROFILE`, SSO, IMDS), with the account's region and role. Prefer [`Self::new`]
    /// with the process's context, which also honours `[aws] profile`/`region`.
    pub fn from_environment() -> Self {
        Self::lazy(AwsConfig::default())
    }

    /// Loads the given `[aws]` settings on first use.
    pub fn lazy(aws: AwsConfig) -> Self {
        Self {
            ctx: Arc::new(OnceCell::new()),
            base: aws,
            clients: Clients::default(),
        }
    }

    async fn sdk(&self, account: &Account) -> aws_config::SdkConfig {
        let ctx = self.ctx.get_or_init(|| AwsContext::load(&self.base)).await;
        ctx.sdk_config(account).await
    }

    async fn client(&self, account: &Account) -> Client {
        self.clients
            .get(account, self.sdk(account), |sdk| {
                Client::from_conf(
                    aws_sdk_iam::config::Builder::from(sdk)
                        .interceptor(CallCounter)
                        .build(),
                )
            })
            .await
    }
}

impl IamApi for AwsIam {
    fn list_keys<'a>(
        &'a self,
        account: &'a Account,
        user: &'a str,
    ) -> BoxFuture<'a, Result<Vec<AccessKeyInfo>, AwsError>> {
        Box::pin(async move {
            let client = self.client(account).await;
            let mut pages = client
                .list_access_keys()
                .user_name(user)
                .into_paginator()
                .send();
            let mut out = Vec::new();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| map_sdk_error("ListAccessKeys", e))?;
                for k in page.access_key_metadata() {
                    let Some(id) = k.access_key_id() else {
                        continue;
                    };
                    out.push(AccessKeyInfo {
                        id: id.to_owned(),
                        active: k.status() == Some(&StatusType::Active),
                        created: k.create_date().and_then(to_chrono),
                    });
                }
            }
            Ok(out)
        })
    }

    fn create_key<'a>(
        &'a self,
        account: &'a Account,
        user: &'a str,
    ) -> BoxFuture<'a, Result<NewAccessKey, AwsError>> {
        Box::pin(async move {
            let client = self.client(account).await;
            let out = client
                .create_access_key()
                .user_name(user)
                .send()
                .await
                .map_err(|e| map_sdk_error("CreateAccessKey", e))?;
            let key = out.access_key().ok_or_else(|| {
                AwsError::new(
                    ErrorClass::Other,
                    "CreateAccessKey",
                    "MalformedResponse",
                    "the response has no AccessKey",
                )
            })?;
            Ok(NewAccessKey {
                id: key.access_key_id().to_owned(),
                secret: SecretString::from(key.secret_access_key().to_owned()),
            })
        })
    }

    fn set_active<'a>(
        &'a self,
        account: &'a Account,
        user: &'a str,
        key_id: &'a str,
        active: bool,
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(async move {
            let client = self.client(account).await;
            client
                .update_access_key()
                .user_name(user)
                .access_key_id(key_id)
                .status(if active {
                    StatusType::Active
                } else {
                    StatusType::Inactive
                })
                .send()
                .await
                .map_err(|e| map_sdk_error("UpdateAccessKey", e))?;
            Ok(())
        })
    }

    fn delete_key<'a>(
        &'a self,
        account: &'a Account,
        user: &'a str,
        key_id: &'a str,
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(async move {
            let client = self.client(account).await;
            client
                .delete_access_key()
                .user_name(user)
                .access_key_id(key_id)
                .send()
                .await
                .map_err(|e| map_sdk_error("DeleteAccessKey", e))?;
            Ok(())
        })
    }

    fn caller_arn<'a>(
        &'a self,
        account: &'a Account,
        key_id: &'a str,
        secret: &'a SecretString,
    ) -> BoxFuture<'a, Result<String, AwsError>> {
        Box::pin(async move {
            let sdk = self.sdk(account).await;
            // Signed with the new key only (the endpoint, e.g. AWS_ENDPOINT_URL_STS, and
            // region come from the account's configuration).
            let creds = aws_credential_types::Credentials::new(
                key_id,
                secret.expose_secret(),
                None,
                None,
                "secret-rotator-new-key",
            );
            let conf = aws_sdk_sts::config::Builder::from(&sdk)
                .credentials_provider(creds)
                .interceptor(CallCounter)
                .build();
            let out = aws_sdk_sts::Client::from_conf(conf)
                .get_caller_identity()
                .send()
                .await
                .map_err(|e| map_sdk_error("GetCallerIdentity", e))?;
            Ok(out.arn().unwrap_or_default().to_owned())
        })
    }
}
