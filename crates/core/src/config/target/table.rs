//! Reading one `target` table: the checks every kind shares, then the kind's own through
//! a [`TargetTable`].

use super::{Registry, Target};
use crate::config::error::{ConfigError, SourceMap};
use crate::config::load::{serde_error, unknown_key, Hint};
use crate::config::{duration, validate::check_secret_id};
use crate::ids::SecretId;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

/// One kind's view of its table while it checks it: reports problems with the
/// `file:line:col` of the value and the key path `secret[NAME].target.KEY`.
pub struct TargetTable<'a> {
    src: &'a SourceMap<'a>,
    errors: &'a mut Vec<ConfigError>,
    /// `secret[NAME].target`: where the kind's own findings are reported.
    path: &'a str,
    /// The same table as the loader names it for type errors (`secret[#2].target` when
    /// the secret has no readable name), as serde's errors always were.
    read_path: &'a str,
    span: Range<usize>,
}

impl TargetTable<'_> {
    /// The whole table, for a problem such as a missing key.
    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// Reports a problem with `key` of the table (`""`: the table itself) at `span`.
    pub fn error(&mut self, span: Range<usize>, key: &str, message: impl Into<String>) {
        let key = if key.is_empty() {
            self.path.to_owned()
        } else {
            format!("{}.{key}", self.path)
        };
        self.errors.push(self.src.error(span, key, message));
    }

    /// A duration written as a string (`"30s"`), within `min..=max`.
    pub fn duration(
        &mut self,
        key: &str,
        value: &Spanned<String>,
        min: Duration,
        max: Duration,
    ) -> Option<Duration> {
        match duration::parse_within(value.get_ref(), min, max) {
            Ok(d) => Some(d),
            Err(m) => {
                self.error(value.span(), key, m);
                None
            }
        }
    }

    /// A Secrets Manager secret name or ARN (e.g. an admin secret).
    pub fn secret_id(&mut self, key: &str, value: &Spanned<String>) -> Option<SecretId> {
        match check_secret_id(value.get_ref()) {
            Ok(()) => Some(SecretId::new(value.get_ref().clone())),
            Err(m) => {
                self.error(value.span(), key, m);
                None
            }
        }
    }

    /// The kind's `Raw` struct from its keys; the first type error is reported.
    pub(super) fn read<T: DeserializeOwned>(
        &mut self,
        table: Spanned<DeValue<'_>>,
        hint: Hint<'_>,
    ) -> Option<T> {
        match T::deserialize(ValueDeserializer::from(table.clone())) {
            Ok(t) => Some(t),
            Err(e) => {
                let err = serde_error(self.src, self.read_path, &table, &e, hint);
                self.errors.push(err);
                None
            }
        }
    }
}

/// What reading a `target` table found.
#[derive(Default)]
pub(in crate::config) struct TargetRead {
    /// The target, when its table had no problem.
    pub target: Option<Target>,
    /// Whether the written kind makes its own value; `None` when the kind is not known.
    pub makes_value: Option<bool>,
}

fn no_hint(_: &str, _: bool) -> Option<String> {
    None
}

/// Reads `target = { kind = "...", ... }`. A problem with the table's shape (not a
/// table, a key no kind knows, `kind` missing, not a string or unknown) is reported
/// alone, as the first problem serde met; the kind's own checks then all report.
pub(in crate::config) fn read(
    registry: &Registry,
    errors: &mut Vec<ConfigError>,
    src: &SourceMap<'_>,
    path: &str,
    read_path: &str,
    value: Spanned<DeValue<'_>>,
) -> TargetRead {
    let span = value.span();
    let DeValue::Table(table) = value.get_ref() else {
        // serde's words for what was found instead, turned into the configuration's.
        let as_table =
            BTreeMap::<String, IgnoredAny>::deserialize(ValueDeserializer::from(value.clone()));
        if let Err(e) = as_table {
            errors.push(serde_error(src, read_path, &value, &e, &no_hint));
        }
        return TargetRead::default();
    };
    let all = registry.all_keys();
    if let Some((k, _)) = table
        .iter()
        .find(|(k, _)| !all.contains(&k.get_ref().as_ref()))
    {
        let name = k.get_ref();
        errors.push(src.error(
            k.span(),
            format!("{read_path}.{name}"),
            unknown_key(name, &all),
        ));
        return TargetRead::default();
    }
    let Some(kind_value) = table.get("kind") else {
        errors.push(src.error(span, read_path, "missing required key `kind`"));
        return TargetRead::default();
    };
    let kind = match String::deserialize(ValueDeserializer::from(kind_value.clone())) {
        Ok(k) => k,
        Err(e) => {
            errors.push(serde_error(src, read_path, &value, &e, &no_hint));
            return TargetRead::default();
        }
    };
    let Some(entry) = registry.get(&kind) else {
        let names: Vec<&str> = registry.names().collect();
        errors.push(src.error(
            kind_value.span(),
            format!("{path}.kind"),
            format!(
                "unknown target kind \"{kind}\" (allowed: {})",
                names.join(", ")
            ),
        ));
        return TargetRead::default();
    };

    let before = errors.len();
    // The kind sees only its own keys; a key of another kind is named as such.
    let mut own = DeTable::new();
    for (k, v) in table.iter() {
        let name = k.get_ref().as_ref();
        if name == "kind" {
            continue;
        }
        if entry.keys.contains(&name) {
            own.insert(k.clone(), v.clone());
        } else {
            let allowed = if entry.keys.is_empty() {
                "none".to_owned()
            } else {
                entry.keys.join(", ")
            };
            errors.push(src.error(
                v.span(),
                format!("{path}.{name}"),
                format!("not a key of target kind \"{kind}\" (allowed: {allowed})"),
            ));
        }
    }
    let mut t = TargetTable {
        src,
        errors,
        path,
        read_path,
        span: span.clone(),
    };
    let target = entry
        .kind
        .parse(Spanned::new(span, DeValue::Table(own)), &mut t);
    TargetRead {
        target: target.filter(|_| errors.len() == before),
        makes_value: Some(entry.kind.makes_value()),
    }
}
