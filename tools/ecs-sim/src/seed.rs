//! The seed file: clusters and services that exist from the start.

use std::path::Path;

use serde::Deserialize;

use crate::model::{
    validate_secs, Behavior, Controller, DeploymentConfig, ServiceSpec, SimSettings,
};
use crate::names;
use crate::sim::Sim;

/// Unknown fields are errors here, unlike in the API: a typo in a seed file
/// should fail loudly rather than silently seed the wrong thing.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedFile {
    #[serde(default)]
    pub clusters: Vec<SeedCluster>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedCluster {
    pub name: String,
    #[serde(default)]
    pub services: Vec<SeedService>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedService {
    pub name: String,
    pub desired_count: Option<u32>,
    pub task_definition: Option<String>,
    pub behavior: Option<Behavior>,
    pub deployment_controller: Option<String>,
    pub start_secs: Option<f64>,
    pub drain_secs: Option<f64>,
    pub gradual: Option<bool>,
    pub deregistration_secs: Option<f64>,
}

pub fn load(path: &Path) -> Result<SeedFile, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read seed file {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("invalid seed file {}: {e}", path.display()))
}

/// Creates the seeded clusters and services.
pub fn apply(seed: SeedFile, sim: &mut Sim) -> Result<(), String> {
    for cluster in seed.clusters {
        let where_ = |what: &str, e: &dyn std::fmt::Display| format!("seed cluster {what}: {e}");
        sim.create_cluster(&cluster.name)
            .map_err(|e| where_(&cluster.name, &e))?;
        for service in cluster.services {
            let label = format!("{}/{}", cluster.name, service.name);
            let spec = spec(service, sim.defaults).map_err(|e| where_(&label, &e))?;
            sim.create_service(&cluster.name, spec)
                .map_err(|e| where_(&label, &e))?;
        }
    }
    Ok(())
}

fn spec(s: SeedService, defaults: SimSettings) -> Result<ServiceSpec, crate::error::EcsError> {
    let task_definition =
        names::task_definition_arn(s.task_definition.as_deref().unwrap_or(&s.name))?;
    let controller = match s.deployment_controller {
        Some(c) => c.parse()?,
        None => Controller::Ecs,
    };
    let settings = SimSettings {
        behavior: s.behavior.unwrap_or(defaults.behavior),
        start_secs: validate_secs("startSecs", s.start_secs.unwrap_or(defaults.start_secs))?,
        drain_secs: validate_secs("drainSecs", s.drain_secs.unwrap_or(defaults.drain_secs))?,
        gradual: s.gradual.unwrap_or(defaults.gradual),
        deregistration_secs: validate_secs(
            "deregistrationSecs",
            s.deregistration_secs
                .unwrap_or(defaults.deregistration_secs),
        )?,
    };
    Ok(ServiceSpec {
        name: s.name,
        desired_count: s.desired_count.unwrap_or(1),
        task_definition,
        controller,
        config: DeploymentConfig::default(),
        settings,
        tags: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SimClock;

    #[test]
    fn seeds_services() {
        let seed: SeedFile = serde_json::from_str(
            r#"{"clusters":[{"name":"prod","services":[
                {"name":"front","desiredCount":2,"taskDefinition":"front:1","behavior":"healthy",
                 "deploymentController":"ECS","startSecs":20,"drainSecs":10},
                {"name":"pdf","behavior":"failing"},
                {"name":"api","gradual":true,"deregistrationSecs":300}]}]}"#,
        )
        .unwrap();
        let mut sim = Sim::new(SimClock::new(1.0), SimSettings::default(), 1);
        apply(seed, &mut sim).unwrap();
        let prod = sim.cluster("prod").unwrap();
        assert_eq!(prod.services["front"].running_count(), 2);
        assert_eq!(prod.services["pdf"].settings.behavior, Behavior::Failing);
        assert!(!prod.services["front"].settings.gradual);
        assert_eq!(prod.services["front"].settings.deregistration_secs, 0.0);
        assert!(prod.services["api"].settings.gradual);
        assert_eq!(prod.services["api"].settings.deregistration_secs, 300.0);
    }

    #[test]
    fn rejects_typos_and_bad_values() {
        assert!(
            serde_json::from_str::<SeedFile>(r#"{"clusters":[{"name":"a","servces":[]}]}"#)
                .is_err()
        );
        let seed: SeedFile = serde_json::from_str(
            r#"{"clusters":[{"name":"a","services":[{"name":"s","deploymentController":"NOPE"}]}]}"#,
        )
        .unwrap();
        let mut sim = Sim::new(SimClock::new(1.0), SimSettings::default(), 1);
        assert!(apply(seed, &mut sim).is_err());
    }
}
