//! Warehouses behind one interface, chosen by URL scheme. Today: DuckDB (`duckdb:PATH`), embedded.
//!
//! Exactly-once shows in the signature: [`Warehouse::write`] takes the rows *and* the Kafka offsets they
//! advance, and commits both in one transaction.

mod duckdb_warehouse;
mod error;
pub mod raw_batch;
mod sql;

pub use duckdb_warehouse::DuckDbWarehouse;
pub use error::WarehouseError;
pub use raw_batch::{KafkaMeta, RawBatch};
pub use sql::{Rows, SqlSession, Value};

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
    pub rows: [u64; 4],
    /// The batch's load time (`_loaded_at`), epoch milliseconds UTC.
    pub loaded_at: i64,
}

/// The SQL dialects generated SQL is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    DuckDb,
}

/// A warehouse, dispatched by a closed enum: two backends, not a plugin market.
pub enum Warehouse {
    DuckDb(DuckDbWarehouse),
}

impl Warehouse {
    /// Opens the warehouse a URL names and brings its raw schema up to date, idempotently.
    ///
    /// `duckdb:PATH` (or `duckdb://PATH`) opens or creates an embedded DuckDB file.
    pub fn open(url: &str) -> Result<Warehouse, WarehouseError> {
        if let Some(path) = url
            .strip_prefix("duckdb://")
            .or_else(|| url.strip_prefix("duckdb:"))
        {
            if path.is_empty() {
                return Err(WarehouseError::BadUrl {
                    url: url.to_owned(),
                    why: "no file path after `duckdb:`".into(),
                });
            }
            return Ok(Warehouse::DuckDb(DuckDbWarehouse::open(path)?));
        }
        if url.starts_with("bigquery://") {
            return Err(WarehouseError::BadUrl {
                url: url.to_owned(),
                why: "BigQuery is not supported yet; use duckdb:PATH".into(),
            });
        }
        Err(WarehouseError::BadUrl {
            url: url.to_owned(),
            why: "expected duckdb:PATH, for example duckdb:playlog.duckdb".into(),
        })
    }

    /// Where the warehouse is, for logs.
    pub fn describe(&self) -> String {
        match self {
            Warehouse::DuckDb(w) => w.describe(),
        }
    }

    /// The offsets a consumer group stored, for the partitions it has ever written.
    pub fn stored_offsets(&mut self, group: &str) -> Result<Vec<PartitionOffset>, WarehouseError> {
        match self {
            Warehouse::DuckDb(w) => w.stored_offsets(group),
        }
    }

    /// The SQL dialect this warehouse speaks, for generated SQL.
    pub fn dialect(&self) -> Dialect {
        match self {
            Warehouse::DuckDb(_) => Dialect::DuckDb,
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
        }
    }

    /// Runs one query in a transaction of its own and reads back its rows.
    pub fn query(&mut self, sql: &str) -> Result<Rows, WarehouseError> {
        self.transaction(|s| s.query(sql))
    }

    /// Appends the batch's rows and records `offsets` for `group`, atomically.
    /// The batch is left as it was, so that a failed write can be retried with it.
    pub fn write(
        &mut self,
        group: &str,
        batch: &RawBatch,
        offsets: &[OffsetAdvance],
    ) -> Result<Committed, WarehouseError> {
        match self {
            Warehouse::DuckDb(w) => w.write(group, batch, offsets),
        }
    }
}
