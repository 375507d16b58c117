//! Lanes: which consumer of a group takes which message, whatever the
//! broker. A [`Lane`] is a consumer's declaration ("I run variant `gray` of
//! group `orders-workers`"); [`Lane::route`] reads a message's tag and says
//! what this consumer does with it; [`Liveness`] remembers which lanes have
//! live consumers, from heartbeats.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use graymatch::carrier::Extractor;
use graymatch::{Decision, Matcher, Reason, Tag};

use crate::error::Error;

/// What a consumer does with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// The message is of this consumer's lane: handle it.
    Process,
    /// A base consumer handles a message of another variant, because no
    /// consumer of that variant's lane takes it (none is live, or the
    /// broker sent the message here after the lane's timeout).
    Reroute,
    /// Another consumer takes it: acknowledge it without handling (a
    /// RabbitMQ lane consumer forwards it to the base first).
    Skip,
}

impl Action {
    /// `processed`, `rerouted` or `skipped`, as the metrics label them.
    ///
    /// ```
    /// assert_eq!(graymatch_messaging::Action::Reroute.as_str(), "rerouted");
    /// ```
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::Process => "processed",
            Action::Reroute => "rerouted",
            Action::Skip => "skipped",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a message goes, as [`Lane::route`] reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Routed {
    /// The message's variant: its tag's when the tag is trusted and names a
    /// declared variant ([`Reason::Propagated`]), else the default
    /// ([`Reason::Default`]).
    pub decision: Decision,
    /// The tag the handler runs under (the rule set's header and baggage
    /// keys), so its outbound calls carry the message's variant on.
    pub tag: Tag,
    /// The declared variant the message's tag names, trusted or not.
    pub claimed: Option<&'static str>,
    /// What this consumer does with it.
    pub action: Action,
}

/// A consumer's lane: the group it belongs to and the variant it runs.
///
/// The rule set is the consumer service's own (as an internal HTTP
/// service's): its declared variants are the lanes, its default is the
/// base lane, its `propagation` names the header and baggage key that carry
/// the tag, and `incoming: trust` makes the consumer follow tags at all
/// (with `ignore`, every message is the default variant's: lanes off).
///
/// ```
/// use graymatch_messaging::{Action, Lane};
///
/// let rules = std::sync::Arc::new(graymatch::RuleSet::from_yaml(
///     "{default: stable, variants: [stable, gray], propagation: {incoming: trust}}")?.compile()?);
/// let base = Lane::new(rules.clone(), "orders-workers", "stable")?;
/// let gray = Lane::new(rules, "orders-workers", "gray")?;
/// assert!(base.is_base() && !gray.is_base());
///
/// let message = vec![("x-gray".to_owned(), "gray".to_owned())];
/// // The gray consumer takes it...
/// assert_eq!(gray.route(&message, true, |_| false).action, Action::Process);
/// // ...so a base consumer that sees it too skips it while the gray lane takes it,
/// assert_eq!(base.route(&message, true, |lane| lane == "gray").action, Action::Skip);
/// // and handles it, in the gray scope, when it does not.
/// let routed = base.route(&message, true, |_| false);
/// assert_eq!((routed.action, routed.tag.variant()), (Action::Reroute, "gray"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Lane {
    matcher: Arc<Matcher>,
    group: Arc<str>,
    variant: &'static str,
}

impl Lane {
    /// The lane of `variant` in consumer group `group`.
    ///
    /// # Errors
    ///
    /// When `group` is not 1 to 64 of `[A-Za-z0-9_-]` (it becomes part of
    /// queue, consumer and subject names), or `variant` is not one of the
    /// rule set's variants.
    ///
    /// ```
    /// use graymatch_messaging::Lane;
    /// let rules = std::sync::Arc::new(
    ///     graymatch::RuleSet::from_yaml("{default: stable, variants: [stable, gray]}")?.compile()?);
    /// let err = Lane::new(rules.clone(), "orders", "blue").err().unwrap();
    /// assert_eq!(err.to_string(), "lane blue of group orders: variant blue is not declared (variants: stable, gray)");
    /// assert!(Lane::new(rules, "orders.workers", "gray").is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(
        matcher: impl Into<Arc<Matcher>>,
        group: &str,
        variant: &str,
    ) -> Result<Self, Error> {
        let matcher = matcher.into();
        let place = || format!("lane {variant} of group {group}");
        if !is_valid_group(group) {
            return Err(Error::config(
                place(),
                "group names are 1 to 64 of [A-Za-z0-9_-]",
            ));
        }
        let Some(variant) = matcher.variants().find(|v| *v == variant) else {
            let all: Vec<&str> = matcher.variants().collect();
            return Err(Error::config(
                place(),
                format!(
                    "variant {variant} is not declared (variants: {})",
                    all.join(", ")
                ),
            ));
        };
        if !matcher.trusts_incoming() {
            tracing::warn!(
                group,
                lane = variant,
                "the consumer's rule set does not trust incoming tags: every message is the default variant's"
            );
        }
        Ok(Lane {
            matcher,
            group: group.into(),
            variant,
        })
    }

    /// The consumer group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The variant this consumer runs.
    pub fn variant(&self) -> &'static str {
        self.variant
    }

    /// Whether this is the base lane (the rule set's default variant).
    pub fn is_base(&self) -> bool {
        self.variant == self.matcher.default_variant()
    }

    /// The consumer's rule set.
    pub fn matcher(&self) -> &Matcher {
        &self.matcher
    }

    /// The variants other than the default: the lanes a base consumer
    /// stands in for.
    pub fn gray_variants(&self) -> impl Iterator<Item = &'static str> + '_ {
        let default = self.matcher.default_variant();
        self.matcher.variants().filter(move |v| *v != default)
    }

    /// Reads `message`'s tag and says what this consumer does with it.
    ///
    /// - `trusted_producer`: whether the producer may choose a variant at
    ///   all (a broker-verified identity, for example); `true` leaves it to
    ///   the rule set's `incoming`. An untrusted tag is ignored: the message
    ///   is the default variant's.
    /// - `lane_takes(variant)`: whether a consumer of that variant's lane
    ///   takes this message too (it is live and the broker delivers the
    ///   message to it). Only a base consumer asks.
    ///
    /// A lane consumer processes its variant's messages and skips the rest;
    /// a base consumer processes the default variant's (untagged and
    /// untrusted ones included), skips another variant's when its lane
    /// takes it, and handles it as rerouted when not.
    pub fn route<C: Extractor + ?Sized>(
        &self,
        message: &C,
        trusted_producer: bool,
        lane_takes: impl FnOnce(&'static str) -> bool,
    ) -> Routed {
        let claimed = self.matcher.read_tag(message);
        let trusted = claimed.filter(|_| trusted_producer && self.matcher.trusts_incoming());
        let default = self.matcher.default_variant();
        let (variant, reason) = match trusted {
            Some(tag) => (tag.variant(), Reason::Propagated),
            None => (default, Reason::Default),
        };
        // The decision is rebuilt through the matcher so the tag has the
        // rule set's keys.
        let decision = match trusted {
            Some(_) => self.matcher.decide_carrier(message),
            None => self.default_decision(),
        };
        debug_assert_eq!((decision.variant(), decision.reason()), (variant, reason));
        let action = if self.is_base() {
            if variant == default {
                Action::Process
            } else if lane_takes(variant) {
                Action::Skip
            } else {
                Action::Reroute
            }
        } else if variant == self.variant {
            Action::Process
        } else {
            Action::Skip
        };
        Routed {
            decision,
            tag: self.matcher.tag(&decision),
            claimed: claimed.map(|t| t.variant()),
            action,
        }
    }

    /// The default variant's tag, with the rule set's keys.
    #[cfg_attr(not(feature = "rabbitmq"), allow(dead_code))]
    pub(crate) fn default_tag(&self) -> Tag {
        self.matcher.tag(&self.default_decision())
    }

    fn default_decision(&self) -> Decision {
        // decide_carrier on an empty carrier is the default decision.
        self.matcher.decide_carrier(&[] as &[(&str, &str)])
    }
}

impl fmt::Debug for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lane")
            .field("group", &self.group)
            .field("variant", &self.variant)
            .field("base", &self.is_base())
            .finish_non_exhaustive()
    }
}

/// Whether `group` is 1 to 64 of `[A-Za-z0-9_-]`.
pub(crate) fn is_valid_group(group: &str) -> bool {
    (1..=64).contains(&group.len())
        && group
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

/// The most instances remembered per lane: beats from more are ignored
/// until some expire.
const MAX_INSTANCES: usize = 1024;

/// Which lanes have live consumers, from heartbeats: a lane is live while
/// one of its instances has beaten within the timeout and not said goodbye.
///
/// Memory is bounded: only the given variants are tracked, at most 1,024
/// instances each, and expired instances are forgotten on the next beat.
///
/// ```
/// use std::time::{Duration, Instant};
/// use graymatch_messaging::Liveness;
///
/// let live = Liveness::new(["gray"], Duration::from_secs(3));
/// let t0 = Instant::now();
/// assert!(!live.is_live("gray", t0));
/// live.beat("gray", 7, t0);
/// assert!(live.is_live("gray", t0 + Duration::from_secs(2)));
/// assert!(!live.is_live("gray", t0 + Duration::from_secs(4)));
/// live.beat("gray", 7, t0);
/// live.leave("gray", 7);
/// assert!(!live.is_live("gray", t0));
/// ```
#[derive(Debug)]
pub struct Liveness {
    timeout: Duration,
    lanes: Mutex<HashMap<&'static str, HashMap<u64, Instant>>>,
}

impl Liveness {
    /// Tracks `variants`, each live for `timeout` after a beat.
    pub fn new(variants: impl IntoIterator<Item = &'static str>, timeout: Duration) -> Self {
        Liveness {
            timeout,
            lanes: Mutex::new(variants.into_iter().map(|v| (v, HashMap::new())).collect()),
        }
    }

    /// The timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Instance `instance` of lane `variant` is alive at `at`. Unknown
    /// variants are ignored.
    pub fn beat(&self, variant: &str, instance: u64, at: Instant) {
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(instances) = lanes.get_mut(variant) else {
            return;
        };
        let timeout = self.timeout;
        instances.retain(|_, last| at.saturating_duration_since(*last) <= timeout);
        if instances.len() < MAX_INSTANCES || instances.contains_key(&instance) {
            let last = instances.entry(instance).or_insert(at);
            *last = (*last).max(at);
        }
    }

    /// Instance `instance` of lane `variant` has stopped.
    pub fn leave(&self, variant: &str, instance: u64) {
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(instances) = lanes.get_mut(variant) {
            instances.remove(&instance);
        }
    }

    /// Whether lane `variant` has an instance that beat within the timeout
    /// before `at`.
    pub fn is_live(&self, variant: &str, at: Instant) -> bool {
        let lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        lanes.get(variant).is_some_and(|instances| {
            instances
                .values()
                .any(|last| at.saturating_duration_since(*last) <= self.timeout)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use graymatch::RuleSet;

    fn rules(trust: bool) -> Matcher {
        let mut r = RuleSet::new("stable");
        r.variants = Some(vec!["stable".into(), "gray".into(), "v3".into()]);
        if trust {
            r.propagation.incoming = graymatch::Incoming::Trust;
        }
        r.compile().unwrap()
    }

    #[test]
    fn route_cases() {
        let m = Arc::new(rules(true));
        let base = Lane::new(m.clone(), "g", "stable").unwrap();
        let gray = Lane::new(m, "g", "gray").unwrap();
        // (name, headers, trusted producer, lanes that take it, base action,
        //  gray action, variant)
        let cases: &[(&str, &[(&str, &str)], bool, &[&str], Action, Action, &str)] = &[
            (
                "untagged",
                &[],
                true,
                &["gray"],
                Action::Process,
                Action::Skip,
                "stable",
            ),
            (
                "default tag",
                &[("x-gray", "stable")],
                true,
                &["gray"],
                Action::Process,
                Action::Skip,
                "stable",
            ),
            (
                "gray, lane live",
                &[("x-gray", "gray")],
                true,
                &["gray"],
                Action::Skip,
                Action::Process,
                "gray",
            ),
            (
                "gray, lane gone",
                &[("x-gray", "gray")],
                true,
                &[],
                Action::Reroute,
                Action::Process,
                "gray",
            ),
            (
                "gray in baggage",
                &[("baggage", "gray=gray")],
                true,
                &[],
                Action::Reroute,
                Action::Process,
                "gray",
            ),
            (
                "declared, no lane",
                &[("x-gray", "v3")],
                true,
                &[],
                Action::Reroute,
                Action::Skip,
                "v3",
            ),
            (
                "unknown tag",
                &[("x-gray", "v9")],
                true,
                &["gray"],
                Action::Process,
                Action::Skip,
                "stable",
            ),
            (
                "forged: producer untrusted",
                &[("x-gray", "gray")],
                false,
                &["gray"],
                Action::Process,
                Action::Skip,
                "stable",
            ),
        ];
        for (name, headers, trusted, live, base_action, gray_action, variant) in cases {
            let takes = |v: &str| live.contains(&v);
            let b = base.route(*headers, *trusted, takes);
            let g = gray.route(*headers, *trusted, takes);
            assert_eq!(b.action, *base_action, "case {name}: base");
            assert_eq!(g.action, *gray_action, "case {name}: gray");
            assert_eq!(b.tag.variant(), *variant, "case {name}: scope");
            assert_eq!(b.decision.variant(), *variant, "case {name}: decision");
        }
    }

    #[test]
    fn untrusting_rule_set_puts_everything_on_base() {
        let m = Arc::new(rules(false));
        let base = Lane::new(m.clone(), "g", "stable").unwrap();
        let gray = Lane::new(m, "g", "gray").unwrap();
        let forged = [("x-gray", "gray")];
        let b = base.route(&forged[..], true, |_| true);
        assert_eq!((b.action, b.tag.variant()), (Action::Process, "stable"));
        assert_eq!(b.claimed, Some("gray"));
        assert_eq!(gray.route(&forged[..], true, |_| true).action, Action::Skip);
    }

    #[test]
    fn lane_errors() {
        let m = Arc::new(rules(true));
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "empty group",
                "",
                "gray",
                "lane gray of group : group names are 1 to 64 of [A-Za-z0-9_-]",
            ),
            (
                "dot in group",
                "a.b",
                "gray",
                "lane gray of group a.b: group names are 1 to 64 of [A-Za-z0-9_-]",
            ),
            (
                "wildcard group",
                "a*",
                "gray",
                "lane gray of group a*: group names are 1 to 64 of [A-Za-z0-9_-]",
            ),
            (
                "undeclared",
                "g",
                "blue",
                "lane blue of group g: variant blue is not declared (variants: stable, gray, v3)",
            ),
        ];
        for (name, group, variant, want) in cases {
            let err = Lane::new(m.clone(), group, variant).err().unwrap();
            assert_eq!(err.to_string(), *want, "case {name}");
        }
    }

    #[test]
    fn liveness_cases() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let live = Liveness::new(["gray"], s(3));
        live.beat("other", 1, t0);
        assert!(
            !live.is_live("other", t0),
            "unknown variants are not tracked"
        );
        live.beat("gray", 1, t0);
        live.beat("gray", 2, t0 + s(2));
        live.leave("gray", 1);
        assert!(live.is_live("gray", t0 + s(4)), "instance 2 is still live");
        assert!(!live.is_live("gray", t0 + s(6)), "instance 2 expired");
        // An older beat does not move a newer one back.
        live.beat("gray", 3, t0 + s(10));
        live.beat("gray", 3, t0 + s(1));
        assert!(live.is_live("gray", t0 + s(12)));
        // Bounded: at most MAX_INSTANCES instances.
        for i in 0..(MAX_INSTANCES as u64 + 100) {
            live.beat("gray", 1000 + i, t0 + s(10));
        }
        let n = live.lanes.lock().unwrap()["gray"].len();
        assert_eq!(n, MAX_INSTANCES);
    }
}
