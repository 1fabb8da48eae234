//! `group NAME status|hold|resume`: a `[[group]]`'s progress as its members' stored
//! state shows it, and the hold an operator puts on it. The hold is a tag on a member
//! secret (`secret-rotator:group-hold`), so every daemon replica and every host sees it,
//! and a restart keeps it; a running daemon reads it before any stage starts.

use crate::clock::Clock;
use crate::config::{Config, GroupConfig, SecretConfig};
use crate::due::DueInfo;
use crate::error::AwsError;
use crate::rotation::store::SecretStore;
use chrono::{DateTime, SecondsFormat, Utc};
use rotator_core::group::{self, GroupView, StageState, TAG_GROUP_HOLD};
use std::collections::HashMap;

/// What `group` does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Status { json: bool },
    Hold { reason: Option<String> },
    Resume,
}

/// Every secret's due information as its group allows, in `secrets` order, and each
/// group's view (for `plan` and `group status`).
pub async fn read<S: SecretStore>(
    store: &S,
    secrets: &[&SecretConfig],
    now: DateTime<Utc>,
) -> (Vec<Result<DueInfo, AwsError>>, HashMap<String, GroupView>) {
    let mut out: Vec<Option<Result<DueInfo, AwsError>>> = vec![None; secrets.len()];
    let mut views = HashMap::new();
    group::due_times_each(
        store,
        secrets,
        now,
        |i, r| out[i] = Some(r),
        |g, v| {
            views.insert(g.name.to_string(), v.clone());
        },
    )
    .await;
    let dues = out
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(crate::rotation::store::no_answer())))
        .collect();
    (dues, views)
}

pub async fn run(cfg: &Config, name: &str, action: Action, clock: &dyn Clock) -> i32 {
    let Some(g) = cfg.groups.iter().find(|g| g.name.as_str() == name) else {
        let known: Vec<&str> = cfg.groups.iter().map(|g| g.name.as_str()).collect();
        eprintln!(
            "error: no [[group]] is named \"{name}\" ({})",
            if known.is_empty() {
                "the configuration has no groups".to_owned()
            } else {
                format!("groups: {}", known.join(", "))
            }
        );
        return crate::exit::USAGE;
    };
    let ctx = match super::connect(cfg).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (store, _) = super::clients(cfg, ctx);
    let members: Vec<&SecretConfig> = g
        .members
        .iter()
        .filter_map(|m| cfg.secret(m.as_str()))
        .collect();
    let now = clock.now();
    let (dues, views) = read(&store, &members, now).await;
    let Some(view) = views.get(g.name.as_str()) else {
        eprintln!("error: group \"{name}\" could not be read");
        return crate::exit::FAILURE;
    };
    let unreadable: Vec<String> = members
        .iter()
        .zip(&dues)
        .filter_map(|(m, d)| d.as_ref().err().map(|e| format!("{}: {e}", m.name)))
        .collect();
    match action {
        Action::Status { json } => {
            if json {
                println!("{}", status_json(g, view, &members, &dues));
            } else {
                print!("{}", status_text(g, view, &members, &dues, now));
            }
            for u in &unreadable {
                eprintln!("error: cannot read {u}");
            }
            if unreadable.is_empty() {
                crate::exit::OK
            } else {
                crate::exit::FAILURE
            }
        }
        Action::Hold { reason } => {
            if let Some(h) = &view.held {
                println!("group {name} is already held ({h})");
                return crate::exit::OK;
            }
            let Some(first) = members.first() else {
                return crate::exit::FAILURE;
            };
            let value = hold_value("held", now, reason.as_deref());
            match store
                .tag(&first.secret, &[(TAG_GROUP_HOLD, value.clone())])
                .await
            {
                Ok(()) => {
                    println!("group {name} held ({value}); no stage starts until `secret-rotator group {name} resume` (a stage already in progress is finished)");
                    crate::exit::OK
                }
                Err(e) => {
                    eprintln!(
                        "error: cannot tag {} ({}): {e}; the group is NOT held",
                        first.name, first.secret.id
                    );
                    super::common_failure_code(&e)
                }
            }
        }
        Action::Resume => {
            let held: Vec<&SecretConfig> = members
                .iter()
                .zip(&dues)
                .filter(|(_, d)| d.as_ref().is_ok_and(|d| d.hold.is_some()))
                .map(|(m, _)| *m)
                .collect();
            if !unreadable.is_empty() {
                // A hold on a member that cannot be read can be neither seen nor lifted.
                for u in &unreadable {
                    eprintln!("error: cannot read {u}");
                }
                eprintln!("error: group {name} may still be held by a member that cannot be read; nothing was changed");
                return crate::exit::FAILURE;
            }
            if held.is_empty() {
                println!("group {name} is not held");
                return crate::exit::OK;
            }
            let value = hold_value("resumed", now, None);
            for m in held {
                if let Err(e) = store
                    .tag(&m.secret, &[(TAG_GROUP_HOLD, value.clone())])
                    .await
                {
                    eprintln!(
                        "error: cannot tag {} ({}): {e}; the group is still held",
                        m.name, m.secret.id
                    );
                    return super::common_failure_code(&e);
                }
            }
            println!("group {name} resumed; a running daemon notices within {} and starts the stage whose turn it is", crate::config::duration::format(group::RECHECK));
            crate::exit::OK
        }
    }
}

/// `held 2026-03-03T10:00:00Z reason`, in the characters every store accepts in a tag
/// value (AWS: letters, digits, spaces and `_ . : / = + - @`), at most 256.
fn hold_value(word: &str, now: DateTime<Utc>, reason: Option<&str>) -> String {
    let mut v = format!("{word} {}", now.to_rfc3339_opts(SecondsFormat::Secs, true));
    if let Some(r) = reason.map(str::trim).filter(|r| !r.is_empty()) {
        v.push(' ');
        v.extend(r.chars().map(|c| {
            if c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c) {
                c
            } else {
                '-'
            }
        }));
    }
    v.chars().take(256).collect()
}

fn day(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

/// One stage's state in words.
pub fn describe(view: &GroupView, stage: usize, members: &[&SecretConfig]) -> String {
    let name = |i: usize| {
        members
            .get(i)
            .map_or("?".to_owned(), |m| m.name.to_string())
    };
    match &view.stages[stage] {
        StageState::Done { .. } => "done this cycle".into(),
        StageState::InProgress { unfinished } => format!("in progress ({})", unfinished.describe()),
        StageState::Due { .. } if view.held.is_some() => "held".into(),
        // A complete cycle: the first stage's next rotation starts the next one.
        StageState::Due { .. } if view.current.is_none() => "next cycle".into(),
        StageState::Due { .. } => "due".into(),
        StageState::Waiting { on } => format!("waiting for {}", name(*on)),
        StageState::Unknown => "unreadable".into(),
    }
}

fn status_text(
    g: &GroupConfig,
    view: &GroupView,
    members: &[&SecretConfig],
    dues: &[Result<DueInfo, AwsError>],
    now: DateTime<Utc>,
) -> String {
    let mut out = format!(
        "group {}: {} stages, soak {}; {}; {}\n",
        g.name,
        g.members.len(),
        crate::config::duration::format(g.soak),
        match view.current {
            Some(c) => format!(
                "stage {} ({}) {}",
                c + 1,
                g.members[c],
                describe(view, c, members)
            ),
            None => "cycle complete".into(),
        },
        match &view.held {
            Some(h) => format!("HELD ({h})"),
            None => "not held".into(),
        }
    );
    out.push_str(&format!(
        "{:<6} {:<24} {:<28} {:<17} {}\n",
        "STAGE", "SECRET", "STATE", "LAST CONFIRMED", "EXPECTED START"
    ));
    for (i, m) in members.iter().enumerate() {
        let last = dues
            .get(i)
            .and_then(|d| d.as_ref().ok())
            .and_then(|d| d.verified)
            .map_or("-".to_owned(), day);
        let expected = match view.expected.get(i).copied().flatten() {
            Some(t)
                if matches!(view.stages[i], StageState::Done { .. })
                    && view.current.is_some_and(|c| i < c) =>
            {
                format!("{} (confirmed)", day(t))
            }
            Some(t) if t <= now => "now".to_owned(),
            Some(t) => day(t),
            None => "-".to_owned(),
        };
        out.push_str(&format!(
            "{:<6} {:<24} {:<28} {:<17} {}\n",
            i + 1,
            m.name,
            describe(view, i, members),
            last,
            expected
        ));
    }
    out
}

fn status_json(
    g: &GroupConfig,
    view: &GroupView,
    members: &[&SecretConfig],
    dues: &[Result<DueInfo, AwsError>],
) -> String {
    let ts = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let stages: Vec<serde_json::Value> = members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let d = dues.get(i).and_then(|d| d.as_ref().ok());
            serde_json::json!({
                "stage": i + 1,
                "secret": m.name.as_str(),
                "state": view.stages[i].label(),
                "description": describe(view, i, members),
                "last_confirmed": d.and_then(|d| d.verified).map(ts),
                "expected_start": view.expected.get(i).copied().flatten().map(ts),
                "error": dues.get(i).and_then(|d| d.as_ref().err()).map(|e| e.to_string()),
            })
        })
        .collect();
    let v = serde_json::json!({
        "group": g.name.as_str(),
        "soak_seconds": g.soak.as_secs(),
        "held": view.held,
        "current_stage": view.current.map(|c| c + 1),
        "stages": stages,
    });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hold_reason_is_kept_in_tag_safe_characters() {
        let now = DateTime::parse_from_rfc3339("2026-03-03T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            hold_value(
                "held",
                now,
                Some("  INC-42: prod DB migration (Ann's call)! ")
            ),
            "held 2026-03-03T10:00:00Z INC-42: prod DB migration -Ann-s call--"
        );
        assert!(group::is_hold(&hold_value("held", now, None)));
        assert!(!group::is_hold(&hold_value("resumed", now, None)));
        assert_eq!(hold_value("held", now, Some(&"x".repeat(400))).len(), 256);
    }
}
