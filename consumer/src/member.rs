//! Group members: each a librdkafka consumer on its own thread, sharing one warehouse handle.
//!
//! Per partition a member goes assigned (seek to the warehouse's stored offset) → consuming (decode into
//! the batch, or dead-letter) → flushing (dead letters acknowledged, then rows + offsets in one warehouse
//! transaction, then the Kafka commit) → revoked (flush first; if that fails, drop the batch and let the
//! next owner re-read from the stored offset).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use playlog_kafka::{ConnectionWatch, WatchedContext};
use playlog_model::Stream;
use playlog_warehouse::{KafkaMeta, OffsetAdvance, RawBatch, Rejected, Warehouse, WarehouseError};
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;

use crate::catch_up::CatchUp;
use crate::dead_letter::{DeadLetterSink, Origin};
use crate::decode::{DeadLetterReason, decode};
use crate::lag::LagClock;
use crate::metrics::{Metrics, PartitionLabels, TableLabels};
use crate::options::ConsumeOptions;

/// What went wrong starting or running the consumer.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    #[error("{0}")]
    Kafka(String),
}

/// Totals of a run, for the final summary.
#[derive(Debug, Default, Clone)]
pub struct ConsumeSummary {
    pub rows: [u64; 4],
    pub dead_letters: u64,
    pub batches: u64,
}

/// Shared between members.
struct Shared {
    options: ConsumeOptions,
    warehouse: Mutex<Warehouse>,
    dead_letters: DeadLetterSink,
    metrics: Arc<Metrics>,
    rows: [AtomicU64; 4],
    dead_letter_count: AtomicU64,
    batches: AtomicU64,
}

impl Shared {
    fn warehouse(&self) -> MutexGuard<'_, Warehouse> {
        // A member that panicked mid-write leaves DuckDB's transaction rolled back; the handle is still usable.
        self.warehouse
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[derive(Debug, Clone, Copy)]
struct Position {
    /// What the warehouse stores for this partition (`None`: nothing yet).
    stored: Option<i64>,
    /// The next offset to accept; earlier ones have landed already and are skipped.
    next: i64,
    /// Getting the fetcher back to `next` when it skipped ahead or stalled.
    catch_up: CatchUp,
}

/// One member's mutable state: its partitions and the batch being built.
struct MemberState {
    positions: HashMap<(String, i32), Position>,
    batch: RawBatch,
    /// Offsets advanced since the last flush (rows or dead letters).
    dirty: bool,
    batch_started: Option<Instant>,
    /// After a failed write: when to try again, and how long to wait next time.
    retry_at: Option<Instant>,
    backoff: Duration,
    paused: bool,
    /// Partitions whose in-memory progress was dropped: seek them back to their stored offsets.
    rewind: bool,
    /// Each partition's log start offset, from statistics: records below it are gone for good.
    log_start: HashMap<(String, i32), i64>,
    /// Each partition's high watermark, from statistics (fetch responses: right on every broker).
    high_watermark: HashMap<(String, i32), i64>,
    lag: HashMap<(String, i32), LagClock>,
}

impl MemberState {
    fn new() -> MemberState {
        MemberState {
            positions: HashMap::new(),
            batch: RawBatch::new(),
            dirty: false,
            batch_started: None,
            retry_at: None,
            backoff: Duration::from_millis(100),
            paused: false,
            rewind: false,
            log_start: HashMap::new(),
            high_watermark: HashMap::new(),
            lag: HashMap::new(),
        }
    }

    /// Forgets everything not yet landed; positions fall back to what the warehouse stores.
    fn drop_batch(&mut self) {
        self.batch = RawBatch::new();
        self.dirty = false;
        self.batch_started = None;
        for p in self.positions.values_mut() {
            p.next = p.stored.unwrap_or(0);
        }
        self.rewind = true;
    }
}

/// The librdkafka context of one member: rebalances and statistics land here, on the member's thread.
struct MemberContext {
    shared: Arc<Shared>,
    state: Mutex<MemberState>,
    /// Started at once: the group checked the connection before any member ran, so later failures (a
    /// rotated password, an expired certificate) are logged as warnings while librdkafka retries.
    watch: ConnectionWatch,
}

impl MemberContext {
    fn state(&self) -> MutexGuard<'_, MemberState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ClientContext for MemberContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.watch.observe(&error, reason);
    }

    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        self.watch.observe_log(level, facility, message);
    }

    fn stats(&self, statistics: Statistics) {
        let now = now_ms();
        let group = &self.shared.options.group;
        let mut state = self.state();
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                if *partition < 0 || p.hi_offset < 0 {
                    continue;
                }
                let key = (topic.clone(), *partition);
                if p.lo_offset >= 0 {
                    state.log_start.insert(key.clone(), p.lo_offset);
                }
                state.high_watermark.insert(key.clone(), p.hi_offset);
                let Some(position) = state.positions.get(&key).copied() else {
                    continue;
                };
                let clock = state.lag.entry(key).or_default();
                clock.observe(p.hi_offset, now);
                let committed = position.stored.unwrap_or(0);
                let labels = PartitionLabels {
                    group: group.clone(),
                    topic: topic.clone(),
                    partition: partition.to_string(),
                };
                self.shared
                    .metrics
                    .lag
                    .get_or_create(&labels)
                    .set((p.hi_offset - committed).max(0));
                self.shared
                    .metrics
                    .lag_seconds
                    .get_or_create(&labels)
                    .set(clock.lag_seconds(committed, now));
            }
        }
    }
}

impl ConsumerContext for MemberContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let stored = self.stored_offsets();
                let mut state = self.state();
                for element in tpl.elements() {
                    let key = (element.topic().to_owned(), element.partition());
                    let at = stored.get(&key).copied();
                    state.positions.insert(
                        key,
                        Position {
                            stored: at,
                            next: at.unwrap_or(0),
                            catch_up: CatchUp::new(Instant::now()),
                        },
                    );
                }
                drop(state);
                let assigned: Vec<(String, i32)> = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_owned(), e.partition()))
                    .collect();
                for (topic, partition) in assigned {
                    let offset = stored
                        .get(&(topic.clone(), partition))
                        .map_or(Offset::Beginning, |at| Offset::Offset(*at));
                    if let Err(e) = tpl.set_partition_offset(&topic, partition, offset) {
                        tracing::error!(topic, partition, error = %e, "setting the start offset");
                    }
                }
                self.shared.metrics.rebalances.inc();
                tracing::info!(
                    partitions = tpl.count(),
                    "assigned; seeking to the warehouse's offsets"
                );
                let result = if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                };
                if let Err(e) = result {
                    tracing::error!(error = %e, "assigning partitions");
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let lost = consumer.assignment_lost();
                {
                    let mut state = self.state();
                    if lost {
                        // Someone else may own these already: writing now could duplicate their rows.
                        tracing::warn!("partitions lost: dropping the unflushed batch");
                        state.drop_batch();
                    } else if let Err(e) = self.flush_with_retries(consumer, &mut state, 3) {
                        tracing::warn!(error = %e, "could not flush before giving up partitions; the next owner re-reads them");
                        state.drop_batch();
                    }
                    for element in tpl.elements() {
                        let key = (element.topic().to_owned(), element.partition());
                        state.positions.remove(&key);
                        state.lag.remove(&key);
                        let labels = PartitionLabels {
                            group: self.shared.options.group.clone(),
                            topic: key.0.clone(),
                            partition: key.1.to_string(),
                        };
                        self.shared.metrics.lag.remove(&labels);
                        self.shared.metrics.lag_seconds.remove(&labels);
                    }
                }
                self.shared.metrics.rebalances.inc();
                tracing::info!(partitions = tpl.count(), lost, "revoked");
                let result = if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                };
                if let Err(e) = result {
                    tracing::error!(error = %e, "unassigning partitions");
                }
            }
            other => tracing::error!(error = ?other, "rebalance error"),
        }
    }
}

impl MemberContext {
    /// The warehouse's offsets for this group, retried until the warehouse answers: assigning without them
    /// could re-read (duplicate) or skip (lose) events.
    fn stored_offsets(&self) -> HashMap<(String, i32), i64> {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self
                .shared
                .warehouse()
                .stored_offsets(&self.shared.options.group)
            {
                Ok(offsets) => {
                    return offsets
                        .into_iter()
                        .map(|o| ((o.topic, o.partition), o.next_offset))
                        .collect();
                }
                Err(e) => {
                    self.shared.metrics.warehouse_errors.inc();
                    tracing::warn!(error = %e, "reading stored offsets; retrying");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    fn flush_with_retries(
        &self,
        consumer: &BaseConsumer<Self>,
        state: &mut MemberState,
        attempts: u32,
    ) -> Result<(), WarehouseError> {
        let mut backoff = Duration::from_millis(100);
        let mut result = Ok(());
        for attempt in 0..attempts {
            result = self.flush(consumer, state);
            match &result {
                Ok(()) => return Ok(()),
                Err(e) if !e.is_retriable() => return result,
                Err(_) if attempt + 1 < attempts => {
                    std::thread::sleep(backoff);
                    backoff *= 2;
                }
                Err(_) => {}
            }
        }
        result
    }

    /// Lands the batch: dead letters acknowledged, then rows and offsets in one transaction, then the Kafka
    /// commit. On failure nothing is recorded and the batch stays for the next attempt.
    fn flush(
        &self,
        consumer: &BaseConsumer<Self>,
        state: &mut MemberState,
    ) -> Result<(), WarehouseError> {
        if !state.dirty {
            return Ok(());
        }
        let started = Instant::now();
        let shared = &self.shared;
        if let Err(e) = shared.dead_letters.flush() {
            shared.metrics.warehouse_errors.inc();
            // Not a warehouse failure, but it blocks recording offsets in the same way: nothing moves past
            // a letter that is not in the topic.
            tracing::error!(
                topic = shared.dead_letters.topic(),
                error = %e,
                "dead letters not acknowledged: offsets held back; retrying the flush"
            );
            return Err(WarehouseError::Batch(format!(
                "dead-letter topic {}: {e}",
                shared.dead_letters.topic()
            )));
        }
        let advances: Vec<OffsetAdvance> = state
            .positions
            .iter()
            .filter(|(_, p)| p.next > p.stored.unwrap_or(0))
            .map(|((topic, partition), p)| OffsetAdvance {
                topic: topic.clone(),
                partition: *partition,
                previous: p.stored,
                next_offset: p.next,
            })
            .collect();
        // Bound first: a guard held in a match scrutinee lives through the arms, and the fenced arm locks
        // the warehouse again (a self-deadlock that stalled rebalancing groups).
        let mut dead_letter = |rows: Vec<Rejected>| self.dead_letter_rejected(rows);
        let written = shared.warehouse().write(
            &shared.options.group,
            &state.batch,
            &advances,
            &mut dead_letter,
        );
        let committed = match written {
            Ok(c) => c,
            Err(e @ WarehouseError::Fenced { .. }) => {
                tracing::warn!(error = %e, "fenced");
                // Another member moved on: take the warehouse's offsets as they are now, and re-read from there.
                let stored = self.stored_offsets();
                for (key, position) in state.positions.iter_mut() {
                    position.stored = stored.get(key).copied();
                }
                state.drop_batch();
                return Err(e);
            }
            Err(e) => {
                shared.metrics.warehouse_errors.inc();
                return Err(e);
            }
        };
        let mut commit = TopicPartitionList::new();
        for a in &advances {
            if let Some(p) = state.positions.get_mut(&(a.topic.clone(), a.partition)) {
                p.stored = Some(a.next_offset);
            }
            let _ =
                commit.add_partition_offset(&a.topic, a.partition, Offset::Offset(a.next_offset));
        }
        if commit.count() > 0
            && let Err(e) = consumer.commit(&commit, CommitMode::Async)
        {
            // The warehouse already holds the truth; Kafka's copy is for lag tooling only.
            tracing::debug!(error = %e, "committing offsets to Kafka");
        }
        let elapsed = started.elapsed().as_secs_f64();
        let m = &shared.metrics;
        m.batches.inc();
        m.flush_duration.observe(elapsed);
        for stream in Stream::ALL {
            let n = committed.rows[stream.index()];
            if n > 0 {
                m.rows_ingested
                    .get_or_create(&TableLabels {
                        table: stream.topic().to_owned(),
                    })
                    .inc_by(n);
                shared.rows[stream.index()].fetch_add(n, Ordering::Relaxed);
            }
        }
        for ts in state.batch.event_times() {
            m.freshness
                .observe((committed.loaded_at - ts) as f64 / 1000.0);
        }
        for ts in state.batch.publish_times() {
            m.publish_freshness
                .observe((committed.loaded_at - ts) as f64 / 1000.0);
        }
        shared.batches.fetch_add(1, Ordering::Relaxed);
        state.batch = RawBatch::new();
        state.dirty = false;
        state.batch_started = None;
        Ok(())
    }

    /// Rows the warehouse refused: to the dead-letter topic, acknowledged before the offsets move past them.
    fn dead_letter_rejected(&self, rows: Vec<Rejected>) -> Result<(), WarehouseError> {
        let shared = &self.shared;
        let failed = |e: String| {
            WarehouseError::Batch(format!(
                "dead-letter topic {}: {e}",
                shared.dead_letters.topic()
            ))
        };
        for row in rows {
            let reason = DeadLetterReason::WarehouseRejected(row.message);
            let origin = Origin {
                topic: &row.topic,
                partition: row.partition,
                offset: row.offset,
            };
            shared
                .dead_letters
                .send(Some(row.row.as_bytes()), None, &origin, &reason)
                .map_err(|e| failed(e.to_string()))?;
            shared.dead_letter_count.fetch_add(1, Ordering::Relaxed);
            shared.metrics.count_dead_letter(&row.topic, &reason);
        }
        shared
            .dead_letters
            .flush()
            .map_err(|e| failed(e.to_string()))
    }

    fn handle(&self, message: &BorrowedMessage<'_>) -> Result<(), KafkaError> {
        let topic = message.topic();
        let partition = message.partition();
        let offset = message.offset();
        let Some(stream) = Stream::from_topic(topic) else {
            return Ok(());
        };
        let mut state = self.state();
        // One key for every lookup below (an owned topic per lookup showed in profiles).
        let key = (topic.to_owned(), partition);
        let Some(position) = state.positions.get_mut(&key) else {
            return Ok(());
        };
        if offset < position.next {
            // Already landed (or already in this batch): a redelivery after a seek. Exactly once means skip.
            position.catch_up.progressed();
            return Ok(());
        }
        if offset > position.next {
            // A gap: the fetcher is ahead of what has landed (a seek that did not take, or a fetch that
            // started elsewhere). Records are skipped only if the log no longer has them (below its start,
            // deleted by retention); otherwise go back for them.
            let missing_from = position.next;
            let log_start = state.log_start.get(&key).copied().unwrap_or(0);
            if log_start <= missing_from {
                if let Some(position) = state.positions.get_mut(&key) {
                    position.catch_up.gap();
                }
                return Ok(());
            }
            tracing::warn!(
                topic,
                partition,
                from = missing_from,
                to = offset,
                log_start,
                "records deleted from the log before they landed: skipping the gap"
            );
        }
        let Some(position) = state.positions.get_mut(&key) else {
            return Ok(());
        };
        position.catch_up.progressed();
        position.next = offset + 1;
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
                state.batch.push(stream, &record, &meta, value.len());
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
        state.dirty = true;
        state.batch_started.get_or_insert_with(Instant::now);
        Ok(())
    }
}

/// How often a member checks whether a partition's fetcher needs a seek to catch up.
const CATCH_UP_CHECK: Duration = Duration::from_millis(20);

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn consumer_config(options: &ConsumeOptions) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("group.id", &options.group)
        .set("client.id", "playlog-consumer")
        .set("partition.assignment.strategy", "cooperative-sticky")
        // Offsets live in the warehouse; Kafka's copy is committed explicitly after each flush.
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("statistics.interval.ms", "1000")
        .set("fetch.wait.max.ms", "100")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        // Notice topics created after the consumer started within seconds, not minutes.
        .set("topic.metadata.refresh.interval.ms", "5000");
    options.kafka.apply(&mut config);
    config
}

/// Runs `options.members` members until `stop` is set, then flushes, commits and leaves the group.
pub fn run(options: &ConsumeOptions, stop: &AtomicBool) -> Result<ConsumeSummary, ConsumeError> {
    let mut group = Group::start(options)?;
    for _ in 0..options.members {
        group.add_member()?;
    }
    while !stop.load(Ordering::Relaxed) && group.running() > 0 {
        std::thread::sleep(Duration::from_millis(50));
    }
    group.stop()
}

/// A running member: its stop flag and its thread.
type MemberHandle = (
    Arc<AtomicBool>,
    Option<std::thread::JoinHandle<Result<(), ConsumeError>>>,
);

/// A consumer group's members in this process, sharing one warehouse handle, one dead-letter producer and
/// one metrics registry. Members can be added and stopped while it runs (each change is a rebalance).
pub struct Group {
    shared: Arc<Shared>,
    members: Vec<MemberHandle>,
}

impl Group {
    /// Opens the warehouse (migrating it), checks the brokers answer, and starts serving metrics.
    pub fn start(options: &ConsumeOptions) -> Result<Group, ConsumeError> {
        options.validate().map_err(ConsumeError::Invalid)?;
        let warehouse =
            Warehouse::open_with(&options.warehouse, options.bigquery_endpoint.as_deref())?;
        tracing::info!(warehouse = %warehouse.describe(), "warehouse ready");
        // Check the brokers answer before starting members, for one clear error.
        let probe: BaseConsumer<WatchedContext> = consumer_config(options)
            .create_with_context(WatchedContext::new(&options.kafka))
            .map_err(|e| {
                ConsumeError::Kafka(format!(
                    "configuring the consumer: {}",
                    options.kafka.explain_config_error(&e)
                ))
            })?;
        // A consumer's log and error events wait in its queue until it is polled; a poll with a timeout
        // serves every event that arrives meanwhile (one without serves one event at most).
        playlog_kafka::check_reachable(probe.client(), &options.kafka, &|| {
            let _ = probe.poll(Duration::from_millis(100));
        })
        .map_err(ConsumeError::Kafka)?;
        // The dead-letter topic must exist before the first bad record; brokers may not auto-create it.
        // It takes letters as large as the records the consumer accepts, with their headers.
        let letter_limit = crate::dead_letter::letter_limit(options.max_record_bytes).to_string();
        playlog_kafka::ensure_topics(
            &options.kafka,
            &[(options.dlq_topic.as_str(), 1)],
            1,
            &[("max.message.bytes", &letter_limit)],
        )
        .map_err(ConsumeError::Kafka)?;
        drop(probe);
        let metrics = Metrics::register(&options.metrics);
        metrics.expect_dead_letters_from(&options.topics);
        if let Some(addr) = &options.metrics_addr {
            options.metrics.serve(addr).map_err(ConsumeError::Invalid)?;
        }
        let dead_letters =
            DeadLetterSink::new(&options.kafka, &options.dlq_topic, options.max_record_bytes)
                .map_err(|e| {
                    ConsumeError::Kafka(format!(
                        "dead-letter producer: {}",
                        options.kafka.explain_config_error(&e)
                    ))
                })?;
        let shared = Arc::new(Shared {
            options: options.clone(),
            warehouse: Mutex::new(warehouse),
            dead_letters,
            metrics,
            rows: Default::default(),
            dead_letter_count: AtomicU64::new(0),
            batches: AtomicU64::new(0),
        });
        Ok(Group {
            shared,
            members: Vec::new(),
        })
    }

    /// Starts one more member; returns its index.
    pub fn add_member(&mut self) -> Result<usize, ConsumeError> {
        let index = self.members.len();
        let stop = Arc::new(AtomicBool::new(false));
        let (shared, member_stop) = (self.shared.clone(), stop.clone());
        let handle = std::thread::Builder::new()
            .name(format!("member-{index}"))
            .spawn(move || run_member(shared, &member_stop))
            .map_err(|e| ConsumeError::Invalid(format!("starting member {index}: {e}")))?;
        self.members.push((stop, Some(handle)));
        Ok(index)
    }

    /// Stops one member: it flushes, commits and leaves the group.
    pub fn stop_member(&mut self, index: usize) -> Result<(), ConsumeError> {
        let Some((stop, handle)) = self.members.get_mut(index) else {
            return Ok(());
        };
        stop.store(true, Ordering::Relaxed);
        match handle.take() {
            Some(h) => h
                .join()
                .unwrap_or_else(|_| Err(ConsumeError::Invalid("a member panicked".into()))),
            None => Ok(()),
        }
    }

    /// Members still running.
    pub fn running(&self) -> usize {
        self.members
            .iter()
            .filter(|(_, h)| h.as_ref().is_some_and(|h| !h.is_finished()))
            .count()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Runs `work` with the warehouse handle the members write through, between their writes: DuckDB
    /// allows one writing process per file, so work such as the vault runs here rather than in a second
    /// process. Members wait while it runs.
    pub fn with_warehouse<T>(&self, work: impl FnOnce(&mut Warehouse) -> T) -> T {
        work(&mut self.shared.warehouse())
    }

    /// Stops every member and returns the run's totals.
    pub fn stop(mut self) -> Result<ConsumeSummary, ConsumeError> {
        for (stop, _) in &self.members {
            stop.store(true, Ordering::Relaxed);
        }
        let mut first_error = None;
        for i in 0..self.members.len() {
            if let Err(e) = self.stop_member(i) {
                first_error.get_or_insert(e);
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        let shared = &self.shared;
        let mut rows = [0; 4];
        for s in Stream::ALL {
            rows[s.index()] = shared.rows[s.index()].load(Ordering::Relaxed);
        }
        Ok(ConsumeSummary {
            rows,
            dead_letters: shared.dead_letter_count.load(Ordering::Relaxed),
            batches: shared.batches.load(Ordering::Relaxed),
        })
    }
}

fn run_member(shared: Arc<Shared>, stop: &AtomicBool) -> Result<(), ConsumeError> {
    let options = shared.options.clone();
    let watch = ConnectionWatch::new(&options.kafka);
    watch.started();
    let context = MemberContext {
        shared: shared.clone(),
        state: Mutex::new(MemberState::new()),
        watch,
    };
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
    let mut last_catch_up = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        // The state lock is never held across poll(): rebalance and statistics callbacks take it.
        if let Some(result) = consumer.poll(Duration::from_millis(50)) {
            match result {
                Ok(message) => {
                    if let Err(e) = ctx.handle(&message) {
                        tracing::warn!(error = %e, "sending a dead letter; rewinding to retry");
                        ctx.state().drop_batch();
                    }
                }
                Err(e) => tracing::debug!(error = %e, "poll"),
            }
        }
        let mut state = ctx.state();
        if state.paused && !state.dirty {
            // Nothing left to land (the batch was dropped): fetch again.
            state.paused = false;
            if let Ok(assignment) = consumer.assignment() {
                let _ = consumer.resume(&assignment);
            }
        }
        // Partitions whose fetcher skipped past the next offset, or went quiet below the high watermark.
        // Checked every few milliseconds, not per record: it walks every assigned partition.
        if !state.paused && last_catch_up.elapsed() >= CATCH_UP_CHECK {
            let now = Instant::now();
            last_catch_up = now;
            let MemberState {
                positions,
                log_start,
                high_watermark,
                ..
            } = &mut *state;
            for ((topic, partition), position) in positions.iter_mut() {
                let key = (topic.clone(), *partition);
                let start = log_start.get(&key).copied().unwrap_or(0);
                let hi = high_watermark.get(&key).copied();
                if let Some(at) = position.catch_up.due_seek(position.next, hi, start, now) {
                    tracing::debug!(
                        topic,
                        partition,
                        at,
                        next = position.next,
                        "seeking back to catch up"
                    );
                    if let Err(e) = consumer.seek(
                        topic,
                        *partition,
                        Offset::Offset(at),
                        Duration::from_secs(5),
                    ) {
                        // Harmless: the next due_seek tries again.
                        tracing::debug!(topic, partition, at, error = %e, "seeking back");
                    }
                }
            }
        }
        if state.rewind {
            state.rewind = false;
            rewind(&consumer, &state);
        }
        let due = state.dirty
            && (state.batch.rows() >= options.max_batch_rows
                || state.batch.bytes() >= options.max_batch_bytes
                || state
                    .batch_started
                    .is_some_and(|t| t.elapsed() >= options.flush_interval));
        let waiting = state.retry_at.is_some_and(|t| Instant::now() < t);
        if due && !waiting {
            match ctx.flush(&consumer, &mut state) {
                Ok(()) => {
                    state.retry_at = None;
                    state.backoff = Duration::from_millis(100);
                    if state.paused {
                        state.paused = false;
                        if let Ok(assignment) = consumer.assignment() {
                            let _ = consumer.resume(&assignment);
                        }
                        tracing::info!("warehouse writes succeed again; fetching resumed");
                    }
                }
                Err(e @ WarehouseError::Fenced { .. }) => {
                    // The batch was dropped and the partitions rewound: nothing to retry.
                    tracing::warn!(error = %e, "batch fenced off");
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?state.backoff, "flush failed; pausing fetches and retrying");
                    state.retry_at = Some(Instant::now() + state.backoff);
                    state.backoff = (state.backoff * 2).min(Duration::from_secs(30));
                    if !state.paused {
                        // Back-pressure: stop fetching while the warehouse cannot take writes.
                        state.paused = true;
                        if let Ok(assignment) = consumer.assignment() {
                            let _ = consumer.pause(&assignment);
                        }
                    }
                }
            }
        }
    }
    // Shutting down: land what we have, then leave the group (dropping the consumer closes it, which
    // revokes our partitions through the rebalance callback).
    {
        let mut state = ctx.state();
        if let Err(e) = ctx.flush_with_retries(&consumer, &mut state, 10) {
            tracing::error!(error = %e, "final flush failed: the unflushed batch will be re-read on the next start");
        }
    }
    if let Ok(assignment) = consumer.assignment() {
        let state = ctx.state();
        let mut commit = TopicPartitionList::new();
        for e in assignment.elements() {
            if let Some(Some(stored)) = state
                .positions
                .get(&(e.topic().to_owned(), e.partition()))
                .map(|p| p.stored)
            {
                let _ =
                    commit.add_partition_offset(e.topic(), e.partition(), Offset::Offset(stored));
            }
        }
        drop(state);
        if commit.count() > 0 {
            let _ = consumer.commit(&commit, CommitMode::Sync);
        }
    }
    consumer.unsubscribe();
    drop(consumer);
    Ok(())
}

/// Seeks every assigned partition back to the offset the warehouse stores.
fn rewind(consumer: &BaseConsumer<MemberContext>, state: &MemberState) {
    for ((topic, partition), p) in &state.positions {
        let to = p.stored.map_or(Offset::Beginning, Offset::Offset);
        if let Err(e) = consumer.seek(topic, *partition, to, Duration::from_secs(5)) {
            tracing::warn!(topic, partition, error = %e, "seeking back to the stored offset");
        }
    }
}
