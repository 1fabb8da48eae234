//! The configuration (`rotator_core::config`) with every target kind this binary has:
//! [`load_dir`] reads a directory with [`crate::targets::registry`].

pub use rotator_core::config::*;

use std::path::Path;

/// Loads and validates every `*.toml` file of `dir`, in name order, with every target
/// kind of this binary. Nothing is applied unless everything is valid.
pub fn load_dir(dir: &Path) -> Result<Config, ConfigErrors> {
    load_dir_with(dir, &crate::targets::registry())
}
