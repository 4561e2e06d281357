//! `playlog consume`'s progress line: what landed, how fast, and how many partitions the members hold.
//! Pure: the caller brings the figures and the time.

use std::time::{Duration, Instant};

use playlog_consumer::Progress;

/// How often a line is printed.
pub const EVERY: Duration = Duration::from_secs(5);

/// Rates over the time since the previous line.
pub struct ProgressLine {
    last: Progress,
    at: Instant,
}

impl ProgressLine {
    pub fn new(now: Instant) -> ProgressLine {
        ProgressLine {
            last: Progress::default(),
            at: now,
        }
    }

    /// The line for `now`, if `EVERY` has passed since the last one.
    pub fn due(&mut self, progress: Progress, now: Instant) -> Option<String> {
        let elapsed = now.saturating_duration_since(self.at);
        if elapsed < EVERY {
            return None;
        }
        let rate = progress.rows.saturating_sub(self.last.rows) as f64 / elapsed.as_secs_f64();
        let mut line = format!(
            "consume: {} rows, {:.0} rows/s, {} partition{} assigned",
            progress.rows,
            rate,
            progress.partitions,
            if progress.partitions == 1 { "" } else { "s" }
        );
        if progress.dead_letters > 0 {
            line.push_str(&format!(", {} dead letters", progress.dead_letters));
        }
        self.last = progress;
        self.at = now;
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rows: u64, partitions: i64, dead_letters: u64) -> Progress {
        Progress {
            rows,
            dead_letters,
            partitions,
        }
    }

    #[test]
    fn a_line_every_five_seconds_with_the_rate_since_the_last() {
        let start = Instant::now();
        let mut line = ProgressLine::new(start);
        assert_eq!(line.due(at(10, 3, 0), start + Duration::from_secs(4)), None);
        assert_eq!(
            line.due(at(5_000, 3, 0), start + Duration::from_secs(5))
                .as_deref(),
            Some("consume: 5000 rows, 1000 rows/s, 3 partitions assigned")
        );
        assert_eq!(
            line.due(at(6_000, 1, 0), start + Duration::from_secs(6)),
            None
        );
        assert_eq!(
            line.due(at(15_000, 1, 2), start + Duration::from_secs(15))
                .as_deref(),
            Some("consume: 15000 rows, 1000 rows/s, 1 partition assigned, 2 dead letters")
        );
    }

    #[test]
    fn a_stuck_group_reads_as_zero_rows_per_second_and_no_partitions() {
        let start = Instant::now();
        let mut line = ProgressLine::new(start);
        let _ = line.due(at(100, 6, 0), start + EVERY);
        assert_eq!(
            line.due(at(100, 0, 0), start + EVERY * 2).as_deref(),
            Some("consume: 100 rows, 0 rows/s, 0 partitions assigned")
        );
    }
}
