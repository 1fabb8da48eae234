//! `[[group]]`: secrets rotated one after another. Each table is checked as it is read;
//! whether its members exist (they may be in a later file) and belong to one group only
//! is checked once every file is read.

use super::super::error::{ConfigError, Location, SourceMap};
use super::super::raw::{RawGroup, S};
use super::super::{GroupConfig, SecretConfig};
use super::{valid_name, Validator, DAY};
use crate::ids::{GroupName, SecretName};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

/// A `[[group]]` as read, with where each member was named (for errors at finish).
pub(in crate::config) struct PendingGroup {
    pub group: GroupConfig,
    pub member_at: Vec<Location>,
}

/// Longer soaks than this are a typo ("30d" for "30m") more often than a plan.
const MAX_SOAK: Duration = Duration::from_secs(30 * 86_400);

impl Validator<'_> {
    pub fn group(
        &mut self,
        src: &SourceMap<'_>,
        span: Range<usize>,
        raw: RawGroup,
        dropped: &[String],
    ) {
        let before = self.errors.len();
        let label = match &raw.name {
            Some(n) => format!("group[{}]", n.get_ref()),
            None => "group".to_owned(),
        };
        let k = |key: &str| format!("{label}.{key}");
        let name = match &raw.name {
            None => {
                if !dropped.iter().any(|d| d == "name") {
                    self.err(src, span.clone(), &label, "missing required key `name` (a stable name for the group, used by `secret-rotator group NAME` and in metrics)");
                }
                None
            }
            Some(n) if !valid_name(n.get_ref()) => {
                let msg = format!(
                    "\"{}\" is not a valid group name (1 to 128 of A-Z a-z 0-9 _ . -)",
                    n.get_ref()
                );
                self.err(src, n.span(), &k("name"), msg);
                None
            }
            Some(n) => {
                if let Some(first) = self.group_names.get(n.get_ref()).cloned() {
                    let msg = format!("duplicate group name \"{}\" (also defined at {first}; names must be unique)", n.get_ref());
                    self.err(src, n.span(), &k("name"), msg);
                } else {
                    self.group_names
                        .insert(n.get_ref().clone(), src.location(n.span().start));
                }
                Some(GroupName::new(n.get_ref().as_str()))
            }
        };
        let mut members = Vec::new();
        let mut member_at = Vec::new();
        match &raw.secrets {
            None => {
                if !dropped.iter().any(|d| d == "secrets") {
                    self.err(src, span.clone(), &k("secrets"), "missing required key `secrets` (the [[secret]] names, in the order they rotate, e.g. [\"api-db-dev\", \"api-db-staging\", \"api-db-prod\"])");
                }
            }
            Some(list) => {
                let mut seen: HashMap<&str, Range<usize>> = HashMap::new();
                for m in list.get_ref() {
                    let s: &S<String> = m;
                    if seen.insert(s.get_ref().as_str(), s.span()).is_some() {
                        let msg = format!(
                            "\"{}\" is listed twice (a secret is one stage of a group)",
                            s.get_ref()
                        );
                        self.err(src, s.span(), &k("secrets"), msg);
                        continue;
                    }
                    members.push(SecretName::new(s.get_ref().as_str()));
                    member_at.push(src.location(s.span().start));
                }
                if list.get_ref().len() < 2 {
                    self.err(
                        src,
                        list.span(),
                        &k("secrets"),
                        "a group needs at least two secrets (they rotate one after another)",
                    );
                }
            }
        }
        let soak = match &raw.soak {
            None => Duration::ZERO,
            Some(s) => self
                .duration(src, &k("soak"), s, Duration::ZERO, MAX_SOAK)
                .unwrap_or_default(),
        };
        let _ = DAY;
        if self.errors.len() != before {
            return;
        }
        if let Some(name) = name {
            self.groups.push(PendingGroup {
                group: GroupConfig {
                    name,
                    members,
                    soak,
                    origin: src.location(span.start),
                },
                member_at,
            });
        }
    }

    /// Checks the members against the secrets read (every file), and points each member
    /// at its group. Returns the groups, in file order.
    pub(super) fn finish_groups(
        &mut self,
        secrets: &mut [Arc<SecretConfig>],
    ) -> Vec<Arc<GroupConfig>> {
        let index: HashMap<SecretName, usize> = secrets
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), i))
            .collect();
        let mut claimed: HashMap<SecretName, GroupName> = HashMap::new();
        let mut out = Vec::new();
        for PendingGroup { group, member_at } in std::mem::take(&mut self.groups) {
            let label = format!("group[{}].secrets", group.name);
            let mut ok = true;
            for (m, at) in group.members.iter().zip(&member_at) {
                if !index.contains_key(m) {
                    self.errors.push(ConfigError {
                        location: at.clone(),
                        key: label.clone(),
                        message: format!("no [[secret]] is named \"{m}\" (a group lists the `name` of each [[secret]] it rotates)"),
                    });
                    ok = false;
                } else if let Some(other) = claimed.get(m) {
                    self.errors.push(ConfigError {
                        location: at.clone(),
                        key: label.clone(),
                        message: format!("\"{m}\" is already a stage of group \"{other}\" (a secret belongs to one group at most)"),
                    });
                    ok = false;
                } else {
                    claimed.insert(m.clone(), group.name.clone());
                }
            }
            if !ok {
                continue;
            }
            let group = Arc::new(group);
            for m in &group.members {
                if let Some(&i) = index.get(m) {
                    Arc::make_mut(&mut secrets[i]).group = Some(group.clone());
                }
            }
            out.push(group);
        }
        out
    }
}
