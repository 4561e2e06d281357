//! BigQuery as production meets it, against bqemulator with a recording proxy in front
//! (`playlog_e2e::recording_proxy`), for what the emulator itself ignores or cannot do:
//! - migrations are a step of their own: a consumer or a vault run on datasets that do not exist (or lack
//!   tables) creates nothing and names what is missing and the command that creates it;
//! - every job carries the datasets' location, every statement that writes has a job id of Playlog's own,
//!   every read a request id (bqemulator ignores location and requestId: the requests are checked);
//! - a job reported as still running is waited for before the next statement (the emulator finishes every
//!   job before it answers: the proxy reports them running);
//! - a statement whose response is lost runs once: the offsets MERGE is forwarded and runs, its response
//!   is dropped, and the retry with the same job id gets BigQuery's `409 duplicate` (the proxy gives it: the
//!   emulator would run the job again) and reads the job's outcome. Before job ids, the retry ran the MERGE
//!   again, found the offsets moved, and took its own write for another member's: a false fence.

#![allow(clippy::unwrap_used)] // A test: a failed step should stop it loudly.

use std::time::Duration;

use playlog_e2e::recording_proxy::{Recorded, RecordingProxy};
use playlog_e2e::*;
use playlog_vault::Sql;
use playlog_warehouse::{OpenOptions, Warehouse};

const URL: &str = "bigquery://test/prod";

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn bigquery_migrates_as_its_own_step_sends_its_location_and_runs_each_statement_once() {
    let broker = Broker::start();
    let emulator = BigQueryEmulator::start(false);
    let proxy = RecordingProxy::start(&emulator.endpoint());
    let scratch = Scratch::new("bigquery-production");
    let endpoint = format!("http://{}", proxy.address);
    let bq = ["--warehouse", URL, "--bigquery-endpoint", &endpoint];
    let with = |args: &[&str]| -> Vec<String> {
        args.iter()
            .chain(bq.iter())
            .map(|s| (*s).to_owned())
            .collect()
    };
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let args = with(args);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        playlog(&args, env)
    };
    let window = [
        "--users",
        "60",
        "--from",
        "2026-03-06T00:00:00Z",
        "--to",
        "2026-03-06T08:00:00Z",
        "--seed",
        "9",
        "--partitions",
        "2",
    ];
    produce_to(&broker, &window);
    let expected = produce_to_dir(&scratch, "expected", &window);
    let total = total(&expected);

    // 1. Nothing exists yet: the consumer refuses to start, creates nothing, and says what to run.
    let refused = run(
        &[
            "consume",
            "--brokers",
            &broker.address,
            "--metrics-addr",
            "off",
        ],
        &[],
    );
    assert!(!refused.status.success(), "{}", stderr(&refused));
    let message = stderr(&refused);
    assert!(
        message.contains("dataset test:prod_raw does not exist")
            && message.contains("playlog migrate --warehouse bigquery://test/prod"),
        "{message}"
    );
    assert!(
        !proxy
            .requests()
            .iter()
            .any(|r| r.method == "POST"
                && (r.path.ends_with("/datasets") || r.path.ends_with("/jobs"))),
        "a consumer that may not migrate created something: {:#?}",
        proxy.requests()
    );

    // 2. The consumer migrates raw (--migrate, in EU) and consumes; the first offsets MERGE loses its
    // response after it ran.
    proxy.lose_response_of(|r| {
        r.method == "POST" && r.path.ends_with("/jobs") && r.body.contains("_kafka_offsets")
    });
    let metrics = format!("127.0.0.1:{}", free_port());
    let args = with(&[
        "consume",
        "--brokers",
        &broker.address,
        "--migrate",
        "--bigquery-location",
        "EU",
        "--metrics-addr",
        &metrics,
        "-X",
        "session.timeout.ms=6000",
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut consumer = Background::spawn(&args, &[], scratch.path().join("consume.log"));
    let landed = wait_for(Duration::from_secs(180), || {
        scrape(&metrics)
            .is_some_and(|s| metric_sum(&s, "playlog_rows_ingested_total") >= total as f64)
    });
    assert!(landed, "never landed {total} rows:\n{}", consumer.output());
    assert!(
        consumer.terminate(Duration::from_secs(60)),
        "{}",
        consumer.output()
    );
    let log = consumer.output();
    assert!(
        !log.contains("was written by another member"),
        "the retried MERGE was taken for another member's write:\n{log}"
    );

    // The lost MERGE was retried with its own job id, answered 409, and read back (jobs.get).
    let requests = proxy.requests();
    let lost: Vec<&Recorded> = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/jobs") && r.status.is_none())
        .collect();
    assert!(!lost.is_empty(), "no MERGE lost its response");
    let lost_id = lost[0].json()["jobReference"]["jobId"]
        .as_str()
        .unwrap()
        .to_owned();
    let sent = requests
        .iter()
        .filter(|r| r.json()["jobReference"]["jobId"].as_str() == Some(&lost_id))
        .count();
    assert!(
        sent >= 2,
        "the lost job {lost_id} was not retried with its id"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.method == "GET" && r.path.contains(&format!("/jobs/{lost_id}"))),
        "the outcome of job {lost_id} was never read"
    );

    // Raw holds every event exactly once (the rows streamed once; the MERGE ran once).
    let mut w = Warehouse::open_with(
        URL,
        &OpenOptions {
            bigquery_endpoint: Some(emulator.endpoint()),
            ..Default::default()
        },
    )
    .unwrap();
    let sql = Sql::for_warehouse(&w);
    for (stream, events) in &expected {
        let rows = w
            .query(&format!(
                "SELECT COUNT(*), COUNT(DISTINCT event_id) FROM {}",
                sql.table("raw", stream.topic())
            ))
            .unwrap();
        assert_eq!(
            (rows[0][0].as_i64(), rows[0][1].as_i64()),
            (Some(events.len() as i64), Some(events.len() as i64)),
            "raw.{stream}: rows and distinct events vs produced"
        );
    }
    drop(w);

    // 3. The vault's tables are not there (the consumer made raw only): a run names them, and the command.
    let refused = run(&["vault", "build"], &[]);
    assert!(!refused.status.success());
    let message = stderr(&refused);
    assert!(
        message.contains("has migrations not applied")
            && message.contains("hub_user")
            && message.contains("playlog migrate"),
        "{message}"
    );
    // A location other than the datasets' is refused before any job.
    let elsewhere = run(&["check", "--bigquery-location", "US"], &[]);
    assert!(!elsewhere.status.success());
    assert!(
        stderr(&elsewhere).contains("is in EU, not in US"),
        "{}",
        stderr(&elsewhere)
    );

    // 4. `playlog migrate` makes them; the vault builds and its checks pass (the location read from the
    // dataset, not given). Every job is reported as still running, as BigQuery does for any job longer
    // than the call: each statement is then waited for (jobs.getQueryResults) before the next.
    proxy.report_jobs_running(true);
    assert_success(&run(&["migrate"], &[]), "playlog migrate");
    assert_success(&run(&["vault", "build"], &[]), "playlog vault build");
    proxy.report_jobs_running(false);
    let waited = proxy
        .requests()
        .iter()
        .filter(|r| {
            r.method == "GET" && r.path.contains("/queries/") && r.path.contains("maxResults=0")
        })
        .count();
    assert!(waited > 50, "only {waited} statements were waited for");
    let check = run(&["check", "--max-age", "1h"], &[]);
    assert_success(&check, "playlog check");
    assert!(
        String::from_utf8_lossy(&check.stdout).contains(" 0 failed"),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    // 5. What every request carried.
    let requests = proxy.requests();
    let jobs: Vec<&Recorded> = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/jobs"))
        .collect();
    let queries: Vec<&Recorded> = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/queries"))
        .collect();
    let polls: Vec<&Recorded> = requests
        .iter()
        .filter(|r| {
            r.method == "GET" && (r.path.contains("/queries/") || r.path.contains("/jobs/"))
        })
        .collect();
    assert!(
        jobs.len() > 50 && queries.len() > 10,
        "{} jobs, {} queries",
        jobs.len(),
        queries.len()
    );
    for r in &jobs {
        let reference = &r.json()["jobReference"];
        assert!(
            reference["jobId"]
                .as_str()
                .is_some_and(|id| id.starts_with("playlog_")),
            "a job without Playlog's job id: {}",
            r.body
        );
        assert_eq!(reference["location"], "EU", "{}", r.body);
    }
    for r in &queries {
        let body = r.json();
        assert!(
            body["requestId"].is_string(),
            "a query without requestId: {}",
            r.body
        );
        assert_eq!(body["location"], "EU", "{}", r.body);
    }
    for r in &polls {
        assert!(
            r.path.contains("location=EU"),
            "a poll without the location: {}",
            r.path
        );
    }
    for r in requests
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/datasets"))
    {
        assert_eq!(r.json()["location"], "EU", "{}", r.body);
    }
    // Every write went through jobs.insert: no DML or DDL through jobs.query, whose requestId holds for
    // minutes only.
    for r in &queries {
        let sql = r.json()["query"]
            .as_str()
            .unwrap_or_default()
            .trim_start()
            .to_ascii_uppercase();
        assert!(
            sql.starts_with("SELECT") || sql.starts_with("WITH"),
            "a statement that writes went through jobs.query: {sql}"
        );
    }
}
