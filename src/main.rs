#![forbid(unsafe_code)]
//! Thin entry point: parse the command line, set up logging, dispatch, exit.

use clap::Parser;
use secret_rotator::cli::{self, Cli, Command, LogFormat};
use secret_rotator::clock::SystemClock;
use secret_rotator::{commands, config, exit, logging};

fn main() {
    // Before anything holds a secret.
    let hardening = harden();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let default_level = match (&cli.command, cli.log_format) {
        (Command::Run, _) => "info",
        // With JSON logs the engine's step events are the progress (no text on stderr).
        (Command::Rotate { .. }, LogFormat::Json) => "info",
        // The progress lines say what the engine's warnings would, once: no raw log lines
        // mixed into them. (The engine logs under the core crate's targets.)
        (Command::Rotate { .. }, LogFormat::Text) => "warn,rotator_core::rotation=error",
        _ => "warn",
    };
    logging::init(cli.log_format, default_level);
    if let Err(e) = hardening {
        tracing::warn!(error = %e, "cannot disable core dumps; a crash could write secrets to disk");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // A rotation (engine, lease, deadlines, catch_unwind) is a deep future: the default
        // 2 MiB worker stack overflowed in debug builds. The main thread has 8 MiB.
        .thread_stack_size(8 * 1024 * 1024)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(exit::UNAVAILABLE);
        }
    };
    let code = runtime.block_on(run(cli));
    std::process::exit(code);
}

/// No core dumps (they would hold secret values): RLIMIT_CORE 0 and not dumpable, which
/// also keeps other processes of the same user from attaching or reading its memory.
fn harden() -> std::io::Result<()> {
    use rustix::process::{setrlimit, Resource, Rlimit};
    setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )?;
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)?;
    Ok(())
}

async fn run(cli: Cli) -> i32 {
    if let Command::Run = cli.command {
        return secret_rotator::daemon::main(cli.config).await;
    }
    let cfg = match config::load_dir(&cli.config) {
        Ok(c) => c,
        Err(e) => return commands::report_config_errors(&e),
    };
    match cli.command {
        Command::Check { remote } => commands::check::run(&cfg, remote).await,
        Command::Plan { json, wide } => commands::plan::run(&cfg, json, wide, &SystemClock).await,
        Command::Rotate {
            name,
            dry_run,
            out_of_turn,
            json,
        } => commands::rotate::run(&cfg, &name, dry_run, out_of_turn, json, cli.log_format).await,
        Command::Group { name, action } => {
            let action = match action {
                cli::GroupAction::Status { json } => commands::group::Action::Status { json },
                cli::GroupAction::Hold { reason } => commands::group::Action::Hold { reason },
                cli::GroupAction::Resume => commands::group::Action::Resume,
            };
            commands::group::run(&cfg, &name, action, &SystemClock).await
        }
        Command::Run => unreachable!("handled above"),
    }
}
