//! BigQuery's GoogleSQL.

use super::{Dialect, Layout, Partition, Type};

#[derive(Debug)]
pub struct BigQuery;

impl Dialect for BigQuery {
    fn session_settings(&self) -> &'static [&'static str] {
        &[]
    }

    fn type_name(&self, t: Type) -> &'static str {
        match t {
            Type::Text => "STRING",
            Type::Int | Type::BigInt => "INT64",
            Type::Double => "FLOAT64",
            Type::Bool => "BOOL",
            Type::Timestamp => "TIMESTAMP",
            Type::Date => "DATE",
            Type::Binary => "BYTES",
        }
    }

    fn md5_binary(&self, text: &str) -> String {
        format!("MD5({text})")
    }

    fn binary_from_hex(&self, hex: &str) -> String {
        format!("FROM_HEX('{hex}')")
    }

    fn now(&self) -> &'static str {
        "CURRENT_TIMESTAMP()"
    }

    fn quote(&self, name: &str) -> String {
        format!("`{name}`")
    }

    fn string(&self, text: &str) -> String {
        format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
    }

    /// No `INSERT … BY NAME`: the columns are named on both sides.
    fn insert_by_name(&self, table: &str, columns: &[&str], select: &str) -> String {
        let columns: Vec<String> = columns.iter().map(|c| self.quote(c)).collect();
        let columns = columns.join(", ");
        format!("INSERT INTO {table} ({columns}) SELECT {columns} FROM ({select}) AS _rows")
    }

    fn star_except(&self, columns: &[&str]) -> String {
        format!("* EXCEPT ({})", columns.join(", "))
    }

    fn plus_ms(&self, ts: &str, ms: i64) -> String {
        format!("TIMESTAMP_ADD({ts}, INTERVAL {ms} MILLISECOND)")
    }

    fn plus_days(&self, ts: &str, days: i64) -> String {
        format!("TIMESTAMP_ADD({ts}, INTERVAL {days} DAY)")
    }

    fn table(&self, prefix: &str, schema: &str, name: &str) -> String {
        format!("`{prefix}{schema}.{name}`")
    }

    /// A session's temp tables are named bare.
    fn temp_table(&self, name: &str) -> String {
        format!("_playlog_{name}")
    }

    /// Datasets are made when the warehouse opens.
    fn create_schema(&self, _schema: &str) -> Option<String> {
        None
    }

    /// Partitioned by day and clustered, so that reads by date or key prune.
    fn table_options(&self, layout: Layout<'_>) -> String {
        let mut options = String::new();
        match layout.partition {
            Some(Partition::Date(c)) => options.push_str(&format!(" PARTITION BY {c}")),
            Some(Partition::DayOf(c)) => options.push_str(&format!(" PARTITION BY DATE({c})")),
            None => {}
        }
        if let Some(c) = layout.cluster {
            options.push_str(&format!(" CLUSTER BY {c}"));
        }
        options
    }

    fn arg_max(&self, value: &str, by: &str) -> String {
        format!("MAX_BY({value}, {by})")
    }

    fn first_value(&self, value: &str, order_by: &[&str]) -> String {
        format!(
            "ARRAY_AGG({value} ORDER BY {} LIMIT 1)[OFFSET(0)]",
            order_by.join(", ")
        )
    }

    fn date_of(&self, ts: &str) -> String {
        format!("DATE({ts})")
    }

    fn hour_of(&self, ts: &str) -> String {
        format!("TIMESTAMP_TRUNC({ts}, HOUR)")
    }

    /// DAYOFWEEK is 1 = Sunday … 7 = Saturday.
    fn iso_weekday(&self, ts: &str) -> String {
        format!("(MOD(EXTRACT(DAYOFWEEK FROM {ts}) + 5, 7) + 1)")
    }

    fn seconds_between(&self, from: &str, to: &str) -> String {
        format!("TIMESTAMP_DIFF({to}, {from}, MILLISECOND) / 1000.0")
    }

    /// BigQuery accepts QUALIFY only with a WHERE, GROUP BY or HAVING clause.
    fn qualify_needs_where(&self) -> bool {
        true
    }

    /// Raw tables are partitioned by load day: a day before the newest staged load prunes every older
    /// partition and allows a day of clock skew between consumer pods.
    fn load_time_window(&self, mark: &str) -> Option<String> {
        Some(format!("TIMESTAMP_SUB({mark}, INTERVAL 1 DAY)"))
    }

    fn rebuild_vaults_without_ledger(&self) -> bool {
        false
    }

    fn transactional_ddl(&self) -> bool {
        false
    }
}
