//! The target kinds of this binary.

use crate::config::Registry;
pub use rotator_core::rotation::target::{command, iam, postgres};

/// Every target kind a configuration may use.
pub fn registry() -> Registry {
    Registry::new()
        .with(command::Command)
        .with(postgres::Postgres)
        .with(iam::IamAccessKey)
}
