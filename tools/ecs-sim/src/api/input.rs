//! Request shapes of the supported operations.
//!
//! Unknown fields are ignored, as the real service does; wrong types fail
//! deserialisation and become `SerializationException`.

use serde::Deserialize;

use crate::error::EcsError;
use crate::model::{validate_secs, Behavior, DeploymentConfig, Tag};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateCluster {
    pub cluster_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeClusters {
    pub clusters: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateService {
    pub service_name: Option<String>,
    pub cluster: Option<String>,
    pub task_definition: Option<String>,
    pub desired_count: Option<i64>,
    pub deployment_controller: Option<DeploymentControllerInput>,
    pub deployment_configuration: Option<DeploymentConfigurationInput>,
    pub tags: Option<Vec<TagInput>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateService {
    pub cluster: Option<String>,
    pub service: Option<String>,
    pub force_new_deployment: Option<bool>,
    pub desired_count: Option<i64>,
    pub task_definition: Option<String>,
    pub deployment_configuration: Option<DeploymentConfigurationInput>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeServices {
    pub cluster: Option<String>,
    pub services: Option<Vec<String>>,
    pub include: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListServices {
    pub cluster: Option<String>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct DeploymentControllerInput {
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentConfigurationInput {
    pub deployment_circuit_breaker: Option<CircuitBreakerInput>,
    pub maximum_percent: Option<i64>,
    pub minimum_healthy_percent: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct CircuitBreakerInput {
    pub enable: Option<bool>,
    pub rollback: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct TagInput {
    pub key: Option<String>,
    pub value: Option<String>,
}

impl DeploymentConfigurationInput {
    /// Merges the given fields into `config`.
    pub fn apply(&self, config: &mut DeploymentConfig) -> Result<(), EcsError> {
        if let Some(breaker) = &self.deployment_circuit_breaker {
            if let Some(enable) = breaker.enable {
                config.breaker_enable = enable;
            }
            if let Some(rollback) = breaker.rollback {
                config.breaker_rollback = rollback;
            }
        }
        if let Some(max) = self.maximum_percent {
            config.maximum_percent = percent("maximumPercent", max, 100, 1000)?;
        }
        if let Some(min) = self.minimum_healthy_percent {
            config.minimum_healthy_percent = percent("minimumHealthyPercent", min, 0, 100)?;
        }
        Ok(())
    }
}

fn percent(what: &str, value: i64, low: u32, high: u32) -> Result<u32, EcsError> {
    u32::try_from(value)
        .ok()
        .filter(|v| (low..=high).contains(v))
        .ok_or_else(|| {
            EcsError::invalid_parameter(format!("{what} must be between {low} and {high}."))
        })
}

/// Checks a desired count: ECS takes 0 to 5000 tasks per service.
pub fn desired_count(value: i64) -> Result<u32, EcsError> {
    u32::try_from(value)
        .ok()
        .filter(|v| *v <= 5000)
        .ok_or_else(|| EcsError::invalid_parameter("Desired count must be between 0 and 5000."))
}

pub fn tags(input: Option<Vec<TagInput>>) -> Result<Vec<Tag>, EcsError> {
    input
        .unwrap_or_default()
        .into_iter()
        .map(|t| match t.key {
            Some(key) if !key.is_empty() => Ok(Tag {
                key,
                value: t.value.unwrap_or_default(),
            }),
            _ => Err(EcsError::invalid_parameter("Tag keys must not be empty.")),
        })
        .collect()
}

/// Simulation overrides carried in `ecs-sim:*` tags.
#[derive(Debug, Default, PartialEq)]
pub struct TagOverrides {
    pub behavior: Option<Behavior>,
    pub start_secs: Option<f64>,
    pub drain_secs: Option<f64>,
    pub gradual: Option<bool>,
    pub deregistration_secs: Option<f64>,
}

pub fn tag_overrides(tags: &[Tag]) -> Result<TagOverrides, EcsError> {
    let mut out = TagOverrides::default();
    for tag in tags {
        match tag.key.as_str() {
            "ecs-sim:behavior" => out.behavior = Some(tag.value.parse()?),
            "ecs-sim:start-secs" => out.start_secs = Some(secs(&tag.key, &tag.value)?),
            "ecs-sim:drain-secs" => out.drain_secs = Some(secs(&tag.key, &tag.value)?),
            "ecs-sim:gradual" => {
                out.gradual = Some(tag.value.trim().parse().map_err(|_| {
                    EcsError::invalid_parameter(format!("Tag {} must be true or false.", tag.key))
                })?);
            }
            "ecs-sim:deregistration-secs" => {
                out.deregistration_secs = Some(secs(&tag.key, &tag.value)?);
            }
            _ => {}
        }
    }
    Ok(out)
}

fn secs(key: &str, value: &str) -> Result<f64, EcsError> {
    let secs = value.trim().parse::<f64>().map_err(|_| {
        EcsError::invalid_parameter(format!("Tag {key} must be a number of seconds."))
    })?;
    validate_secs(key, secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(key: &str, value: &str) -> Tag {
        Tag {
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn overrides_from_tags() {
        let t = vec![
            tag("team", "x"),
            tag("ecs-sim:behavior", "failing"),
            tag("ecs-sim:start-secs", "5"),
            tag("ecs-sim:drain-secs", "0.5"),
        ];
        let o = tag_overrides(&t).unwrap();
        assert_eq!(o.behavior, Some(Behavior::Failing));
        assert_eq!(o.start_secs, Some(5.0));
        assert_eq!(o.drain_secs, Some(0.5));
        assert!(tag_overrides(&[tag("ecs-sim:behavior", "bogus")]).is_err());
        assert!(tag_overrides(&[tag("ecs-sim:start-secs", "-1")]).is_err());
        assert!(tag_overrides(&[tag("ecs-sim:drain-secs", "NaN")]).is_err());
        let o = tag_overrides(&[
            tag("ecs-sim:gradual", "true"),
            tag("ecs-sim:deregistration-secs", "300"),
        ])
        .unwrap();
        assert_eq!(o.gradual, Some(true));
        assert_eq!(o.deregistration_secs, Some(300.0));
        assert!(tag_overrides(&[tag("ecs-sim:gradual", "yes")]).is_err());
    }

    #[test]
    fn counts_and_percents() {
        assert_eq!(desired_count(3).unwrap(), 3);
        assert!(desired_count(-1).is_err());
        assert!(desired_count(1 << 40).is_err());
        let mut c = DeploymentConfig::default();
        let input = DeploymentConfigurationInput {
            maximum_percent: Some(2000),
            ..Default::default()
        };
        assert!(input.apply(&mut c).is_err());
    }
}
