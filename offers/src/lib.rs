//! Real-time offers (`playlog offers`, issue 19): declarative rules (`rules.rs`, the file
//! `schemas/offers/rules.toml`) evaluated over each user's page views on event time (`engine.rs`), with
//! per-rule cooldowns, a frequency cap across rules, expiring offers, and deterministic holdouts. This crate
//! is the pure part: no Kafka, no clock, so that a replay of the same page views makes the same offers
//! with the same ids, which is what exactly-once output rests on.

pub mod engine;
pub mod rules;

pub use engine::{Decision, Engine, PageView, held_out};
pub use rules::{DEFAULT_RULES, Rules, RulesError};
