//! A compile-time index of exact byte strings, optionally ASCII
//! case-insensitive, probed without allocation.
//!
//! Keys are hashed with a per-index ahash state (in memory only: the output
//! never leaves the process), and the map is keyed by that hash, so a probe
//! that folds case never needs a lowercased copy of the value.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

/// The keys (and values) that share one hash.
type Bucket<V> = Vec<(Box<[u8]>, V)>;

/// Exact strings mapped to values of `V`.
#[derive(Debug, Clone)]
pub(crate) struct ExactIndex<V> {
    state: ahash::RandomState,
    fold: bool,
    max_len: usize,
    buckets: HashMap<u64, Bucket<V>, BuildHasherDefault<PassThrough>>,
}

impl<V> ExactIndex<V> {
    pub(crate) fn new(fold: bool) -> Self {
        ExactIndex {
            state: ahash::RandomState::new(),
            fold,
            max_len: 0,
            buckets: HashMap::default(),
        }
    }

    /// The value stored for `key`, inserting `make()` if there is none.
    pub(crate) fn entry(&mut self, key: &[u8], make: impl FnOnce() -> V) -> &mut V {
        let h = self.hash(key);
        self.max_len = self.max_len.max(key.len());
        let fold = self.fold;
        let bucket = self.buckets.entry(h).or_default();
        let i = match bucket.iter().position(|(k, _)| eq(k, key, fold)) {
            Some(i) => i,
            None => {
                bucket.push((key.into(), make()));
                bucket.len() - 1
            }
        };
        &mut bucket[i].1
    }

    #[inline]
    pub(crate) fn get(&self, key: &[u8]) -> Option<&V> {
        if key.len() > self.max_len {
            return None;
        }
        let bucket = self.buckets.get(&self.hash(key))?;
        bucket
            .iter()
            .find(|(k, _)| eq(k, key, self.fold))
            .map(|(_, v)| v)
    }

    #[inline]
    fn hash(&self, key: &[u8]) -> u64 {
        let mut h = self.state.build_hasher();
        if self.fold {
            let mut buf = [0u8; 32];
            for chunk in key.chunks(buf.len()) {
                let b = &mut buf[..chunk.len()];
                b.copy_from_slice(chunk);
                b.make_ascii_lowercase();
                h.write(b);
            }
        } else {
            h.write(key);
        }
        h.write_usize(key.len());
        h.finish()
    }
}

/// Byte equality, ASCII case-insensitive when `fold`.
#[inline]
pub(crate) fn eq(a: &[u8], b: &[u8], fold: bool) -> bool {
    if fold {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

/// The map's keys are already hashes.
#[derive(Default)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_case_only_when_asked() {
        let mut ci = ExactIndex::new(true);
        *ci.entry(b"Hz", || 0) += 1;
        *ci.entry(b"hZ", || 0) += 1;
        assert_eq!(ci.get(b"HZ"), Some(&2));
        assert_eq!(ci.get(b"sh"), None);
        let long = b"A".repeat(100);
        ci.entry(&long, || 7);
        assert_eq!(ci.get(&b"a".repeat(100)), Some(&7));
        assert_eq!(ci.get(&b"a".repeat(101)), None);

        let mut cs = ExactIndex::new(false);
        cs.entry(b"Hz", || ());
        assert!(cs.get(b"Hz").is_some());
        assert!(cs.get(b"hz").is_none());
    }
}
