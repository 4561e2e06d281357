//! DuckDB, embedded: one file, one writer process.

use duckdb::{Connection, params};
use playlog_sql::migrate::{self, Ledger, Migration};

use crate::raw_batch::RawBatch;
use crate::sql::{Rows, SqlError, SqlSession, Value, sql_error, timestamp_text};
use crate::{Committed, OffsetAdvance, PartitionOffset, WarehouseError};

/// The DDL, numbered and applied once each, in order. Every file is idempotent too (`IF NOT EXISTS`).
const MIGRATIONS: [(&str, &str); 4] = [
    (
        "001-raw-events",
        include_str!("../../schemas/warehouse/duckdb/001-raw-events.sql"),
    ),
    (
        "002-kafka-offsets",
        include_str!("../../schemas/warehouse/duckdb/002-kafka-offsets.sql"),
    ),
    (
        "003-kafka-clusters",
        include_str!("../../schemas/warehouse/duckdb/003-kafka-clusters.sql"),
    ),
    (
        "004-offer-events",
        include_str!("../../schemas/warehouse/duckdb/004-offer-events.sql"),
    ),
];

pub struct DuckDbWarehouse {
    path: String,
    conn: Connection,
    /// The last batch's load time: each batch gets a later one, even within a millisecond, so that the
    /// vault's high-water mark (`_loaded_at > mark`) never misses a batch.
    last_loaded_at: i64,
}

impl DuckDbWarehouse {
    pub fn open(path: &str) -> Result<DuckDbWarehouse, WarehouseError> {
        let conn = Connection::open(path).map_err(|source| {
            let parent_exists = std::path::Path::new(path)
                .parent()
                .is_none_or(|p| p.as_os_str().is_empty() || p.exists());
            let message = source.to_string();
            WarehouseError::Open {
                path: path.to_owned(),
                reason: format!(
                    "{message}. {}",
                    crate::error::open_hint(path, &message, parent_exists)
                ),
            }
        })?;
        let mut warehouse = DuckDbWarehouse {
            path: path.to_owned(),
            conn,
            last_loaded_at: 0,
        };
        warehouse.migrate()?;
        Ok(warehouse)
    }

    /// Another connection on the same database instance, for another thread: DuckDB allows one writing
    /// process per file, and connections of one instance run transactions side by side (appends never
    /// conflict; two writers of one offsets row do, and the later commit fails).
    pub fn connect(&self) -> Result<DuckDbWarehouse, WarehouseError> {
        let conn = self
            .conn
            .try_clone()
            .map_err(|source| WarehouseError::Open {
                path: self.path.clone(),
                reason: format!("another connection: {source}"),
            })?;
        Ok(DuckDbWarehouse {
            path: self.path.clone(),
            conn,
            last_loaded_at: self.last_loaded_at,
        })
    }

    pub fn describe(&self) -> String {
        format!("duckdb:{}", self.path)
    }

    /// Applies the raw schema's pending migrations (the shared mechanism of `playlog_sql::migrate`).
    fn migrate(&mut self) -> Result<(), WarehouseError> {
        self.conn
            .execute_batch("CREATE SCHEMA IF NOT EXISTS raw")
            .map_err(|source| WarehouseError::Migrate {
                what: "the raw schema".into(),
                source,
            })?;
        let migrations: Vec<Migration> = MIGRATIONS
            .iter()
            .map(|(name, file)| Migration::new(*name, migrate::statements(file)))
            .collect();
        let ledger = Ledger {
            table: "raw._schema_migrations".into(),
            text_type: "VARCHAR",
        };
        let applied = migrate::apply(self, &ledger, &migrations, true)
            .map_err(|e| WarehouseError::Sql(format!("migrating the raw schema: {e}")))?;
        for name in applied {
            tracing::info!(migration = name, "applied");
        }
        Ok(())
    }

    pub fn stored_offsets(&mut self, group: &str) -> Result<Vec<PartitionOffset>, WarehouseError> {
        let read = |source| WarehouseError::ReadOffsets { source };
        let mut stmt = self
            .conn
            .prepare_cached("SELECT topic, \"partition\", next_offset FROM raw._kafka_offsets WHERE consumer_group = ?")
            .map_err(read)?;
        let rows = stmt
            .query_map(params![group], |r| {
                Ok(PartitionOffset {
                    topic: r.get(0)?,
                    partition: r.get(1)?,
                    next_offset: r.get(2)?,
                })
            })
            .map_err(read)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(read)
    }

    pub fn write(
        &mut self,
        group: &str,
        batch: &RawBatch,
        offsets: &[OffsetAdvance],
    ) -> Result<Committed, WarehouseError> {
        let write = |source| WarehouseError::Write { source };
        let rows = batch.rows_per_stream();
        let loaded_at = crate::now_ms().max(self.last_loaded_at + 1);
        let tables = batch.finish(loaded_at)?;
        let tx = self.conn.transaction().map_err(write)?;
        // Fencing: every partition must still stand where this writer last saw it. One read of the group's
        // offsets (a statement per partition cost about a millisecond each).
        {
            let mut current = tx
                .prepare_cached("SELECT topic, \"partition\", next_offset FROM raw._kafka_offsets WHERE consumer_group = ?")
                .map_err(write)?;
            let stored: std::collections::HashMap<(String, i32), i64> = current
                .query_map(params![group], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))
                .map_err(write)?
                .collect::<Result<_, _>>()
                .map_err(write)?;
            for o in offsets {
                let at = stored.get(&(o.topic.clone(), o.partition)).copied();
                if at != o.previous {
                    return Err(WarehouseError::Fenced {
                        topic: o.topic.clone(),
                        partition: o.partition,
                        stored: at,
                        expected: o.previous,
                    });
                }
            }
        }
        for (stream, records) in tables {
            let mut appender = tx.appender_to_db(stream.topic(), "raw").map_err(write)?;
            appender.append_record_batch(records).map_err(write)?;
            appender.flush().map_err(write)?;
        }
        if !offsets.is_empty() {
            // One statement for every partition (an upsert each cost about 4 ms).
            let rows = vec!["(?, ?, ?, ?, make_timestamp(? * 1000))"; offsets.len()].join(", ");
            let sql = format!(
                "INSERT INTO raw._kafka_offsets VALUES {rows}
                 ON CONFLICT (consumer_group, topic, \"partition\") DO UPDATE
                 SET next_offset = excluded.next_offset, updated_at = excluded.updated_at"
            );
            let mut values: Vec<duckdb::types::Value> = Vec::with_capacity(offsets.len() * 5);
            for o in offsets {
                values.push(group.to_owned().into());
                values.push(o.topic.clone().into());
                values.push(o.partition.into());
                values.push(o.next_offset.into());
                values.push(loaded_at.into());
            }
            tx.prepare_cached(&sql)
                .and_then(|mut upsert| upsert.execute(duckdb::params_from_iter(values)))
                .map_err(write)?;
        }
        tx.commit().map_err(write)?;
        self.last_loaded_at = loaded_at;
        Ok(Committed { rows, loaded_at })
    }

    /// The connection, for tests and tools that query the warehouse.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

impl playlog_sql::Transact for DuckDbWarehouse {
    fn dialect(&self) -> crate::Dialect {
        crate::Dialect::DuckDb
    }

    fn schema_prefix(&self) -> String {
        String::new()
    }

    fn transact(
        &mut self,
        work: &mut dyn FnMut(&mut dyn SqlSession) -> Result<(), SqlError>,
    ) -> Result<(), SqlError> {
        Ok(self.transaction(|s| Ok(work(s)?))?)
    }

    fn autocommit_each(
        &mut self,
        work: &mut dyn FnMut(&mut dyn SqlSession) -> Result<(), SqlError>,
    ) -> Result<(), SqlError> {
        self.transact(work)
    }
}

impl DuckDbWarehouse {
    pub fn transaction<T>(
        &mut self,
        work: impl FnOnce(&mut dyn SqlSession) -> Result<T, WarehouseError>,
    ) -> Result<T, WarehouseError> {
        let tx = self.conn.transaction().map_err(|e| sql_error("BEGIN", e))?;
        let mut session = DuckDbSession { tx: &tx };
        let value = work(&mut session)?;
        tx.commit().map_err(|e| sql_error("COMMIT", e))?;
        Ok(value)
    }
}

/// Generated SQL over a DuckDB connection of someone else's (the API's, on the consumer's own database
/// instance), for reading only: every transaction is rolled back, so nothing run through it can change
/// the warehouse.
pub struct DuckDbReader<'a> {
    conn: &'a Connection,
}

impl<'a> DuckDbReader<'a> {
    pub fn new(conn: &'a Connection) -> DuckDbReader<'a> {
        DuckDbReader { conn }
    }
}

impl playlog_sql::Transact for DuckDbReader<'_> {
    fn dialect(&self) -> crate::Dialect {
        crate::Dialect::DuckDb
    }

    fn schema_prefix(&self) -> String {
        String::new()
    }

    fn transact(
        &mut self,
        work: &mut dyn FnMut(&mut dyn SqlSession) -> Result<(), SqlError>,
    ) -> Result<(), SqlError> {
        self.conn
            .execute_batch("BEGIN TRANSACTION")
            .map_err(|e| sql_error("BEGIN", e))?;
        let result = work(&mut DuckDbSession { tx: self.conn });
        let _ = self.conn.execute_batch("ROLLBACK");
        result
    }

    fn autocommit_each(
        &mut self,
        work: &mut dyn FnMut(&mut dyn SqlSession) -> Result<(), SqlError>,
    ) -> Result<(), SqlError> {
        self.transact(work)
    }
}

struct DuckDbSession<'a> {
    tx: &'a Connection,
}

impl SqlSession for DuckDbSession<'_> {
    fn execute(&mut self, sql: &str) -> Result<usize, SqlError> {
        self.tx.execute(sql, []).map_err(|e| sql_error(sql, e))
    }

    fn query(&mut self, sql: &str) -> Result<Rows, SqlError> {
        let mut stmt = self.tx.prepare(sql).map_err(|e| sql_error(sql, e))?;
        let mut rows = stmt.query([]).map_err(|e| sql_error(sql, e))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| sql_error(sql, e))? {
            let columns = row.as_ref().column_count();
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                let value = row.get_ref(i).map_err(|e| sql_error(sql, e))?;
                values.push(to_value(value));
            }
            out.push(values);
        }
        Ok(out)
    }

    fn columns(&mut self, table: &str) -> Result<Vec<String>, SqlError> {
        let sql = format!("SELECT * FROM {table} LIMIT 0");
        let mut stmt = self.tx.prepare(&sql).map_err(|e| sql_error(&sql, e))?;
        // Column names are known only once the statement has run (LIMIT 0: nothing is read).
        stmt.execute([]).map_err(|e| sql_error(&sql, e))?;
        Ok(stmt.column_names())
    }
}

fn to_value(value: duckdb::types::ValueRef<'_>) -> Value {
    use duckdb::types::{TimeUnit, ValueRef as V};
    let timestamp = |unit: TimeUnit, v: i64| {
        let micros = match unit {
            TimeUnit::Second => v * 1_000_000,
            TimeUnit::Millisecond => v * 1_000,
            TimeUnit::Microsecond => v,
            TimeUnit::Nanosecond => v / 1_000,
        };
        Value::Text(timestamp_text(micros))
    };
    match value {
        V::Null => Value::Null,
        V::Boolean(b) => Value::Bool(b),
        V::TinyInt(i) => Value::Int(i.into()),
        V::SmallInt(i) => Value::Int(i.into()),
        V::Int(i) => Value::Int(i.into()),
        V::BigInt(i) => Value::Int(i),
        V::HugeInt(i) => Value::Int(i as i64),
        V::UTinyInt(i) => Value::Int(i.into()),
        V::USmallInt(i) => Value::Int(i.into()),
        V::UInt(i) => Value::Int(i.into()),
        V::UBigInt(i) => Value::Int(i as i64),
        // The vault's hash keys (its DuckDB dialect stores 16-byte MD5 digests as UHUGEINT, little-endian):
        // read back as the digest's bytes, as BigQuery's BYTES are.
        V::UHugeInt(u) => Value::Bytes(u.to_le_bytes().to_vec()),
        V::Float(f) => Value::Float(f.into()),
        V::Double(f) => Value::Float(f),
        V::Decimal(d) => Value::Text(d.to_string()),
        V::Timestamp(unit, v) => timestamp(unit, v),
        V::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        V::Blob(b) => Value::Bytes(b.to_vec()),
        V::Date32(days) => chrono::NaiveDate::from_num_days_from_ce_opt(days + 719_163)
            .map_or(Value::Int(days.into()), |d| Value::Text(d.to_string())),
        other => Value::Text(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw_batch::{KafkaMeta, columns};
    use playlog_model::{EventRecord, Stream};

    fn record(stream: Stream) -> EventRecord {
        EventRecord {
            event_id: None,
            ts: 1_767_225_600_123,
            session_id: 42,
            item_in_session: 3,
            level: "paid".into(),
            user_id: Some(7),
            first_name: Some("Zoë".into()),
            last_name: Some("Müller".into()),
            gender: Some("F".into()),
            registration: Some(1_700_000_000_000),
            zip: "02108".into(),
            city: "Boston-Cambridge-Newton".into(),
            state: "MA-NH".into(),
            lat: 42.357603,
            lon: -71.068432,
            user_agent: "\"Mozilla/5.0 (Macintosh)\"".into(),
            page: (stream == Stream::PageView).then(|| "NextSong".into()),
            auth: (stream != Stream::Auth).then(|| "Logged In".into()),
            method: (stream == Stream::PageView).then(|| "PUT".into()),
            status: (stream == Stream::PageView).then_some(200),
            artist: matches!(stream, Stream::Listen | Stream::PageView).then(|| "Sigur Rós".into()),
            song: matches!(stream, Stream::Listen | Stream::PageView).then(|| "Hoppípolla".into()),
            duration: matches!(stream, Stream::Listen | Stream::PageView).then_some(268.5),
            success: (stream == Stream::Auth).then_some(true),
        }
    }

    fn open_temp() -> (tempfile::TempDir, DuckDbWarehouse) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.duckdb");
        let w = DuckDbWarehouse::open(path.to_str().expect("utf-8")).expect("opens");
        (dir, w)
    }

    #[test]
    fn tables_match_the_batch_columns() {
        let (_dir, w) = open_temp();
        for stream in Stream::ALL {
            let mut stmt = w
                .conn
                .prepare("SELECT column_name FROM information_schema.columns WHERE table_schema = 'raw' AND table_name = ? ORDER BY ordinal_position")
                .expect("query");
            let names: Vec<String> = stmt
                .query_map(params![stream.topic()], |r| r.get(0))
                .expect("rows")
                .map(|r| r.expect("name"))
                .collect();
            let expected: Vec<String> = columns(stream).iter().map(|c| c.name.to_owned()).collect();
            assert_eq!(names, expected, "raw.{} columns", stream.topic());
        }
    }

    #[test]
    fn opening_twice_migrates_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.duckdb");
        let path = path.to_str().expect("utf-8");
        drop(DuckDbWarehouse::open(path).expect("first open"));
        let w = DuckDbWarehouse::open(path).expect("second open");
        let n: i64 = w
            .conn
            .query_row("SELECT count(*) FROM raw._schema_migrations", [], |r| {
                r.get(0)
            })
            .expect("count");
        assert_eq!(n, MIGRATIONS.len() as i64);
    }

    #[test]
    fn a_write_lands_rows_and_offsets_together_and_values_unchanged() {
        let (_dir, mut w) = open_temp();
        let mut batch = RawBatch::new();
        for (i, stream) in Stream::EVENTS.into_iter().enumerate() {
            let meta = KafkaMeta {
                topic: stream.topic(),
                partition: 1,
                offset: 10 + i as i64,
                timestamp_ms: Some(1_767_225_600_500),
            };
            batch.push(stream, &record(stream), &meta, 300);
        }
        let offer = playlog_model::OfferRecord {
            offer_id: "retention:x".into(),
            rule_id: "retention".into(),
            user_id: 7,
            session_id: 42,
            trigger_event_id: "x".into(),
            ts: 1_767_225_600_123,
            expires_at: 1_767_312_000_123,
            holdout: true,
            emitted_at: 1_767_225_600_200,
        };
        let meta = KafkaMeta {
            topic: "offer_events",
            partition: 0,
            offset: 3,
            timestamp_ms: None,
        };
        batch.push_offer(&offer, &meta, 100);
        let offsets = vec![OffsetAdvance {
            topic: "listen_events".into(),
            partition: 1,
            previous: None,
            next_offset: 11,
        }];
        let committed = w.write("g", &batch, &offsets).expect("write");
        assert_eq!(committed.rows, [1, 1, 1, 1, 1]);
        let landed: (String, bool, String, i64) = w
            .conn
            .query_row(
                "SELECT offer_id, holdout, strftime(expires_at, '%Y-%m-%d %H:%M:%S.%g'), _offset FROM raw.offer_events",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .expect("the offer row");
        assert_eq!(
            landed,
            (
                "retention:x".into(),
                true,
                "2026-01-02 00:00:00.123".into(),
                3
            )
        );
        let (zip, name, agent, ts, event_id): (String, String, String, String, String) = w
            .conn
            .query_row("SELECT zip, first_name, user_agent, strftime(ts, '%Y-%m-%d %H:%M:%S.%g'), event_id FROM raw.listen_events", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .expect("row");
        assert_eq!(zip, "02108");
        assert_eq!(name, "Zoë");
        assert_eq!(agent, "\"Mozilla/5.0 (Macintosh)\"");
        assert_eq!(ts, "2026-01-01 00:00:00.123");
        assert_eq!(
            event_id, "000000000000002a-00000003-l",
            "derived for records without one"
        );
        assert_eq!(
            w.stored_offsets("g").expect("offsets"),
            vec![PartitionOffset {
                topic: "listen_events".into(),
                partition: 1,
                next_offset: 11
            }]
        );
        assert!(w.stored_offsets("other").expect("offsets").is_empty());
    }

    #[test]
    fn offsets_move_forward_and_a_stale_writer_is_fenced() {
        let (_dir, mut w) = open_temp();
        let o = |previous, n| {
            vec![OffsetAdvance {
                topic: "t".into(),
                partition: 0,
                previous,
                next_offset: n,
            }]
        };
        w.write("g", &RawBatch::new(), &o(None, 5)).expect("first");
        w.write("g", &RawBatch::new(), &o(Some(5), 9))
            .expect("second");
        assert_eq!(
            w.stored_offsets("g").expect("offsets"),
            vec![PartitionOffset {
                topic: "t".into(),
                partition: 0,
                next_offset: 9
            }]
        );
        // A writer that still believes 5 is stored would duplicate rows: refused, nothing written.
        let mut batch = RawBatch::new();
        batch.push(
            Stream::Auth,
            &record(Stream::Auth),
            &KafkaMeta {
                topic: "auth_events",
                partition: 0,
                offset: 5,
                timestamp_ms: None,
            },
            10,
        );
        let err = w.write("g", &batch, &o(Some(5), 7)).expect_err("fenced");
        assert!(matches!(err, WarehouseError::Fenced { .. }), "{err}");
        let rows: i64 = w
            .conn
            .query_row("SELECT count(*) FROM raw.auth_events", [], |r| r.get(0))
            .expect("count");
        assert_eq!(rows, 0);
    }

    #[test]
    fn connections_of_one_instance_write_side_by_side_but_never_both_move_one_partition() {
        let (_dir, mut w) = open_temp();
        let mut other = w.connect().expect("second connection");
        let o = |partition, previous, n| OffsetAdvance {
            topic: "t".into(),
            partition,
            previous,
            next_offset: n,
        };
        // Different partitions from two connections: both land.
        w.write("g", &RawBatch::new(), &[o(0, None, 5)])
            .expect("first");
        other
            .write("g", &RawBatch::new(), &[o(1, None, 7)])
            .expect("second");
        // Two open transactions moving the same partition: the later one cannot commit, so a member
        // whose write raced another's fails (and its retry is fenced), rather than landing twice.
        let upsert = "INSERT INTO raw._kafka_offsets VALUES ('g', 't', 0, ?, now()) ON CONFLICT (consumer_group, topic, \"partition\") DO UPDATE SET next_offset = excluded.next_offset";
        let a = w.conn.transaction().expect("a");
        let b = other.conn.transaction().expect("b");
        a.execute(upsert, params![9]).expect("a moves it");
        let b_result = b
            .execute(upsert, params![11])
            .map(|_| ())
            .and_then(|()| b.commit());
        a.commit().expect("the first commit wins");
        let race = WarehouseError::Write {
            source: b_result.expect_err("the second writer must fail"),
        };
        assert!(
            race.is_retriable(),
            "a lost race is retried (and then fenced): {race}"
        );
        let stored = w.stored_offsets("g").expect("offsets");
        assert_eq!(
            stored
                .iter()
                .find(|p| p.partition == 0)
                .map(|p| p.next_offset),
            Some(9),
            "the first writer's offset stands"
        );
        let err = other
            .write("g", &RawBatch::new(), &[o(0, Some(5), 11)])
            .expect_err("a retry with the stale offset is fenced");
        assert!(matches!(err, WarehouseError::Fenced { .. }), "{err}");
    }

    #[test]
    fn a_missing_offsets_table_is_not_retried_for_ever() {
        let (_dir, mut w) = open_temp();
        w.conn
            .execute_batch("DROP TABLE raw._kafka_offsets")
            .expect("drop");
        let err = w.stored_offsets("g").expect_err("no table");
        assert!(!err.is_retriable(), "{err}");
        assert!(!err.is_fatal(), "{err}");
    }

    #[test]
    fn a_rolled_back_transaction_leaves_no_rows() {
        // The appender writes inside the open transaction: rolling back removes its rows too.
        let (_dir, w) = open_temp();
        let mut batch = RawBatch::new();
        batch.push(
            Stream::Auth,
            &record(Stream::Auth),
            &KafkaMeta {
                topic: "auth_events",
                partition: 0,
                offset: 1,
                timestamp_ms: None,
            },
            10,
        );
        let mut conn = w.conn.try_clone().expect("clone");
        let tx = conn.transaction().expect("tx");
        for (stream, records) in batch.finish(0).expect("finish") {
            let mut appender = tx.appender_to_db(stream.topic(), "raw").expect("appender");
            appender.append_record_batch(records).expect("append");
            appender.flush().expect("flush");
        }
        tx.rollback().expect("rollback");
        let rows: i64 = w
            .conn
            .query_row("SELECT count(*) FROM raw.auth_events", [], |r| r.get(0))
            .expect("count");
        assert_eq!(rows, 0);
    }
}
