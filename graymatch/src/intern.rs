//! Interned names: every distinct variant, rule and propagation name is
//! stored once for the life of the process, so decisions and tags can hold
//! `&'static str` and stay `Copy`.
//!
//! Memory is bounded by the number of distinct names ever compiled (each at
//! most 64 bytes for variants and rules), not by the number of compiles:
//! reloading the same rule set a million times stores nothing new.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock, PoisonError};

use http::HeaderName;

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

static HEADERS: OnceLock<Mutex<HashSet<&'static HeaderName>>> = OnceLock::new();

/// The interned `HeaderName` of a valid, lowercase header name, so a `Copy`
/// tag can write it without parsing it again on every request.
pub(crate) fn intern_header(name: &'static str) -> &'static HeaderName {
    let header = HeaderName::from_static(name);
    let mut names = HEADERS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(&found) = names.get(&header) {
        return found;
    }
    let leaked: &'static HeaderName = Box::leak(Box::new(header));
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
