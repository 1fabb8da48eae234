//! Slack (and Mattermost, Teams-style) incoming webhooks: `{"text": "..."}`, one readable
//! message per event. No emoji: the status word leads.

use rotator_core::notify::{Event, EventKind};
use std::fmt::Write;

/// The most unhealthy consumers listed (the rest are counted).
const MAX_CONSUMERS: usize = 10;

/// The message text for `ev`, escaped as Slack asks (`&`, `<`, `>`): an error text
/// can quote what someone wrote into a secret, and `<!channel>` or `<url|label>` in it
/// must not ping a channel or become a link.
pub fn text(ev: &Event) -> String {
    escape(&raw_text(ev))
}

fn escape(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    for c in t.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

fn raw_text(ev: &Event) -> String {
    let status = match ev.kind {
        EventKind::Started => "STARTED",
        EventKind::Succeeded => "SUCCEEDED",
        EventKind::Failed => "FAILED",
        EventKind::GroupHalted => "GROUP HALTED",
        EventKind::Overdue => "OVERDUE",
    };
    let mut t = format!("secret-rotator: {status}: secret {}", ev.secret);
    if ev.secret_id != ev.secret.as_str() {
        let _ = write!(t, " ({})", ev.secret_id);
    }
    if let Some(g) = &ev.group {
        let _ = write!(
            t,
            ", group {} stage {} of {}",
            g.group,
            g.stage + 1,
            g.stages
        );
        if let Some(n) = &g.next {
            let _ = write!(t, " (next: {n})");
        }
    }
    if ev.attempt > 1 {
        let _ = write!(t, ", attempt {}", ev.attempt);
    }
    if let Some(o) = ev.outcome {
        let _ = write!(t, "\nOutcome: {o}");
        if let Some(s) = ev.step {
            let _ = write!(t, " at step {s}");
        }
    }
    if let Some(v) = &ev.version {
        let _ = write!(t, "\nNew version: {v}");
    }
    if let Some(e) = &ev.error {
        let _ = write!(t, "\nError: {e}");
    }
    let unhealthy: Vec<_> = ev
        .consumers
        .iter()
        .filter(|c| !matches!(c.verdict, "stable" | "ok"))
        .collect();
    if !unhealthy.is_empty() {
        t.push_str("\nUnhealthy consumers:");
        for c in unhealthy.iter().take(MAX_CONSUMERS) {
            let _ = write!(t, "\n- {} ({}): {}", c.consumer, c.verdict, c.detail);
            if let Some(first) = c.events.first() {
                let _ = write!(t, "\n  ECS: {first}");
            }
        }
        if unhealthy.len() > MAX_CONSUMERS {
            let _ = write!(t, "\n- and {} more", unhealthy.len() - MAX_CONSUMERS);
        }
    }
    if let Some(a) = &ev.action {
        let _ = write!(t, "\nAction: {a}");
    }
    t
}

/// The request body.
pub fn body(ev: &Event) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "text": text(ev) })).unwrap_or_default()
}
