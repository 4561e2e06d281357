//! Trigger-to-offer latency of `playlog offers`, from the brokers' own records: for every offer on
//! `offer_events`, its Kafka timestamp minus that of the page view that made it due, both set by their
//! producers when they sent them. For a rule that fires on a page view, that is the page view that
//! triggered it (`triggerEventId`). For a timer ("has not submitted within 10 minutes") it is the first
//! page view of the same partition whose event time passes the deadline (the offer's `ts`): the one that
//! moves the watermark past it; until then the offer is not due, by definition. Prints p50, p99 and max
//! for all offers, and for each kind apart, and the page-view rate over the same span. Run through
//! bench/offers.sh.
//!
//! Usage: offers-latency BROKERS

use std::collections::HashMap;
use std::time::Duration;

use playlog_model::{OfferRecord, Record};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

/// Every record of `topic` as (partition, Kafka timestamp ms, value), in offset order per partition, read
/// until the partitions stay quiet.
fn read_all(brokers: &str, topic: &str) -> Vec<(i32, i64, Vec<u8>)> {
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
                out.push((m.partition(), ts, m.payload().unwrap_or_default().to_vec()));
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
    // Per partition, in offset order: (event time, publish time); and where each event id is.
    let mut partitions: HashMap<i32, Vec<(i64, i64)>> = HashMap::new();
    let mut at: HashMap<String, (i32, usize)> = HashMap::with_capacity(views.len());
    for (partition, published, value) in &views {
        if let Ok((_, Record::Event(e))) = playlog_model::avro::decode_fast(value) {
            let list = partitions.entry(*partition).or_default();
            if let Some(id) = e.event_id {
                at.insert(id, (*partition, list.len()));
            }
            list.push((e.ts, *published));
        }
    }
    let offers = read_all(&brokers, "offer_events");
    let (mut immediate, mut timers) = (Vec::new(), Vec::new());
    for (_, sent, value) in &offers {
        let Ok(offer) = OfferRecord::decode(value) else {
            continue;
        };
        let Some(&(partition, index)) = at.get(&offer.trigger_event_id) else {
            continue;
        };
        let list = &partitions[&partition];
        let (trigger_ts, trigger_published) = list[index];
        if offer.ts == trigger_ts {
            immediate.push(sent - trigger_published);
        } else if let Some(&(_, due)) = list[index..].iter().find(|(ts, _)| *ts > offer.ts) {
            timers.push(sent - due);
        }
    }
    let (first, last) = views
        .iter()
        .fold((i64::MAX, i64::MIN), |(lo, hi), (_, t, _)| {
            (lo.min(*t), hi.max(*t))
        });
    let rate = views.len() as f64 / ((last - first).max(1) as f64 / 1000.0);
    let mut all: Vec<i64> = immediate.iter().chain(&timers).copied().collect();
    for (what, latencies) in [
        ("all offers", &mut all),
        ("offers on a page view", &mut immediate),
        (
            "timer offers, from the page view past the deadline",
            &mut timers,
        ),
    ] {
        latencies.sort_unstable();
        if latencies.is_empty() {
            println!("| {what}: none matched a page view | | | |");
            continue;
        }
        let p99 = percentile(latencies, 0.99);
        println!(
            "| {what}: {} over {} page views ({rate:.0} page views/s) | p50 {} ms | p99 {p99} ms (target < 250 ms: {}) | max {} ms |",
            latencies.len(),
            views.len(),
            percentile(latencies, 0.5),
            if p99 < 250 { "met" } else { "MISSED" },
            latencies[latencies.len() - 1],
        );
    }
}
