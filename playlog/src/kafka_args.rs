//! The Kafka connection flags that `produce` and `consume` share, resolved into one
//! [`KafkaClientConfig`] for every Kafka client the command runs.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use playlog_kafka::KafkaClientConfig;

#[derive(Debug, Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers [default: bootstrap.servers from --kafka-config, else localhost:9092].
    #[arg(long, env = "PLAYLOG_BROKERS")]
    brokers: Option<String>,
    /// A Java-style client.properties file (as Confluent Cloud, MSK and Aiven hand out): security.protocol,
    /// sasl.*, ssl.*, sasl.jaas.config (translated), bootstrap.servers. PLAYLOG_KAFKA_<KEY> environment
    /// variables (PLAYLOG_KAFKA_SASL_PASSWORD) and -X layer over it. A secret may come from a file:
    /// sasl.password.file=/run/secrets/kafka-password.
    #[arg(long, env = "PLAYLOG_KAFKA_CONFIG", value_name = "FILE")]
    kafka_config: Option<PathBuf>,
    /// Extra librdkafka property, as key=value (repeatable), for example -X security.protocol=ssl. Put
    /// secrets in --kafka-config or the environment instead: command lines are visible to every user.
    #[arg(short = 'X', value_name = "KEY=VALUE")]
    kafka_property: Vec<String>,
}

impl KafkaArgs {
    /// Reads the file and the environment, and layers the flags over them.
    pub fn resolve(&self) -> Result<KafkaClientConfig> {
        let config = KafkaClientConfig::from_process(
            self.brokers.clone(),
            self.kafka_config.as_deref(),
            self.kafka_property.clone(),
        )
        .map_err(anyhow::Error::msg)?;
        for note in config.notes() {
            eprintln!("note: {note}");
        }
        tracing::info!(config = %config.redacted(), "kafka client configuration");
        Ok(config)
    }
}
