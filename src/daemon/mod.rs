//! The long-running service.

use std::path::PathBuf;

pub async fn main(_config: PathBuf) -> i32 {
    eprintln!("error: `run` is not built yet");
    crate::exit::FAILURE
}
