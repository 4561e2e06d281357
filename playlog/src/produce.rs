//! `playlog produce`: flags, environment and eventsim's config file, resolved into a run.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use playlog_producer::file_sink::OutputTarget;
use playlog_producer::kafka::KafkaSettings;
use playlog_producer::{Destination, Format, Mode, RunOptions, SiteModel, SongCatalog, World};

use crate::time_arg::{now_ms, parse_time};

const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// Avro single-object encoding (C3 01, CRC-64-AVRO fingerprint, binary body).
    Avro,
    /// eventsim's JSON, plus eventId.
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CompressionArg {
    Lz4,
    Zstd,
    Snappy,
    None,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  # A day of events from 1,000 users, as fast as possible, reproducibly:
  playlog produce --brokers 127.0.0.1:9092 --users 1000 --from 2026-01-01T00:00:00Z --to 2026-01-02T00:00:00Z --seed 7
  # A live stream at 60x wall-clock speed, until Ctrl-C:
  playlog produce --continuous --speed 60 --users 5000
  # An eventsim JSON site config (eventsim's own load as they are; with --songs, its listen_counts.txt.gz):
  # Playlog's built-in site is one, to start editing from:
  playlog produce --config producer/config/default-site.json --output - --max-events 10
  # One file per stream, as eventsim writes them:
  playlog produce --output out/ --from 2026-01-01 --to 2026-01-08
  # A secured cluster, from the client.properties file it hands out (secrets stay off the command line):
  playlog produce --kafka-config client.properties --continuous --speed 60
  # Users who get an offer from `playlog offers` take it more often:
  playlog produce --continuous --speed 600 --offers-topic offer_events --offer-response 0.5
  PLAYLOG_KAFKA_SASL_PASSWORD_FILE=/run/secrets/kafka-password playlog produce --kafka-config client.properties")]
pub struct ProduceArgs {
    #[command(flatten)]
    kafka: crate::kafka_args::KafkaArgs,
    /// eventsim's JSON site config (pages, transitions, pacing). Default: Playlog's built-in site.
    #[arg(long, env = "PLAYLOG_SITE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// eventsim's listen_counts.txt[.gz] (UTF-8). Default: a synthetic catalog.
    #[arg(long, env = "PLAYLOG_SONGS", value_name = "FILE")]
    songs: Option<PathBuf>,
    /// Songs in the synthetic catalog.
    #[arg(long, env = "PLAYLOG_CATALOG_SIZE", default_value_t = 20_000)]
    catalog_size: usize,
    /// Users at the start [default: the config's n-users, else 100].
    #[arg(long, env = "PLAYLOG_USERS")]
    users: Option<u64>,
    /// New users per year, as a fraction of the current users (0.3 = 30%) [default: the config's growth-rate, else 0].
    #[arg(long, env = "PLAYLOG_GROWTH_RATE")]
    growth_rate: Option<f64>,
    /// Users who go silent per year, as a fraction of the current users.
    #[arg(long, env = "PLAYLOG_ATTRITION_RATE", default_value_t = 0.0)]
    attrition_rate: f64,
    /// Random seed: the same seed and flags give byte-identical events [default: the config's seed, else 0].
    #[arg(long, env = "PLAYLOG_SEED")]
    seed: Option<u64>,
    /// This producer's number (0-63). Producers running side by side need different ones, so that session
    /// and user ids never collide.
    #[arg(long, env = "PLAYLOG_INSTANCE_ID", default_value_t = 0)]
    instance_id: u16,
    /// Generator threads; users are sharded across them.
    #[arg(long, env = "PLAYLOG_THREADS", default_value_t = 1)]
    threads: u16,
    /// Simulated start time, UTC (RFC 3339 or a date) [default: backfill: --to minus one day; continuous: now].
    #[arg(long, env = "PLAYLOG_FROM", value_parser = parse_time)]
    from: Option<i64>,
    /// Simulated end time, UTC [default: backfill: today 00:00 UTC; continuous: none].
    #[arg(long, env = "PLAYLOG_TO", value_parser = parse_time)]
    to: Option<i64>,
    /// Emit events at wall-clock pace (times --speed) instead of as fast as possible.
    #[arg(long, env = "PLAYLOG_CONTINUOUS")]
    continuous: bool,
    /// Time acceleration in continuous mode: 60 plays an hour of user activity per minute.
    #[arg(long, env = "PLAYLOG_SPEED", default_value_t = 1.0)]
    speed: f64,
    /// Stop after this many events (all streams together).
    #[arg(long, env = "PLAYLOG_MAX_EVENTS")]
    max_events: Option<u64>,
    /// Write JSON lines instead of publishing: a file, `-` for standard output, or a directory (ending in
    /// `/`) for one file per stream.
    #[arg(long, env = "PLAYLOG_OUTPUT", value_name = "FILE|-|DIR/")]
    output: Option<String>,
    /// Wire format of Kafka record values.
    #[arg(long, env = "PLAYLOG_FORMAT", value_enum, default_value = "avro")]
    format: FormatArg,
    /// Batch compression.
    #[arg(long, env = "PLAYLOG_COMPRESSION", value_enum, default_value = "lz4")]
    compression: CompressionArg,
    /// Partitions for topics that do not exist yet.
    #[arg(long, env = "PLAYLOG_PARTITIONS", default_value_t = 6)]
    partitions: i32,
    /// Replication factor for topics that do not exist yet.
    #[arg(long, env = "PLAYLOG_REPLICATION_FACTOR", default_value_t = 1)]
    replication_factor: i32,
    /// No progress bar or progress lines.
    #[arg(long, short = 'q', env = "PLAYLOG_QUIET")]
    quiet: bool,
    /// Where to serve Prometheus metrics (path /metrics), for example 0.0.0.0:9464; `off` to serve none.
    #[arg(long, env = "PLAYLOG_METRICS_ADDR", default_value = "off")]
    metrics_addr: String,
    /// Make simulated users react to the offers `playlog offers` writes to this topic: a user offered an
    /// upgrade submits it more often, a user offered to stay downgrades and cancels less (by
    /// --offer-response). Held-out users are never influenced. Needs --continuous: a backfill simulates
    /// ahead of any offer, so it does not react.
    #[arg(long, env = "PLAYLOG_OFFERS_TOPIC", value_name = "TOPIC")]
    offers_topic: Option<String>,
    /// How strongly an offer moves the step it targets, from 0 to 1: an upgrade offer makes the Upgrade
    /// page's "Submit Upgrade" probability p into p + LIFT × (1 − p); a retention offer makes a downgrade or
    /// cancellation's p into p × (1 − LIFT).
    #[arg(
        long,
        env = "PLAYLOG_OFFER_RESPONSE",
        value_name = "LIFT",
        default_value_t = 0.3,
        requires = "offers_topic"
    )]
    offer_response: f64,
}

pub fn run(args: ProduceArgs) -> Result<()> {
    let site = match &args.config {
        Some(path) => SiteModel::from_file(path)?,
        None => SiteModel::default_site()?,
    };
    let defaults = site.defaults.clone();
    let seed = args.seed.or(defaults.seed).unwrap_or(0);
    let catalog = match &args.songs {
        Some(path) => SongCatalog::from_listen_counts(path)?,
        None => SongCatalog::synthetic(args.catalog_size, seed),
    };
    let config_time = |value: &Option<String>, key: &str| -> Result<Option<i64>> {
        value
            .as_deref()
            .map(parse_time)
            .transpose()
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("site config field `{key}`"))
    };
    let from = args
        .from
        .or(config_time(&defaults.start_date, "start-date")?);
    let to = args.to.or(config_time(&defaults.end_date, "end-date")?);
    let mode = if args.continuous {
        let now = now_ms();
        Mode::Continuous {
            from: from.unwrap_or(now),
            to,
            speed: args.speed,
            wall_anchor: now,
        }
    } else {
        let to = to.unwrap_or_else(|| now_ms().div_euclid(DAY_MS) * DAY_MS);
        Mode::Backfill {
            from: from.unwrap_or(to - DAY_MS),
            to,
        }
    };
    let destination = match &args.output {
        Some(output) => Destination::Output(OutputTarget::parse(output)),
        None => {
            let kafka = args.kafka.resolve()?;
            if args.partitions < 1 {
                bail!("--partitions must be at least 1, got {}", args.partitions);
            }
            Destination::Kafka(KafkaSettings {
                kafka,
                partitions: args.partitions,
                replication_factor: args.replication_factor,
                compression: format!("{:?}", args.compression).to_lowercase(),
                format: match args.format {
                    FormatArg::Avro => Format::Avro,
                    FormatArg::Json => Format::Json,
                },
            })
        }
    };
    let options = RunOptions {
        mode,
        users: args.users.or(defaults.users).unwrap_or(100),
        growth_rate: args.growth_rate.or(defaults.growth_rate).unwrap_or(0.0),
        attrition_rate: args.attrition_rate,
        seed,
        instance_id: args.instance_id,
        threads: args.threads,
        max_events: args.max_events,
        destination,
        progress: !args.quiet,
        metrics: (args.metrics_addr != "off").then(playlog_metrics::MetricsRegistry::default),
        offer_response: args.offers_topic.clone().map(|topic| {
            playlog_producer::run::OfferResponse {
                topic,
                lift: args.offer_response,
            }
        }),
    };
    if let Some(registry) = &options.metrics {
        registry
            .serve(&args.metrics_addr)
            .map_err(anyhow::Error::msg)?;
    }

    let stop = Arc::new(AtomicBool::new(false));
    crate::signals::stop_on_signals(stop.clone())?;

    describe(&options);
    let world = World::new(site, catalog);
    let summary = playlog_producer::run(&world, &options, &stop)?;
    if !args.quiet || summary.total_failed() > 0 {
        eprint!("produce summary:\n{}", summary.render());
    }
    if summary.total_failed() > 0 {
        bail!(
            "{} events were not delivered to Kafka; see the summary above",
            summary.total_failed()
        );
    }
    Ok(())
}

fn describe(options: &RunOptions) {
    use playlog_producer::run::format_ts;
    let window = match options.mode {
        Mode::Backfill { from, to } => format!("backfill {} .. {}", format_ts(from), format_ts(to)),
        Mode::Continuous {
            from, to, speed, ..
        } => {
            format!(
                "continuous from {}{} at {speed}x",
                format_ts(from),
                to.map(|t| format!(" to {}", format_ts(t)))
                    .unwrap_or_default()
            )
        }
    };
    let target = match &options.destination {
        Destination::Kafka(k) => format!(
            "Kafka {} ({:?}, {})",
            k.kafka.brokers(),
            k.format,
            k.compression
        ),
        Destination::Output(o) => format!("{o:?}"),
    };
    tracing::info!(users = options.users, seed = options.seed, %window, %target, "producing");
    if options.progress {
        eprintln!(
            "produce: {} users, seed {}, {window} -> {target}",
            options.users, options.seed
        );
    }
}
