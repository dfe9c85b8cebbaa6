//! The tracker list of one torrent in BEP 12 order, and the walk through
//! it for one announce.
//!
//! BEP 12 asks a client to shuffle each tier once, to try the trackers of a
//! tier in order, to move a tracker that answered to the front of its tier
//! (so the next announce asks it first), and to fall to the next tier only
//! when every tracker of a tier failed. Each announce starts again from the
//! first tracker of the first tier: a tier-one tracker that recovers is
//! used again.

use std::fmt;

use super::backoff::Rng;

/// The `scheme://host:port` part of a tracker URL, for logs and `Debug`:
/// private trackers put a pass key in the path or the query.
pub(crate) fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url
        .get(after_scheme..)
        .and_then(|rest| rest.find(['/', '?', '#']))
        .map_or(url.len(), |i| after_scheme + i);
    url.get(..end).unwrap_or("")
}

/// Where one announce stands in the tier list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub(crate) tier: usize,
    pub(crate) index: usize,
}

/// The shuffled tiers of tracker URLs.
#[derive(Clone)]
pub(crate) struct Tiers {
    tiers: Vec<Vec<String>>,
}

impl fmt::Debug for Tiers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origins: Vec<Vec<&str>> = self
            .tiers
            .iter()
            .map(|t| t.iter().map(|u| origin_of(u)).collect())
            .collect();
        f.debug_tuple("Tiers").field(&origins).finish()
    }
}

impl Tiers {
    /// Drops empty tiers and shuffles each tier once.
    pub(crate) fn new(tiers: Vec<Vec<String>>, rng: &mut Rng) -> Tiers {
        let mut tiers: Vec<Vec<String>> = tiers.into_iter().filter(|t| !t.is_empty()).collect();
        for tier in &mut tiers {
            rng.shuffle(tier);
        }
        Tiers { tiers }
    }

    /// Whether there is no tracker at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.tiers.is_empty()
    }

    /// The tiers in their current order.
    pub(crate) fn as_slice(&self) -> &[Vec<String>] {
        &self.tiers
    }

    /// The tracker the walk starts with.
    pub(crate) fn first(&self) -> Option<Cursor> {
        (!self.tiers.is_empty()).then_some(Cursor { tier: 0, index: 0 })
    }

    /// The URL under `cursor`.
    pub(crate) fn url(&self, cursor: Cursor) -> Option<&str> {
        self.tiers
            .get(cursor.tier)?
            .get(cursor.index)
            .map(String::as_str)
    }

    /// The tracker after `cursor` failed: the next of its tier, else the
    /// first of the next tier; `None` when every tier failed.
    pub(crate) fn after_failure(&self, cursor: Cursor) -> Option<Cursor> {
        let tier_len = self.tiers.get(cursor.tier).map_or(0, Vec::len);
        if cursor.index + 1 < tier_len {
            return Some(Cursor {
                tier: cursor.tier,
                index: cursor.index + 1,
            });
        }
        (cursor.tier + 1 < self.tiers.len()).then_some(Cursor {
            tier: cursor.tier + 1,
            index: 0,
        })
    }

    /// Moves the tracker under `cursor`, which answered, to the front of
    /// its tier.
    pub(crate) fn promote(&mut self, cursor: Cursor) {
        if let Some(tier) = self.tiers.get_mut(cursor.tier) {
            if cursor.index < tier.len() {
                tier[..=cursor.index].rotate_right(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiers(spec: &[&[&str]]) -> Tiers {
        let spec = spec
            .iter()
            .map(|t| t.iter().map(|s| (*s).to_owned()).collect())
            .collect();
        Tiers::new(spec, &mut Rng::new(7))
    }

    #[test]
    fn shuffle_keeps_every_url_in_its_tier_and_drops_empty_tiers() {
        let t = tiers(&[&["a", "b", "c", "d"], &[], &["e"]]);
        assert_eq!(t.as_slice().len(), 2);
        let mut first = t.as_slice()[0].clone();
        first.sort();
        assert_eq!(first, ["a", "b", "c", "d"]);
        assert_eq!(t.as_slice()[1], ["e"]);
    }

    #[test]
    fn shuffle_depends_on_the_seed() {
        let urls: Vec<String> = (0..16).map(|i| format!("u{i}")).collect();
        let orders: std::collections::HashSet<Vec<String>> = (0..8)
            .map(|seed| Tiers::new(vec![urls.clone()], &mut Rng::new(seed)).tiers[0].clone())
            .collect();
        assert!(orders.len() > 1, "every seed gave the same order");
    }

    #[test]
    fn walk_goes_through_a_tier_then_the_next() {
        let t = tiers(&[&["a", "b"], &["c"]]);
        let mut seen = Vec::new();
        let mut cursor = t.first();
        while let Some(c) = cursor {
            seen.push(t.url(c).map(str::to_owned));
            cursor = t.after_failure(c);
        }
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[2].as_deref(), Some("c"));
    }

    #[test]
    fn debug_shows_origins_only() {
        let t = tiers(&[&[
            "http://t.example:80/PASSKEY/announce",
            "https://u.example/a?pk=SECRET",
        ]]);
        let shown = format!("{t:?}");
        assert!(
            !shown.contains("PASSKEY") && !shown.contains("SECRET"),
            "{shown}"
        );
        assert!(shown.contains("http://t.example:80"), "{shown}");
        assert_eq!(origin_of("https://h:1?x"), "https://h:1");
        assert_eq!(origin_of("no-scheme/path"), "no-scheme");
        assert_eq!(origin_of("http://h"), "http://h");
    }

    #[test]
    fn promote_moves_to_front_and_keeps_the_rest_in_order() {
        let mut t = Tiers {
            tiers: vec![vec!["a".into(), "b".into(), "c".into(), "d".into()]],
        };
        t.promote(Cursor { tier: 0, index: 2 });
        assert_eq!(t.tiers[0], ["c", "a", "b", "d"]);
        t.promote(Cursor { tier: 0, index: 0 });
        assert_eq!(t.tiers[0], ["c", "a", "b", "d"]);
        t.promote(Cursor { tier: 3, index: 0 });
        t.promote(Cursor { tier: 0, index: 9 });
        assert_eq!(t.tiers[0], ["c", "a", "b", "d"]);
    }
}
