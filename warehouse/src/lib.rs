//! Warehouses behind one interface, chosen by URL scheme: DuckDB (`duckdb:PATH`), embedded, and BigQuery
//! (`bigquery://PROJECT/PREFIX`), for production. They differ only in their adapter module here and in
//! the SQL dialect module of the vault.
//!
//! Exactly-once shows in the signature: [`Warehouse::write`] takes the rows *and* the Kafka offsets they
//! advance. DuckDB commits both in one transaction; BigQuery streams the rows, then advances the offsets
//! (at-least-once into raw; see the `bigquery` module).
//!
//! BigQuery is behind the `bigquery` feature (on by default), so that a DuckDB-only build, the
//! quickstart's, skips Google's authentication and the HTTPS stack.

#[cfg(feature = "bigquery")]
mod bigquery;
mod duckdb_warehouse;
mod error;
mod kafka_log;
pub mod raw_batch;
pub mod retry;
mod sql;

use std::sync::atomic::{AtomicU64, Ordering};

#[cfg(feature = "bigquery")]
pub use bigquery::BigQueryWarehouse;
pub use duckdb_warehouse::{DuckDbReader, DuckDbWarehouse};
pub use error::{WarehouseError, fatal_message};
pub use playlog_sql::migrate;
pub use raw_batch::{KafkaMeta, RawBatch};
pub use sql::{Rows, SqlError, SqlSession, Value, timestamp_text};

/// The next offset to read in one partition, as a consumer group stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOffset {
    pub topic: String,
    pub partition: i32,
    pub next_offset: i64,
}

/// An offset to record, and the one the writer believes is stored now (`None`: nothing stored yet).
///
/// The write fails with [`WarehouseError::Fenced`] if the stored offset is not `previous`: another member
/// has written this partition since, and this writer's rows would be duplicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetAdvance {
    pub topic: String,
    pub partition: i32,
    pub previous: Option<i64>,
    pub next_offset: i64,
}

/// What a committed write landed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Committed {
    pub rows: [u64; 5],
    /// The batch's load time (`_loaded_at`), epoch milliseconds UTC.
    pub loaded_at: i64,
}

/// A row the warehouse refused, for the dead-letter topic: where it came from, the row as sent, and the
/// warehouse's reason.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub row: String,
    pub message: String,
}

/// The SQL dialects generated SQL is written in.
pub use playlog_sql::DialectName as Dialect;

/// A warehouse, dispatched by a closed enum: two backends, not a plugin market.
pub enum Warehouse {
    DuckDb(DuckDbWarehouse),
    #[cfg(feature = "bigquery")]
    BigQuery(Box<BigQueryWarehouse>),
}

/// The environment variable that points BigQuery URLs at an emulator, as Google's own clients read it.
pub const BIGQUERY_EMULATOR_ENV: &str = "BIGQUERY_EMULATOR_HOST";

/// The file path of a `duckdb:PATH` (or `duckdb://PATH`) URL; `None` for other warehouses.
pub fn duckdb_path(url: &str) -> Option<&str> {
    url.strip_prefix("duckdb://")
        .or_else(|| url.strip_prefix("duckdb:"))
}

/// How to open a warehouse, beyond its URL.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// A BigQuery emulator (`host:port` or a URL): requests go there, unauthenticated.
    pub bigquery_endpoint: Option<String>,
    /// Where the BigQuery datasets are (`EU`, `europe-west1`); without it, read from `PREFIX_raw`.
    pub bigquery_location: Option<String>,
    /// Apply pending migrations (create datasets and tables) instead of only checking that they are
    /// applied. A DuckDB file is always migrated: it belongs to the process that opens it.
    pub migrate: bool,
}

impl OpenOptions {
    /// The options the environment gives: `BIGQUERY_EMULATOR_HOST`, as Google's own clients read it.
    pub fn from_env() -> OpenOptions {
        OpenOptions {
            bigquery_endpoint: std::env::var(BIGQUERY_EMULATOR_ENV).ok(),
            ..OpenOptions::default()
        }
    }

    pub fn migrating(mut self) -> OpenOptions {
        self.migrate = true;
        self
    }
}

impl Warehouse {
    /// Opens the warehouse a URL names, migrating it ([`OpenOptions::from_env`], migrating): for tests and
    /// tools that own their warehouse.
    pub fn open(url: &str) -> Result<Warehouse, WarehouseError> {
        Warehouse::open_with(url, &OpenOptions::from_env().migrating())
    }

    /// Opens the warehouse a URL names:
    /// - `duckdb:PATH` (or `duckdb://PATH`) opens or creates an embedded DuckDB file and brings its raw
    ///   schema up to date;
    /// - `bigquery://PROJECT/PREFIX` uses the datasets `PREFIX_raw`, `PREFIX_vault` and `PREFIX_marts`,
    ///   through `options.bigquery_endpoint` (an emulator, no authentication) if given, else Google's API
    ///   with Application Default Credentials. With `options.migrate` it creates what is missing; without,
    ///   it only checks that the raw schema is there and says which command creates it.
    pub fn open_with(url: &str, options: &OpenOptions) -> Result<Warehouse, WarehouseError> {
        if let Some(path) = duckdb_path(url) {
            if path.is_empty() {
                return Err(WarehouseError::BadUrl {
                    url: url.to_owned(),
                    why: "no file path after `duckdb:`".into(),
                });
            }
            return Ok(Warehouse::DuckDb(DuckDbWarehouse::open(path)?));
        }
        if let Some(rest) = url.strip_prefix("bigquery://") {
            #[cfg(feature = "bigquery")]
            {
                let mut w = BigQueryWarehouse::open(
                    url,
                    rest,
                    options.bigquery_endpoint.as_deref(),
                    options.bigquery_location.as_deref(),
                )?;
                if options.migrate {
                    w.migrate()?;
                } else {
                    w.require_migrated()?;
                }
                return Ok(Warehouse::BigQuery(Box::new(w)));
            }
            #[cfg(not(feature = "bigquery"))]
            {
                let _ = (rest, options);
                return Err(WarehouseError::BadUrl {
                    url: url.to_owned(),
                    why: "this playlog was built without BigQuery (the quickstart builds DuckDB only); \
                          build it with its default features, `cargo build --release --bin playlog`"
                        .into(),
                });
            }
        }
        Err(WarehouseError::BadUrl {
            url: url.to_owned(),
            why: "expected duckdb:PATH (for example duckdb:playlog.duckdb) or bigquery://PROJECT/DATASET_PREFIX".into(),
        })
    }

    /// Another handle on the same warehouse, for another thread: a DuckDB connection on the same database
    /// instance (the process stays the file's one writer), or a BigQuery handle with a session of its own.
    pub fn connect(&self) -> Result<Warehouse, WarehouseError> {
        match self {
            Warehouse::DuckDb(w) => Ok(Warehouse::DuckDb(w.connect()?)),
            #[cfg(feature = "bigquery")]
            Warehouse::BigQuery(w) => Ok(Warehouse::BigQuery(Box::new(w.connect()))),
        }
    }

    /// A DuckDB warehouse's connection, for readers that bind their own parameters (`playlog serve`);
    /// `None` for BigQuery.
    pub fn duckdb_connection(&self) -> Option<&duckdb::Connection> {
        match self {
            Warehouse::DuckDb(w) => Some(w.connection()),
            #[cfg(feature = "bigquery")]
            Warehouse::BigQuery(_) => None,
        }
    }

    /// Where the warehouse is, for logs.
    pub fn describe(&self) -> String {
        match self {
            Warehouse::DuckDb(w) => w.describe(),
            #[cfg(feature = "bigquery")]
            Warehouse::BigQuery(w) => w.describe(),
        }
    }

    /// The offsets a consumer group stored, for the partitions it has ever written.
    pub fn stored_offsets(&mut self, group: &str) -> Result<Vec<PartitionOffset>, WarehouseError> {
        match self {
            Warehouse::DuckDb(w) => w.stored_offsets(group),
            #[cfg(feature = "bigquery")]
            Warehouse::BigQuery(w) => w.stored_offsets(group),
        }
    }

    /// The SQL dialect this warehouse speaks, for generated SQL.
    pub fn dialect(&self) -> Dialect {
        match self {
            Warehouse::DuckDb(_) => Dialect::DuckDb,
            #[cfg(feature = "bigquery")]
            Warehouse::BigQuery(_) => Dialect::BigQuery,
        }
    }

    /// What generated SQL puts before a schema name (`raw`, `vault`, `marts`) to name it here: nothing
    /// for DuckDB, `project.prefix_` for BigQuery's datasets.
    pub fn schema_prefix(&self) -> String {
        match self {
            Warehouse::DuckDb(_) => String::new(),
            #[cfg(feature = "bigquery")]
            Warehouse::BigQuery(w) => w.schema_prefix(),
        }
    }

    /// Runs `work` inside one transaction: committed if it returns `Ok`, rolled back otherwise (or if the
    /// process dies midway).
    pub fn transaction<T>(
        &mut self,
        work: impl FnOnce(&mut dyn SqlSession) -> Result<T, WarehouseError>,
    ) -> Result<T, WarehouseError> {
        match self {
            Warehouse::DuckDb(w) => w.transaction(work),
            #[cfg(feature = "bigquery")]
            Warehouse::BigQuery(w) => w.transaction(work),
        }
    }

    /// Runs `work` with each statement committed by itself: for DDL, which BigQuery does not allow inside
    /// a transaction. Session state (temp tables) carries over to later transactions on this handle.
    pub fn autocommit<T>(
        &mut self,
        work: impl FnOnce(&mut dyn SqlSession) -> Result<T, WarehouseError>,
    ) -> Result<T, WarehouseError> {
        match self {
            // DuckDB's DDL is transactional: one transaction is the simplest autocommit.
            Warehouse::DuckDb(w) => w.transaction(work),
            #[cfg(feature = "bigquery")]
            Warehouse::BigQuery(w) => w.autocommit(work),
        }
    }

    /// Runs one query in a transaction of its own and reads back its rows.
    pub fn query(&mut self, sql: &str) -> Result<Rows, WarehouseError> {
        self.transaction(|s| Ok(s.query(sql)?))
    }

    /// Lands the batch's rows and records `offsets` for `group`; rows the warehouse refuses go to
    /// `rejected` before the offsets move. The batch is left as it was, so that a failed write can be
    /// retried with it.
    pub fn write(
        &mut self,
        group: &str,
        batch: &RawBatch,
        offsets: &[OffsetAdvance],
        rejected: &mut dyn FnMut(Vec<Rejected>) -> Result<(), WarehouseError>,
    ) -> Result<Committed, WarehouseError> {
        if take_injected_failure() {
            return Err(WarehouseError::Injected);
        }
        match self {
            Warehouse::DuckDb(w) => {
                let _ = rejected; // DuckDB takes every row its schema admits, or fails the whole batch
                w.write(group, batch, offsets)
            }
            #[cfg(feature = "bigquery")]
            Warehouse::BigQuery(w) => w.write(group, batch, offsets, rejected),
        }
    }
}

/// The warehouse as generated SQL (the vault, checks, reports) runs on it: each adapter's own sessions.
impl playlog_sql::Transact for Warehouse {
    fn dialect(&self) -> Dialect {
        Warehouse::dialect(self)
    }

    fn schema_prefix(&self) -> String {
        Warehouse::schema_prefix(self)
    }

    fn transact(
        &mut self,
        work: &mut dyn FnMut(&mut dyn SqlSession) -> Result<(), SqlError>,
    ) -> Result<(), SqlError> {
        self.adapter().transact(work)
    }

    fn autocommit_each(
        &mut self,
        work: &mut dyn FnMut(&mut dyn SqlSession) -> Result<(), SqlError>,
    ) -> Result<(), SqlError> {
        self.adapter().autocommit_each(work)
    }
}

impl Warehouse {
    fn adapter(&mut self) -> &mut dyn playlog_sql::Transact {
        match self {
            Warehouse::DuckDb(w) => w,
            #[cfg(feature = "bigquery")]
            Warehouse::BigQuery(w) => w.as_mut(),
        }
    }
}

/// Test-only fault injection: the number of writes to fail, read once from the environment. A real full
/// disk or I/O error cannot be produced on demand in a test, so the warehouse-failure test uses this.
static INJECTED_FAILURES: AtomicU64 = AtomicU64::new(u64::MAX);

fn take_injected_failure() -> bool {
    let mut left = INJECTED_FAILURES.load(Ordering::Relaxed);
    if left == u64::MAX {
        left = std::env::var("PLAYLOG_FAULT_WAREHOUSE_WRITES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        INJECTED_FAILURES.store(left, Ordering::Relaxed);
    }
    if left == 0 {
        return false;
    }
    INJECTED_FAILURES.store(left - 1, Ordering::Relaxed);
    true
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
