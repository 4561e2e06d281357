//! The raw tables' columns: the one definition of what a raw row holds. The consumer's batches are built
//! from it, the vault's planner types its tables from it, and a test holds both warehouses' DDL files
//! (`schemas/warehouse/*/001-raw-events.sql`) equal to it.

use crate::Stream;

/// A raw column's type, named by what it holds (each warehouse spells it its own way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Timestamp,
    BigInt,
    Int,
    Double,
    Bool,
}

/// One raw-table column.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub nullable: bool,
}

const fn col(name: &'static str, kind: Kind, nullable: bool) -> Column {
    Column {
        name,
        kind,
        nullable,
    }
}

const COMMON: [Column; 16] = [
    col("event_id", Kind::Text, false),
    col("ts", Kind::Timestamp, false),
    col("session_id", Kind::BigInt, false),
    col("item_in_session", Kind::Int, false),
    col("level", Kind::Text, false),
    col("user_id", Kind::BigInt, true),
    col("first_name", Kind::Text, true),
    col("last_name", Kind::Text, true),
    col("gender", Kind::Text, true),
    col("registration", Kind::Timestamp, true),
    col("zip", Kind::Text, false),
    col("city", Kind::Text, false),
    col("state", Kind::Text, false),
    col("lat", Kind::Double, false),
    col("lon", Kind::Double, false),
    col("user_agent", Kind::Text, false),
];

const META: [Column; 5] = [
    col("_topic", Kind::Text, false),
    col("_partition", Kind::Int, false),
    col("_offset", Kind::BigInt, false),
    col("_kafka_ts", Kind::Timestamp, true),
    col("_loaded_at", Kind::Timestamp, false),
];

/// The raw table's columns for a stream, in table order.
pub fn columns(stream: Stream) -> Vec<Column> {
    let extra: &[Column] = match stream {
        Stream::Listen => &[
            col("artist", Kind::Text, false),
            col("song", Kind::Text, false),
            col("duration", Kind::Double, false),
            col("auth", Kind::Text, false),
        ],
        Stream::PageView => &[
            col("page", Kind::Text, false),
            col("auth", Kind::Text, false),
            col("method", Kind::Text, false),
            col("status", Kind::Int, false),
            col("artist", Kind::Text, true),
            col("song", Kind::Text, true),
            col("duration", Kind::Double, true),
        ],
        Stream::Auth => &[col("success", Kind::Bool, false)],
        Stream::StatusChange => &[col("auth", Kind::Text, false)],
    };
    COMMON
        .iter()
        .chain(extra)
        .chain(META.iter())
        .copied()
        .collect()
}
