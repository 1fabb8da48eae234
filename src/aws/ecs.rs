//! ECS behind the [`Deployer`] trait.

use super::{map_sdk_error, to_chrono, AwsContext, CallCounter, Clients};
use crate::error::{AwsError, ErrorClass};
use crate::ids::{Account, ClusterName, DeploymentId, ServiceName, ServiceRef};
use crate::rotation::deploy::{
    Deployer, DeploymentState, Described, Forced, ServiceState, DESCRIBE_BATCH,
};
use aws_sdk_ecs::Client;

/// Service events kept: all DescribeServices returns (its latest 100). The judge looks
/// for the event naming our deployment as failed, which a large service's task and
/// draining events can push far down the list within one poll interval.
const EVENTS_KEPT: usize = 100;

#[derive(Clone)]
pub struct AwsEcs {
    ctx: AwsContext,
    clients: Clients<Client>,
}

impl AwsEcs {
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
                    aws_sdk_ecs::config::Builder::from(sdk)
                        .interceptor(CallCounter)
                        .build(),
                )
            })
            .await
    }
}

/// A name from a name or an ARN (`.../cluster/name` or `.../service/cluster/name`).
fn short(name_or_arn: &str) -> &str {
    name_or_arn.rsplit('/').next().unwrap_or(name_or_arn)
}

fn service_state(s: &aws_sdk_ecs::types::Service) -> ServiceState {
    ServiceState {
        status: s.status().unwrap_or("ACTIVE").to_owned(),
        controller: s
            .deployment_controller()
            .map(|c| c.r#type().as_str().to_owned()),
        desired: s.desired_count(),
        running: s.running_count(),
        deployments: s
            .deployments()
            .iter()
            .map(|d| DeploymentState {
                id: DeploymentId::new(d.id().unwrap_or_default()),
                status: d.status().unwrap_or_default().to_owned(),
                rollout_state: d.rollout_state().map(|r| r.as_str().to_owned()),
                rollout_state_reason: d.rollout_state_reason().map(str::to_owned),
                task_definition: d.task_definition().map(str::to_owned),
                desired: d.desired_count(),
                running: d.running_count(),
                pending: d.pending_count(),
                failed_tasks: d.failed_tasks(),
                created: d.created_at().and_then(to_chrono),
            })
            .collect(),
        events: s
            .events()
            .iter()
            .take(EVENTS_KEPT)
            .filter_map(|e| e.message().map(str::to_owned))
            .collect(),
    }
}

impl Deployer for AwsEcs {
    async fn describe(
        &self,
        account: &Account,
        cluster: &ClusterName,
        services: &[ServiceName],
    ) -> Result<Vec<Described>, AwsError> {
        if services.len() > DESCRIBE_BATCH {
            return Err(AwsError::new(
                ErrorClass::Invalid,
                "DescribeServices",
                "TooManyServices",
                "at most 10 services per call",
            ));
        }
        let client = self.client(account).await;
        let out = client
            .describe_services()
            .cluster(cluster.as_str())
            .set_services(Some(
                services.iter().map(|s| s.as_str().to_owned()).collect(),
            ))
            .send()
            .await
            .map_err(|e| map_sdk_error("DescribeServices", e))?;
        let found: Vec<(&str, &aws_sdk_ecs::types::Service)> = out
            .services()
            .iter()
            .map(|s| (s.service_name().or(s.service_arn()).unwrap_or_default(), s))
            .collect();
        let failures: Vec<(&str, String)> = out
            .failures()
            .iter()
            .map(|f| {
                (
                    f.arn().unwrap_or_default(),
                    f.reason().unwrap_or("MISSING").to_owned(),
                )
            })
            .collect();
        Ok(services
            .iter()
            .map(|want| {
                let name = short(want.as_str());
                if let Some((_, s)) = found.iter().find(|(n, _)| short(n) == name) {
                    Described::Found(service_state(s))
                } else {
                    let reason = failures
                        .iter()
                        .find(|(arn, _)| short(arn) == name)
                        .map(|(_, r)| r.clone())
                        .unwrap_or_else(|| "MISSING".into());
                    Described::Missing(reason)
                }
            })
            .collect())
    }

    async fn force_deploy(&self, account: &Account, svc: &ServiceRef) -> Result<Forced, AwsError> {
        let client = self.client(account).await;
        let out = client
            .update_service()
            .cluster(svc.cluster.as_str())
            .service(svc.service.as_str())
            .force_new_deployment(true)
            .send()
            .await
            .map_err(|e| map_sdk_error("UpdateService", e))?;
        let primary = out.service().and_then(|s| {
            s.deployments()
                .iter()
                .find(|d| d.status() == Some("PRIMARY"))
        });
        match primary.and_then(|d| d.id().map(|id| (id, d))) {
            Some((id, d)) => Ok(Forced {
                id: DeploymentId::new(id),
                created: d.created_at().and_then(to_chrono),
            }),
            None => Err(AwsError::new(
                ErrorClass::Other,
                "UpdateService",
                "MalformedResponse",
                "the response has no PRIMARY deployment",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::{Service, ServiceEvent};

    #[test]
    fn a_failure_event_behind_many_newer_ones_is_kept() {
        let mut svc = Service::builder().service_name("api").desired_count(40);
        for i in 0..60 {
            let msg = if i == 45 {
                "(service api) (deployment ecs-svc/2) deployment failed: tasks failed to start."
                    .to_owned()
            } else {
                format!("(service api) has started 1 tasks: (task {i}).")
            };
            svc = svc.events(ServiceEvent::builder().message(msg).build());
        }
        let state = service_state(&svc.build());
        assert_eq!(state.events.len(), 60);
        assert!(state.events[45].contains("deployment failed"));
    }
}
