//! The simulation's reaction to offers (`playlog produce --offers-topic T --offer-response LIFT`): the
//! offers a user holds, as `playlog offers` made them, and the nudge they give the user's next step.
//!
//! Pure: the feed that fills the book from Kafka is `offer_feed`. Only offers shown count: a held-out user
//! is recorded on the topic and never influenced. An offer holds from the user's next session after the one
//! it was made in (the app shows it when the user comes back) until it expires. Tying it to sessions, not
//! to the moment the offer reached the producer, keeps what the simulation does independent of delivery
//! latency, so that a test can tell from the data alone which steps an offer could have moved.

use std::collections::HashMap;
use std::sync::RwLock;

use playlog_model::OfferRecord;

use crate::site::Nudge;

/// What an offer wants of the user, from its rule's id: `upgrade…` rules an upgrade, `retention…` rules that
/// the user stays. The `offer_performance` mart counts conversions by the same convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    Upgrade,
    Stay,
}

impl Goal {
    pub fn of_rule(rule_id: &str) -> Option<Goal> {
        if rule_id.starts_with("upgrade") {
            Some(Goal::Upgrade)
        } else if rule_id.starts_with("retention") {
            Some(Goal::Stay)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Held {
    goal: Goal,
    /// The session the offer was made in: it takes effect in later ones.
    session_id: i64,
    from: i64,
    until: i64,
}

/// The offers users hold, shared by the feed (which adds) and the simulation's threads (which ask).
#[derive(Debug)]
pub struct OfferBook {
    lift: f64,
    by_user: RwLock<HashMap<i64, Vec<Held>>>,
}

impl OfferBook {
    /// `lift` is between 0 (no effect) and 1 (every user takes the offer at the first chance).
    pub fn new(lift: f64) -> OfferBook {
        OfferBook {
            lift,
            by_user: RwLock::new(HashMap::new()),
        }
    }

    /// Records an offer. Held-out decisions and rules without a known goal change nothing; offers the user
    /// already holds past their expiry are dropped, so the book stays as small as the live offers.
    pub fn add(&self, offer: &OfferRecord) -> bool {
        let Some(goal) = Goal::of_rule(&offer.rule_id) else {
            return false;
        };
        if offer.holdout {
            return false;
        }
        let mut by_user = self
            .by_user
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let held = by_user.entry(offer.user_id).or_default();
        held.retain(|h| h.until > offer.ts);
        held.push(Held {
            goal,
            session_id: offer.session_id,
            from: offer.ts,
            until: offer.expires_at,
        });
        true
    }

    /// The nudge for `user_id`'s step at event time `ts` in session `session_id`, if the user holds an
    /// offer made in an earlier session that has not expired.
    pub fn nudge(&self, user_id: i64, session_id: i64, ts: i64) -> Option<Nudge> {
        let by_user = self
            .by_user
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let held = by_user.get(&user_id)?;
        let live = held
            .iter()
            .rev()
            .find(|h| h.session_id != session_id && h.from <= ts && ts < h.until)?;
        Some(match live.goal {
            Goal::Upgrade => Nudge::Upgrade(self.lift),
            Goal::Stay => Nudge::Stay(self.lift),
        })
    }

    /// Users holding at least one offer (live or not yet pruned).
    pub fn users(&self) -> usize {
        self.by_user
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(rule: &str, user: i64, ts: i64, holdout: bool) -> OfferRecord {
        OfferRecord {
            offer_id: format!("{rule}:{ts}"),
            rule_id: rule.into(),
            user_id: user,
            session_id: ts,
            trigger_event_id: ts.to_string(),
            ts,
            expires_at: ts + 1000,
            holdout,
            emitted_at: 0,
        }
    }

    #[test]
    fn an_offer_nudges_its_user_in_later_sessions_until_it_expires() {
        let book = OfferBook::new(0.4);
        assert!(book.add(&offer("upgrade_nudge", 7, 5000, false)));
        assert_eq!(book.nudge(7, 1, 4999), None, "before the offer was made");
        assert_eq!(
            book.nudge(7, 5000, 5100),
            None,
            "the session it was made in"
        );
        assert_eq!(book.nudge(7, 2, 5000), Some(Nudge::Upgrade(0.4)));
        assert_eq!(book.nudge(7, 2, 5999), Some(Nudge::Upgrade(0.4)));
        assert_eq!(book.nudge(7, 2, 6000), None, "expired");
        assert_eq!(book.nudge(8, 2, 5500), None, "another user");
    }

    #[test]
    fn held_out_users_and_rules_without_a_goal_are_never_nudged() {
        let book = OfferBook::new(0.4);
        assert!(!book.add(&offer("upgrade_nudge", 7, 5000, true)));
        assert!(!book.add(&offer("birthday", 8, 5000, false)));
        assert_eq!(book.nudge(7, 1, 5500), None);
        assert_eq!(book.nudge(8, 1, 5500), None);
        assert_eq!(book.users(), 0);
    }

    #[test]
    fn the_latest_live_offer_decides_and_expired_ones_are_pruned() {
        let book = OfferBook::new(0.4);
        book.add(&offer("upgrade_nudge", 7, 1000, false));
        book.add(&offer("retention", 7, 1500, false));
        assert_eq!(book.nudge(7, 1, 1600), Some(Nudge::Stay(0.4)));
        assert_eq!(book.nudge(7, 1, 1200), Some(Nudge::Upgrade(0.4)));
        book.add(&offer("retention", 7, 9000, false));
        let held = book.by_user.read().expect("lock")[&7].len();
        assert_eq!(held, 1, "the two expired offers are gone");
    }
}
