//! The `ibm-sm-sim` binary: parses the command line and runs the simulator.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let args = ibm_sm_sim::Args::parse();
    match ibm_sm_sim::run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ibm-sm-sim: {e}");
            ExitCode::FAILURE
        }
    }
}
