//! One assigned partition's progress, as a pure state machine: no Kafka, no warehouse, no clock of its
//! own (time comes in as arguments), so that every transition is unit- and property-tested.
//!
//! ```text
//!   assigned ──found(stored)──> consuming ──writing(next)──> flushing ──landed(next)──> consuming
//!      │                          │  ▲                          │
//!      │                          │  └──rewind (batch dropped)──┘ write failed / fenced
//!      └──────── revoked / lost: the member forgets the partition (a write in flight is fenced if late)
//! ```
//!
//! **Offsets.** `next` is the next offset to accept: everything before it is landed, in the write in
//! flight, or in the batch being built. A record below `next` is a redelivery (skipped: exactly once); a
//! record above it is a *jump*, and a jump is either the log's own gap or a fetch that started in the
//! wrong place. Apache Kafka has permanent gaps: transaction markers, aborted transactional batches
//! (skipped under `read_committed`) and compacted records. tansu 0.6's memory engine starts a fetch at the
//! first batch that *begins* at or after the requested offset, silently skipping the rest of a batch
//! that a seek lands in. The two are told apart by what the log shows, never by guessing:
//!
//! - Once the fetcher has delivered any record since the last seek, it reads the log in order on every
//!   broker (a fetch continues where the previous one ended), so a jump then is a real gap: accepted.
//! - A jump in the first record after a seek is ambiguous. The member seeks back, one offset first and
//!   doubling the distance after that, until a record before the jump is delivered: if the same jump
//!   follows it, the gap is real; on tansu the skipped records come instead. A seek to the log start (the
//!   first batch, on every broker) needs no further evidence.
//!
//! On a broker that honours seeks and has no gaps, no extra seek is ever made.

use std::time::{Duration, Instant};

/// The least time between two seeks after jumps: lets a seek take effect before judging it.
pub const JUMP_RETRY: Duration = Duration::from_millis(50);
/// How long a partition with readable records may deliver nothing, right after a seek, before the seek is
/// judged to have landed past them (tansu's seek into its last batch returns nothing until more arrives).
pub const STALL_AFTER: Duration = Duration::from_secs(2);

/// How long the log's end must stand below the stored offset, while fetching, before the warehouse is
/// judged to hold another log's offsets. Fetch statistics report the high watermark of the last fetch
/// response: right after an assignment or a pause it can be a stale one, but fetches (every
/// `fetch.wait.max.ms`, 100 ms) refresh it long before this.
pub const BEHIND_FOR: Duration = Duration::from_secs(10);

/// The log's end stands below what the warehouse stored: the topic was recreated or truncated (or an
/// unclean leader election lost records), or the brokers serve another log. Reading on would skip the
/// new log's offsets below `stored`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogBehind {
    pub stored: i64,
    pub log_end: i64,
}

/// Where a partition's fetcher should go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeekTo {
    /// The log's first record (nothing stored yet).
    Beginning,
    Offset(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Assigned; the warehouse's stored offset is being looked up. Records are ignored until it is known.
    LookingUp,
    /// Reading from the stored offset on.
    Consuming,
}

/// What to do with a delivered record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Land it (decode into the batch, or dead-letter it).
    Accept,
    /// Land it; the offsets from `from` up to it are not in the log (transaction markers, aborted or
    /// compacted records, or records deleted by retention before they landed).
    AcceptAfterGap { from: i64 },
    /// Already landed, in flight or in the batch: a redelivery after a seek.
    Duplicate,
    /// Not now: the stored offset is not known yet, or a jump needs a seek back to be judged.
    Ignore,
}

/// One assigned partition.
#[derive(Debug, Clone)]
pub struct Partition {
    phase: Phase,
    /// The next offset the warehouse holds (`None`: nothing stored yet).
    stored: Option<i64>,
    /// The next offset the write in flight records, if one is in flight.
    in_flight: Option<i64>,
    next: i64,
    fetch: Fetch,
    /// Since when fetch statistics have shown the log's end below `stored`, without a break.
    behind_since: Option<Instant>,
}

/// What the fetcher has shown since the last seek.
#[derive(Debug, Clone)]
struct Fetch {
    /// Where the last seek went; `None` for the log start.
    target: Option<i64>,
    /// A record was delivered since the last seek: the fetcher reads the log in order.
    positioned: bool,
    /// The first record after the last seek jumped past `next`: a seek back is due.
    jumped: bool,
    /// How far before `next` the next seek back goes.
    step: i64,
    last_seek: Instant,
    /// A seek was asked for and not yet confirmed as made.
    seek_wanted: Option<SeekTo>,
}

impl Partition {
    /// A partition just assigned: its stored offset is looked up next.
    pub fn assigned(now: Instant) -> Partition {
        Partition {
            phase: Phase::LookingUp,
            stored: None,
            in_flight: None,
            next: 0,
            fetch: Fetch {
                target: None,
                positioned: false,
                jumped: false,
                step: 1,
                last_seek: now,
                seek_wanted: None,
            },
            behind_since: None,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn stored(&self) -> Option<i64> {
        self.stored
    }

    pub fn next(&self) -> i64 {
        self.next
    }

    /// The warehouse's offset is known: consume from it. Returns the seek that starts the fetch there.
    pub fn found(&mut self, stored: Option<i64>, now: Instant) -> SeekTo {
        self.phase = Phase::Consuming;
        self.behind_since = None;
        self.stored = stored;
        self.in_flight = None;
        self.next = stored.unwrap_or(0);
        self.seek(stored.map_or(SeekTo::Beginning, SeekTo::Offset), now)
    }

    /// A record at `offset` was delivered. `log_start` is the partition's first offset, if known.
    pub fn on_record(&mut self, offset: i64, log_start: Option<i64>) -> Verdict {
        if self.phase != Phase::Consuming || self.fetch.seek_wanted.is_some() {
            // Looking up, or a seek is due: what arrives now comes from the old position.
            return Verdict::Ignore;
        }
        let positioned = std::mem::replace(&mut self.fetch.positioned, true);
        if offset < self.next {
            return Verdict::Duplicate;
        }
        if offset == self.next {
            self.accept(offset);
            return Verdict::Accept;
        }
        let from = self.next;
        let at_log_start = match self.fetch.target {
            None => true,
            Some(target) => log_start.is_some_and(|start| target <= start),
        };
        let deleted = log_start.is_some_and(|start| start > from);
        if positioned || at_log_start || deleted {
            self.accept(offset);
            return Verdict::AcceptAfterGap { from };
        }
        // The first record after a seek, past `next`: judged after a seek further back.
        self.fetch.positioned = false;
        self.fetch.jumped = true;
        Verdict::Ignore
    }

    fn accept(&mut self, offset: i64) {
        self.next = offset + 1;
        self.fetch.step = 1;
        self.fetch.jumped = false;
    }

    /// The seek to make now, if any: one asked for and not yet made, a seek back after an ambiguous jump,
    /// or one after a seek that delivered nothing while the log has records at or after `next`
    /// (`readable_end`: the high watermark, or the last stable offset under `read_committed`).
    pub fn due_seek(
        &mut self,
        readable_end: Option<i64>,
        log_start: Option<i64>,
        now: Instant,
    ) -> Option<SeekTo> {
        if self.phase != Phase::Consuming {
            return None;
        }
        if let Some(wanted) = self.fetch.seek_wanted {
            return Some(wanted);
        }
        let since_seek = now.saturating_duration_since(self.fetch.last_seek);
        let after_jump = self.fetch.jumped && since_seek >= JUMP_RETRY;
        // Once positioned, silence means nothing readable is left (a trailing transaction marker keeps
        // the high watermark one above the last record on a real broker): no seek.
        let stalled = !self.fetch.positioned
            && readable_end.is_some_and(|end| end > self.next)
            && since_seek >= STALL_AFTER;
        if !(after_jump || stalled) {
            return None;
        }
        let floor = log_start.unwrap_or(0).max(0);
        let back = self.next - self.fetch.step;
        self.fetch.step = self.fetch.step.saturating_mul(2);
        let to = if back <= floor {
            if log_start.is_some() {
                SeekTo::Offset(floor)
            } else {
                SeekTo::Beginning
            }
        } else {
            SeekTo::Offset(back)
        };
        Some(self.seek(to, now))
    }

    fn seek(&mut self, to: SeekTo, now: Instant) -> SeekTo {
        self.fetch.target = match to {
            SeekTo::Beginning => None,
            SeekTo::Offset(at) => Some(at),
        };
        self.fetch.positioned = false;
        self.fetch.jumped = false;
        self.fetch.last_seek = now;
        self.fetch.seek_wanted = Some(to);
        to
    }

    /// The fetcher restarts from its own position (fetching resumed after a pause): librdkafka fetches
    /// again from the offset after the last record it delivered, which can be inside a batch, so what it
    /// delivers first is judged like the first record after a seek.
    pub fn refetching(&mut self, now: Instant) {
        // The statistics' high watermark may be stale until the fetcher runs again.
        self.behind_since = None;
        if self.phase == Phase::Consuming && self.fetch.seek_wanted.is_none() {
            self.fetch.target = Some(self.next);
            self.fetch.positioned = false;
            self.fetch.jumped = false;
            self.fetch.last_seek = now;
        }
    }

    /// The high watermark of a fetch-statistics report (`fetching`: the member was not paused, so the
    /// fetcher was refreshing it). Returns the evidence once the log's end has stood below the stored
    /// offset for [`BEHIND_FOR`] without a break. Kafka's topic ids would tell a recreated topic at once,
    /// but librdkafka's API exposes none; a recreated topic whose new log has already grown past the stored
    /// offset is not detected.
    pub fn log_end(
        &mut self,
        high_watermark: i64,
        fetching: bool,
        now: Instant,
    ) -> Option<LogBehind> {
        let behind = match self.stored {
            Some(stored) if self.phase == Phase::Consuming && fetching => {
                (0..stored).contains(&high_watermark).then_some(stored)
            }
            _ => None,
        };
        let Some(stored) = behind else {
            self.behind_since = None;
            return None;
        };
        let since = *self.behind_since.get_or_insert(now);
        (now.saturating_duration_since(since) >= BEHIND_FOR).then_some(LogBehind {
            stored,
            log_end: high_watermark,
        })
    }

    /// The seek `due_seek` returned was made. (One that failed is returned again by `due_seek`.)
    pub fn sought(&mut self, to: SeekTo, now: Instant) {
        if self.fetch.seek_wanted == Some(to) {
            self.fetch.seek_wanted = None;
            self.fetch.last_seek = now;
        }
    }

    /// What a write would record for this partition: the offset it stands at in the warehouse once the
    /// write in flight (if any) lands, and the next offset. `None` if nothing new was accepted.
    pub fn advance(&self) -> Option<(Option<i64>, i64)> {
        let base = self.in_flight.or(self.stored);
        (self.phase == Phase::Consuming && self.next > base.unwrap_or(0))
            .then_some((base, self.next))
    }

    /// A write recording `next` was handed to the writer.
    pub fn writing(&mut self, next: i64) {
        self.in_flight = Some(next);
    }

    /// The write recording `next` committed.
    pub fn landed(&mut self, next: i64) {
        self.stored = Some(next);
        if self.in_flight == Some(next) {
            self.in_flight = None;
        }
    }

    /// The write in flight failed: its records are read again.
    pub fn write_failed(&mut self) {
        self.in_flight = None;
    }

    /// The warehouse holds `stored` (read after a fenced write): another member moved this partition.
    pub fn fenced(&mut self, stored: Option<i64>) {
        self.stored = stored;
        self.in_flight = None;
    }

    /// The batch being built was dropped: read again from what is landed or in flight. Returns the seek.
    pub fn rewind(&mut self, now: Instant) -> Option<SeekTo> {
        if self.phase != Phase::Consuming {
            return None;
        }
        let base = self.in_flight.or(self.stored);
        self.next = base.unwrap_or(0);
        Some(self.seek(base.map_or(SeekTo::Beginning, SeekTo::Offset), now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consuming(stored: Option<i64>, t0: Instant) -> Partition {
        let mut p = Partition::assigned(t0);
        let to = p.found(stored, t0);
        p.sought(to, t0);
        p
    }

    #[test]
    fn a_log_end_below_the_stored_offset_for_long_enough_is_another_log() {
        let t0 = Instant::now();
        let mut p = consuming(Some(5000), t0);
        assert_eq!(p.log_end(120, true, t0), None);
        assert_eq!(p.log_end(120, true, t0 + BEHIND_FOR / 2), None);
        assert_eq!(
            p.log_end(130, true, t0 + BEHIND_FOR),
            Some(LogBehind {
                stored: 5000,
                log_end: 130
            })
        );
    }

    #[test]
    fn a_stale_or_paused_log_end_below_the_stored_offset_is_not_evidence() {
        let t0 = Instant::now();
        let mut p = consuming(Some(5000), t0);
        // The watermark caught up: the streak ends.
        assert_eq!(p.log_end(120, true, t0), None);
        assert_eq!(p.log_end(5000, true, t0 + BEHIND_FOR / 2), None);
        assert_eq!(p.log_end(120, true, t0 + BEHIND_FOR), None);
        // Paused (back-pressure): nothing refreshes the watermark, so nothing is judged.
        assert_eq!(p.log_end(120, false, t0 + BEHIND_FOR * 2), None);
        assert_eq!(p.log_end(120, true, t0 + BEHIND_FOR * 2), None);
        // A rebalance pauses fetching too.
        p.refetching(t0 + BEHIND_FOR * 2);
        assert_eq!(p.log_end(120, true, t0 + BEHIND_FOR * 3), None);
        // Unknown (-1), nothing stored yet, or still looking up: never evidence.
        let mut fresh = consuming(None, t0);
        assert_eq!(fresh.log_end(0, true, t0), None);
        assert_eq!(fresh.log_end(0, true, t0 + BEHIND_FOR), None);
        let mut unknown = consuming(Some(10), t0);
        assert_eq!(unknown.log_end(-1, true, t0), None);
        assert_eq!(unknown.log_end(-1, true, t0 + BEHIND_FOR), None);
        let mut looking_up = Partition::assigned(t0);
        assert_eq!(looking_up.log_end(0, true, t0 + BEHIND_FOR), None);
        // Ordinary progress: the stored offset is at or below the end.
        let mut caught_up = consuming(Some(10), t0);
        assert_eq!(caught_up.log_end(10, true, t0), None);
        assert_eq!(caught_up.log_end(10, true, t0 + BEHIND_FOR), None);
    }

    #[test]
    fn records_are_ignored_until_the_stored_offset_is_known() {
        let t0 = Instant::now();
        let mut p = Partition::assigned(t0);
        assert_eq!(p.on_record(0, Some(0)), Verdict::Ignore);
        assert_eq!(p.due_seek(Some(10), Some(0), t0 + STALL_AFTER), None);
        assert_eq!(p.found(Some(5), t0), SeekTo::Offset(5));
        assert_eq!(
            p.on_record(5, Some(0)),
            Verdict::Ignore,
            "the seek is not made yet"
        );
        p.sought(SeekTo::Offset(5), t0);
        assert_eq!(p.on_record(5, Some(0)), Verdict::Accept);
        assert_eq!(p.next(), 6);
    }

    #[test]
    fn a_jump_while_positioned_is_the_logs_own_gap() {
        // A transaction's commit marker at 20, or records compacted away: Kafka delivers 19, then 21.
        let t0 = Instant::now();
        let mut p = consuming(Some(18), t0);
        assert_eq!(p.on_record(18, Some(0)), Verdict::Accept);
        assert_eq!(p.on_record(19, Some(0)), Verdict::Accept);
        assert_eq!(
            p.on_record(21, Some(0)),
            Verdict::AcceptAfterGap { from: 20 }
        );
        assert_eq!(p.next(), 22);
        assert_eq!(p.due_seek(Some(22), Some(0), t0 + STALL_AFTER * 3), None);
    }

    #[test]
    fn a_jump_right_after_a_seek_is_judged_by_seeking_back() {
        let t0 = Instant::now();
        // A real gap: stored 20 is a commit marker; the fetch from 20 starts at 21.
        let mut p = consuming(Some(20), t0);
        assert_eq!(p.on_record(21, Some(0)), Verdict::Ignore);
        let t1 = t0 + JUMP_RETRY;
        assert_eq!(p.due_seek(None, Some(0), t1), Some(SeekTo::Offset(19)));
        p.sought(SeekTo::Offset(19), t1);
        assert_eq!(p.on_record(19, Some(0)), Verdict::Duplicate);
        assert_eq!(
            p.on_record(21, Some(0)),
            Verdict::AcceptAfterGap { from: 20 },
            "the same jump after a record before it: real"
        );

        // tansu's mid-batch start: the batch 10..=24 holds 20, the fetch from 20 starts at 25.
        let mut p = consuming(Some(20), t0);
        assert_eq!(p.on_record(25, Some(0)), Verdict::Ignore);
        let mut t = t0;
        let mut targets = Vec::new();
        loop {
            t += JUMP_RETRY;
            let Some(SeekTo::Offset(to)) = p.due_seek(None, Some(0), t) else {
                panic!("a seek back is due");
            };
            p.sought(SeekTo::Offset(to), t);
            targets.push(to);
            if to <= 10 {
                break;
            }
            // tansu: the first batch starting at or after `to` is 25 again.
            assert_eq!(p.on_record(25, Some(0)), Verdict::Ignore);
        }
        assert_eq!(targets, [19, 18, 16, 12, 4]);
        for offset in 10..20 {
            assert_eq!(p.on_record(offset, Some(0)), Verdict::Duplicate);
        }
        for offset in 20..26 {
            assert_eq!(p.on_record(offset, Some(0)), Verdict::Accept);
        }
    }

    #[test]
    fn the_first_record_after_a_seek_to_the_log_start_is_believed() {
        let t0 = Instant::now();
        // Nothing stored: the fetch starts at the beginning, where retention left offset 500.
        let mut p = consuming(None, t0);
        assert_eq!(p.on_record(500, None), Verdict::AcceptAfterGap { from: 0 });
        // Stored 10, but retention deleted everything below 40 before it landed.
        let mut p = consuming(Some(10), t0);
        assert_eq!(
            p.on_record(40, Some(40)),
            Verdict::AcceptAfterGap { from: 10 }
        );
        // Seeking back stops at the log start, and what that seek delivers is believed.
        let mut p = consuming(Some(3), t0);
        assert_eq!(p.on_record(7, Some(2)), Verdict::Ignore);
        assert_eq!(
            p.due_seek(None, Some(2), t0 + JUMP_RETRY),
            Some(SeekTo::Offset(2))
        );
        p.sought(SeekTo::Offset(2), t0 + JUMP_RETRY);
        assert_eq!(p.on_record(7, Some(2)), Verdict::AcceptAfterGap { from: 3 });
    }

    #[test]
    fn silence_after_a_seek_below_the_high_watermark_seeks_back_but_never_once_positioned() {
        let t0 = Instant::now();
        let mut p = consuming(Some(50), t0);
        assert_eq!(
            p.due_seek(Some(50), Some(0), t0 + STALL_AFTER),
            None,
            "caught up"
        );
        assert_eq!(
            p.due_seek(Some(60), Some(0), t0 + STALL_AFTER / 2),
            None,
            "not yet"
        );
        let t1 = t0 + STALL_AFTER;
        assert_eq!(p.due_seek(Some(60), Some(0), t1), Some(SeekTo::Offset(49)));
        p.sought(SeekTo::Offset(49), t1);
        assert_eq!(p.on_record(49, Some(0)), Verdict::Duplicate);
        // Positioned: the high watermark above `next` is a trailing marker, not records to seek for.
        assert_eq!(p.due_seek(Some(60), Some(0), t1 + STALL_AFTER * 5), None);
    }

    #[test]
    fn fetching_resumed_after_a_pause_is_judged_like_a_seek() {
        // tansu: a pause at 30, inside the batch 25..=34; the resumed fetch starts at the next batch.
        let t0 = Instant::now();
        let mut p = consuming(Some(25), t0);
        for o in 25..30 {
            assert_eq!(p.on_record(o, Some(0)), Verdict::Accept);
        }
        p.refetching(t0);
        assert_eq!(p.on_record(35, Some(0)), Verdict::Ignore);
        assert_eq!(
            p.due_seek(None, Some(0), t0 + JUMP_RETRY),
            Some(SeekTo::Offset(29))
        );
    }

    #[test]
    fn a_seek_that_failed_is_asked_for_again_and_records_wait_for_it() {
        let t0 = Instant::now();
        let mut p = Partition::assigned(t0);
        let to = p.found(Some(7), t0);
        assert_eq!(p.due_seek(None, None, t0), Some(to));
        assert_eq!(p.on_record(3, None), Verdict::Ignore);
        p.sought(to, t0);
        assert_eq!(p.due_seek(None, None, t0), None);
    }

    #[test]
    fn writes_chain_on_the_write_in_flight_and_a_rewind_keeps_it() {
        let t0 = Instant::now();
        let mut p = consuming(Some(100), t0);
        assert_eq!(p.advance(), None);
        for o in 100..150 {
            p.on_record(o, Some(0));
        }
        assert_eq!(p.advance(), Some((Some(100), 150)));
        p.writing(150);
        for o in 150..170 {
            p.on_record(o, Some(0));
        }
        assert_eq!(
            p.advance(),
            Some((Some(150), 170)),
            "the next write expects the one in flight to land"
        );
        // The batch being built is dropped while the write is in flight: re-read from 150, not 100.
        assert_eq!(p.rewind(t0), Some(SeekTo::Offset(150)));
        assert_eq!(p.next(), 150);
        p.landed(150);
        assert_eq!(p.stored(), Some(150));
        assert_eq!(p.advance(), None);
        // A failed write: its records are read again from the stored offset.
        p.sought(SeekTo::Offset(150), t0);
        for o in 150..160 {
            p.on_record(o, Some(0));
        }
        p.writing(160);
        p.write_failed();
        assert_eq!(p.rewind(t0), Some(SeekTo::Offset(150)));
        // Fenced: another member stored 400.
        p.fenced(Some(400));
        assert_eq!(p.rewind(t0), Some(SeekTo::Offset(400)));
    }

    /// Brokers as the property test models them: where a fetch after a seek starts.
    #[derive(Debug, Clone, Copy)]
    enum Broker {
        /// Apache Kafka: the batch holding the offset, without the records before it.
        Kafka,
        /// tansu 0.6 memory: the first batch that starts at or after the offset.
        TansuMemory,
    }

    fn fetch_from(
        batches: &[Vec<i64>],
        broker: Broker,
        to: SeekTo,
    ) -> std::collections::VecDeque<i64> {
        let at = match to {
            SeekTo::Beginning => i64::MIN,
            SeekTo::Offset(at) => at,
        };
        batches
            .iter()
            .filter(|b| match broker {
                Broker::Kafka => b.last().is_some_and(|last| *last >= at),
                Broker::TansuMemory => b.first().is_some_and(|first| *first >= at),
            })
            .flatten()
            .copied()
            .filter(|o| matches!(broker, Broker::TansuMemory) || *o >= at)
            .collect()
    }

    /// A log with gaps: batches of consecutive offsets with holes inside (compaction) and between
    /// (transaction markers, aborted batches), starting at a log start above 0 (retention).
    fn log() -> impl proptest::strategy::Strategy<Value = (i64, Vec<Vec<i64>>)> {
        use proptest::prelude::*;
        (
            0i64..20,
            proptest::collection::vec(
                (
                    1usize..6,
                    0i64..3,
                    proptest::collection::vec(any::<bool>(), 6),
                ),
                1..25,
            ),
        )
            .prop_map(|(start, shapes)| {
                let mut at = start;
                let mut batches = Vec::new();
                for (len, gap, keep) in shapes {
                    let mut batch = Vec::new();
                    for (i, kept) in keep.iter().enumerate().take(len) {
                        // Compaction keeps a batch's base offset and drops some records after it.
                        if i == 0 || *kept {
                            batch.push(at);
                        }
                        at += 1;
                    }
                    batches.push(batch);
                    at += gap;
                }
                (start, batches)
            })
    }

    proptest::proptest! {
        /// Whatever the broker, the gaps, the seeks, the failed writes and the dropped batches: every record
        /// at or after the stored offset lands exactly once, in order, and the partition keeps moving.
        #[test]
        fn every_record_lands_exactly_once(
            (start, batches) in log(),
            kafka in proptest::prelude::any::<bool>(),
            stored_at in 0usize..40,
            nothing_stored in proptest::prelude::any::<bool>(),
            trailing_marker in proptest::prelude::any::<bool>(),
            actions in proptest::collection::vec(0u8..100, 0..400),
        ) {
            let broker = if kafka { Broker::Kafka } else { Broker::TansuMemory };
            let offsets: Vec<i64> = batches.iter().flatten().copied().collect();
            let last = *offsets.last().unwrap_or(&start);
            // A transaction's commit marker after the last record keeps the high watermark one above it.
            let end = last + 1 + i64::from(trailing_marker);
            let stored = (!nothing_stored).then(|| start.saturating_sub(3) + stored_at as i64);
            let expected: Vec<i64> = offsets.iter().copied().filter(|o| stored.is_none_or(|s| *o >= s)).collect();

            let mut t = Instant::now();
            let mut p = Partition::assigned(t);
            let mut queue = std::collections::VecDeque::new();
            let mut batch: Vec<i64> = Vec::new();
            let mut in_flight: Option<(Vec<i64>, i64)> = None;
            let mut landed: Vec<i64> = Vec::new();
            let mut delivered: Vec<i64> = Vec::new();
            let to = p.found(stored, t);
            let _ = to;
            let step = |action: u8, p: &mut Partition, t: Instant, queue: &mut std::collections::VecDeque<i64>, batch: &mut Vec<i64>, in_flight: &mut Option<(Vec<i64>, i64)>, landed: &mut Vec<i64>, delivered: &mut Vec<i64>| {
                if let Some(to) = p.due_seek(Some(end), Some(start), t) {
                    *queue = fetch_from(&batches, broker, to);
                    delivered.clear();
                    p.sought(to, t);
                }
                match action {
                    0..=69 => {
                        if let Some(offset) = queue.pop_front() {
                            delivered.push(offset);
                            match p.on_record(offset, Some(start)) {
                                Verdict::Accept | Verdict::AcceptAfterGap { .. } => batch.push(offset),
                                Verdict::Duplicate | Verdict::Ignore => {}
                            }
                        }
                    }
                    70..=84 => {
                        if in_flight.is_none() && let Some((_, next)) = p.advance() {
                            p.writing(next);
                            *in_flight = Some((std::mem::take(batch), next));
                        }
                    }
                    85..=94 => {
                        if let Some((rows, next)) = in_flight.take() {
                            p.landed(next);
                            landed.extend(rows);
                        }
                    }
                    95 => {
                        // Paused and resumed: the fetcher restarts after the last record it delivered.
                        if let Some(last) = delivered.last().copied() {
                            *queue = fetch_from(&batches, broker, SeekTo::Offset(last + 1));
                        }
                        p.refetching(t);
                    }
                    96..=97 => {
                        if in_flight.take().is_some() {
                            p.write_failed();
                        }
                        batch.clear();
                        p.rewind(t);
                    }
                    _ => {
                        batch.clear();
                        p.rewind(t);
                    }
                }
            };
            for action in actions {
                t += Duration::from_millis(10);
                step(action, &mut p, t, &mut queue, &mut batch, &mut in_flight, &mut landed, &mut delivered);
            }
            // Then run without failures until everything is in, within a bound that a stuck partition misses.
            for i in 0..50_000u32 {
                t += Duration::from_millis(10);
                let action = [0u8, 0, 0, 70, 85][i as usize % 5];
                step(action, &mut p, t, &mut queue, &mut batch, &mut in_flight, &mut landed, &mut delivered);
                if landed.len() >= expected.len() && batch.is_empty() && in_flight.is_none() {
                    break;
                }
            }
            proptest::prop_assert_eq!(&landed, &expected, "broker {:?}, stored {:?}", broker, stored);
            if let Some(last) = expected.last() {
                proptest::prop_assert_eq!(p.next(), last + 1);
            }
        }
    }
}
