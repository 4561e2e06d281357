//! `playlog offers` against a real broker: killed with SIGKILL twice at arbitrary moments and restarted,
//! it makes exactly the offers that an offline run of the same rules over the same page views makes:
//! the same set of offer ids, each one's records identical (repeats after a crash differ only in
//! `emittedAt`), and no offer that the offline run does not make. `playlog consume` then lands every
//! record of offer_events in raw (repeats included), and the vault keeps each offer exactly once: equal
//! to a third run of the rules, over the raw page views in the warehouse (stream equals batch).

#![allow(clippy::unwrap_used)] // A test: a failed step should stop it loudly.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use playlog_e2e::*;
use playlog_model::OfferRecord;
use playlog_model::Stream;
use playlog_offers::{Engine, PageView, Rules};

#[test]
fn offers_killed_and_restarted_equal_an_offline_run_of_the_rules() {
    let broker = Broker::start();
    let scratch = Scratch::new("offers");
    let window = [
        "--users",
        "1000",
        "--from",
        "2026-03-06T00:00:00Z",
        "--to",
        "2026-03-07T00:00:00Z",
        "--seed",
        "11",
        "--partitions",
        "3",
    ];
    let expected = produce_to_dir(&scratch, "expected", &window);
    let views = expected[&Stream::PageView].len();
    // The day's events over about 15 s, so that offers runs live and is killed mid-stream.
    let mut producer = spawn_continuous_producer(&broker, &scratch, &window, "5760");

    // The live runs: two killed at moments drawn from a seed printed here (replay a failing schedule
    // with PLAYLOG_TEST_SEED=<seed>), the third left to catch up once the producer is done.
    let mut next_delay = kill_schedule("offers", 1500, 3000);
    let args = [
        "offers",
        "--brokers",
        &broker.address,
        "--commit-interval",
        "200ms",
    ];
    for run in 1..=2 {
        let mut offers =
            Background::spawn(&args, &[], scratch.path().join(format!("offers-{run}.log")));
        std::thread::sleep(next_delay());
        offers.kill();
    }
    assert!(
        producer
            .wait(Duration::from_secs(120))
            .is_some_and(|s| s.success()),
        "{}",
        producer.output()
    );

    // The offline run: the same rules over the topic's page views, partition by partition.
    let records = broker.read_all("page_view_events", views, Duration::from_secs(60));
    assert_eq!(records.len(), views);
    let mut engine = Engine::new(Rules::shipped());
    let mut offline = BTreeMap::new();
    for (partition, _, value) in &records {
        let r = playlog_consumer::decode::decode_event(Stream::PageView, value, 1 << 20).unwrap();
        let (Some(user_id), Some(page), Some(event_id)) =
            (r.user_id, r.page.as_deref(), r.event_id.as_deref())
        else {
            continue;
        };
        for d in engine.on_page_view(&PageView {
            partition: *partition,
            event_id,
            ts: r.ts,
            user_id,
            session_id: r.session_id,
            page,
            paid: r.level == "paid",
        }) {
            offline.insert(d.offer_id.clone(), d);
        }
    }
    let rules: BTreeSet<&str> = offline.values().map(|d| d.rule_id.as_str()).collect();
    assert!(
        offline.len() > 20 && rules.len() == 3,
        "too few offers to test with: {} ({rules:?})",
        offline.len()
    );

    let caught_up = || {
        broker
            .committed_offsets("playlog-offers", "page_view_events", 3)
            .iter()
            .sum::<i64>()
            >= views as i64
    };
    let mut offers = Background::spawn(&args, &[], scratch.path().join("offers-3.log"));
    assert!(
        wait_for(Duration::from_secs(120), caught_up),
        "never caught up:\n{}",
        offers.output()
    );
    assert!(
        offers.terminate(Duration::from_secs(30)),
        "{}",
        offers.output()
    );
    assert!(
        offers
            .output()
            .contains("resumed 3 partitions from checkpoints"),
        "the last run did not resume from checkpoints:\n{}",
        offers.output()
    );

    let emitted = broker.read_all("offer_events", offline.len(), Duration::from_secs(60));
    let mut by_id: BTreeMap<String, Vec<OfferRecord>> = BTreeMap::new();
    for (_, key, value) in &emitted {
        let record = playlog_consumer::decode::decode(Stream::Offer, value, 1 << 20).unwrap();
        let playlog_model::Record::Offer(offer) = record else {
            panic!("an event on offer_events")
        };
        assert_eq!(
            key.as_deref(),
            Some(offer.user_id.to_string().as_bytes()),
            "keyed by user"
        );
        by_id.entry(offer.offer_id.clone()).or_default().push(offer);
    }
    eprintln!(
        "{views} page views, {} offers offline, {} records on offer_events ({} distinct)",
        offline.len(),
        emitted.len(),
        by_id.len()
    );
    let live: BTreeSet<&String> = by_id.keys().collect();
    let offline_ids: BTreeSet<&String> = offline.keys().collect();
    assert_eq!(
        live, offline_ids,
        "offer ids: live (killed twice) vs offline"
    );
    for (id, events) in &by_id {
        for e in events {
            assert_eq!(
                e,
                &offline[id].record(e.emitted_at),
                "{id}: a record that differs from the offline decision"
            );
        }
    }

    // Landed and modelled: every record of every topic in raw, each offer once in the vault.
    let mut consumer = start_consumer(&broker, &scratch, "consumer", &[], &[]);
    consumer.land_and_stop(total(&expected) + emitted.len(), Duration::from_secs(120));
    let warehouse = format!("duckdb:{}", scratch.path().join("w.duckdb").display());
    assert_success(
        &playlog(&["vault", "build", "--warehouse", &warehouse], &[]),
        "vault build",
    );
    assert_success(
        &playlog(&["check", "--warehouse", &warehouse], &[]),
        "check",
    );
    let conn = open_warehouse(&scratch.path().join("w.duckdb"));
    let (raw_rows, raw_distinct) = {
        let mut stmt = conn
            .prepare("SELECT COUNT(*), COUNT(DISTINCT offer_id) FROM raw.offer_events")
            .unwrap();
        stmt.query_row([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
            .unwrap()
    };
    assert_eq!(
        raw_rows as usize,
        emitted.len(),
        "raw.offer_events: every record, repeats included"
    );
    assert_eq!(raw_distinct as usize, offline.len());

    // The batch side: the rules over raw.page_view_events, each partition in offset order.
    let mut batch_engine = Engine::new(Rules::shipped());
    let mut from_raw: BTreeMap<String, playlog_offers::Decision> = BTreeMap::new();
    let mut stmt = conn
        .prepare(
            "SELECT _partition, event_id, epoch_ms(ts), user_id, session_id, page, level FROM raw.page_view_events \
             WHERE user_id IS NOT NULL ORDER BY _partition, _offset",
        )
        .unwrap();
    let rows: Vec<(i32, String, i64, i64, i64, String, String)> = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    for (partition, event_id, ts, user_id, session_id, page, level) in &rows {
        for d in batch_engine.on_page_view(&PageView {
            partition: *partition,
            event_id,
            ts: *ts,
            user_id: *user_id,
            session_id: *session_id,
            page,
            paid: level == "paid",
        }) {
            from_raw.insert(d.offer_id.clone(), d);
        }
    }
    assert_eq!(from_raw, offline, "the rules over raw vs over the topic");

    // The vault: one row per offer id, with the decision's fields.
    let mut stmt = conn
        .prepare(
            "SELECT n.offer_id, COUNT(*) OVER (PARTITION BY n.offer_id), r.rule_id, u.user_id, s.session_id, \
                    n.trigger_event_id, epoch_ms(n.ts), epoch_ms(n.expires_at), n.holdout \
             FROM vault.nhl_offer n JOIN vault.hub_offer_rule r USING (offer_rule_hk) \
             JOIN vault.hub_user u USING (user_hk) JOIN vault.hub_session s USING (session_hk)",
        )
        .unwrap();
    let vault: Vec<(i64, playlog_offers::Decision)> = stmt
        .query_map([], |r| {
            Ok((
                r.get(1)?,
                playlog_offers::Decision {
                    offer_id: r.get(0)?,
                    rule_id: r.get(2)?,
                    user_id: r.get(3)?,
                    session_id: r.get(4)?,
                    trigger_event_id: r.get(5)?,
                    ts: r.get(6)?,
                    expires_at: r.get(7)?,
                    holdout: r.get(8)?,
                },
            ))
        })
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert!(
        vault.iter().all(|(n, _)| *n == 1),
        "an offer id twice in vault.nhl_offer"
    );
    let vault: BTreeMap<String, playlog_offers::Decision> = vault
        .into_iter()
        .map(|(_, d)| (d.offer_id.clone(), d))
        .collect();
    assert_eq!(vault, offline, "vault.nhl_offer vs the offline decisions");

    // The mart counts each decision once, per rule.
    let mut stmt = conn
        .prepare("SELECT rule_id, SUM(offers), SUM(holdouts) FROM marts.offer_performance GROUP BY rule_id")
        .unwrap();
    let mart: BTreeMap<String, (i64, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    let mut want: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for d in offline.values() {
        let e = want.entry(d.rule_id.clone()).or_default();
        if d.holdout {
            e.1 += 1;
        } else {
            e.0 += 1;
        }
    }
    assert_eq!(
        mart, want,
        "marts.offer_performance: offers and holdouts per rule"
    );
}

#[test]
fn a_rule_switched_off_in_the_file_applies_without_a_restart() {
    let broker = Broker::start();
    let scratch = Scratch::new("offers-reload");
    produce_to(
        &broker,
        &[
            "--users",
            "50",
            "--from",
            "2026-03-06T00:00:00Z",
            "--to",
            "2026-03-06T02:00:00Z",
        ],
    );
    let rules = scratch.path().join("rules.toml");
    std::fs::write(&rules, playlog_offers::DEFAULT_RULES).unwrap();
    let path = rules.display().to_string();
    let args = [
        "offers",
        "--brokers",
        &broker.address,
        "--rules",
        &path,
        "--commit-interval",
        "100ms",
    ];
    let mut offers = Background::spawn(&args, &[], scratch.path().join("offers.log"));
    std::thread::sleep(Duration::from_secs(2));
    // Switch retention off, and change a threshold (which needs a restart, and is said to).
    let edited = playlog_offers::DEFAULT_RULES
        .replacen(
            "level = \"paid\"\nvisited",
            "enabled = false\nlevel = \"paid\"\nvisited",
            1,
        )
        .replace("plays = 10", "plays = 12");
    std::fs::write(&rules, edited).unwrap();
    assert!(
        wait_for(Duration::from_secs(30), || offers
            .output()
            .contains("offer rule switched")),
        "{}",
        offers.output()
    );
    let log = offers.output();
    assert!(
        log.contains("retention") && log.contains("enabled=false"),
        "{log}"
    );
    assert!(
        log.contains("rules.upgrade_nudge") && log.contains("restart"),
        "{log}"
    );
    assert!(
        offers.terminate(Duration::from_secs(30)),
        "{}",
        offers.output()
    );
}
