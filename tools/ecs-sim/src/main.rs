//! The `ecs-sim` binary: parses the command line and runs the simulator.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let args = ecs_sim::Args::parse();
    match ecs_sim::run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ecs-sim: {e}");
            ExitCode::FAILURE
        }
    }
}
