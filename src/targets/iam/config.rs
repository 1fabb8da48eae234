//! The `iam-access-key` table: which IAM user, how long a deactivated key is kept.

use crate::config::{Target, TargetKind, TargetTable, DURATION_EXPECTED};
use serde::Deserialize;
use std::time::Duration;
use toml::Spanned;

/// `target = { kind = "iam-access-key", user, delete_after }`.
pub struct IamAccessKey;

/// The `iam-access-key` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIam {
    user: Option<Spanned<String>>,
    delete_after: Option<Spanned<String>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IamTarget {
    pub user: String,
    pub delete_after: Duration,
}

impl TargetKind for IamAccessKey {
    const NAME: &'static str = "iam-access-key";
    type Raw = RawIam;
    const MAKES_VALUE: bool = true;

    fn expects(key: &str, _element: bool) -> Option<String> {
        (key == "delete_after").then(|| DURATION_EXPECTED.into())
    }

    fn parse(&self, raw: RawIam, t: &mut TargetTable<'_>) -> Option<Target> {
        let user = match &raw.user {
            Some(u) if valid_iam_user(u.get_ref()) => u.get_ref().clone(),
            Some(u) => {
                t.error(
                    u.span(),
                    "user",
                    format!(
                        "\"{}\" is not an IAM user name (1 to 64 of A-Z a-z 0-9 + = , . @ _ -)",
                        u.get_ref()
                    ),
                );
                String::new()
            }
            None => {
                t.error(t.span(), "user", "target kind \"iam-access-key\" needs `user` (the IAM user whose key is rotated)");
                String::new()
            }
        };
        let delete_after = match &raw.delete_after {
            None => Duration::from_secs(86_400),
            Some(x) => t.duration("delete_after", x, Duration::ZERO, 90 * DAY)?,
        };
        Some(Target::new(IamTarget { user, delete_after }))
    }
}

const DAY: Duration = Duration::from_secs(86_400);

fn valid_iam_user(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}
