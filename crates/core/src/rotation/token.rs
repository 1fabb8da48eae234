//! Deterministic client request tokens.
//!
//! The token of a new version is a UUID v5 of (secret ARN, the AWSCURRENT version it
//! replaces, attempt number). A retry, a restart or a second daemon working on the same
//! rotation computes the same token and so lands on the same version instead of a second
//! one; after finish AWSCURRENT changes, so the next rotation gets new tokens. The same
//! derivation lets any daemon recognise a pending (or current) version as one of ours.
//!
//! Recognition by derivation covers the first [`MAX_ATTEMPTS`] attempts (it runs for every
//! secret at start-up, so it stays cheap); later attempts are ours by the
//! `pending-version` tag written before each put. Attempt numbers have no upper bound.

use crate::ids::{SecretArn, VersionId};
use uuid::Uuid;

/// Attempts recognised by derivation ([`attempt_of`]); also the most tokens one run tries
/// when each is taken.
pub const MAX_ATTEMPTS: u32 = 64;
/// How far [`any_attempt_of`] searches: values refused by a target for months of hourly
/// retries. A later attempt is not found there; the next run then starts from attempt 0
/// and walks forward (64 tokens a run) instead of jumping.
pub const MAX_TOKEN_ATTEMPTS: u32 = 4096;

const NAMESPACE: Uuid = Uuid::from_u128(0x5ec2_e7a0_7a70_4c1e_9b1d_2f0c_a11e_d5e1);

pub fn token(arn: &SecretArn, replaces: &VersionId, attempt: u32) -> VersionId {
    let name = format!("{arn}\n{replaces}\n{attempt}");
    VersionId::new(Uuid::new_v5(&NAMESPACE, name.as_bytes()).to_string())
}

/// The attempt number if `candidate` is one of our tokens for replacing `replaces`.
pub fn attempt_of(arn: &SecretArn, replaces: &VersionId, candidate: &VersionId) -> Option<u32> {
    (0..MAX_ATTEMPTS).find(|&a| &token(arn, replaces, a) == candidate)
}

/// Like [`attempt_of`] over every attempt up to [`MAX_TOKEN_ATTEMPTS`] (thousands of
/// hashes: for a rotation's start, not for every secret).
pub fn any_attempt_of(arn: &SecretArn, replaces: &VersionId, candidate: &VersionId) -> Option<u32> {
    (0..MAX_TOKEN_ATTEMPTS).find(|&a| &token(arn, replaces, a) == candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_distinct() {
        let arn = SecretArn::from("arn:aws:secretsmanager:eu-west-1:111111111111:secret:a-AbCdEf");
        let cur = VersionId::from("v1");
        assert_eq!(token(&arn, &cur, 0), token(&arn, &cur, 0));
        assert_ne!(token(&arn, &cur, 0), token(&arn, &cur, 1));
        assert_ne!(token(&arn, &cur, 0), token(&arn, &VersionId::from("v2"), 0));
        assert_eq!(attempt_of(&arn, &cur, &token(&arn, &cur, 7)), Some(7));
        assert_eq!(attempt_of(&arn, &cur, &VersionId::from("foreign")), None);
        // Beyond the cheap recognition, only the full search finds an attempt.
        let late = token(&arn, &cur, MAX_ATTEMPTS + 5);
        assert_eq!(attempt_of(&arn, &cur, &late), None);
        assert_eq!(any_attempt_of(&arn, &cur, &late), Some(MAX_ATTEMPTS + 5));
        // UUID-shaped, as Secrets Manager requires (32 to 64 characters).
        assert_eq!(token(&arn, &cur, 0).as_str().len(), 36);
    }
}
