//! The identity of a rule set's text: a SHA-256 digest of the text and the
//! revision of the place it came from.

use std::fmt;
use std::num::NonZeroU64;
use std::sync::Arc;

/// Which text a [`Matcher`](crate::Matcher) was compiled from: the SHA-256
/// digest of the exact bytes (the same text gives the same digest on every
/// instance and in `graymatch check`), and the revision the source gave it
/// (an etcd revision, an HTTP `ETag`, a file's modification time).
///
/// This crate computes no hash: whoever loads the text (`graymatch-source`,
/// the CLI) passes the digest in. Cloning is cheap.
///
/// ```
/// use graymatch::RuleSetVersion;
///
/// let mut digest = [0u8; 32];
/// digest[..6].copy_from_slice(&[0x3f, 0x2a, 0x9c, 0x1b, 0x7d, 0x4e]);
/// let v = RuleSetVersion::new(digest).with_revision("etcd revision 42");
/// assert_eq!(v.to_string(), "3f2a9c1b7d4e (etcd revision 42)");
/// assert_eq!(v.id().to_string(), "3f2a9c1b7d4e");
/// assert!(v.hash().starts_with("3f2a9c1b7d4e0000"));
/// assert_eq!(v.revision(), Some("etcd revision 42"));
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RuleSetVersion {
    digest: [u8; 32],
    revision: Option<Arc<str>>,
}

impl RuleSetVersion {
    /// The version of a text whose SHA-256 digest is `digest`, with no
    /// revision.
    ///
    /// ```
    /// let v = graymatch::RuleSetVersion::new([0xab; 32]);
    /// assert_eq!(v.revision(), None);
    /// assert_eq!(v.to_string(), "abababababab");
    /// ```
    pub fn new(digest: [u8; 32]) -> Self {
        RuleSetVersion {
            digest,
            revision: None,
        }
    }

    /// The same version with the source's revision (free text, such as
    /// `etcd revision 42`, `etag "5f1c"` or `mtime 2026-11-23T10:00:00Z`).
    ///
    /// ```
    /// let v = graymatch::RuleSetVersion::new([0; 32]).with_revision("etag \"5f1c\"");
    /// assert_eq!(v.revision(), Some("etag \"5f1c\""));
    /// ```
    pub fn with_revision(mut self, revision: impl Into<String>) -> Self {
        self.revision = Some(Arc::from(revision.into()));
        self
    }

    /// The SHA-256 digest of the text.
    ///
    /// ```
    /// assert_eq!(graymatch::RuleSetVersion::new([1; 32]).digest(), &[1; 32]);
    /// ```
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// The digest as 64 lowercase hex digits (as `sha256sum` prints it).
    ///
    /// ```
    /// assert_eq!(graymatch::RuleSetVersion::new([0xff; 32]).hash(), "f".repeat(64));
    /// ```
    pub fn hash(&self) -> String {
        use fmt::Write as _;
        let mut out = String::with_capacity(64);
        for b in self.digest {
            let _ = write!(out, "{b:02x}");
        }
        out
    }

    /// The source's revision, if it gave one.
    pub fn revision(&self) -> Option<&str> {
        self.revision.as_deref()
    }

    /// The short, `Copy` id of this version that every
    /// [`Decision`](crate::Decision) of a labelled matcher carries: the first 8 bytes of
    /// the digest, shown as its first 12 hex digits.
    ///
    /// ```
    /// let v = graymatch::RuleSetVersion::new([0x12; 32]);
    /// assert_eq!(v.id().to_string(), "121212121212");
    /// assert!(v.hash().starts_with(&v.id().to_string()));
    /// ```
    pub fn id(&self) -> VersionId {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.digest[..8]);
        VersionId(NonZeroU64::new(u64::from_be_bytes(first)).unwrap_or(NonZeroU64::MIN))
    }
}

impl fmt::Display for RuleSetVersion {
    /// `3f2a9c1b7d4e (etcd revision 42)`, or the short hash alone.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.revision {
            Some(r) => write!(f, "{} ({r})", self.id()),
            None => write!(f, "{}", self.id()),
        }
    }
}

impl fmt::Debug for RuleSetVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleSetVersion")
            .field("sha256", &self.hash())
            .field("revision", &self.revision)
            .finish()
    }
}

/// The short id of a [`RuleSetVersion`]: the first 8 bytes of its SHA-256
/// digest. `Copy` and 8 bytes, so every [`Decision`](crate::Decision) can
/// carry it; shown as 12 hex digits, the prefix of the full hash that logs,
/// metrics and `graymatch check` print.
///
/// ```
/// let id = graymatch::RuleSetVersion::new([0x0a; 32]).id();
/// assert_eq!(id.to_string(), "0a0a0a0a0a0a");
/// assert_eq!(id.get(), 0x0a0a_0a0a_0a0a_0a0a);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VersionId(NonZeroU64);

impl VersionId {
    /// The first 8 bytes of the digest, big-endian (1 when they are all zero).
    pub fn get(self) -> u64 {
        self.0.get()
    }
}

impl fmt::Display for VersionId {
    /// The first 12 hex digits of the digest.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:012x}", self.0.get() >> 16)
    }
}
