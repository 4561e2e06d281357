//! Publishing to Kafka with librdkafka: an idempotent producer (acks=all), compressed batches, topics
//! created when missing, and every delivery confirmed or counted as failed.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use playlog_kafka::{ConnectionWatch, Watched};
use playlog_model::{Event, Stream};
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use crate::sink::{EventSink, Format, SinkError, StreamCounters};

/// How to reach Kafka and publish.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// How to connect: brokers, security, extra librdkafka properties (applied after the producer's own
    /// defaults). Its `Debug` redacts secrets.
    pub kafka: playlog_kafka::KafkaClientConfig,
    pub partitions: i32,
    pub replication_factor: i32,
    /// `lz4`, `zstd`, `snappy` or `none`.
    pub compression: String,
    pub format: Format,
}

/// Counts deliveries per stream as librdkafka reports them, and watches connection failures.
pub struct DeliveryTracker {
    counters: Arc<StreamCounters>,
    first_error: Mutex<Option<String>>,
    watch: ConnectionWatch,
}

impl DeliveryTracker {
    pub fn first_error(&self) -> Option<String> {
        self.first_error.lock().ok().and_then(|e| e.clone())
    }
}

impl Watched for DeliveryTracker {
    fn watch(&self) -> &ConnectionWatch {
        &self.watch
    }
}

impl ClientContext for DeliveryTracker {
    fn error(&self, error: KafkaError, reason: &str) {
        // Connection trouble is retried by librdkafka and surfaces as delivery failures if it lasts; a
        // refused login or certificate at start-up ends the start with one line (check_reachable).
        self.watch.observe(&error, reason);
    }

    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        self.watch.observe_log(level, facility, message);
    }
}

impl ProducerContext for DeliveryTracker {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {
        let (topic, failed) = match result {
            Ok(message) => (message.topic(), None),
            Err((error, message)) => (message.topic(), Some(error)),
        };
        let Some(stream) = Stream::from_topic(topic) else {
            return;
        };
        match failed {
            None => self.counters.delivered[stream.index()].fetch_add(1, Ordering::Relaxed),
            Some(error) => {
                if let Ok(mut first) = self.first_error.lock() {
                    first.get_or_insert_with(|| format!("{topic}: {error}"));
                }
                self.counters.failed[stream.index()].fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

pub type EventProducer = ThreadedProducer<DeliveryTracker>;

/// Connects, checks the brokers answer, and creates any missing topic. Fails with an error that says what
/// to do when the brokers cannot be reached.
pub fn connect(
    settings: &KafkaSettings,
    counters: Arc<StreamCounters>,
) -> Result<Arc<EventProducer>, SinkError> {
    let mut config = ClientConfig::new();
    config
        .set("client.id", "playlog-producer")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", &settings.compression)
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576");
    settings.kafka.apply(&mut config);
    let tracker = DeliveryTracker {
        counters,
        first_error: Mutex::new(None),
        watch: ConnectionWatch::new(&settings.kafka),
    };
    let producer: EventProducer = config.create_with_context(tracker).map_err(|e| {
        SinkError::Kafka(format!(
            "configuring the Kafka producer: {}",
            settings.kafka.explain_config_error(&e)
        ))
    })?;
    playlog_kafka::check_reachable(producer.client(), &settings.kafka, &|| {})
        .map_err(SinkError::Kafka)?;
    let topics: Vec<(&str, i32)> = Stream::EVENTS
        .iter()
        .map(|s| (s.topic(), settings.partitions))
        .collect();
    playlog_kafka::ensure_topics(&settings.kafka, &topics, settings.replication_factor, &[])
        .map_err(SinkError::Kafka)?;
    Ok(Arc::new(producer))
}

/// One generator thread's handle on the shared producer.
pub struct KafkaSink {
    producer: Arc<EventProducer>,
    format: Format,
    counters: Arc<StreamCounters>,
    value: Vec<u8>,
}

impl KafkaSink {
    pub fn new(
        producer: Arc<EventProducer>,
        format: Format,
        counters: Arc<StreamCounters>,
    ) -> KafkaSink {
        KafkaSink {
            producer,
            format,
            counters,
            value: Vec::with_capacity(1024),
        }
    }
}

impl EventSink for KafkaSink {
    fn send(&mut self, event: &Event<'_>) -> Result<(), SinkError> {
        self.value.clear();
        self.format.encode(event, &mut self.value);
        let mut key = itoa::Buffer::new();
        let key = key.format(event.key());
        let topic = event.stream.topic();
        loop {
            let record = BaseRecord::to(topic).key(key).payload(&self.value);
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                // The local queue is full: wait for deliveries to drain it (back-pressure, nothing dropped).
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                Err((error, _)) => {
                    self.counters.failed[event.stream.index()].fetch_add(1, Ordering::Relaxed);
                    return Err(SinkError::Kafka(format!("producing to {topic}: {error}")));
                }
            }
        }
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.producer.flush(Duration::from_secs(120)).map_err(|e| {
            SinkError::Kafka(format!(
                "waiting for Kafka to confirm deliveries: {e} ({} still in flight)",
                self.producer.in_flight_count()
            ))
        })
    }
}
