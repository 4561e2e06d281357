//! `playlog serve`: a read-only REST API (`/api/v1/…`) over the marts, on DuckDB. It runs as a command
//! of its own on a warehouse file nobody writes, or inside `playlog consume --serve`, on connections of
//! the consumer's own database instance (DuckDB allows one writing process per file): each response
//! reads one committed snapshot and never holds up ingestion.
//!
//! HTTP is hyper on a small tokio runtime of its own (`http.rs`); the warehouse work happens on a fixed
//! pool of worker threads with a DuckDB connection each, which is also the concurrency limit.

pub mod aggregates;
pub mod api;
pub mod auth;
pub mod catalog_page;
mod http;
pub mod openapi;
pub mod pages;
pub mod pipeline;
pub mod pipeline_page;
pub mod query;
pub mod tables;

use std::net::SocketAddr;
use std::sync::Arc;

/// How the API is served.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where to listen. Any other than a loopback address needs `auth_token` or `insecure_no_auth`.
    pub addr: String,
    /// The token readers must present (bearer header, or a login for the pages); `None` for none.
    pub auth_token: Option<String>,
    /// Serve a non-loopback address without authentication (behind a proxy that authenticates).
    pub insecure_no_auth: bool,
    /// Also serve the raw event tables and personal columns.
    pub expose_raw: bool,
    /// Requests answered at once, each on a DuckDB connection of its own.
    pub workers: usize,
    /// The vault model, which the catalog documents.
    pub model: playlog_vault::Model,
    /// The catalog's freshness test bound (`playlog check --max-age`).
    pub max_age: std::time::Duration,
    /// The warehouse, as the user named it (shown on the catalog).
    pub warehouse_label: String,
    /// Where the pipeline page reads lag, freshness and dead letters from.
    pub metrics: pipeline_page::MetricsSource,
}

/// Every column of the schemas the API may serve, in table order.
fn warehouse_columns(
    conn: &duckdb::Connection,
) -> Result<Vec<(String, String, String, String)>, duckdb::Error> {
    let mut stmt = conn.prepare(
        "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns \
         WHERE table_schema IN ('marts', 'raw') ORDER BY table_schema, table_name, ordinal_position",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    rows.collect()
}

/// The served tables as the warehouse holds them now (marts appear with the first vault run).
pub fn discover(
    conn: &duckdb::Connection,
    expose_raw: bool,
) -> Result<Vec<tables::ServedTable>, duckdb::Error> {
    Ok(tables::served(&warehouse_columns(conn)?, expose_raw))
}

/// Starts serving on `options.addr` with connections cloned from `conn`; returns the bound address.
pub fn start(options: &ServeOptions, conn: &duckdb::Connection) -> Result<SocketAddr, String> {
    let addr: SocketAddr = options.addr.parse().map_err(|e| {
        format!(
            "--serve/--addr {:?}: not an address such as 127.0.0.1:8080 ({e})",
            options.addr
        )
    })?;
    if !addr.ip().is_loopback() && options.auth_token.is_none() && !options.insecure_no_auth {
        return Err(format!(
            "--serve/--addr {addr} is not a loopback address, so anyone who reaches it could read the marts: \
             give a token with --auth-token-file FILE (or PLAYLOG_SERVE_TOKEN), or --insecure-no-auth if a proxy in front authenticates"
        ));
    }
    let auth = Arc::new(auth::Auth::new(options.auth_token.clone()));
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| format!("serving the API on {addr}: {e}. Is the port in use?"))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("serving the API on {addr}: {e}"))?;
    let workers = options.workers.max(1);
    let (jobs, queue) =
        std::sync::mpsc::sync_channel::<http::Job>(workers * http::QUEUE_PER_WORKER);
    let queue = Arc::new(std::sync::Mutex::new(queue));
    let catalog = Arc::new(catalog_page::CatalogPage::new(
        options.model.clone(),
        options.max_age,
        options.warehouse_label.clone(),
    )?);
    let pipeline = Arc::new(pipeline_page::PipelinePage::new(options.metrics.clone()));
    for worker in 0..workers {
        let conn = conn
            .try_clone()
            .map_err(|e| format!("a connection for the API: {e}"))?;
        let queue = queue.clone();
        let expose_raw = options.expose_raw;
        let pages = Pages {
            catalog: catalog.clone(),
            pipeline: pipeline.clone(),
        };
        std::thread::Builder::new()
            .name(format!("serve-{worker}"))
            .spawn(move || answer_jobs(&queue, conn, expose_raw, &pages))
            .map_err(|e| format!("starting the API: {e}"))?;
    }
    http::spawn(listener, jobs, auth).map_err(|e| format!("starting the API: {e}"))?;
    Ok(bound)
}

/// What the workers share beyond the API: the pages that keep state between requests.
struct Pages {
    catalog: Arc<catalog_page::CatalogPage>,
    pipeline: Arc<pipeline_page::PipelinePage>,
}

/// A worker: answers the API requests handed to it, one at a time, on its own warehouse connection.
fn answer_jobs(
    queue: &std::sync::Mutex<std::sync::mpsc::Receiver<http::Job>>,
    conn: duckdb::Connection,
    expose_raw: bool,
    pages: &Pages,
) {
    let mut api = api::Api::new(Vec::new(), conn);
    loop {
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        if job.reply.is_closed() {
            continue; // timed out while queued: nobody waits for it any more
        }
        let path = job.url.split_once('?').map_or(job.url.as_str(), |(p, _)| p);
        let response = match path {
            "/catalog" | "/catalog/" => pages.catalog.respond(api.connection()),
            "/api/v1/pipeline.json" | "/api/v1/pipeline" => {
                pages.pipeline.respond(api.connection())
            }
            _ => api.get_fresh(&job.url, expose_raw),
        };
        let _ = job.reply.send(response);
    }
}

/// A DuckDB warehouse file opened read-only, for `playlog serve` on a file no process writes (several
/// readers may open it at once; a writer holds it alone).
pub fn open_read_only(path: &str) -> Result<duckdb::Connection, String> {
    if !std::path::Path::new(path).exists() {
        return Err(format!(
            "no warehouse at {path}: run `playlog consume --warehouse duckdb:{path} --vault-every 10s` first, or serve from it with `--serve`"
        ));
    }
    let config = duckdb::Config::default()
        .access_mode(duckdb::AccessMode::ReadOnly)
        .map_err(|e| format!("opening {path} read-only: {e}"))?;
    duckdb::Connection::open_with_flags(path, config).map_err(|e| {
        let message = e.to_string();
        if message.contains("lock") {
            format!(
                "opening {path} read-only: {message}. A process writes it (DuckDB allows one writer per file and no readers beside it): serve from that consumer with `playlog consume … --serve 127.0.0.1:8080`"
            )
        } else {
            format!("opening {path} read-only: {message}")
        }
    })
}
