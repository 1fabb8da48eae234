//! Phase detection: where a rotation stands, decided from what the store returned and
//! nothing else (no local state survives a crash). Pure functions, so every case the
//! engine distinguishes has a unit test below.
//!
//! Three decisions, at the three moments the engine has read what they need:
//! - [`detect`], after DescribeSecret: versions and their stages, our `pending-version`
//!   and `deployed-version` tags, and what the caller expected (`replaces`, a fresh retry).
//! - [`foreign_takeover`], after ListSecretVersionIds, for a foreign AWSPENDING: its
//!   creation date against now.
//! - [`after_conflict`], when our client request token was already taken: DescribeSecret
//!   read again.

use super::RotationError;
use crate::ids::VersionId;
use crate::rotation::store::{SecretMeta, AWSCURRENT, AWSPENDING, AWSPREVIOUS};
use crate::rotation::token::{any_attempt_of, attempt_of};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// A foreign AWSPENDING younger than this may belong to a rotation running right now.
pub const FOREIGN_PENDING_GRACE: Duration = Duration::from_secs(3600);

/// What [`detect`] decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Detected {
    /// The caller expected to replace another AWSCURRENT version and nothing of ours is
    /// in flight: someone else rotated the secret already, nothing is done.
    AlreadyRotated { current: VersionId },
    /// Rotate (or resume) from `phase`; `current` is the AWSCURRENT version read.
    Rotate { current: VersionId, phase: Phase },
}

/// Where the stored state says this rotation stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Nothing of ours in flight: a new rotation (check consumers, create, ...).
    Fresh,
    /// Our pending version exists: resume at set with its stored value (it may already be
    /// set on the target). Recognised by the token derivation, or by the pending-version
    /// tag alone after AWSCURRENT changed underneath.
    Resume { version: VersionId },
    /// Our pending version exists but this is a retry after a failure whose target takes
    /// a fresh value: drop it and create a new one with token attempt `next_attempt`.
    Retry {
        version: VersionId,
        next_attempt: u32,
    },
    /// Our finish moved AWSCURRENT but did not remove AWSPENDING.
    FinishPending { version: VersionId },
    /// Our value is current, consumers were not confirmed stable on it.
    Deploy { version: VersionId },
    /// AWSPENDING on a version that is not ours: another tool's rotation, backed off from
    /// or taken over (see [`foreign_takeover`]).
    Foreign { version: VersionId },
}

/// What the caller expected to find: the daemon's view when it found the secret due.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Expected<'a> {
    /// The AWSCURRENT version the rotation is meant to replace.
    pub replaces: Option<&'a VersionId>,
    /// The secret was due only to finish a rotation whose value is already current (our
    /// AWSCURRENT, consumers not confirmed): with nothing left to finish, someone else
    /// finished it, and a fresh rotation would replace a value minutes old.
    pub resume_only: bool,
    /// This run retries a failure whose target wants a fresh value (see
    /// `target::fresh_value_on_retry`).
    pub fresh_retry: bool,
}

/// Decides the phase from DescribeSecret's answer and what the caller expected.
pub(crate) fn detect(meta: &SecretMeta, expected: Expected<'_>) -> Result<Detected, RotationError> {
    if meta.deleted {
        return Err(RotationError::Deleted);
    }
    let current = meta
        .version_with(AWSCURRENT)
        .cloned()
        .ok_or(RotationError::NoCurrent)?;
    let phase = match resume_point(meta, &current) {
        Phase::Fresh
            if expected.resume_only
                || expected
                    .replaces
                    .is_some_and(|replaces| *replaces != current) =>
        {
            return Ok(Detected::AlreadyRotated { current });
        }
        // A value a target refused once would likely be refused again.
        Phase::Resume { version } if expected.fresh_retry => {
            // The full search: a value refused many times has a late attempt number.
            let next_attempt = any_attempt_of(&meta.arn, &current, &version).map_or(0, |a| a + 1);
            Phase::Retry {
                version,
                next_attempt,
            }
        }
        phase => phase,
    };
    Ok(Detected::Rotate { current, phase })
}

/// The phase from the stages and our tags alone.
fn resume_point(meta: &SecretMeta, current: &VersionId) -> Phase {
    let pending = meta.version_with(AWSPENDING);
    // Our versions: the token derivation (while AWSCURRENT is the version it was
    // derived from), or the pending-version tag written before the put (which still
    // holds when someone changed AWSCURRENT during set/test).
    let marker = meta.pending_version_tag();
    let current_is_ours = marker.as_ref() == Some(current)
        || meta
            .version_with(AWSPREVIOUS)
            .is_some_and(|prev| attempt_of(&meta.arn, prev, current).is_some());
    match pending {
        // Only our own finish that stopped half-way; another tool's leftover label on
        // AWSCURRENT is not a rotation (finishing it would report an old value as new).
        Some(p) if p == current && current_is_ours => Phase::FinishPending { version: p.clone() },
        Some(p) if p == current => Phase::Fresh,
        Some(p) if attempt_of(&meta.arn, current, p).is_some() || marker.as_ref() == Some(p) => {
            Phase::Resume { version: p.clone() }
        }
        Some(p) => Phase::Foreign { version: p.clone() },
        None => {
            if current_is_ours && meta.deployed_version_tag().as_ref() != Some(current) {
                Phase::Deploy {
                    version: current.clone(),
                }
            } else {
                Phase::Fresh
            }
        }
    }
}

/// A foreign AWSPENDING created at `created` (None: unknown): taken over when older than
/// [`FOREIGN_PENDING_GRACE`] or of unknown age, else the rotation backs off. A creation
/// date in the future (clock skew) counts as brand new.
pub(crate) fn foreign_takeover(
    version: &VersionId,
    created: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), RotationError> {
    if let Some(created) = created {
        let age = (now - created).to_std().unwrap_or_default();
        if age < FOREIGN_PENDING_GRACE {
            return Err(RotationError::ForeignPending {
                version: version.clone(),
                age: crate::config::duration::format(Duration::from_secs(age.as_secs())),
            });
        }
    }
    Ok(())
}

/// What to do when the put of `token` found the token taken, from the secret read again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Conflict {
    /// AWSCURRENT is no longer the version we replace: another rotator finished while we
    /// generated; writing another pending version would start a second rotation.
    AlreadyRotated,
    /// The token carries AWSPENDING: a replica just wrote it; join that rotation.
    Join,
    /// An abandoned attempt holds the token: try the next one.
    NextAttempt,
}

pub(crate) fn after_conflict(now: &SecretMeta, current: &VersionId, token: &VersionId) -> Conflict {
    if now.version_with(AWSCURRENT) != Some(current) {
        Conflict::AlreadyRotated
    } else if now.version_with(AWSPENDING) == Some(token) {
        Conflict::Join
    } else {
        Conflict::NextAttempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SecretArn;
    use crate::rotation::store::{TAG_DEPLOYED_VERSION, TAG_PENDING_VERSION};
    use crate::rotation::token::token;
    use std::collections::BTreeMap;

    const ARN: &str = "arn:aws:secretsmanager:eu-west-1:111111111111:secret:db-AbCdEf";

    fn v(s: &str) -> VersionId {
        VersionId::from(s)
    }

    fn ours(replaces: &VersionId, attempt: u32) -> VersionId {
        token(&SecretArn::from(ARN), replaces, attempt)
    }

    /// A secret with these (version, stages) and tags.
    fn meta(versions: &[(&VersionId, &[&str])], tags: &[(&str, &VersionId)]) -> SecretMeta {
        SecretMeta {
            arn: SecretArn::from(ARN),
            name: "db".into(),
            versions: versions
                .iter()
                .map(|(id, st)| ((*id).clone(), st.iter().map(|s| s.to_string()).collect()))
                .collect(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_str().to_owned()))
                .collect::<BTreeMap<_, _>>(),
            rotation_enabled: false,
            deleted: false,
            last_changed: None,
        }
    }

    fn replacing(v: &VersionId) -> Expected<'_> {
        Expected {
            replaces: Some(v),
            ..Expected::default()
        }
    }

    fn rotate(m: &SecretMeta) -> Phase {
        phase_of(m, None, false)
    }

    fn phase_of(m: &SecretMeta, replaces: Option<&VersionId>, fresh_retry: bool) -> Phase {
        let expected = Expected {
            replaces,
            fresh_retry,
            ..Expected::default()
        };
        match detect(m, expected) {
            Ok(Detected::Rotate { phase, .. }) => phase,
            other => panic!("expected a phase, got {other:?}"),
        }
    }

    #[test]
    fn a_deleted_secret_fails_before_anything_else() {
        let mut m = meta(&[(&v("c"), &[AWSCURRENT])], &[]);
        m.deleted = true;
        assert!(matches!(
            detect(&m, Expected::default()),
            Err(RotationError::Deleted)
        ));
        m.versions.clear();
        assert!(matches!(
            detect(&m, Expected::default()),
            Err(RotationError::Deleted)
        ));
    }

    #[test]
    fn no_awscurrent_fails() {
        let m = meta(&[(&v("p"), &[AWSPENDING])], &[]);
        assert!(matches!(
            detect(&m, Expected::default()),
            Err(RotationError::NoCurrent)
        ));
        let m = meta(&[], &[]);
        assert!(matches!(
            detect(&m, Expected::default()),
            Err(RotationError::NoCurrent)
        ));
    }

    #[test]
    fn a_plain_current_version_is_a_fresh_rotation_replacing_it() {
        let m = meta(&[(&v("c"), &[AWSCURRENT]), (&v("o"), &[AWSPREVIOUS])], &[]);
        assert_eq!(
            detect(&m, Expected::default()).unwrap(),
            Detected::Rotate {
                current: v("c"),
                phase: Phase::Fresh
            }
        );
        // The expected version is current: still fresh.
        assert_eq!(phase_of(&m, Some(&v("c")), true), Phase::Fresh);
    }

    #[test]
    fn another_current_than_expected_is_already_rotated() {
        let m = meta(&[(&v("c2"), &[AWSCURRENT]), (&v("c"), &[AWSPREVIOUS])], &[]);
        assert_eq!(
            detect(&m, replacing(&v("c"))).unwrap(),
            Detected::AlreadyRotated { current: v("c2") }
        );
        // Also when the new current is a version of ours whose consumers are confirmed.
        let c2 = ours(&v("c"), 0);
        let m = meta(
            &[(&c2, &[AWSCURRENT]), (&v("c"), &[AWSPREVIOUS])],
            &[(TAG_DEPLOYED_VERSION, &c2)],
        );
        assert_eq!(
            detect(&m, replacing(&v("c"))).unwrap(),
            Detected::AlreadyRotated { current: c2 }
        );
    }

    #[test]
    fn unfinished_work_is_resumed_even_when_current_is_not_the_expected_version() {
        // Deploy: our value is current, consumers unconfirmed.
        let c2 = ours(&v("c"), 0);
        let m = meta(&[(&c2, &[AWSCURRENT]), (&v("c"), &[AWSPREVIOUS])], &[]);
        assert_eq!(
            phase_of(&m, Some(&v("c")), false),
            Phase::Deploy { version: c2 }
        );
        // Resume: our pending version (attempt 0 replacing c2).
        let p = ours(&v("c2"), 0);
        let m = meta(&[(&v("c2"), &[AWSCURRENT]), (&p, &[AWSPENDING])], &[]);
        assert_eq!(
            phase_of(&m, Some(&v("c")), false),
            Phase::Resume { version: p }
        );
        // Foreign: someone else's pending version.
        let m = meta(&[(&v("c2"), &[AWSCURRENT]), (&v("f"), &[AWSPENDING])], &[]);
        assert_eq!(
            phase_of(&m, Some(&v("c")), false),
            Phase::Foreign { version: v("f") }
        );
    }

    #[test]
    fn our_pending_version_by_token_is_resumed() {
        let p = ours(&v("c"), 3);
        let m = meta(&[(&v("c"), &[AWSCURRENT]), (&p, &[AWSPENDING])], &[]);
        assert_eq!(rotate(&m), Phase::Resume { version: p.clone() });
        // A retry whose target takes a fresh value drops it: next attempt 4.
        assert_eq!(
            phase_of(&m, None, true),
            Phase::Retry {
                version: p,
                next_attempt: 4
            }
        );
    }

    #[test]
    fn our_pending_version_by_tag_alone_is_resumed_after_current_changed() {
        // The token was derived from "c", but someone made "c2" current during set/test.
        let p = ours(&v("c"), 0);
        let m = meta(
            &[(&v("c2"), &[AWSCURRENT]), (&p, &[AWSPENDING])],
            &[(TAG_PENDING_VERSION, &p)],
        );
        assert_eq!(rotate(&m), Phase::Resume { version: p.clone() });
        // A fresh retry of it starts over at attempt 0 (the derivation does not know it).
        assert_eq!(
            phase_of(&m, None, true),
            Phase::Retry {
                version: p,
                next_attempt: 0
            }
        );
    }

    #[test]
    fn a_pending_version_that_is_not_ours_is_foreign_even_on_a_fresh_retry() {
        let m = meta(&[(&v("c"), &[AWSCURRENT]), (&v("f"), &[AWSPENDING])], &[]);
        assert_eq!(rotate(&m), Phase::Foreign { version: v("f") });
        assert_eq!(phase_of(&m, None, true), Phase::Foreign { version: v("f") });
        // Our token derived from another current version is not ours either.
        let stale = ours(&v("older"), 0);
        let m = meta(&[(&v("c"), &[AWSCURRENT]), (&stale, &[AWSPENDING])], &[]);
        assert_eq!(rotate(&m), Phase::Foreign { version: stale });
        // Nor is a version the tag names when another carries AWSPENDING.
        let m = meta(
            &[(&v("c"), &[AWSCURRENT]), (&v("f"), &[AWSPENDING])],
            &[(TAG_PENDING_VERSION, &v("gone"))],
        );
        assert_eq!(rotate(&m), Phase::Foreign { version: v("f") });
    }

    #[test]
    fn awspending_left_on_our_current_version_is_a_half_done_finish() {
        // Ours by the pending-version tag.
        let c2 = ours(&v("c"), 0);
        let m = meta(
            &[(&c2, &[AWSCURRENT, AWSPENDING]), (&v("c"), &[AWSPREVIOUS])],
            &[(TAG_PENDING_VERSION, &c2)],
        );
        assert_eq!(
            rotate(&m),
            Phase::FinishPending {
                version: c2.clone()
            }
        );
        // Ours by the token derivation from AWSPREVIOUS (no tag).
        let m = meta(
            &[(&c2, &[AWSCURRENT, AWSPENDING]), (&v("c"), &[AWSPREVIOUS])],
            &[],
        );
        assert_eq!(
            rotate(&m),
            Phase::FinishPending {
                version: c2.clone()
            }
        );
        // Neither replaces nor a fresh retry changes it.
        assert_eq!(
            phase_of(&m, Some(&v("c")), true),
            Phase::FinishPending { version: c2 }
        );
    }

    #[test]
    fn awspending_left_on_a_foreign_current_version_is_a_fresh_rotation() {
        let m = meta(
            &[
                (&v("c"), &[AWSCURRENT, AWSPENDING]),
                (&v("o"), &[AWSPREVIOUS]),
            ],
            &[],
        );
        assert_eq!(rotate(&m), Phase::Fresh);
        // ... and so, when another version was expected, already rotated.
        assert_eq!(
            detect(&m, replacing(&v("o"))).unwrap(),
            Detected::AlreadyRotated { current: v("c") }
        );
    }

    #[test]
    fn a_resume_only_run_finds_a_finished_rotation_already_rotated() {
        let c2 = ours(&v("c"), 0);
        let resume = Expected {
            replaces: Some(&c2),
            resume_only: true,
            ..Expected::default()
        };
        // Another replica confirmed the consumers since the caller's read: nothing is left.
        let done = meta(
            &[(&c2, &[AWSCURRENT]), (&v("c"), &[AWSPREVIOUS])],
            &[(TAG_DEPLOYED_VERSION, &c2)],
        );
        assert_eq!(
            detect(&done, resume).unwrap(),
            Detected::AlreadyRotated {
                current: c2.clone()
            }
        );
        // Not confirmed yet: the redeploy is still owed.
        let owed = meta(&[(&c2, &[AWSCURRENT]), (&v("c"), &[AWSPREVIOUS])], &[]);
        assert_eq!(
            detect(&owed, resume).unwrap(),
            Detected::Rotate {
                current: c2.clone(),
                phase: Phase::Deploy {
                    version: c2.clone()
                }
            }
        );
        // Half-way through finish: finished.
        let half = meta(
            &[(&c2, &[AWSCURRENT, AWSPENDING]), (&v("c"), &[AWSPREVIOUS])],
            &[],
        );
        assert_eq!(
            detect(&half, resume).unwrap(),
            Detected::Rotate {
                current: c2.clone(),
                phase: Phase::FinishPending { version: c2 }
            }
        );
    }

    #[test]
    fn our_current_version_without_a_matching_deployed_tag_is_redeployed() {
        let c2 = ours(&v("c"), 1);
        // Ours by derivation, no deployed tag.
        let m = meta(&[(&c2, &[AWSCURRENT]), (&v("c"), &[AWSPREVIOUS])], &[]);
        assert_eq!(
            rotate(&m),
            Phase::Deploy {
                version: c2.clone()
            }
        );
        // Ours by tag (no AWSPREVIOUS), deployed tag names the older version.
        let m = meta(
            &[(&c2, &[AWSCURRENT])],
            &[(TAG_PENDING_VERSION, &c2), (TAG_DEPLOYED_VERSION, &v("c"))],
        );
        assert_eq!(
            rotate(&m),
            Phase::Deploy {
                version: c2.clone()
            }
        );
        // A fresh retry changes nothing: there is no pending value to drop.
        assert_eq!(phase_of(&m, None, true), Phase::Deploy { version: c2 });
    }

    #[test]
    fn our_current_version_confirmed_deployed_is_done_so_a_new_rotation_is_fresh() {
        let c2 = ours(&v("c"), 0);
        let m = meta(
            &[(&c2, &[AWSCURRENT]), (&v("c"), &[AWSPREVIOUS])],
            &[(TAG_PENDING_VERSION, &c2), (TAG_DEPLOYED_VERSION, &c2)],
        );
        assert_eq!(rotate(&m), Phase::Fresh);
    }

    #[test]
    fn a_current_version_that_is_not_ours_needs_no_redeploy() {
        // No deployed tag, but nothing says the value is ours: someone else's rotation.
        let m = meta(&[(&v("c"), &[AWSCURRENT]), (&v("o"), &[AWSPREVIOUS])], &[]);
        assert_eq!(rotate(&m), Phase::Fresh);
        // A pending-version tag naming a version that does not exist (a crash between
        // the tag and the put) is harmless.
        let m = meta(
            &[(&v("c"), &[AWSCURRENT])],
            &[(TAG_PENDING_VERSION, &v("never-written"))],
        );
        assert_eq!(rotate(&m), Phase::Fresh);
    }

    #[test]
    fn a_foreign_pending_version_is_taken_over_only_once_old_or_of_unknown_age() {
        let now = DateTime::parse_from_rfc3339("2030-01-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let f = v("f");
        assert!(foreign_takeover(&f, None, now).is_ok());
        assert!(foreign_takeover(&f, Some(now - chrono::Duration::hours(2)), now).is_ok());
        assert!(foreign_takeover(&f, Some(now - chrono::Duration::seconds(3600)), now).is_ok());
        match foreign_takeover(&f, Some(now - chrono::Duration::seconds(3599)), now) {
            Err(RotationError::ForeignPending { version, age }) => {
                assert_eq!(version, f);
                assert_eq!(age, "59m 59s");
            }
            other => panic!("{other:?}"),
        }
        // A creation date in the future (clock skew): brand new, back off.
        match foreign_takeover(&f, Some(now + chrono::Duration::minutes(5)), now) {
            Err(RotationError::ForeignPending { age, .. }) => assert_eq!(age, "0s"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_taken_token_is_joined_skipped_or_means_already_rotated() {
        let tok = ours(&v("c"), 0);
        let m = meta(&[(&v("c"), &[AWSCURRENT]), (&tok, &[AWSPENDING])], &[]);
        assert_eq!(after_conflict(&m, &v("c"), &tok), Conflict::Join);
        // The token's version exists without AWSPENDING (an abandoned attempt).
        let m = meta(&[(&v("c"), &[AWSCURRENT]), (&tok, &[])], &[]);
        assert_eq!(after_conflict(&m, &v("c"), &tok), Conflict::NextAttempt);
        // Another version carries AWSPENDING.
        let m = meta(&[(&v("c"), &[AWSCURRENT]), (&v("f"), &[AWSPENDING])], &[]);
        assert_eq!(after_conflict(&m, &v("c"), &tok), Conflict::NextAttempt);
        // AWSCURRENT moved (even onto our token), or is gone: already rotated.
        let m = meta(&[(&tok, &[AWSCURRENT]), (&v("c"), &[AWSPREVIOUS])], &[]);
        assert_eq!(after_conflict(&m, &v("c"), &tok), Conflict::AlreadyRotated);
        let m = meta(&[(&tok, &[AWSPENDING])], &[]);
        assert_eq!(after_conflict(&m, &v("c"), &tok), Conflict::AlreadyRotated);
    }
}
