//! When users come back: eventsim's session-gap model, computed in UTC epoch milliseconds so that the host's
//! timezone can never leak into the data (eventsim used `LocalDateTime`, so its "UTC" was the host's clock).
//!
//! A gap is exponential(beta) plus `session-gap`; the candidate time is warped by a daily sine (`damping`,
//! quietest at 03:00 UTC) and thinned on weekends (`weekend-damping`, ramped over `-offset` and `-scale`
//! minutes around midnight).

use rand::{Rng, RngExt};

use crate::site::Pacing;

pub const MS_PER_SECOND: i64 = 1000;
pub const MS_PER_MINUTE: i64 = 60 * MS_PER_SECOND;
pub const MS_PER_DAY: i64 = 86_400 * MS_PER_SECOND;
/// 365.25 days, as eventsim counts a year.
pub const MS_PER_YEAR: f64 = 365.25 * MS_PER_DAY as f64;
const THREE_AM_MS: i64 = 3 * 3600 * MS_PER_SECOND;

/// An exponential draw with the given mean, by inverse transform (as eventsim draws it).
pub fn exponential<R: Rng + ?Sized>(mean: f64, rng: &mut R) -> f64 {
    // 1 - u lies in (0, 1], so the logarithm is finite.
    let u: f64 = rng.random();
    -mean * (1.0 - u).ln()
}

/// Saturday or Sunday, in UTC.
pub fn is_weekend_day(day: i64) -> bool {
    // 1970-01-01 was a Thursday: with Monday as 0, day 0 is 3.
    let weekday = (day + 3).rem_euclid(7);
    weekday >= 5
}

fn day_of(ts: i64) -> i64 {
    ts.div_euclid(MS_PER_DAY)
}

/// The session-gap model for one pacing configuration.
#[derive(Debug, Clone, Copy)]
pub struct SessionClock {
    pacing: Pacing,
}

impl SessionClock {
    pub fn new(pacing: Pacing) -> SessionClock {
        SessionClock { pacing }
    }

    /// The fraction of traffic removed at `ts` (0 on weekdays, `weekend-damping` deep in a weekend),
    /// ramping linearly across `weekend-damping-scale` minutes around the weekend's edges.
    pub fn weekend_damping(&self, ts: i64) -> f64 {
        let p = &self.pacing;
        if p.weekend_damping == 0.0 {
            return 0.0;
        }
        let day = day_of(ts);
        let (yesterday, today, tomorrow) = (
            is_weekend_day(day - 1),
            is_weekend_day(day),
            is_weekend_day(day + 1),
        );
        let midnight = day * MS_PER_DAY;
        let next_midnight = midnight + MS_PER_DAY;
        let offset = p.weekend_damping_offset_min * MS_PER_MINUTE;
        let scale = (p.weekend_damping_scale_min * MS_PER_MINUTE) as f64;
        let full = p.weekend_damping;
        let ramp = |distance_ms: i64| (full * distance_ms as f64 / scale).clamp(0.0, full);
        match (yesterday, today, tomorrow) {
            (false, false, false) => 0.0,
            (true, true, true) => full,
            // Friday: ramp up towards the weekend, starting `offset` before midnight.
            (false, false, true) => {
                let start = next_midnight - offset;
                if ts < start { 0.0 } else { ramp(ts - start) }
            }
            // Monday: ramp down, ending `offset` after midnight.
            (true, false, false) => {
                let end = midnight + offset;
                if ts > end { 0.0 } else { ramp(end - ts) }
            }
            // Saturday, the weekend's first day.
            (false, true, true) => {
                let start = midnight - offset;
                ramp(ts - start)
            }
            // Sunday, the weekend's last day.
            (true, true, false) => {
                let end = next_midnight + offset;
                ramp(end - ts)
            }
            // A lone weekend day or a weekday between two weekend days: only with custom calendars.
            (false, true, false) => {
                ramp((ts - (midnight - offset)).min(next_midnight + offset - ts))
            }
            (true, false, true) => {
                let from_start = midnight + offset - ts;
                let to_end = ts - (next_midnight - offset);
                ramp(from_start.max(to_end).max(0))
            }
        }
    }

    /// The daily cycle: shifts a timestamp by up to `damping` of a day, so that fewer sessions start at
    /// night (UTC) and more in the evening.
    pub fn warp(&self, ts: i64) -> i64 {
        let ms_of_day = ts.rem_euclid(MS_PER_DAY);
        let phase = (ms_of_day - THREE_AM_MS) as f64 * std::f64::consts::TAU / MS_PER_DAY as f64;
        ts + (self.pacing.damping * MS_PER_DAY as f64 * phase.sin()) as i64
    }

    /// When a user whose last session ended at `last` starts the next one.
    pub fn next_session_start<R: Rng + ?Sized>(&self, last: i64, beta_ms: f64, rng: &mut R) -> i64 {
        let gap_floor = self.pacing.session_gap_ms.max(MS_PER_SECOND);
        let mut from = last;
        loop {
            let gap = exponential(beta_ms, rng) as i64 + self.pacing.session_gap_ms;
            let candidate = self.warp(from + gap.max(1));
            if candidate < from {
                // Never go backwards in time.
                from += gap_floor;
                continue;
            }
            let damping = self.weekend_damping(candidate);
            if damping > 0.0 && rng.random::<f64>() >= 1.0 - damping {
                // Thinned by the weekend: try again from there.
                from = candidate;
                continue;
            }
            return candidate;
        }
    }

    /// The first session of an existing user at simulation start `start`: run the gap process from well
    /// before `start` to reach its steady state, as eventsim does.
    pub fn first_session_start<R: Rng + ?Sized>(
        &self,
        start: i64,
        beta_ms: f64,
        rng: &mut R,
    ) -> i64 {
        let beta = beta_ms as i64;
        let mut candidate = self.next_session_start(start - 2 * beta, beta_ms, rng);
        while candidate < start - beta {
            candidate = self.next_session_start(candidate, beta_ms, rng);
        }
        candidate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::site::SiteModel;
    use rand::SeedableRng;

    fn clock() -> SessionClock {
        SessionClock::new(SiteModel::default_site().expect("default").pacing)
    }

    const MON_2026_01_05: i64 = 1_767_571_200_000;

    #[test]
    fn weekdays_are_computed_in_utc() {
        let day = MON_2026_01_05 / MS_PER_DAY;
        let weekend: Vec<bool> = (0..7).map(|d| is_weekend_day(day + d)).collect();
        assert_eq!(weekend, [false, false, false, false, false, true, true]);
    }

    #[test]
    fn weekend_damping_is_zero_midweek_and_full_on_saturday_noon() {
        let c = clock();
        let wednesday_noon = MON_2026_01_05 + 2 * MS_PER_DAY + MS_PER_DAY / 2;
        let saturday_noon = MON_2026_01_05 + 5 * MS_PER_DAY + MS_PER_DAY / 2;
        assert_eq!(c.weekend_damping(wednesday_noon), 0.0);
        assert_eq!(c.weekend_damping(saturday_noon), 0.5);
    }

    #[test]
    fn next_session_never_goes_backwards() {
        let c = clock();
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(3);
        let mut t = MON_2026_01_05;
        for _ in 0..10_000 {
            let next = c.next_session_start(t, 3.0 * MS_PER_DAY as f64, &mut rng);
            assert!(next > t, "{next} <= {t}");
            t = next;
        }
    }
}
