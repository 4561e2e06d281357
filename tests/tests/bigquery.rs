//! BigQuery, against a real emulator (bqemulator, started per test): the same produced events consumed
//! into BigQuery and into DuckDB, the vault and marts built in both, `playlog check` passing on BigQuery,
//! and every mart identical row for row. Then the delivery guarantee: events delivered to raw twice leave
//! the vault and marts unchanged. And retries: the emulator killed mid-stream, then started again.

#![allow(clippy::unwrap_used)] // A test: a failed step should stop it loudly.

use std::collections::BTreeMap;
use std::time::Duration;

use playlog_e2e::*;
use playlog_model::Stream;
use playlog_vault::Sql;
use playlog_warehouse::{Value, Warehouse};

const PREFIX: &str = "bigquery://test/pl";

/// Opening through the emulator, without migrating (the consumers did).
fn emulated(endpoint: &str) -> playlog_warehouse::OpenOptions {
    playlog_warehouse::OpenOptions {
        bigquery_endpoint: Some(endpoint.to_owned()),
        ..Default::default()
    }
}

/// A `playlog consume` process into `warehouse`, two members, metrics on a free port.
fn spawn_consumer(
    broker: &Broker,
    scratch: &Scratch,
    name: &str,
    group: &str,
    warehouse: &str,
    endpoint: &str,
) -> (Background, String) {
    let metrics = format!("127.0.0.1:{}", free_port());
    let args = [
        "consume",
        "--brokers",
        &broker.address,
        "--group",
        group,
        "--members",
        "2",
        "--warehouse",
        warehouse,
        "--bigquery-endpoint",
        endpoint,
        // Creates the datasets and raw tables first: a BigQuery consumer only checks, without it.
        "--migrate",
        "--metrics-addr",
        &metrics,
        "-X",
        "session.timeout.ms=6000",
    ];
    let process = Background::spawn(&args, &[], scratch.path().join(format!("{name}.log")));
    (process, metrics)
}

/// Consumes until `want` rows landed, then stops the consumer with SIGTERM.
fn consume(
    broker: &Broker,
    scratch: &Scratch,
    name: &str,
    group: &str,
    warehouse: &str,
    endpoint: &str,
    want: usize,
) {
    let (mut consumer, metrics) = spawn_consumer(broker, scratch, name, group, warehouse, endpoint);
    let landed = wait_for(Duration::from_secs(180), || {
        scrape(&metrics)
            .is_some_and(|s| metric_sum(&s, "playlog_rows_ingested_total") >= want as f64)
    });
    assert!(
        landed,
        "{name} never landed {want} rows:\n{}",
        consumer.output()
    );
    assert!(
        consumer.terminate(Duration::from_secs(60)),
        "{}",
        consumer.output()
    );
}

fn vault_build_and_check(warehouse: &str, endpoint: &str) {
    let base = ["--warehouse", warehouse, "--bigquery-endpoint", endpoint];
    // The vault's tables are a step of their own on BigQuery (the consumer made only the raw ones).
    let mut migrate = vec!["migrate"];
    migrate.extend(base);
    assert_success(&playlog(&migrate, &[]), "playlog migrate");
    let mut build = vec!["vault", "build"];
    build.extend(base);
    assert_success(&playlog(&build, &[]), "playlog vault build");
    let mut check = vec!["check", "--max-age", "1h"];
    check.extend(base);
    let output = playlog(&check, &[]);
    assert_success(&output, "playlog check");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(" 0 failed"), "{stdout}");
}

/// Every mart's business columns (hash keys and load times left out), in a fixed order, as portable values.
/// Minutes played are floating-point sums, whose last digits depend on summation order: compared to the
/// thousandth of a minute.
fn marts(warehouse: &mut Warehouse) -> BTreeMap<&'static str, Vec<Vec<Value>>> {
    let sql = Sql::for_warehouse(warehouse);
    let marts = [
        (
            "listens",
            "event_id, ts, date, hour, weekday, is_weekend, user_id, first_name, last_name, gender, registration, \
             city, state, zip, lat, lon, level, auth, song, artist, duration, session_id, item_in_session",
            "event_id",
        ),
        (
            "sessions",
            "session_id, user_id, date, started_at, ended_at, length_seconds, items, listens",
            "session_id",
        ),
        (
            "daily_user_activity",
            "date, user_id, listens, sessions, page_views, ROUND(minutes_played, 3), level",
            "date, user_id",
        ),
        (
            "song_hourly_metrics",
            "date, hour, song, artist, plays, listeners, guest_plays, ROUND(minutes_played, 3)",
            "date, hour, song, artist",
        ),
        (
            "top_songs_daily",
            "date, rank, song, artist, plays, listeners",
            "date, rank",
        ),
        (
            "level_changes",
            "date, upgrades, downgrades, cancellations",
            "date",
        ),
    ];
    marts
        .into_iter()
        .map(|(mart, columns, order)| {
            let rows = warehouse
                .query(&format!(
                    "SELECT {columns} FROM {} ORDER BY {order}",
                    sql.table("marts", mart)
                ))
                .unwrap_or_else(|e| panic!("reading marts.{mart}: {e}"));
            (mart, rows)
        })
        .collect()
}

fn scalar(warehouse: &mut Warehouse, query: &str) -> i64 {
    let rows = warehouse.query(query).unwrap();
    rows[0][0]
        .as_i64()
        .unwrap_or_else(|| panic!("{query}: {:?}", rows[0][0]))
}

fn assert_same_marts(bigquery: &mut Warehouse, duckdb: &mut Warehouse) {
    let (bq, duck) = (marts(bigquery), marts(duckdb));
    for (mart, duck_rows) in &duck {
        let bq_rows = &bq[mart];
        assert!(!duck_rows.is_empty(), "marts.{mart} is empty");
        assert_eq!(bq_rows.len(), duck_rows.len(), "marts.{mart}: row counts");
        for (i, (b, d)) in bq_rows.iter().zip(duck_rows).enumerate() {
            assert_eq!(b, d, "marts.{mart}, row {i}: BigQuery vs DuckDB");
        }
    }
}

#[test]
fn bigquery_marts_equal_duckdb_marts_and_survive_duplicate_deliveries() {
    let broker = Broker::start();
    let emulator = BigQueryEmulator::start(false);
    let endpoint = emulator.endpoint();
    let scratch = Scratch::new("bigquery");
    let window = [
        "--users",
        "300",
        "--from",
        "2026-03-06T00:00:00Z",
        "--to",
        "2026-03-07T12:00:00Z",
        "--seed",
        "5",
        "--partitions",
        "3",
    ];
    produce_to(&broker, &window);
    let produced: BTreeMap<Stream, usize> = produce_to_dir(&scratch, "expected", &window)
        .iter()
        .map(|(s, v)| (*s, v.len()))
        .collect();
    let total: usize = produced.values().sum();

    consume(
        &broker,
        &scratch,
        "consume-bq",
        "playlog-raw",
        PREFIX,
        &endpoint,
        total,
    );
    vault_build_and_check(PREFIX, &endpoint);
    let duck = format!("duckdb:{}", scratch.path().join("w.duckdb").display());
    consume(
        &broker,
        &scratch,
        "consume-duck",
        "duck",
        &duck,
        &endpoint,
        total,
    );
    vault_build_and_check(&duck, &endpoint);

    let mut bq = Warehouse::open_with(PREFIX, &emulated(&endpoint)).unwrap();
    let mut duckdb = Warehouse::open(&duck).unwrap();
    let sql = Sql::for_warehouse(&bq);
    for (stream, want) in &produced {
        let distinct = scalar(
            &mut bq,
            &format!(
                "SELECT COUNT(DISTINCT event_id) FROM {}",
                sql.table("raw", stream.topic())
            ),
        );
        assert_eq!(
            distinct as usize, *want,
            "{stream}: distinct events in BigQuery raw vs produced"
        );
    }
    // The raw tables' columns are the DuckDB ones, in the same order (schemas/warehouse/*).
    for stream in Stream::EVENTS {
        let columns = |w: &mut Warehouse, s: &Sql| {
            w.transaction(|x| Ok(x.columns(&s.table("raw", stream.topic()))?))
                .unwrap()
        };
        let duck_sql = Sql::for_warehouse(&duckdb);
        assert_eq!(
            columns(&mut bq, &sql),
            columns(&mut duckdb, &duck_sql),
            "raw.{stream} columns"
        );
    }
    assert_same_marts(&mut bq, &mut duckdb);
    drop(bq);

    // Delivery into raw is at-least-once: deliver every event a second time (another consumer group
    // into the same datasets). The vault and marts must not change: they are exactly-once by construction.
    consume(
        &broker,
        &scratch,
        "consume-again",
        "replay",
        PREFIX,
        &endpoint,
        total,
    );
    let mut bq = Warehouse::open_with(PREFIX, &emulated(&endpoint)).unwrap();
    let listens_raw = scalar(
        &mut bq,
        &format!("SELECT COUNT(*) FROM {}", sql.table("raw", "listen_events")),
    );
    assert_eq!(
        listens_raw as usize,
        2 * produced[&Stream::Listen],
        "every play is in raw twice now"
    );
    drop(bq);
    vault_build_and_check(PREFIX, &endpoint);
    let mut bq = Warehouse::open_with(PREFIX, &emulated(&endpoint)).unwrap();
    assert_same_marts(&mut bq, &mut duckdb);
}

#[test]
fn a_bigquery_outage_is_retried_and_nothing_is_lost() {
    let broker = Broker::start();
    let mut emulator = BigQueryEmulator::start(true);
    let endpoint = emulator.endpoint();
    let scratch = Scratch::new("bigquery-outage");
    let day = |from: &'static str, to: &'static str, instance: &'static str| {
        [
            "--users",
            "150",
            "--from",
            from,
            "--to",
            to,
            "--seed",
            "9",
            "--instance-id",
            instance,
        ]
    };
    let first = day("2026-04-01T00:00:00Z", "2026-04-01T12:00:00Z", "1");
    let second = day("2026-04-01T12:00:00Z", "2026-04-02T00:00:00Z", "2");
    produce_to(&broker, &first);
    let want_first: usize = produce_to_dir(&scratch, "first", &first)
        .values()
        .map(Vec::len)
        .sum();
    let want_second: usize = produce_to_dir(&scratch, "second", &second)
        .values()
        .map(Vec::len)
        .sum();

    let (mut consumer, metrics) = spawn_consumer(
        &broker,
        &scratch,
        "consume",
        "playlog-raw",
        PREFIX,
        &endpoint,
    );
    let ingested = |metrics: &str| {
        scrape(metrics).map_or(0.0, |s| metric_sum(&s, "playlog_rows_ingested_total"))
    };
    assert!(
        wait_for(Duration::from_secs(120), || ingested(&metrics)
            >= want_first as f64),
        "{}",
        consumer.output()
    );
    // BigQuery goes away; events keep coming.
    emulator.stop();
    produce_to(&broker, &second);
    let errors = |metrics: &str| {
        scrape(metrics).map_or(0.0, |s| metric_sum(&s, "playlog_warehouse_errors_total"))
    };
    assert!(
        wait_for(Duration::from_secs(120), || errors(&metrics) >= 1.0),
        "the consumer never reported a failed write:\n{}",
        consumer.output()
    );
    assert!(
        consumer.wait(Duration::from_millis(1)).is_none(),
        "the consumer gave up:\n{}",
        consumer.output()
    );
    emulator.restart();
    assert!(
        wait_for(Duration::from_secs(180), || ingested(&metrics)
            >= (want_first + want_second) as f64),
        "writes did not resume after the outage:\n{}",
        consumer.output()
    );
    assert!(
        consumer.terminate(Duration::from_secs(60)),
        "{}",
        consumer.output()
    );
    let log = consumer.output();
    assert!(log.contains("retrying"), "retries are logged:\n{log}");

    let mut bq = Warehouse::open_with(PREFIX, &emulated(&endpoint)).unwrap();
    let sql = Sql::for_warehouse(&bq);
    let distinct: i64 = Stream::EVENTS
        .iter()
        .map(|s| {
            scalar(
                &mut bq,
                &format!(
                    "SELECT COUNT(DISTINCT event_id) FROM {}",
                    sql.table("raw", s.topic())
                ),
            )
        })
        .sum();
    assert_eq!(
        distinct as usize,
        want_first + want_second,
        "every event landed"
    );
}
