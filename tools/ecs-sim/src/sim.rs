//! The simulated ECS account: clusters, their services, and the record of
//! finished rollouts.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use serde::Serialize;

use crate::clock::SimClock;
use crate::error::EcsError;
use crate::events::{Change, EventSink};
use crate::model::{Service, ServiceSpec, SimSettings};
use crate::names::{self, DEFAULT_CLUSTER};
use crate::rng::Rng;
use crate::rollout::{Outcome, OutcomeKind};

#[derive(Debug, Default)]
pub struct Cluster {
    /// Keyed by name so listings are stable.
    pub services: BTreeMap<String, Service>,
}

/// A rollout end state, as `GET /_sim/completions` reports it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Completion {
    pub cluster: String,
    pub service: String,
    pub deployment_id: String,
    pub kind: OutcomeKind,
    pub sim_time: f64,
    pub wall_time: f64,
}

#[derive(Debug)]
pub struct Sim {
    pub clock: SimClock,
    /// Settings for services that do not choose their own.
    pub defaults: SimSettings,
    pub clusters: BTreeMap<String, Cluster>,
    pub completions: Vec<Completion>,
    rng: Rng,
    /// Where rollout state changes go as deployment events; none: dropped.
    events: Option<EventSink>,
}

impl Sim {
    pub fn new(clock: SimClock, defaults: SimSettings, seed: u64) -> Self {
        let mut clusters = BTreeMap::new();
        // Real accounts need the default cluster created first; having it
        // from the start saves every test and demo that step.
        clusters.insert(DEFAULT_CLUSTER.to_owned(), Cluster::default());
        Self {
            clock,
            defaults,
            clusters,
            completions: Vec::new(),
            rng: Rng::new(seed),
            events: None,
        }
    }

    /// Sends every later rollout state change to `sink`.
    pub fn set_events(&mut self, sink: EventSink) {
        self.events = Some(sink);
    }

    pub fn now(&self) -> f64 {
        self.clock.now()
    }

    /// Brings every service up to the current simulated time.
    pub fn advance_all(&mut self) {
        let now = self.now();
        for (cluster_name, cluster) in &mut self.clusters {
            for service in cluster.services.values_mut() {
                let outcomes = service.advance(now, &mut self.rng);
                record(
                    &mut self.completions,
                    &self.clock,
                    cluster_name,
                    &service.name,
                    outcomes,
                );
                forward(self.events.as_ref(), &self.clock, service);
            }
        }
    }

    /// Creates a cluster, or returns the existing one (CreateCluster is
    /// idempotent in ECS).
    pub fn create_cluster(&mut self, name: &str) -> Result<(), EcsError> {
        if !names::valid_resource_name(name) {
            return Err(EcsError::invalid_parameter(
                "Cluster name can have up to 255 characters: letters, numbers, hyphens and underscores.",
            ));
        }
        self.clusters.entry(name.to_owned()).or_default();
        Ok(())
    }

    pub fn cluster(&self, name: &str) -> Result<&Cluster, EcsError> {
        self.clusters
            .get(name)
            .ok_or_else(EcsError::cluster_not_found)
    }

    pub fn service_mut(&mut self, cluster: &str, service: &str) -> Result<&mut Service, EcsError> {
        self.clusters
            .get_mut(cluster)
            .ok_or_else(EcsError::cluster_not_found)?
            .services
            .get_mut(service)
            .ok_or_else(EcsError::service_not_found)
    }

    pub fn create_service(
        &mut self,
        cluster: &str,
        spec: ServiceSpec,
    ) -> Result<&Service, EcsError> {
        if !names::valid_resource_name(&spec.name) {
            return Err(EcsError::invalid_parameter(
                "Service name can have up to 255 characters: letters, numbers, hyphens and underscores.",
            ));
        }
        let now = self.now();
        let services = &mut self
            .clusters
            .get_mut(cluster)
            .ok_or_else(EcsError::cluster_not_found)?
            .services;
        match services.entry(spec.name.clone()) {
            Entry::Occupied(_) => Err(EcsError::invalid_parameter(
                "Creation of service was not idempotent.",
            )),
            Entry::Vacant(slot) => Ok(slot.insert(Service::new(spec, cluster, now, &mut self.rng))),
        }
    }

    /// Starts a new deployment of a service (force or new task definition).
    pub fn deploy(
        &mut self,
        cluster: &str,
        service: &str,
        task_definition: String,
    ) -> Result<(), EcsError> {
        let now = self.now();
        let rng = &mut self.rng;
        let svc = self
            .clusters
            .get_mut(cluster)
            .ok_or_else(EcsError::cluster_not_found)?
            .services
            .get_mut(service)
            .ok_or_else(EcsError::service_not_found)?;
        svc.deploy(task_definition, now, rng);
        // A zero-count or zero-duration rollout may already be done.
        let outcomes = svc.advance(now, rng);
        let name = svc.name.clone();
        record(&mut self.completions, &self.clock, cluster, &name, outcomes);
        forward(self.events.as_ref(), &self.clock, svc);
        Ok(())
    }
}

/// Hands a service's rollout state changes to the event publisher (or drops them), so
/// they never pile up in the model.
fn forward(sink: Option<&EventSink>, clock: &SimClock, service: &mut Service) {
    let changes = std::mem::take(&mut service.changes);
    let Some(sink) = sink else {
        return;
    };
    let service_arn = names::service_arn(&service.cluster, &service.name);
    for c in changes {
        sink.push(Change {
            service_arn: service_arn.clone(),
            deployment_id: c.deployment_id,
            state: c.state,
            reason: c.reason,
            wall_time: clock.wall_epoch(c.at),
        });
    }
}

fn record(
    completions: &mut Vec<Completion>,
    clock: &SimClock,
    cluster: &str,
    service: &str,
    outcomes: Vec<Outcome>,
) {
    completions.extend(outcomes.into_iter().map(|o| Completion {
        cluster: cluster.to_owned(),
        service: service.to_owned(),
        deployment_id: o.deployment_id,
        kind: o.kind,
        sim_time: o.at,
        wall_time: clock.wall_epoch(o.at),
    }));
}
