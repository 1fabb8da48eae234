//! `plan [--json]`: per secret, last rotated, next due, overdue by, window and consumers,
//! sorted by due time. Read-only.

use crate::clock::Clock;
use crate::config::{duration, Config};
use crate::due::due_times;
use crate::schedule::overdue_by;
use chrono::{DateTime, SecondsFormat, Utc};

#[derive(serde::Serialize)]
struct Row {
    name: String,
    secret_id: String,
    last_rotated: Option<String>,
    next_due: Option<String>,
    overdue_seconds: Option<u64>,
    every: String,
    window: Option<String>,
    consumers: Vec<String>,
    error: Option<String>,
    #[serde(skip)]
    sort: Option<DateTime<Utc>>,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub async fn run(cfg: &Config, json: bool, clock: &dyn Clock) -> i32 {
    let (store, _) = super::aws_clients(cfg).await;
    let now = clock.now();
    let secrets: Vec<_> = cfg.secrets.iter().collect();
    let dues = due_times(&store, &secrets, now).await;

    let errors: Vec<_> = dues.iter().filter_map(|d| d.as_ref().err()).collect();
    if !secrets.is_empty() && errors.len() == secrets.len() {
        if let Some(e) = super::common_setup_error(errors.iter().copied()) {
            eprintln!("error: cannot reach Secrets Manager: {e}");
            return crate::exit::UNAVAILABLE;
        }
    }
    let mut rows: Vec<Row> = secrets
        .iter()
        .zip(dues)
        .map(|(s, d)| {
            let mut row = Row {
                name: s.name.to_string(),
                secret_id: s.secret.id.to_string(),
                last_rotated: None,
                next_due: None,
                overdue_seconds: None,
                every: duration::format(s.every),
                window: s.window.as_ref().map(|w| w.to_string()),
                consumers: s.redeploy.iter().map(|c| c.to_string()).collect(),
                error: None,
                sort: None,
            };
            match d {
                Ok(d) => {
                    row.last_rotated = d.last_rotated.map(ts);
                    row.next_due = Some(ts(d.due));
                    row.overdue_seconds = Some(overdue_by(d.due, now).as_secs());
                    row.sort = Some(d.due);
                }
                Err(e) => row.error = Some(e.to_string()),
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
    if json {
        match serde_json::to_string_pretty(&rows) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("error: {e}"),
        }
    } else {
        print_table(&rows);
    }
    if failed > 0 {
        eprintln!("error: {failed} secret(s) could not be read");
        crate::exit::FAILURE
    } else {
        crate::exit::OK
    }
}

fn print_table(rows: &[Row]) {
    let header = [
        "NAME",
        "LAST ROTATED",
        "NEXT DUE",
        "OVERDUE BY",
        "EVERY",
        "WINDOW",
        "CONSUMERS",
    ];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            let overdue = match r.overdue_seconds {
                Some(0) | None => "-".to_owned(),
                Some(s) => duration::format(std::time::Duration::from_secs(s)),
            };
            [
                r.name.clone(),
                r.last_rotated.clone().unwrap_or_else(|| {
                    if r.error.is_some() {
                        "?".into()
                    } else {
                        "never".into()
                    }
                }),
                r.next_due
                    .clone()
                    .unwrap_or_else(|| format!("error: {}", r.error.clone().unwrap_or_default())),
                overdue,
                r.every.clone(),
                r.window.clone().unwrap_or_else(|| "-".into()),
                if r.consumers.is_empty() {
                    "-".into()
                } else {
                    r.consumers.join(",")
                },
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for c in &cells {
        for (w, s) in widths.iter_mut().zip(c.iter()).take(6) {
            *w = (*w).max(s.chars().count());
        }
    }
    let line = |c: &[&str]| {
        let mut out = String::new();
        for (i, s) in c.iter().enumerate() {
            if i < 6 {
                out.push_str(&format!("{s:<w$}  ", w = widths[i]));
            } else {
                out.push_str(s);
            }
        }
        println!("{}", out.trim_end());
    };
    line(&header);
    for c in &cells {
        line(&c.iter().map(String::as_str).collect::<Vec<_>>());
    }
}
