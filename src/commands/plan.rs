//! `plan [--json] [--wide]`: per secret, its status, next due time, last rotation, window
//! and consumers, sorted by due time. Read-only.
//!
//! The table fits 80 columns by default (name, status, next due, interval; a window's next
//! opening on its own line, in UTC and in the window's time zone); `--wide` adds every
//! column. Errors never go into a cell: they are numbered notes below the table.

use crate::clock::Clock;
use crate::config::GroupConfig;
use crate::config::{duration, Config, SecretConfig};
use crate::due::DueInfo;
use crate::error::AwsError;
use crate::schedule::{next_opening, opening_containing, overdue_by};
use chrono::{DateTime, SecondsFormat, Utc};
use rotator_core::group::{GroupView, StageState};
use std::collections::HashMap;
use std::time::Duration;

/// A secret due longer than this has not been picked up: a running daemon starts a due
/// secret within minutes (start-up spreads overdue ones out, never by an hour).
const OVERDUE_AFTER: Duration = Duration::from_secs(3600);

/// What an operator should read first about a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// Not due yet.
    Ok,
    /// Due now; a running daemon picks it up.
    Due,
    /// Due for longer than [`OVERDUE_AFTER`]: no daemon rotated it.
    Overdue(Duration),
    /// Its state could not be read (the error is a numbered note).
    Unreadable,
    /// A rotation of ours stopped before the new value became current: due now, as a
    /// resume (the same pending value, never a second one).
    Unfinished,
    /// The new value is AWSCURRENT but the consumers were not confirmed stable on it
    /// (a rollback, a crash or a stop during the wait): the redeploy is still owed.
    RedeployPending,
    /// Due (for `overdue`), but its window is closed: it starts when the window opens.
    OutsideWindow {
        until: DateTime<Utc>,
        overdue: Duration,
    },
}

impl Status {
    /// The stable value for JSON output and scripts.
    pub fn label(&self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Due => "due",
            Status::Overdue(_) => "overdue",
            Status::Unreadable => "unreadable",
            Status::Unfinished => "unfinished",
            Status::RedeployPending => "redeploy_pending",
            Status::OutsideWindow { .. } => "outside_window",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Overdue(by) => write!(f, "overdue {}", coarse(*by)),
            Status::OutsideWindow { until, .. } => {
                write!(f, "outside window until {} UTC", short(*until))
            }
            Status::Unfinished => f.write_str("unfinished rotation"),
            Status::RedeployPending => f.write_str("redeploy pending"),
            other => f.write_str(other.label()),
        }
    }
}

/// The one place that turns a secret's due information into its status. Extend it here
/// (e.g. an unfinished rotation, a redeploy pending) and `plan` shows it everywhere.
pub fn status(cfg: &SecretConfig, due: Result<&DueInfo, &AwsError>, now: DateTime<Utc>) -> Status {
    let d = match due {
        Err(_) => return Status::Unreadable,
        Ok(d) => d,
    };
    // The stored state first: what is owed from an interrupted rotation outranks dates.
    // (A redeploy may finish outside the window; a pending value waits for it.)
    match d.status {
        crate::due::DueStatus::Unfinished(u) if u.value_is_current() => {
            return Status::RedeployPending
        }
        crate::due::DueStatus::Unfinished(_) => return Status::Unfinished,
        _ => {}
    }
    if d.due > now {
        return Status::Ok;
    }
    let by = overdue_by(d.due, now);
    if let Some(w) = &cfg.window {
        if opening_containing(w, now).is_none() {
            if let Some(until) = next_opening(w, now) {
                return Status::OutsideWindow { until, overdue: by };
            }
        }
    }
    if by >= OVERDUE_AFTER {
        Status::Overdue(by)
    } else {
        Status::Due
    }
}

#[derive(serde::Serialize)]
struct WindowOpening {
    utc: String,
    local: String,
    timezone: String,
}

#[derive(serde::Serialize)]
struct Row {
    name: String,
    secret_id: String,
    status: &'static str,
    last_rotated: Option<String>,
    next_due: Option<String>,
    overdue_seconds: Option<u64>,
    every: String,
    every_seconds: u64,
    window: Option<String>,
    /// The window opening that matters now: the one the next rotation starts in.
    window_opens: Option<WindowOpening>,
    consumers: Vec<String>,
    /// The target kind (`none`, `postgres`, `mysql`, ...): who learns the value first.
    target: &'static str,
    error: Option<String>,
    /// The `[[group]]` stage this secret is, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<GroupStage>,
    #[serde(skip)]
    state: Status,
    #[serde(skip)]
    sort: Option<DateTime<Utc>>,
    /// A group's one row in the table: its status in words and one line per stage.
    #[serde(skip)]
    group_lines: Option<(String, Vec<String>)>,
}

#[derive(serde::Serialize)]
struct GroupStage {
    name: String,
    /// 1-based.
    stage: usize,
    stages: usize,
    /// done, in_progress, due, waiting, unknown (`group NAME status` says more).
    state: &'static str,
    held: bool,
    expected_start: Option<String>,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `2026-02-03 02:00`: minutes are enough to read a schedule.
fn short(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

/// The largest unit only (`370d`, `5h`): enough to say how late.
fn coarse(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s >= 86_400 => format!("{}d", s / 86_400),
        s if s >= 3_600 => format!("{}h", s / 3_600),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// The opening the next rotation starts in: the one at the due time, or, when the secret
/// is already due, the one open now or the next.
fn relevant_opening(cfg: &SecretConfig, d: &DueInfo, now: DateTime<Utc>) -> Option<WindowOpening> {
    let w = cfg.window.as_deref()?;
    let at = d.due.max(now);
    let open = opening_containing(w, at).or_else(|| next_opening(w, at))?;
    let local = open.with_timezone(&w.timezone);
    Some(WindowOpening {
        utc: ts(open),
        local: local.format("%Y-%m-%dT%H:%M:%S%:z").to_string(),
        timezone: w.timezone.to_string(),
    })
}

pub async fn run(cfg: &Config, json: bool, wide: bool, clock: &dyn Clock) -> i32 {
    let ctx = match super::connect(cfg).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (store, _) = super::clients(cfg, ctx);
    let now = clock.now();
    let secrets: Vec<&crate::config::SecretConfig> =
        cfg.secrets.iter().map(|s| s.as_ref()).collect();
    let (dues, views) = super::group::read(&store, &secrets, now).await;

    let errors: Vec<_> = dues.iter().filter_map(|d| d.as_ref().err()).collect();
    if !secrets.is_empty() && errors.len() == secrets.len() {
        if let Some(e) = super::common_setup_error(errors.iter().copied()) {
            eprintln!("error: cannot reach Secrets Manager: {e}");
            return super::common_failure_code(e);
        }
    }
    let mut rows: Vec<Row> = secrets
        .iter()
        .zip(dues)
        .map(|(s, d)| {
            let state = status(s, d.as_ref(), now);
            let mut row = Row {
                name: s.name.to_string(),
                secret_id: s.secret.id.to_string(),
                status: state.label(),
                last_rotated: None,
                next_due: None,
                overdue_seconds: None,
                every: duration::format(s.every.get()),
                every_seconds: s.every.get().as_secs(),
                window: s.window.as_ref().map(|w| w.to_string()),
                window_opens: None,
                consumers: s.redeploy.iter().map(|c| c.to_string()).collect(),
                target: s.target.kind(),
                error: None,
                group: None,
                state,
                sort: None,
                group_lines: None,
            };
            match d {
                Ok(d) => {
                    row.last_rotated = d.last_rotated.map(ts);
                    row.next_due = Some(ts(d.due));
                    row.overdue_seconds = Some(overdue_by(d.due, now).as_secs());
                    row.window_opens = relevant_opening(s, &d, now);
                    row.sort = Some(d.due);
                }
                Err(e) => row.error = Some(e.to_string()),
            }
            if let Some((g, view, stage)) = group_of(s, &views) {
                let expected = view.expected.get(stage).copied().flatten();
                if row.error.is_none() {
                    // A stage whose turn it is not (waiting, done, held) is not due,
                    // whatever its own interval says; its expected start is shown.
                    let turn = matches!(
                        view.stages[stage],
                        StageState::Due { .. } | StageState::InProgress { .. }
                    ) && view.held.is_none();
                    if !turn && !matches!(row.state, Status::Unfinished | Status::RedeployPending) {
                        row.state = Status::Ok;
                        row.status = row.state.label();
                        row.overdue_seconds = Some(0);
                    }
                    row.next_due = expected.map(ts);
                    row.sort = expected.or(row.sort);
                }
                row.group = Some(GroupStage {
                    name: g.name.to_string(),
                    stage: stage + 1,
                    stages: g.members.len(),
                    state: view.stages[stage].label(),
                    held: view.held.is_some(),
                    expected_start: expected.map(ts),
                });
            }
            row
        })
        .collect();
    // Due first; errors last so they are not lost among the rows.
    rows.sort_by(|a, b| match (a.sort, b.sort) {
        (Some(x), Some(y)) => x.cmp(&y).then_with(|| a.name.cmp(&b.name)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.name.cmp(&b.name),
    });
    let failed = rows.iter().filter(|r| r.error.is_some()).count();
    if !json {
        rows = group_rows(cfg, rows, &views, now);
    }
    if json {
        match serde_json::to_string_pretty(&rows) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("error: {e}"),
        }
    } else {
        print!("{}", table(&rows, wide));
    }
    if failed > 0 {
        eprintln!(
            "error: {failed} secret(s) could not be read{}",
            if json {
                ""
            } else {
                " (see the notes below the table)"
            }
        );
        crate::exit::FAILURE
    } else {
        crate::exit::OK
    }
}

/// Aligned columns; the last column is not padded.
fn render(header: &[&str], cells: &[Vec<String>], extra: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for c in cells {
        for (w, s) in widths.iter_mut().zip(c) {
            *w = (*w).max(s.chars().count());
        }
    }
    let line = |c: &[String]| {
        let mut out = String::new();
        for (i, s) in c.iter().enumerate() {
            if i + 1 < c.len() {
                out.push_str(&format!("{s:<w$}  ", w = widths[i]));
            } else {
                out.push_str(s);
            }
        }
        format!("{}\n", out.trim_end())
    };
    let mut out = line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    for (c, more) in cells.iter().zip(extra) {
        out.push_str(&line(c));
        for m in more {
            out.push_str(&format!("  {m}\n"));
        }
    }
    out
}

/// Words wrapped at `width`, continuation lines indented by `indent`.
fn wrap(text: &str, width: usize, indent: usize) -> String {
    let mut out = String::new();
    let mut col = 0;
    for word in text.split_whitespace() {
        let len = word.chars().count();
        if col > indent && col + 1 + len > width {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            col = indent;
        } else if col > 0 {
            out.push(' ');
            col += 1;
        }
        out.push_str(word);
        col += len;
    }
    out
}

/// The secret's group, its view, and the secret's stage in it.
fn group_of<'a>(
    s: &'a SecretConfig,
    views: &'a HashMap<String, GroupView>,
) -> Option<(&'a GroupConfig, &'a GroupView, usize)> {
    let g = s.group.as_deref()?;
    let view = views.get(g.name.as_str())?;
    let stage = g.stage_of(&s.name)?;
    Some((g, view, stage))
}

/// For the table: each group's members folded into one row (its current stage's state
/// and expected start), with one line per stage below it.
fn group_rows(
    cfg: &Config,
    rows: Vec<Row>,
    views: &HashMap<String, GroupView>,
    now: DateTime<Utc>,
) -> Vec<Row> {
    let (members, mut out): (Vec<Row>, Vec<Row>) =
        rows.into_iter().partition(|r| r.group.is_some());
    for g in &cfg.groups {
        let Some(view) = views.get(g.name.as_str()) else {
            continue;
        };
        let mine: Vec<&Row> = g
            .members
            .iter()
            .filter_map(|m| members.iter().find(|r| r.name == m.as_str()))
            .collect();
        let secrets: Vec<&SecretConfig> = g
            .members
            .iter()
            .filter_map(|m| cfg.secret(m.as_str()))
            .collect();
        let focus = view.current.unwrap_or(0);
        let words = match (&view.held, view.current) {
            (Some(_), _) => "held".to_owned(),
            (None, Some(c)) => format!(
                "stage {}/{} {}",
                c + 1,
                g.members.len(),
                super::group::describe(view, c, &secrets)
            ),
            (None, None)
                if view
                    .expected
                    .first()
                    .copied()
                    .flatten()
                    .is_some_and(|t| t <= now) =>
            {
                format!("stage 1/{} due (a new cycle)", g.members.len())
            }
            (None, None) => "cycle complete".to_owned(),
        };
        let lines = mine
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let when = view
                    .expected
                    .get(i)
                    .copied()
                    .flatten()
                    .map_or("-".to_owned(), |t| {
                        if t <= now && i >= focus {
                            "now".to_owned()
                        } else {
                            short(t)
                        }
                    });
                format!(
                    "{}. {:<22} {:<26} {when}",
                    i + 1,
                    r.name,
                    super::group::describe(view, i, &secrets)
                )
            })
            .collect();
        let Some(first) = mine.first() else {
            continue;
        };
        let error = mine.iter().find_map(|r| r.error.clone());
        let mut row = Row {
            name: format!("{} (group)", g.name),
            secret_id: "-".into(),
            status: "group",
            last_rotated: None,
            next_due: None,
            overdue_seconds: None,
            every: first.every.clone(),
            every_seconds: first.every_seconds,
            window: None,
            window_opens: None,
            consumers: mine.iter().flat_map(|r| r.consumers.clone()).collect(),
            target: first.target,
            error,
            group: None,
            state: Status::Ok,
            sort: view.expected.get(focus).copied().flatten(),
            group_lines: Some((words, lines)),
        };
        if row.error.is_some() {
            row.sort = None;
        }
        out.push(row);
    }
    out.sort_by(|a, b| match (a.sort, b.sort) {
        (Some(x), Some(y)) => x.cmp(&y).then_with(|| a.name.cmp(&b.name)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.name.cmp(&b.name),
    });
    out
}

fn table(rows: &[Row], wide: bool) -> String {
    let mut notes: Vec<String> = Vec::new();
    let mut cells = Vec::new();
    let mut extra = Vec::new();
    for r in rows {
        let status = match &r.error {
            Some(_) if r.group_lines.is_some() => {
                notes.push(format!(
                    "[{}] {}: a stage could not be read (see `secret-rotator group` status)",
                    notes.len() + 1,
                    r.name
                ));
                format!("unreadable [{}]", notes.len())
            }
            None if r.group_lines.is_some() => r
                .group_lines
                .as_ref()
                .map(|(w, _)| w.clone())
                .unwrap_or_default(),
            Some(e) => {
                notes.push(format!("[{}] {}: {e}", notes.len() + 1, r.name));
                format!("unreadable [{}]", notes.len())
            }
            // Overdue first; the window's opening is on the line below.
            None => match r.state {
                Status::OutsideWindow { overdue, .. } if overdue >= OVERDUE_AFTER => {
                    Status::Overdue(overdue).to_string()
                }
                Status::OutsideWindow { .. } => "outside window".into(),
                ref other => other.to_string(),
            },
        };
        let next_due = r.sort.map(short).unwrap_or_else(|| "-".to_owned());
        let mut more = Vec::new();
        if let Some((_, lines)) = &r.group_lines {
            more.extend(lines.iter().cloned());
        }
        if let Some(w) = &r.window_opens {
            more.push(window_line(w, &r.state));
        }
        if wide {
            let last = match (&r.last_rotated, &r.error) {
                (Some(l), _) => l.replace('T', " ").trim_end_matches('Z').to_owned(),
                (None, Some(_)) => "?".into(),
                (None, None) => "never".into(),
            };
            let overdue = match r.overdue_seconds {
                Some(0) | None => "-".to_owned(),
                Some(s) => duration::format(Duration::from_secs(s)),
            };
            cells.push(vec![
                r.name.clone(),
                status,
                next_due,
                overdue,
                last,
                r.every.clone(),
                r.window.clone().unwrap_or_else(|| "-".into()),
                r.secret_id.clone(),
                r.target.to_owned(),
                if r.consumers.is_empty() {
                    "-".into()
                } else {
                    r.consumers.join(",")
                },
            ]);
        } else {
            cells.push(vec![r.name.clone(), status, next_due, r.every.clone()]);
        }
        extra.push(more);
    }
    let header: &[&str] = if wide {
        &[
            "NAME",
            "STATUS",
            "NEXT DUE (UTC)",
            "OVERDUE BY",
            "LAST ROTATED (UTC)",
            "EVERY",
            "WINDOW",
            "SECRET ID",
            "TARGET",
            "CONSUMERS",
        ]
    } else {
        &["NAME", "STATUS", "NEXT DUE (UTC)", "EVERY"]
    };
    let mut out = render(header, &cells, &extra);
    if !notes.is_empty() {
        out.push('\n');
        for n in &notes {
            out.push_str(&wrap(n, 80, 4));
            out.push('\n');
        }
    }
    out
}

/// `window opens 2026-02-03 02:00 UTC (03:00 CET, Europe/Paris)`: the time a person in
/// the window's zone would recognise, beside UTC.
fn window_line(w: &WindowOpening, state: &Status) -> String {
    let utc = w.utc.replace('T', " ");
    let utc = utc.get(..16).unwrap_or(&utc);
    let local = DateTime::parse_from_rfc3339(&w.local)
        .ok()
        .and_then(|t| {
            w.timezone
                .parse::<chrono_tz::Tz>()
                .ok()
                .map(|tz| t.with_timezone(&tz))
        })
        .map(|t| {
            if t.format("%Y-%m-%d").to_string() == utc.get(..10).unwrap_or(utc) {
                t.format("%H:%M %Z").to_string()
            } else {
                t.format("%Y-%m-%d %H:%M %Z").to_string()
            }
        })
        .unwrap_or_else(|| w.local.clone());
    let verb = match state {
        Status::Due | Status::Overdue(_) => "window open since",
        Status::OutsideWindow { .. } => "window closed; opens",
        _ => "window opens",
    };
    format!("{verb} {utc} UTC ({local}, {})", w.timezone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn due(t: DateTime<Utc>) -> DueInfo {
        DueInfo {
            last_rotated: None,
            verified: None,
            due: t,
            current: None,
            status: crate::due::DueStatus::Scheduled,
            tag_problem: None,
            hold: None,
            group_wait: false,
            group_owed: false,
            group_expected: None,
        }
    }

    #[test]
    fn status_from_due_info() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.toml"),
            "[[secret]]\nname = \"plain\"\nsecret_id = \"a\"\nevery = \"30d\"\n\n[[secret]]\nname = \"windowed\"\nsecret_id = \"b\"\nevery = \"30d\"\nwindow = { cron = \"0 2 * * TUE\", duration = \"3h\" }\n",
        )
        .unwrap();
        let cfg = crate::config::load_dir(dir.path()).unwrap();
        let plain = cfg.secret("plain").unwrap();
        let windowed = cfg.secret("windowed").unwrap();
        // Saturday noon: the Tuesday 02:00-05:00 window is closed.
        let sat = at(2026, 12, 5, 12, 0);
        let s = |c, t: DateTime<Utc>, now| status(c, Ok(&due(t)), now);
        assert_eq!(s(plain, sat + chrono::Duration::days(1), sat), Status::Ok);
        assert_eq!(
            s(plain, sat - chrono::Duration::minutes(10), sat),
            Status::Due
        );
        assert_eq!(
            s(plain, sat - chrono::Duration::days(2), sat),
            Status::Overdue(Duration::from_secs(2 * 86_400))
        );
        assert_eq!(
            s(plain, sat - chrono::Duration::days(2), sat).to_string(),
            "overdue 2d"
        );
        assert_eq!(
            s(windowed, sat - chrono::Duration::days(2), sat),
            Status::OutsideWindow {
                until: at(2026, 12, 8, 2, 0),
                overdue: Duration::from_secs(2 * 86_400)
            }
        );
        let tue = at(2026, 12, 8, 3, 0);
        assert_eq!(
            s(windowed, sat - chrono::Duration::days(2), tue),
            Status::Overdue(Duration::from_secs(4 * 86_400 + 15 * 3_600))
        );
        let err = AwsError::new(
            crate::error::ErrorClass::AccessDenied,
            "DescribeSecret",
            "AccessDeniedException",
            "no",
        );
        assert_eq!(status(plain, Err(&err), sat), Status::Unreadable);
        // The stored state outranks dates: owed work shows even when not "due" by time.
        let mut owed = due(sat + chrono::Duration::days(20));
        owed.status = crate::due::DueStatus::Unfinished(crate::due::Unfinished::Redeploy);
        assert_eq!(status(plain, Ok(&owed), sat), Status::RedeployPending);
        assert_eq!(Status::RedeployPending.to_string(), "redeploy pending");
        owed.status = crate::due::DueStatus::Unfinished(crate::due::Unfinished::Finish);
        assert_eq!(status(windowed, Ok(&owed), sat), Status::RedeployPending);
        owed.status = crate::due::DueStatus::Unfinished(crate::due::Unfinished::Pending);
        assert_eq!(status(plain, Ok(&owed), sat), Status::Unfinished);
    }

    #[test]
    fn wraps_long_notes_within_80_columns() {
        let text = format!(
            "[1] billing: DescribeSecret: AccessDeniedException: {}",
            "word ".repeat(40)
        );
        for l in wrap(&text, 80, 4).lines() {
            assert!(l.chars().count() <= 80, "{l}");
        }
    }

    #[test]
    fn coarse_keeps_the_largest_unit() {
        assert_eq!(coarse(Duration::from_secs(400 * 86_400 + 5)), "400d");
        assert_eq!(coarse(Duration::from_secs(7_200)), "2h");
    }
}
