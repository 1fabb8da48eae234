//! Crash points for the crash tests: with the `failpoints` feature, a run started with
//! `SECRET_ROTATOR_CRASH_AT=<name>` aborts the process (like `kill -9`) when it reaches the
//! named point. Without the feature the macro expands to nothing.

#[macro_export]
macro_rules! failpoint {
    ($name:literal) => {
        #[cfg(feature = "failpoints")]
        $crate::failpoints::hit($name);
    };
}

#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    if std::env::var("SECRET_ROTATOR_CRASH_AT").is_ok_and(|v| v == name) {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
}
