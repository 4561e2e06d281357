//! A partition's evaluation state as data, to be stored with each offset commit and restored on restart
//! or on a new assignment.
//!
//! Why a checkpoint and not a replay from a bounded point: cooldowns and the frequency cap chain. Whether
//! an offer was made depends on the last one, which depended on the one before: a replay that starts a
//! week back can offer on day 6 where the uninterrupted run offered on day 0 and day 8, and then differ on
//! day 14. Restored from a checkpoint taken at the committed offset, the engine continues exactly as the
//! uninterrupted run did.
//!
//! Rules are named by id, not position, so a checkpoint survives rules added, removed or reordered in
//! the file; state of a rule no longer there is dropped.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Counts, Engine, Recent, Session, Timer};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub partition: i32,
    pub watermark: Option<i64>,
    /// By user id.
    pub users: Vec<UserState>,
    /// In the order they are due.
    pub timers: Vec<TimerState>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserState {
    pub user_id: i64,
    pub session: Option<SessionState>,
    pub recent: Option<RecentState>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionState {
    pub session_id: i64,
    pub last_ts: i64,
    pub paid: bool,
    /// plays, adverts, thumbs up, thumbs down, errors.
    pub counts: [u32; 5],
    pub fired: Vec<String>,
    pub timers: Vec<(String, i64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentState {
    pub any: i64,
    pub per_rule: Vec<(String, i64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerState {
    pub deadline: i64,
    pub user_id: i64,
    pub rule: String,
    pub session_id: i64,
    pub trigger_event_id: String,
}

fn user_entry(users: &mut BTreeMap<i64, UserState>, user_id: i64) -> &mut UserState {
    users.entry(user_id).or_insert(UserState {
        user_id,
        session: None,
        recent: None,
    })
}

impl Engine {
    fn rule_id(&self, index: usize) -> String {
        self.rules.rules[index].id.clone()
    }

    fn rule_index(&self, id: &str) -> Option<usize> {
        self.rules.rules.iter().position(|r| r.id == id)
    }

    /// The state of one partition's users.
    pub fn checkpoint(&self, partition: i32) -> Checkpoint {
        let mut users: BTreeMap<i64, UserState> = BTreeMap::new();
        for (user_id, s) in self
            .sessions
            .iter()
            .filter(|(_, s)| s.partition == partition)
        {
            let c = s.counts;
            user_entry(&mut users, *user_id).session = Some(SessionState {
                session_id: s.session_id,
                last_ts: s.last_ts,
                paid: s.paid,
                counts: [c.plays, c.adverts, c.thumbs_up, c.thumbs_down, c.errors],
                fired: s.fired.iter().map(|r| self.rule_id(*r)).collect(),
                timers: s
                    .timers
                    .iter()
                    .map(|(r, d)| (self.rule_id(*r), *d))
                    .collect(),
            });
        }
        for (user_id, r) in self.recent.iter().filter(|(_, r)| r.partition == partition) {
            user_entry(&mut users, *user_id).recent = Some(RecentState {
                any: r.any,
                per_rule: r
                    .per_rule
                    .iter()
                    .map(|(k, t)| (self.rule_id(*k), *t))
                    .collect(),
            });
        }
        let timers = self
            .timers
            .get(&partition)
            .into_iter()
            .flatten()
            .map(|t| TimerState {
                deadline: t.deadline,
                user_id: t.user_id,
                rule: self.rule_id(t.rule),
                session_id: t.session_id,
                trigger_event_id: t.trigger_event_id.clone(),
            })
            .collect();
        Checkpoint {
            partition,
            watermark: self.watermark(partition),
            users: users.into_values().collect(),
            timers,
        }
    }

    /// Replaces one partition's state with a checkpoint's.
    pub fn restore(&mut self, checkpoint: &Checkpoint) {
        let p = checkpoint.partition;
        self.sessions.retain(|_, s| s.partition != p);
        self.recent.retain(|_, r| r.partition != p);
        self.timers.remove(&p);
        match checkpoint.watermark {
            Some(w) => self.watermarks.insert(p, w),
            None => self.watermarks.remove(&p),
        };
        for u in &checkpoint.users {
            if let Some(s) = &u.session {
                let [plays, adverts, thumbs_up, thumbs_down, errors] = s.counts;
                let session = Session {
                    partition: p,
                    session_id: s.session_id,
                    last_ts: s.last_ts,
                    paid: s.paid,
                    counts: Counts {
                        plays,
                        adverts,
                        thumbs_up,
                        thumbs_down,
                        errors,
                    },
                    fired: s
                        .fired
                        .iter()
                        .filter_map(|r| self.rule_index(r))
                        .collect::<BTreeSet<_>>(),
                    timers: s
                        .timers
                        .iter()
                        .filter_map(|(r, d)| Some((self.rule_index(r)?, *d)))
                        .collect(),
                };
                self.sessions.insert(u.user_id, session);
            }
            if let Some(r) = &u.recent {
                let recent = Recent {
                    partition: p,
                    any: r.any,
                    per_rule: r
                        .per_rule
                        .iter()
                        .filter_map(|(k, t)| Some((self.rule_index(k)?, *t)))
                        .collect(),
                };
                self.recent.insert(u.user_id, recent);
            }
        }
        let timers: BTreeSet<Timer> = checkpoint
            .timers
            .iter()
            .filter_map(|t| {
                Some(Timer {
                    deadline: t.deadline,
                    user_id: t.user_id,
                    rule: self.rule_index(&t.rule)?,
                    session_id: t.session_id,
                    trigger_event_id: t.trigger_event_id.clone(),
                })
            })
            .collect();
        if !timers.is_empty() {
            self.timers.insert(p, timers);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::engine::{Decision, Engine, feed};
    use crate::rules::Rules;

    /// (partition, user, session, ts, page, paid) over two partitions, the shipped rules' pages.
    fn events() -> Vec<(i32, i64, i64, i64, &'static str, bool)> {
        let pages = [
            "NextSong",
            "Roll Advert",
            "Upgrade",
            "Home",
            "NextSong",
            "Roll Advert",
            "Downgrade",
            "Submit Upgrade",
        ];
        (0..3000i64)
            .map(|i| {
                let user = 10 + (i % 9);
                let page = pages[((i * 7) % 13) as usize % pages.len()];
                (
                    (user % 2) as i32,
                    user,
                    i / 60 + user * 1000,
                    i * 45_000,
                    page,
                    user % 4 == 0,
                )
            })
            .collect()
    }

    #[test]
    fn an_engine_restored_from_a_checkpoint_continues_as_the_uninterrupted_one() {
        let all = events();
        let half = all.len() / 2;
        let mut uninterrupted = Engine::new(Rules::shipped());
        let first = feed(&mut uninterrupted, &all[..half], 0);
        let second = feed(&mut uninterrupted, &all[half..], half);
        assert!(!first.is_empty() && !second.is_empty());

        let mut before = Engine::new(Rules::shipped());
        assert_eq!(feed(&mut before, &all[..half], 0), first);
        let mut restored = Engine::new(Rules::shipped());
        for partition in [0, 1] {
            let text = serde_json::to_string(&before.checkpoint(partition)).unwrap();
            restored.restore(&serde_json::from_str(&text).unwrap());
        }
        assert_eq!(restored.checkpoint(0), before.checkpoint(0));
        assert_eq!(feed(&mut restored, &all[half..], half), second);
    }

    #[test]
    fn a_replay_from_a_bounded_window_is_not_enough() {
        // Downgrade visits on days 0, 6, 8 and 14 under a 7-day cooldown: offers on days 0 and 8, not 14.
        let day = 86_400_000;
        let rules = Rules::parse(
            "[settings]\nfrequency_cap = \"1h\"\nexpiry = \"1d\"\nsession_gap = \"30m\"\n\
             [rules.retention]\ndescription = \"d\"\nlevel = \"paid\"\nvisited = \"Downgrade\"\ncooldown = \"7d\"\nholdout = 0.0\n",
            "test",
        )
        .unwrap();
        let visits: Vec<(i32, i64, i64, i64, &str, bool)> = [0, 6, 8, 14]
            .iter()
            .map(|d| (0, 1, *d, d * day, "Downgrade", true))
            .collect();
        let days = |d: &[Decision]| d.iter().map(|x| x.ts / day).collect::<Vec<_>>();
        let mut uninterrupted = Engine::new(rules.clone());
        assert_eq!(days(&feed(&mut uninterrupted, &visits, 0)), [0, 8]);
        // A restart at day 8.5 that replays the last 7 days (the longest cooldown) offers on day 14.
        let mut replayed = Engine::new(rules);
        feed(&mut replayed, &visits[1..3], 1);
        assert_eq!(days(&feed(&mut replayed, &visits[3..], 3)), [14]);
    }
}
