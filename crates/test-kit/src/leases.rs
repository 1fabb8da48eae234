//! The in-memory lease table: DynamoDB's conditional-write rules for the per-secret
//! leases, a log of acquisitions and network partitions per owner.
//!
//! It lives in the core (`rotation::lease::memory`) because the core's own unit and
//! property tests of the lease protocol run on it, and a core test cannot depend on this
//! crate (it would see two copies of the core's types). Wrap it in
//! [`Faulty`](crate::Faulty) for throttling, 5xx or timeouts of the table.

pub use rotator_core::rotation::lease::memory::{Acquisition, MemoryLeases};
