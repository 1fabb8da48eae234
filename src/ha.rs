//! Connects `[ha] lock_table` to the core's leases (the protocol is in
//! `rotator_core::ha` and `rotation::lease`; the DynamoDB table in `aws::lease`).

pub use rotator_core::ha::*;

use crate::clock::Clock;
use crate::config::Config;
use crate::rotation::lease::{owner_id, LeaseStore, Leases};
use std::sync::Arc;

/// The lease table of `[ha]`, if one is configured.
pub async fn connect(cfg: &Config, clock: Arc<dyn Clock>) -> Option<Arc<Ha>> {
    let table = cfg.ha.lock_table.as_ref()?;
    let ctx = crate::aws::AwsContext::load(&cfg.aws).await;
    let store: Arc<dyn LeaseStore> = Arc::new(crate::aws::lease::DynamoLeases::new(
        ctx,
        cfg.ha.account.clone(),
        table,
    ));
    let leases = Leases::new(store, owner_id(), cfg.ha.lease_ttl, clock);
    tracing::info!(table = %table, owner = leases.owner(), ttl = %crate::config::duration::format(cfg.ha.lease_ttl), "rotations take a per-secret lease");
    Some(Arc::new(Ha::new(leases)))
}
