//! `bench`: the scenarios of scripts/bench. `bench all` runs each in its own process (so
//! memory and CPU figures are not mixed) and writes BENCHMARKS.md.

mod calls;
mod fakesm;
mod footprint;
mod planscale;
mod report;
mod scale;
mod servers;
mod shared;
mod stable;
mod startup;

use serde_json::Value;

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .nth(i)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let cmd = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    let out: Value = match cmd.as_str() {
        "stable" => stable::run().await,
        "stable-side" => {
            let a: Vec<String> = std::env::args().skip(2).collect();
            let t0 = a.get(4).and_then(|v| v.parse().ok()).unwrap_or(0.0);
            stable::side(&a[0], &a[1], &a[2], &a[3], t0).await
        }
        "shared" => shared::run(arg(2, 50) as usize, arg(3, 5)).await,
        "calls" => calls::run().await,
        "scale-ours" => scale::ours_idle(arg(2, 100_000) as usize, arg(3, 60)).await,
        "scale-tcs" => scale::tcs_idle(arg(2, 100_000) as usize, arg(3, 60)).await,
        "burst-ours" => {
            // A fifth argument `timer`: the simulated latency on tokio's timer instead.
            let precise = std::env::args().nth(5).as_deref() != Some("timer");
            scale::ours_burst(
                arg(2, 1000) as usize,
                arg(3, 8) as usize,
                arg(4, 5),
                precise,
            )
            .await
        }
        "burst-tcs" => scale::tcs_burst(arg(2, 1000) as usize, arg(3, 5)).await,
        "plan" => planscale::run(arg(2, 10_000) as usize).await,
        "footprint" => footprint::run().await,
        "startup" => startup::run(arg(2, 100_000) as usize, arg(3, 20), arg(4, 100)).await,
        "all" => {
            report::all().await;
            return;
        }
        other => {
            eprintln!("unknown scenario {other}; use all, stable, shared, calls, scale-ours, scale-tcs, burst-ours, burst-tcs, plan, footprint, startup");
            std::process::exit(64);
        }
    };
    println!("{out}");
}
