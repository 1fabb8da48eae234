//! The only modules that talk to AWS. Everything above sees traits and [`AwsError`].

pub mod ecs;
mod errors;
pub mod events;
pub mod lease;
pub mod secrets;

pub use errors::map_sdk_error;
use errors::one_line_chain;

use crate::config::AwsConfig;
use crate::error::AwsError;
use crate::ids::Account;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// Loads the base SDK configuration once (default credential chain: env, profile, SSO,
/// web identity, IMDS; `[aws]` region and profile) and derives one configuration per
/// (region, role), cached.
#[derive(Clone)]
pub struct AwsContext {
    base: SdkConfig,
    per_account: Arc<Mutex<HashMap<Account, SdkConfig>>>,
}

impl AwsContext {
    pub async fn load(aws: &AwsConfig) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            // Throttling is expected at scale: retry more, with jittered backoff.
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(6)
                    .with_initial_backoff(Duration::from_millis(200))
                    .with_max_backoff(Duration::from_secs(20)),
            )
            // A hung connection must not stall a rotation forever.
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(30))
                    .operation_timeout(Duration::from_secs(120))
                    .build(),
            );
        if let Some(p) = &aws.profile {
            loader = loader.profile_name(p);
        }
        if let Some(r) = &aws.region {
            loader = loader.region(Region::new(r.as_str().to_owned()));
        }
        Self {
            base: loader.load().await,
            per_account: Arc::default(),
        }
    }

    /// A context on a given SDK configuration (tests: a local endpoint, fixed credentials).
    #[cfg(test)]
    pub(crate) fn from_sdk(base: SdkConfig) -> Self {
        Self {
            base,
            per_account: Arc::default(),
        }
    }

    /// Resolves the base credentials once, before any call: a machine without any fails
    /// with one line naming what was tried, instead of one SDK error per call (the last of
    /// which, "failed to load IMDS session token", points the wrong way).
    pub async fn check_credentials(&self, aws: &AwsConfig) -> Result<(), AwsError> {
        use aws_credential_types::provider::error::CredentialsError;
        use aws_credential_types::provider::ProvideCredentials;
        let tried = match &aws.profile {
            Some(p) => format!("env, profile \"{p}\", SSO, IMDS"),
            None => "env, profile, SSO, IMDS".to_owned(),
        };
        let Some(provider) = self.base.credentials_provider() else {
            return Err(no_credentials(format!(
                "no AWS credentials found (tried: {tried})"
            )));
        };
        match provider.provide_credentials().await {
            Ok(_) => Ok(()),
            Err(CredentialsError::CredentialsNotLoaded(_)) => Err(no_credentials(format!(
                "no AWS credentials found (tried: {tried})"
            ))),
            Err(e) => Err(no_credentials(format!(
                "AWS credentials could not be loaded (tried: {tried}): {}",
                one_line_chain(&e)
            ))),
        }
    }

    /// The SDK configuration for an account: its region, and its role assumed through STS.
    pub async fn sdk_config(&self, account: &Account) -> SdkConfig {
        let mut cache = self.per_account.lock().await;
        if let Some(c) = cache.get(account) {
            return c.clone();
        }
        let mut b = self.base.to_builder();
        if let Some(r) = account.region() {
            b.set_region(Some(Region::new(r.as_str().to_owned())));
        }
        if let Some(role) = account.role_arn() {
            let mut provider = aws_config::sts::AssumeRoleProvider::builder(role.as_str())
                .session_name("secret-rotator")
                .configure(&self.base);
            if let Some(r) = account.region() {
                provider = provider.region(Region::new(r.as_str().to_owned()));
            }
            b.set_credentials_provider(Some(
                aws_credential_types::provider::SharedCredentialsProvider::new(
                    provider.build().await,
                ),
            ));
        }
        let c = b.build();
        cache.insert(account.clone(), c.clone());
        c
    }
}

fn no_credentials(message: String) -> AwsError {
    AwsError {
        class: crate::error::ErrorClass::Setup,
        info: crate::error::AwsErrorInfo {
            operation: "LoadCredentials",
            code: Some("NoCredentials".into()),
            message: Some(message),
            request_id: None,
        },
    }
}

/// One SDK client per account, built on first use and shared after.
pub(crate) struct Clients<C> {
    map: Arc<Mutex<HashMap<Account, C>>>,
}

impl<C> Clone for Clients<C> {
    fn clone(&self) -> Self {
        Self {
            map: self.map.clone(),
        }
    }
}

impl<C> Default for Clients<C> {
    fn default() -> Self {
        Self {
            map: Arc::default(),
        }
    }
}

impl<C: Clone> Clients<C> {
    /// The account's client; `sdk` is awaited and `build` called only the first time.
    pub(crate) async fn get(
        &self,
        account: &Account,
        sdk: impl std::future::Future<Output = SdkConfig>,
        build: impl FnOnce(&SdkConfig) -> C,
    ) -> C {
        let mut map = self.map.lock().await;
        if let Some(c) = map.get(account) {
            return c.clone();
        }
        let client = build(&sdk.await);
        map.insert(account.clone(), client.clone());
        client
    }
}

/// AWS timestamps as chrono UTC times.
pub(crate) fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// Counts every attempt (retries included) in `aws_api_calls_total`.
#[derive(Debug)]
pub(crate) struct CallCounter;

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "secret-rotator call counter"
    }

    fn read_after_attempt(
        &self,
        ctx: &FinalizerInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = cfg
            .load::<Metadata>()
            .map(|m| (m.service().to_owned(), m.name().to_owned()))
            .unwrap_or_else(|| ("unknown".into(), "unknown".into()));
        let outcome = match ctx.response() {
            None => "error",
            Some(r) if r.status().is_success() => "ok",
            Some(r) => {
                let throttled = r.status().as_u16() == 429
                    || r.body().bytes().is_some_and(|b| {
                        let s = String::from_utf8_lossy(b);
                        s.contains("Throttl")
                            || s.contains("TooManyRequests")
                            || s.contains("RequestLimitExceeded")
                    });
                if throttled {
                    "throttled"
                } else {
                    "error"
                }
            }
        };
        let service = match service.as_str() {
            "secretsmanager" | "Secrets Manager" => "secretsmanager",
            "ecs" | "ECS" => "ecs",
            "sts" | "STS" => "sts",
            "iam" | "IAM" => "iam",
            "dynamodb" | "DynamoDB" => "dynamodb",
            "sqs" | "SQS" => "sqs",
            _ => "other",
        };
        crate::metrics::get()
            .aws_calls
            .with_label_values(&[service, &operation, outcome])
            .inc();
        Ok(())
    }
}
