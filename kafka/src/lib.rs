//! Kafka plumbing that the producer and the consumer share.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{Client, ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::error::RDKafkaErrorCode;

/// Fails with one actionable sentence when the brokers do not answer a metadata request within 10 s.
pub fn check_reachable<C: ClientContext>(client: &Client<C>, brokers: &str) -> Result<(), String> {
    client.fetch_metadata(None, Duration::from_secs(10)).map(|_| ()).map_err(|e| {
        format!(
            "cannot reach Kafka at {brokers}: {e}. Is a broker running there? Check --brokers (or PLAYLOG_BROKERS); `scripts/broker.sh` starts a local one"
        )
    })
}

/// Creates each `(topic, partitions)` that does not exist yet; existing topics are left as they are.
pub fn ensure_topics(
    brokers: &str,
    topics: &[(&str, i32)],
    replication_factor: i32,
) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(|e| format!("configuring the Kafka admin client: {e}"))?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|(name, partitions)| {
            NewTopic::new(
                name,
                *partitions,
                TopicReplication::Fixed(replication_factor),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = futures_executor::block_on(admin.create_topics(&new, &options))
        .map_err(|e| format!("creating topics on {brokers}: {e}"))?;
    for result in results {
        match result {
            Ok(topic) => tracing::info!(topic, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(format!("creating topic {topic}: {code}")),
        }
    }
    Ok(())
}
