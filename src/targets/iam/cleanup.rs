//! Making room for a new key (IAM allows two per user) without ever deleting a key that
//! may be in use elsewhere: the pure decision, from the keys IAM lists and our tags.

use super::api::AccessKeyInfo;
use super::iam_error;
use crate::rotation::target::TargetError;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::time::Duration;

/// `<AccessKeyId>@<RFC 3339>`: the key this target deactivated last, and when.
pub const TAG_IAM_DEACTIVATED: &str = "secret-rotator:iam-deactivated";
/// `<RFC 3339>` written just before each `CreateAccessKey`, `<AccessKeyId>@<RFC 3339>`
/// right after: recognises the key of an attempt that was dropped or died before its
/// pending version became current.
pub const TAG_IAM_CREATING: &str = "secret-rotator:iam-creating";

pub(super) fn parse_deactivated(
    tags: &BTreeMap<String, String>,
) -> Option<(String, DateTime<Utc>)> {
    let (id, at) = tags.get(TAG_IAM_DEACTIVATED)?.split_once('@')?;
    let at = DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc);
    Some((id.to_owned(), at))
}

/// The creating tag: the key id (once created) and the time.
pub(super) fn parse_creating(
    tags: &BTreeMap<String, String>,
) -> (Option<String>, Option<DateTime<Utc>>) {
    let Some(raw) = tags.get(TAG_IAM_CREATING) else {
        return (None, None);
    };
    let (id, at) = match raw.split_once('@') {
        Some((id, at)) => (Some(id.to_owned()).filter(|i| !i.is_empty()), at),
        None => (None, raw.as_str()),
    };
    let at = DateTime::parse_from_rfc3339(at)
        .ok()
        .map(|t| t.with_timezone(&Utc));
    (id, at)
}

pub(super) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A key to delete before creating the new one, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deletion {
    pub id: String,
    pub reason: String,
    /// Deleted inside its grace period to make room: worth a warning.
    pub early: bool,
}

/// Which keys to delete so that `CreateAccessKey` has room (pure; see the module docs).
pub fn plan_cleanup(
    user: &str,
    keys: &[AccessKeyInfo],
    current_id: Option<&str>,
    tags: &BTreeMap<String, String>,
    now: DateTime<Utc>,
    delete_after: Duration,
) -> Result<Vec<Deletion>, TargetError> {
    let deactivated = parse_deactivated(tags);
    let (created_id, _) = parse_creating(tags);
    let grace = chrono::Duration::from_std(delete_after).unwrap_or(chrono::Duration::MAX);
    let mut out = Vec::new();
    let mut remaining: Vec<&AccessKeyInfo> = Vec::new();
    for k in keys {
        if Some(k.id.as_str()) == current_id {
            remaining.push(k);
            continue;
        }
        if !k.active {
            if let Some((id, at)) = &deactivated {
                if *id == k.id && now - *at >= grace {
                    out.push(Deletion {
                        id: k.id.clone(),
                        reason: format!("inactive since {}, past delete_after", rfc3339(*at)),
                        early: false,
                    });
                    continue;
                }
            }
        } else {
            // Only a key named by id, younger than a working current key: whoever can
            // write the tag must not be able to condemn a key in use elsewhere, or the
            // user's last working key.
            let named = created_id.as_deref() == Some(k.id.as_str());
            let current = keys
                .iter()
                .find(|c| Some(c.id.as_str()) == current_id && c.active);
            let younger = match (current.and_then(|c| c.created), k.created) {
                (Some(cur), Some(created)) => created > cur,
                _ => false,
            };
            if named && younger {
                out.push(Deletion {
                    id: k.id.clone(),
                    reason: "active, referenced by no version: left by an interrupted rotation"
                        .into(),
                    early: false,
                });
                continue;
            }
        }
        remaining.push(k);
    }
    // Room for one more key: delete inactive keys that are not current, oldest first.
    let mut inactive: Vec<&AccessKeyInfo> = remaining
        .iter()
        .copied()
        .filter(|k| !k.active && Some(k.id.as_str()) != current_id)
        .collect();
    inactive.sort_by_key(|k| k.created);
    let mut inactive = inactive.into_iter();
    while remaining.len() >= 2 {
        let Some(k) = inactive.next() else { break };
        out.push(Deletion {
            id: k.id.clone(),
            reason: "inactive and not AWSCURRENT's; IAM allows two keys per user".into(),
            early: deactivated
                .as_ref()
                .is_some_and(|(id, at)| *id == k.id && now - *at < grace),
        });
        remaining.retain(|r| r.id != k.id);
    }
    if remaining.len() >= 2 {
        let others: Vec<String> = remaining
            .iter()
            .filter(|k| Some(k.id.as_str()) != current_id)
            .map(|k| {
                format!(
                    "{} ({})",
                    k.id,
                    if k.active { "active" } else { "inactive" }
                )
            })
            .collect();
        return Err(iam_error(format!(
            "IAM user {user} already has two access keys and IAM allows no third: {} {} not referenced by this secret's AWSCURRENT and may be in use elsewhere; deactivate or delete it, then retry",
            others.join(", "),
            if others.len() == 1 { "is" } else { "are" },
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }
    fn key(id: &str, active: bool, created: &str) -> AccessKeyInfo {
        AccessKeyInfo {
            id: id.into(),
            active,
            created: Some(t(created)),
        }
    }
    const DAY: Duration = Duration::from_secs(86_400);
    const NOW: &str = "2030-01-10T00:00:00Z";

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn one_key_needs_nothing() {
        let keys = [key("AKIACUR", true, "2030-01-01T00:00:00Z")];
        let d = plan_cleanup("u", &keys, Some("AKIACUR"), &tags(&[]), t(NOW), DAY).unwrap();
        assert!(d.is_empty());
    }

    #[test]
    fn inactive_old_key_is_deleted_to_make_room_and_flagged_early_inside_grace() {
        let keys = [
            key("AKIAOLD", false, "2029-12-01T00:00:00Z"),
            key("AKIACUR", true, "2030-01-01T00:00:00Z"),
        ];
        let tg = tags(&[(TAG_IAM_DEACTIVATED, "AKIAOLD@2030-01-09T12:00:00Z")]);
        let d = plan_cleanup("u", &keys, Some("AKIACUR"), &tg, t(NOW), DAY).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].id, "AKIAOLD");
        assert!(d[0].early);
        // Past the grace period: deleted, not early.
        let tg = tags(&[(TAG_IAM_DEACTIVATED, "AKIAOLD@2030-01-08T00:00:00Z")]);
        let d = plan_cleanup("u", &keys, Some("AKIACUR"), &tg, t(NOW), DAY).unwrap();
        assert_eq!(d.len(), 1);
        assert!(!d[0].early);
    }

    #[test]
    fn expired_inactive_key_is_deleted_even_with_room() {
        // The current key was deleted by hand; the old one is inactive past its grace.
        let keys = [key("AKIAOLD", false, "2029-12-01T00:00:00Z")];
        let tg = tags(&[(TAG_IAM_DEACTIVATED, "AKIAOLD@2030-01-01T00:00:00Z")]);
        let d = plan_cleanup("u", &keys, Some("AKIACUR"), &tg, t(NOW), DAY).unwrap();
        assert_eq!(
            d.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
            ["AKIAOLD"]
        );
        // Inside the grace period and with room: kept.
        let d = plan_cleanup("u", &keys, Some("AKIACUR"), &tg, t(NOW), 30 * DAY).unwrap();
        assert!(d.is_empty());
    }

    #[test]
    fn a_forged_creating_time_deletes_no_active_key() {
        // The tag holds only a time (written by anyone who can tag the secret), and a
        // key created just after it: not proof enough to delete a working key.
        let keys = [
            key("AKIACUR", true, "2030-01-01T00:00:00Z"),
            key("AKIAOTHER", true, "2030-01-09T23:00:03Z"),
        ];
        let tg = tags(&[(TAG_IAM_CREATING, "2030-01-09T23:00:00Z")]);
        let e = plan_cleanup("u", &keys, Some("AKIACUR"), &tg, t(NOW), DAY).unwrap_err();
        assert!(e.to_string().contains("AKIAOTHER (active)"), "{e}");
    }

    #[test]
    fn a_forged_creating_tag_cannot_delete_an_active_key_older_than_the_current_one() {
        let keys = [
            key("AKIACUR", true, "2030-01-05T00:00:00Z"),
            key("AKIAINUSE", true, "2029-06-01T00:00:00Z"),
        ];
        let tg = tags(&[(TAG_IAM_CREATING, "AKIAINUSE@2030-01-05T00:00:00Z")]);
        assert!(plan_cleanup("u", &keys, Some("AKIACUR"), &tg, t(NOW), DAY).is_err());
    }

    #[test]
    fn a_forged_value_and_tag_cannot_delete_the_last_working_key() {
        // AWSCURRENT rewritten to name a key that does not exist; the tag names the real,
        // only active key.
        let keys = [
            key("AKIAREAL", true, "2030-01-05T00:00:00Z"),
            key("AKIAOLD", false, "2029-06-01T00:00:00Z"),
        ];
        let tg = tags(&[(TAG_IAM_CREATING, "AKIAREAL@2030-01-05T00:00:00Z")]);
        let d = plan_cleanup("u", &keys, Some("AKIABOGUS"), &tg, t(NOW), DAY).unwrap();
        assert!(d.iter().all(|d| d.id != "AKIAREAL"), "{d:?}");
    }

    #[test]
    fn the_key_named_by_the_creating_tag_is_an_orphan_whenever_found() {
        let keys = [
            key("AKIACUR", true, "2030-01-01T00:00:00Z"),
            key("AKIADROPPED", true, "2030-01-02T00:00:00Z"),
        ];
        // Days later (a retry after a long backoff, or the next rotation).
        let tg = tags(&[(TAG_IAM_CREATING, "AKIADROPPED@2030-01-02T00:00:00Z")]);
        let d = plan_cleanup("u", &keys, Some("AKIACUR"), &tg, t(NOW), DAY).unwrap();
        assert_eq!(
            d.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
            ["AKIADROPPED"]
        );
        // The key named in the tag that became current is never deleted.
        let tg = tags(&[(TAG_IAM_CREATING, "AKIACUR@2030-01-01T00:00:00Z")]);
        let keys = [key("AKIACUR", true, "2030-01-01T00:00:00Z")];
        let d = plan_cleanup("u", &keys, Some("AKIACUR"), &tg, t(NOW), DAY).unwrap();
        assert!(d.is_empty());
    }

    #[test]
    fn two_active_keys_fail_clearly() {
        let keys = [
            key("AKIACUR", true, "2030-01-01T00:00:00Z"),
            key("AKIAHUMAN", true, "2029-06-01T00:00:00Z"),
        ];
        // A creating tag from long ago does not make the other key ours.
        let tg = tags(&[(TAG_IAM_CREATING, "2029-12-01T00:00:00Z")]);
        let e = plan_cleanup("svc-user", &keys, Some("AKIACUR"), &tg, t(NOW), DAY)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("svc-user") && e.contains("AKIAHUMAN (active)"),
            "{e}"
        );
    }

    #[test]
    fn current_key_is_never_deleted() {
        let keys = [
            key("AKIACUR", false, "2030-01-01T00:00:00Z"),
            key("AKIAOTHER", false, "2030-01-02T00:00:00Z"),
        ];
        let tg = tags(&[(TAG_IAM_DEACTIVATED, "AKIACUR@2020-01-01T00:00:00Z")]);
        let d = plan_cleanup("u", &keys, Some("AKIACUR"), &tg, t(NOW), DAY).unwrap();
        assert_eq!(
            d.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
            ["AKIAOTHER"]
        );
    }
}
