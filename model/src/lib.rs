//! Playlog's event model, shared by every crate: the four event streams and the offers stream, the event
//! and the offer themselves, and their two wire encodings (Avro single-object encoding and eventsim's JSON
//! shape).
//!
//! Everything here is pure: no I/O, so that encoding is cheap to test and to benchmark.

pub mod avro;
mod event;
mod event_id;
pub mod json;
mod offer;
pub mod raw_columns;
mod stream;

pub use event::{Event, EventRecord, Location, Song, UserDetails};
pub use event_id::{EVENT_ID_LEN, EventId};
pub use offer::{OfferRecord, Record};
pub use stream::Stream;
