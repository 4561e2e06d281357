//! The SQL interface between Playlog's SQL generators (the vault, its checks and reports) and the
//! warehouses that run it. It holds no warehouse, so that a planner builds and tests without DuckDB's
//! library or a BigQuery client:
//! - [`SqlSession`]: statements inside one transaction, with values read back in one small [`Value`] shape;
//! - [`Transact`]: a warehouse seen as sessions, its dialect and where its schemas live;
//! - [`migrate`]: numbered migrations applied once each, the one mechanism for raw and vault tables.

pub mod migrate;
mod session;
mod value;

pub use session::{DialectName, SqlError, SqlSession, Transact, autocommit, transaction};
pub use value::{Rows, Value, timestamp_text};
