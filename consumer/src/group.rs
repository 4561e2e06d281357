//! The group's lifecycle in this process: start (warehouse, brokers, dead-letter topic, metrics), members
//! added and stopped, and the final totals. Every member gets a warehouse connection of its own, made
//! from the one opened here (for DuckDB: connections of one database instance, so the process stays the
//! file's only writer while its members and an in-process vault run transactions side by side).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use playlog_kafka::WatchedContext;
use playlog_model::Stream;
use playlog_warehouse::{Warehouse, WarehouseError};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::dead_letter::DeadLetterSink;
use crate::metrics::Metrics;
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
    /// The log's end stands below the offset the warehouse stored for it.
    #[error(
        "{topic}[{partition}] ends at offset {log_end}, but the warehouse stored offset {stored} for group {group}: \
         the topic was recreated or truncated, or these brokers serve another Kafka log. Consuming on would skip \
         the new log's offsets below {stored}. If the move is deliberate, start once with --reset-offsets (the \
         raw rows stay; the group's offsets and the vault's marks restart from the new log's beginning)"
    )]
    LogBehind {
        group: String,
        topic: String,
        partition: i32,
        stored: i64,
        log_end: i64,
    },
    /// The brokers are another cluster than the one the warehouse's offsets came from.
    #[error(
        "the warehouse's offsets for group {group} came from Kafka cluster {stored}, but the brokers at {brokers} \
         are cluster {current}: its offsets mean nothing here, and consuming would skip records. If the move is \
         deliberate, start once with --reset-offsets (the raw rows stay; the group's offsets and the vault's \
         marks restart from the new cluster's beginning)"
    )]
    OtherCluster {
        group: String,
        brokers: String,
        stored: String,
        current: String,
    },
}

/// Totals of a run, for the final summary.
#[derive(Debug, Default, Clone)]
pub struct ConsumeSummary {
    pub rows: [u64; 5],
    pub dead_letters: u64,
    pub batches: u64,
}

/// Shared by the members and their writers.
pub struct Shared {
    pub options: ConsumeOptions,
    /// The handle opened at start (or reopened after a fatal error): members and the vault take
    /// connections from it.
    root: Mutex<Root>,
    pub dead_letters: DeadLetterSink,
    pub metrics: Arc<Metrics>,
    pub rows: [AtomicU64; 5],
    pub dead_letter_count: AtomicU64,
    pub batches: AtomicU64,
}

/// The warehouse every connection comes from, and how many times it was reopened.
pub struct Root {
    warehouse: Warehouse,
    epoch: u64,
}

impl Shared {
    fn root(&self) -> std::sync::MutexGuard<'_, Root> {
        self.root
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A warehouse connection of its own, for a member's writer or an in-process vault, and the epoch of
    /// the instance it belongs to.
    pub fn connect(&self) -> Result<(Warehouse, u64), WarehouseError> {
        let root = self.root();
        Ok((root.warehouse.connect()?, root.epoch))
    }

    /// After a fatal error on a connection of epoch `seen`: opens the warehouse again (once, whoever asks
    /// first; later askers get a connection of the new instance) and returns a connection of it. The old
    /// instance goes when its last connection does. Committed data is all in the file and its WAL, so
    /// nothing is lost; writes in flight are fenced as usual.
    pub fn reopen(&self, seen: u64) -> Result<(Warehouse, u64), WarehouseError> {
        let mut root = self.root();
        if root.epoch == seen {
            let options = &self.options;
            let fresh = Warehouse::open_with(&options.warehouse, &options.open)?;
            root.warehouse = fresh;
            root.epoch += 1;
            tracing::warn!(
                warehouse = %root.warehouse.describe(),
                "reopened the warehouse after a fatal error"
            );
        }
        Ok((root.warehouse.connect()?, root.epoch))
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub fn consumer_config(options: &ConsumeOptions) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("group.id", &options.group)
        .set("client.id", "playlog-consumer")
        .set("partition.assignment.strategy", "cooperative-sticky")
        // Offsets live in the warehouse; Kafka's copy is committed explicitly after each flush.
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // Aborted transactional records are never landed (librdkafka's default, stated: a user's
        // client properties may change it).
        .set("isolation.level", "read_committed")
        .set("statistics.interval.ms", "1000")
        .set("fetch.wait.max.ms", "100")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        // Notice topics created after the consumer started within seconds, not minutes.
        .set("topic.metadata.refresh.interval.ms", "5000");
    options.kafka.apply(&mut config);
    config
}

/// Where the members of this process stand, for progress lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Rows landed since the start, all tables.
    pub rows: u64,
    pub dead_letters: u64,
    /// Partitions the members hold now.
    pub partitions: i64,
}

/// A running member: its stop flag and its thread.
type MemberHandle = (
    Arc<AtomicBool>,
    Option<std::thread::JoinHandle<Result<(), ConsumeError>>>,
);

/// A consumer group's members in this process, sharing one dead-letter producer and one metrics
/// registry. Members can be added and stopped while it runs (each change is a rebalance).
pub struct Group {
    shared: Arc<Shared>,
    members: Vec<MemberHandle>,
}

impl Group {
    /// Opens the warehouse (migrating it if `options.open` says so; DuckDB always), checks the brokers answer, and starts serving metrics.
    pub fn start(options: &ConsumeOptions) -> Result<Group, ConsumeError> {
        options.validate().map_err(ConsumeError::Invalid)?;
        let mut warehouse = Warehouse::open_with(&options.warehouse, &options.open)?;
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
        // Stored offsets mean something only in the log they came from.
        let cluster = probe.client().fetch_cluster_id(Duration::from_secs(10));
        crate::kafka_log::claim(&mut warehouse, options, cluster.as_deref())?;
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
            root: Mutex::new(Root {
                warehouse,
                epoch: 0,
            }),
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

    /// Starts one more member, with a warehouse connection of its own; returns its index.
    pub fn add_member(&mut self) -> Result<usize, ConsumeError> {
        let index = self.members.len();
        let (warehouse, epoch) = self.shared.connect()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (shared, member_stop) = (self.shared.clone(), stop.clone());
        let handle = std::thread::Builder::new()
            .name(format!("member-{index}"))
            .spawn(move || {
                crate::member::run_member(index, shared, (warehouse, epoch), &member_stop)
            })
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

    pub fn progress(&self) -> Progress {
        let shared = &self.shared;
        Progress {
            rows: shared.rows.iter().map(|r| r.load(Ordering::Relaxed)).sum(),
            dead_letters: shared.dead_letter_count.load(Ordering::Relaxed),
            partitions: shared.metrics.assigned_partitions.get(),
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// A warehouse connection of its own, beside the members': for work such as the vault, which then
    /// runs while the members go on writing (DuckDB allows one writing process per file, so such work runs
    /// in this process rather than in a second one). With it, the epoch of the instance it belongs to.
    pub fn connect_warehouse(&self) -> Result<(Warehouse, u64), WarehouseError> {
        self.shared.connect()
    }

    /// After a fatal error on a connection of epoch `seen` (from `connect_warehouse` or this): a
    /// connection of the warehouse as reopened, by a member or, if none has yet, by this call. A
    /// connection of an instance that is already the new one never reopens it again (two instances of
    /// one file would both write).
    pub fn reconnect_warehouse(&self, seen: u64) -> Result<(Warehouse, u64), WarehouseError> {
        self.shared.reopen(seen)
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
        let mut rows = [0; 5];
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
