//! ARNs and the name-or-ARN arguments ECS accepts.

use crate::error::EcsError;

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";
pub const DEFAULT_CLUSTER: &str = "default";

pub fn cluster_arn(cluster: &str) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{cluster}")
}

pub fn service_arn(cluster: &str, service: &str) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/{cluster}/{service}")
}

/// The cluster name from a `cluster` argument (name, ARN, or absent).
pub fn cluster_name(arg: Option<&str>) -> String {
    match arg {
        None | Some("") => DEFAULT_CLUSTER.to_owned(),
        Some(s) => last_segment(s).to_owned(),
    }
}

/// The service name from a name or an ARN, old (`service/NAME`) or new
/// (`service/CLUSTER/NAME`) format: in both the name is the last segment.
pub fn service_name(arg: &str) -> &str {
    last_segment(arg)
}

fn last_segment(s: &str) -> &str {
    if s.starts_with("arn:") {
        s.rsplit('/').next().unwrap_or(s)
    } else {
        s
    }
}

/// Normalises a task definition argument (`family`, `family:rev` or an ARN)
/// to a full ARN, as ECS reports it back.
pub fn task_definition_arn(arg: &str) -> Result<String, EcsError> {
    if arg.starts_with("arn:") {
        return Ok(arg.to_owned());
    }
    let (family, revision) = match arg.split_once(':') {
        // Without a revision real ECS picks the latest; the simulator has no
        // registry, so it says revision 1.
        None => (arg, "1"),
        Some((family, revision)) => (family, revision),
    };
    let family_ok = !family.is_empty()
        && family.len() <= 255
        && family
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let revision_ok = !revision.is_empty() && revision.bytes().all(|b| b.is_ascii_digit());
    if !family_ok || !revision_ok {
        return Err(EcsError::client_exception(
            "Unable to describe task definition.",
        ));
    }
    Ok(format!(
        "arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family}:{revision}"
    ))
}

/// Whether a cluster or service name is one ECS would accept.
pub fn valid_resource_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_args() {
        assert_eq!(cluster_name(None), "default");
        assert_eq!(cluster_name(Some("prod")), "prod");
        assert_eq!(cluster_name(Some(&cluster_arn("prod"))), "prod");
        assert_eq!(service_name("front"), "front");
        assert_eq!(service_name(&service_arn("prod", "front")), "front");
        assert_eq!(
            service_name("arn:aws:ecs:us-east-1:123456789012:service/front"),
            "front"
        );
    }

    #[test]
    fn task_definitions() {
        let arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/front:3";
        assert_eq!(task_definition_arn("front:3").unwrap(), arn);
        assert_eq!(task_definition_arn(arn).unwrap(), arn);
        assert!(task_definition_arn("front").unwrap().ends_with("front:1"));
        assert!(task_definition_arn("front:x").is_err());
        assert!(task_definition_arn("").is_err());
        assert!(task_definition_arn("a b:1").is_err());
    }
}
