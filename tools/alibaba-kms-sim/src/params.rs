//! An RPC request's parameters (query and form body together), typed on the way out.

use crate::error::{invalid_parameter, missing_parameter, ApiError};

pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        match self.get(name) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(missing_parameter(name)),
        }
    }

    /// `"true"` / `"false"` (any case); absent is `default`.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(_) => Err(invalid_parameter(format!(
                "The specified parameter {name} is not valid."
            ))),
        }
    }

    /// An integer in `min..=max`; absent is `default`.
    pub fn int(&self, name: &str, default: u64, min: u64, max: u64) -> Result<u64, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| {
                    invalid_parameter(format!("The specified parameter {name} is not valid."))
                }),
        }
    }

    /// A JSON value passed as a string (`VersionStages`, `Tags`, `TagKeys`).
    pub fn json(&self, name: &str) -> Result<Option<serde_json::Value>, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(v) => serde_json::from_str(v).map(Some).map_err(|_| {
                invalid_parameter(format!("The specified parameter {name} is not valid JSON."))
            }),
        }
    }
}
