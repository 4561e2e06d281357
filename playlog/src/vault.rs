//! `playlog vault build|run` and `playlog check`: the Data Vault core and marts, and data tests over them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use playlog_metrics::MetricsRegistry;
use playlog_vault::{Model, RunReport, VaultMetrics};
use playlog_warehouse::{Warehouse, WarehouseError};

use crate::warehouse_arg::WarehouseLocation;

#[derive(Debug, Args)]
pub struct WarehouseArgs {
    #[command(flatten)]
    location: WarehouseLocation,
    /// The vault model (TOML); the one shipped in schemas/vault/model.toml by default.
    #[arg(long, env = "PLAYLOG_VAULT_MODEL")]
    model: Option<std::path::PathBuf>,
}

/// The vault model from a file, or the shipped one.
pub fn load_model(path: Option<&std::path::Path>) -> Result<Model> {
    Ok(match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the vault model {}", path.display()))?;
            Model::parse(&text, &path.display().to_string())?
        }
        None => Model::parse(playlog_vault::DEFAULT_MODEL, "schemas/vault/model.toml")?,
    })
}

impl WarehouseArgs {
    pub fn open(&self) -> Result<(Warehouse, Model)> {
        let model = load_model(self.model.as_deref())?;
        let warehouse = self.location.open()?;
        Ok((warehouse, model))
    }

    /// As `open`, creating what is missing first (`playlog migrate`): BigQuery's datasets and raw tables.
    pub fn open_migrating(&self) -> Result<(Warehouse, Model)> {
        let model = load_model(self.model.as_deref())?;
        let warehouse =
            Warehouse::open_with(&self.location.warehouse, &self.location.options(true))?;
        Ok((warehouse, model))
    }

    /// As `open`, for reading commands: a missing DuckDB file is an error, not a new file.
    fn open_existing(&self) -> Result<(Warehouse, Model)> {
        let model = load_model(self.model.as_deref())?;
        let warehouse = self.location.open_existing()?;
        Ok((warehouse, model))
    }
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  # Once, after consuming into playlog.duckdb:
  playlog vault build
  # Continuously, every minute (each run takes only the rows loaded since the last one):
  playlog vault run --every 60s --warehouse duckdb:playlog.duckdb
  # The SQL a run executes, for review (no warehouse needed):
  playlog vault plan --dialect bigquery
  # Then, with any DuckDB 1.5+ shell (scripts/duckdb in a checkout of Playlog):
  duckdb playlog.duckdb \"SELECT * FROM marts.top_songs_daily ORDER BY date DESC, rank LIMIT 10\"")]
pub struct VaultArgs {
    #[command(subcommand)]
    command: VaultCommand,
}

#[derive(Debug, Subcommand)]
enum VaultCommand {
    /// Print the SQL a run executes, step by step, without a warehouse (review a model change here).
    Plan {
        /// The vault model (TOML); the one shipped in schemas/vault/model.toml by default.
        #[arg(long, env = "PLAYLOG_VAULT_MODEL")]
        model: Option<std::path::PathBuf>,
        /// Whose SQL to print.
        #[arg(long, value_enum, default_value = "duckdb")]
        dialect: PlanDialect,
        /// Print the migrations (tables, marts, run log) instead of a run.
        #[arg(long)]
        migrations: bool,
    },
    /// Load the raw rows loaded since the last run into the vault and marts, once.
    Build {
        #[command(flatten)]
        warehouse: WarehouseArgs,
    },
    /// Run the vault load repeatedly until Ctrl-C.
    Run {
        #[command(flatten)]
        warehouse: WarehouseArgs,
        /// Time between the starts of two runs: 10s, 1m.
        #[arg(long, env = "PLAYLOG_VAULT_EVERY", default_value = "60s", value_parser = crate::duration_arg::parse_duration)]
        every: Duration,
        /// Where to serve Prometheus metrics (path /metrics), for example 0.0.0.0:9464; `off` to serve none.
        #[arg(long, env = "PLAYLOG_METRICS_ADDR", default_value = "off")]
        metrics_addr: String,
    },
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  playlog check
  playlog check --warehouse duckdb:/data/playlog.duckdb --max-age 24h")]
pub struct CheckArgs {
    #[command(flatten)]
    warehouse: WarehouseArgs,
    /// Fail the freshness test if the newest raw load is older than this: 15m, 1h, 24h.
    #[arg(long, env = "PLAYLOG_CHECK_MAX_AGE", default_value = "1h", value_parser = crate::duration_arg::parse_duration)]
    max_age: Duration,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum PlanDialect {
    Duckdb,
    Bigquery,
}

/// `playlog vault plan`: the run's SQL for a dialect, from the model alone.
fn print_plan(
    model: Option<&std::path::Path>,
    dialect: PlanDialect,
    migrations: bool,
) -> Result<()> {
    let model = load_model(model)?;
    let catalog = playlog_vault::Catalog::for_model(&model)?;
    let sql = match dialect {
        PlanDialect::Duckdb => playlog_vault::Sql::new(playlog_warehouse::Dialect::DuckDb, ""),
        PlanDialect::Bigquery => {
            playlog_vault::Sql::new(playlog_warehouse::Dialect::BigQuery, "PROJECT.PREFIX_")
        }
    };
    let text = if migrations {
        playlog_vault::migration_plan(&model, &catalog, &sql)
    } else {
        playlog_vault::plan::render(&playlog_vault::plan(&model, &catalog, &sql))
    };
    // Piped into `head` or a pager that quits early: not an error.
    match std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

pub fn print_report(report: &RunReport) {
    if report.staged.is_empty() {
        eprintln!(
            "vault: no new raw rows; nothing changed ({:.2} s)",
            report.seconds
        );
        return;
    }
    let staged: Vec<String> = report
        .staged
        .iter()
        .map(|(s, n)| format!("{s} {n}"))
        .collect();
    eprintln!(
        "vault: {} new raw rows ({}) in {:.2} s; {} vault rows added",
        report.staged_rows(),
        staged.join(", "),
        report.seconds,
        report.vault_rows()
    );
    for (table, n) in &report.changed {
        if *n > 0 {
            eprintln!("  {table:<36} {n:>10}");
        }
    }
}

/// One scheduled run: reported, counted, and on failure logged rather than fatal, since a failed run commits
/// nothing and the next one retries the same rows. Returns whether the warehouse handle died with it (see
/// `playlog_warehouse::fatal_message`): the caller then needs a new one.
pub fn run_scheduled(w: &mut Warehouse, model: &Model, metrics: &VaultMetrics) -> bool {
    let started = Instant::now();
    let result = playlog_vault::run(w, model);
    metrics.record(&result, started.elapsed());
    match result {
        Ok(report) => {
            print_report(&report);
            false
        }
        Err(e) => {
            eprintln!("vault: run failed, retrying at the next one: {e}");
            playlog_warehouse::fatal_message(&e.to_string())
        }
    }
}

pub fn run(args: VaultArgs) -> Result<()> {
    match args.command {
        VaultCommand::Plan {
            model,
            dialect,
            migrations,
        } => print_plan(model.as_deref(), dialect, migrations),
        VaultCommand::Build { warehouse } => {
            let (mut w, model) = warehouse.open()?;
            let report = playlog_vault::run(&mut w, &model)?;
            print_report(&report);
            Ok(())
        }
        VaultCommand::Run {
            warehouse,
            every,
            metrics_addr,
        } => {
            if every.is_zero() {
                bail!("--every must be positive, for example 60s");
            }
            let registry = MetricsRegistry::default();
            let metrics = VaultMetrics::register(&registry, every);
            if metrics_addr != "off" {
                registry.serve(&metrics_addr).map_err(anyhow::Error::msg)?;
            }
            let model = load_model(warehouse.model.as_deref())?;
            let stop = Arc::new(AtomicBool::new(false));
            crate::signals::stop_on_signals(stop.clone())?;
            let mut opened: Option<Warehouse> = None;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                // A long-running loop outlives a DuckDB file held by another process for a while, or a
                // warehouse service that is down: it counts a failed run and tries again at the next one.
                // A bad URL or bad credentials stop it at once.
                if opened.is_none() {
                    match Warehouse::open_with(
                        &warehouse.location.warehouse,
                        &warehouse.location.options(false),
                    ) {
                        Ok(w) => opened = Some(w),
                        Err(e @ (WarehouseError::Open { .. } | WarehouseError::Unavailable(_))) => {
                            metrics.record::<()>(&Err(()), started.elapsed());
                            eprintln!("vault: {e}; retrying at the next run");
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                if let Some(w) = opened.as_mut()
                    && run_scheduled(w, &model, &metrics)
                {
                    // The handle died (DuckDB invalidates its instance after a fatal error): open it
                    // again at the next run.
                    opened = None;
                }
                while !stop.load(Ordering::Relaxed) && started.elapsed() < every {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            Ok(())
        }
    }
}

/// Fails with what to run when no vault has been built in the warehouse.
fn require_vault(w: &mut Warehouse, model: &playlog_vault::Model, url: &str) -> Result<()> {
    if !playlog_vault::is_built(w, model)? {
        bail!(
            "no vault has been built in {url} yet: run `playlog vault build --warehouse {url}` first (on BigQuery, `playlog migrate --warehouse {url}` before it), or `playlog consume --vault-every 10s`"
        );
    }
    Ok(())
}

pub fn check(args: CheckArgs) -> Result<()> {
    let (mut w, model) = args.warehouse.open_existing()?;
    require_vault(&mut w, &model, &args.warehouse.location.warehouse)?;
    let results = playlog_vault::check(&mut w, &model, args.max_age)?;
    let failed = results.iter().filter(|r| !r.passed()).count();
    for r in &results {
        let status = if r.passed() { "PASS" } else { "FAIL" };
        println!(
            "{status}  {:<16} {:<22} {:<48} {}",
            r.name,
            r.table,
            r.detail,
            if r.passed() {
                String::new()
            } else {
                format!("{} offending rows", r.failures)
            }
        );
    }
    println!(
        "{} checks, {} passed, {failed} failed",
        results.len(),
        results.len() - failed
    );
    if failed > 0 {
        bail!("{failed} data checks failed");
    }
    Ok(())
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  playlog report
  playlog report --warehouse duckdb:/data/playlog.duckdb")]
pub struct ReportArgs {
    #[command(flatten)]
    location: WarehouseLocation,
}

pub fn report(args: ReportArgs) -> Result<()> {
    let mut w = args.location.open_existing()?;
    require_vault(&mut w, &load_model(None)?, &args.location.warehouse)?;
    let sections = playlog_vault::report(&mut w)
        .context("reading the marts (has `playlog vault build` run on this warehouse?)")?;
    print!("{}", playlog_vault::render(&sections));
    Ok(())
}
