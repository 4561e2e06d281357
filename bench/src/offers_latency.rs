//! Trigger-to-offer latency of `playlog offers`, from the brokers' own records: for every offer on
//! `offer_events`, its Kafka timestamp minus that of the page view that triggered it (`triggerEventId`),
//! both set by their producers when they sent them. Prints p50, p99 and max, and the page-view rate over
//! the same span, as one table row. Run through bench/offers.sh.
//!
//! Usage: offers-latency BROKERS

use std::collections::HashMap;
use std::time::Duration;

use playlog_model::{OfferRecord, Record};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

/// Every record of `topic` as (Kafka timestamp ms, value), read until the partitions stay quiet.
fn read_all(brokers: &str, topic: &str) -> Vec<(i64, Vec<u8>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "offers-latency-bench")
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let partitions = metadata.topics()[0].partitions().len() as i32;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let mut quiet = 0;
    while quiet < 30 {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                quiet = 0;
                let ts = m.timestamp().to_millis().unwrap_or(0);
                out.push((ts, m.payload().unwrap_or_default().to_vec()));
            }
            _ => quiet += 1,
        }
    }
    out
}

fn percentile(sorted: &[i64], q: f64) -> i64 {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

fn main() {
    let brokers = std::env::args()
        .nth(1)
        .expect("usage: offers-latency BROKERS");
    let views = read_all(&brokers, "page_view_events");
    let mut published: HashMap<String, i64> = HashMap::with_capacity(views.len());
    for (ts, value) in &views {
        if let Ok((_, Record::Event(e))) = playlog_model::avro::decode_fast(value)
            && let Some(id) = e.event_id
        {
            published.insert(id, *ts);
        }
    }
    let offers = read_all(&brokers, "offer_events");
    let mut latencies: Vec<i64> = offers
        .iter()
        .filter_map(|(ts, value)| {
            let offer = OfferRecord::decode(value).ok()?;
            Some(ts - published.get(&offer.trigger_event_id)?)
        })
        .collect();
    latencies.sort_unstable();
    let (first, last) = views.iter().fold((i64::MAX, i64::MIN), |(lo, hi), (t, _)| {
        (lo.min(*t), hi.max(*t))
    });
    let rate = views.len() as f64 / ((last - first).max(1) as f64 / 1000.0);
    if latencies.is_empty() {
        println!("| no offers matched a page view | | | |");
        return;
    }
    let p99 = percentile(&latencies, 0.99);
    println!(
        "| trigger page view published → offer published, {} offers over {} page views ({rate:.0} page views/s) | p50 {} ms | p99 {p99} ms (target < 250 ms: {}) | max {} ms |",
        latencies.len(),
        views.len(),
        percentile(&latencies, 0.5),
        if p99 < 250 { "met" } else { "MISSED" },
        latencies[latencies.len() - 1],
    );
}
