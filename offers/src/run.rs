//! `playlog offers` against Kafka: page views in, offers out, state checkpointed. The I/O around the pure
//! engine.
//!
//! **Exactly once, by determinism and checkpoints.** Every commit interval, each partition's state
//! ([`Checkpoint`]) is taken, with the next offset it covers, and then, without stopping the poll loop
//! (`crate::delivery`):
//! 1. once every offer made before it is acknowledged by the brokers, it is written to the state topic,
//!    keyed by partition;
//! 2. once those records are acknowledged, the group's offsets are committed (for lag; the checkpoints
//!    are what restarts read).
//!
//! An offer whose delivery fails ends the run before any checkpoint covers it.
//!
//! On start, each partition resumes from its latest checkpoint (or from the log's beginning without one),
//! so the engine is where it was at that offset. A crash between checkpoints makes the same decisions
//! again for the events since, with the same offer ids: the output topic then holds repeats, identical
//! but for `emittedAt`, which the warehouse de-duplicates by offer id. (tansu cannot complete Kafka
//! transactions, which would make the topic itself exactly-once.)
//!
//! One process reads every partition of the input (manual assignment): a second instance would make the
//! same offers again. Sharing partitions across instances (group rebalancing, with checkpoints restored
//! on assignment) is a later step.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use playlog_kafka::KafkaClientConfig;
use playlog_model::{OfferRecord, Stream};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::delivery::Deliveries;
use crate::engine::{Checkpoint, Engine, PageView};
use crate::metrics::{DecisionLabels, OffersMetrics};
use crate::rules::Rules;

pub struct OffersOptions {
    pub kafka: KafkaClientConfig,
    pub group: String,
    pub input: String,
    pub output: String,
    pub state_topic: String,
    pub rules: Rules,
    /// The file the rules came from, read again when it changes: rules switched on or off apply at once.
    pub rules_file: Option<std::path::PathBuf>,
    pub commit_interval: Duration,
    pub max_record_bytes: usize,
    pub format: OfferFormat,
    /// Where the run's metrics are registered (`crate::metrics`).
    pub metrics: playlog_metrics::MetricsRegistry,
}

/// What a run did, for its last line.
#[derive(Debug, Default, Clone, Copy)]
pub struct Summary {
    pub page_views: u64,
    pub offers: u64,
    pub holdouts: u64,
    pub skipped: u64,
    /// Partitions that resumed from a checkpoint (the others started at the log's beginning).
    pub resumed: usize,
}

/// How offers are written to the output topic. Either way `playlog consume` lands them in
/// `raw.offer_events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OfferFormat {
    /// Single-object encoding against `schemas/avro/offer_events.avsc`.
    #[default]
    Avro,
    /// The same fields as camelCase JSON.
    Json,
}

impl OfferFormat {
    pub fn encode(self, offer: &OfferRecord) -> Result<Vec<u8>, String> {
        match self {
            OfferFormat::Avro => {
                let mut out = Vec::with_capacity(128);
                playlog_model::avro::encode_offer(offer, &mut out);
                Ok(out)
            }
            OfferFormat::Json => serde_json::to_vec(offer).map_err(|e| e.to_string()),
        }
    }
}

/// A state-topic record: a partition's state as of `next_offset`.
#[derive(Serialize, Deserialize)]
struct Stored {
    next_offset: i64,
    checkpoint: Checkpoint,
}

const TIMEOUT: Duration = Duration::from_secs(30);

/// Runs until `stop` is set.
pub fn run(options: &OffersOptions, stop: &AtomicBool) -> Result<Summary, String> {
    let kafka = &options.kafka;
    let consumer: BaseConsumer = kafka
        .client_config()
        .set("group.id", &options.group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        // A fetch returns once a byte is there on Kafka, but a broker may hold it for the whole wait
        // (tansu 0.6 does): librdkafka's 500 ms default would then be the offer's latency floor. Offers are
        // real-time, so a short wait, at the cost of more fetches when idle.
        .set("fetch.wait.max.ms", "20")
        .create()
        .map_err(|e| {
            format!(
                "configuring the consumer: {}",
                kafka.explain_config_error(&e)
            )
        })?;
    let partitions = partition_count(&consumer, &options.input)?;
    playlog_kafka::ensure_topics(kafka, &[(options.output.as_str(), partitions)], 1, &[])?;
    // The checkpoints are read to the end on every start: compacted, Kafka keeps about the latest per
    // partition, so that a restart reads a bounded amount however long the history (tansu 0.6 compacts
    // nothing, so there it grows). Terraform creates it compacted too.
    playlog_kafka::ensure_topics(
        kafka,
        &[(options.state_topic.as_str(), partitions)],
        1,
        &[("cleanup.policy", "compact")],
    )?;
    let producer: BaseProducer<Deliveries> = kafka
        .client_config()
        .set("acks", "all")
        .set("linger.ms", "5")
        .create_with_context(Deliveries::default())
        .map_err(|e| {
            format!(
                "configuring the producer: {}",
                kafka.explain_config_error(&e)
            )
        })?;

    let mut engine = Engine::new(options.rules.clone());
    let restored = read_checkpoints(kafka, &options.state_topic)?;
    let mut start = TopicPartitionList::new();
    for p in 0..partitions {
        match restored.get(&p) {
            Some(stored) => {
                engine.restore(&stored.checkpoint);
                start
                    .add_partition_offset(&options.input, p, Offset::Offset(stored.next_offset))
                    .map_err(|e| e.to_string())?;
            }
            None => {
                start
                    .add_partition_offset(&options.input, p, Offset::Beginning)
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    tracing::info!(
        partitions,
        restored = restored.len(),
        "offers: resuming from the state topic's checkpoints"
    );
    consumer
        .assign(&start)
        .map_err(|e| format!("assigning {}: {e}", options.input))?;

    let mut summary = Summary {
        resumed: restored.len(),
        ..Summary::default()
    };
    let mut last_commit = Instant::now();
    let mut reload = Reload {
        seen: options.rules_file.as_deref().and_then(modified),
    };
    let mut dirty: HashMap<i32, i64> = HashMap::new();
    let mut pending = Pending::Idle;
    let metrics = OffersMetrics::register(&options.metrics, &options.rules);
    while !stop.load(Ordering::Relaxed) {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let m = message.map_err(|e| format!("reading {}: {e}", options.input))?;
            let published = m.timestamp().to_millis();
            if let Some(t) = published {
                metrics
                    .evaluation_lag_seconds
                    .set((now_ms() - t).max(0) as f64 / 1000.0);
                let through = t as f64 / 1000.0;
                if through > metrics.evaluated_through_seconds.get() {
                    metrics.evaluated_through_seconds.set(through);
                }
            }
            let partition = m.partition();
            dirty.insert(partition, m.offset() + 1);
            let Ok(record) = playlog_consumer::decode::decode_event(
                Stream::PageView,
                m.payload().unwrap_or_default(),
                options.max_record_bytes,
            ) else {
                // Undecodable records are the raw consumer's dead letters; here they are passed over.
                summary.skipped += 1;
                continue;
            };
            let (Some(user_id), Some(page), Some(event_id)) = (
                record.user_id,
                record.page.as_deref(),
                record.event_id.as_deref(),
            ) else {
                summary.skipped += 1;
                continue;
            };
            summary.page_views += 1;
            metrics.page_views.inc();
            let decisions = engine.on_page_view(&PageView {
                partition,
                event_id,
                ts: record.ts,
                user_id,
                session_id: record.session_id,
                page,
                paid: record.level == "paid",
            });
            for d in decisions {
                if d.holdout {
                    summary.holdouts += 1;
                } else {
                    summary.offers += 1;
                }
                let sent_at = now_ms();
                let value = options.format.encode(&d.record(sent_at))?;
                send(&producer, &options.output, &d.user_id.to_string(), &value)?;
                metrics
                    .decisions
                    .get_or_create(&DecisionLabels {
                        rule: d.rule_id.clone(),
                        outcome: if d.holdout { "holdout" } else { "offer" }.into(),
                    })
                    .inc();
                if let Some(t) = published {
                    metrics
                        .latency_seconds
                        .observe((sent_at - t).max(0) as f64 / 1000.0);
                }
            }
        }
        producer.poll(Duration::ZERO);
        if let Some(failure) = producer.context().failure() {
            return Err(failure);
        }
        pending = pending.advance(options, &consumer, &producer, CommitMode::Async)?;
        if last_commit.elapsed() >= options.commit_interval {
            metrics.state_size.set(engine.state_size() as i64);
            if matches!(pending, Pending::Idle) && !dirty.is_empty() {
                pending = Pending::take(options, &producer, &mut engine, &mut dirty)?;
            }
            if let Some(path) = &options.rules_file {
                reload.check(path, &mut engine);
            }
            last_commit = Instant::now();
        }
    }
    // Stopping: whatever is on its way, then the state as of the last page view, each waited for.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        producer.poll(Duration::from_millis(20));
        let _ = consumer.poll(Duration::ZERO);
        if let Some(failure) = producer.context().failure() {
            return Err(failure);
        }
        pending = pending.advance(options, &consumer, &producer, CommitMode::Sync)?;
        if matches!(pending, Pending::Idle) {
            if dirty.is_empty() {
                break;
            }
            pending = Pending::take(options, &producer, &mut engine, &mut dirty)?;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the brokers did not acknowledge the last offers and checkpoints within {TIMEOUT:?}"
            ));
        }
    }
    Ok(summary)
}

/// A checkpoint on its way (the module's protocol), advanced from the poll loop without blocking it.
enum Pending {
    Idle,
    /// Taken: written once every record numbered below `mark` (the offers before it) is acknowledged.
    Offers {
        mark: u64,
        records: Vec<(i32, Vec<u8>)>,
        offsets: TopicPartitionList,
    },
    /// Written: the offsets are committed once every record below `mark` (the checkpoints) is.
    Checkpoints {
        mark: u64,
        offsets: TopicPartitionList,
    },
}

impl Pending {
    /// Takes each dirty partition's state as of its next offset.
    fn take(
        options: &OffersOptions,
        producer: &BaseProducer<Deliveries>,
        engine: &mut Engine,
        dirty: &mut HashMap<i32, i64>,
    ) -> Result<Pending, String> {
        engine.sweep();
        let mut records = Vec::with_capacity(dirty.len());
        let mut offsets = TopicPartitionList::new();
        for (&partition, &next_offset) in dirty.iter() {
            let stored = Stored {
                next_offset,
                checkpoint: engine.checkpoint(partition),
            };
            records.push((
                partition,
                serde_json::to_vec(&stored).map_err(|e| e.to_string())?,
            ));
            offsets
                .add_partition_offset(&options.input, partition, Offset::Offset(next_offset))
                .map_err(|e| e.to_string())?;
        }
        dirty.clear();
        Ok(Pending::Offers {
            mark: producer.context().mark(),
            records,
            offsets,
        })
    }

    fn advance(
        self,
        options: &OffersOptions,
        consumer: &BaseConsumer,
        producer: &BaseProducer<Deliveries>,
        mode: CommitMode,
    ) -> Result<Pending, String> {
        let deliveries = producer.context();
        Ok(match self {
            Pending::Offers {
                mark,
                records,
                offsets,
            } if deliveries.acknowledged_below(mark) => {
                for (partition, value) in &records {
                    send(
                        producer,
                        &options.state_topic,
                        &partition.to_string(),
                        value,
                    )?;
                }
                Pending::Checkpoints {
                    mark: deliveries.mark(),
                    offsets,
                }
            }
            Pending::Checkpoints { mark, offsets } if deliveries.acknowledged_below(mark) => {
                consumer
                    .commit(&offsets, mode)
                    .map_err(|e| format!("committing offsets of {}: {e}", options.group))?;
                Pending::Idle
            }
            other => other,
        })
    }
}

fn modified(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The rules file's last modification time seen, to read it again only when it changes.
struct Reload {
    seen: Option<SystemTime>,
}

impl Reload {
    /// Applies the rules switched on or off in the file since it was last read; a file that no longer
    /// reads, or changes that need a restart, are logged and leave the running rules as they are.
    fn check(&mut self, path: &std::path::Path, engine: &mut Engine) {
        let now = modified(path);
        if now.is_none() || self.seen == now {
            return;
        }
        self.seen = now;
        let origin = path.display().to_string();
        let newer = match std::fs::read_to_string(path)
            .map_err(|e| format!("{origin}: {e}"))
            .and_then(|text| Rules::parse(&text, &origin).map_err(|e| e.to_string()))
        {
            Ok(rules) => rules,
            Err(e) => {
                tracing::warn!(error = %e, "the rules file changed and does not read; the running rules stay");
                return;
            }
        };
        let (switched, restart) = engine.rules().changes(&newer);
        for (rule, enabled) in switched {
            engine.set_enabled(&rule, enabled);
            tracing::warn!(rule = rule.as_str(), enabled, "offer rule switched");
        }
        if !restart.is_empty() {
            tracing::warn!(
                changed = restart.join(", ").as_str(),
                "the rules file changed beyond enabled switches: restart playlog offers to apply that"
            );
        }
    }
}

fn send(
    producer: &BaseProducer<Deliveries>,
    topic: &str,
    key: &str,
    value: &[u8],
) -> Result<(), String> {
    let deliveries = producer.context();
    let seq = deliveries.sending();
    let mut record = BaseRecord::with_opaque_to(topic, Box::new(seq))
        .key(key)
        .payload(value);
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((
                rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::QueueFull,
                ),
                r,
            )) => {
                record = r;
                producer.poll(Duration::from_millis(50));
            }
            Err((e, _)) => {
                deliveries.not_sent(seq);
                return Err(format!("producing to {topic}: {e}"));
            }
        }
    }
}

fn partition_count(consumer: &BaseConsumer, topic: &str) -> Result<i32, String> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .map_err(|e| format!("reading the metadata of {topic}: {e}"))?;
        let n = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map_or(0, |t| t.partitions().len());
        if n > 0 {
            return Ok(n as i32);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "topic {topic} does not exist: start the producer first (`playlog produce`)"
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The latest checkpoint per partition in the state topic, read from its beginning to its end.
fn read_checkpoints(
    kafka: &KafkaClientConfig,
    topic: &str,
) -> Result<HashMap<i32, Stored>, String> {
    let reader: BaseConsumer = kafka
        .client_config()
        .set("group.id", "playlog-offers-state-reader")
        .set("enable.auto.commit", "false")
        // The end of each partition, as the fetch responses tell it.
        .set("enable.partition.eof", "true")
        .create()
        .map_err(|e| format!("configuring the state reader: {e}"))?;
    let partitions = partition_count(&reader, topic)?;
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition_offset(topic, p, Offset::Beginning)
            .map_err(|e| e.to_string())?;
    }
    let mut pending: std::collections::HashSet<i32> = (0..partitions).collect();
    let mut latest: HashMap<i32, Stored> = HashMap::new();
    reader.assign(&list).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + TIMEOUT * 4;
    while !pending.is_empty() {
        if Instant::now() > deadline {
            return Err(format!("reading {topic} did not reach its end"));
        }
        match reader.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                pending.remove(&p);
            }
            Some(Err(e)) => return Err(format!("reading {topic}: {e}")),
            Some(Ok(m)) => {
                if let Some(value) = m.payload() {
                    let stored: Stored = serde_json::from_slice(value).map_err(|e| {
                        format!(
                            "{topic}[{}]@{}: not a checkpoint: {e}",
                            m.partition(),
                            m.offset()
                        )
                    })?;
                    latest.insert(stored.checkpoint.partition, stored);
                }
            }
        }
    }
    Ok(latest)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
