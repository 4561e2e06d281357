//! Rows for the raw tables, gathered column by column in Arrow builders, so that a flush hands DuckDB
//! whole columns (its appender) instead of row-by-row SQL.
//!
//! The columns are the raw catalog's (`playlog_model::raw_columns`), the one definition that the DDL files of
//! both warehouses and the vault's planner are checked against.

use std::sync::Arc;

use duckdb::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondArray, TimestampMicrosecondBuilder,
};
use duckdb::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use duckdb::arrow::record_batch::RecordBatch;
use playlog_model::{EventRecord, OfferRecord, Record, Stream};

use crate::WarehouseError;

pub use playlog_model::raw_columns::{Column, Kind, columns};

/// Where a record came from in Kafka.
#[derive(Debug, Clone, Copy)]
pub struct KafkaMeta<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// The record's Kafka timestamp, epoch milliseconds.
    pub timestamp_ms: Option<i64>,
}

enum Builder {
    Text(StringBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    BigInt(Int64Builder),
    Int(Int32Builder),
    Double(Float64Builder),
    Bool(BooleanBuilder),
}

struct TableBuilder {
    stream: Stream,
    /// Every column but `_loaded_at`, which is known only at commit time.
    builders: Vec<Builder>,
    rows: usize,
}

/// Writes one row's values in column order.
struct Row<'a> {
    builders: std::slice::IterMut<'a, Builder>,
}

impl Row<'_> {
    fn next(&mut self) -> &mut Builder {
        self.builders
            .next()
            .expect("raw_batch pushes exactly the columns `columns()` lists")
    }
    fn text(&mut self, v: Option<&str>) {
        match self.next() {
            Builder::Text(b) => b.append_option(v),
            _ => unreachable!("column kind mismatch, caught by raw_batch tests"),
        }
    }
    fn ts_ms(&mut self, v: Option<i64>) {
        match self.next() {
            Builder::Timestamp(b) => b.append_option(v.map(|ms| ms * 1000)),
            _ => unreachable!("column kind mismatch, caught by raw_batch tests"),
        }
    }
    fn bigint(&mut self, v: Option<i64>) {
        match self.next() {
            Builder::BigInt(b) => b.append_option(v),
            _ => unreachable!("column kind mismatch, caught by raw_batch tests"),
        }
    }
    fn int(&mut self, v: Option<i32>) {
        match self.next() {
            Builder::Int(b) => b.append_option(v),
            _ => unreachable!("column kind mismatch, caught by raw_batch tests"),
        }
    }
    fn double(&mut self, v: Option<f64>) {
        match self.next() {
            Builder::Double(b) => b.append_option(v),
            _ => unreachable!("column kind mismatch, caught by raw_batch tests"),
        }
    }
    /// The Kafka coordinates that close every raw row.
    fn meta(&mut self, meta: &KafkaMeta<'_>) {
        self.text(Some(meta.topic));
        self.int(Some(meta.partition));
        self.bigint(Some(meta.offset));
        self.ts_ms(meta.timestamp_ms);
    }
    fn boolean(&mut self, v: Option<bool>) {
        match self.next() {
            Builder::Bool(b) => b.append_option(v),
            _ => unreachable!("column kind mismatch, caught by raw_batch tests"),
        }
    }
}

impl TableBuilder {
    fn new(stream: Stream) -> TableBuilder {
        let builders = columns(stream)
            .iter()
            .filter(|c| c.name != "_loaded_at")
            .map(|c| match c.kind {
                Kind::Text => Builder::Text(StringBuilder::new()),
                Kind::Timestamp => Builder::Timestamp(TimestampMicrosecondBuilder::new()),
                Kind::BigInt => Builder::BigInt(Int64Builder::new()),
                Kind::Int => Builder::Int(Int32Builder::new()),
                Kind::Double => Builder::Double(Float64Builder::new()),
                Kind::Bool => Builder::Bool(BooleanBuilder::new()),
            })
            .collect();
        TableBuilder {
            stream,
            builders,
            rows: 0,
        }
    }

    fn push(&mut self, r: &EventRecord, event_id: &str, meta: &KafkaMeta<'_>) {
        let mut row = Row {
            builders: self.builders.iter_mut(),
        };
        row.text(Some(event_id));
        row.ts_ms(Some(r.ts));
        row.bigint(Some(r.session_id));
        row.int(Some(r.item_in_session));
        row.text(Some(&r.level));
        row.bigint(r.user_id);
        row.text(r.first_name.as_deref());
        row.text(r.last_name.as_deref());
        row.text(r.gender.as_deref());
        row.ts_ms(r.registration);
        row.text(Some(&r.zip));
        row.text(Some(&r.city));
        row.text(Some(&r.state));
        row.double(Some(r.lat));
        row.double(Some(r.lon));
        row.text(Some(&r.user_agent));
        match self.stream {
            Stream::Listen => {
                row.text(r.artist.as_deref());
                row.text(r.song.as_deref());
                row.double(r.duration);
                row.text(r.auth.as_deref());
            }
            Stream::PageView => {
                row.text(r.page.as_deref());
                row.text(r.auth.as_deref());
                row.text(r.method.as_deref());
                row.int(r.status);
                row.text(r.artist.as_deref());
                row.text(r.song.as_deref());
                row.double(r.duration);
            }
            Stream::Auth => row.boolean(r.success),
            Stream::StatusChange => row.text(r.auth.as_deref()),
            Stream::Offer => unreachable!("offers go through push_offer (push_record routes them)"),
        }
        row.meta(meta);
        self.rows += 1;
    }

    fn push_offer(&mut self, o: &OfferRecord, meta: &KafkaMeta<'_>) {
        let mut row = Row {
            builders: self.builders.iter_mut(),
        };
        row.text(Some(&o.offer_id));
        row.text(Some(&o.rule_id));
        row.bigint(Some(o.user_id));
        row.bigint(Some(o.session_id));
        row.text(Some(&o.trigger_event_id));
        row.ts_ms(Some(o.ts));
        row.ts_ms(Some(o.expires_at));
        row.boolean(Some(o.holdout));
        row.ts_ms(Some(o.emitted_at));
        row.meta(meta);
        self.rows += 1;
    }

    fn finish(&self, loaded_at_ms: i64) -> Result<RecordBatch, WarehouseError> {
        let cols = columns(self.stream);
        let fields: Vec<Field> = cols
            .iter()
            .map(|c| {
                let dt = match c.kind {
                    Kind::Text => DataType::Utf8,
                    Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
                    Kind::BigInt => DataType::Int64,
                    Kind::Int => DataType::Int32,
                    Kind::Double => DataType::Float64,
                    Kind::Bool => DataType::Boolean,
                };
                Field::new(c.name, dt, c.nullable)
            })
            .collect();
        let mut arrays: Vec<ArrayRef> = self
            .builders
            .iter()
            .map(|b| -> ArrayRef {
                // Cloned, so that the batch survives a failed write and can be retried as it is.
                match b {
                    Builder::Text(b) => Arc::new(b.finish_cloned()),
                    Builder::Timestamp(b) => Arc::new(b.finish_cloned()),
                    Builder::BigInt(b) => Arc::new(b.finish_cloned()),
                    Builder::Int(b) => Arc::new(b.finish_cloned()),
                    Builder::Double(b) => Arc::new(b.finish_cloned()),
                    Builder::Bool(b) => Arc::new(b.finish_cloned()),
                }
            })
            .collect();
        arrays.push(Arc::new(TimestampMicrosecondArray::from(vec![
            loaded_at_ms
                * 1000;
            self.rows
        ])));
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
            .map_err(|e| WarehouseError::Batch(e.to_string()))
    }
}

/// Rows for all five raw tables, plus what the flush policy needs to know about them.
pub struct RawBatch {
    tables: Vec<TableBuilder>,
    bytes: usize,
    /// Event times, for the freshness histogram at commit.
    event_times: Vec<i64>,
    /// Kafka (publish) timestamps of the records that have one, for the publish-freshness histogram.
    publish_times: Vec<i64>,
}

impl Default for RawBatch {
    fn default() -> Self {
        RawBatch::new()
    }
}

impl RawBatch {
    pub fn new() -> RawBatch {
        RawBatch {
            tables: Stream::ALL.iter().map(|s| TableBuilder::new(*s)).collect(),
            bytes: 0,
            event_times: Vec::new(),
            publish_times: Vec::new(),
        }
    }

    /// Adds one event. `record_bytes` is the size of the Kafka record, for byte-bounded batches. An event
    /// without `eventId` (eventsim's own JSON) gets the id Playlog's producer would have given it.
    pub fn push(
        &mut self,
        stream: Stream,
        record: &EventRecord,
        meta: &KafkaMeta<'_>,
        record_bytes: usize,
    ) {
        let derived;
        let event_id = match &record.event_id {
            Some(id) => id.as_str(),
            None => {
                derived =
                    playlog_model::EventId::new(record.session_id, record.item_in_session, stream);
                derived.as_str()
            }
        };
        self.tables[stream.index()].push(record, event_id, meta);
        self.counted(record.ts, meta, record_bytes);
    }

    /// Adds one offer (a record of `offer_events`).
    pub fn push_offer(&mut self, offer: &OfferRecord, meta: &KafkaMeta<'_>, record_bytes: usize) {
        self.tables[Stream::Offer.index()].push_offer(offer, meta);
        self.counted(offer.ts, meta, record_bytes);
    }

    /// Adds a decoded record of `stream`'s topic, event or offer.
    pub fn push_record(
        &mut self,
        stream: Stream,
        record: &Record,
        meta: &KafkaMeta<'_>,
        record_bytes: usize,
    ) {
        match record {
            Record::Event(e) => self.push(stream, e, meta, record_bytes),
            Record::Offer(o) => self.push_offer(o, meta, record_bytes),
        }
    }

    fn counted(&mut self, event_time: i64, meta: &KafkaMeta<'_>, record_bytes: usize) {
        self.bytes += record_bytes;
        self.event_times.push(event_time);
        if let Some(t) = meta.timestamp_ms {
            self.publish_times.push(t);
        }
    }

    pub fn rows(&self) -> usize {
        self.tables.iter().map(|t| t.rows).sum()
    }

    pub fn rows_per_stream(&self) -> [u64; 5] {
        let mut out = [0; 5];
        for t in &self.tables {
            out[t.stream.index()] = t.rows as u64;
        }
        out
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.rows() == 0
    }

    pub fn event_times(&self) -> &[i64] {
        &self.event_times
    }

    pub fn publish_times(&self) -> &[i64] {
        &self.publish_times
    }

    /// One Arrow record batch per non-empty table, stamped with the load time.
    pub fn finish(&self, loaded_at_ms: i64) -> Result<Vec<(Stream, RecordBatch)>, WarehouseError> {
        self.tables
            .iter()
            .filter(|t| t.rows > 0)
            .map(|t| Ok((t.stream, t.finish(loaded_at_ms)?)))
            .collect()
    }
}
