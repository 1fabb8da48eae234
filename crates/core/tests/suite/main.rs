//! The core's integration tests, in one binary: a change to the core then rebuilds one
//! test crate instead of one per file (half the rebuild time of `scripts/test` and of
//! each `cargo mutants` mutant).

#[path = "../common/world.rs"]
mod world;

mod coalesce;
mod config_cases;
mod config_good;
mod consumer_commands;
mod coordinator;
mod due;
mod engine;
mod groups;
mod ha;
mod integrity;
mod lease_busy;
mod owed;
mod replicas;
mod router;
mod scheduler;
mod target_kinds;
mod tokens;
mod wait;
