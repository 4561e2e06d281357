//! Playlog's event model, shared by every crate: the four event streams, the event itself, and its two
//! wire encodings (Avro single-object encoding and eventsim's JSON shape).
//!
//! Everything here is pure: no I/O, so that encoding is cheap to test and to benchmark.

pub mod avro;
mod event;
mod event_id;
pub mod json;
pub mod raw_columns;
mod stream;

pub use event::{Event, EventRecord, Location, Song, UserDetails};
pub use event_id::{EVENT_ID_LEN, EventId};
pub use stream::Stream;
