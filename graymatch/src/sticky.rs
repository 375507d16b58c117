//! Sticky hashing: MurmurHash3 x86_32 over `salt:value`, and how a hash
//! becomes a place among a rule's targets.
//!
//! These functions are the stability promise of graymatch: for the same salt
//! and key they give the same answer on every machine, process and version.
//! They are checked against fixed vectors (the reference MurmurHash3 and
//! Unleash's published normalisations) in the test suite, and must never
//! change.
//!
//! ```
//! use graymatch::sticky;
//!
//! assert_eq!(sticky::murmur3_x86_32(b"hello", 0), 0x248b_fa47);
//! // Unleash: `normalizedHash("122", "AB12A") == 23`.
//! assert_eq!(sticky::unleash_normalized("AB12A", b"122"), 23);
//! // graymatch: the ppm bucket of user-3 under salt canary-20.
//! assert!(sticky::bucket("canary-20", b"user-3") < 200_000);
//! ```

/// Parts per million: the unit of every percent (`1 %` is `10_000`).
pub const PPM: u32 = 1_000_000;

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

/// MurmurHash3 x86_32 of `bytes` with `seed`, the reference algorithm.
///
/// ```
/// assert_eq!(graymatch::sticky::murmur3_x86_32(b"", 0), 0);
/// assert_eq!(graymatch::sticky::murmur3_x86_32(b"hello", 0), 0x248bfa47);
/// ```
pub fn murmur3_x86_32(bytes: &[u8], seed: u32) -> u32 {
    let mut h = Murmur3::new(seed);
    h.write(bytes);
    h.finish()
}

/// The graymatch bucket of a key: `murmur3("salt:value") % 1_000_000`.
///
/// A rule's targets take consecutive ppm ranges in list order; the first whose
/// cumulative ppm is greater than the bucket decides.
///
/// ```
/// let b = graymatch::sticky::bucket("canary-20", b"user-1");
/// assert!(b < 1_000_000);
/// ```
pub fn bucket(salt: &str, value: &[u8]) -> u32 {
    salted(salt, value) % PPM
}

/// The Unleash normalisation of a key: `murmur3("salt:value") % 100 + 1`,
/// in 1..=100, as Unleash's `normalizedHash(value, groupId)` computes it.
///
/// ```
/// assert_eq!(graymatch::sticky::unleash_normalized("AB12A", b"155"), 100);
/// ```
pub fn unleash_normalized(salt: &str, value: &[u8]) -> u32 {
    salted(salt, value) % 100 + 1
}

fn salted(salt: &str, value: &[u8]) -> u32 {
    let mut h = Murmur3::new(0);
    h.write(salt.as_bytes());
    h.write(b":");
    h.write(value);
    h.finish()
}

/// A streaming MurmurHash3 x86_32: the same result for any split of the
/// input into writes, so the salt prefix can be hashed once at compile time.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Murmur3 {
    h1: u32,
    tail: u32,
    tail_len: u32,
    len: u32,
}

impl Murmur3 {
    pub(crate) const fn new(seed: u32) -> Self {
        Murmur3 {
            h1: seed,
            tail: 0,
            tail_len: 0,
            len: 0,
        }
    }

    #[inline]
    fn block(&mut self, k: u32) {
        let k1 = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        self.h1 ^= k1;
        self.h1 = self
            .h1
            .rotate_left(13)
            .wrapping_mul(5)
            .wrapping_add(0xe654_6b64);
    }

    #[inline]
    pub(crate) fn write(&mut self, mut bytes: &[u8]) {
        self.len = self.len.wrapping_add(bytes.len() as u32);
        // Fill a pending tail first.
        while self.tail_len != 0 && !bytes.is_empty() {
            self.tail |= u32::from(bytes[0]) << (8 * self.tail_len);
            self.tail_len += 1;
            bytes = &bytes[1..];
            if self.tail_len == 4 {
                let k = self.tail;
                self.block(k);
                self.tail = 0;
                self.tail_len = 0;
            }
        }
        if bytes.is_empty() {
            return;
        }
        let mut chunks = bytes.chunks_exact(4);
        for c in &mut chunks {
            self.block(u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        }
        for (i, &b) in chunks.remainder().iter().enumerate() {
            self.tail |= u32::from(b) << (8 * i);
        }
        self.tail_len = chunks.remainder().len() as u32;
    }

    #[inline]
    pub(crate) fn write_byte(&mut self, b: u8) {
        self.write(std::slice::from_ref(&b));
    }

    /// The hash of what was written followed by `key`: [`write`](Self::write)
    /// then [`finish`](Self::finish) on a copy, with the pending tail
    /// completed from `key` in one step instead of byte by byte.
    #[inline]
    pub(crate) fn hash_with(&self, key: &[u8]) -> u32 {
        let len = self.len.wrapping_add(key.len() as u32);
        let mut h1 = self.h1;
        let mut tail = self.tail;
        let mut rest = key;
        let have = self.tail_len as usize;
        if have != 0 {
            let need = 4 - have;
            let take = need.min(rest.len());
            for (i, &b) in rest[..take].iter().enumerate() {
                tail |= u32::from(b) << (8 * (have + i));
            }
            rest = &rest[take..];
            if take < need {
                // The key ended inside the tail.
                return fmix(h1 ^ tail_mix(tail), len);
            }
            h1 = block(h1, tail);
            tail = 0;
        }
        let mut chunks = rest.chunks_exact(4);
        for c in &mut chunks {
            h1 = block(h1, u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        }
        let r = chunks.remainder();
        if !r.is_empty() {
            for (i, &b) in r.iter().enumerate() {
                tail |= u32::from(b) << (8 * i);
            }
            h1 ^= tail_mix(tail);
        }
        fmix(h1, len)
    }

    #[inline]
    pub(crate) fn finish(self) -> u32 {
        let mut h1 = self.h1;
        if self.tail_len != 0 {
            let k1 = self.tail.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
            h1 ^= k1;
        }
        h1 ^= self.len;
        h1 ^= h1 >> 16;
        h1 = h1.wrapping_mul(0x85eb_ca6b);
        h1 ^= h1 >> 13;
        h1 = h1.wrapping_mul(0xc2b2_ae35);
        h1 ^= h1 >> 16;
        h1
    }
}

#[inline]
fn block(h1: u32, k: u32) -> u32 {
    (h1 ^ tail_mix(k))
        .rotate_left(13)
        .wrapping_mul(5)
        .wrapping_add(0xe654_6b64)
}

#[inline]
fn tail_mix(k: u32) -> u32 {
    k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2)
}

#[inline]
fn fmix(h1: u32, len: u32) -> u32 {
    let mut h = h1 ^ len;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_with_equals_write_then_finish() {
        let key = b"abc-2026:some-user-id-0123456789-with-a-long-tail";
        for i in 0..=key.len() {
            let mut prefix = Murmur3::new(0);
            prefix.write(&key[..i]);
            for j in i..=key.len() {
                let mut h = prefix;
                h.write(&key[i..j]);
                assert_eq!(prefix.hash_with(&key[i..j]), h.finish(), "{i}, {j}");
            }
        }
    }

    #[test]
    fn streaming_equals_one_shot_for_every_split() {
        let key = b"abc-2026:some-user-id-0123456789-with-a-long-tail";
        let whole = murmur3_x86_32(key, 0);
        for i in 0..=key.len() {
            for j in i..=key.len() {
                let mut h = Murmur3::new(0);
                h.write(&key[..i]);
                h.write(&key[i..j]);
                h.write(&key[j..]);
                assert_eq!(h.finish(), whole, "split at {i}, {j}");
            }
        }
    }
}
