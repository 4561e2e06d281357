//! The whole pipeline, small: produce a fixed simulated period to a real broker, consume it with two group
//! members (a real `playlog consume` process), build the vault and marts (`playlog vault build`), run
//! `playlog check`, and hold every mart figure equal to direct SQL over the raw tables. Then a second
//! period, to show the incremental run lands on the same figures a direct computation gives.

use std::collections::BTreeMap;
use std::time::Duration;

use playlog_e2e::*;
use playlog_model::Stream;

/// Consumes with two members until `want` rows landed in this process, then stops it with SIGTERM.
fn consume(broker: &Broker, scratch: &Scratch, name: &str, want: usize, extra: &[&str]) {
    let mut args = vec!["--members", "2"];
    args.extend_from_slice(extra);
    let ConsumeProcess {
        process: mut consumer,
        metrics,
    } = start_consumer(broker, scratch, name, &args, &[]);
    let landed = wait_for(Duration::from_secs(120), || {
        scrape(&metrics)
            .is_some_and(|s| metric_sum(&s, "playlog_rows_ingested_total") >= want as f64)
    });
    assert!(
        landed,
        "consumer never landed {want} rows:\n{}",
        consumer.output()
    );
    assert!(
        consumer.terminate(Duration::from_secs(30)),
        "{}",
        consumer.output()
    );
}

fn vault_build_and_check(scratch: &Scratch) {
    let warehouse = format!("duckdb:{}", scratch.path().join("w.duckdb").display());
    assert_success(
        &playlog(&["vault", "build", "--warehouse", &warehouse], &[]),
        "playlog vault build",
    );
    assert_success(
        &playlog(
            &["check", "--warehouse", &warehouse, "--max-age", "1h"],
            &[],
        ),
        "playlog check",
    );
}

/// Rows in one query's result and not the other's (both ways, with multiplicity), and the first one's size.
fn difference(conn: &duckdb::Connection, mart: &str, raw: &str) -> (i64, i64) {
    conn.query_row(
        &format!(
            "SELECT (SELECT count(*) FROM (({mart}) EXCEPT ALL ({raw})) a) + (SELECT count(*) FROM (({raw}) EXCEPT ALL ({mart})) b),
                    (SELECT count(*) FROM ({mart}) m)"
        ),
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap_or_else(|e| panic!("{e}\nmart: {mart}\nraw: {raw}"))
}

/// Each mart against the same figure computed directly from the raw tables.
fn assert_marts_match_raw(scratch: &Scratch, expected: &BTreeMap<Stream, usize>) {
    let conn = open_warehouse(&scratch.path().join("w.duckdb"));
    for (stream, want) in expected {
        let (rows, distinct) = raw_counts(&conn, stream.topic());
        assert_eq!(
            (rows as usize, distinct as usize),
            (*want, *want),
            "{stream}: raw rows vs produced"
        );
    }
    let comparisons = [
        (
            "listens: one row per play, with the play's own level, city and zip",
            "SELECT event_id, user_id, song, artist, level, city, zip, session_id, ts FROM marts.listens",
            "SELECT event_id, user_id, song, artist, level, CASE WHEN user_id IS NULL THEN NULL ELSE city END,
                    CASE WHEN user_id IS NULL THEN NULL ELSE zip END, session_id, ts FROM raw.listen_events",
        ),
        (
            "top songs yesterday (and every day)",
            "SELECT date, rank, song, artist, plays FROM marts.top_songs_daily",
            "SELECT date, rank, song, artist, plays FROM (
               SELECT date, row_number() OVER (PARTITION BY date ORDER BY plays DESC, song, artist) AS rank, song, artist, plays
               FROM (SELECT CAST(ts AS DATE) AS date, song, artist, count(*) AS plays FROM raw.listen_events GROUP BY ALL))
             WHERE rank <= 10",
        ),
        (
            "daily active users",
            "SELECT date, count(*) FROM marts.daily_user_activity GROUP BY date",
            "SELECT CAST(ts AS DATE), count(DISTINCT user_id) FROM raw.page_view_events WHERE user_id IS NOT NULL GROUP BY 1",
        ),
        (
            "daily user activity: listens, minutes, sessions, page views, end-of-day level",
            "SELECT date, user_id, listens, sessions, page_views, level FROM marts.daily_user_activity",
            "WITH pv AS (SELECT CAST(ts AS DATE) AS date, user_id, count(DISTINCT session_id) AS sessions, count(*) AS page_views,
                                arg_max(level, ts) AS level
                         FROM raw.page_view_events WHERE user_id IS NOT NULL GROUP BY ALL),
                  l AS (SELECT CAST(ts AS DATE) AS date, user_id, count(*) AS listens, sum(duration) / 60.0 AS minutes
                        FROM raw.listen_events WHERE user_id IS NOT NULL GROUP BY ALL)
             SELECT pv.date, pv.user_id, coalesce(l.listens, 0), sessions, page_views, level
             FROM pv LEFT JOIN l USING (date, user_id)",
        ),
        (
            "upgrades, downgrades and cancellations per day",
            "SELECT date, upgrades, downgrades, cancellations FROM marts.level_changes",
            "SELECT date, sum(up), sum(down), sum(cancel) FROM (
               SELECT CAST(ts AS DATE) AS date, (level = 'free')::INT AS up, (level = 'paid')::INT AS down, 0 AS cancel FROM raw.status_change_events
               UNION ALL SELECT CAST(ts AS DATE), 0, 0, 1 FROM raw.page_view_events WHERE page = 'Cancellation Confirmation')
             GROUP BY date",
        ),
        (
            "song plays and listeners per hour",
            "SELECT hour, song, artist, plays, listeners, guest_plays FROM marts.song_hourly_metrics",
            "SELECT date_trunc('hour', ts), song, artist, count(*), count(DISTINCT user_id), count(*) FILTER (WHERE user_id IS NULL)
             FROM raw.listen_events GROUP BY ALL",
        ),
        (
            "sessions: start, end, items, listens",
            "SELECT session_id, user_id, started_at, ended_at, items, listens FROM marts.sessions",
            "WITH pv AS (SELECT session_id, max(user_id) AS user_id, min(ts) AS s, max(ts) AS e, count(*) AS items
                         FROM raw.page_view_events GROUP BY session_id),
                  l AS (SELECT session_id, count(*) AS listens FROM raw.listen_events GROUP BY session_id)
             SELECT session_id, user_id, s, e, items, coalesce(listens, 0) FROM pv LEFT JOIN l USING (session_id)",
        ),
    ];
    // Minutes played, to within float summation order.
    let off: i64 = conn
        .query_row(
            "SELECT count(*) FROM marts.daily_user_activity m FULL JOIN (
               SELECT CAST(ts AS DATE) AS date, user_id, sum(duration) / 60.0 AS minutes FROM raw.listen_events
               WHERE user_id IS NOT NULL GROUP BY ALL) r USING (date, user_id)
             WHERE abs(coalesce(m.minutes_played, 0) - coalesce(r.minutes, 0)) > 1e-6",
            [],
            |r| r.get(0),
        )
        .expect("minutes query");
    assert_eq!(off, 0, "minutes played differ from raw for {off} user-days");
    for (what, mart, raw) in comparisons {
        let (differing, rows) = difference(&conn, mart, raw);
        assert!(rows > 0, "{what}: the mart is empty");
        assert_eq!(
            differing, 0,
            "{what}: {differing} rows differ between the mart and raw SQL ({rows} mart rows)"
        );
    }
}

fn counts(expected: &BTreeMap<Stream, Vec<playlog_model::EventRecord>>) -> BTreeMap<Stream, usize> {
    expected.iter().map(|(s, v)| (*s, v.len())).collect()
}

#[test]
fn produce_consume_vault_check_and_marts_equal_raw_sql_across_incremental_runs() {
    let broker = Broker::start();
    let scratch = Scratch::new("pipeline");
    let day = |from: &'static str, to: &'static str| {
        [
            "--users",
            "800",
            "--from",
            from,
            "--to",
            to,
            "--seed",
            "21",
            "--partitions",
            "3",
        ]
    };
    let first = day("2026-03-06T00:00:00Z", "2026-03-07T12:00:00Z");
    produce_to(&broker, &first);
    let mut expected = counts(&produce_to_dir(&scratch, "first", &first));
    consume(&broker, &scratch, "consume-1", expected.values().sum(), &[]);
    vault_build_and_check(&scratch);
    assert_marts_match_raw(&scratch, &expected);

    // More days (a weekend), another simulation instance: an incremental run must land on the same figures.
    let mut second = day("2026-03-07T12:00:00Z", "2026-03-09T00:00:00Z").to_vec();
    second.extend(["--instance-id", "2"]);
    produce_to(&broker, &second);
    let more = counts(&produce_to_dir(&scratch, "second", &second));
    for (stream, n) in &more {
        *expected.entry(*stream).or_default() += n;
    }
    // This time the vault also runs inside the consumer, between its writes (one DuckDB writer).
    consume(
        &broker,
        &scratch,
        "consume-2",
        more.values().sum(),
        &["--vault-every", "1s"],
    );
    let log = std::fs::read_to_string(scratch.path().join("consume-2.log")).unwrap_or_default();
    assert!(log.contains("vault: "), "the consumer ran no vault:\n{log}");
    vault_build_and_check(&scratch);
    assert_marts_match_raw(&scratch, &expected);
}
