//! Running generated SQL (the vault, the checks, reports) against a warehouse, with values read back in one
//! small portable shape.

use std::fmt;

use crate::WarehouseError;

/// One value read back from a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    Bytes(Vec<u8>),
}

impl Value {
    /// The value as an integer, if it is one (or a float with no fraction, or numeric text).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Float(f) if f.fract() == 0.0 => Some(*f as i64),
            Value::Text(t) => t.parse().ok(),
            Value::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Text(t) => t.parse().ok(),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Text(t) => f.write_str(t),
            Value::Bytes(b) => {
                for byte in b {
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
        }
    }
}

/// A query's rows.
pub type Rows = Vec<Vec<Value>>;

/// Statements run inside one warehouse transaction.
pub trait SqlSession {
    /// Runs one statement; returns the rows it changed (0 for DDL).
    fn execute(&mut self, sql: &str) -> Result<usize, WarehouseError>;
    /// Runs one query and reads back all of its rows.
    fn query(&mut self, sql: &str) -> Result<Rows, WarehouseError>;
    /// A table's column names, in order: for inserts that name their columns (BigQuery has no
    /// `INSERT … BY NAME`).
    fn columns(&mut self, table: &str) -> Result<Vec<String>, WarehouseError>;
}

/// A timestamp as both warehouses' values read back: `YYYY-MM-DD HH:MM:SS[.fff…]`, UTC, with as many
/// fraction digits as needed. Generated SQL turns it back into a literal.
pub fn timestamp_text(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros).map_or_else(
        || micros.to_string(),
        |t| t.naive_utc().format("%Y-%m-%d %H:%M:%S%.f").to_string(),
    )
}

/// A SQL statement that failed, with the statement's start for context.
pub(crate) fn sql_error(sql: &str, source: impl fmt::Display) -> WarehouseError {
    let head: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    let head: String = head.chars().take(160).collect();
    WarehouseError::Sql(format!("{source}\n  in: {head}"))
}
