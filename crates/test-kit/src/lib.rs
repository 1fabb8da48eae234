//! Test doubles for secret-rotator, shared by the root crate's tests, `tools/bench` and
//! (later) the simulation: in-memory AWS services that follow AWS's *documented*
//! behaviour, separate wrappers that inject faults and latency into any port, and
//! builders for configurations. Depends only on `rotator-core` (no AWS SDK, no root
//! crate); `tests/conformance.rs` of the root crate runs the same scenarios against these
//! fakes and against moto + ecs-sim through the real adapters, to keep them honest.
//!
//! Layout:
//! - [`secrets`]: [`FakeStore`], an in-memory Secrets Manager behind
//!   [`SecretStore`](rotator_core::rotation::store::SecretStore): staging labels
//!   (AWSCURRENT/AWSPENDING/AWSPREVIOUS moves), client request tokens (same content is
//!   idempotent, different content is `ResourceExistsException`), deprecated versions,
//!   tags, deletion; a call log and per-operation counters.
//! - [`ecs`]: [`FakeEcs`], ECS behind [`Deployer`](rotator_core::rotation::deploy::Deployer)
//!   whose rollouts follow a timeline per service ([`Behaviour`]: healthy, circuit-breaker
//!   rollback, stall, superseded by someone else, CodeDeploy, missing) on tokio time.
//! - [`iam`]: [`FakeIam`], IAM access keys and STS GetCallerIdentity behind
//!   [`IamApi`](rotator_core::rotation::target::IamApi).
//! - [`leases`]: the in-memory lease table (it lives in the core, whose own lease tests
//!   use it; re-exported here).
//! - [`faults`]: [`Faulty`], a wrapper around any port (store, ECS, IAM, lease table)
//!   that injects failures from a shared [`FaultPlan`]: throttling, 5xx, timeouts, hangs,
//!   panics, errors *after* the call took effect, and process crashes.
//! - [`latency`]: [`Latency`], a wrapper that makes calls of any port take time.
//! - [`hook`]: [`Hook`], a wrapper that runs a closure before every call (logging,
//!   freezing a replica, ...).
//! - [`process`]: [`FakeRunner`], the port that runs operator programs (consumer
//!   commands), scripted per program: exit codes and delays on tokio time, runs logged.
//! - [`target`]: [`FakeTarget`], a target kind for tests: set, test and revoke succeed,
//!   fail with a chosen error, take time or never answer, as scripted; calls are logged.
//! - [`telemetry`]: [`Recorder`], a `Telemetry` sink that keeps what the core reports
//!   (per-secret state, counters) for tests to assert on.
//! - [`errors`]: the AWS errors the fakes and the wrappers return, ready-made.
//! - [`clock`]: the fake wall clock (the core's `ManualClock`), a [`Sequence`] that orders
//!   calls across fakes, time helpers.
//! - [`config`]: [`SecretBuilder`] (an in-memory `SecretConfig`), [`ConfigToml`] and
//!   [`ConfigDir`] (a configuration directory for N secrets, written and loaded by the
//!   daemon's own loader).
//! - [`metrics`], [`net`]: reading Prometheus text, a free local port.
//!
//! Every fake is a cheap handle over shared state: clone one into an `Engine` and keep
//! another in the test to inspect it, or hand it to a second engine after a "crash".
#![forbid(unsafe_code)]

pub mod clock;
pub mod config;
pub mod ecs;
pub mod errors;
pub mod faults;
pub mod hook;
pub mod iam;
pub mod latency;
pub mod leases;
pub mod metrics;
pub mod net;
pub mod process;
pub mod secrets;
pub mod target;
pub mod telemetry;

pub use clock::{at, ManualClock, Sequence};
pub use config::{command, secret_ref, svc, ConfigDir, ConfigToml, SecretBuilder, SecretToml};
pub use ecs::{Behaviour, FakeEcs};
pub use faults::{Fault, FaultPlan, Faulty};
pub use hook::Hook;
pub use iam::FakeIam;
pub use latency::Latency;
pub use process::{Answer, FakeRunner};
pub use secrets::FakeStore;
pub use target::FakeTarget;
pub use telemetry::Recorder;

/// The region and account of every ARN the fakes make.
pub const REGION: &str = "eu-west-1";
pub const ACCOUNT_ID: &str = "111111111111";

/// Locks a fake's state; a panicking test thread must not poison it for the others.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
