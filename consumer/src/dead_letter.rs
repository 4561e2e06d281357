//! The dead-letter topic: bad records keep their original bytes and key, with headers saying where they
//! came from and why. Deliveries are confirmed before the offsets past them are recorded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use playlog_kafka::{KafkaClientConfig, WatchedContext};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};

use crate::decode::DeadLetterReason;

pub struct DeadLetterSink {
    topic: String,
    producer: ThreadedProducer<WatchedContext>,
    sent: AtomicU64,
}

/// Where a dead letter came from.
pub struct Origin<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

impl DeadLetterSink {
    /// A producer with the group's connection settings (security included) over its own defaults.
    pub fn new(kafka: &KafkaClientConfig, topic: &str) -> Result<DeadLetterSink, KafkaError> {
        let mut config = ClientConfig::new();
        config
            .set("client.id", "playlog-dead-letters")
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5");
        kafka.apply(&mut config);
        let context = WatchedContext::new(kafka);
        context.watch.started();
        let producer = config.create_with_context(context)?;
        Ok(DeadLetterSink {
            topic: topic.to_owned(),
            producer,
            sent: AtomicU64::new(0),
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Queues a dead letter. Blocks while librdkafka's queue is full.
    pub fn send(
        &self,
        value: Option<&[u8]>,
        key: Option<&[u8]>,
        origin: &Origin<'_>,
        reason: &DeadLetterReason,
    ) -> Result<(), KafkaError> {
        let partition = origin.partition.to_string();
        let offset = origin.offset.to_string();
        let message = reason.to_string();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "playlog.source.topic",
                value: Some(origin.topic),
            })
            .insert(Header {
                key: "playlog.source.partition",
                value: Some(&partition),
            })
            .insert(Header {
                key: "playlog.source.offset",
                value: Some(&offset),
            })
            .insert(Header {
                key: "playlog.error.reason",
                value: Some(reason.code()),
            })
            .insert(Header {
                key: "playlog.error.message",
                value: Some(&message),
            });
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&self.topic).headers(headers);
        if let Some(v) = value {
            record = record.payload(v);
        }
        if let Some(k) = key {
            record = record.key(k);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => {
                    self.sent.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    /// Waits until every dead letter sent so far is acknowledged by the brokers.
    pub fn flush(&self) -> Result<(), KafkaError> {
        if self.producer.in_flight_count() == 0 {
            return Ok(());
        }
        self.producer.flush(Duration::from_secs(30))
    }
}
