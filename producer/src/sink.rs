//! Where events go: a Kafka topic per stream, or JSON lines in files. One sink per generator thread.

use playlog_model::{Event, Stream};

/// The wire format of event values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Avro single-object encoding: `C3 01`, the schema's CRC-64-AVRO fingerprint, the binary body.
    Avro,
    /// eventsim's JSON, plus `eventId`.
    Json,
}

impl Format {
    pub fn encode(self, event: &Event<'_>, out: &mut Vec<u8>) {
        match self {
            Format::Avro => playlog_model::avro::encode(event, out),
            Format::Json => playlog_model::json::encode_line(event, out),
        }
    }
}

/// A failure to hand events on. Delivery failures reported later by Kafka are counted, not raised here.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("writing {target}: {source}")]
    Io {
        target: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Kafka(String),
}

/// Receives the events of one generator thread, in time order.
pub trait EventSink: Send {
    fn send(&mut self, event: &Event<'_>) -> Result<(), SinkError>;
    /// Flushes everything sent; afterwards nothing is in flight.
    fn finish(&mut self) -> Result<(), SinkError>;
}

/// Events handed to the sinks, and how many Kafka confirmed or failed, per stream.
#[derive(Debug, Default)]
pub struct StreamCounters {
    pub sent: [std::sync::atomic::AtomicU64; 4],
    pub delivered: [std::sync::atomic::AtomicU64; 4],
    pub failed: [std::sync::atomic::AtomicU64; 4],
}

impl StreamCounters {
    pub fn load(counters: &[std::sync::atomic::AtomicU64; 4]) -> [u64; 4] {
        let mut out = [0; 4];
        for s in Stream::EVENTS {
            out[s.index()] = counters[s.index()].load(std::sync::atomic::Ordering::Relaxed);
        }
        out
    }
}
