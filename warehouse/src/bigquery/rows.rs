//! Raw-table rows as insertAll JSON, cut into requests within BigQuery's limits.
//!
//! Each row's `insertId` is `topic-partition-offset`: a re-sent batch carries the same ids, so BigQuery's
//! best-effort de-duplication drops most repeats, and the vault's de-duplication on the event (the
//! transactional links' event hash) drops the rest.

use duckdb::arrow::array::{
    Array, BooleanArray, Float64Array, Int32Array, Int64Array, StringArray,
    TimestampMicrosecondArray,
};
use duckdb::arrow::record_batch::RecordBatch;
use playlog_model::Stream;
use serde_json::{Map, Value as Json, json};

use crate::WarehouseError;
use crate::raw_batch::{Kind, columns};

/// BigQuery's limit is 10 MB per insertAll request; the JSON envelope needs some room.
pub const MAX_REQUEST_BYTES: usize = 9_000_000;
/// BigQuery accepts up to 50,000 rows per request and recommends far fewer; 10,000 keeps requests quick.
pub const MAX_REQUEST_ROWS: usize = 10_000;

/// One insertAll request's rows, with the Kafka coordinates of each (for dead letters).
pub struct Request {
    pub rows: Vec<Json>,
    pub origins: Vec<(String, i32, i64)>,
}

/// A table's rows as insertAll requests.
pub fn requests(stream: Stream, batch: &RecordBatch) -> Result<Vec<Request>, WarehouseError> {
    let cols = columns(stream);
    let mut out = Vec::new();
    let mut current = Request {
        rows: Vec::new(),
        origins: Vec::new(),
    };
    let mut bytes = 0;
    for row in 0..batch.num_rows() {
        let mut object = Map::with_capacity(cols.len());
        for (i, c) in cols.iter().enumerate() {
            object.insert(
                c.name.to_owned(),
                cell(batch.column(i).as_ref(), c.kind, row)?,
            );
        }
        let topic = object["_topic"].as_str().unwrap_or_default().to_owned();
        let partition = object["_partition"].as_i64().unwrap_or(0) as i32;
        let offset = object["_offset"].as_i64().unwrap_or(0);
        let entry = json!({ "insertId": format!("{topic}-{partition}-{offset}"), "json": object });
        let size = entry.to_string().len() + 1;
        if !current.rows.is_empty()
            && (bytes + size > MAX_REQUEST_BYTES || current.rows.len() >= MAX_REQUEST_ROWS)
        {
            out.push(std::mem::replace(
                &mut current,
                Request {
                    rows: Vec::new(),
                    origins: Vec::new(),
                },
            ));
            bytes = 0;
        }
        bytes += size;
        current.rows.push(entry);
        current.origins.push((topic, partition, offset));
    }
    if !current.rows.is_empty() {
        out.push(current);
    }
    Ok(out)
}

fn cell(array: &dyn Array, kind: Kind, row: usize) -> Result<Json, WarehouseError> {
    if array.is_null(row) {
        return Ok(Json::Null);
    }
    fn typed<T: 'static>(array: &dyn Array) -> Result<&T, WarehouseError> {
        array
            .as_any()
            .downcast_ref::<T>()
            .ok_or_else(|| WarehouseError::Batch("raw column of an unexpected Arrow type".into()))
    }
    Ok(match kind {
        Kind::Text => json!(typed::<StringArray>(array)?.value(row)),
        Kind::Timestamp => json!(timestamp_text(
            typed::<TimestampMicrosecondArray>(array)?.value(row)
        )),
        Kind::BigInt => json!(typed::<Int64Array>(array)?.value(row)),
        Kind::Int => json!(typed::<Int32Array>(array)?.value(row)),
        Kind::Double => json!(typed::<Float64Array>(array)?.value(row)),
        Kind::Bool => json!(typed::<BooleanArray>(array)?.value(row)),
    })
}

/// `YYYY-MM-DD HH:MM:SS.ffffff` (UTC): the text form BigQuery parses without loss.
fn timestamp_text(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros).map_or_else(
        || micros.to_string(),
        |t| t.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw_batch::{KafkaMeta, RawBatch};
    use playlog_model::EventRecord;

    fn auth_record(i: i64) -> EventRecord {
        EventRecord {
            event_id: Some(format!("e{i}")),
            ts: 1_767_225_600_123 + i,
            session_id: 42,
            item_in_session: i as i32,
            level: "free".into(),
            user_id: None,
            first_name: None,
            last_name: None,
            gender: None,
            registration: None,
            zip: "02108".into(),
            city: "Boston".into(),
            state: "MA".into(),
            lat: 42.5,
            lon: -71.25,
            user_agent: "x".repeat(2_000),
            page: None,
            auth: None,
            method: None,
            status: None,
            artist: None,
            song: None,
            duration: None,
            success: Some(true),
        }
    }

    #[test]
    fn rows_carry_every_column_and_a_deterministic_insert_id() {
        let mut batch = RawBatch::new();
        let meta = KafkaMeta {
            topic: "auth_events",
            partition: 3,
            offset: 17,
            timestamp_ms: None,
        };
        batch.push(Stream::Auth, &auth_record(0), &meta, 10);
        let tables = batch.finish(1_767_225_601_000).expect("finish");
        let reqs = requests(Stream::Auth, &tables[0].1).expect("requests");
        let row = &reqs[0].rows[0];
        assert_eq!(row["insertId"], "auth_events-3-17");
        assert_eq!(row["json"]["ts"], "2026-01-01 00:00:00.123000");
        assert_eq!(row["json"]["_loaded_at"], "2026-01-01 00:00:01.000000");
        assert_eq!(row["json"]["user_id"], Json::Null);
        assert_eq!(row["json"]["zip"], "02108");
        assert_eq!(row["json"]["success"], true);
        let names: Vec<&str> = columns(Stream::Auth).iter().map(|c| c.name).collect();
        assert_eq!(row["json"].as_object().expect("object").len(), names.len());
    }

    #[test]
    fn requests_stay_within_the_byte_and_row_limits() {
        let mut batch = RawBatch::new();
        // ~2 kB each: 10,000 rows would be ~20 MB, so the byte limit cuts first.
        for i in 0..10_000 {
            let meta = KafkaMeta {
                topic: "auth_events",
                partition: 0,
                offset: i,
                timestamp_ms: None,
            };
            batch.push(Stream::Auth, &auth_record(i), &meta, 10);
        }
        let tables = batch.finish(0).expect("finish");
        let reqs = requests(Stream::Auth, &tables[0].1).expect("requests");
        assert!(reqs.len() >= 3, "{} requests", reqs.len());
        let mut total = 0;
        for r in &reqs {
            let bytes = serde_json::to_string(&json!({ "rows": r.rows }))
                .expect("json")
                .len();
            assert!(bytes <= 10_000_000, "{bytes} bytes");
            assert!(r.rows.len() <= MAX_REQUEST_ROWS);
            total += r.rows.len();
        }
        assert_eq!(total, 10_000, "no row lost or repeated");
    }
}
