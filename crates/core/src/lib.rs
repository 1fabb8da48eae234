//! The rotation core of secret-rotator: everything that decides *what* to do, generic
//! over ports for everything that talks to the outside world. No AWS SDK, no HTTP server,
//! no process-wide state: `cargo tree -p rotator-core` shows it.
//!
//! Layout:
//! - [`ids`], [`clock`], [`error`]: typed ids, the one wall-clock abstraction, the
//!   classified error every port reports.
//! - [`config`]: the TOML configuration, parsed and validated into typed settings; target
//!   kinds are read through a [`config::Registry`] (the core knows only `none`).
//! - [`schedule`], [`due`]: when a secret is due (intervals, windows, jitter) read from
//!   the store's state.
//! - [`rotation`]: the staging protocol (`Engine`), its ports (`store::SecretStore`,
//!   `deploy::Deployer`, `target::ConfiguredTarget`, leases) and the rollout judgement.
//! - [`group`]: which stage of a rotation group may start, from the members' stored state.
//! - [`ha`]: per-secret leases when several replicas run one configuration.
//! - [`scheduler`]: the deadline queue that launches rotations.
//! - [`daemon`]: scheduler + engine + telemetry in process ([`daemon::run`]), driven by a
//!   shutdown future and a reload channel; the binary adds signals, HTTP and AWS.
//! - [`telemetry`]: what the core reports (the binary turns it into Prometheus metrics).
//! - [`notify`]: rotation events for people (the port the notification sinks implement).
//! - [`random`]: the few random choices (replica skew, lease retry spread), seedable.
#![forbid(unsafe_code)]

pub mod clock;
pub mod config;
pub mod daemon;
pub mod due;
pub mod error;
pub mod failpoints;
pub mod group;
pub mod ha;
pub mod ids;
pub mod notify;
pub mod random;
pub mod rotation;
pub mod schedule;
pub mod scheduler;
pub mod telemetry;
