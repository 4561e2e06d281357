//! Which Kafka log a consumer group's stored offsets belong to: the cluster id its brokers reported
//! (`raw._kafka_clusters`), and the deliberate move to another log (`--reset-offsets`). Offsets only mean
//! something in the log they came from; the consumer compares the cluster id before it joins the group.
//!
//! One implementation for both warehouses: plain SQL through each adapter's own transactions.

use crate::{Warehouse, WarehouseError};

impl Warehouse {
    /// The Kafka cluster `group`'s offsets came from, if one was recorded.
    pub fn kafka_cluster(&mut self, group: &str) -> Result<Option<String>, WarehouseError> {
        let sql = format!(
            "SELECT cluster_id FROM {} WHERE consumer_group = {}",
            self.raw_table("_kafka_clusters"),
            self.string_literal(group)
        );
        let rows = self.query(&sql)?;
        Ok(rows
            .first()
            .and_then(|r| r.first())
            .map(ToString::to_string))
    }

    /// Records that `group`'s offsets come from the cluster `cluster_id`.
    pub fn record_kafka_cluster(
        &mut self,
        group: &str,
        cluster_id: &str,
    ) -> Result<(), WarehouseError> {
        let statements = self.cluster_statements(group, Some(cluster_id));
        self.transaction(|s| {
            for sql in &statements {
                s.execute(sql)?;
            }
            Ok(())
        })
    }

    /// A deliberate move to another Kafka log: forgets `group`'s stored offsets (its partitions are read
    /// from the new log's beginning) and records the new cluster id, in one transaction. The raw rows
    /// stay. Returns how many partitions' offsets were forgotten.
    pub fn reset_offsets(
        &mut self,
        group: &str,
        cluster_id: Option<&str>,
    ) -> Result<usize, WarehouseError> {
        let forget = format!(
            "DELETE FROM {} WHERE consumer_group = {}",
            self.raw_table("_kafka_offsets"),
            self.string_literal(group)
        );
        let statements = self.cluster_statements(group, cluster_id);
        self.transaction(|s| {
            let forgotten = s.execute(&forget)?;
            for sql in &statements {
                s.execute(sql)?;
            }
            Ok(forgotten)
        })
    }

    /// Replaces `group`'s recorded cluster (DELETE and INSERT: the same SQL in both dialects).
    fn cluster_statements(&self, group: &str, cluster_id: Option<&str>) -> Vec<String> {
        let table = self.raw_table("_kafka_clusters");
        let group = self.string_literal(group);
        let mut statements = vec![format!(
            "DELETE FROM {table} WHERE consumer_group = {group}"
        )];
        if let Some(id) = cluster_id {
            statements.push(format!(
                "INSERT INTO {table} (consumer_group, cluster_id, recorded_at) VALUES ({group}, {}, CURRENT_TIMESTAMP)",
                self.string_literal(id)
            ));
        }
        statements
    }

    /// A raw table's name as this warehouse's SQL spells it.
    fn raw_table(&self, name: &str) -> String {
        match self {
            Warehouse::DuckDb(_) => format!("raw.{name}"),
            #[cfg(feature = "bigquery")]
            Warehouse::BigQuery(w) => format!("`{}raw.{name}`", w.schema_prefix()),
        }
    }

    /// A string literal in this warehouse's SQL (BigQuery escapes with backslashes, DuckDB doubles quotes).
    fn string_literal(&self, text: &str) -> String {
        match self {
            Warehouse::DuckDb(_) => format!("'{}'", text.replace('\'', "''")),
            #[cfg(feature = "bigquery")]
            Warehouse::BigQuery(_) => crate::bigquery::string(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> (tempfile::TempDir, Warehouse) {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("duckdb:{}", dir.path().join("w.duckdb").display());
        let w = Warehouse::open(&url).expect("open");
        (dir, w)
    }

    #[test]
    fn a_cluster_is_recorded_replaced_and_reset_with_the_offsets() -> Result<(), WarehouseError> {
        let (_dir, mut w) = scratch();
        assert_eq!(w.kafka_cluster("g")?, None);
        w.record_kafka_cluster("g", "cluster-a")?;
        w.record_kafka_cluster("other's", "cluster-o")?;
        assert_eq!(w.kafka_cluster("g")?.as_deref(), Some("cluster-a"));
        assert_eq!(w.kafka_cluster("other's")?.as_deref(), Some("cluster-o"));
        w.query(
            "INSERT INTO raw._kafka_offsets VALUES ('g', 't', 0, 10, now()), ('g', 't', 1, 7, now()), \
             ('other''s', 't', 0, 3, now())",
        )?;
        assert_eq!(w.reset_offsets("g", Some("cluster-b"))?, 2);
        assert_eq!(w.kafka_cluster("g")?.as_deref(), Some("cluster-b"));
        assert!(w.stored_offsets("g")?.is_empty());
        assert_eq!(
            w.stored_offsets("other's")?.len(),
            1,
            "other groups keep theirs"
        );
        assert_eq!(w.reset_offsets("g", None)?, 0);
        assert_eq!(w.kafka_cluster("g")?, None);
        Ok(())
    }
}
