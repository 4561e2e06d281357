//! Every metric Playlog's consumer exports, in one place, with kafka-lag-exporter's names where they exist.
//! Registered in the process's `MetricsRegistry`, served on `--metrics-addr` at `/metrics`.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use playlog_metrics::MetricsRegistry;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

/// Freshness histogram bounds, in seconds.
/// Past 60 s as well, so that a p99 over the SLA is told from one at it.
const FRESHNESS_BUCKETS: [f64; 27] = [
    0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 2.0,
    3.0, 5.0, 10.0, 20.0, 40.0, 60.0, 90.0, 120.0, 300.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    pub group: String,
    pub topic: String,
    pub partition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableLabels {
    pub table: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeadLetterLabels {
    pub topic: String,
    pub reason: String,
}

pub struct Metrics {
    pub registry: MetricsRegistry,
    pub lag: Family<PartitionLabels, Gauge>,
    pub lag_seconds: Family<PartitionLabels, Gauge<f64, AtomicU64>>,
    pub rows_ingested: Family<TableLabels, Counter>,
    pub batches: Counter,
    pub flush_duration: Histogram,
    pub freshness: Histogram,
    pub publish_freshness: Histogram,
    pub dead_letters: Family<DeadLetterLabels, Counter>,
    pub warehouse_errors: Counter,
    pub rebalances: Counter,
    pub assigned_partitions: Gauge,
    pub subscribed_partitions: Gauge,
}

impl Metrics {
    /// Registers the consumer's metrics in the process's registry.
    pub fn register(registry: &MetricsRegistry) -> Arc<Metrics> {
        let registry = registry.clone();
        let lag = Family::<PartitionLabels, Gauge>::default();
        let lag_seconds = Family::<PartitionLabels, Gauge<f64, AtomicU64>>::default();
        let rows_ingested = Family::<TableLabels, Counter>::default();
        // Every table's series exists from the start: a consumer that has landed nothing since it started
        // must read as an ingest rate of 0 (which alerts can see), not as no series at all.
        for stream in playlog_model::Stream::ALL {
            rows_ingested
                .get_or_create(&TableLabels {
                    table: stream.topic().to_owned(),
                })
                .inc_by(0);
        }
        let batches = Counter::default();
        // 1 ms to about 65 s.
        let flush_duration = Histogram::new(exponential_buckets(0.001, 2.0, 17));
        // Fine around the one-second aim (every 100 ms up to 1.5 s, so that a p99 near 1 s reads true),
        // coarse up to the one-minute SLA.
        let freshness = Histogram::new(FRESHNESS_BUCKETS.iter().copied());
        let publish_freshness = Histogram::new(FRESHNESS_BUCKETS.iter().copied());
        let dead_letters = Family::<DeadLetterLabels, Counter>::default();
        let warehouse_errors = Counter::default();
        let rebalances = Counter::default();
        let assigned_partitions = Gauge::default();
        let subscribed_partitions = Gauge::default();
        registry.register(
            "kafka_consumergroup_group_lag",
            "High watermark minus the group's committed offset, per partition",
            lag.clone(),
        );
        registry.register(
            "kafka_consumergroup_group_lag_seconds",
            "Seconds since the next record to land was appended to its partition",
            lag_seconds.clone(),
        );
        // Counters get their `_total` suffix from the client library.
        registry.register(
            "playlog_rows_ingested",
            "Rows landed in raw tables",
            rows_ingested.clone(),
        );
        registry.register(
            "playlog_batches",
            "Batches committed to the warehouse",
            batches.clone(),
        );
        registry.register(
            "playlog_flush_duration_seconds",
            "Time to land one batch (dead letters, rows and offsets)",
            flush_duration.clone(),
        );
        registry.register(
            "playlog_event_freshness_seconds",
            "Time from the event to its row being visible to readers (after the commit), per landed event",
            freshness.clone(),
        );
        // Event times of a time-accelerated simulation run ahead of the wall clock; the Kafka timestamp
        // (publish time) does not, so this one reads true in demos as well as in production.
        registry.register(
            "playlog_publish_freshness_seconds",
            "Time from the record's Kafka timestamp (publish time) to its row being visible to readers (after the commit), per landed event",
            publish_freshness.clone(),
        );
        registry.register(
            "playlog_dead_letters",
            "Records sent to the dead-letter topic",
            dead_letters.clone(),
        );
        registry.register(
            "playlog_warehouse_errors",
            "Failed warehouse writes (each is retried)",
            warehouse_errors.clone(),
        );
        registry.register(
            "playlog_rebalances",
            "Partition assignments and revocations seen by members",
            rebalances.clone(),
        );
        // A group whose members together hold no partition while lag grows is stuck in a rebalance.
        registry.register(
            "playlog_assigned_partitions",
            "Partitions assigned to this process's members",
            assigned_partitions.clone(),
        );
        // Set, not summed: every member of every process sees the same metadata. Fewer assigned than
        // subscribed across the group, for minutes, means partitions nobody reads.
        registry.register(
            "playlog_subscribed_partitions",
            "Partitions of the subscribed topics, as the brokers' metadata reports them",
            subscribed_partitions.clone(),
        );
        Arc::new(Metrics {
            registry,
            lag,
            lag_seconds,
            rows_ingested,
            batches,
            flush_duration,
            freshness,
            publish_freshness,
            dead_letters,
            warehouse_errors,
            rebalances,
            assigned_partitions,
            subscribed_partitions,
        })
    }

    /// Creates every (topic, reason) dead-letter series at 0. Prometheus sees no increase in a series
    /// whose first sample is already above 0, so without this the first dead letters after a start
    /// would never raise an alert.
    pub fn expect_dead_letters_from(&self, topics: &[String]) {
        for topic in topics {
            for reason in crate::decode::DeadLetterReason::CODES {
                self.dead_letters
                    .get_or_create(&DeadLetterLabels {
                        topic: topic.clone(),
                        reason: reason.to_owned(),
                    })
                    .inc_by(0);
            }
        }
    }

    /// Counts one record sent to the dead-letter topic.
    pub fn count_dead_letter(&self, topic: &str, reason: &crate::decode::DeadLetterReason) {
        self.dead_letters
            .get_or_create(&DeadLetterLabels {
                topic: topic.to_owned(),
                reason: reason.code().to_owned(),
            })
            .inc();
    }

    pub fn encode(&self) -> String {
        self.registry.encode()
    }
}
