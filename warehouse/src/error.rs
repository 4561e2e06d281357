/// Warehouse failures, with what to do about them.
#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    #[error("warehouse URL {url:?}: {why}")]
    BadUrl { url: String, why: String },
    #[error(
        "opening DuckDB file {path}: {source}. Is another process (a running consumer, or the duckdb CLI) holding it open?"
    )]
    Open {
        path: String,
        #[source]
        source: duckdb::Error,
    },
    #[error("migrating {what}: {source}")]
    Migrate {
        what: String,
        #[source]
        source: duckdb::Error,
    },
    #[error("writing to the warehouse: {source}")]
    Write {
        #[source]
        source: duckdb::Error,
    },
    #[error("reading stored offsets: {source}")]
    ReadOffsets {
        #[source]
        source: duckdb::Error,
    },
    #[error("building the batch: {0}")]
    Batch(String),
    #[error(
        "{topic}[{partition}] was written by another member since (stored offset {stored:?}, expected {expected:?}); this batch is dropped and re-read"
    )]
    Fenced {
        topic: String,
        partition: i32,
        stored: Option<i64>,
        expected: Option<i64>,
    },
    #[error("injected warehouse failure (PLAYLOG_FAULT_WAREHOUSE_WRITES)")]
    Injected,
    #[error("SQL: {0}")]
    Sql(String),
    /// The warehouse service could not be reached, or asked to slow down: retried with backoff.
    #[error("warehouse unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Auth(String),
}

impl WarehouseError {
    /// Whether trying the same operation again later can succeed: writes can (a lock, a full disk, an I/O
    /// hiccup); a bad URL or a file that will not open cannot.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            WarehouseError::Write { .. }
                | WarehouseError::ReadOffsets { .. }
                | WarehouseError::Injected
                | WarehouseError::Unavailable(_)
        )
    }
}
