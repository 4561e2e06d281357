//! Producer throughput, printed as a table: generation alone on one thread, generation with Avro (and
//! JSON) encoding, generation sharded across threads, and publishing to a broker beside the broker's own
//! ceiling (a bare librdkafka producer sending pre-encoded records with the same settings).
//!
//! Usage: producer-bench [--brokers HOST:PORT] [--events N]. Without --brokers the Kafka rows are skipped.
//! `bench/producer.sh` starts a local tansu broker and runs this.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use playlog_model::Stream;
use playlog_producer::kafka::KafkaSettings;
use playlog_producer::{
    Destination, Format, Mode, RunOptions, ShardPlan, Simulation, SiteModel, SongCatalog, World,
};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

const JAN_1_2026: i64 = 1_767_225_600_000;
const USERS: u64 = 20_000;

fn plan(shard: u16, shards: u16) -> ShardPlan {
    ShardPlan {
        seed: 7,
        instance_id: 0,
        shard,
        shards,
        initial_users: USERS,
        growth_rate: 0.0,
        attrition_rate: 0.0,
        start: JAN_1_2026,
    }
}

/// Runs one shard until `events` events; returns (events, seconds).
fn generate(
    world: &World,
    plan: ShardPlan,
    events: u64,
    mut work: impl FnMut(&playlog_model::Event<'_>),
) -> (u64, f64) {
    let mut sim = Simulation::new(world, plan);
    // Warm up past the first simulated hours, where users' first sessions are still being placed.
    let mut n = 0u64;
    while n < 200_000 {
        sim.step(|_| n += 1);
    }
    let started = Instant::now();
    let mut n = 0u64;
    while n < events {
        sim.step(|e| {
            n += 1;
            work(e);
        });
    }
    (n, started.elapsed().as_secs_f64())
}

fn row(name: &str, events: u64, seconds: f64, note: &str) {
    println!(
        "| {name:<46} | {:>12.0} | {:>10} | {:>7.2} | {note}",
        events as f64 / seconds,
        events,
        seconds
    );
}

fn main() {
    let brokers = playlog_bench::flag("--brokers");
    let events: u64 = playlog_bench::flag("--events")
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000_000);

    let site = SiteModel::default_site().expect("default site");
    let world = World::new(site, SongCatalog::synthetic(20_000, 7));
    println!(
        "producer benchmark: {USERS} users, default site, synthetic catalog; {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "| {:<46} | {:>12} | {:>10} | {:>7} | note",
        "what", "events/s", "events", "seconds"
    );
    println!(
        "|{}|{}|{}|{}|------",
        "-".repeat(48),
        "-".repeat(14),
        "-".repeat(12),
        "-".repeat(9)
    );

    let (n, s) = generate(&world, plan(0, 1), events, |e| {
        std::hint::black_box(e);
    });
    row(
        "generation only, 1 thread",
        n,
        s,
        "target >= 1,000,000; eventsim: 115-147k/s to files",
    );

    let mut buf = Vec::with_capacity(1024);
    let mut bytes = 0u64;
    let (n, s) = generate(&world, plan(0, 1), events, |e| {
        buf.clear();
        playlog_model::avro::encode(e, &mut buf);
        bytes += buf.len() as u64;
    });
    row(
        "generation + Avro single-object, 1 thread",
        n,
        s,
        &format!("{:.0} bytes/event", bytes as f64 / n as f64),
    );

    let mut bytes = 0u64;
    let (n, s) = generate(&world, plan(0, 1), events, |e| {
        buf.clear();
        playlog_model::json::encode_line(e, &mut buf);
        bytes += buf.len() as u64;
    });
    row(
        "generation + eventsim JSON, 1 thread",
        n,
        s,
        &format!("{:.0} bytes/event", bytes as f64 / n as f64),
    );

    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2) as u16;
    for shards in [1u16, threads] {
        let started = Instant::now();
        let total: u64 = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..shards)
                .map(|shard| {
                    let world = &world;
                    scope.spawn(move || {
                        let mut out = Vec::with_capacity(1024);
                        generate(
                            world,
                            plan(shard, shards),
                            events / u64::from(shards),
                            |e| {
                                out.clear();
                                playlog_model::avro::encode(e, &mut out);
                            },
                        )
                        .0
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("bench thread"))
                .sum()
        });
        row(
            &format!("generation + Avro, {shards} sharded thread(s), wall"),
            total,
            started.elapsed().as_secs_f64(),
            "includes each shard's warm-up",
        );
    }

    let Some(brokers) = brokers else {
        println!("(no --brokers: Kafka rows skipped)");
        return;
    };
    let kafka_events = (events / 2).max(100_000);
    // Ours: the real `playlog produce` path, from simulation to acknowledged delivery.
    let options = RunOptions {
        mode: Mode::Backfill {
            from: JAN_1_2026,
            to: JAN_1_2026 + 365 * 86_400_000,
        },
        users: USERS,
        growth_rate: 0.0,
        attrition_rate: 0.0,
        seed: 7,
        instance_id: 0,
        threads: 1,
        max_events: Some(kafka_events),
        metrics: None,
        offer_response: None,
        destination: Destination::Kafka(KafkaSettings {
            kafka: playlog_kafka::KafkaClientConfig::plaintext(&brokers),
            partitions: 6,
            replication_factor: 1,
            compression: "lz4".into(),
            format: Format::Avro,
        }),
        progress: false,
    };
    let summary =
        playlog_producer::run(&world, &options, &AtomicBool::new(false)).expect("publishing run");
    let delivered: u64 = Stream::EVENTS
        .iter()
        .map(|s| summary.delivered[s.index()])
        .sum();
    row(
        "playlog produce -> broker (Avro, lz4, acks=all)",
        delivered,
        summary.elapsed.as_secs_f64(),
        &format!("{} failed", summary.total_failed()),
    );

    // The broker's ceiling: the same producer settings and real pre-encoded events cycled, into a topic
    // with the same partition count, with no simulation or encoding in the loop.
    let ceiling_topic = "bench_ceiling";
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("admin");
    let topic = NewTopic::new(ceiling_topic, 6, TopicReplication::Fixed(1));
    let _ = futures_executor::block_on(admin.create_topics(&[topic], &AdminOptions::new()));
    let mut samples: Vec<(String, Vec<u8>)> = Vec::with_capacity(10_000);
    generate(&world, plan(0, 1), 10_000, |e| {
        let mut v = Vec::new();
        playlog_model::avro::encode(e, &mut v);
        samples.push((e.key().to_string(), v));
    });
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .create()
        .expect("producer");
    let started = Instant::now();
    for i in 0..kafka_events {
        let (key, payload) = &samples[(i % samples.len() as u64) as usize];
        loop {
            match producer.send(BaseRecord::to(ceiling_topic).key(key).payload(payload)) {
                Ok(()) => break,
                Err(_) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
    }
    producer.flush(Duration::from_secs(300)).expect("flush");
    row(
        "bare librdkafka -> broker (same settings)",
        kafka_events,
        started.elapsed().as_secs_f64(),
        "the broker's ceiling for one client",
    );
}
