//! Consumer lag in seconds, as kafka-lag-exporter estimates it: remember when each log-end offset (high
//! watermark) was seen, and read off when the log end passed the group's committed offset.

use std::collections::VecDeque;

/// Samples older than this are dropped; lag beyond it is reported as at least this old.
const HISTORY: usize = 3600;

/// One partition's log-end history.
#[derive(Debug, Default)]
pub struct LagClock {
    /// (high watermark, when seen in epoch ms), oldest first, offsets non-decreasing.
    samples: VecDeque<(i64, i64)>,
}

impl LagClock {
    pub fn observe(&mut self, high_watermark: i64, now_ms: i64) {
        if let Some(&(last, _)) = self.samples.back()
            && high_watermark <= last
        {
            return;
        }
        self.samples.push_back((high_watermark, now_ms));
        if self.samples.len() > HISTORY {
            self.samples.pop_front();
        }
    }

    /// Seconds since the record at `committed` (the next one to land) was appended, about.
    pub fn lag_seconds(&self, committed: i64, now_ms: i64) -> f64 {
        let Some(&(latest, _)) = self.samples.back() else {
            return 0.0;
        };
        if committed >= latest {
            return 0.0;
        }
        // The first sample whose log end had passed `committed`: the record arrived between it and the one before.
        let idx = self.samples.partition_point(|(hw, _)| *hw <= committed);
        let arrived = match (
            idx.checked_sub(1).and_then(|i| self.samples.get(i)),
            self.samples.get(idx),
        ) {
            (Some(&(o1, t1)), Some(&(o2, t2))) => {
                t1 as f64 + (committed - o1) as f64 / (o2 - o1) as f64 * (t2 - t1) as f64
            }
            (None, Some(&(_, t2))) => t2 as f64,
            _ => now_ms as f64,
        };
        ((now_ms as f64 - arrived) / 1000.0).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_between_samples() {
        let mut c = LagClock::default();
        c.observe(100, 10_000);
        c.observe(200, 20_000);
        c.observe(300, 30_000);
        assert_eq!(c.lag_seconds(300, 35_000), 0.0);
        // Offset 250 arrived at 25 s; now is 35 s.
        assert!((c.lag_seconds(250, 35_000) - 10.0).abs() < 1e-9);
        // Older than all history: at least as old as the oldest sample.
        assert!((c.lag_seconds(50, 35_000) - 25.0).abs() < 1e-9);
    }
}
