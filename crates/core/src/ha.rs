//! More than one replica (`[ha]`, docs/ha.md): every rotation runs under its secret's
//! lease. This module is the wiring between the configuration, the lease table and the
//! engine; the protocol is `rotation::lease`; the binary connects the lease table.

use crate::config::SecretConfig;
use crate::error::{AwsError, ErrorClass};
use crate::random::{OsRandom, Random};
use crate::rotation::deploy::Deployer;
use crate::rotation::lease::fence::{self, is_lease_lost, lease_lost};
use crate::rotation::lease::{LeaseError, Leases, Taken};
use crate::rotation::store::SecretStore;
use crate::rotation::target::TargetError;
use crate::rotation::{Engine, Observer, Outcome, Report, RotateOptions, RotationError};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// This replica's leases.
pub struct Ha {
    leases: Leases,
    /// Spreads the retry of a busy secret (the OS; a seeded source in the simulation).
    random: Arc<dyn Random>,
}

/// How a leased rotation went.
#[derive(Debug)]
pub enum Leased {
    /// The lease was taken (or none is configured) and the rotation ran.
    Ran(Result<Report, RotationError>),
    /// Another replica holds the lease: nothing was done; try again after `retry_in`.
    Busy {
        holder: Option<String>,
        retry_in: Duration,
    },
}

impl Ha {
    pub fn new(leases: Leases) -> Self {
        Self {
            leases,
            random: Arc::new(OsRandom),
        }
    }

    /// The source of the retry spread (default: the OS).
    pub fn with_random(mut self, random: Arc<dyn Random>) -> Self {
        self.random = random;
        self
    }

    pub fn leases(&self) -> &Leases {
        &self.leases
    }

    /// When to try a busy secret again: about half a ttl, spread so that replicas do not
    /// come back in step.
    fn retry_delay(&self, key: &str) -> Duration {
        let ttl = self.leases.ttl();
        let frac = self
            .random
            .fraction(&format!("lease-retry:{key}"))
            .map_or(0.5, |f| f.clamp(0.0, 1.0));
        ttl / 2 + (ttl / 4).mul_f64(frac)
    }
}

/// The lease key of a secret: its region (when configured) and `secret_id` as written,
/// so every replica running the same configuration names it the same way.
pub fn lease_key(cfg: &SecretConfig) -> String {
    match cfg.secret.account.region() {
        Some(r) => format!("{}:{}", r.as_str(), cfg.secret.id.as_str()),
        None => cfg.secret.id.as_str().to_owned(),
    }
}

/// Rotates `cfg` under its lease when `ha` is set (a dry run needs none).
///
/// `recheck` (the daemon): once the lease is ours, the due time is read again and the
/// rotation replaces what is current *now*: the previous holder may just have finished
/// it, and acting on what was read before the lease would rotate or redeploy twice. It
/// lists the secrets to read: `cfg`, and for a group stage its whole group (a stage's
/// due time is its turn in the group, not its own interval).
pub async fn rotate<S: SecretStore, D: Deployer>(
    ha: Option<&Ha>,
    engine: &Engine<S, D>,
    cfg: &SecretConfig,
    mut opts: RotateOptions,
    obs: &dyn Observer,
    recheck: Option<&[&SecretConfig]>,
) -> Leased {
    let Some(ha) = ha.filter(|_| !opts.dry_run) else {
        return Leased::Ran(engine.rotate(cfg, opts, obs).await);
    };
    let key = lease_key(cfg);
    let guard = match ha.leases.acquire(&key).await {
        Ok(Taken::Ours(g)) => g,
        Ok(Taken::Busy { holder }) => {
            engine.telemetry.lease_contended(&cfg.name);
            let retry_in = ha.retry_delay(&key);
            tracing::info!(
                secret = %cfg.name,
                holder = holder.as_deref().unwrap_or("unknown"),
                retry_in = %crate::config::duration::format(retry_in),
                "another replica holds this secret's lease; not starting"
            );
            return Leased::Busy { holder, retry_in };
        }
        Err(e) => {
            return Leased::Ran(Err(RotationError::Aws {
                step: crate::rotation::Step::Start,
                source: table_error(e),
            }))
        }
    };
    let fence = guard.fence();
    tracing::debug!(secret = %cfg.name, lease_version = fence.record().version, "lease taken");
    let run = async {
        if let Some(secrets) = recheck {
            let now = engine.clock.now();
            match crate::group::due_of(&engine.store, secrets, cfg, now).await {
                Some(Ok(d)) if d.due > now || d.group_wait => {
                    tracing::info!(secret = %cfg.name, "another replica finished this rotation; nothing to do");
                    return Ok(already_rotated(cfg, d.current));
                }
                Some(Ok(d)) => {
                    opts.replaces = d.current;
                    opts.resume_only = d.status.resume_only();
                }
                Some(Err(e)) => {
                    return Err(RotationError::Aws {
                        step: crate::rotation::Step::Start,
                        source: e,
                    })
                }
                None => {}
            }
        }
        engine.rotate(cfg, opts, obs).await
    };
    // The rotation stops where it is the moment the lease lapses (a running command is
    // killed, no SDK retry goes out); each write also checks before it starts.
    let r = tokio::select! {
        biased;
        r = fence::scope(fence.clone(), run) => r,
        why = fence.lost() => Err(RotationError::Aws {
            step: crate::rotation::Step::Start,
            source: lease_lost("rotation", &why),
        }),
    };
    let r = match r {
        Err(e) => match (as_lease_lost(e), fence.check_local()) {
            (Ok(lost), _) => Err(lost),
            (Err(e), Ok(())) => Err(e),
            // Whatever failed, the lease is gone: that is what the operator must see, and
            // the retry must not treat it as a target refusing the value.
            (Err(e), Err(why)) => Err(RotationError::Aws {
                step: e.step(),
                source: lease_lost("rotation", &format!("{why}; then: {e}")),
            }),
        },
        ok => ok,
    };
    if let Err(RotationError::Aws { source, .. }) = &r {
        if is_lease_lost(source) {
            engine.telemetry.lease_lost(&cfg.name);
        }
    }
    match guard.release().await {
        Ok(()) | Err(LeaseError::Lost { .. }) => {}
        Err(e) => {
            tracing::warn!(secret = %cfg.name, error = %e, "cannot release the lease; it expires on its own")
        }
    }
    Leased::Ran(r)
}

/// A fenced write's refusal, wherever the engine wrapped it, as a plain AWS error (so the
/// scheduler does not read it as a target refusing the value).
fn as_lease_lost(e: RotationError) -> Result<RotationError, RotationError> {
    match e {
        RotationError::Aws { step, source } if is_lease_lost(&source) => {
            Ok(RotationError::Aws { step, source })
        }
        RotationError::Target {
            step,
            source: TargetError::Aws(source),
        } if is_lease_lost(&source) => Ok(RotationError::Aws { step, source }),
        other => Err(other),
    }
}

fn table_error(e: LeaseError) -> AwsError {
    match e {
        LeaseError::Store(e) => e,
        other => AwsError::new(
            ErrorClass::Other,
            "UpdateItem",
            "LeaseTable",
            other.to_string(),
        ),
    }
}

fn already_rotated(cfg: &SecretConfig, current: Option<crate::ids::VersionId>) -> Report {
    Report {
        secret: cfg.name.clone(),
        outcome: Outcome::AlreadyRotated,
        version: current,
        previous: None,
        resumed: None,
        services: BTreeMap::new(),
        commands: BTreeMap::new(),
        plan: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::ids::{Region, SecretId, SecretRef};
    use crate::rotation::lease::memory::MemoryLeases;

    struct Fixed(f64);
    impl Random for Fixed {
        fn fraction(&self, _purpose: &str) -> Option<f64> {
            Some(self.0)
        }
    }

    fn ha(frac: f64) -> Ha {
        let clock = ManualClock::new(chrono::Utc::now());
        let leases = Leases::new(
            Arc::new(MemoryLeases::new()),
            "replica-a",
            Duration::from_secs(60),
            Arc::new(clock),
        );
        Ha::new(leases).with_random(Arc::new(Fixed(frac)))
    }

    #[test]
    fn a_busy_secret_is_tried_again_after_half_to_three_quarters_of_a_ttl() {
        assert_eq!(ha(0.0).retry_delay("k"), Duration::from_secs(30));
        assert_eq!(ha(0.5).retry_delay("k"), Duration::from_millis(37_500));
        assert_eq!(ha(1.0).retry_delay("k"), Duration::from_secs(45));
    }

    #[test]
    fn lease_keys_name_the_region_and_secret_id() {
        let mut cfg = crate::config::test_secret("db", "app/db");
        assert_eq!(lease_key(&cfg), "app/db");
        cfg.secret = SecretRef {
            id: SecretId::from("app/db"),
            account: crate::ids::Account::new(Some(Region::from("eu-west-1")), None),
            store: Default::default(),
        };
        assert_eq!(lease_key(&cfg), "eu-west-1:app/db");
    }

    /// A fenced write refused inside a target step is a lost lease (an AWS error, so the
    /// retry keeps the value); any other AWS error of a target stays the target's.
    #[test]
    fn only_a_fence_refusal_inside_a_target_becomes_a_lost_lease() {
        use crate::error::{AwsError, ErrorClass};
        use crate::rotation::lease::fence::LEASE_LOST;
        use crate::rotation::Step;
        let aws = |code: &str| AwsError::new(ErrorClass::Other, "UpdateAccessKey", code, "x");
        let in_target = |code: &str| RotationError::Target {
            step: Step::Set,
            source: TargetError::Aws(aws(code)),
        };
        assert!(matches!(
            as_lease_lost(in_target(LEASE_LOST)),
            Ok(RotationError::Aws {
                step: Step::Set,
                ..
            })
        ));
        assert!(matches!(
            as_lease_lost(in_target("ThrottlingException")),
            Err(RotationError::Target {
                step: Step::Set,
                ..
            })
        ));
        assert!(matches!(
            as_lease_lost(RotationError::Aws {
                step: Step::Finish,
                source: aws(LEASE_LOST)
            }),
            Ok(RotationError::Aws {
                step: Step::Finish,
                ..
            })
        ));
        assert!(as_lease_lost(RotationError::Aws {
            step: Step::Finish,
            source: aws("ThrottlingException")
        })
        .is_err());
    }
}
