//! `playlog serve`: the REST API over a DuckDB warehouse file that no process is writing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  # The marts of playlog.duckdb, read-only, on http://127.0.0.1:8080/api/v1:
  playlog serve
  curl 'http://127.0.0.1:8080/api/v1/marts.top_songs_daily.json?date=2026-01-01&_size=10'
  curl 'http://127.0.0.1:8080/api/v1/marts.song_hourly_metrics.csv?plays__gte=3&_sort_desc=plays'
  # While a consumer writes the file, serve from inside it instead:
  playlog consume --vault-every 10s --serve 127.0.0.1:8080
  # Beyond this machine: a token for the API (bearer) and the pages (a login):
  openssl rand -hex 32 > serve.token
  playlog serve --addr 0.0.0.0:8080 --auth-token-file serve.token
  curl -H \"Authorization: Bearer $(cat serve.token)\" http://HOST:8080/api/v1
  # The catalog and the pipeline page: http://127.0.0.1:8080/catalog and /pipeline")]
pub struct ServeArgs {
    /// Where to listen. An address other than loopback needs --auth-token-file (or --insecure-no-auth).
    #[arg(long, env = "PLAYLOG_SERVE_ADDR", default_value = "127.0.0.1:8080")]
    addr: String,
    #[command(flatten)]
    http: ServeHttpArgs,
    /// Warehouse URL: duckdb:PATH (opened read-only).
    #[arg(
        long,
        env = "PLAYLOG_WAREHOUSE",
        default_value = "duckdb:playlog.duckdb"
    )]
    warehouse: String,
    /// The vault model the catalog documents (TOML); the shipped schemas/vault/model.toml by default.
    #[arg(long, env = "PLAYLOG_VAULT_MODEL")]
    model: Option<std::path::PathBuf>,
}

/// The API's own flags, shared with `playlog consume --serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeHttpArgs {
    /// Also serve the raw event tables and personal columns (names, locations, user agents).
    #[arg(long, env = "PLAYLOG_SERVE_EXPOSE_RAW")]
    pub expose_raw: bool,
    /// Requests answered at once, each on a warehouse connection of its own.
    #[arg(long, env = "PLAYLOG_SERVE_WORKERS", default_value_t = 4)]
    pub serve_workers: usize,
    /// The catalog's freshness test fails when the newest raw load is older than this (as `playlog check
    /// --max-age`).
    #[arg(long, env = "PLAYLOG_CATALOG_MAX_AGE", default_value = "1h", value_parser = crate::duration_arg::parse_duration)]
    pub catalog_max_age: Duration,
    /// A Prometheus server that scrapes the consumers (http://host:9090): the pipeline page reads lag,
    /// freshness and dead letters there, summed over every pod. Without it, `consume --serve` shows its
    /// own metrics and `serve` only the warehouse's view.
    #[arg(long, env = "PLAYLOG_PROMETHEUS_URL", value_name = "URL")]
    pub prometheus_url: Option<String>,
    /// A file holding the access token (one line, 16+ characters; or set PLAYLOG_SERVE_TOKEN): the API then takes `Authorization:
    /// Bearer <token>`, and the pages a login that sets a session cookie.
    #[arg(long, value_name = "FILE")]
    pub auth_token_file: Option<std::path::PathBuf>,
    /// The access token itself, from the environment only (never a flag: flags show in `ps`).
    #[arg(skip = std::env::var("PLAYLOG_SERVE_TOKEN").ok())]
    pub auth_token_env: Option<String>,
    /// Serve an address other than loopback without authentication (a proxy in front authenticates).
    #[arg(long, env = "PLAYLOG_SERVE_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,
}

impl ServeHttpArgs {
    /// The server's options; `model` is what the catalog documents, `warehouse` what it shows, and
    /// `process` this process's metrics, if it has some worth showing.
    pub fn options(
        &self,
        addr: &str,
        model: playlog_vault::Model,
        warehouse: &str,
        process: Option<&playlog_metrics::MetricsRegistry>,
    ) -> Result<playlog_serve::ServeOptions> {
        use playlog_serve::pipeline_page::MetricsSource;
        let auth_token = match (&self.auth_token_file, &self.auth_token_env) {
            (Some(path), _) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading the access token from {}", path.display()))?;
                Some(
                    playlog_serve::auth::read_token(&text, &path.display().to_string())
                        .map_err(anyhow::Error::msg)?,
                )
            }
            (None, Some(token)) => Some(
                playlog_serve::auth::read_token(token, "PLAYLOG_SERVE_TOKEN")
                    .map_err(anyhow::Error::msg)?,
            ),
            (None, None) => None,
        };
        let metrics = match (&self.prometheus_url, process) {
            (Some(url), _) => MetricsSource::Prometheus(url.clone()),
            (None, Some(registry)) => MetricsSource::Process(registry.clone()),
            (None, None) => MetricsSource::None,
        };
        Ok(playlog_serve::ServeOptions {
            addr: addr.to_owned(),
            auth_token,
            insecure_no_auth: self.insecure_no_auth,
            expose_raw: self.expose_raw,
            workers: self.serve_workers,
            model,
            max_age: self.catalog_max_age,
            warehouse_label: warehouse.to_owned(),
            metrics,
        })
    }
}

pub fn run(args: ServeArgs) -> Result<()> {
    let Some(path) = playlog_warehouse::duckdb_path(&args.warehouse) else {
        anyhow::bail!(
            "--warehouse {}: playlog serve reads DuckDB files (duckdb:PATH) for now",
            args.warehouse
        );
    };
    let model = crate::vault::load_model(args.model.as_deref())?;
    let conn = playlog_serve::open_read_only(path).map_err(anyhow::Error::msg)?;
    let options = args
        .http
        .options(&args.addr, model, &args.warehouse, None)?;
    let bound = playlog_serve::start(&options, &conn).map_err(anyhow::Error::msg)?;
    eprintln!(
        "serve: dashboard http://{bound}/, pipeline http://{bound}/pipeline, catalog http://{bound}/catalog, API http://{bound}/api/v1 (read-only, from {path}; Ctrl-C to stop)"
    );
    let stop = Arc::new(AtomicBool::new(false));
    crate::signals::stop_on_signals(stop.clone())?;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}
