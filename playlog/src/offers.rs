//! `playlog offers`: flags and environment resolved into an offers run.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use playlog_offers::Rules;
use playlog_offers::run::{OfferFormat, OffersOptions};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  # The shipped rules (schemas/offers/rules.toml) over page_view_events, offers to offer_events:
  playlog offers --brokers 127.0.0.1:9092
  # Rules of your own:
  playlog offers --rules my-rules.toml
  # Then watch them:
  kcat -b 127.0.0.1:9092 -t offer_events -C")]
pub struct OffersArgs {
    #[command(flatten)]
    kafka: crate::kafka_args::KafkaArgs,
    /// Consumer group (its offsets show the lag; checkpoints in --state-topic are what a restart reads).
    #[arg(long, env = "PLAYLOG_OFFERS_GROUP", default_value = "playlog-offers")]
    group: String,
    /// The rules file (TOML); the shipped schemas/offers/rules.toml by default. It is read again when it
    /// changes: a rule's `enabled` applies at once; other edits are logged and need a restart.
    #[arg(long, env = "PLAYLOG_OFFERS_RULES", value_name = "FILE")]
    rules: Option<PathBuf>,
    /// Where the page views are read from.
    #[arg(long, env = "PLAYLOG_OFFERS_INPUT", default_value = "page_view_events")]
    input_topic: String,
    /// Where offers (and holdout records) go, keyed by user.
    #[arg(long, env = "PLAYLOG_OFFERS_TOPIC", default_value = "offer_events")]
    offers_topic: String,
    /// Where each partition's evaluation state is checkpointed, keyed by partition.
    #[arg(
        long,
        env = "PLAYLOG_OFFERS_STATE_TOPIC",
        default_value = "playlog_offers_state"
    )]
    state_topic: String,
    /// How often offers are flushed, state checkpointed and offsets committed: what a crash repeats.
    #[arg(long, env = "PLAYLOG_OFFERS_COMMIT_INTERVAL", default_value = "1s", value_parser = crate::duration_arg::parse_duration)]
    commit_interval: Duration,
    /// Wire format of the offers: Avro (schemas/avro/offer_events.avsc) or the same fields as JSON.
    #[arg(
        long,
        env = "PLAYLOG_OFFERS_FORMAT",
        value_enum,
        default_value = "avro"
    )]
    format: crate::produce::FormatArg,
    /// Where to serve Prometheus metrics (path /metrics), for example 0.0.0.0:9466; `off` to serve none.
    #[arg(long, env = "PLAYLOG_METRICS_ADDR", default_value = "off")]
    metrics_addr: String,
}

pub fn run(args: OffersArgs) -> Result<()> {
    let rules = match &args.rules {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the rules file {}", path.display()))?;
            Rules::parse(&text, &path.display().to_string())?
        }
        None => Rules::shipped(),
    };
    let options = OffersOptions {
        kafka: args.kafka.resolve()?,
        group: args.group,
        input: args.input_topic,
        output: args.offers_topic,
        state_topic: args.state_topic,
        rules,
        rules_file: args.rules.clone(),
        commit_interval: args.commit_interval,
        max_record_bytes: 1 << 20,
        format: match args.format {
            crate::produce::FormatArg::Avro => OfferFormat::Avro,
            crate::produce::FormatArg::Json => OfferFormat::Json,
        },
        metrics: playlog_metrics::MetricsRegistry::default(),
    };
    if args.metrics_addr != "off" {
        options
            .metrics
            .serve(&args.metrics_addr)
            .map_err(anyhow::Error::msg)?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    crate::signals::stop_on_signals(stop.clone())?;
    eprintln!(
        "offers: {} rules over {}, offers to {}",
        options.rules.rules.len(),
        options.input,
        options.output
    );
    let summary = playlog_offers::run::run(&options, &stop).map_err(anyhow::Error::msg)?;
    eprintln!(
        "offers: resumed {} partitions from checkpoints; {} page views, {} offers, {} held out, {} records passed over",
        summary.resumed, summary.page_views, summary.offers, summary.holdouts, summary.skipped
    );
    Ok(())
}
