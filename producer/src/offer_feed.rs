//! Reads the offers topic while a continuous run publishes, into the [`OfferBook`] the simulation asks:
//! every partition from its beginning (expired offers are harmless, and a new topic has none), no consumer
//! group (nothing is committed: the book is rebuilt on each start).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use playlog_kafka::KafkaClientConfig;
use playlog_model::OfferRecord;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::offer_response::OfferBook;

/// A consumer assigned to every partition of `topic`, at the beginning.
pub fn connect(kafka: &KafkaClientConfig, topic: &str) -> Result<BaseConsumer, String> {
    let consumer: BaseConsumer = kafka
        .client_config()
        .set("group.id", "playlog-producer-offer-feed")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .map_err(|e| {
            format!(
                "configuring the offer feed's consumer: {}",
                kafka.explain_config_error(&e)
            )
        })?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .map_err(|e| format!("reading the partitions of {topic}: {e}"))?;
    let partitions = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map_or(0, |t| t.partitions().len());
    if partitions == 0 {
        return Err(format!(
            "the offers topic {topic} has no partitions: is it the topic playlog offers writes to (--offers-topic)?"
        ));
    }
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions as i32 {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .map_err(|e| e.to_string())?;
    }
    consumer
        .assign(&assignment)
        .map_err(|e| format!("assigning {topic}: {e}"))?;
    Ok(consumer)
}

/// Feeds `book` until `stop` is set. Records that are not offers are skipped with one warning each.
pub fn run(consumer: &BaseConsumer, book: &Arc<OfferBook>, stop: &AtomicBool) {
    let mut taken = 0u64;
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(m)) => match OfferRecord::decode(m.payload().unwrap_or_default()) {
                Ok(offer) => {
                    if book.add(&offer) {
                        taken += 1;
                    }
                }
                Err(e) => tracing::warn!(
                    topic = m.topic(),
                    partition = m.partition(),
                    offset = m.offset(),
                    error = %e,
                    "not an offer: passed over"
                ),
            },
            Some(Err(e)) => tracing::debug!(error = %e, "offer feed poll"),
            None => {}
        }
    }
    tracing::info!(offers = taken, users = book.users(), "offer feed stopped");
}
