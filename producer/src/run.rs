//! A production run: shards of users simulated on threads, each feeding its own sink, with progress,
//! pacing for continuous mode, and a summary at the end.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use playlog_model::Stream;
use rdkafka::producer::Producer;

use crate::file_sink::{JsonLinesSink, OutputTarget};
use crate::ids::{MAX_INSTANCES, MAX_SHARDS};
use crate::kafka::{KafkaSettings, KafkaSink};
use crate::offer_response::OfferBook;
use crate::simulation::{ShardPlan, Simulation, World};
use crate::sink::{EventSink, SinkError, StreamCounters};

/// Where events go.
#[derive(Debug, Clone)]
pub enum Destination {
    Kafka(KafkaSettings),
    Output(OutputTarget),
}

/// Simulated time: a fixed window as fast as possible, or wall-clock pace.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    Backfill {
        from: i64,
        to: i64,
    },
    /// Events at wall-clock pace times `speed`, from `from`, until `to` if given. Simulated `from` plays at
    /// wall-clock time `wall_anchor` (epoch ms; usually when the command started), so that setup time
    /// (building the users) does not delay events: at speed 1 an event is published when its `ts` comes.
    Continuous {
        from: i64,
        to: Option<i64>,
        speed: f64,
        wall_anchor: i64,
    },
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub mode: Mode,
    pub users: u64,
    pub growth_rate: f64,
    pub attrition_rate: f64,
    pub seed: u64,
    pub instance_id: u16,
    pub threads: u16,
    pub max_events: Option<u64>,
    pub destination: Destination,
    /// Progress on standard error: a bar on a terminal, a line every few seconds otherwise.
    pub progress: bool,
    /// Where to register the producer's metrics, if anywhere.
    pub metrics: Option<playlog_metrics::MetricsRegistry>,
    /// React to offers (`--offers-topic`, `--offer-response`): continuous runs to Kafka only.
    pub offer_response: Option<OfferResponse>,
}

/// Simulated users react to the offers `playlog offers` makes.
#[derive(Debug, Clone)]
pub struct OfferResponse {
    /// The topic the offers are read from.
    pub topic: String,
    /// How much an offer moves the step it targets, from 0 to 1 (see `SiteModel::next_state_nudged`).
    pub lift: f64,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Summary {
    pub sent: [u64; 4],
    pub delivered: [u64; 4],
    pub failed: [u64; 4],
    pub elapsed: Duration,
    /// Users still active at the end.
    pub active_users: usize,
    /// Whether Kafka confirmed deliveries (false for file output).
    pub confirmed: bool,
    pub first_error: Option<String>,
    pub stopped_early: bool,
}

impl Summary {
    pub fn total_sent(&self) -> u64 {
        self.sent.iter().sum()
    }

    pub fn total_failed(&self) -> u64 {
        self.failed.iter().sum()
    }

    pub fn events_per_second(&self) -> f64 {
        self.total_sent() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Human-readable lines for the end of a run.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for s in Stream::EVENTS {
            let i = s.index();
            if self.confirmed {
                out.push_str(&format!(
                    "  {:<22}{:>12} sent{:>12} delivered{:>8} failed\n",
                    s.topic(),
                    self.sent[i],
                    self.delivered[i],
                    self.failed[i]
                ));
            } else {
                out.push_str(&format!(
                    "  {:<22}{:>12} written\n",
                    s.topic(),
                    self.sent[i]
                ));
            }
        }
        out.push_str(&format!(
            "  {} events in {:.2} s: {:.0} events/s; {} users active at the end{}\n",
            self.total_sent(),
            self.elapsed.as_secs_f64(),
            self.events_per_second(),
            self.active_users,
            if self.stopped_early {
                " (stopped early)"
            } else {
                ""
            }
        ));
        if let Some(e) = &self.first_error {
            out.push_str(&format!("  first delivery error: {e}\n"));
        }
        out
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// Runs the simulation to the end of its window, `max_events`, or until `stop` is set.
pub fn run(world: &World, options: &RunOptions, stop: &AtomicBool) -> Result<Summary, RunError> {
    validate(options)?;
    let counters = Arc::new(StreamCounters::default());
    if let Some(registry) = &options.metrics {
        crate::metrics::register(registry, counters.clone());
    }
    let (from, to) = match options.mode {
        Mode::Backfill { from, to } => (from, Some(to)),
        Mode::Continuous { from, to, .. } => (from, to),
    };
    let shards = options.threads;
    let mut tracker = None;
    let mut sinks: Vec<Box<dyn EventSink>> = Vec::new();
    let mut feed = None;
    match &options.destination {
        Destination::Kafka(settings) => {
            let producer = crate::kafka::connect(settings, counters.clone())?;
            if let Some(response) = &options.offer_response {
                // Made here when missing, so that the feed can start before playlog offers does.
                playlog_kafka::ensure_topics(
                    &settings.kafka,
                    &[(response.topic.as_str(), settings.partitions)],
                    settings.replication_factor,
                    &[],
                )
                .map_err(SinkError::Kafka)?;
                let consumer = crate::offer_feed::connect(&settings.kafka, &response.topic)
                    .map_err(SinkError::Kafka)?;
                feed = Some((consumer, Arc::new(OfferBook::new(response.lift))));
            }
            for _ in 0..shards {
                sinks.push(Box::new(KafkaSink::new(
                    producer.clone(),
                    settings.format,
                    counters.clone(),
                )));
            }
            tracker = Some(producer);
        }
        Destination::Output(target) => sinks.push(Box::new(JsonLinesSink::open(target)?)),
    }

    let started = Instant::now();
    let emitted = AtomicU64::new(0);
    let clocks: Vec<AtomicI64> = (0..shards).map(|_| AtomicI64::new(from)).collect();
    let active: Vec<AtomicU64> = (0..shards).map(|_| AtomicU64::new(0)).collect();
    let finished = AtomicU64::new(0);
    let budget_exhausted = AtomicBool::new(false);
    let feed_stop = AtomicBool::new(false);
    let book = feed.as_ref().map(|(_, book)| book.clone());

    let results: Vec<Result<(), SinkError>> = std::thread::scope(|scope| {
        if let Some((consumer, book)) = &feed {
            let feed_stop = &feed_stop;
            scope.spawn(move || crate::offer_feed::run(consumer, book, feed_stop));
        }
        let handles: Vec<_> = sinks
            .into_iter()
            .enumerate()
            .map(|(shard, mut sink)| {
                let plan = ShardPlan {
                    seed: options.seed,
                    instance_id: options.instance_id,
                    shard: shard as u16,
                    shards,
                    initial_users: options.users,
                    growth_rate: options.growth_rate,
                    attrition_rate: options.attrition_rate,
                    start: from,
                };
                let book = book.clone();
                let (counters, emitted, clock, active, finished, budget_exhausted) = (
                    &counters,
                    &emitted,
                    &clocks[shard],
                    &active[shard],
                    &finished,
                    &budget_exhausted,
                );
                scope.spawn(move || {
                    let result = run_shard(
                        world,
                        plan,
                        book,
                        options,
                        to,
                        sink.as_mut(),
                        counters,
                        emitted,
                        clock,
                        active,
                        stop,
                        budget_exhausted,
                    );
                    let flushed = sink.finish();
                    finished.fetch_add(1, Ordering::Relaxed);
                    result.and(flushed)
                })
            })
            .collect();
        report_progress(options, from, to, &counters, &clocks, &finished, started);
        let results = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(SinkError::Kafka("a generator thread panicked".into())))
            })
            .collect();
        feed_stop.store(true, Ordering::Relaxed);
        results
    });
    let elapsed = started.elapsed();
    for r in results {
        r?;
    }
    let confirmed = tracker.is_some();
    Ok(Summary {
        sent: StreamCounters::load(&counters.sent),
        delivered: if confirmed {
            StreamCounters::load(&counters.delivered)
        } else {
            StreamCounters::load(&counters.sent)
        },
        failed: StreamCounters::load(&counters.failed),
        elapsed,
        active_users: active
            .iter()
            .map(|a| a.load(Ordering::Relaxed) as usize)
            .sum(),
        confirmed,
        first_error: tracker.as_ref().and_then(|p| p.context().first_error()),
        stopped_early: stop.load(Ordering::Relaxed) || budget_exhausted.load(Ordering::Relaxed),
    })
}

fn validate(options: &RunOptions) -> Result<(), RunError> {
    let invalid = |m: String| Err(RunError::Invalid(m));
    if options.instance_id >= MAX_INSTANCES {
        return invalid(format!(
            "--instance-id must be below {MAX_INSTANCES}, got {}",
            options.instance_id
        ));
    }
    if options.threads == 0 || options.threads > MAX_SHARDS {
        return invalid(format!(
            "--threads must be between 1 and {MAX_SHARDS}, got {}",
            options.threads
        ));
    }
    if options.threads > 1 && matches!(options.destination, Destination::Output(_)) {
        return invalid("--output writes one time-ordered file, which takes one generator thread: drop --threads, or publish to Kafka".into());
    }
    if !(0.0..1.0).contains(&options.attrition_rate) {
        return invalid(format!(
            "--attrition-rate is a yearly fraction below 1, got {}",
            options.attrition_rate
        ));
    }
    if !(options.growth_rate >= 0.0 && options.growth_rate.is_finite()) {
        return invalid(format!(
            "--growth-rate must be zero or more, got {}",
            options.growth_rate
        ));
    }
    if let Some(response) = &options.offer_response {
        if !(0.0..=1.0).contains(&response.lift) {
            return invalid(format!(
                "--offer-response is a lift between 0 and 1, got {}",
                response.lift
            ));
        }
        if matches!(options.mode, Mode::Backfill { .. }) {
            return invalid("--offers-topic needs --continuous: a backfill simulates ahead of any offer playlog offers could make, so there is nothing to react to in time".into());
        }
        if !matches!(options.destination, Destination::Kafka(_)) {
            return invalid("--offers-topic needs Kafka: offers are made from the page views the producer publishes".into());
        }
    }
    match options.mode {
        Mode::Backfill { from, to } if to <= from => invalid("--to must be after --from".into()),
        Mode::Continuous { speed, .. } if !(speed > 0.0 && speed.is_finite()) => {
            invalid(format!("--speed must be a positive factor, got {speed}"))
        }
        Mode::Continuous {
            from, to: Some(to), ..
        } if to <= from => invalid("--to must be after --from".into()),
        _ => Ok(()),
    }
}

#[allow(clippy::too_many_arguments)]
fn run_shard(
    world: &World,
    plan: ShardPlan,
    offers: Option<Arc<OfferBook>>,
    options: &RunOptions,
    to: Option<i64>,
    sink: &mut dyn EventSink,
    counters: &StreamCounters,
    emitted: &AtomicU64,
    clock: &AtomicI64,
    active: &AtomicU64,
    stop: &AtomicBool,
    budget_exhausted: &AtomicBool,
) -> Result<(), SinkError> {
    let from = plan.start;
    let mut sim = Simulation::new(world, plan);
    if let Some(book) = offers {
        sim = sim.with_offers(book);
    }
    let pace = match options.mode {
        Mode::Continuous {
            speed, wall_anchor, ..
        } => Some((wall_anchor, speed)),
        Mode::Backfill { .. } => None,
    };
    let max = options.max_events.unwrap_or(u64::MAX);
    // Counters are shared between threads: add to them in batches, not per event.
    let mut local = [0u64; 4];
    let mut steps = 0u32;
    let mut result = Ok(());
    while let Some(next) = sim.next_time() {
        if to.is_some_and(|to| next >= to) || stop.load(Ordering::Relaxed) {
            break;
        }
        if let Some((wall_anchor, speed)) = pace
            && !wait_until(wall_anchor + ((next - from) as f64 / speed) as i64, stop)
        {
            break;
        }
        sim.step(|event| {
            if result.is_err() {
                return;
            }
            if emitted.fetch_add(1, Ordering::Relaxed) >= max {
                budget_exhausted.store(true, Ordering::Relaxed);
                return;
            }
            local[event.stream.index()] += 1;
            result = sink.send(event);
        });
        result.as_ref().map_err(|_| ()).ok();
        if result.is_err() || budget_exhausted.load(Ordering::Relaxed) {
            break;
        }
        steps += 1;
        if steps.is_multiple_of(4096) || pace.is_some() {
            flush_counts(&mut local, counters);
            clock.store(next, Ordering::Relaxed);
        }
    }
    flush_counts(&mut local, counters);
    clock.store(
        to.unwrap_or(i64::MAX)
            .min(sim.next_time().unwrap_or(i64::MAX)),
        Ordering::Relaxed,
    );
    active.store(sim.active_users() as u64, Ordering::Relaxed);
    result
}

fn flush_counts(local: &mut [u64; 4], counters: &StreamCounters) {
    for (i, n) in local.iter_mut().enumerate() {
        if *n > 0 {
            counters.sent[i].fetch_add(*n, Ordering::Relaxed);
            *n = 0;
        }
    }
}

/// Sleeps until the wall clock reaches `target` (epoch ms), waking to check `stop`. False when stopped.
fn wait_until(target: i64, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        if now >= target {
            return true;
        }
        std::thread::sleep(Duration::from_millis((target - now).min(200) as u64));
    }
}

/// Progress until every shard is done: an indicatif bar over simulated time on a terminal, otherwise
/// a plain line every five seconds.
fn report_progress(
    options: &RunOptions,
    from: i64,
    to: Option<i64>,
    counters: &StreamCounters,
    clocks: &[AtomicI64],
    finished: &AtomicU64,
    started: Instant,
) {
    let shards = clocks.len() as u64;
    let interactive = std::io::stderr().is_terminal();
    let bar = (options.progress && interactive).then(|| {
        let bar = match to {
            Some(to) => indicatif::ProgressBar::new(((to - from) / 1000).max(1) as u64),
            None => indicatif::ProgressBar::new_spinner(),
        };
        let style = indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {percent:>3}% {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        bar.set_style(style);
        bar
    });
    let mut last_line = Instant::now();
    let mut last_count = 0u64;
    let mut last_time = started;
    while finished.load(Ordering::Relaxed) < shards {
        std::thread::sleep(Duration::from_millis(100));
        let sim_now = clocks
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .min()
            .unwrap_or(from);
        let total: u64 = StreamCounters::load(&counters.sent).iter().sum();
        let message = |rate: f64| {
            format!(
                "{} events, {:.0} events/s, simulated {}",
                total,
                rate,
                format_ts(sim_now)
            )
        };
        if let Some(bar) = &bar {
            let rate = total as f64 / started.elapsed().as_secs_f64().max(1e-9);
            bar.set_position(((sim_now.max(from) - from) / 1000).max(0) as u64);
            bar.set_message(message(rate));
        } else if options.progress && last_line.elapsed() >= Duration::from_secs(5) {
            let rate = (total - last_count) as f64 / last_time.elapsed().as_secs_f64().max(1e-9);
            eprintln!("produce: {}", message(rate));
            last_line = Instant::now();
            last_count = total;
            last_time = Instant::now();
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}

/// An epoch-millisecond time as RFC 3339 UTC.
pub fn format_ts(ts: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ts).map_or_else(
        || ts.to_string(),
        |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}
