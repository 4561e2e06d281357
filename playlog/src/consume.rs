//! `playlog consume`: flags and environment resolved into a consumer group run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
use playlog_consumer::ConsumeOptions;
use playlog_model::Stream;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  # Land the four event topics in playlog.duckdb, with two group members:
  playlog consume --brokers 127.0.0.1:9092 --members 2
  # Another warehouse file and group, flushing every 250 ms:
  playlog consume --warehouse duckdb:/data/events.duckdb --group analytics --flush-interval 250ms
  # Keep the Data Vault and marts fresh too, every 10 seconds, in the same process:
  playlog consume --brokers 127.0.0.1:9092 --members 2 --vault-every 10s
  # A secured cluster (TLS, SASL), from the client.properties file it hands out:
  playlog consume --kafka-config client.properties --members 2
  # Into BigQuery, creating its datasets and tables first (EU):
  playlog consume --warehouse bigquery://my-project/playlog --bigquery-location EU --migrate
  # Then query it, with any DuckDB 1.5+ shell (scripts/duckdb in a checkout of Playlog):
  duckdb playlog.duckdb \"SELECT count(*) FROM raw.listen_events\"")]
pub struct ConsumeArgs {
    #[command(flatten)]
    kafka: crate::kafka_args::KafkaArgs,
    /// Consumer group.
    #[arg(long, env = "PLAYLOG_GROUP", default_value = "playlog-raw")]
    group: String,
    /// Topics to consume (comma-separated).
    #[arg(
        long,
        env = "PLAYLOG_TOPICS",
        value_delimiter = ',',
        default_value = "listen_events,page_view_events,auth_events,status_change_events,offer_events"
    )]
    topics: Vec<String>,
    /// Group members in this process, for parallel decoding and inserting.
    #[arg(long, env = "PLAYLOG_MEMBERS", default_value_t = 1)]
    members: usize,
    #[command(flatten)]
    location: crate::warehouse_arg::WarehouseLocation,
    /// Flush when a member's batch has this many rows.
    #[arg(long, env = "PLAYLOG_MAX_BATCH_ROWS", default_value_t = 200_000)]
    max_batch_rows: usize,
    /// Flush when a member's batch holds this many bytes of records.
    #[arg(long, env = "PLAYLOG_MAX_BATCH_BYTES", default_value_t = 64 << 20)]
    max_batch_bytes: usize,
    /// Flush at the latest this long after a batch's first record (at most 60s, the freshness SLA):
    /// 1s, 250ms, 1m.
    #[arg(long, env = "PLAYLOG_FLUSH_INTERVAL", default_value = "1s", value_parser = crate::duration_arg::parse_duration)]
    flush_interval: Duration,
    /// Dead-letter topic for records that cannot be decoded.
    #[arg(long, env = "PLAYLOG_DLQ_TOPIC", default_value = "dead_letter_events")]
    dlq_topic: String,
    /// Records larger than this go to the dead-letter topic.
    #[arg(long, env = "PLAYLOG_MAX_RECORD_BYTES", default_value_t = 1 << 20)]
    max_record_bytes: usize,
    /// Where to serve Prometheus metrics (path /metrics); `off` to serve none.
    #[arg(long, env = "PLAYLOG_METRICS_ADDR", default_value = "127.0.0.1:9464")]
    metrics_addr: String,
    /// Also run the vault (core and marts) in this process this often, for example 10s: DuckDB allows one
    /// writing process per file, so this is how to keep the vault fresh while consuming.
    #[arg(long, env = "PLAYLOG_CONSUME_VAULT_EVERY", value_parser = crate::duration_arg::parse_duration)]
    vault_every: Option<Duration>,
    /// The vault model for --vault-every and the catalog of --serve (TOML); the shipped
    /// schemas/vault/model.toml by default.
    #[arg(long, env = "PLAYLOG_VAULT_MODEL")]
    vault_model: Option<std::path::PathBuf>,
    /// Forget the group's stored offsets, and the vault's marks, and read every partition from the log's
    /// beginning: once, for a deliberate move to another Kafka log (a recreated topic, a new cluster),
    /// when the consumer refuses to start without it. The raw rows stay. Not an environment variable on
    /// purpose: left on, every start would read the whole log again.
    #[arg(long)]
    reset_offsets: bool,
    /// Create what is missing before consuming: BigQuery's datasets and raw tables, and with
    /// --vault-every the vault's and marts' tables too (as `playlog migrate` does). Without it, a BigQuery
    /// consumer only checks that they exist, so that its least-privilege account needs no right to create
    /// them. A DuckDB file is always migrated.
    #[arg(long, env = "PLAYLOG_MIGRATE")]
    migrate: bool,
    /// Also serve the marts' REST API from this process, on this loopback address (for example
    /// 127.0.0.1:8080): DuckDB lets no other process read the file while the consumer writes it.
    #[arg(long, env = "PLAYLOG_SERVE_ADDR", value_name = "ADDR")]
    serve: Option<String>,
    #[command(flatten)]
    serve_http: crate::serve::ServeHttpArgs,
    /// No progress lines (rows landed, rows/s and partitions held, every 5 seconds).
    #[arg(long, short, env = "PLAYLOG_QUIET")]
    quiet: bool,
}

pub fn run(args: ConsumeArgs) -> Result<()> {
    let options = ConsumeOptions {
        kafka: args.kafka.resolve()?,
        group: args.group,
        topics: args.topics,
        members: args.members,
        warehouse: args.location.warehouse.clone(),
        open: args.location.options(args.migrate),
        max_batch_rows: args.max_batch_rows,
        max_batch_bytes: args.max_batch_bytes,
        flush_interval: args.flush_interval,
        dlq_topic: args.dlq_topic,
        max_record_bytes: args.max_record_bytes,
        metrics_addr: (args.metrics_addr != "off").then_some(args.metrics_addr),
        reset_offsets: args.reset_offsets,
        metrics: playlog_metrics::MetricsRegistry::default(),
    };
    if options.reset_offsets {
        forget_vault_marks(&options)?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    crate::signals::stop_on_signals(stop.clone())?;
    eprintln!(
        "consume: group {} ({} member{}) {} -> {}",
        options.group,
        options.members,
        if options.members == 1 { "" } else { "s" },
        options.kafka.brokers(),
        options.warehouse
    );
    let model = crate::vault::load_model(args.vault_model.as_deref())?;
    let serve = match args.serve.as_deref() {
        Some(addr) => Some(args.serve_http.options(
            addr,
            model.clone(),
            &options.warehouse,
            Some(&options.metrics),
        )?),
        None => None,
    };
    let vault = args.vault_every.map(|every| (every, model));
    let summary = consume(&options, &stop, vault.as_ref(), serve.as_ref(), !args.quiet)?;
    eprintln!("consume summary:");
    for s in Stream::ALL {
        eprintln!(
            "  raw.{:<22}{:>12} rows",
            s.topic(),
            summary.rows[s.index()]
        );
    }
    eprintln!(
        "  {} batches, {} dead letters",
        summary.batches, summary.dead_letters
    );
    Ok(())
}

/// Before the group's offsets are reset: the vault's marks go first, so that a reset cut short leaves the
/// warehouse still refusing to start (its cluster or offsets unchanged) rather than a vault that skips
/// the new log's first offsets. A vault running elsewhere (BigQuery's vault Deployment) should be stopped
/// meanwhile: a run between the two steps would stage the old offsets again and move the marks back.
fn forget_vault_marks(options: &ConsumeOptions) -> Result<()> {
    let mut warehouse = playlog_warehouse::Warehouse::open_with(&options.warehouse, &options.open)?;
    let forgotten = playlog_vault::forget_marks(&mut warehouse)?;
    tracing::warn!(
        marks = forgotten,
        "--reset-offsets: the vault's marks are forgotten; its next run stages raw from the beginning"
    );
    Ok(())
}

/// Consumes until stopped or a member fails. With `vault`, also runs the vault on its schedule, on a
/// connection of its own to the members' warehouse, and once more at the end.
fn consume(
    options: &ConsumeOptions,
    stop: &AtomicBool,
    vault: Option<&(Duration, playlog_vault::Model)>,
    serve: Option<&playlog_serve::ServeOptions>,
    progress: bool,
) -> Result<playlog_consumer::ConsumeSummary> {
    let mut group = playlog_consumer::Group::start(options)?;
    if let Some(serve) = serve {
        // Connections of the members' own database instance: they see each committed batch and vault run.
        let (warehouse, _) = group.connect_warehouse()?;
        let Some(duckdb) = warehouse.duckdb_connection() else {
            anyhow::bail!("--serve reads DuckDB warehouses (duckdb:PATH) for now");
        };
        let bound = playlog_serve::start(serve, duckdb).map_err(anyhow::Error::msg)?;
        eprintln!("serve: http://{bound}/api/v1 (read-only)");
    }
    for _ in 0..options.members {
        group.add_member()?;
    }
    let mut line = crate::consume_progress::ProgressLine::new(Instant::now());
    let mut scheduled = match vault {
        Some((every, model)) => {
            if options.open.migrate {
                let (mut w, _) = group.connect_warehouse()?;
                playlog_vault::migrate(&mut w, model)?;
            }
            Some(ScheduledVault::start(&group, options, *every, model)?)
        }
        None => None,
    };
    while !stop.load(Ordering::Relaxed) && group.running() == options.members {
        std::thread::sleep(Duration::from_millis(50));
        if let Some(v) = &mut scheduled {
            v.run_if_due(&group);
        }
        if let Some(l) = line
            .due(group.progress(), Instant::now())
            .filter(|_| progress)
        {
            eprintln!("{l}");
        }
    }
    drop(scheduled);
    let summary = group.stop()?;
    if let Some((_, model)) = vault {
        // A last run, so that the vault holds everything that landed.
        let report = playlog_vault::run(
            &mut playlog_warehouse::Warehouse::open_with(&options.warehouse, &options.open)?,
            model,
        )?;
        crate::vault::print_report(&report);
    }
    Ok(summary)
}

/// The in-process vault: its own connection, so that its runs go on beside the members' writes and
/// never hold them up.
struct ScheduledVault<'m> {
    model: &'m playlog_vault::Model,
    metrics: playlog_vault::VaultMetrics,
    every: Duration,
    last: Instant,
    warehouse: playlog_warehouse::Warehouse,
    epoch: u64,
}

impl<'m> ScheduledVault<'m> {
    fn start(
        group: &playlog_consumer::Group,
        options: &ConsumeOptions,
        every: Duration,
        model: &'m playlog_vault::Model,
    ) -> Result<ScheduledVault<'m>> {
        let metrics = playlog_vault::VaultMetrics::register(&options.metrics, every);
        let (warehouse, epoch) = group.connect_warehouse()?;
        Ok(ScheduledVault {
            model,
            metrics,
            every,
            last: Instant::now(),
            warehouse,
            epoch,
        })
    }

    fn run_if_due(&mut self, group: &playlog_consumer::Group) {
        if self.last.elapsed() < self.every {
            return;
        }
        self.last = Instant::now();
        if crate::vault::run_scheduled(&mut self.warehouse, self.model, &self.metrics) {
            // The instance died (a full disk, say): the members reopen it; the vault takes a
            // connection of the new one for its next run.
            match group.reconnect_warehouse(self.epoch) {
                Ok((w, epoch)) => (self.warehouse, self.epoch) = (w, epoch),
                Err(e) => eprintln!("vault: the warehouse will not open again: {e}"),
            }
        }
    }
}
