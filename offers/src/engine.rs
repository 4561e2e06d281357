//! Rule evaluation over a stream of page views: per-user state, event-time timers, cooldowns, the
//! frequency cap and holdouts. Pure and deterministic: the same page views, partition by partition in
//! the same order, make the same decisions with the same ids, however partitions interleave, and however
//! often the idle state is swept. That is what lets a replay after a crash reproduce the offers exactly.
//!
//! **The watermark.** Each partition's watermark is the greatest event time seen on it. A user's page views
//! are all in one partition (keyed by user), in order. A timer ("visited Upgrade, not followed by Submit
//! Upgrade within 10 minutes") is due when the watermark of its partition passes its deadline, strictly:
//! a follow-up at exactly the deadline is within time and cancels it. Due timers fire before the event
//! that moved the watermark is applied, in deadline order (then user, then rule), because they were due
//! first. A partition that falls silent holds its timers until its next event: offers fire on event time,
//! never on the clock, so that a replay fires them at the same place.
//!
//! **State.** A user's session state (counts, level, pending timers) lapses `session_gap` after their last
//! page view. The lapse is checked when their next page view arrives, so results do not depend on when
//! [`Engine::sweep`] frees memory. What cooldowns and the frequency cap need (the time of each user's last
//! offers) is kept apart, and only as long as the longest of those windows.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::rules::{LevelFilter, Rule, Rules, Thresholds, Trigger};

mod checkpoint;
pub use checkpoint::Checkpoint;

/// One page view, as the engine needs it.
#[derive(Debug, Clone, Copy)]
pub struct PageView<'a> {
    pub partition: i32,
    pub event_id: &'a str,
    /// Event time, milliseconds since the epoch.
    pub ts: i64,
    pub user_id: i64,
    pub session_id: i64,
    pub page: &'a str,
    pub paid: bool,
}

/// An offer made, or a holdout recorded, for one user by one rule; `offer_events`' fields (camelCase).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// `RULE:TRIGGER_EVENT_ID`: the same on every replay of the same events.
    pub offer_id: String,
    pub rule_id: String,
    pub user_id: i64,
    pub session_id: i64,
    pub trigger_event_id: String,
    /// Event time of the decision: the triggering page view's, or a timer's deadline.
    pub ts: i64,
    pub expires_at: i64,
    /// Held out: recorded, and no offer is shown.
    pub holdout: bool,
}

impl Decision {
    /// The record sent on `offer_events`, sent at `emitted_at` (wall clock).
    pub fn record(&self, emitted_at: i64) -> playlog_model::OfferRecord {
        playlog_model::OfferRecord {
            offer_id: self.offer_id.clone(),
            rule_id: self.rule_id.clone(),
            user_id: self.user_id,
            session_id: self.session_id,
            trigger_event_id: self.trigger_event_id.clone(),
            ts: self.ts,
            expires_at: self.expires_at,
            holdout: self.holdout,
            emitted_at,
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    plays: u32,
    adverts: u32,
    thumbs_up: u32,
    thumbs_down: u32,
    errors: u32,
}

impl Counts {
    fn count(&mut self, page: &str) {
        match page {
            "NextSong" => self.plays += 1,
            "Roll Advert" => self.adverts += 1,
            "Thumbs Up" => self.thumbs_up += 1,
            "Thumbs Down" => self.thumbs_down += 1,
            "Error" => self.errors += 1,
            _ => {}
        }
    }

    fn reach(&self, t: &Thresholds) -> bool {
        let at_least = |have: u32, want: Option<u32>| want.is_none_or(|w| have >= w);
        at_least(self.plays, t.plays)
            && at_least(self.adverts, t.adverts)
            && at_least(self.thumbs_up, t.thumbs_up)
            && at_least(self.thumbs_down, t.thumbs_down)
            && at_least(self.errors, t.errors)
    }
}

/// A pending timer, ordered by when it is due.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    deadline: i64,
    user_id: i64,
    rule: usize,
    session_id: i64,
    trigger_event_id: String,
}

#[derive(Debug)]
struct Session {
    partition: i32,
    session_id: i64,
    last_ts: i64,
    paid: bool,
    counts: Counts,
    /// Session rules that have fired in this session: each fires once per session.
    fired: BTreeSet<usize>,
    /// Deadlines of this user's pending timers, per rule (one pending visit per rule).
    timers: BTreeMap<usize, i64>,
}

/// When a user last got an offer (or holdout): for cooldowns and the frequency cap.
#[derive(Debug, Default)]
struct Recent {
    partition: i32,
    any: i64,
    per_rule: BTreeMap<usize, i64>,
}

pub struct Engine {
    rules: Rules,
    watermarks: HashMap<i32, i64>,
    sessions: HashMap<i64, Session>,
    recent: HashMap<i64, Recent>,
    /// Per partition, the pending timers in the order they are due.
    timers: HashMap<i32, BTreeSet<Timer>>,
    /// How long `recent` entries matter: the longest cooldown or the frequency cap.
    recent_ms: i64,
}

impl Engine {
    pub fn new(rules: Rules) -> Engine {
        let recent_ms = rules
            .rules
            .iter()
            .map(|r| r.cooldown_ms)
            .chain([rules.settings.frequency_cap_ms])
            .max()
            .unwrap_or(0);
        Engine {
            rules,
            watermarks: HashMap::new(),
            sessions: HashMap::new(),
            recent: HashMap::new(),
            timers: HashMap::new(),
            recent_ms,
        }
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Turns a rule on or off from now on (the rules file's `enabled`, reloaded while running). Returns
    /// whether the rule exists.
    pub fn set_enabled(&mut self, rule_id: &str, enabled: bool) -> bool {
        match self.rules.rules.iter_mut().find(|r| r.id == rule_id) {
            Some(r) => {
                r.enabled = enabled;
                true
            }
            None => false,
        }
    }

    /// The partition's watermark: the greatest event time seen on it.
    pub fn watermark(&self, partition: i32) -> Option<i64> {
        self.watermarks.get(&partition).copied()
    }

    /// Users whose state is held, for the state-size metric.
    pub fn state_size(&self) -> usize {
        self.sessions.len() + self.recent.len()
    }

    /// Applies one page view; returns the decisions it causes, in order: timers it made due, then rules it
    /// triggers.
    pub fn on_page_view(&mut self, view: &PageView<'_>) -> Vec<Decision> {
        let mut out = Vec::new();
        let watermark = self.watermarks.entry(view.partition).or_insert(i64::MIN);
        *watermark = (*watermark).max(view.ts);
        let watermark = *watermark;
        self.fire_due(view.partition, watermark, &mut out);

        let gap = self.rules.settings.session_gap_ms;
        let session = self
            .sessions
            .entry(view.user_id)
            .or_insert_with(|| Session {
                partition: view.partition,
                session_id: view.session_id,
                last_ts: view.ts,
                paid: view.paid,
                counts: Counts::default(),
                fired: BTreeSet::new(),
                timers: BTreeMap::new(),
            });
        if session.session_id != view.session_id || view.ts > session.last_ts + gap {
            // A new session: counts start again. Pending timers belong to visits, not sessions: they stay.
            session.session_id = view.session_id;
            session.counts = Counts::default();
            session.fired.clear();
        }
        session.partition = view.partition;
        session.last_ts = view.ts;
        session.paid = view.paid;
        session.counts.count(view.page);

        let mut triggered = Vec::new();
        for (i, rule) in self.rules.rules.iter().enumerate() {
            if !rule.enabled || !level_matches(rule.level, view.paid) {
                continue;
            }
            match &rule.trigger {
                Trigger::Session(t) => {
                    if !session.fired.contains(&i) && session.counts.reach(t) {
                        session.fired.insert(i);
                        triggered.push(i);
                    }
                }
                Trigger::Visited(page) => {
                    if page == view.page {
                        triggered.push(i);
                    }
                }
                Trigger::NotFollowed {
                    page, within_ms, ..
                } => {
                    if page == view.page && !session.timers.contains_key(&i) {
                        let deadline = view.ts + within_ms;
                        session.timers.insert(i, deadline);
                        self.timers
                            .entry(view.partition)
                            .or_default()
                            .insert(Timer {
                                deadline,
                                user_id: view.user_id,
                                rule: i,
                                session_id: view.session_id,
                                trigger_event_id: view.event_id.to_owned(),
                            });
                    }
                }
            }
        }
        // A follow-up page cancels the user's pending timers that wait for it (whatever the level now).
        let cancelled: Vec<(usize, i64)> = session
            .timers
            .iter()
            .filter(|(rule, _)| {
                matches!(&self.rules.rules[**rule].trigger,
                    Trigger::NotFollowed { follow, .. } if follow == view.page)
            })
            .map(|(r, d)| (*r, *d))
            .collect();
        for (rule, deadline) in cancelled {
            session.timers.remove(&rule);
            if let Some(set) = self.timers.get_mut(&view.partition) {
                set.retain(|t| {
                    !(t.user_id == view.user_id && t.rule == rule && t.deadline == deadline)
                });
            }
        }
        for rule in triggered {
            if let Some(d) = self.decide(
                rule,
                view.partition,
                view.user_id,
                view.session_id,
                view.event_id,
                view.ts,
            ) {
                out.push(d);
            }
        }
        out
    }

    /// Fires the partition's timers that are due at `watermark`, in deadline order.
    fn fire_due(&mut self, partition: i32, watermark: i64, out: &mut Vec<Decision>) {
        loop {
            let Some(set) = self.timers.get_mut(&partition) else {
                return;
            };
            let Some(first) = set.first() else {
                return;
            };
            if first.deadline >= watermark {
                return;
            }
            let Some(timer) = set.pop_first() else {
                return;
            };
            if let Some(s) = self.sessions.get_mut(&timer.user_id) {
                s.timers.remove(&timer.rule);
            }
            if self.rules.rules[timer.rule].enabled
                && let Some(d) = self.decide(
                    timer.rule,
                    partition,
                    timer.user_id,
                    timer.session_id,
                    &timer.trigger_event_id,
                    timer.deadline,
                )
            {
                out.push(d);
            }
        }
    }

    /// A triggered rule becomes a decision unless the rule's cooldown or the frequency cap says no.
    fn decide(
        &mut self,
        rule: usize,
        partition: i32,
        user_id: i64,
        session_id: i64,
        trigger_event_id: &str,
        ts: i64,
    ) -> Option<Decision> {
        let r: &Rule = &self.rules.rules[rule];
        let cap = self.rules.settings.frequency_cap_ms;
        let recent = self.recent.entry(user_id).or_insert(Recent {
            partition,
            any: i64::MIN / 2,
            per_rule: BTreeMap::new(),
        });
        if ts < recent.any.saturating_add(cap) {
            return None;
        }
        if let Some(last) = recent.per_rule.get(&rule)
            && ts < last + r.cooldown_ms
        {
            return None;
        }
        recent.any = ts;
        recent.per_rule.insert(rule, ts);
        Some(Decision {
            offer_id: format!("{}:{trigger_event_id}", r.id),
            rule_id: r.id.clone(),
            user_id,
            session_id,
            trigger_event_id: trigger_event_id.to_owned(),
            ts,
            expires_at: ts + r.expiry_ms,
            holdout: held_out(&r.id, user_id, r.holdout),
        })
    }

    /// Frees the state no later page view can need: sessions past their gap without pending timers,
    /// and offer times past every cooldown and the cap. Decisions do not depend on when this runs.
    pub fn sweep(&mut self) {
        let gap = self.rules.settings.session_gap_ms;
        let watermarks = &self.watermarks;
        self.sessions.retain(|_, s| {
            let wm = watermarks.get(&s.partition).copied().unwrap_or(i64::MIN);
            !s.timers.is_empty() || wm <= s.last_ts + gap
        });
        let newest = self.watermarks.values().copied().min().unwrap_or(i64::MIN);
        let keep = self.recent_ms;
        self.recent.retain(|_, r| {
            let last = r.per_rule.values().copied().max().unwrap_or(r.any);
            newest <= last.saturating_add(keep)
        });
    }
}

fn level_matches(filter: LevelFilter, paid: bool) -> bool {
    match filter {
        LevelFilter::Any => true,
        LevelFilter::Paid => paid,
        LevelFilter::Free => !paid,
    }
}

/// Whether a user is in a rule's holdout: a stable hash (FNV-1a, 64 bits) of rule and user, so the same
/// users are held out on every replay, on every machine and in the offline recomputation.
pub fn held_out(rule_id: &str, user_id: i64, share: f64) -> bool {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in rule_id
        .bytes()
        .chain([b'/'])
        .chain(user_id.to_string().bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    ((h % 10_000) as f64) < (share * 10_000.0).round()
}

/// A page view as tests write it: (partition, user, session, ts, page, paid).
#[cfg(test)]
pub(crate) type TestView<'a> = (i32, i64, i64, i64, &'a str, bool);

/// Feeds page views to an engine, the `i`-th with event id `e{from + i}`; returns the decisions.
#[cfg(test)]
pub(crate) fn feed(engine: &mut Engine, views: &[TestView<'_>], from: usize) -> Vec<Decision> {
    let mut out = Vec::new();
    for (k, &(partition, user_id, session_id, ts, page, paid)) in views.iter().enumerate() {
        let id = format!("e{}", k + from);
        out.extend(engine.on_page_view(&PageView {
            partition,
            event_id: &id,
            ts,
            user_id,
            session_id,
            page,
            paid,
        }));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn rules(extra: &str) -> Rules {
        Rules::parse(
            &format!(
                "[settings]\nfrequency_cap = \"1m\"\nexpiry = \"1d\"\nsession_gap = \"30m\"\n{extra}"
            ),
            "test",
        )
        .unwrap()
    }

    const REMINDER: &str = "[rules.reminder]\ndescription = \"d\"\nlevel = \"free\"\nvisited = \"Upgrade\"\nnot_followed_by = \"Submit Upgrade\"\nwithin = \"10m\"\ncooldown = \"1h\"\nholdout = 0.0\n";
    const NUDGE: &str = "[rules.nudge]\ndescription = \"d\"\nlevel = \"free\"\nsession = { adverts = 2, plays = 3 }\ncooldown = \"1h\"\nholdout = 0.0\n";

    struct Feed {
        engine: Engine,
        n: usize,
        out: Vec<Decision>,
    }

    impl Feed {
        fn new(rules: Rules) -> Feed {
            Feed {
                engine: Engine::new(rules),
                n: 0,
                out: Vec::new(),
            }
        }

        fn view(
            &mut self,
            partition: i32,
            user: i64,
            session: i64,
            ts: i64,
            page: &str,
        ) -> &mut Feed {
            self.view_as(partition, user, session, ts, page, false)
        }

        fn view_as(
            &mut self,
            partition: i32,
            user: i64,
            session: i64,
            ts: i64,
            page: &str,
            paid: bool,
        ) -> &mut Feed {
            self.n += 1;
            let d = feed(
                &mut self.engine,
                &[(partition, user, session, ts, page, paid)],
                self.n,
            );
            self.out.extend(d);
            self
        }

        fn ids(&self) -> Vec<String> {
            self.out.iter().map(|d| d.offer_id.clone()).collect()
        }
    }

    #[test]
    fn a_session_rule_fires_once_when_every_threshold_is_reached() {
        let mut f = Feed::new(rules(NUDGE));
        for (i, page) in [
            "NextSong",
            "Roll Advert",
            "NextSong",
            "Roll Advert",
            "NextSong",
            "NextSong",
        ]
        .iter()
        .enumerate()
        {
            f.view(0, 7, 1, i as i64 * 1000, page);
        }
        assert_eq!(f.ids(), ["nudge:e5"]);
        assert_eq!(f.out[0].expires_at, 4000 + 86_400_000);
        // A new session counts from zero again, and the cooldown (1h) still holds there.
        for i in 0..5 {
            f.view(
                0,
                7,
                2,
                40 * MIN + i,
                if i < 2 { "Roll Advert" } else { "NextSong" },
            );
        }
        assert_eq!(f.ids().len(), 1);
        for i in 0..5 {
            f.view(
                0,
                7,
                3,
                120 * MIN + i,
                if i < 2 { "Roll Advert" } else { "NextSong" },
            );
        }
        assert_eq!(f.ids(), ["nudge:e5", "nudge:e16"]);
    }

    #[test]
    fn a_timer_fires_when_the_watermark_passes_its_deadline_strictly() {
        let mut f = Feed::new(rules(REMINDER));
        f.view(0, 1, 1, 0, "Upgrade");
        // Another user's event on the same partition, exactly at the deadline: not past it.
        f.view(0, 2, 9, 10 * MIN, "Home");
        assert!(f.out.is_empty());
        // An event on another partition moves only that partition's watermark.
        f.view(1, 3, 8, 60 * MIN, "Home");
        assert!(f.out.is_empty());
        f.view(0, 2, 9, 10 * MIN + 1, "Home");
        assert_eq!(f.ids(), ["reminder:e1"]);
        assert_eq!(
            f.out[0].ts,
            10 * MIN,
            "event time of a timer's decision is its deadline"
        );
        assert_eq!(f.out[0].user_id, 1);
    }

    #[test]
    fn a_follow_up_within_time_cancels_and_one_past_it_comes_too_late() {
        let mut f = Feed::new(rules(REMINDER));
        f.view(0, 1, 1, 0, "Upgrade");
        f.view(0, 1, 1, 10 * MIN, "Submit Upgrade"); // at the deadline: within time
        f.view(0, 2, 2, 30 * MIN, "Home");
        assert!(f.out.is_empty());
        f.view(0, 4, 3, 40 * MIN, "Upgrade");
        // The user's own late submit moves the watermark past the deadline: the timer fires first.
        f.view(0, 4, 3, 50 * MIN + 1, "Submit Upgrade");
        assert_eq!(f.ids(), ["reminder:e4"]);
    }

    #[test]
    fn a_second_visit_while_a_timer_waits_sets_no_second_timer() {
        let mut f = Feed::new(rules(REMINDER));
        f.view(0, 1, 1, 0, "Upgrade");
        f.view(0, 1, 1, MIN, "Upgrade");
        f.view(0, 2, 2, 30 * MIN, "Home");
        assert_eq!(f.ids(), ["reminder:e1"]);
    }

    #[test]
    fn the_frequency_cap_holds_across_rules_and_paid_users_get_no_free_offer() {
        let mut f = Feed::new(rules(&format!("{NUDGE}\n{REMINDER}")));
        for (i, page) in [
            "Roll Advert",
            "Roll Advert",
            "NextSong",
            "NextSong",
            "NextSong",
        ]
        .iter()
        .enumerate()
        {
            f.view(0, 1, 1, i as i64, page);
        }
        f.view(0, 1, 1, 10, "Upgrade");
        f.view(0, 1, 1, 30, "Home");
        f.view(0, 2, 2, 20 * MIN, "Home");
        // The reminder fired 10 min after the nudge, past the 1-minute cap: both.
        assert_eq!(f.ids(), ["nudge:e5", "reminder:e6"]);
        let mut g = Feed::new(rules(NUDGE));
        for i in 0..6 {
            let page = if i < 2 { "Roll Advert" } else { "NextSong" };
            g.view_as(0, 5, 1, i, page, true);
        }
        assert!(g.out.is_empty());
    }

    #[test]
    fn a_disabled_rule_makes_nothing_until_enabled() {
        let mut f = Feed::new(rules(REMINDER));
        assert!(f.engine.set_enabled("reminder", false));
        f.view(0, 1, 1, 0, "Upgrade");
        f.view(0, 2, 2, 30 * MIN, "Home");
        assert!(f.out.is_empty());
        assert!(f.engine.set_enabled("reminder", true));
        f.view(0, 1, 3, 40 * MIN, "Upgrade");
        f.view(0, 2, 2, 60 * MIN, "Home");
        assert_eq!(f.ids(), ["reminder:e3"]);
        assert!(!f.engine.set_enabled("nope", true));
    }

    #[test]
    fn decisions_do_not_depend_on_interleaving_or_on_sweeps() {
        // Two partitions' events, interleaved two ways, one run sweeping after every event.
        let shipped = Rules::shipped();
        let pages = [
            "NextSong",
            "Roll Advert",
            "Upgrade",
            "Home",
            "NextSong",
            "Downgrade",
            "Submit Upgrade",
        ];
        let mut events = Vec::new();
        for i in 0..400i64 {
            let partition = (i % 2) as i32;
            let user = 10 + (i % 6);
            let page = pages[(i * 7 % 11) as usize % pages.len()];
            events.push((
                partition,
                user,
                (i / 40) + user * 100,
                i * 37_000,
                page,
                user % 3 == 0,
            ));
        }
        let run = |order: &[usize], sweep: bool| {
            let mut e = Engine::new(shipped.clone());
            let mut out = BTreeSet::new();
            for &k in order {
                for d in feed(&mut e, &events[k..=k], k) {
                    out.insert((d.offer_id, d.ts, d.holdout));
                }
                if sweep {
                    e.sweep();
                }
            }
            out
        };
        let in_order: Vec<usize> = (0..events.len()).collect();
        let mut by_partition: Vec<usize> =
            in_order.iter().copied().filter(|k| k % 2 == 0).collect();
        by_partition.extend(in_order.iter().copied().filter(|k| k % 2 == 1));
        let a = run(&in_order, false);
        assert!(!a.is_empty());
        assert_eq!(a, run(&by_partition, false));
        assert_eq!(a, run(&in_order, true));
    }

    #[test]
    fn holdouts_are_stable_and_near_their_share() {
        let held = (0..20_000)
            .filter(|u| held_out("upgrade_nudge", *u, 0.1))
            .count();
        assert!((1_800..2_200).contains(&held), "{held} of 20000");
        assert_eq!(held_out("r", 42, 0.1), held_out("r", 42, 0.1));
        assert!(!held_out("r", 42, 0.0));
    }

    #[test]
    fn idle_sessions_are_swept_and_pending_timers_keep_theirs() {
        let mut f = Feed::new(rules(REMINDER));
        f.view(0, 1, 1, 0, "Home");
        f.view(0, 2, 2, 0, "Upgrade");
        f.view(0, 3, 3, 31 * MIN, "Home");
        // User 2's timer fired on user 3's event; user 1 is idle past the gap.
        f.engine.sweep();
        assert_eq!(f.engine.sessions.len(), 1, "only user 3's session is left");
        assert_eq!(f.ids(), ["reminder:e2"]);
    }
}
