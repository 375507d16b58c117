//! Interned names: every distinct variant, rule and propagation name is
//! stored once for the life of the process, so decisions and tags can hold
//! `&'static str` and stay `Copy`.
//!
//! Memory is bounded by the number of distinct names ever compiled (each at
//! most 64 bytes for variants and rules), not by the number of compiles:
//! reloading the same rule set a million times stores nothing new.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock, PoisonError};

static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();

/// The interned copy of `s`.
pub(crate) fn intern(s: &str) -> &'static str {
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(&found) = names.get(s) {
        return found;
    }
    let leaked: &'static str = Box::leak(s.to_owned().into_boxed_str());
    names.insert(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    #[test]
    fn same_name_same_pointer() {
        let a = super::intern("gray-x");
        let b = super::intern(&String::from("gray-x"));
        assert!(std::ptr::eq(a, b));
    }
}
