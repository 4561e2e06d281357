use std::time::Duration;

/// The flush interval may not exceed the one-minute freshness SLA.
pub const MAX_FLUSH_INTERVAL: Duration = Duration::from_secs(60);

/// Everything `playlog consume` needs.
#[derive(Debug, Clone)]
pub struct ConsumeOptions {
    /// How every Kafka client of the group connects: brokers, security, extra librdkafka properties
    /// (applied after the consumer's own defaults). Its `Debug` redacts secrets.
    pub kafka: playlog_kafka::KafkaClientConfig,
    pub group: String,
    pub topics: Vec<String>,
    pub members: usize,
    pub warehouse: String,
    /// How to open it: a BigQuery emulator or location, and whether to migrate on start.
    pub open: playlog_warehouse::OpenOptions,
    pub max_batch_rows: usize,
    pub max_batch_bytes: usize,
    pub flush_interval: Duration,
    pub dlq_topic: String,
    /// Larger records go to the dead-letter topic.
    pub max_record_bytes: usize,
    /// Where to serve Prometheus metrics; `None` to serve none.
    pub metrics_addr: Option<String>,
    /// Forget the group's stored offsets and read every partition from the log's beginning: once, for a
    /// deliberate move to another Kafka log (a recreated topic, a new cluster).
    pub reset_offsets: bool,
    /// The process's registry: the consumer registers its metrics here, beside any other component's.
    pub metrics: playlog_metrics::MetricsRegistry,
}

impl ConsumeOptions {
    pub fn validate(&self) -> Result<(), String> {
        if self.members == 0 || self.members > 64 {
            return Err(format!(
                "--members must be between 1 and 64, got {}",
                self.members
            ));
        }
        if self.flush_interval.is_zero() || self.flush_interval > MAX_FLUSH_INTERVAL {
            return Err(format!(
                "--flush-interval must be above 0 and at most 60s (the freshness SLA), got {:?}",
                self.flush_interval
            ));
        }
        if self.max_batch_rows == 0 || self.max_batch_bytes == 0 {
            return Err("--max-batch-rows and --max-batch-bytes must be positive".into());
        }
        if self.topics.is_empty() {
            return Err("--topics is empty".into());
        }
        for topic in &self.topics {
            if playlog_model::Stream::from_topic(topic).is_none() {
                let known: Vec<&str> = playlog_model::Stream::ALL.map(|s| s.topic()).to_vec();
                return Err(format!(
                    "topic {topic:?} is not one of Playlog's streams ({})",
                    known.join(", ")
                ));
            }
        }
        Ok(())
    }
}
