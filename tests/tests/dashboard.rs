//! The dashboard in a real browser (Debian's chromium, headless, driven over the DevTools protocol):
//! during a live pipeline run it fills and moves; once the run is over, every KPI, chart and table it
//! shows equals SQL written here over the marts, for the whole history and for a range picked in the
//! page. The data catalog (`/catalog`) shows every table, row counts equal to SQL and the data tests'
//! results; `playlog docs` on a warehouse with a broken key shows that test failing. Screenshots go to the
//! test's scratch directory and to `target/tmp/`.

#![allow(clippy::unwrap_used)] // A test: a failed step should stop it loudly.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions, Tab};
use playlog_e2e::http::*;
use playlog_e2e::*;
use serde_json::Value as Json;

/// Two simulated days (so that a range can hold one), 400 users, produced live at 2880x wall clock
/// (a day in 30 s).
const TWO_DAYS: [&str; 10] = [
    "--users",
    "400",
    "--from",
    "2026-01-01T00:00:00Z",
    "--to",
    "2026-01-03T00:00:00Z",
    "--seed",
    "11",
    "--partitions",
    "3",
];

fn browser() -> Browser {
    let options = LaunchOptions::default_builder()
        .path(Some(PathBuf::from("/usr/bin/chromium")))
        .sandbox(false)
        .window_size(Some((1400, 1700)))
        .idle_browser_timeout(Duration::from_secs(600))
        .build()
        .unwrap();
    Browser::new(options).unwrap_or_else(|e| {
        panic!("starting chromium (scripts/install-deps.sh --test installs it): {e}")
    })
}

/// Evaluates `expression` (which must return a string of JSON) in the page.
fn eval(tab: &Tab, expression: &str) -> Json {
    let result = tab.evaluate(expression, false).unwrap();
    match result.value {
        Some(Json::String(s)) => serde_json::from_str(&s).unwrap(),
        other => panic!("{expression}: {other:?}"),
    }
}

/// What the page shows: its refresh count, the KPI tiles' values, every chart's data table, and how
/// many points each chart drew.
fn shown(tab: &Tab) -> Json {
    eval(
        tab,
        r#"JSON.stringify({
            href: location.href,
            state: document.readyState,
            chart: typeof window.Chart,
            loaded: performance.getEntriesByType('resource').map(e => `${e.name} ${Math.round(e.duration)} ms`),
            refreshes: Number(document.body.dataset.refreshes || 0),
            range: document.body.dataset.range || "",
            notice: document.querySelector('#notice').hidden ? null : document.querySelector('#notice').textContent,
            kpis: Object.fromEntries([...document.querySelectorAll('.kpi')].map(k => [k.dataset.kpi, k.querySelector('.value').dataset.value ?? null])),
            tables: Object.fromEntries([...document.querySelectorAll('table[data-aggregate]')].map(t => [t.dataset.aggregate,
                [...t.tBodies[0].rows].map(r => Object.fromEntries([...r.cells].map(c => [c.dataset.column, c.dataset.value])))])),
            drawn: Object.fromEntries([...document.querySelectorAll('[data-chart]')].map(f => {
                const chart = window.Chart && Chart.getChart(f.querySelector('canvas'));
                return [f.dataset.chart, chart ? chart.data.datasets.reduce((n, d) => n + d.data.length, 0) : -1];
            })),
        })"#,
    )
}

/// Waits until the page has refreshed after `after` refreshes and `done` holds for what it shows.
fn wait_for_page(tab: &Tab, after: u64, timeout: Duration, done: impl Fn(&Json) -> bool) -> Json {
    let mut last = Json::Null;
    let ok = wait_for(timeout, || {
        last = shown(tab);
        last["refreshes"].as_u64().unwrap_or(0) > after && done(&last)
    });
    assert!(ok, "the page never showed what was awaited: {last:#}");
    last
}

fn kpi(page: &Json, name: &str) -> f64 {
    page["kpis"][name]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1.0)
}

fn screenshot(tab: &Tab, scratch: &Scratch, name: &str) {
    let png = tab
        .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
        .unwrap();
    std::fs::write(scratch.path().join(name), &png).unwrap();
    let keep = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&keep, &png).unwrap();
    eprintln!("screenshot: {}", keep.display());
}

/// One number or text as the page's tables carry it (data-value: JavaScript's own rendering).
fn close(shown: &str, expected: &Json) -> bool {
    match expected {
        Json::Number(n) => shown.parse::<f64>().is_ok_and(|s| {
            (s - n.as_f64().unwrap()).abs() <= 1e-9 * n.as_f64().unwrap().abs().max(1.0)
        }),
        Json::String(s) => shown == s,
        Json::Null => shown.is_empty(),
        Json::Bool(b) => shown == if *b { "true" } else { "false" },
        other => panic!("no table cell holds {other}"),
    }
}

/// Rows of `sql` as objects named by `columns` (numbers as numbers, the rest as text).
fn rows(conn: &duckdb::Connection, sql: &str, columns: &[&str]) -> Vec<BTreeMap<String, Json>> {
    let mut stmt = conn.prepare(sql).unwrap();
    let mut out = Vec::new();
    let mut result = stmt.query([]).unwrap();
    while let Some(row) = result.next().unwrap() {
        let mut object = BTreeMap::new();
        for (i, column) in columns.iter().enumerate() {
            use duckdb::types::ValueRef as V;
            let value = match row.get_ref(i).unwrap() {
                V::Null => Json::Null,
                V::BigInt(n) => Json::from(n),
                V::Int(n) => Json::from(n),
                V::HugeInt(n) => Json::from(n as f64),
                V::Double(f) => Json::from(f),
                V::Text(t) => Json::from(String::from_utf8_lossy(t).into_owned()),
                other => panic!("{sql}: column {column}: {other:?}"),
            };
            object.insert((*column).to_owned(), value);
        }
        out.push(object);
    }
    out
}

/// Every figure the page shows for `from..=to` equals this SQL over the marts.
fn assert_page_equals_marts(page: &Json, conn: &duckdb::Connection, from: &str, to: &str) {
    let range = format!("date BETWEEN DATE '{from}' AND DATE '{to}'");
    let one = |sql: &str| -> f64 {
        conn.query_row(sql, [], |r| r.get::<_, Option<f64>>(0))
            .unwrap()
            .unwrap_or(0.0)
    };
    let expected_kpis = [
        (
            "plays",
            one(&format!("SELECT count(*) FROM marts.listens WHERE {range}")),
        ),
        (
            "minutes_played",
            one(&format!(
                "SELECT sum(duration) / 60 FROM marts.listens WHERE {range}"
            )),
        ),
        (
            "daily_active_users",
            one(&format!(
                "SELECT avg(n) FROM (SELECT date, count(DISTINCT user_id) AS n FROM marts.daily_user_activity WHERE {range} GROUP BY date)"
            )),
        ),
        (
            "paid_share",
            one(&format!(
                "SELECT avg(CASE WHEN level = 'paid' THEN 1.0 ELSE 0.0 END) FROM marts.daily_user_activity WHERE {range}"
            )),
        ),
        (
            "upgrades",
            one(&format!(
                "SELECT sum(upgrades) FROM marts.level_changes WHERE {range}"
            )),
        ),
        (
            "downgrades",
            one(&format!(
                "SELECT sum(downgrades) FROM marts.level_changes WHERE {range}"
            )),
        ),
        (
            "cancellations",
            one(&format!(
                "SELECT sum(cancellations) FROM marts.level_changes WHERE {range}"
            )),
        ),
    ];
    for (name, expected) in expected_kpis {
        let got = kpi(page, name);
        assert!(
            (got - expected).abs() <= 1e-9 * expected.abs().max(1.0),
            "KPI {name} for {from}..{to}: the page shows {got}, the marts hold {expected}"
        );
    }
    assert!(kpi(page, "plays") > 0.0, "some plays in {from}..{to}");

    let top = |order: &str| {
        format!(
            "SELECT song, artist, count(*) AS plays, count(DISTINCT user_id) AS listeners FROM marts.listens WHERE {range} \
             GROUP BY song_hk, song, artist ORDER BY {order} DESC, song, artist LIMIT 10"
        )
    };
    let state_sql = format!(
        "SELECT state, count(*) AS plays, count(DISTINCT user_id) AS listeners FROM marts.listens WHERE {range} AND state IS NOT NULL \
         GROUP BY state ORDER BY plays DESC, state LIMIT 10"
    );
    // Session lengths, bucketed here in Rust from the sessions' own lengths.
    let bounds = [60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0];
    let mut buckets = [0_i64; 8];
    let mut stmt = conn
        .prepare(&format!(
            "SELECT length_seconds FROM marts.sessions WHERE {range}"
        ))
        .unwrap();
    for length in stmt.query_map([], |r| r.get::<_, f64>(0)).unwrap() {
        let length = length.unwrap();
        buckets[bounds.iter().take_while(|b| length >= **b).count()] += 1;
    }
    let sessions: Vec<BTreeMap<String, Json>> = buckets
        .iter()
        .map(|n| BTreeMap::from([("sessions".to_owned(), Json::from(*n))]))
        .collect();
    let expected_tables: Vec<(&str, Vec<BTreeMap<String, Json>>)> = vec![
        (
            "top_songs_plays",
            rows(
                conn,
                &top("plays"),
                &["song", "artist", "plays", "listeners"],
            ),
        ),
        (
            "top_songs_listeners",
            rows(
                conn,
                &top("listeners"),
                &["song", "artist", "plays", "listeners"],
            ),
        ),
        (
            "top_states",
            rows(conn, &state_sql, &["state", "plays", "listeners"]),
        ),
        (
            "plays_per_hour",
            rows(
                conn,
                &format!(
                    "SELECT strftime(hour, '%Y-%m-%dT%H:%M:%S'), count(*) FROM marts.listens WHERE {range} GROUP BY hour ORDER BY hour"
                ),
                &["hour", "plays"],
            ),
        ),
        (
            "daily_activity",
            rows(
                conn,
                &format!(
                    "SELECT CAST(date AS VARCHAR), count(*), count(*) FILTER (WHERE level = 'paid'), sum(listens)::BIGINT \
                     FROM marts.daily_user_activity WHERE {range} GROUP BY date ORDER BY date"
                ),
                &["date", "active_users", "paid_users", "plays"],
            ),
        ),
        (
            "level_changes",
            rows(
                conn,
                &format!(
                    "SELECT CAST(date AS VARCHAR), upgrades, downgrades, cancellations FROM marts.level_changes WHERE {range} ORDER BY date"
                ),
                &["date", "upgrades", "downgrades", "cancellations"],
            ),
        ),
        (
            "level_mix",
            rows(
                conn,
                &format!(
                    "SELECT level, count(*), count(DISTINCT user_id) FROM marts.listens WHERE {range} GROUP BY level ORDER BY level"
                ),
                &["level", "plays", "listeners"],
            ),
        ),
        ("session_lengths", sessions),
    ];
    for (table, expected) in expected_tables {
        let shown = page["tables"][table]
            .as_array()
            .unwrap_or_else(|| panic!("the page has no data table for {table}: {page:#}"));
        assert_eq!(
            shown.len(),
            expected.len(),
            "{table} for {from}..{to}: rows shown {shown:?}, the marts hold {expected:?}"
        );
        for (i, (got, want)) in shown.iter().zip(&expected).enumerate() {
            for (column, value) in want {
                let cell = got[column].as_str().unwrap_or_default();
                assert!(
                    close(cell, value),
                    "{table} row {i} column {column} for {from}..{to}: the page shows {cell:?}, the marts hold {value}"
                );
            }
        }
    }
    for (chart, points) in page["drawn"].as_object().unwrap() {
        assert!(
            points.as_i64().unwrap() > 0,
            "chart {chart} drew nothing: {page:#}"
        );
    }
}

#[test]
fn the_dashboard_fills_and_moves_during_a_live_run_and_shows_what_the_marts_hold() {
    let broker = Broker::start();
    let scratch = Scratch::new("dashboard");
    let file = scratch.path().join("w.duckdb");
    let live = format!("127.0.0.1:{}", free_port());
    let mut producer = spawn_continuous_producer(&broker, &scratch, &TWO_DAYS, "2880");
    let mut consumer = start_serving_consumer(&broker, &scratch, &live);
    assert!(
        wait_until_serving(&live, Duration::from_secs(60)),
        "{}",
        consumer.process.output()
    );
    let browser = browser();
    let tab: Arc<Tab> = browser.new_tab().unwrap();
    tab.set_default_timeout(Duration::from_secs(60));
    tab.navigate_to(&format!("http://{live}/")).unwrap();
    tab.wait_until_navigated().unwrap();

    // Live: the page fills, then moves on by itself as events land and the vault runs.
    let first = wait_for_page(&tab, 0, Duration::from_secs(120), |p| kpi(p, "plays") > 0.0);
    for (chart, points) in first["drawn"].as_object().unwrap() {
        assert!(
            points.as_i64().unwrap() >= 0,
            "chart {chart} was not drawn: {first:#}"
        );
    }
    let refreshes = first["refreshes"].as_u64().unwrap();
    let later = wait_for_page(&tab, refreshes, Duration::from_secs(90), |p| {
        kpi(p, "plays") > kpi(&first, "plays")
    });
    assert!(later["notice"].is_null(), "{later:#}");
    screenshot(&tab, &scratch, "dashboard-live.png");

    // The pipeline page, from the consumer's own metrics: rows landing, lag and the vault's runs.
    tab.navigate_to(&format!("http://{live}/pipeline")).unwrap();
    tab.wait_until_navigated().unwrap();
    let pipeline_shown = |tab: &Tab| {
        eval(
            tab,
            r#"JSON.stringify({
                refreshes: (window.playlogPipeline || {}).refreshes || 0,
                rows: document.querySelector('[data-figure="rows_ingested"]').textContent,
                lag: document.querySelector('[data-figure="lag_records"]').textContent,
                vault: document.querySelector('#vault-run').textContent,
                tables: document.querySelectorAll('#warehouse tbody tr').length,
                source: document.querySelector('#source').textContent,
            })"#,
        )
    };
    let mut pipeline = Json::Null;
    assert!(
        wait_for(Duration::from_secs(30), || {
            pipeline = pipeline_shown(&tab);
            pipeline["rows"]
                .as_str()
                .is_some_and(|r| r != "—" && r != "0")
                && pipeline["vault"]
                    .as_str()
                    .unwrap()
                    .starts_with("Last vault run")
        }),
        "{pipeline:#}"
    );
    assert_eq!(
        pipeline["tables"],
        playlog_model::Stream::ALL.len(),
        "{pipeline:#}"
    );
    assert!(pipeline["lag"].as_str().unwrap() != "—", "{pipeline:#}");
    assert!(
        pipeline["source"]
            .as_str()
            .unwrap()
            .contains("this process"),
        "{pipeline:#}"
    );
    let page = get_json(&live, "/api/v1/pipeline.json", &[]);
    assert!(
        page["metrics"]["rows_ingested"].as_f64().unwrap() > 0.0
            && page["metrics"]["dead_letters"] == 0.0,
        "{page:#}"
    );
    std::thread::sleep(Duration::from_secs(6));
    screenshot(&tab, &scratch, "pipeline-live.png");

    // The catalog of the live warehouse: every table, and the tests ran.
    tab.navigate_to(&format!("http://{live}/catalog")).unwrap();
    tab.wait_until_navigated().unwrap();
    let live_catalog = catalog_shown(&tab);
    assert_eq!(
        live_catalog["sections"].as_u64(),
        Some(30),
        "5 raw, 18 vault and 7 mart tables: {live_catalog:#}"
    );
    assert!(
        live_catalog["tests"].as_str().unwrap().contains(" pass"),
        "{live_catalog:#}"
    );
    assert_eq!(live_catalog["nodes"], live_catalog["sections"]);
    screenshot(&tab, &scratch, "catalog-live.png");

    // The run ends: everything produced lands and is modelled.
    assert!(
        producer
            .wait(Duration::from_secs(240))
            .is_some_and(|s| s.success()),
        "the producer: {}",
        producer.output()
    );
    let mut landed = -1.0;
    assert!(
        wait_for(Duration::from_secs(60), || {
            let now = consumer.rows_ingested();
            let settled = now > 0.0 && now == landed;
            landed = now;
            std::thread::sleep(Duration::from_secs(2));
            settled
        }),
        "{}",
        consumer.process.output()
    );
    assert!(
        consumer.process.terminate(Duration::from_secs(60)),
        "{}",
        consumer.process.output()
    );
    let warehouse = format!("duckdb:{}", file.display());
    assert_success(
        &playlog(&["vault", "build", "--warehouse", &warehouse], &[]),
        "the last vault run",
    );

    // `playlog serve` on the finished file; the page against SQL over the same file.
    let addr = format!("127.0.0.1:{}", free_port());
    let serve = Background::spawn(
        &["serve", "--warehouse", &warehouse, "--addr", &addr],
        &[("PLAYLOG_LOG", "playlog_serve=debug")],
        scratch.path().join("serve.log"),
    );
    assert!(
        wait_until_serving(&addr, Duration::from_secs(30)),
        "{}",
        serve.output()
    );
    tab.navigate_to(&format!("http://{addr}/")).unwrap();
    tab.wait_until_navigated().unwrap();
    let all = wait_for_page(&tab, 0, Duration::from_secs(60), |p| kpi(p, "plays") > 0.0);
    let conn = open_warehouse(&file);
    let (first_day, last_day): (String, String) = conn
        .query_row(
            "SELECT CAST(min(date) AS VARCHAR), CAST(max(date) AS VARCHAR) FROM marts.daily_user_activity",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_ne!(first_day, last_day, "two days of data");
    assert_eq!(
        all["range"],
        format!("{first_day}..{last_day}"),
        "the whole history by default"
    );
    assert_page_equals_marts(&all, &conn, &first_day, &last_day);
    screenshot(&tab, &scratch, "dashboard.png");

    // A range picked in the page: the last day alone.
    let refreshes = all["refreshes"].as_u64().unwrap();
    eval(
        &tab,
        &format!(
            r#"(() => {{
                const from = document.querySelector('#from');
                from.value = '{last_day}';
                from.dispatchEvent(new Event('change'));
                return JSON.stringify(true);
            }})()"#
        ),
    );
    let picked = wait_for_page(&tab, refreshes, Duration::from_secs(30), |p| {
        p["range"] == format!("{last_day}..{last_day}")
    });
    assert_page_equals_marts(&picked, &conn, &last_day, &last_day);
    assert!(
        kpi(&picked, "plays") < kpi(&all, "plays"),
        "one day holds fewer plays than two"
    );

    // The catalog of the finished file: each table's rows as SQL counts them, and every test passing.
    tab.navigate_to(&format!("http://{addr}/catalog")).unwrap();
    tab.wait_until_navigated().unwrap();
    let shown = catalog_shown(&tab);
    let counted = shown["rows"].as_object().unwrap();
    assert_eq!(counted.len(), 30, "{shown:#}");
    for (table, rows) in counted {
        let expected: i64 = conn
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            rows.as_str().unwrap().replace(',', ""),
            expected.to_string(),
            "rows of {table}"
        );
    }
    let tests = shown["tests"].as_str().unwrap();
    let (passed, total) = tests
        .split_once(" pass")
        .unwrap()
        .0
        .split_once(" / ")
        .unwrap();
    assert_eq!(passed, total, "{tests}");
    assert!(total.parse::<u32>().unwrap() > 40, "{tests}");
    screenshot(&tab, &scratch, "catalog.png");
    drop(serve);
    drop(conn);

    // A broken key: a second row for one user in hub_user. `playlog docs` shows that test failing.
    {
        let conn = duckdb::Connection::open(&file).unwrap();
        conn.execute_batch("INSERT INTO vault.hub_user SELECT * FROM vault.hub_user LIMIT 1")
            .unwrap();
    }
    let out = scratch.path().join("docs");
    let docs = playlog(
        &[
            "docs",
            "--out",
            out.to_str().unwrap(),
            "--warehouse",
            &warehouse,
            "--max-age",
            "1000d",
        ],
        &[],
    );
    assert_success(&docs, "playlog docs");
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    let hub_user = html
        .split(r#"<section class="card table" id="vault.hub_user">"#)
        .nth(1)
        .and_then(|s| s.split("</section>").next())
        .unwrap();
    assert!(
        hub_user.contains("<code>unique_key</code></td><td>user_hk is unique</td><td><span class=\"badge fail\">fail: 1 offending rows"),
        "{hub_user}"
    );
    assert!(
        std::fs::read_to_string(out.join("catalog.css"))
            .unwrap()
            .contains("svg.lineage")
    );
}

/// What the catalog page shows: its sections and graph nodes, the tests tile, and each table's rows.
fn catalog_shown(tab: &Tab) -> Json {
    assert!(
        wait_for(Duration::from_secs(60), || {
            eval(
                tab,
                "JSON.stringify(document.querySelectorAll('section.table').length)",
            )
            .as_u64()
            .is_some_and(|n| n > 0)
        }),
        "the catalog never loaded"
    );
    eval(
        tab,
        r#"(() => {
            const rows = {};
            for (const tr of document.querySelectorAll('table.index tbody tr')) {
                rows[tr.cells[0].textContent] = tr.cells[3].textContent;
            }
            const tile = [...document.querySelectorAll('.kpi')].find(k => k.textContent.startsWith('Data tests'));
            return JSON.stringify({
                sections: document.querySelectorAll('section.table').length,
                nodes: document.querySelectorAll('svg.lineage g.node').length,
                tests: tile ? tile.querySelector('.value').textContent : null,
                rows,
            });
        })()"#,
    )
}
