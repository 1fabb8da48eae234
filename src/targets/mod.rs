//! The target kinds of this binary.

pub mod command;
pub mod iam;
pub mod postgres;

use crate::config::Registry;

/// Every target kind a configuration may use.
pub fn registry() -> Registry {
    Registry::new()
        .with(command::Command)
        .with(postgres::Postgres)
        .with(iam::IamAccessKey)
}
