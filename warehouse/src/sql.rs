//! The SQL interface (`playlog-sql`) as the warehouse adapters implement it, and the conversions between
//! its errors and the warehouse's.

pub use playlog_sql::{Rows, SqlError, SqlSession, Value, timestamp_text};

use crate::WarehouseError;

/// A SQL statement that failed, with the statement's start for context.
pub(crate) fn sql_error(sql: &str, source: impl std::fmt::Display) -> SqlError {
    SqlError::in_statement(sql, source)
}

impl From<SqlError> for WarehouseError {
    fn from(e: SqlError) -> WarehouseError {
        match e {
            SqlError::Statement(m) => WarehouseError::Sql(m),
            SqlError::Unavailable(m) => WarehouseError::Unavailable(m),
            SqlError::Warehouse(m) => WarehouseError::Sql(m),
        }
    }
}

impl From<WarehouseError> for SqlError {
    fn from(e: WarehouseError) -> SqlError {
        match e {
            WarehouseError::Sql(m) => SqlError::Statement(m),
            WarehouseError::Unavailable(m) => SqlError::Unavailable(m),
            other if other.is_retriable() => SqlError::Unavailable(other.to_string()),
            other => SqlError::Warehouse(other.to_string()),
        }
    }
}
