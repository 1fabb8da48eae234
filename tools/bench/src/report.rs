//! Runs every scenario in a child process and writes BENCHMARKS.md.

use crate::servers::root;
use serde_json::Value;
use std::fmt::Write as _;

fn run(args: &[&str]) -> Value {
    eprintln!("bench: {}", args.join(" "));
    let exe = std::env::current_exe().expect("exe");
    let out = std::process::Command::new(exe)
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("scenario");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or("null");
    serde_json::from_str(last)
        .unwrap_or_else(|_| serde_json::json!({"error": format!("scenario failed: {}", stdout)}))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn pct(v: &[f64], p: f64) -> f64 {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn sh(cmd: &str) -> String {
    std::process::Command::new("sh")
        .args(["-c", cmd])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// The scenarios `BENCH_ONLY` can name, and the raw-result keys each fills.
const SCENARIOS: [(&str, &[&str]); 8] = [
    ("footprint", &["footprint"]),
    ("calls", &["calls"]),
    ("stable", &["stable"]),
    // Our side of section 3 is the daemon process of "startup".
    ("scale", &["scale_tcs"]),
    (
        "burst",
        &["burst8", "burst16", "burst32", "burst64", "burst_tcs"],
    ),
    ("plan", &["plan"]),
    ("shared", &["shared"]),
    ("startup", &["startup_base", "startup"]),
];

/// `max_concurrent_rotations` of the burst runs (keys `burst<c>`).
const BURST_CONCURRENCY: [&str; 4] = ["8", "16", "32", "64"];

/// Section 4: the burst at each concurrency, against its ideal drain, and the peer.
fn burst_section(md: &mut String, bursts: &[Value], tcs: &Value) {
    let _ = writeln!(md, "## 4. Burst: 1,000 secrets due at the same instant\n");
    let _ = writeln!(md, "In-memory store with 5 ms per call; no services to redeploy; `max_starts_per_minute` at its maximum (10,000) so that only the concurrency limits. Ideal drain: the store calls the rotations made × 5 ms ÷ concurrency (the due-time read after each rotation takes no slot). Drain: from the instant they are due until the scheduler has seen every rotation finish. \"Twice\": secrets holding more than one new value. The 5 ms are the OS's sleep on tokio's blocking pool (`Latency::precise`): a `tokio::time::sleep(5 ms)` lasts about 6 ms (1 ms timer ticks, rounded up), which alone put every drain at 1.22× its ideal (`bench burst-ours 1000 8 5 timer` shows it). Floor: the same number of waits in chains at the same concurrency with no scheduler around them, in the same process. tokio-cron-scheduler: 1,000 one-shot jobs at the same instant, each waiting as long as 6 calls.\n");
    let _ = writeln!(md, "What serialised the burst before (commit `b85fdc2`: 5.4 s at 8, 5.0 s at 64 against ideals of 3.75 s and 0.47 s) was the replica skew, not the loop: every due time got a random 0 to 5 s per secret so that replicas do not race for one lease, which released 1,000 secrets due at one instant over 5 s, a floor no concurrency could lower. The skew is now drawn only when several replicas may run (`[ha] lock_table` set or `replicas > 1`): a single daemon has no one to stagger against. In paused tokio time the scheduler drains a burst within 1.2× the ideal at 8 and at 64 (`a_burst_drains_in_about_the_ideal_time_at_any_concurrency`); drain ÷ floor is what the scheduler itself adds.\n");
    let _ = writeln!(
        md,
        "| | rotated / finished / twice | calls per rotation | drain | ideal | drain ÷ ideal | floor | drain ÷ floor |\n|---|---|---|---|---|---|---|---|"
    );
    for (c, b) in BURST_CONCURRENCY.iter().zip(bursts) {
        let _ = writeln!(
            md,
            "| secret-rotator, max_concurrent_rotations = {c} | {} / {} / {} | {:.2} | {:.2} s | {:.2} s | {:.2}× | {:.2} s | {:.2}× |",
            b["rotated"],
            b["finished"],
            b["twice"],
            f(&b["calls_per_rotation"]),
            f(&b["drain_secs"]),
            f(&b["ideal_secs"]),
            f(&b["ratio"]),
            f(&b["floor_secs"]),
            f(&b["ratio_floor"]),
        );
    }
    let _ = writeln!(
        md,
        "| tokio-cron-scheduler | {} / {} fired | | {:.1} s (stopped when nothing fired for 5 s) | | | | |\n",
        tcs["fired"],
        tcs["of"],
        f(&tcs["secs"])
    );
}

/// The raw results and their provenance ("DATE — commit `C`" per key) of the committed
/// BENCHMARKS.md, so that `BENCH_ONLY` reruns some scenarios and keeps the others' figures.
fn previous(
    md: &str,
) -> (
    serde_json::Map<String, Value>,
    serde_json::Map<String, Value>,
) {
    let raw = md
        .split("## Raw results")
        .nth(1)
        .and_then(|r| r.split("```json\n").nth(1))
        .and_then(|r| r.split("\n```").next())
        .and_then(|j| serde_json::from_str::<Value>(j).ok())
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    // Files from before provenance was recorded name one run in their header.
    let header = md
        .lines()
        .find_map(|l| l.strip_prefix("Generated by `scripts/bench` on "))
        .and_then(|l| l.split('.').next())
        .map(|l| l.split(';').next().unwrap_or(l).trim().to_owned());
    let mut prov = raw
        .get("provenance")
        .and_then(|p| p.as_object().cloned())
        .unwrap_or_default();
    for key in raw.keys() {
        if key != "provenance" && !prov.contains_key(key) {
            if let Some(h) = &header {
                prov.insert(key.clone(), Value::from(h.clone()));
            }
        }
    }
    (raw, prov)
}

pub async fn all() {
    let quick = std::env::var("BENCH_QUICK").is_ok();
    let idle = if quick { "10" } else { "60" };
    let big = if quick { "10000" } else { "100000" };
    let plan_n = if quick { "1000" } else { "10000" };
    let only: Option<Vec<String>> = std::env::var("BENCH_ONLY")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect());
    if let Some(o) = &only {
        if let Some(bad) = o
            .iter()
            .find(|n| !SCENARIOS.iter().any(|s| s.0 == n.as_str()))
        {
            eprintln!("bench: unknown scenario {bad} in BENCH_ONLY");
            std::process::exit(64);
        }
    }
    let selected = |name: &str| only.as_ref().is_none_or(|o| o.iter().any(|n| n == name));
    let path = root().join("BENCHMARKS.md");
    let (old_raw, old_prov) = previous(&std::fs::read_to_string(&path).unwrap_or_default());
    let stamp = format!(
        "{} — commit `{}`",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        sh("git rev-parse --short HEAD")
    );
    let mut provenance = serde_json::Map::new();
    let mut raw = serde_json::Map::new();
    for (name, keys) in SCENARIOS {
        if selected(name) {
            let runs: Vec<Value> = match name {
                "footprint" => vec![run(&["footprint"])],
                "calls" => vec![run(&["calls"])],
                "stable" => vec![run(&["stable"])],
                "scale" => vec![run(&["scale-tcs", big, idle])],
                "burst" => BURST_CONCURRENCY
                    .iter()
                    .map(|c| run(&["burst-ours", "1000", c, "5"]))
                    .chain([run(&["burst-tcs", "1000", "5"])])
                    .collect(),
                "plan" => vec![run(&["plan", plan_n])],
                "startup" => vec![
                    run(&["startup", "10", STARTUP_IDLE, STARTUP_PAGE_MS]),
                    run(&["startup", big, STARTUP_IDLE, STARTUP_PAGE_MS]),
                ],
                _ => vec![run(&["shared", "50", "5"])],
            };
            for (k, v) in keys.iter().zip(runs) {
                raw.insert((*k).to_owned(), v);
                provenance.insert((*k).to_owned(), Value::from(stamp.clone()));
            }
        } else {
            for k in keys {
                raw.insert(
                    (*k).to_owned(),
                    old_raw.get(*k).cloned().unwrap_or(Value::Null),
                );
                if let Some(p) = old_prov.get(*k) {
                    provenance.insert((*k).to_owned(), p.clone());
                }
            }
        }
    }
    let get = |k: &str| raw.get(k).cloned().unwrap_or(Value::Null);
    let (footprint, calls, stable, scale_tcs) = (
        get("footprint"),
        get("calls"),
        get("stable"),
        get("scale_tcs"),
    );
    let (startup, startup_base) = (get("startup"), get("startup_base"));
    let (burst_tcs, plan, shared) = (get("burst_tcs"), get("plan"), get("shared"));
    let bursts: Vec<Value> = BURST_CONCURRENCY
        .iter()
        .map(|c| get(&format!("burst{c}")))
        .collect();
    let prov = |k: &str| {
        provenance
            .get(k)
            .and_then(|p| p.as_str())
            .unwrap_or("not run")
            .to_owned()
    };

    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let mut runs: Vec<String> = provenance
        .values()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect();
    runs.sort();
    runs.dedup();
    if runs.len() <= 1 {
        let _ = writeln!(md, "Generated by `scripts/bench` on {}.", prov("footprint"));
    } else {
        let _ = writeln!(
            md,
            "Generated by `scripts/bench` on {}; sections from other runs say so (`BENCH_ONLY` reran only some scenarios).",
            prov("footprint")
        );
    }
    let _ = writeln!(md, "Machine: {} ({} cores, {}), {}. Every figure of a section comes from one run; peers ran in the same run on the same machine.\n",
        sh("uname -sr"), sh("nproc"), sh("free -h | awk '/Mem:/{print $2}'"), sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"));
    if quick {
        let _ = writeln!(
            md,
            "**Quick mode** (BENCH_QUICK): smaller counts and shorter idle windows.\n"
        );
    }

    // 1. Stable detection
    stable_section(&mut md, &stable, &prov("stable"));

    // 2. API calls
    let _ = writeln!(
        md,
        "## 2. API calls for one plain rotation with 4 consumer services\n"
    );
    let _ = writeln!(md, "Counted by the daemon's per-attempt interceptor against moto + ecs-sim (rollouts of ~60 s at real time). The AWS rotation Lambda template + CLI runbook column is counted from their documented sequence: `RotateSecret`; the Lambda's four steps each start with `DescribeSecret`; createSecret makes `GetSecretValue` (AWSCURRENT), `GetSecretValue` (AWSPENDING, expected to fail), `GetRandomPassword`, `PutSecretValue`; finishSecret `DescribeSecret` + `UpdateSecretVersionStage` (AWS then removes AWSPENDING itself); then the runbook's `update-service` per service and the CLI waiter's polls (from scenario 1's rate: one call per 15 s per service until stable).\n");
    let _ = writeln!(md, "| operation | secret-rotator |\n|---|---|");
    let mut sm = 0.0;
    let mut ecs = 0.0;
    if let Some(m) = calls["calls"].as_object() {
        for (k, v) in m {
            let _ = writeln!(md, "| {k} | {} |", v);
            if k.starts_with("secretsmanager") {
                sm += f(v);
            } else if k.starts_with("ecs") {
                ecs += f(v);
            }
        }
    }
    let _ = writeln!(
        md,
        "| **Secrets Manager total** | **{sm}** (template: 11) |"
    );
    let _ = writeln!(md, "| **ECS total** | **{ecs}** (runbook: 4 UpdateService + 4 × (1 + ⌈60/15⌉) = 24 waiter polls with one waiter per service, or 4 + 5 with one waiter for all four) |\n");

    // 3. Scale
    scale_section(
        &mut md,
        big,
        &startup,
        &startup_base,
        &scale_tcs,
        &prov("startup"),
        &prov("scale_tcs"),
    );

    // 4. Burst
    burst_section(&mut md, &bursts, &burst_tcs);

    // 5. Plan at scale
    let _ = writeln!(
        md,
        "## 5. Reading due times for {} secrets in moto\n",
        plan["secrets"]
    );
    let _ = writeln!(md, "| | calls | wall time |\n|---|---|---|");
    let _ = writeln!(
        md,
        "| ListSecrets pages (what `plan` and the daemon do) | {} | {:.1} s |",
        plan["list"]["calls"],
        f(&plan["list"]["secs"])
    );
    let _ = writeln!(
        md,
        "| one DescribeSecret per secret (16 in flight) | {} | {:.1} s |",
        plan["describe"]["calls"],
        f(&plan["describe"]["secs"])
    );
    let _ = writeln!(md, "\nmoto is a single-threaded Python server, so wall times are moto's; the call counts are what AWS quotas see (ListSecrets 100/s vs DescribeSecret 10,000/s per account).\n");

    // 6. Footprint
    let _ = writeln!(md, "## 6. Footprint\n");
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(
        md,
        "| stripped release binary | {:.1} MiB |",
        f(&footprint["binary_bytes"]) / 1048576.0
    );
    let _ = writeln!(
        md,
        "| start to READY=1 (10 secrets, moto) | {:.3} s |",
        f(&footprint["ready_secs"])
    );
    let _ = writeln!(
        md,
        "| RSS at idle (10 secrets) | {:.1} MiB |",
        f(&footprint["rss_mib"])
    );
    let _ = writeln!(
        md,
        "| CPU / wake-ups over 10 s idle | {:.2} s / {} |",
        f(&footprint["idle_cpu_secs_10s"]),
        footprint["idle_wakeups_10s"]
    );
    // 7. Shared service
    shared_section(&mut md, &shared, &prov("shared"));
    // 8. Start-up against a paged Secrets Manager
    startup_section(&mut md, &startup, &startup_base, &prov("startup"));

    raw.insert("provenance".into(), Value::Object(provenance.clone()));
    let _ = writeln!(
        md,
        "## Raw results\n\n```json\n{}\n```",
        serde_json::to_string_pretty(&Value::Object(raw)).unwrap_or_default()
    );
    std::fs::write(&path, md).expect("write BENCHMARKS.md");
    eprintln!("bench: wrote {}", path.display());
}

fn stats(v: &[f64]) -> String {
    if v.iter().all(|x| !x.is_finite()) {
        return "–".into();
    }
    format!(
        "{:.1} / {:.1} / {:.1}",
        median(v.to_vec()),
        pct(v, 0.9),
        pct(v, 1.0)
    )
}

/// "8/8 stable", or each distinct verdict with its count.
fn verdicts(rows: &[Value], mode: &str, expect: &str) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for r in rows {
        let v = r[mode]["verdict"].as_str().unwrap_or("?").to_owned();
        match counts.iter_mut().find(|c| c.0 == v) {
            Some(c) => c.1 += 1,
            None => counts.push((v, 1)),
        }
    }
    if mode != "waiter" && counts.len() == 1 && counts[0].0 == expect {
        return format!("{}/{} {expect} ✓", counts[0].1, rows.len());
    }
    counts
        .iter()
        .map(|(v, n)| format!("{n} × {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn stable_section(md: &mut String, stable: &Value, prov: &str) {
    let shapes = stable["shapes"].as_array().cloned().unwrap_or_default();
    let per = stable["per_shape"].as_u64().unwrap_or(0);
    let _ = writeln!(
        md,
        "## 1. Stable detection: {} rollout shapes × {per} rollouts in ecs-sim at real time\n",
        shapes.len()
    );
    let _ = writeln!(md, "Run on {prov} ({:.0} s wall time, all shapes at once). Three sides, each with its own ecs-sim per shape (same seed, so the same rollouts and separate call counters), each rollout forced at the same moment on every side ({:.2} s apart, to spread the CLI's start-up): **polling**, the deploy coordinator without events; **events**, the coordinator with `[events]` (ecs-sim publishing ECS deployment events to moto's SQS, no delay or loss; safety poll {} s); **waiter**, `aws ecs wait services-stable`, one process per service started right after its force. Each rollout is alone in its cluster, so no DescribeServices call is shared between rollouts: the counts compare pacing, not batching.\n",
        f(&stable["wall_secs"]), f(&stable["stagger_secs"]), stable["safety_poll_secs"]);
    let _ = writeln!(md, "Lateness is the side's verdict time minus the moment the verdict became knowable in ecs-sim (`/_sim/completions` `wallTime`): the rollout's completion; for **rollback** the circuit breaker tripping (the waiter instead waits for the rollback deployment to complete, then reports success); for **stall** the timeout (60 to 200 s), when we report `stalled` and the waiter is killed, still waiting.\n");
    let _ = writeln!(md, "| shape | rollouts | lateness median / p90 / max: polling | events | waiter |\n|---|---|---|---|---|");
    let late = |rows: &[Value], mode: &str| -> Vec<f64> {
        rows.iter().map(|r| f(&r[mode]["late_secs"])).collect()
    };
    for sh in &shapes {
        let rows = sh["rows"].as_array().cloned().unwrap_or_default();
        let durs: Vec<f64> = rows
            .iter()
            .map(|r| f(&r["polling"]["rollout_secs"]))
            .filter(|x| x.is_finite())
            .collect();
        let range = if durs.is_empty() {
            "never complete".to_owned()
        } else {
            format!(
                "{:.0}–{:.0} s",
                durs.iter().copied().fold(f64::INFINITY, f64::min),
                durs.iter().copied().fold(0.0, f64::max)
            )
        };
        let _ = writeln!(
            md,
            "| {} | {range} | {} s | {} s | {} s |",
            sh["shape"].as_str().unwrap_or("?"),
            stats(&late(&rows, "polling")),
            stats(&late(&rows, "events")),
            stats(&late(&rows, "waiter")),
        );
    }
    let _ = writeln!(md, "\n| shape | verdicts: polling | events | waiter | DescribeServices: polling | events | waiter |\n|---|---|---|---|---|---|---|");
    let (mut tp, mut te, mut tw) = (0, 0, 0);
    for sh in &shapes {
        let rows = sh["rows"].as_array().cloned().unwrap_or_default();
        let expect = sh["expect"].as_str().unwrap_or("");
        let c = &sh["describe_calls"];
        tp += c["polling"].as_u64().unwrap_or(0);
        te += c["events"].as_u64().unwrap_or(0);
        tw += c["waiter"].as_u64().unwrap_or(0);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            sh["shape"].as_str().unwrap_or("?"),
            verdicts(&rows, "polling", expect),
            verdicts(&rows, "events", expect),
            verdicts(&rows, "waiter", expect),
            c["polling"],
            c["events"],
            c["waiter"]
        );
    }
    let _ = writeln!(md, "| **total** | | | | **{tp}** | **{te}** | **{tw}** |\n");
    // Per rollout: polling follows the waiter's schedule from the force, so it should
    // never be later; say where it was and by how much.
    let mut later = Vec::new();
    let mut lags = Vec::new();
    let mut n = 0;
    for sh in &shapes {
        for r in sh["rows"].as_array().cloned().unwrap_or_default() {
            n += 1;
            let (p, w) = (f(&r["polling"]["late_secs"]), f(&r["waiter"]["late_secs"]));
            if p > w + 0.05 {
                later.push(format!(
                    "{} ({:.2} s vs {:.2} s)",
                    r["cluster"].as_str().unwrap_or("?"),
                    p,
                    w
                ));
            }
            lags.push(f(&r["waiter"]["first_call_lag_secs"]));
        }
    }
    let _ = writeln!(
        md,
        "Per rollout, polling was later than the waiter on {} of {n} rollouts{}. The waiter's first DescribeServices came {} s (median / p90 / max) after its service's force (its `--debug` log): the CLI's start-up, which shifts its 15 s schedule later than ours.\n",
        later.len(),
        if later.is_empty() { String::new() } else { format!(": {}", later.join(", ")) },
        stats(&lags)
    );
    let _ = writeln!(md, "<details><summary>per rollout</summary>\n\n| rollout | knowable after | polling late | events late | waiter late | waiter calls |\n|---|---|---|---|---|---|");
    for sh in &shapes {
        for r in sh["rows"].as_array().cloned().unwrap_or_default() {
            let _ = writeln!(
                md,
                "| {} | {:.1} s | {:.2} s ({}) | {:.2} s ({}) | {:.2} s ({}) | {} |",
                r["cluster"].as_str().unwrap_or(""),
                f(&r["polling"]["reference_secs"]),
                f(&r["polling"]["late_secs"]),
                r["polling"]["verdict"].as_str().unwrap_or("?"),
                f(&r["events"]["late_secs"]),
                r["events"]["verdict"].as_str().unwrap_or("?"),
                f(&r["waiter"]["late_secs"]),
                r["waiter"]["verdict"].as_str().unwrap_or("?"),
                r["waiter"]["calls"]
            );
        }
    }
    let _ = writeln!(md, "\n</details>\n");
}

fn shared_section(md: &mut String, shared: &Value, prov: &str) {
    let (c, p) = (&shared["coalesced"], &shared["per_secret"]);
    let _ = writeln!(
        md,
        "## 7. {} secrets of one shared service, due together\n",
        c["secrets"]
    );
    let _ = writeln!(md, "Run on {prov}. The daemon's engine (`commands::engine`: moto for Secrets Manager, ecs-sim at real time, one service of 2 tasks, 30 s rollouts) rotates {} secrets whose rotations start over {:.0} s, each redeploying the same service; once with `[daemon] redeploy_coalesce = \"3s\"` (the default), once with `\"0s\"`: one forced deployment per secret, each superseding the previous one (what one rotation per secret did before the coordinator). Each run has its own ecs-sim. Times from the first rotation's start.\n",
        c["secrets"], f(&c["spread_secs"]));
    let _ = writeln!(
        md,
        "| | coalesce 3 s | coalesce 0 (one deployment per secret) |\n|---|---|---|"
    );
    let verdicts = |v: &Value| {
        v["verdicts"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, n)| format!("{n} × {k}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    let _ = writeln!(
        md,
        "| rotations succeeded | {} / {} | {} / {} |",
        c["succeeded"], c["secrets"], p["succeeded"], p["secrets"]
    );
    let _ = writeln!(
        md,
        "| service verdicts | {} | {} |",
        verdicts(c),
        verdicts(p)
    );
    let _ = writeln!(
        md,
        "| deployments forced (UpdateService) | {} | {} |",
        c["update_service"], p["update_service"]
    );
    let _ = writeln!(
        md,
        "| rollouts completed | {} | {} |",
        c["completed_rollouts"], p["completed_rollouts"]
    );
    let _ = writeln!(
        md,
        "| DescribeServices calls | {} | {} |",
        c["describe_services"], p["describe_services"]
    );
    let _ = writeln!(
        md,
        "| last rollout completed | {:.1} s | {:.1} s |",
        f(&c["last_rollout_completed_secs"]),
        f(&p["last_rollout_completed_secs"])
    );
    let _ = writeln!(
        md,
        "| first / last verdict | {:.1} s / {:.1} s | {:.1} s / {:.1} s |\n",
        f(&c["first_verdict_secs"]),
        f(&c["all_verdicts_secs"]),
        f(&p["first_verdict_secs"]),
        f(&p["all_verdicts_secs"])
    );
}

/// Idle window and ListSecrets latency per page of the start-up scenario.
const STARTUP_IDLE: &str = "60";
const STARTUP_PAGE_MS: &str = "100";

/// A per-minute rate from a count over `secs`.
fn per_minute(count: &Value, secs: &Value) -> f64 {
    f(count) * 60.0 / f(secs)
}

fn scale_section(
    md: &mut String,
    big: &str,
    ours: &Value,
    base: &Value,
    tcs: &Value,
    prov_ours: &str,
    prov_tcs: &str,
) {
    let (q, b) = (&ours["quiet"]["idle"], &base["quiet"]["idle"]);
    let _ = writeln!(
        md,
        "## 3. {big} schedules held by the daemon vs tokio-cron-scheduler 0.15\n"
    );
    let _ = writeln!(md, "Ours: the daemon process of section 8 (run on {prov_ours}): `secret-rotator run` with {} secrets against the paged fake Secrets Manager, every secret due in ~30 days but four; memory added is its steady RSS minus that of the same daemon with {} secrets, both after all due times are known and {} s idle. tokio-cron-scheduler (run on {prov_tcs}): in its own process, one one-shot job per secret at its due time (it cannot express \"every 30 days\"), holding only timers; RSS after {} s idle minus RSS before the jobs. Ours also holds the parsed configuration, the due times and the per-secret metrics. tokio-cron-scheduler's figure varies from run to run (28 to 69 MiB in separate runs on this machine on 2026-12-06, the lower ones while other builds ran): compare within one run. Idle CPU and wake-ups (voluntary context switches, all threads) per minute (the two windows differ in length). A ratio below 1× is a loss for us.\n",
        ours["secrets"], base["secrets"], q["secs"], tcs_idle_secs(tcs));
    let _ = writeln!(
        md,
        "| | secret-rotator | tokio-cron-scheduler | ratio |\n|---|---|---|---|"
    );
    let row = |md: &mut String, label: &str, a: f64, b: f64, unit: &str, digits: usize| {
        let _ = writeln!(
            md,
            "| {label} | {a:.digits$}{unit} | {b:.digits$}{unit} | {:.1}× |",
            if a > 0.0 { b / a } else { f64::NAN }
        );
    };
    row(
        md,
        "memory added by the schedules",
        f(&q["steady_rss_mib"]) - f(&b["steady_rss_mib"]),
        f(&tcs["rss_mib"]) - f(&tcs["rss_base_mib"]),
        " MiB",
        1,
    );
    row(
        md,
        "time to ready (READY=1 / jobs registered)",
        f(&ours["quiet"]["ready_secs"]),
        f(&tcs["ready_secs"]),
        " s",
        2,
    );
    let tcs_secs = Value::from(tcs_idle_secs(tcs));
    row(
        md,
        "idle CPU per minute",
        per_minute(&q["cpu_secs"], &q["secs"]),
        per_minute(&tcs["idle_cpu_secs"], &tcs_secs),
        " s",
        2,
    );
    row(
        md,
        "idle wake-ups per minute",
        per_minute(&q["ctx_switches"], &q["secs"]),
        per_minute(&tcs["idle_wakeups"], &tcs_secs),
        "",
        0,
    );
    let _ = writeln!(md);
    let _ = writeln!(md, "{HEAP_PROFILE}");
}

/// Where the bytes went at 100,000 secrets (issue 16), from heap profiles (`heaptrack`,
/// debug build, the daemon and `check` on one file of 100,000 `[[secret]]` tables).
const HEAP_PROFILE: &str = "**Where the memory went (heaptrack, 100,000 secrets, commit `271402e` → now).** Before: the daemon's heap peaked at 409 MB. About 290 MB were `prometheus` label children created when each secret was registered (`rotations_total` × 4 outcomes, `secret_info` with 7 labels, `ecs_redeploys_total` × 6 verdicts per consumer), each child holding its own copy of every label string; 33 MB were a second copy of every secret's configuration made by the scheduler; loading the file peaked at ~200 MB for the `toml` crate's document tree (107 MB of map nodes, 92 MB for the array of tables). Now: one record per secret (the shared configuration, the gauges' state and `u32` counters) written as text at scrape time, a chunk at a time (a scrape at this size is ~100 MB of text, streamed, never held); the configuration is shared by `Arc` between the loader, the scheduler and the metrics; ids are shared strings with regions, roles, clusters and services interned; the file is parsed one top-level table at a time (split at its headers, found from the tokens one at a time: a token list of the whole file took 92 MB). `check` on the file now peaks at 58 MB of heap (the configuration itself and the loader's name index), 77 MB max RSS (was 275 MB of heap). **Second pass (heaptrack on a symbolised release build, `cargo build --profile profiling`, commit `b12323d`).** The steady heap at 100,000 secrets was 86 MB: the configuration records 25.6 MB (256 B each with the `Arc`), the metrics' hash map 19.0 MB (a 128 B record per secret in 131,072 buckets), the scheduler's hash map 15.9 MB, AWSCURRENT's version id per secret 5.6 MB (a 36-character string in a 64 B heap chunk), the timer queue's B-tree 4.9 MB, names and ids ~6 MB. Cut since: version ids kept as 16 inline bytes when they are lowercase UUIDs (every AWS id and every token of ours), the metrics counters boxed and allocated only once one moves or a consumer is configured (record 128 → 80 B), the configuration record 240 → 216 B (boxed `json_key` and consumer list, `u32` line/column). **What the allocator keeps after the load:** the file's text, each table's parse and the ListSecrets pages are freed, but glibc keeps the freed pages that lie between live chunks, in the main arena and in each worker thread's arena: on a running 100k daemon, `malloc_trim(0)` (called from gdb) took RSS from 116 to 99 MiB. Returning them is worth it: the daemon now calls `malloc_trim(0)` after loading the configuration and after each pass of due-time reads (milliseconds each). What is left per secret (~0.6 KB): the configuration record, its name and id, the scheduler's entry and the metrics record in hash maps (each ~30 % table slack), the timer queue's entry, and allocator overhead.\n";

/// tokio-cron-scheduler's idle window: the run's own, else the full run's 60 s.
fn tcs_idle_secs(tcs: &Value) -> f64 {
    tcs["idle_secs"].as_f64().unwrap_or(60.0)
}

fn startup_section(md: &mut String, big: &Value, base: &Value, prov: &str) {
    let (q, t) = (&big["quiet"], &big["timed"]);
    let _ = writeln!(
        md,
        "## 8. Start-up at {} secrets against a paged Secrets Manager\n",
        big["secrets"]
    );
    let _ = writeln!(md, "Run on {prov}. `secret-rotator run` (release build) against the bench's fake Secrets Manager (AWS JSON 1.1 over local HTTP): ListSecrets pages of 100 taking {} ms each, {} pages; four secrets are due (the first of the first page, the first three of the last page), the others carry a `last-rotated` tag a day old. Times from the daemon's spawn. Two processes one after the other: **quiet** (never scraped) gives the memory and idle figures; **timed** is scraped once a second from the last page on until `secret_rotator_due_times_pending` reads 0 (a scrape at this size renders ~{:.0} MB, which would pollute the memory figures; the gauge is refreshed every 5 s, so that time can be up to ~10 s late). A due secret's rotation starts with DescribeSecret; the fake answers the rotation's next call with an error.\n",
        big["page_ms"], q["pages"], f(&t["scrape"]["bytes"]) / 1e6);
    let _ = writeln!(md, "| | quiet | timed |\n|---|---|---|");
    let secs = |md: &mut String, label: &str, key: &str| {
        let _ = writeln!(
            md,
            "| {label} | {:.2} s | {:.2} s |",
            f(&q[key]),
            f(&t[key])
        );
    };
    secs(md, "READY=1", "ready_secs");
    secs(md, "first ListSecrets page answered", "first_page_secs");
    secs(
        md,
        "first due launch (first call naming a due secret)",
        "first_due_call_secs",
    );
    secs(md, "last ListSecrets page answered", "last_page_secs");
    let _ = writeln!(
        md,
        "| every due time known (gauge at 0) | – | {:.1} s |",
        f(&t["due_known_secs"])
    );
    let (peak, steady) = (f(&q["peak_rss_load_mib"]), f(&q["idle"]["steady_rss_mib"]));
    let base_steady = f(&base["quiet"]["idle"]["steady_rss_mib"]);
    let _ = writeln!(
        md,
        "\n| quiet process | {} secrets | {} secrets |\n|---|---|---|",
        big["secrets"], base["secrets"]
    );
    let _ = writeln!(
        md,
        "| RSS at READY=1 (configuration parsed; the scheduler and its per-secret metrics are built after) | {:.1} MiB | {:.1} MiB |",
        f(&q["rss_at_ready_mib"]),
        f(&base["quiet"]["rss_at_ready_mib"])
    );
    let _ = writeln!(
        md,
        "| peak RSS while loading (VmHWM once the last page is read) | {peak:.1} MiB | {:.1} MiB |",
        f(&base["quiet"]["peak_rss_load_mib"])
    );
    let _ = writeln!(
        md,
        "| steady RSS after {} s idle | {steady:.1} MiB | {base_steady:.1} MiB |",
        q["idle"]["secs"]
    );
    let _ = writeln!(
        md,
        "| RSS added by the schedules (steady − steady at {}) | {:.1} MiB | |",
        base["secrets"],
        steady - base_steady
    );
    let _ = writeln!(
        md,
        "| peak while loading ÷ steady | {:.2}× | {:.2}× |",
        peak / steady,
        f(&base["quiet"]["peak_rss_load_mib"]) / base_steady
    );
    let _ = writeln!(
        md,
        "| idle CPU / wake-ups over {} s (from {:.0} s after the last page: the daemon had used no CPU for 2 s) | {:.2} s / {} | {:.2} s / {} |",
        q["idle"]["secs"],
        f(&q["idle"]["settled_after_last_page_secs"]),
        f(&q["idle"]["cpu_secs"]),
        q["idle"]["ctx_switches"],
        f(&base["quiet"]["idle"]["cpu_secs"]),
        base["quiet"]["idle"]["ctx_switches"]
    );
    let _ = writeln!(
        md,
        "| calls the fake served (quiet) | {} | {} |\n",
        q["calls"], base["quiet"]["calls"]
    );
}
