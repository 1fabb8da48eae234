//! The `alibaba-kms-sim` binary: parses the command line and runs the simulator.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let args = alibaba_kms_sim::Args::parse();
    match alibaba_kms_sim::run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("alibaba-kms-sim: {e}");
            ExitCode::FAILURE
        }
    }
}
