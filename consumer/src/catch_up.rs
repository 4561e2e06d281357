//! Getting a partition's fetcher back to the next offset to land, on brokers that do not start a fetch
//! exactly where they are asked to.
//!
//! A fetch from offset X should return the record batch that contains X (the client then drops the records
//! before X). tansu 0.6's memory engine instead returns the first batch that *starts* at or after X, so a
//! seek into the middle of a batch silently skips the rest of that batch, and a seek into the last batch
//! returns nothing until more arrives. Skipping would lose events, so a member seeks back further instead,
//! doubling the distance each time, until a fetch delivers X again; records before X are dropped as already
//! landed. On a broker that honours the seek, the first seek (to X itself) is the last one.

use std::time::{Duration, Instant};

/// The least time between two seeks after gaps: lets a seek take effect before judging it.
const GAP_RETRY: Duration = Duration::from_millis(50);
/// How long a partition with records waiting may deliver nothing before its fetcher is considered stuck.
const STALL_AFTER: Duration = Duration::from_secs(2);

/// One partition's catch-up state.
#[derive(Debug, Clone, Copy)]
pub struct CatchUp {
    /// How far before the next offset the next seek goes.
    step: i64,
    last_seek: Option<Instant>,
    last_progress: Instant,
    /// Progress since the last `due_seek`: stamped then, not per record (reading the clock per record
    /// showed in profiles).
    progressed: bool,
    gap_seen: bool,
}

impl CatchUp {
    pub fn new(now: Instant) -> CatchUp {
        CatchUp {
            step: 0,
            last_seek: None,
            last_progress: now,
            progressed: false,
            gap_seen: false,
        }
    }

    /// The fetcher delivered the next offset, or one before it: it is where it should be.
    pub fn progressed(&mut self) {
        self.step = 0;
        self.gap_seen = false;
        self.progressed = true;
    }

    /// The fetcher delivered a record past the next offset.
    pub fn gap(&mut self) {
        self.gap_seen = true;
    }

    /// Where to seek now, if anywhere: after a gap, or when the log holds records at or after `next` (its
    /// high watermark is past it) but none has arrived for a while. Never below the log start.
    pub fn due_seek(
        &mut self,
        next: i64,
        high_watermark: Option<i64>,
        log_start: i64,
        now: Instant,
    ) -> Option<i64> {
        if std::mem::take(&mut self.progressed) {
            self.last_progress = now;
        }
        let since_seek = |min: Duration| self.last_seek.is_none_or(|t| now - t >= min);
        let after_gap = self.gap_seen && since_seek(GAP_RETRY);
        let stalled = high_watermark.is_some_and(|hi| hi > next)
            && now - self.last_progress >= STALL_AFTER
            && since_seek(STALL_AFTER);
        if !(after_gap || stalled) {
            return None;
        }
        let target = (next - self.step).max(log_start).max(0);
        self.step = (self.step * 2).max(1);
        self.last_seek = Some(now);
        self.gap_seen = false;
        Some(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeks_back_doubling_the_distance_until_progress() {
        let t0 = Instant::now();
        let mut c = CatchUp::new(t0);
        let mut targets = Vec::new();
        for i in 1..=5 {
            c.gap();
            targets.push(c.due_seek(100, Some(200), 0, t0 + GAP_RETRY * i));
        }
        assert_eq!(targets, [Some(100), Some(99), Some(98), Some(96), Some(92)]);
        c.progressed();
        c.gap();
        assert_eq!(c.due_seek(100, Some(200), 0, t0 + GAP_RETRY * 7), Some(100));
    }

    #[test]
    fn never_seeks_below_the_log_start_or_too_often() {
        let t0 = Instant::now();
        let mut c = CatchUp::new(t0);
        c.gap();
        assert_eq!(c.due_seek(10, None, 9, t0), Some(10));
        c.gap();
        assert_eq!(c.due_seek(10, None, 9, t0), None, "too soon after a seek");
        for i in 2..8 {
            c.gap();
            assert!(
                c.due_seek(10, None, 9, t0 + GAP_RETRY * i)
                    .is_some_and(|at| at >= 9)
            );
        }
    }

    #[test]
    fn a_silent_fetcher_below_the_high_watermark_counts_as_stuck() {
        let t0 = Instant::now();
        let mut c = CatchUp::new(t0);
        assert_eq!(
            c.due_seek(50, Some(50), 0, t0 + STALL_AFTER),
            None,
            "caught up"
        );
        assert_eq!(
            c.due_seek(50, Some(60), 0, t0 + STALL_AFTER / 2),
            None,
            "not yet"
        );
        assert_eq!(c.due_seek(50, Some(60), 0, t0 + STALL_AFTER), Some(50));
        assert_eq!(c.due_seek(50, Some(60), 0, t0 + STALL_AFTER * 2), Some(49));
    }
}
