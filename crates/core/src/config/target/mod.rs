//! The `target` table of a `[[secret]]`: which system must learn the new value.
//!
//! A target kind (`kind = "postgres"`) is a [`TargetKind`]: its name, the keys of its
//! table (the fields of its `Raw` struct) and how a table becomes a [`Target`]. The kinds
//! a configuration may use are those of the [`Registry`] it is loaded with
//! ([`super::load_dir_with`]); the core registers only `none`, the binary adds its own.
//!
//! The loader reads the parts every kind shares and reports them the same way for all:
//! a `target` that is not a table, a key no kind knows (with "did you mean"), a missing
//! or unknown `kind`, a key of another kind. The kind then reads its own keys through a
//! [`TargetTable`], which reports type errors and the kind's own findings as
//! `file:line:col: secret[NAME].target.KEY: message`.
//!
//! What a configured target does at rotation time is [`ConfiguredTarget`]
//! (`rotation::target`).

mod fields;
mod table;

pub use table::TargetTable;
pub(super) use table::{read, TargetRead};

use crate::rotation::target::ConfiguredTarget;
use serde::de::DeserializeOwned;
use std::fmt;
use std::sync::Arc;
use toml::de::DeValue;
use toml::Spanned;

/// The system that must learn the new value before it becomes current.
#[derive(Clone, Debug)]
pub enum Target {
    /// `kind = "none"` (the default): the value is only read by the consumers (API keys,
    /// session keys); nothing else is told.
    None,
    /// A target of a registered kind, as its kind validated it.
    Kind(Arc<dyn ConfiguredTarget>),
}

impl Target {
    pub fn new(target: impl ConfiguredTarget) -> Self {
        Target::Kind(Arc::new(target))
    }

    /// The `kind = "..."` it was configured with.
    pub fn kind(&self) -> &'static str {
        self.ops().kind()
    }

    pub fn is_none(&self) -> bool {
        matches!(self, Target::None)
    }

    /// What the rotation calls; `none`'s steps do nothing.
    pub fn ops(&self) -> &dyn ConfiguredTarget {
        match self {
            Target::None => &NoTarget,
            Target::Kind(t) => t.as_ref(),
        }
    }

    /// The kind's own settings, for code that knows the kind (its module, tests).
    pub fn downcast_ref<T: ConfiguredTarget>(&self) -> Option<&T> {
        match self {
            Target::None => None,
            Target::Kind(t) => (**t).as_any().downcast_ref(),
        }
    }
}

/// `none` at rotation time: every step is the trait's default (nothing to do).
#[derive(Debug)]
struct NoTarget;

impl ConfiguredTarget for NoTarget {
    fn kind(&self) -> &'static str {
        NoneKind::NAME
    }
}

/// One kind of target: what `kind = "..."` names and how its table is read.
///
/// Adding a kind is a type implementing this trait (its table's keys are the fields of
/// [`TargetKind::Raw`]) plus a [`ConfiguredTarget`] for what [`TargetKind::parse`]
/// returns, and one [`Registry::with`] line.
pub trait TargetKind: Send + Sync + 'static {
    /// What `kind = "..."` names.
    const NAME: &'static str;

    /// The table as written, without `kind`: a `#[derive(Deserialize)]` struct with
    /// `#[serde(deny_unknown_fields)]` and `Option<Spanned<_>>` fields (no `flatten`).
    /// Its field names are the keys the kind accepts, listed in messages in this order.
    type Raw: DeserializeOwned;

    /// The kind makes the whole value itself, in its own shape (a JSON document of its
    /// own): `json_key` cannot be used with it.
    const MAKES_VALUE: bool = false;

    /// What `key` expects, in the configuration's words, when its value has the wrong
    /// type (`element`: one item of a list is wrong). `None`: the generic wording.
    fn expects(key: &str, element: bool) -> Option<String> {
        let _ = (key, element);
        None
    }

    /// Checks the table: every problem is reported through `t` (checking goes on after
    /// one, so that one run reports them all). A target returned after a reported
    /// problem is dropped.
    fn parse(&self, raw: Self::Raw, t: &mut TargetTable<'_>) -> Option<Target>;
}

/// `kind = "none"`: no keys.
pub struct NoneKind;

/// The `none` kind's table: no key.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoKeys {}

impl TargetKind for NoneKind {
    const NAME: &'static str = "none";
    type Raw = NoKeys;

    fn parse(&self, _raw: NoKeys, _t: &mut TargetTable<'_>) -> Option<Target> {
        Some(Target::None)
    }
}

/// A kind with its type erased, so kinds of different `Raw` types share one list.
trait AnyKind: Send + Sync {
    fn makes_value(&self) -> bool;
    /// Reads the kind's own keys (`table` holds only those) and checks them.
    fn parse(&self, table: Spanned<DeValue<'_>>, t: &mut TargetTable<'_>) -> Option<Target>;
}

impl<K: TargetKind> AnyKind for K {
    fn makes_value(&self) -> bool {
        K::MAKES_VALUE
    }

    fn parse(&self, table: Spanned<DeValue<'_>>, t: &mut TargetTable<'_>) -> Option<Target> {
        let raw = t.read::<K::Raw>(table, &K::expects)?;
        TargetKind::parse(self, raw, t)
    }
}

struct Entry {
    name: &'static str,
    keys: &'static [&'static str],
    kind: Box<dyn AnyKind>,
}

/// The target kinds a configuration may use, in the order messages list them.
pub struct Registry {
    kinds: Vec<Entry>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Registry {
    /// Only `none`.
    pub fn new() -> Self {
        Self { kinds: Vec::new() }.with(NoneKind)
    }

    /// Adds a kind. A second kind of the same name replaces the first (a programming
    /// mistake, caught in debug builds).
    pub fn with<K: TargetKind>(mut self, kind: K) -> Self {
        debug_assert!(
            self.get(K::NAME).is_none(),
            "target kind \"{}\" registered twice",
            K::NAME
        );
        self.kinds.retain(|e| e.name != K::NAME);
        self.kinds.push(Entry {
            name: K::NAME,
            keys: fields::of::<K::Raw>(),
            kind: Box::new(kind),
        });
        self
    }

    /// The kinds' names, in registration order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.kinds.iter().map(|e| e.name)
    }

    /// The keys of kind `name`'s table (besides `kind`).
    pub fn keys(&self, name: &str) -> Option<&'static [&'static str]> {
        self.get(name).map(|e| e.keys)
    }

    fn get(&self, name: &str) -> Option<&Entry> {
        self.kinds.iter().find(|e| e.name == name)
    }

    /// `kind` and every key of every kind, each once, in registration order: what a
    /// target table may contain at all.
    fn all_keys(&self) -> Vec<&'static str> {
        let mut all = vec!["kind"];
        for k in self.kinds.iter().flat_map(|e| e.keys) {
            if !all.contains(k) {
                all.push(k);
            }
        }
        all
    }
}
