//! DuckDB's SQL.

use super::{Dialect, Layout, Type};

#[derive(Debug)]
pub struct DuckDb;

impl Dialect for DuckDb {
    fn session_settings(&self) -> &'static [&'static str] {
        // Inside the run's transaction, tables just filled look empty to the optimizer, which then rewrites
        // as-of joins into a loop join plus aggregate: 10x slower on a million plays.
        &["SET asof_loop_join_threshold = 0"]
    }

    fn type_name(&self, t: Type) -> &'static str {
        match t {
            Type::Text => "VARCHAR",
            Type::Int => "INTEGER",
            Type::BigInt => "BIGINT",
            Type::Double => "DOUBLE",
            Type::Bool => "BOOLEAN",
            Type::Timestamp => "TIMESTAMP",
            Type::Date => "DATE",
            Type::Binary => "BLOB",
        }
    }

    fn md5_binary(&self, text: &str) -> String {
        format!("unhex(md5({text}))")
    }

    fn binary_from_hex(&self, hex: &str) -> String {
        format!("unhex('{hex}')")
    }

    fn now(&self) -> &'static str {
        "CAST(now() AS TIMESTAMP)"
    }

    fn quote(&self, name: &str) -> String {
        format!("\"{name}\"")
    }

    fn string(&self, text: &str) -> String {
        format!("'{}'", text.replace('\'', "''"))
    }

    fn insert_by_name(&self, table: &str, _columns: &[&str], select: &str) -> String {
        format!("INSERT INTO {table} BY NAME {select}")
    }

    fn star_except(&self, columns: &[&str]) -> String {
        format!("* EXCLUDE ({})", columns.join(", "))
    }

    fn plus_ms(&self, ts: &str, ms: i64) -> String {
        format!("({ts} + INTERVAL ({ms}) MILLISECOND)")
    }

    fn plus_days(&self, ts: &str, days: i64) -> String {
        format!("({ts} + INTERVAL ({days}) DAY)")
    }

    fn table(&self, _prefix: &str, schema: &str, name: &str) -> String {
        format!("{schema}.{name}")
    }

    fn temp_table(&self, name: &str) -> String {
        format!("temp.main.{name}")
    }

    fn create_schema(&self, schema: &str) -> Option<String> {
        Some(format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
    }

    fn table_options(&self, _layout: Layout<'_>) -> String {
        String::new()
    }

    fn asof_left_join(
        &self,
        right: &str,
        alias: &str,
        key: (&str, &str),
        ts: (&str, &str),
    ) -> String {
        format!(
            "ASOF LEFT JOIN {right} {alias} ON {alias}.{} = {} AND {alias}.{} <= {}",
            key.1, key.0, ts.1, ts.0
        )
    }

    fn arg_max(&self, value: &str, by: &str) -> String {
        format!("arg_max({value}, {by})")
    }

    fn date_of(&self, ts: &str) -> String {
        format!("CAST({ts} AS DATE)")
    }

    fn hour_of(&self, ts: &str) -> String {
        format!("date_trunc('hour', {ts})")
    }

    fn iso_weekday(&self, ts: &str) -> String {
        format!("isodow({ts})")
    }

    fn seconds_between(&self, from: &str, to: &str) -> String {
        format!("(epoch_ms({to}) - epoch_ms({from})) / 1000.0")
    }

    fn qualify_needs_where(&self) -> bool {
        false
    }

    fn transactional_ddl(&self) -> bool {
        true
    }
}
