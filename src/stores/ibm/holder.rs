//! The pending holder: where a rotation's pending value waits, since IBM Secrets Manager
//! has no pending stage. An `arbitrary` secret named `<secret name>-rotator-pending`, in
//! the rotated secret's secret group, whose payload is the pending value (for
//! `username_password` the password) and whose `custom_metadata` is
//! `{"secret_rotator_token": <token>, "secret_rotator_for": <secret id>}`.
//!
//! IBM names are 2-256 alphanumerics, dashes and dots, starting and ending with an
//! alphanumeric, and unique per secret type in the instance: the suffix keeps a valid
//! name valid (it ends in a letter); a secret name longer than 240 characters has no
//! holder name and cannot be rotated.

use super::client::{IbmClient, ListQuery};
use super::types::SecretMeta;
use crate::error::{AwsError, ErrorClass};

pub(super) const SUFFIX: &str = "-rotator-pending";
/// Metadata key of the pending token (on the holder, and on a version we create).
pub(super) const KEY_TOKEN: &str = "secret_rotator_token";
/// Metadata key naming the secret a holder belongs to.
pub(super) const KEY_FOR: &str = "secret_rotator_for";
const MAX_NAME: usize = 256;
/// A search for one name returns a page or two; more is not a holder search any more.
const MAX_PAGES: usize = 20;

/// The holder's name for a secret's name.
pub(super) fn name(op: &'static str, secret_name: &str) -> Result<String, AwsError> {
    let n = format!("{secret_name}{SUFFIX}");
    if n.len() > MAX_NAME {
        return Err(AwsError::new(
            ErrorClass::Invalid,
            op,
            "NameTooLong",
            format!(
                "the pending holder's name would exceed IBM's {MAX_NAME} characters: rename the secret to at most {} characters",
                MAX_NAME - SUFFIX.len()
            ),
        ));
    }
    Ok(n)
}

/// A found holder: its metadata and the token it carries.
#[derive(Clone, Debug)]
pub(super) struct Holder {
    pub meta: SecretMeta,
    pub token: Option<String>,
}

/// The holder of `real`, if there is one: a search for its name in the secret's group
/// (IBM's `search` matches substrings of names), then an exact match. An `arbitrary`
/// secret of that name that names another secret is not ours to touch: Conflict.
pub(super) async fn find(
    client: &IbmClient,
    base: &str,
    op: &'static str,
    real: &SecretMeta,
) -> Result<Option<Holder>, AwsError> {
    // A name too long for a holder has none (and `put_pending` says why).
    let Ok(wanted) = name(op, &real.name) else {
        return Ok(None);
    };
    let mut q = ListQuery {
        offset: 0,
        limit: 200,
        search: Some(&wanted),
        groups: vec![real.group_id.as_str()],
        secret_types: vec!["arbitrary"],
    };
    for _ in 0..MAX_PAGES {
        let page = client.list_secrets(base, &q).await?;
        if let Some(m) = page.secrets.into_iter().find(|m| m.name == wanted) {
            // An empty token is a spent holder (its token taken off when the key could
            // not delete it): nothing pending.
            let token = m
                .custom(KEY_TOKEN)
                .filter(|t| !t.is_empty())
                .map(str::to_owned);
            // A spent holder of ours may have served a secret since deleted and made
            // again under the same name: free to reuse. Anything else named like a
            // holder is not ours.
            let spent_of_ours = m.custom(KEY_FOR).is_some() && token.is_none();
            if m.custom(KEY_FOR) != Some(real.id.as_str()) && !spent_of_ours {
                return Err(AwsError::new(
                    ErrorClass::Conflict,
                    op,
                    "ForeignPendingHolder",
                    format!(
                        "the secret {} named {wanted} is not the pending holder of secret {}: rename or delete it",
                        m.id, real.id
                    ),
                ));
            }
            return Ok(Some(Holder { meta: m, token }));
        }
        match page.next_offset {
            Some(next) if next > q.offset => q.offset = next,
            _ => return Ok(None),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_get_the_suffix_within_ibm_limits() {
        assert_eq!(name("x", "db.prod").unwrap(), "db.prod-rotator-pending");
        assert!(name("x", &"a".repeat(240)).is_ok());
        let e = name("x", &"a".repeat(241)).unwrap_err();
        assert_eq!(e.class, ErrorClass::Invalid);
    }
}
