//! ECS JSON shapes of the simulated resources (camelCase, as the API has them).

use serde_json::{json, Value};

use crate::clock::SimClock;
use crate::model::{Deployment, Event, Service};
use crate::names;
use crate::sim::Cluster;

/// All simulated tasks are Fargate tasks.
const LAUNCH_TYPE: &str = "FARGATE";

pub fn service(s: &Service, clock: &SimClock, with_tags: bool) -> Value {
    let mut v = json!({
        "serviceArn": names::service_arn(&s.cluster, &s.name),
        "serviceName": s.name,
        "clusterArn": names::cluster_arn(&s.cluster),
        "status": "ACTIVE",
        "desiredCount": s.desired_count,
        "runningCount": s.running_count(),
        "pendingCount": s.pending_count(),
        "launchType": LAUNCH_TYPE,
        "schedulingStrategy": "REPLICA",
        "taskDefinition": s.task_definition,
        "deploymentController": { "type": s.controller.as_str() },
        "deploymentConfiguration": {
            "deploymentCircuitBreaker": {
                "enable": s.config.breaker_enable,
                "rollback": s.config.breaker_rollback,
            },
            "maximumPercent": s.config.maximum_percent,
            "minimumHealthyPercent": s.config.minimum_healthy_percent,
        },
        "deployments": s.deployments.iter().map(|d| deployment(d, clock)).collect::<Vec<_>>(),
        "events": s.events.iter().map(|e| event(e, clock)).collect::<Vec<_>>(),
        "createdAt": clock.api_epoch(s.created_at),
    });
    if with_tags {
        v["tags"] = s
            .tags
            .iter()
            .map(|t| json!({ "key": t.key, "value": t.value }))
            .collect();
    }
    v
}

fn deployment(d: &Deployment, clock: &SimClock) -> Value {
    json!({
        "id": d.id,
        "status": d.status.as_str(),
        "taskDefinition": d.task_definition,
        "desiredCount": d.desired_count,
        "pendingCount": d.pending_count,
        "runningCount": d.running_count,
        "failedTasks": d.failed_tasks,
        "createdAt": clock.api_epoch(d.created_at),
        "updatedAt": clock.api_epoch(d.updated_at),
        "launchType": LAUNCH_TYPE,
        "rolloutState": d.rollout_state.as_str(),
        "rolloutStateReason": d.rollout_state_reason,
    })
}

fn event(e: &Event, clock: &SimClock) -> Value {
    json!({
        "id": e.id,
        "createdAt": clock.api_epoch(e.created_at),
        "message": e.message,
    })
}

pub fn cluster(name: &str, c: &Cluster) -> Value {
    let running: u64 = c
        .services
        .values()
        .map(|s| u64::from(s.running_count()))
        .sum();
    let pending: u64 = c
        .services
        .values()
        .map(|s| u64::from(s.pending_count()))
        .sum();
    json!({
        "clusterArn": names::cluster_arn(name),
        "clusterName": name,
        "status": "ACTIVE",
        "registeredContainerInstancesCount": 0,
        "runningTasksCount": running,
        "pendingTasksCount": pending,
        "activeServicesCount": c.services.len(),
    })
}

/// A `failures[]` entry for a resource that does not exist.
pub fn missing(arn: String) -> Value {
    json!({ "arn": arn, "reason": "MISSING" })
}
