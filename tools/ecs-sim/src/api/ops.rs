//! The supported ECS operations, each taking its JSON input and returning
//! its JSON output.

use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::input;
use crate::error::EcsError;
use crate::model::{Controller, DeploymentConfig, ServiceSpec, SimSettings};
use crate::names;
use crate::render;
use crate::sim::Sim;

/// ECS rejects DescribeServices with more than this many services.
const MAX_DESCRIBE: usize = 10;
const MAX_LIST_RESULTS: i64 = 100;
const DEFAULT_LIST_RESULTS: i64 = 10;

/// An operation the simulator implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    CreateCluster,
    DescribeClusters,
    CreateService,
    UpdateService,
    DescribeServices,
    ListServices,
}

impl Operation {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "CreateCluster" => Self::CreateCluster,
            "DescribeClusters" => Self::DescribeClusters,
            "CreateService" => Self::CreateService,
            "UpdateService" => Self::UpdateService,
            "DescribeServices" => Self::DescribeServices,
            "ListServices" => Self::ListServices,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::CreateCluster => "CreateCluster",
            Self::DescribeClusters => "DescribeClusters",
            Self::CreateService => "CreateService",
            Self::UpdateService => "UpdateService",
            Self::DescribeServices => "DescribeServices",
            Self::ListServices => "ListServices",
        }
    }

    /// Runs the operation on an already advanced simulation.
    pub fn run(self, sim: &mut Sim, body: Value) -> Result<Value, EcsError> {
        match self {
            Self::CreateCluster => create_cluster(sim, parse(body)?),
            Self::DescribeClusters => describe_clusters(sim, parse(body)?),
            Self::CreateService => create_service(sim, parse(body)?),
            Self::UpdateService => update_service(sim, parse(body)?),
            Self::DescribeServices => describe_services(sim, parse(body)?),
            Self::ListServices => list_services(sim, parse(body)?),
        }
    }
}

fn parse<T: DeserializeOwned>(body: Value) -> Result<T, EcsError> {
    serde_json::from_value(body).map_err(|e| EcsError::serialization(e.to_string()))
}

fn create_cluster(sim: &mut Sim, input: input::CreateCluster) -> Result<Value, EcsError> {
    let name = input
        .cluster_name
        .unwrap_or_else(|| names::DEFAULT_CLUSTER.to_owned());
    sim.create_cluster(&name)?;
    let cluster = sim.cluster(&name)?;
    Ok(json!({ "cluster": render::cluster(&name, cluster) }))
}

fn describe_clusters(sim: &mut Sim, input: input::DescribeClusters) -> Result<Value, EcsError> {
    let wanted = input
        .clusters
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| vec![names::DEFAULT_CLUSTER.to_owned()]);
    if wanted.len() > 100 {
        return Err(EcsError::invalid_parameter(
            "Clusters cannot have more than 100 elements",
        ));
    }
    let mut clusters = Vec::new();
    let mut failures = Vec::new();
    for arg in wanted {
        let name = names::cluster_name(Some(&arg));
        match sim.clusters.get(&name) {
            Some(c) => clusters.push(render::cluster(&name, c)),
            None => failures.push(render::missing(names::cluster_arn(&name))),
        }
    }
    Ok(json!({ "clusters": clusters, "failures": failures }))
}

fn create_service(sim: &mut Sim, input: input::CreateService) -> Result<Value, EcsError> {
    let name = input
        .service_name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| EcsError::invalid_parameter("serviceName is required."))?;
    let cluster = names::cluster_name(input.cluster.as_deref());
    // The simulator has no task definition registry, so any well-formed one
    // is accepted; leaving it out picks a family named after the service.
    let task_definition =
        names::task_definition_arn(input.task_definition.as_deref().unwrap_or(&name))?;
    let controller = match input.deployment_controller.and_then(|c| c.kind) {
        Some(kind) => kind.parse()?,
        None => Controller::Ecs,
    };
    let mut config = DeploymentConfig::default();
    if let Some(dc) = &input.deployment_configuration {
        dc.apply(&mut config)?;
    }
    let tags = input::tags(input.tags)?;
    let overrides = input::tag_overrides(&tags)?;
    let defaults = sim.defaults;
    let settings = SimSettings {
        behavior: overrides.behavior.unwrap_or(defaults.behavior),
        start_secs: overrides.start_secs.unwrap_or(defaults.start_secs),
        drain_secs: overrides.drain_secs.unwrap_or(defaults.drain_secs),
        gradual: overrides.gradual.unwrap_or(defaults.gradual),
        deregistration_secs: overrides
            .deregistration_secs
            .unwrap_or(defaults.deregistration_secs),
    };
    let spec = ServiceSpec {
        name,
        desired_count: input::desired_count(input.desired_count.unwrap_or(1))?,
        task_definition,
        controller,
        config,
        settings,
        tags,
    };
    let clock = sim.clock.clone();
    let service = sim.create_service(&cluster, spec)?;
    Ok(json!({ "service": render::service(service, &clock, false) }))
}

fn update_service(sim: &mut Sim, input: input::UpdateService) -> Result<Value, EcsError> {
    let cluster = names::cluster_name(input.cluster.as_deref());
    let name = input
        .service
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(names::service_name)
        .ok_or_else(|| EcsError::invalid_parameter("service is required."))?
        .to_owned();
    let task_definition = input
        .task_definition
        .as_deref()
        .map(names::task_definition_arn)
        .transpose()?;
    let desired = input.desired_count.map(input::desired_count).transpose()?;
    let now = sim.now();
    let service = sim.service_mut(&cluster, &name)?;

    let new_task_definition = task_definition.filter(|td| *td != service.task_definition);
    let force = input.force_new_deployment.unwrap_or(false);
    if service.controller != Controller::Ecs && (force || new_task_definition.is_some()) {
        return Err(external_controller_error(service.controller, force));
    }
    // Validate everything before changing anything.
    let mut config = service.config;
    if let Some(dc) = &input.deployment_configuration {
        dc.apply(&mut config)?;
    }
    service.config = config;
    if let Some(desired) = desired {
        service.scale(desired, now);
    }
    if force || new_task_definition.is_some() {
        let td = new_task_definition.unwrap_or_else(|| service.task_definition.clone());
        sim.deploy(&cluster, &name, td)?;
    }
    let clock = sim.clock.clone();
    let service = sim.service_mut(&cluster, &name)?;
    Ok(json!({ "service": render::service(service, &clock, false) }))
}

fn external_controller_error(controller: Controller, force: bool) -> EcsError {
    let what = if force {
        "Cannot force a new deployment on"
    } else {
        "Unable to update task definition on"
    };
    let how = match controller {
        Controller::CodeDeploy => " Use AWS CodeDeploy to trigger a new deployment.",
        _ => "",
    };
    EcsError::invalid_parameter(format!(
        "{what} services with a {} deployment controller.{how}",
        controller.as_str()
    ))
}

fn describe_services(sim: &mut Sim, input: input::DescribeServices) -> Result<Value, EcsError> {
    let wanted = input.services.unwrap_or_default();
    if wanted.is_empty() {
        return Err(EcsError::invalid_parameter("Services cannot be empty."));
    }
    if wanted.len() > MAX_DESCRIBE {
        return Err(EcsError::invalid_parameter(format!(
            "Services cannot have more than {MAX_DESCRIBE} elements"
        )));
    }
    let with_tags = input
        .include
        .is_some_and(|inc| inc.iter().any(|i| i == "TAGS"));
    let cluster_name = names::cluster_name(input.cluster.as_deref());
    let cluster = sim.cluster(&cluster_name)?;
    let mut services = Vec::new();
    let mut failures = Vec::new();
    for arg in &wanted {
        let name = names::service_name(arg);
        match cluster.services.get(name) {
            Some(s) => services.push(render::service(s, &sim.clock, with_tags)),
            None if arg.starts_with("arn:") => failures.push(render::missing(arg.clone())),
            None => failures.push(render::missing(names::service_arn(&cluster_name, name))),
        }
    }
    Ok(json!({ "services": services, "failures": failures }))
}

fn list_services(sim: &mut Sim, input: input::ListServices) -> Result<Value, EcsError> {
    let max = input.max_results.unwrap_or(DEFAULT_LIST_RESULTS);
    if !(1..=MAX_LIST_RESULTS).contains(&max) {
        return Err(EcsError::invalid_parameter(format!(
            "maxResults must be between 1 and {MAX_LIST_RESULTS}."
        )));
    }
    let start = match input.next_token.as_deref() {
        None | Some("") => 0,
        Some(token) => decode_token(token)?,
    };
    let cluster_name = names::cluster_name(input.cluster.as_deref());
    let cluster = sim.cluster(&cluster_name)?;
    // Bounded by the check above, so the cast cannot truncate.
    let max = max as usize;
    let arns: Vec<String> = cluster
        .services
        .keys()
        .skip(start)
        .take(max)
        .map(|name| names::service_arn(&cluster_name, name))
        .collect();
    let mut out = json!({ "serviceArns": arns });
    let next = start + max;
    if next < cluster.services.len() {
        out["nextToken"] = json!(encode_token(next));
    }
    Ok(out)
}

/// Tokens are opaque to clients; a prefix catches tokens from elsewhere.
fn encode_token(offset: usize) -> String {
    format!("ecs-sim-{offset}")
}

fn decode_token(token: &str) -> Result<usize, EcsError> {
    token
        .strip_prefix("ecs-sim-")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| EcsError::invalid_parameter("Invalid nextToken."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SimClock;

    fn sim() -> Sim {
        Sim::new(SimClock::new(1.0), SimSettings::default(), 1)
    }

    fn run(sim: &mut Sim, op: Operation, body: Value) -> Result<Value, EcsError> {
        op.run(sim, body)
    }

    #[test]
    fn create_then_describe_by_arn() {
        let mut s = sim();
        run(
            &mut s,
            Operation::CreateCluster,
            json!({"clusterName": "prod"}),
        )
        .unwrap();
        let out = run(
            &mut s,
            Operation::CreateService,
            json!({"cluster": "prod", "serviceName": "web", "taskDefinition": "web:1", "desiredCount": 2}),
        )
        .unwrap();
        assert_eq!(out["service"]["runningCount"], 2);
        let arn = out["service"]["serviceArn"].as_str().unwrap().to_owned();
        let out = run(
            &mut s,
            Operation::DescribeServices,
            json!({"cluster": names::cluster_arn("prod"), "services": [arn, "nope"]}),
        )
        .unwrap();
        assert_eq!(out["services"].as_array().unwrap().len(), 1);
        assert_eq!(out["failures"][0]["reason"], "MISSING");
        assert!(out["failures"][0]["arn"]
            .as_str()
            .unwrap()
            .ends_with("/prod/nope"));
    }

    #[test]
    fn errors() {
        let mut s = sim();
        let e = run(
            &mut s,
            Operation::DescribeServices,
            json!({"cluster": "x", "services": ["a"]}),
        );
        assert_eq!(e.unwrap_err().code, "ClusterNotFoundException");
        let e = run(&mut s, Operation::UpdateService, json!({"service": "a"}));
        assert_eq!(e.unwrap_err().code, "ServiceNotFoundException");
        let e = run(
            &mut s,
            Operation::DescribeServices,
            json!({"services": "a"}),
        );
        assert_eq!(e.unwrap_err().code, "SerializationException");
        let e = run(
            &mut s,
            Operation::CreateService,
            json!({"serviceName": "a", "desiredCount": -1}),
        );
        assert_eq!(e.unwrap_err().code, "InvalidParameterException");
        run(
            &mut s,
            Operation::CreateService,
            json!({"serviceName": "a"}),
        )
        .unwrap();
        let e = run(
            &mut s,
            Operation::CreateService,
            json!({"serviceName": "a"}),
        );
        assert_eq!(e.unwrap_err().code, "InvalidParameterException");
    }

    #[test]
    fn list_services_pages() {
        let mut s = sim();
        for i in 0..5 {
            run(
                &mut s,
                Operation::CreateService,
                json!({"serviceName": format!("s{i}")}),
            )
            .unwrap();
        }
        let page = run(&mut s, Operation::ListServices, json!({"maxResults": 2})).unwrap();
        assert_eq!(page["serviceArns"].as_array().unwrap().len(), 2);
        let token = page["nextToken"].clone();
        let page = run(
            &mut s,
            Operation::ListServices,
            json!({"maxResults": 3, "nextToken": token}),
        )
        .unwrap();
        assert_eq!(page["serviceArns"].as_array().unwrap().len(), 3);
        assert!(page.get("nextToken").is_none());
        let e = run(
            &mut s,
            Operation::ListServices,
            json!({"nextToken": "garbage"}),
        );
        assert_eq!(e.unwrap_err().code, "InvalidParameterException");
    }

    #[test]
    fn update_with_new_task_definition_deploys() {
        let mut s = sim();
        run(
            &mut s,
            Operation::CreateService,
            json!({"serviceName": "a", "taskDefinition": "a:1"}),
        )
        .unwrap();
        let out = run(
            &mut s,
            Operation::UpdateService,
            json!({"service": "a", "taskDefinition": "a:2"}),
        )
        .unwrap();
        let deployments = out["service"]["deployments"].as_array().unwrap();
        assert_eq!(deployments.len(), 2);
        assert_eq!(deployments[0]["rolloutState"], "IN_PROGRESS");
        assert!(deployments[0]["taskDefinition"]
            .as_str()
            .unwrap()
            .ends_with("a:2"));
        assert_eq!(deployments[1]["status"], "ACTIVE");
        assert_eq!(deployments[1]["rolloutState"], "COMPLETED");
        // Same task definition, no force: only a scale.
        let out = run(
            &mut s,
            Operation::UpdateService,
            json!({"service": "a", "taskDefinition": "a:2", "desiredCount": 3}),
        )
        .unwrap();
        assert_eq!(out["service"]["deployments"].as_array().unwrap().len(), 2);
        assert_eq!(out["service"]["desiredCount"], 3);
    }
}
