//! The raw tables' columns: the one definition of what a raw row holds. The consumer's batches are built
//! from it, the vault's planner types its tables from it, and a test holds both warehouses' DDL files
//! (`schemas/warehouse/*/001-raw-events.sql` and `004-offer-events.sql`) equal to it.

use crate::Stream;

/// Columns that identify a person: the API serves them only with `--expose-raw`, and the data catalog
/// marks them, wherever they appear (raw, vault or marts).
pub const PERSONAL: [&str; 6] = ["first_name", "last_name", "zip", "lat", "lon", "user_agent"];

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

/// `raw.offer_events`: the offer record's fields, then the Kafka coordinates and load time.
const OFFER: [Column; 9] = [
    col("offer_id", Kind::Text, false),
    col("rule_id", Kind::Text, false),
    col("user_id", Kind::BigInt, false),
    col("session_id", Kind::BigInt, false),
    col("trigger_event_id", Kind::Text, false),
    col("ts", Kind::Timestamp, false),
    col("expires_at", Kind::Timestamp, false),
    col("holdout", Kind::Bool, false),
    col("emitted_at", Kind::Timestamp, false),
];

/// The raw table's columns for a stream, in table order.
pub fn columns(stream: Stream) -> Vec<Column> {
    let extra: &[Column] = match stream {
        Stream::Offer => return OFFER.iter().chain(META.iter()).copied().collect(),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A column as a DDL file declares it: name, type, nullable.
    type Declared = (String, String, bool);

    /// `(table, [(column, type, nullable)])` of every `CREATE TABLE` in a DDL file, read line by line: the
    /// files put one column per line.
    fn tables(ddl: &str) -> Vec<(String, Vec<Declared>)> {
        let mut out: Vec<(String, Vec<Declared>)> = Vec::new();
        for line in ddl.lines() {
            let code = line.split("--").next().unwrap_or("").trim();
            if let Some(rest) = code.strip_prefix("CREATE TABLE IF NOT EXISTS ") {
                let name = rest.split_whitespace().next().unwrap_or("");
                let name = name.trim_matches('`').rsplit('.').next().unwrap_or("");
                out.push((name.to_owned(), Vec::new()));
            } else if let Some((_, columns)) = out.last_mut()
                && !code.is_empty()
                && !code.starts_with(')')
                && !code.starts_with("PARTITION")
                && !code.starts_with("CLUSTER")
            {
                let mut words = code.trim_end_matches(',').split_whitespace();
                let (Some(name), Some(kind)) = (words.next(), words.next()) else {
                    continue;
                };
                let nullable = !code.contains("NOT NULL");
                columns.push((name.to_owned(), kind.to_owned(), nullable));
            }
        }
        out
    }

    fn check(ddl: &str, type_name: fn(Kind) -> &'static str) {
        let tables = tables(ddl);
        for stream in Stream::ALL {
            let (_, columns) = tables
                .iter()
                .find(|(t, _)| t == stream.topic())
                .unwrap_or_else(|| panic!("no table {} in the DDL", stream.topic()));
            let expected: Vec<Declared> = super::columns(stream)
                .iter()
                .map(|c| (c.name.to_owned(), type_name(c.kind).to_owned(), c.nullable))
                .collect();
            assert_eq!(columns, &expected, "{}", stream.topic());
        }
    }

    #[test]
    fn duckdb_ddl_matches_the_catalog() {
        check(
            concat!(
                include_str!("../../schemas/warehouse/duckdb/001-raw-events.sql"),
                include_str!("../../schemas/warehouse/duckdb/004-offer-events.sql"),
            ),
            |k| match k {
                Kind::Text => "VARCHAR",
                Kind::Timestamp => "TIMESTAMP",
                Kind::BigInt => "BIGINT",
                Kind::Int => "INTEGER",
                Kind::Double => "DOUBLE",
                Kind::Bool => "BOOLEAN",
            },
        );
    }

    #[test]
    fn bigquery_ddl_matches_the_catalog() {
        check(
            concat!(
                include_str!("../../schemas/warehouse/bigquery/001-raw-events.sql"),
                include_str!("../../schemas/warehouse/bigquery/004-offer-events.sql"),
            ),
            |k| match k {
                Kind::Text => "STRING",
                Kind::Timestamp => "TIMESTAMP",
                Kind::BigInt | Kind::Int => "INT64",
                Kind::Double => "FLOAT64",
                Kind::Bool => "BOOL",
            },
        );
    }
}
