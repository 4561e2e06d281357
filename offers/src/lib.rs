//! Real-time offers (`playlog offers`, issue 19): declarative rules (`rules.rs`, the file
//! `schemas/offers/rules.toml`) evaluated over each user's page views on event time (`engine.rs`), with
//! per-rule cooldowns, a frequency cap across rules, expiring offers, and deterministic holdouts. Those two
//! are pure: no Kafka, no clock, so that the same page views make the same offers with the same ids, which
//! is what exactly-once output rests on. `run.rs` is the I/O around them: Kafka in and out, checkpoints.

mod delivery;
pub mod engine;
pub mod metrics;
pub mod rules;
pub mod run;

pub use engine::{Decision, Engine, PageView, held_out};
pub use rules::{DEFAULT_RULES, Rules, RulesError};
