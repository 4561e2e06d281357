/// Warehouse failures, with what to do about them.
#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    #[error("warehouse URL {url:?}: {why}")]
    BadUrl { url: String, why: String },
    /// `reason`: DuckDB's message, then what to do, matched to the cause (see [`open_hint`]).
    #[error("opening DuckDB file {path}: {reason}")]
    Open { path: String, reason: String },
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
    /// A schema the step needs is missing, with the command that creates it.
    #[error("{0}")]
    NotMigrated(String),
}

impl WarehouseError {
    /// The same error, saying what was being done.
    pub fn context(self, what: &str) -> WarehouseError {
        match self {
            WarehouseError::Sql(m) => WarehouseError::Sql(format!("{what}: {m}")),
            WarehouseError::Unavailable(m) => WarehouseError::Unavailable(format!("{what}: {m}")),
            other => other,
        }
    }
}

/// The advice for a DuckDB file that will not open, matched to the cause: a missing directory, a lock held
/// by another process, or something else (permissions, a file that is not DuckDB's).
pub fn open_hint(path: &str, message: &str, parent_exists: bool) -> String {
    let lower = message.to_ascii_lowercase();
    if !parent_exists {
        let dir = std::path::Path::new(path)
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        format!(
            "The directory {dir} does not exist: create it, or point --warehouse at a file in an existing one."
        )
    } else if lower.contains("lock") {
        "Another process (a running consumer, or the duckdb CLI) holds it open: DuckDB allows one writing process per file. Stop it, or run the work inside the consumer (--vault-every)."
            .to_owned()
    } else if lower.contains("permission") {
        "Check the file's and its directory's permissions.".to_owned()
    } else {
        "Is it a DuckDB database file (of DuckDB 1.5 or older)?".to_owned()
    }
}

/// DuckDB's classes of error that no retry changes: the statement itself is wrong for this database.
fn refused_as_sql(message: &str) -> bool {
    [
        "Catalog Error",
        "Binder Error",
        "Parser Error",
        "Conversion Error",
    ]
    .iter()
    .any(|class| message.contains(class))
}

/// Whether a warehouse's message says its handle is dead for good (see [`WarehouseError::is_fatal`]),
/// for callers that only have the message (the vault's SQL errors).
pub fn fatal_message(message: &str) -> bool {
    message.contains("database has been invalidated") || message.contains("FATAL Error")
}

impl WarehouseError {
    /// Whether the warehouse handle itself is dead: DuckDB invalidates its whole database instance after a
    /// fatal error (a commit that hit a full disk, an I/O error), and every connection of it then fails
    /// for good. Only a new instance, opened again from the file, can go on.
    pub fn is_fatal(&self) -> bool {
        let message = match self {
            WarehouseError::Write { source }
            | WarehouseError::ReadOffsets { source }
            | WarehouseError::Migrate { source, .. } => source.to_string(),
            WarehouseError::Sql(m) => m.clone(),
            _ => return false,
        };
        fatal_message(&message)
    }

    /// Whether trying the same operation again later can succeed: writes can (a lock, a full disk, an I/O
    /// hiccup, a write-write conflict); a bad URL, a file that will not open, or SQL that DuckDB refuses
    /// as such (a missing table, a type it cannot convert) cannot, and is not retried for ever.
    pub fn is_retriable(&self) -> bool {
        match self {
            WarehouseError::Write { source } | WarehouseError::ReadOffsets { source } => {
                !refused_as_sql(&source.to_string())
            }
            WarehouseError::Injected | WarehouseError::Unavailable(_) => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalidated_duckdb_instance_is_fatal_and_a_busy_one_is_not() {
        let invalidated = WarehouseError::Sql(
            "FATAL Error: Failed: database has been invalidated because of a previous fatal error. The database must be restarted prior to being used again.".into(),
        );
        assert!(invalidated.is_fatal());
        assert!(
            !WarehouseError::Sql("Catalog Error: Table with name x does not exist".into())
                .is_fatal()
        );
        assert!(!WarehouseError::Injected.is_fatal());
    }

    #[test]
    fn open_hints_match_their_cause() {
        assert!(
            open_hint("/no/such/dir/x.duckdb", "IO Error: Cannot open file", false)
                .starts_with("The directory /no/such/dir does not exist")
        );
        assert!(
            open_hint("w.duckdb", "IO Error: Could not set lock on file", true)
                .starts_with("Another process")
        );
        assert!(open_hint("w.duckdb", "IO Error: Permission denied", true).contains("permissions"));
    }
}
