//! Decision counters: per variant, per rule, per reason and per fallback,
//! lock-free, readable as a snapshot for metrics.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use graymatch::{Decision, Reason};

/// Slots per table: distinct variant or rule names counted by name; more
/// are counted in [`Snapshot::overflow`].
const SLOTS: usize = 512;

/// Counts of the decisions a [`GrayLayer`](crate::GrayLayer) made. Cloning
/// shares the counts.
///
/// Counting is a few relaxed atomic additions per request, with no lock and
/// no allocation; a name's slot is found by its address (decided names are
/// interned: one text, one address), so counts survive hot reloads and add
/// up across rule sets. A name given at another address (a literal passed
/// to [`record_fallback`](Counters::record_fallback)) takes a slot of its
/// own, and the snapshot adds equal names up.
///
/// ```
/// use graymatch_tower::Counters;
/// let counters = Counters::new();
/// let m = graymatch::RuleSet::new("stable").compile().unwrap();
/// counters.record(&m.decide(&http::Request::new(())));
/// let snap = counters.snapshot();
/// assert_eq!(snap.variants, [("stable", 1)]);
/// assert_eq!(snap.defaults, 1);
/// ```
#[derive(Clone, Default)]
pub struct Counters {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    variants: Table,
    rules: Table,
    fallbacks: Table,
    defaults: AtomicU64,
    propagated: AtomicU64,
}

struct Table {
    slots: Box<[Slot; SLOTS]>,
    overflow: AtomicU64,
}

#[derive(Default)]
struct Slot {
    name: OnceLock<&'static str>,
    count: AtomicU64,
}

impl Default for Table {
    fn default() -> Self {
        Table {
            slots: Box::new(std::array::from_fn(|_| Slot::default())),
            overflow: AtomicU64::new(0),
        }
    }
}

impl Table {
    /// Counts `name`: in its home slot when it is there (the common case,
    /// inlined), else by probing.
    #[inline]
    fn add(&self, name: &'static str) {
        let start = (name.as_ptr() as usize >> 3).wrapping_mul(0x9E37_79B9) % SLOTS;
        let home = &self.slots[start];
        if home.name.get().is_some_and(|n| std::ptr::eq(*n, name)) {
            home.count.fetch_add(1, Relaxed);
        } else {
            self.probe(name, start);
        }
    }

    #[inline(never)]
    fn probe(&self, name: &'static str, start: usize) {
        for i in 0..SLOTS {
            let slot = &self.slots[(start + i) % SLOTS];
            let found = match slot.name.get() {
                Some(n) => *n,
                None => *slot.name.get_or_init(|| name),
            };
            if std::ptr::eq(found, name) {
                slot.count.fetch_add(1, Relaxed);
                return;
            }
        }
        self.overflow.fetch_add(1, Relaxed);
    }

    fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let mut out: Vec<(&'static str, u64)> = self
            .slots
            .iter()
            .filter_map(|s| Some((*s.name.get()?, s.count.load(Relaxed))))
            .collect();
        out.sort_unstable();
        // One text at several addresses: one entry.
        out.dedup_by(|next, kept| {
            let same = next.0 == kept.0;
            if same {
                kept.1 += next.1;
            }
            same
        });
        out
    }
}

impl Counters {
    /// Fresh counters.
    pub fn new() -> Self {
        Counters::default()
    }

    /// Counts a decision.
    #[inline]
    pub fn record(&self, decision: &Decision) {
        self.inner.variants.add(decision.variant());
        match (decision.reason(), decision.rule()) {
            (Reason::Rule, Some(rule)) => self.inner.rules.add(rule),
            (Reason::Propagated, _) => {
                self.inner.propagated.fetch_add(1, Relaxed);
            }
            _ => {
                self.inner.defaults.fetch_add(1, Relaxed);
            }
        }
    }

    /// Counts a request whose variant had no service and went to the default.
    #[inline]
    pub fn record_fallback(&self, variant: &'static str) {
        self.inner.fallbacks.add(variant);
    }

    /// The counts now, sorted by name.
    pub fn snapshot(&self) -> Snapshot {
        let i = &self.inner;
        Snapshot {
            variants: i.variants.snapshot(),
            rules: i.rules.snapshot(),
            fallbacks: i.fallbacks.snapshot(),
            defaults: i.defaults.load(Relaxed),
            propagated: i.propagated.load(Relaxed),
            overflow: i.variants.overflow.load(Relaxed)
                + i.rules.overflow.load(Relaxed)
                + i.fallbacks.overflow.load(Relaxed),
        }
    }
}

impl fmt::Debug for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Counters").field(&self.snapshot()).finish()
    }
}

/// The counts at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Snapshot {
    /// Requests per variant decided.
    pub variants: Vec<(&'static str, u64)>,
    /// Requests per deciding rule.
    pub rules: Vec<(&'static str, u64)>,
    /// Requests per variant that had no service and were served by the default.
    pub fallbacks: Vec<(&'static str, u64)>,
    /// Requests no rule decided.
    pub defaults: u64,
    /// Requests decided by a trusted incoming tag.
    pub propagated: u64,
    /// Counts of names beyond the table sizes (512 names each), not broken down.
    pub overflow: u64,
}

impl Snapshot {
    /// The count of one variant.
    ///
    /// ```
    /// assert_eq!(graymatch_tower::counters::Snapshot::default().variant("gray"), 0);
    /// ```
    pub fn variant(&self, name: &str) -> u64 {
        find(&self.variants, name)
    }

    /// The count of one rule.
    pub fn rule(&self, name: &str) -> u64 {
        find(&self.rules, name)
    }

    /// The fallback count of one variant.
    pub fn fallback(&self, name: &str) -> u64 {
        find(&self.fallbacks, name)
    }
}

impl fmt::Display for Snapshot {
    /// One line per count: `variant gray 12`, `rule canary-20 7`,
    /// `fallback v3 1`, `default 40`, `propagated 0`, `overflow 0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (kind, list) in [
            ("variant", &self.variants),
            ("rule", &self.rules),
            ("fallback", &self.fallbacks),
        ] {
            for (name, n) in list {
                writeln!(f, "{kind} {name} {n}")?;
            }
        }
        writeln!(f, "default {}", self.defaults)?;
        writeln!(f, "propagated {}", self.propagated)?;
        write!(f, "overflow {}", self.overflow)
    }
}

fn find(list: &[(&'static str, u64)], name: &str) -> u64 {
    list.iter().find(|(n, _)| *n == name).map_or(0, |(_, c)| *c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_many_threads() {
        let m = graymatch::RuleSet::from_json(
            r#"{"default": "stable", "rules": [{"name": "all", "to": "gray", "when": {"header": {"name": "x", "present": true}}}]}"#,
        )
        .unwrap()
        .compile()
        .unwrap();
        let counters = Counters::new();
        std::thread::scope(|s| {
            for t in 0..4 {
                let (m, c) = (&m, counters.clone());
                s.spawn(move || {
                    for i in 0..1000 {
                        let mut req = http::Request::new(());
                        if (i + t) % 2 == 0 {
                            req.headers_mut().insert("x", "1".parse().unwrap());
                        }
                        c.record(&m.decide(&req));
                    }
                });
            }
        });
        let snap = counters.snapshot();
        assert_eq!(snap.variant("gray") + snap.variant("stable"), 4000);
        assert_eq!(snap.rule("all"), 2000);
        assert_eq!(snap.defaults, 2000);
        assert_eq!(snap.overflow, 0);
    }

    fn leak(s: String) -> &'static str {
        Box::leak(s.into_boxed_str())
    }

    #[test]
    fn overflow_is_counted() {
        // Twice: the second round finds each name again, in its home slot
        // (the inlined check) or, after a collision, by probing; the names
        // past the slots overflow both times.
        let table = Table::default();
        let names: Vec<&'static str> = (0..SLOTS + 10).map(|i| leak(format!("n{i}"))).collect();
        for _ in 0..2 {
            names.iter().for_each(|n| table.add(n));
        }
        let counted = table.snapshot();
        assert_eq!(counted.len(), SLOTS);
        assert!(counted.iter().all(|(_, n)| *n == 2));
        assert_eq!(table.overflow.load(Relaxed), 2 * 10);
    }

    #[test]
    fn one_name_is_one_entry() {
        // Interned names (one text, one address, as every decided name is)
        // share a slot; the same text at other addresses takes slots of
        // its own, added up in the snapshot.
        let table = Table::default();
        for _ in 0..3 {
            table.add(graymatch::Tag::new("gray").unwrap().variant());
        }
        table.add(leak("gray".to_owned()));
        table.add(leak("gray".to_owned()));
        table.add(graymatch::Tag::new("stable").unwrap().variant());
        assert_eq!(table.snapshot(), [("gray", 5), ("stable", 1)]);
        assert_eq!(table.overflow.load(Relaxed), 0);
    }
}
