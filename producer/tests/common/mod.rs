//! Runs simulations in-process and keeps every event, for the model's property tests.

#![allow(dead_code)]

use playlog_model::{EventRecord, Stream};
use playlog_producer::{ShardPlan, Simulation, SiteModel, SongCatalog, World};

pub const JAN_1_2026: i64 = 1_767_225_600_000;
pub const DAY: i64 = 86_400_000;

/// One emitted event in every form the tests look at.
pub struct Emitted {
    pub stream: Stream,
    pub record: EventRecord,
    pub json: Vec<u8>,
    pub avro: Vec<u8>,
    pub key: i64,
}

pub fn world(site: SiteModel) -> World {
    World::new(site, SongCatalog::synthetic(2000, 1))
}

pub fn plan(seed: u64, users: u64) -> ShardPlan {
    ShardPlan {
        seed,
        instance_id: 0,
        shard: 0,
        shards: 1,
        initial_users: users,
        growth_rate: 0.0,
        attrition_rate: 0.0,
        start: JAN_1_2026,
    }
}

/// Simulates `plan` until `days` after its start; returns the events and the users still active.
pub fn simulate(world: &World, plan: ShardPlan, days: i64) -> (Vec<Emitted>, usize) {
    let end = plan.start + days * DAY;
    let mut sim = Simulation::new(world, plan);
    let mut out = Vec::new();
    while sim.next_time().is_some_and(|t| t < end) {
        sim.step(|e| {
            let mut json = Vec::new();
            playlog_model::json::encode_line(e, &mut json);
            let mut avro = Vec::new();
            playlog_model::avro::encode(e, &mut avro);
            out.push(Emitted {
                stream: e.stream,
                record: e.to_record(),
                json,
                avro,
                key: e.key(),
            });
        });
    }
    let active = sim.active_users();
    (out, active)
}

/// Simulates without keeping events; returns the users still active after `days`.
pub fn active_after(world: &World, plan: ShardPlan, days: i64) -> usize {
    let end = plan.start + days * DAY;
    let mut sim = Simulation::new(world, plan);
    while sim.next_time().is_some_and(|t| t < end) {
        sim.step(|_| {});
    }
    sim.active_users()
}
