//! `playlog consume`: consumer-group members that land every event in raw warehouse tables exactly once.
//!
//! Each member owns its partitions' progress and follows, per partition, assigned → consuming →
//! flushing → revoked. A flush appends the batch's rows and the next offset of every partition it covers
//! in one warehouse transaction; on assignment a member seeks to the offsets the warehouse stored, so the
//! warehouse, not Kafka, is the source of truth. Kafka offsets are committed afterwards, for lag tooling.

mod context;
pub mod dead_letter;
pub mod decode;
mod group;
pub mod kafka_log;
pub mod lag;
mod member;
pub mod metrics;
pub mod options;
pub mod partition;
mod writer;

pub use group::{ConsumeError, ConsumeSummary, Group, Progress};
pub use options::ConsumeOptions;
