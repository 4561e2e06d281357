//! Everything that differs between warehouses' SQL, in one place: hashing, literals, type names, time
//! arithmetic and the as-of join. The rest of the vault writes SQL through these functions only.
//!
//! Hashing follows AutomateDV, so that a team coming from dbt can compare keys:
//! - a column is standardised as `NULLIF(UPPER(TRIM(CAST(x AS VARCHAR))), '')`;
//! - several columns are joined with `'||'`, NULL written as `'^^'`; a key whose columns are all NULL is NULL;
//! - hashdiff columns are sorted by name;
//! - the hash is MD5, kept as 16 bytes. A NULL key becomes the ghost record's key, sixteen zero bytes.

use playlog_warehouse::Dialect;

/// SQL text for one warehouse dialect.
#[derive(Debug, Clone, Copy)]
pub struct Sql {
    pub dialect: Dialect,
}

impl Sql {
    pub fn new(dialect: Dialect) -> Sql {
        Sql { dialect }
    }

    /// Session settings a run starts with.
    pub fn session_settings(self) -> &'static [&'static str] {
        match self.dialect {
            // Inside the run's transaction, tables just filled look empty to the optimizer, which then
            // rewrites as-of joins into a loop join plus aggregate: 10x slower on a million plays.
            Dialect::DuckDb => &["SET asof_loop_join_threshold = 0"],
        }
    }

    fn string_type(self) -> &'static str {
        match self.dialect {
            Dialect::DuckDb => "VARCHAR",
        }
    }

    fn md5_binary(self, text: &str) -> String {
        match self.dialect {
            Dialect::DuckDb => format!("unhex(md5({text}))"),
        }
    }

    /// `NULLIF(UPPER(TRIM(CAST(x AS VARCHAR))), '')`.
    pub fn standardise(self, column: &str) -> String {
        format!(
            "NULLIF(UPPER(TRIM(CAST({column} AS {}))), '')",
            self.string_type()
        )
    }

    fn concat_with_placeholders(self, columns: &[&str]) -> String {
        let parts: Vec<String> = columns
            .iter()
            .map(|c| format!("COALESCE({}, '^^')", self.standardise(c)))
            .collect();
        format!("CONCAT_WS('||', {})", parts.join(", "))
    }

    /// The hash key of business key columns: NULL when they are all NULL.
    pub fn hash_key(self, columns: &[&str]) -> String {
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
    pub fn hash_key_or_ghost(self, columns: &[&str]) -> String {
        format!("COALESCE({}, {})", self.hash_key(columns), self.ghost_key())
    }

    /// The hashdiff of payload columns, sorted by name.
    pub fn hashdiff(self, columns: &[&str]) -> String {
        let mut sorted = columns.to_vec();
        sorted.sort_unstable();
        self.md5_binary(&self.concat_with_placeholders(&sorted))
    }

    /// The ghost record's key: sixteen zero bytes.
    pub fn ghost_key(self) -> String {
        match self.dialect {
            Dialect::DuckDb => "unhex('00000000000000000000000000000000')".into(),
        }
    }

    pub fn string(self, text: &str) -> String {
        format!("'{}'", text.replace('\'', "''"))
    }

    /// A timestamp literal from `YYYY-MM-DD HH:MM:SS[.ffffff]`.
    pub fn timestamp(self, text: &str) -> String {
        format!("TIMESTAMP {}", self.string(text))
    }

    /// The earliest timestamp the vault uses (ghost records, empty high-water marks).
    pub fn beginning_of_time(self) -> String {
        self.timestamp("1900-01-01 00:00:00")
    }

    /// The open end of an interval.
    pub fn end_of_time(self) -> String {
        self.timestamp("9999-12-31 00:00:00")
    }

    pub fn plus_ms(self, ts: &str, ms: i64) -> String {
        if ms == 0 {
            return ts.to_owned();
        }
        match self.dialect {
            Dialect::DuckDb => format!("({ts} + INTERVAL ({ms}) MILLISECOND)"),
        }
    }

    pub fn table(self, schema: &str, name: &str) -> String {
        match self.dialect {
            Dialect::DuckDb => format!("{schema}.{name}"),
        }
    }

    /// A session-scoped scratch table.
    pub fn temp_table(self, name: &str) -> String {
        match self.dialect {
            Dialect::DuckDb => format!("temp.main.{name}"),
        }
    }

    pub fn create_temp_as(self, name: &str, select: &str) -> String {
        match self.dialect {
            Dialect::DuckDb => format!("CREATE OR REPLACE TEMP TABLE {name} AS {select}"),
        }
    }

    /// A table shaped like a query's result, created empty if it does not exist yet.
    pub fn create_table_like(self, table: &str, select: &str) -> String {
        match self.dialect {
            Dialect::DuckDb => {
                format!("CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM ({select}) LIMIT 0")
            }
        }
    }

    pub fn create_schema(self, schema: &str) -> String {
        match self.dialect {
            Dialect::DuckDb => format!("CREATE SCHEMA IF NOT EXISTS {schema}"),
        }
    }

    /// `left` joined, per `key`, to the newest `right` row at or before `left_ts` (NULLs if none).
    pub fn asof_left_join(
        self,
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
        }
    }

    /// The timestamp one day after a `YYYY-MM-DD HH:MM:SS` literal.
    pub fn day_after(self, text: &str) -> String {
        match self.dialect {
            Dialect::DuckDb => format!("({} + INTERVAL 1 DAY)", self.timestamp(text)),
        }
    }

    /// `value` from the row with the greatest `by`.
    pub fn arg_max(self, value: &str, by: &str) -> String {
        match self.dialect {
            Dialect::DuckDb => format!("arg_max({value}, {by})"),
        }
    }

    pub fn date_of(self, ts: &str) -> String {
        match self.dialect {
            Dialect::DuckDb => format!("CAST({ts} AS DATE)"),
        }
    }

    pub fn hour_of(self, ts: &str) -> String {
        match self.dialect {
            Dialect::DuckDb => format!("date_trunc('hour', {ts})"),
        }
    }

    /// ISO day of the week: 1 = Monday … 7 = Sunday.
    pub fn iso_weekday(self, ts: &str) -> String {
        match self.dialect {
            Dialect::DuckDb => format!("isodow({ts})"),
        }
    }

    pub fn seconds_between(self, from: &str, to: &str) -> String {
        match self.dialect {
            Dialect::DuckDb => format!("(epoch_ms({to}) - epoch_ms({from})) / 1000.0"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashdiff_columns_are_sorted() {
        let sql = Sql::new(Dialect::DuckDb);
        assert_eq!(sql.hashdiff(&["b", "a"]), sql.hashdiff(&["a", "b"]));
        assert!(
            sql.hashdiff(&["b", "a"])
                .find("CAST(a")
                .unwrap_or(usize::MAX)
                < sql.hashdiff(&["b", "a"]).find("CAST(b").unwrap_or(0)
        );
    }
}
