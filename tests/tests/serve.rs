//! `playlog serve` and `playlog consume --serve`: the REST API answers as independent SQL over the same
//! file does, for every filter, sort and page; walking pages while the vault rebuilds marts skips and
//! repeats nothing; bad input is a 400 naming its parameter; injection strings stay values.

#![allow(clippy::unwrap_used)] // A test: a failed step should stop it loudly.

use std::collections::HashSet;
use std::time::Duration;

use playlog_e2e::http::*;
use playlog_e2e::*;
use playlog_model::Stream;
use serde_json::Value as Json;

/// A day after the acceptance day (another date: the vault rebuilds only that date's marts).
const NEXT_DAY: [&str; 10] = [
    "--users",
    "1000",
    "--from",
    "2026-01-03T00:00:00Z",
    "--to",
    "2026-01-04T00:00:00Z",
    "--seed",
    "8",
    "--partitions",
    "3",
];

/// Every page of a resource, following `next_url`: the rows, in order.
fn walk(addr: &str, path: &str, query: &[(&str, &str)]) -> Vec<Json> {
    let mut rows = Vec::new();
    let mut page = get_json(addr, path, query);
    loop {
        rows.extend(page["rows"].as_array().unwrap().iter().cloned());
        match page["next_url"].as_str() {
            None => return rows,
            Some(next) => {
                let (status, body) = get(addr, next, &[]);
                assert_eq!(status, 200, "{next}: {body}");
                page = serde_json::from_str(&body).unwrap();
            }
        }
    }
}

fn text(row: &Json, column: &str) -> String {
    match &row[column] {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[test]
fn the_api_pages_filters_and_sorts_the_marts_as_independent_sql_does() {
    let broker = Broker::start();
    let scratch = Scratch::new("serve");
    let file = scratch.path().join("w.duckdb");
    produce_to(&broker, &DAY);
    let expected = produce_to_dir(&scratch, "expected", &DAY);
    let live = format!("127.0.0.1:{}", free_port());
    let mut consumer = start_serving_consumer(&broker, &scratch, &live);
    let listens = expected[&Stream::Listen].len() as i64;
    let listens_total = || {
        let (status, body) = try_get(&live, "/api/v1/marts.listens.json", &[("_size", "1")])?;
        (status == 200)
            .then(|| serde_json::from_str::<Json>(&body).ok())
            .flatten()
            .and_then(|j| j["total"].as_i64())
    };
    assert!(
        wait_for(Duration::from_secs(120), || listens_total()
            == Some(listens)),
        "marts.listens holds {:?} of {listens}:\n{}",
        listens_total(),
        consumer.process.output()
    );

    // Served from inside the consumer, while another day lands and the vault rebuilds its date's marts:
    // every listen of the first day once, and no row twice.
    let next_day = {
        let address = broker.address.clone();
        std::thread::spawn(move || {
            let mut args = vec!["produce", "-q", "--brokers", &address];
            args.extend_from_slice(&NEXT_DAY);
            assert_success(&playlog(&args, &[]), "the next day");
        })
    };
    let rows = walk(
        &live,
        "/api/v1/marts.listens.json",
        &[("_size", "700"), ("_sort_desc", "ts")],
    );
    next_day.join().unwrap();
    let mut seen = HashSet::new();
    for row in &rows {
        assert!(seen.insert(text(row, "listen_hk")), "a row twice: {row}");
    }
    let first_day = rows.iter().filter(|r| r["date"] == "2026-01-01").count() as i64;
    assert_eq!(first_day, listens, "every listen of the first day, once");
    assert!(
        rows.windows(2)
            .all(|w| text(&w[0], "ts") >= text(&w[1], "ts")),
        "the pages keep the order across snapshots"
    );
    assert!(
        consumer.process.terminate(Duration::from_secs(60)),
        "{}",
        consumer.process.output()
    );

    // `playlog serve` on the file, read-only, beside independent SQL on it.
    let addr = format!("127.0.0.1:{}", free_port());
    let warehouse = format!("duckdb:{}", file.display());
    let serve = Background::spawn(
        &["serve", "--warehouse", &warehouse, "--addr", &addr],
        &[],
        scratch.path().join("serve.log"),
    );
    assert!(
        wait_until_serving(&addr, Duration::from_secs(30)),
        "{}",
        serve.output()
    );
    let conn = open_warehouse(&file);
    let count = |condition: &str| -> i64 {
        conn.query_row(
            &format!("SELECT count(*) FROM marts.song_hourly_metrics WHERE {condition}"),
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let (some_artist, some_hour): (String, String) = conn
        .query_row(
            "SELECT artist, CAST(hour AS VARCHAR) FROM marts.song_hourly_metrics ORDER BY plays DESC, hour, song_hk LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let fragment: String = some_artist.chars().take(4).collect();
    let cases: Vec<(Vec<(&str, String)>, String)> = vec![
        (vec![("plays", "3".into())], "plays = 3".into()),
        (vec![("plays__exact", "3".into())], "plays = 3".into()),
        (
            vec![("plays__not", "1".into())],
            "plays IS DISTINCT FROM 1".into(),
        ),
        (vec![("plays__gt", "2".into())], "plays > 2".into()),
        (vec![("plays__gte", "2".into())], "plays >= 2".into()),
        (vec![("plays__lt", "2".into())], "plays < 2".into()),
        (vec![("plays__lte", "2".into())], "plays <= 2".into()),
        (
            vec![("plays__in", "2,4,6".into())],
            "plays IN (2, 4, 6)".into(),
        ),
        (
            vec![("artist__contains", fragment.clone())],
            format!("contains(artist, '{}')", fragment.replace('\'', "''")),
        ),
        (
            vec![("artist__isnull", "1".into())],
            "artist IS NULL".into(),
        ),
        (
            vec![("artist__isnull", "0".into())],
            "artist IS NOT NULL".into(),
        ),
        (
            vec![("hour__gte", some_hour.clone())],
            format!("hour >= TIMESTAMP '{some_hour}'"),
        ),
        (
            vec![
                ("date", "2026-01-03".into()),
                ("listeners__gte", "2".into()),
            ],
            "date = DATE '2026-01-03' AND listeners >= 2".into(),
        ),
    ];
    for (query, condition) in &cases {
        let pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let page = get_json(&addr, "/api/v1/marts.song_hourly_metrics.json", &pairs);
        assert_eq!(
            page["total"].as_i64().unwrap(),
            count(condition),
            "{query:?} ~ {condition}"
        );
    }
    // Several sort keys, every page, against the same order in SQL (ties broken by the key: hour, song_hk).
    let api: Vec<(String, String)> = walk(
        &addr,
        "/api/v1/marts.song_hourly_metrics.json",
        &[
            ("plays__gte", "2"),
            ("_sort_desc", "plays"),
            ("_sort", "artist"),
            ("_size", "37"),
        ],
    )
    .iter()
    .map(|r| (text(r, "hour"), text(r, "song_hk")))
    .collect();
    let mut stmt = conn
        .prepare(
            "SELECT CAST(hour AS VARCHAR), CAST(song_hk AS VARCHAR) FROM marts.song_hourly_metrics WHERE plays >= 2 \
             ORDER BY plays DESC NULLS LAST, artist ASC NULLS LAST, hour, song_hk",
        )
        .unwrap();
    let sql: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(sql.len() > 37 * 2, "several pages: {}", sql.len());
    let first_difference = api.iter().zip(&sql).position(|(a, b)| a != b);
    assert!(
        api.len() == sql.len() && first_difference.is_none(),
        "every page, in SQL's order: {} rows from the API, {} from SQL, first difference at {first_difference:?}: {:?} vs {:?}",
        api.len(),
        sql.len(),
        first_difference.map(|i| &api[i.saturating_sub(2)..(i + 2).min(api.len())]),
        first_difference.map(|i| &sql[i.saturating_sub(2)..(i + 2).min(sql.len())]),
    );
    // Arrays and CSV carry the same rows.
    let arrays = get_json(
        &addr,
        "/api/v1/marts.top_songs_daily.json",
        &[("_shape", "arrays"), ("_size", "5")],
    );
    assert_eq!(
        arrays["rows"][0].as_array().unwrap().len(),
        arrays["columns"].as_array().unwrap().len()
    );
    let (status, csv) = get(
        &addr,
        "/api/v1/marts.top_songs_daily.csv",
        &[("date", "2026-01-01")],
    );
    assert_eq!(status, 200);
    let top: i64 = conn
        .query_row(
            "SELECT count(*) FROM marts.top_songs_daily WHERE date = DATE '2026-01-01'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(csv.lines().count() as i64, top + 1, "{csv}");
    assert!(csv.starts_with("date,rank,"), "{csv}");

    // The OpenAPI document is valid (openapi-spec-validator, which install-deps.sh --test installs), lists
    // every table, and each of its paths answers.
    let openapi = get_json(&addr, "/api/v1/openapi.json", &[]);
    let document = scratch.path().join("openapi.json");
    std::fs::write(&document, openapi.to_string()).unwrap();
    let cache = std::env::var("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cache")
        });
    let validator = cache.join("playlog/openapi-check-0.7.1/bin/python");
    let checked = std::process::Command::new(&validator)
        .args([
            "-c",
            "import json, sys; from openapi_spec_validator import validate; validate(json.load(open(sys.argv[1])))",
        ])
        .arg(&document)
        .output()
        .unwrap_or_else(|e| panic!("{} (run scripts/install-deps.sh --test): {e}", validator.display()));
    assert!(
        checked.status.success(),
        "the OpenAPI document is not valid:\n{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let paths: Vec<String> = openapi["paths"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    // The index, two formats per mart, the aggregates' index and one path each, and the pipeline.
    assert!(
        paths.len()
            == 1 + 2 * playlog_vault::MART_KEYS.len()
                + 1
                + playlog_serve::aggregates::AGGREGATES.len()
                + 1,
        "{paths:?}"
    );
    for path in &paths {
        let query: &[(&str, &str)] = if path.starts_with("/api/v1/aggregates") {
            &[("from", "2026-01-01")]
        } else {
            &[("_size", "1")]
        };
        assert_eq!(get(&addr, path, query).0, 200, "{path}");
    }

    // Refusals name the parameter.
    for (query, parameter) in [
        (vec![("plays__gt", "ten")], "plays__gt"),
        (vec![("nope", "1")], "nope"),
        (vec![("plays__regex", "1")], "plays__regex"),
        (vec![("_size", "100000")], "_size"),
        (vec![("_sort", "plays; DROP TABLE marts.listens")], "_sort"),
        (vec![("_next", "bm90IGEgdG9rZW4")], "_next"),
    ] {
        let (status, body) = get(&addr, "/api/v1/marts.song_hourly_metrics.json", &query);
        assert_eq!(status, 400, "{query:?}: {body}");
        let error: Json = serde_json::from_str(&body).unwrap();
        assert_eq!(error["parameter"], parameter, "{body}");
    }
    // Injection strings are values: nothing matches them, and nothing changed.
    for evil in [
        "x' OR '1'='1",
        "'; DROP TABLE marts.listens; --",
        "\" OR 1=1 --",
        "%' OR artist LIKE '%",
    ] {
        for filter in ["artist", "artist__contains", "artist__in"] {
            let page = get_json(
                &addr,
                "/api/v1/marts.song_hourly_metrics.json",
                &[(filter, evil)],
            );
            assert_eq!(page["total"], 0, "{filter}={evil}");
        }
    }
    assert_eq!(
        get_json(&addr, "/api/v1/marts.listens.json", &[("_size", "1")])["total"]
            .as_i64()
            .unwrap(),
        conn.query_row("SELECT count(*) FROM marts.listens", [], |r| r
            .get::<_, i64>(0))
            .unwrap()
    );
    // Raw tables and personal columns are not served without --expose-raw.
    assert_eq!(get(&addr, "/api/v1/raw.listen_events.json", &[]).0, 404);
    let index = get_json(&addr, "/api/v1", &[]);
    let listens_columns = index["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "marts.listens")
        .unwrap()["columns"]
        .to_string();
    assert!(
        !listens_columns.contains("first_name") && !listens_columns.contains("\"lat\""),
        "{listens_columns}"
    );
    let (status, _) = {
        let mut response = agent()
            .post(format!("http://{addr}/api/v1/marts.listens.json"))
            .send("")
            .unwrap();
        (
            response.status().as_u16(),
            response.body_mut().read_to_string().unwrap(),
        )
    };
    assert_eq!(status, 405, "read-only");
}

#[test]
fn serve_refuses_what_it_cannot_do_in_one_line() {
    let scratch = Scratch::new("serve-refusals");
    let missing = format!("duckdb:{}", scratch.path().join("none.duckdb").display());
    let output = playlog(&["serve", "--warehouse", &missing], &[]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("no warehouse at"),
        "{output:?}"
    );
    let output = playlog(
        &["serve", "--warehouse", &missing, "--addr", "0.0.0.0:8080"],
        &[],
    );
    assert!(!output.status.success());
    let output = playlog(&["serve", "--warehouse", "bigquery://p/x"], &[]);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("DuckDB files"),
        "{output:?}"
    );
}
