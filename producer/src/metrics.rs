//! The producer's metrics, read at every scrape from the counters the run keeps anyway (one source of
//! truth for the summary, the progress line and Prometheus).

use std::sync::Arc;

use playlog_metrics::MetricsRegistry;
use playlog_model::Stream;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;

use crate::sink::StreamCounters;

#[derive(Debug)]
struct ProducerCollector {
    counters: Arc<StreamCounters>,
}

impl Collector for ProducerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let families = [
            (
                "playlog_producer_events",
                "Events handed to Kafka, per topic",
                &self.counters.sent,
            ),
            (
                "playlog_producer_events_delivered",
                "Events Kafka acknowledged, per topic",
                &self.counters.delivered,
            ),
            (
                "playlog_producer_delivery_failures",
                "Events Kafka failed to take after librdkafka's retries, per topic",
                &self.counters.failed,
            ),
        ];
        for (name, help, counters) in families {
            let values = StreamCounters::load(counters);
            let counter = ConstCounter::new(0u64);
            let mut family = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            for stream in Stream::EVENTS {
                let labels = [("topic", stream.topic())];
                ConstCounter::new(values[stream.index()]).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// Registers the producer's counters in `registry`.
pub fn register(registry: &MetricsRegistry, counters: Arc<StreamCounters>) {
    registry.register_collector(Box::new(ProducerCollector { counters }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn counters_are_served_per_topic() {
        let registry = MetricsRegistry::default();
        let counters = Arc::new(StreamCounters::default());
        register(&registry, counters.clone());
        counters.sent[Stream::Listen.index()].fetch_add(5, Ordering::Relaxed);
        counters.failed[Stream::Auth.index()].fetch_add(1, Ordering::Relaxed);
        let text = registry.encode();
        assert!(
            text.contains("playlog_producer_events_total{topic=\"listen_events\"} 5"),
            "{text}"
        );
        assert!(
            text.contains("playlog_producer_delivery_failures_total{topic=\"auth_events\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE playlog_producer_events counter"),
            "{text}"
        );
    }
}
