//! Everything that differs between warehouses' SQL, in one place: hashing, literals, type names, names of
//! schemas and scratch tables, time arithmetic and the as-of join. The rest of the vault writes SQL through
//! these functions only, plus the ANSI SQL both DuckDB and BigQuery accept (QUALIFY included).
//!
//! Hashing follows AutomateDV, so that a team coming from dbt can compare keys:
//! - a column is standardised as `NULLIF(UPPER(TRIM(CAST(x AS VARCHAR))), '')`;
//! - several columns are joined with `'||'`, NULL written as `'^^'`; a key whose columns are all NULL is NULL;
//! - hashdiff columns are sorted by name;
//! - the hash is MD5, kept as 16 bytes. A NULL key becomes the ghost record's key, sixteen zero bytes.

use playlog_sql::{DialectName as Dialect, SqlError, SqlSession, Transact};

/// SQL text for one warehouse dialect.
#[derive(Debug, Clone)]
pub struct Sql {
    pub dialect: Dialect,
    /// Put before `raw`, `vault` and `marts` to name them: nothing in DuckDB, `project.prefix_` in BigQuery.
    schema_prefix: String,
}

impl Sql {
    pub fn new(dialect: Dialect, schema_prefix: &str) -> Sql {
        Sql {
            dialect,
            schema_prefix: schema_prefix.to_owned(),
        }
    }

    pub fn for_warehouse(warehouse: &dyn Transact) -> Sql {
        Sql::new(warehouse.dialect(), &warehouse.schema_prefix())
    }

    /// Session settings a run starts with.
    pub fn session_settings(&self) -> &'static [&'static str] {
        match self.dialect {
            // Inside the run's transaction, tables just filled look empty to the optimizer, which then
            // rewrites as-of joins into a loop join plus aggregate: 10x slower on a million plays.
            Dialect::DuckDb => &["SET asof_loop_join_threshold = 0"],
            Dialect::BigQuery => &[],
        }
    }

    pub fn string_type(&self) -> &'static str {
        match self.dialect {
            Dialect::DuckDb => "VARCHAR",
            Dialect::BigQuery => "STRING",
        }
    }

    pub fn int_type(&self) -> &'static str {
        match self.dialect {
            Dialect::DuckDb => "BIGINT",
            Dialect::BigQuery => "INT64",
        }
    }

    pub fn float_type(&self) -> &'static str {
        match self.dialect {
            Dialect::DuckDb => "DOUBLE",
            Dialect::BigQuery => "FLOAT64",
        }
    }

    fn md5_binary(&self, text: &str) -> String {
        match self.dialect {
            Dialect::DuckDb => format!("unhex(md5({text}))"),
            Dialect::BigQuery => format!("MD5({text})"),
        }
    }

    /// The current time, as a TIMESTAMP (UTC).
    pub fn now(&self) -> &'static str {
        match self.dialect {
            Dialect::DuckDb => "CAST(now() AS TIMESTAMP)",
            Dialect::BigQuery => "CURRENT_TIMESTAMP()",
        }
    }

    /// A quoted identifier.
    pub fn quote(&self, name: &str) -> String {
        match self.dialect {
            Dialect::DuckDb => format!("\"{name}\""),
            Dialect::BigQuery => format!("`{name}`"),
        }
    }

    /// Inserts a query's rows by column name (BigQuery has no `INSERT … BY NAME`): the table's columns
    /// are read, then named on both sides.
    pub fn insert_by_name(
        &self,
        s: &mut dyn SqlSession,
        table: &str,
        select: &str,
    ) -> Result<usize, SqlError> {
        let columns: Vec<String> = s.columns(table)?.iter().map(|c| self.quote(c)).collect();
        let columns = columns.join(", ");
        s.execute(&format!(
            "INSERT INTO {table} ({columns}) SELECT {columns} FROM ({select}) AS _rows"
        ))
    }

    /// `*` without some columns.
    pub fn star_except(&self, columns: &[&str]) -> String {
        let word = match self.dialect {
            Dialect::DuckDb => "EXCLUDE",
            Dialect::BigQuery => "EXCEPT",
        };
        format!("* {word} ({})", columns.join(", "))
    }

    /// `NULLIF(UPPER(TRIM(CAST(x AS VARCHAR))), '')`.
    pub fn standardise(&self, column: &str) -> String {
        format!(
            "NULLIF(UPPER(TRIM(CAST({column} AS {}))), '')",
            self.string_type()
        )
    }

    fn concat_with_placeholders(&self, columns: &[&str]) -> String {
        // CONCAT rather than CONCAT_WS (not in BigQuery): every part is non-NULL here, so they agree.
        let parts: Vec<String> = columns
            .iter()
            .map(|c| format!("COALESCE({}, '^^')", self.standardise(c)))
            .collect();
        format!("CONCAT({})", parts.join(", '||', "))
    }

    /// The hash key of business key columns: NULL when they are all NULL.
    pub fn hash_key(&self, columns: &[&str]) -> String {
        match columns {
            [one] => self.md5_binary(&self.standardise(one)),
            _ => {
                let all_null = vec!["^^"; columns.len()].join("||");
                self.md5_binary(&format!(
                    "NULLIF({}, '{all_null}')",
                    self.concat_with_placeholders(columns)
                ))
            }
        }
    }

    /// The hash key, with the ghost record's key for NULL (guests, logged-out users).
    pub fn hash_key_or_ghost(&self, columns: &[&str]) -> String {
        format!("COALESCE({}, {})", self.hash_key(columns), self.ghost_key())
    }

    /// The hashdiff of payload columns, sorted by name.
    pub fn hashdiff(&self, columns: &[&str]) -> String {
        let mut sorted = columns.to_vec();
        sorted.sort_unstable();
        self.md5_binary(&self.concat_with_placeholders(&sorted))
    }

    /// The ghost record's key: sixteen zero bytes.
    pub fn ghost_key(&self) -> String {
        match self.dialect {
            Dialect::DuckDb => "unhex('00000000000000000000000000000000')".into(),
            Dialect::BigQuery => "FROM_HEX('00000000000000000000000000000000')".into(),
        }
    }

    pub fn string(&self, text: &str) -> String {
        match self.dialect {
            Dialect::DuckDb => format!("'{}'", text.replace('\'', "''")),
            Dialect::BigQuery => format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'")),
        }
    }

    /// A timestamp literal from `YYYY-MM-DD HH:MM:SS[.ffffff]`.
    pub fn timestamp(&self, text: &str) -> String {
        format!("TIMESTAMP {}", self.string(text))
    }

    /// The earliest timestamp the vault uses (ghost records, empty high-water marks).
    pub fn beginning_of_time(&self) -> String {
        self.timestamp("1900-01-01 00:00:00")
    }

    /// The open end of an interval.
    pub fn end_of_time(&self) -> String {
        self.timestamp("9999-12-31 00:00:00")
    }

    pub fn plus_ms(&self, ts: &str, ms: i64) -> String {
        if ms == 0 {
            return ts.to_owned();
        }
        match self.dialect {
            Dialect::DuckDb => format!("({ts} + INTERVAL ({ms}) MILLISECOND)"),
            Dialect::BigQuery => format!("TIMESTAMP_ADD({ts}, INTERVAL {ms} MILLISECOND)"),
        }
    }

    pub fn table(&self, schema: &str, name: &str) -> String {
        match self.dialect {
            Dialect::DuckDb => format!("{schema}.{name}"),
            Dialect::BigQuery => format!("`{}{schema}.{name}`", self.schema_prefix),
        }
    }

    /// A session-scoped scratch table.
    pub fn temp_table(&self, name: &str) -> String {
        match self.dialect {
            Dialect::DuckDb => format!("temp.main.{name}"),
            // A BigQuery session's temp tables are named bare.
            Dialect::BigQuery => format!("_playlog_{name}"),
        }
    }

    pub fn create_temp_as(&self, name: &str, select: &str) -> String {
        format!("CREATE OR REPLACE TEMP TABLE {name} AS {select}")
    }

    /// A table shaped like a query's result, created empty if it does not exist yet. In BigQuery it is
    /// partitioned by day of `layout.partition` (a DATE or TIMESTAMP column) and clustered by
    /// `layout.cluster`, so that reads by date or key prune.
    pub fn create_table_like(&self, table: &str, select: &str, layout: Layout<'_>) -> String {
        match self.dialect {
            Dialect::DuckDb => {
                format!("CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM ({select}) LIMIT 0")
            }
            Dialect::BigQuery => {
                let mut options = String::new();
                match layout.partition {
                    Some(Partition::Date(c)) => options.push_str(&format!(" PARTITION BY {c}")),
                    Some(Partition::DayOf(c)) => {
                        options.push_str(&format!(" PARTITION BY DATE({c})"))
                    }
                    None => {}
                }
                if let Some(c) = layout.cluster {
                    options.push_str(&format!(" CLUSTER BY {c}"));
                }
                format!(
                    "CREATE TABLE IF NOT EXISTS {table}{options} AS SELECT * FROM ({select}) LIMIT 0"
                )
            }
        }
    }

    /// DDL for a schema, where the warehouse has schemas to create (BigQuery's datasets are made when the
    /// warehouse opens).
    pub fn create_schema(&self, schema: &str) -> Option<String> {
        match self.dialect {
            Dialect::DuckDb => Some(format!("CREATE SCHEMA IF NOT EXISTS {schema}")),
            Dialect::BigQuery => None,
        }
    }

    /// `left` joined, per `key`, to the newest `right` row at or before `left_ts` (NULLs if none).
    pub fn asof_left_join(
        &self,
        right: &str,
        alias: &str,
        key: (&str, &str),
        ts: (&str, &str),
    ) -> String {
        match self.dialect {
            Dialect::DuckDb => format!(
                "ASOF LEFT JOIN {right} {alias} ON {alias}.{} = {} AND {alias}.{} <= {}",
                key.1, key.0, ts.1, ts.0
            ),
            // No ASOF JOIN: each right row's interval ends where the key's next row starts (LEAD), and the
            // left row joins the one interval holding its time. Rows with equal start times get empty
            // intervals but the last, so at most one row matches, as with ASOF.
            Dialect::BigQuery => format!(
                "LEFT JOIN (SELECT *, LEAD({t}) OVER (PARTITION BY {k} ORDER BY {t}, load_date) AS _asof_until FROM {right}) {alias} \
                 ON {alias}.{k} = {left_key} AND {alias}.{t} <= {left_ts} AND ({alias}._asof_until IS NULL OR {left_ts} < {alias}._asof_until)",
                k = key.1,
                left_key = key.0,
                t = ts.1,
                left_ts = ts.0,
            ),
        }
    }

    /// The timestamp one day after a `YYYY-MM-DD HH:MM:SS` literal.
    pub fn day_after(&self, text: &str) -> String {
        match self.dialect {
            Dialect::DuckDb => format!("({} + INTERVAL 1 DAY)", self.timestamp(text)),
            Dialect::BigQuery => format!("TIMESTAMP_ADD({}, INTERVAL 1 DAY)", self.timestamp(text)),
        }
    }

    /// `value` from the row with the greatest `by`.
    pub fn arg_max(&self, value: &str, by: &str) -> String {
        match self.dialect {
            Dialect::DuckDb => format!("arg_max({value}, {by})"),
            Dialect::BigQuery => format!("MAX_BY({value}, {by})"),
        }
    }

    pub fn date_of(&self, ts: &str) -> String {
        match self.dialect {
            Dialect::DuckDb => format!("CAST({ts} AS DATE)"),
            Dialect::BigQuery => format!("DATE({ts})"),
        }
    }

    pub fn hour_of(&self, ts: &str) -> String {
        match self.dialect {
            Dialect::DuckDb => format!("date_trunc('hour', {ts})"),
            Dialect::BigQuery => format!("TIMESTAMP_TRUNC({ts}, HOUR)"),
        }
    }

    /// ISO day of the week: 1 = Monday … 7 = Sunday.
    pub fn iso_weekday(&self, ts: &str) -> String {
        match self.dialect {
            Dialect::DuckDb => format!("isodow({ts})"),
            // DAYOFWEEK is 1 = Sunday … 7 = Saturday.
            Dialect::BigQuery => format!("(MOD(EXTRACT(DAYOFWEEK FROM {ts}) + 5, 7) + 1)"),
        }
    }

    pub fn seconds_between(&self, from: &str, to: &str) -> String {
        match self.dialect {
            Dialect::DuckDb => format!("(epoch_ms({to}) - epoch_ms({from})) / 1000.0"),
            Dialect::BigQuery => format!("TIMESTAMP_DIFF({to}, {from}, MILLISECOND) / 1000.0"),
        }
    }
}

/// How a table is laid out in BigQuery: partitioned by day and clustered, for cheap reads.
#[derive(Debug, Clone, Copy, Default)]
pub struct Layout<'a> {
    pub partition: Option<Partition<'a>>,
    pub cluster: Option<&'a str>,
}

#[derive(Debug, Clone, Copy)]
pub enum Partition<'a> {
    /// A DATE column.
    Date(&'a str),
    /// The day of a TIMESTAMP column.
    DayOf(&'a str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashdiff_columns_are_sorted() {
        let sql = Sql::new(Dialect::DuckDb, "");
        assert_eq!(sql.hashdiff(&["b", "a"]), sql.hashdiff(&["a", "b"]));
        assert!(
            sql.hashdiff(&["b", "a"])
                .find("CAST(a")
                .unwrap_or(usize::MAX)
                < sql.hashdiff(&["b", "a"]).find("CAST(b").unwrap_or(0)
        );
    }
}
