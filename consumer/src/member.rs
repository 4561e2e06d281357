//! One group member: a librdkafka consumer on its own thread, and its writer on another.
//!
//! The poll thread decodes records into the batch (or dead-letters them), hands full or due batches to
//! the writer one at a time, and builds the next batch meanwhile. It never waits on the warehouse: while
//! a write is in flight and the next batch is full, it pauses fetching (back-pressure) and goes on
//! polling, so heartbeats and rebalances are served. Each partition's progress is a
//! [`Partition`](crate::partition::Partition) state machine; this module does the I/O it asks for
//! (seeks, pauses, Kafka commits).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use playlog_kafka::ConnectionWatch;
use playlog_model::Stream;
use playlog_warehouse::{KafkaMeta, OffsetAdvance, RawBatch, Warehouse};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::context::MemberContext;
use crate::dead_letter::Origin;
use crate::decode::decode;
use crate::group::{ConsumeError, Shared, consumer_config, now_ms};
use crate::lag::LagClock;
use crate::metrics::PartitionLabels;
use crate::partition::{Partition, Phase, SeekTo, Verdict};
use crate::writer::{Command, Reply, StoredOffsets, Writer};

/// How often a member asks its partitions whether a seek is due: it walks every assigned partition, so
/// not per record.
const SEEK_CHECK: Duration = Duration::from_millis(20);
/// How long a stopping member waits for its last batch to land.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(30);
/// How long after a failed offset commit to Kafka it is made again.
const RECOMMIT_AFTER: Duration = Duration::from_secs(1);

type Key = (String, i32);

/// What the fetch statistics say about a partition.
#[derive(Debug, Clone, Copy, Default)]
struct Observed {
    log_start: Option<i64>,
    /// The high watermark. Under read_committed the last stable offset may be below it (an open
    /// transaction); the partition's stall rule only seeks before anything was delivered after a seek, so
    /// the higher figure costs at most one seek back on a real broker.
    readable_end: Option<i64>,
}

/// A member's state: its partitions, the batch being built, and its writer.
pub struct Member {
    shared: Arc<Shared>,
    partitions: HashMap<Key, Partition>,
    /// For partitions looking up their stored offset: the lookup that answers them.
    lookups: HashMap<Key, u64>,
    lookups_sent: u64,
    lookups_answered: u64,
    observed: HashMap<Key, Observed>,
    lag: HashMap<Key, LagClock>,
    batch: RawBatch,
    /// When the batch's first record was accepted; `None` while nothing is waiting to land.
    batch_started: Option<Instant>,
    writer: Writer,
    /// A write is with the writer.
    writing: bool,
    /// Fetching is paused for back-pressure.
    paused: bool,
    last_seek_check: Instant,
    /// A failure the member cannot go on after.
    failed: Option<ConsumeError>,
    /// When an offset commit to Kafka last failed (in its callback), until it is made again. Without
    /// this, a commit lost in a rebalance would leave Kafka's offsets, and every lag tool reading them,
    /// behind for good once the topics go quiet.
    pub commit_failed_at: Option<Instant>,
}

impl Member {
    fn new(shared: Arc<Shared>, writer: Writer) -> Member {
        Member {
            shared,
            partitions: HashMap::new(),
            lookups: HashMap::new(),
            lookups_sent: 0,
            lookups_answered: 0,
            observed: HashMap::new(),
            lag: HashMap::new(),
            batch: RawBatch::new(),
            batch_started: None,
            writer,
            writing: false,
            paused: false,
            last_seek_check: Instant::now(),
            failed: None,
            commit_failed_at: None,
        }
    }

    /// Partitions assigned (fetching paused): their stored offsets are looked up.
    pub fn assigned(&mut self, partitions: &[Key], now: Instant) {
        self.refetching(now);
        self.shared.metrics.rebalances.inc();
        if partitions.is_empty() {
            // A cooperative rebalance that gave this member nothing new: nothing to look up.
            return;
        }
        self.lookups_sent += 1;
        self.writer.send(Command::LookUp);
        for key in partitions {
            if self
                .partitions
                .insert(key.clone(), Partition::assigned(now))
                .is_none()
            {
                self.shared.metrics.assigned_partitions.inc();
            }
            self.lookups.insert(key.clone(), self.lookups_sent);
        }
    }

    /// Partitions revoked: land the batch first (within `deadline`), unless they were lost, when someone
    /// else may own them already and writing now could duplicate their rows.
    pub fn revoked(
        &mut self,
        consumer: &BaseConsumer<MemberContext>,
        partitions: &[Key],
        lost: bool,
        deadline: Duration,
    ) {
        self.refetching(Instant::now());
        if lost {
            tracing::warn!("partitions lost: dropping the unflushed batch");
            self.drop_batch(Instant::now());
        } else if !self.land_everything(consumer, deadline) {
            tracing::warn!(
                ?deadline,
                "the batch did not land before giving up partitions; the next owner re-reads them"
            );
            self.drop_batch(Instant::now());
        }
        for key in partitions {
            if self.partitions.remove(key).is_some() {
                self.shared.metrics.assigned_partitions.dec();
            }
            self.lookups.remove(key);
            self.observed.remove(key);
            self.lag.remove(key);
            let labels = self.labels(key);
            self.shared.metrics.lag.remove(&labels);
            self.shared.metrics.lag_seconds.remove(&labels);
        }
        self.shared.metrics.rebalances.inc();
    }

    /// librdkafka pauses every partition while a rebalance is under way and resumes it afterwards from
    /// the offset after the last record it delivered, which can be inside a batch: what each partition
    /// delivers next is judged like the first record after a seek.
    fn refetching(&mut self, now: Instant) {
        for p in self.partitions.values_mut() {
            p.refetching(now);
        }
    }

    fn labels(&self, key: &Key) -> PartitionLabels {
        PartitionLabels {
            group: self.shared.options.group.clone(),
            topic: key.0.clone(),
            partition: key.1.to_string(),
        }
    }

    /// The partitions of the subscribed topics in a statistics report's metadata (librdkafka lists a
    /// topic's every partition, assigned or not, and an internal one numbered -1).
    pub fn subscribed(&self, statistics: &rdkafka::Statistics) {
        let topics = &self.shared.options.topics;
        let count = statistics
            .topics
            .iter()
            .filter(|(name, _)| topics.contains(name))
            .map(|(_, t)| t.partitions.keys().filter(|p| **p >= 0).count())
            .sum::<usize>();
        if count > 0 {
            self.shared.metrics.subscribed_partitions.set(count as i64);
        }
    }

    /// Fetch statistics for one partition.
    pub fn observe(
        &mut self,
        topic: &str,
        partition: i32,
        log_start: Option<i64>,
        high_watermark: i64,
    ) {
        let key = (topic.to_owned(), partition);
        self.observed.insert(
            key.clone(),
            Observed {
                log_start,
                readable_end: Some(high_watermark),
            },
        );
        let fetching = !self.paused;
        let Some(p) = self.partitions.get_mut(&key) else {
            return;
        };
        if let Some(behind) = p.log_end(high_watermark, fetching, Instant::now())
            && self.failed.is_none()
        {
            self.failed = Some(ConsumeError::LogBehind {
                group: self.shared.options.group.clone(),
                topic: key.0.clone(),
                partition: key.1,
                stored: behind.stored,
                log_end: behind.log_end,
            });
        }
        let committed = p.stored().unwrap_or(0);
        let now = now_ms();
        let clock = self.lag.entry(key.clone()).or_default();
        clock.observe(high_watermark, now);
        let lag_seconds = clock.lag_seconds(committed, now);
        let labels = self.labels(&key);
        let m = &self.shared.metrics;
        m.lag
            .get_or_create(&labels)
            .set((high_watermark - committed).max(0));
        m.lag_seconds.get_or_create(&labels).set(lag_seconds);
    }

    /// One delivered record: into the batch, to the dead-letter topic, or skipped.
    fn on_message(&mut self, message: &BorrowedMessage<'_>) -> Result<(), KafkaError> {
        let topic = message.topic();
        let partition = message.partition();
        let offset = message.offset();
        let Some(stream) = Stream::from_topic(topic) else {
            return Ok(());
        };
        // One key for every lookup below (an owned topic per lookup showed in profiles).
        let key = (topic.to_owned(), partition);
        let log_start = self.observed.get(&key).and_then(|o| o.log_start);
        let Some(p) = self.partitions.get_mut(&key) else {
            return Ok(());
        };
        match p.on_record(offset, log_start) {
            Verdict::Duplicate | Verdict::Ignore => return Ok(()),
            Verdict::Accept => {}
            Verdict::AcceptAfterGap { from } => {
                tracing::debug!(
                    topic,
                    partition,
                    from,
                    to = offset,
                    "offsets absent from the log (transaction markers, aborted or compacted records): passed"
                );
            }
        }
        let value = message.payload().unwrap_or_default();
        let shared = &self.shared;
        match decode(stream, value, shared.options.max_record_bytes) {
            Ok(record) => {
                let meta = KafkaMeta {
                    topic,
                    partition,
                    offset,
                    timestamp_ms: message.timestamp().to_millis(),
                };
                self.batch.push_record(stream, &record, &meta, value.len());
            }
            Err(reason) => {
                let origin = Origin {
                    topic,
                    partition,
                    offset,
                };
                shared
                    .dead_letters
                    .send(message.payload(), message.key(), &origin, &reason)?;
                shared.dead_letter_count.fetch_add(1, Ordering::Relaxed);
                shared.metrics.count_dead_letter(topic, &reason);
                tracing::debug!(topic, partition, offset, %reason, "dead letter");
            }
        }
        self.batch_started.get_or_insert_with(Instant::now);
        Ok(())
    }

    /// Applies every reply the writer has sent.
    fn serve_replies(&mut self, consumer: &BaseConsumer<MemberContext>) {
        while let Some(reply) = self.writer.try_reply() {
            self.apply(consumer, reply);
        }
    }

    fn apply(&mut self, consumer: &BaseConsumer<MemberContext>, reply: Reply) {
        let now = Instant::now();
        match reply {
            Reply::Stored(stored) => self.found(consumer, &stored, now),
            Reply::Written { advances } => {
                self.writing = false;
                let mut commit = TopicPartitionList::new();
                for a in &advances {
                    if let Some(p) = self.partitions.get_mut(&(a.topic.clone(), a.partition)) {
                        p.landed(a.next_offset);
                    }
                    let _ = commit.add_partition_offset(
                        &a.topic,
                        a.partition,
                        Offset::Offset(a.next_offset),
                    );
                }
                if commit.count() > 0
                    && let Err(e) = consumer.commit(&commit, CommitMode::Async)
                {
                    // The warehouse already holds the truth; Kafka's copy is for lag tooling only.
                    tracing::debug!(error = %e, "committing offsets to Kafka");
                }
                self.resume(consumer);
            }
            Reply::Fenced { stored } => {
                self.writing = false;
                // Another member moved on: take the warehouse's offsets as they are now and re-read from
                // there (the batch built on top of the fenced write goes too).
                for (key, p) in self.partitions.iter_mut() {
                    p.fenced(stored.get(key).copied());
                }
                self.drop_batch(now);
                self.resume(consumer);
            }
            Reply::Failed(e) => {
                self.writing = false;
                for p in self.partitions.values_mut() {
                    p.write_failed();
                }
                self.drop_batch(now);
                self.failed = Some(e.into());
            }
        }
    }

    /// A lookup answered: the partitions it covers start consuming from their stored offsets.
    fn found(
        &mut self,
        consumer: &BaseConsumer<MemberContext>,
        stored: &StoredOffsets,
        now: Instant,
    ) {
        self.lookups_answered += 1;
        let answered = self.lookups_answered;
        let ready: Vec<Key> = self
            .lookups
            .iter()
            .filter(|(_, lookup)| **lookup <= answered)
            .map(|(key, _)| key.clone())
            .collect();
        let mut resume = TopicPartitionList::new();
        // The warehouse's offsets, committed to Kafka too: a member killed between its warehouse commit
        // and its Kafka commit leaves Kafka's copy behind, and on a partition that then goes quiet nothing
        // else would ever bring it up to date (lag tooling and KEDA would see records that have landed).
        let mut commit = TopicPartitionList::new();
        for key in ready {
            self.lookups.remove(&key);
            let Some(p) = self.partitions.get_mut(&key) else {
                continue;
            };
            let found = stored.get(&key).copied();
            if let Some(next) = found {
                let _ = commit.add_partition_offset(&key.0, key.1, Offset::Offset(next));
            }
            let to = p.found(found, now);
            if seek(consumer, &key, to).is_ok() {
                p.sought(to, now);
            }
            resume.add_partition(&key.0, key.1);
        }
        if commit.count() > 0
            && let Err(e) = consumer.commit(&commit, CommitMode::Async)
        {
            tracing::debug!(error = %e, "committing the warehouse's offsets to Kafka");
        }
        if !self.paused && resume.count() > 0 {
            let _ = consumer.resume(&resume);
        }
    }

    /// The offsets landed in the warehouse, as a list to commit to Kafka.
    fn stored_offsets(&self) -> TopicPartitionList {
        let mut commit = TopicPartitionList::new();
        for (key, p) in &self.partitions {
            if let Some(stored) = p.stored() {
                let _ = commit.add_partition_offset(&key.0, key.1, Offset::Offset(stored));
            }
        }
        commit
    }

    /// After a failed commit, commits the landed offsets again, at most once per `RECOMMIT_AFTER`.
    fn recommit_if_failed(&mut self, consumer: &BaseConsumer<MemberContext>, now: Instant) {
        if self
            .commit_failed_at
            .is_none_or(|at| now.duration_since(at) < RECOMMIT_AFTER)
        {
            return;
        }
        self.commit_failed_at = None;
        let commit = self.stored_offsets();
        if commit.count() > 0
            && let Err(e) = consumer.commit(&commit, CommitMode::Async)
        {
            tracing::debug!(error = %e, "committing offsets to Kafka again");
            self.commit_failed_at = Some(now);
        }
    }

    /// Makes the seeks the partitions ask for (after a jump, a stall, a rewind, or a failed seek).
    fn due_seeks(&mut self, consumer: &BaseConsumer<MemberContext>, now: Instant) {
        if now.duration_since(self.last_seek_check) < SEEK_CHECK {
            return;
        }
        self.last_seek_check = now;
        for (key, p) in self.partitions.iter_mut() {
            let observed = self.observed.get(key).copied().unwrap_or_default();
            if let Some(to) = p.due_seek(observed.readable_end, observed.log_start, now) {
                tracing::debug!(
                    topic = key.0,
                    partition = key.1,
                    ?to,
                    next = p.next(),
                    "seeking"
                );
                match seek(consumer, key, to) {
                    Ok(()) => p.sought(to, now),
                    // Harmless: asked for again at the next check.
                    Err(e) => tracing::debug!(topic = key.0, partition = key.1, error = %e, "seek"),
                }
            }
        }
    }

    /// Forgets the batch being built; partitions read again from what is landed or in flight.
    fn drop_batch(&mut self, now: Instant) {
        self.batch = RawBatch::new();
        self.batch_started = None;
        for p in self.partitions.values_mut() {
            p.rewind(now);
        }
    }

    fn batch_full(&self) -> bool {
        let options = &self.shared.options;
        self.batch.rows() >= options.max_batch_rows || self.batch.bytes() >= options.max_batch_bytes
    }

    /// Hands the batch to the writer when it is due and the writer is free; pauses fetching when it is
    /// full and the writer is busy.
    fn flush_when_due(&mut self, consumer: &BaseConsumer<MemberContext>) {
        let Some(started) = self.batch_started else {
            return;
        };
        let due = self.batch_full() || started.elapsed() >= self.shared.options.flush_interval;
        if !due {
            return;
        }
        if !self.writing {
            self.submit();
        } else if self.batch_full() && !self.paused {
            // Back-pressure: the writer is behind; stop fetching, keep polling.
            self.paused = true;
            if let Ok(assignment) = consumer.assignment() {
                let _ = consumer.pause(&assignment);
            }
        }
    }

    fn submit(&mut self) {
        let mut advances = Vec::new();
        for (key, p) in self.partitions.iter_mut() {
            if let Some((previous, next_offset)) = p.advance() {
                p.writing(next_offset);
                advances.push(OffsetAdvance {
                    topic: key.0.clone(),
                    partition: key.1,
                    previous,
                    next_offset,
                });
            }
        }
        let batch = std::mem::replace(&mut self.batch, RawBatch::new());
        self.batch_started = None;
        if advances.is_empty() {
            return;
        }
        self.writing = true;
        self.writer.send(Command::Write { batch, advances });
    }

    /// Resumes fetching after back-pressure, for the partitions that are consuming.
    fn resume(&mut self, consumer: &BaseConsumer<MemberContext>) {
        if !self.paused {
            return;
        }
        self.paused = false;
        let now = Instant::now();
        let mut consuming = TopicPartitionList::new();
        for (key, p) in self.partitions.iter_mut() {
            if p.phase() == Phase::Consuming {
                // librdkafka fetches again from after the last record it delivered: maybe mid-batch.
                p.refetching(now);
                consuming.add_partition(&key.0, key.1);
            }
        }
        let _ = consumer.resume(&consuming);
    }

    /// Lands the batch and waits for every write in flight, for at most `deadline`. True if all landed.
    fn land_everything(
        &mut self,
        consumer: &BaseConsumer<MemberContext>,
        deadline: Duration,
    ) -> bool {
        let until = Instant::now() + deadline;
        loop {
            if !self.writing && self.batch_started.is_some() {
                self.submit();
            }
            if !self.writing && self.batch_started.is_none() {
                return self.failed.is_none();
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.writer.reply_within(left) {
                Some(reply) => self.apply(consumer, reply),
                None => return false,
            }
        }
    }
}

impl Drop for Member {
    /// A member that ends without a revocation (an error) no longer holds its partitions.
    fn drop(&mut self) {
        self.shared
            .metrics
            .assigned_partitions
            .dec_by(self.partitions.len() as i64);
    }
}

fn seek(consumer: &BaseConsumer<MemberContext>, key: &Key, to: SeekTo) -> Result<(), KafkaError> {
    let offset = match to {
        SeekTo::Beginning => Offset::Beginning,
        SeekTo::Offset(at) => Offset::Offset(at),
    };
    consumer.seek(&key.0, key.1, offset, Duration::from_secs(5))
}

pub fn run_member(
    index: usize,
    shared: Arc<Shared>,
    warehouse: (Warehouse, u64),
    stop: &AtomicBool,
) -> Result<(), ConsumeError> {
    let options = shared.options.clone();
    let writer = Writer::spawn(&format!("member-{index}"), warehouse, shared.clone())
        .map_err(|e| ConsumeError::Invalid(format!("starting member {index}'s writer: {e}")))?;
    let watch = ConnectionWatch::new(&options.kafka);
    watch.started();
    let context = MemberContext::new(Member::new(shared, writer), watch);
    let consumer: BaseConsumer<MemberContext> = consumer_config(&options)
        .create_with_context(context)
        .map_err(|e| {
            ConsumeError::Kafka(format!(
                "creating a group member: {}",
                options.kafka.explain_config_error(&e)
            ))
        })?;
    let topics: Vec<&str> = options.topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .map_err(|e| ConsumeError::Kafka(format!("subscribing to {topics:?}: {e}")))?;
    let ctx = consumer.context();
    let mut failure = None;
    while !stop.load(Ordering::Relaxed) {
        // The member lock is never held across poll(): rebalance and statistics callbacks take it.
        if let Some(result) = consumer.poll(Duration::from_millis(50)) {
            match result {
                Ok(message) => {
                    let mut member = ctx.member();
                    if let Err(e) = member.on_message(&message) {
                        tracing::warn!(error = %e, "sending a dead letter; rewinding to retry");
                        member.drop_batch(Instant::now());
                    }
                }
                Err(e) => tracing::debug!(error = %e, "poll"),
            }
        }
        let mut member = ctx.member();
        member.serve_replies(&consumer);
        if let Some(e) = member.failed.take() {
            tracing::error!(error = %e, "this member stops");
            failure = Some(e);
            break;
        }
        member.due_seeks(&consumer, Instant::now());
        member.flush_when_due(&consumer);
        member.recommit_if_failed(&consumer, Instant::now());
    }
    // Shutting down: land what we have, then leave the group (dropping the consumer closes it, which
    // revokes our partitions through the rebalance callback, with nothing left to land).
    {
        let mut member = ctx.member();
        if failure.is_none() && !member.land_everything(&consumer, SHUTDOWN_DEADLINE) {
            tracing::error!(
                "final flush failed: the unflushed batch will be re-read on the next start"
            );
            member.drop_batch(Instant::now());
        }
        let commit = member.stored_offsets();
        drop(member);
        if commit.count() > 0 {
            let _ = consumer.commit(&commit, CommitMode::Sync);
        }
    }
    consumer.unsubscribe();
    drop(consumer);
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
