//! Per-operation API call counters, for `GET /_sim/calls`.

use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct CallCounter(Mutex<BTreeMap<&'static str, u64>>);

impl CallCounter {
    pub fn count(&self, operation: &'static str) {
        *crate::lock(&self.0).entry(operation).or_default() += 1;
    }

    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        crate::lock(&self.0).clone()
    }

    pub fn reset(&self) {
        crate::lock(&self.0).clear();
    }
}
