//! The broker's ceiling for consumers: a bare librdkafka consumer (one group member, no decoding, no
//! warehouse) counting records until it has N. `bench/consumer.sh` prints it beside `playlog consume`, so
//! the consumer's figure reads against what the same broker can serve on the same cores.
//!
//! Usage: consumer-ceiling --brokers HOST:PORT --events N

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;

fn main() {
    let brokers = playlog_bench::flag("--brokers").expect("--brokers HOST:PORT");
    let events: u64 = playlog_bench::flag("--events")
        .and_then(|v| v.parse().ok())
        .expect("--events N");
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "ceiling")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("consumer");
    consumer
        .subscribe(&[
            "listen_events",
            "page_view_events",
            "auth_events",
            "status_change_events",
        ])
        .expect("subscribe");
    let started = Instant::now();
    let (mut n, mut bytes) = (0u64, 0u64);
    while n < events && started.elapsed() < Duration::from_secs(600) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            n += 1;
            bytes += m.payload().map_or(0, |p| p.len() as u64);
        }
    }
    let s = started.elapsed().as_secs_f64();
    println!(
        "| bare librdkafka consumer (no decoding, no warehouse): the broker's ceiling | {n} records | {s:.2} s | {:.0} records/s | {:.0} MB/s |",
        n as f64 / s,
        bytes as f64 / s / 1e6
    );
}
