//! `playlog produce` against a real Kafka-protocol broker (tansu), read back with a plain consumer.

use std::time::Duration;

use playlog_e2e::*;
use playlog_model::Stream;

#[test]
fn a_published_day_reads_back_exactly_once_with_user_keys() {
    let broker = Broker::start();
    let scratch = Scratch::new("produce-avro");
    produce_to(&broker, &DAY);
    let expected = produce_to_dir(&scratch, "expected", &DAY);

    for stream in Stream::EVENTS {
        let want = &expected[&stream];
        assert!(!want.is_empty(), "a simulated day has {stream} events");
        let records = broker.read_all(stream.topic(), want.len(), Duration::from_secs(60));
        let mut decoded = Vec::with_capacity(records.len());
        for (_, key, value) in &records {
            let (s, record) = playlog_model::avro::decode(value).expect("valid single-object Avro");
            let record = record.into_event().expect("an event");
            assert_eq!(s, stream, "record in the wrong topic");
            let key =
                String::from_utf8(key.clone().expect("every record has a key")).expect("UTF-8 key");
            assert_eq!(
                key,
                record.user_id.unwrap_or(record.session_id).to_string(),
                "key is the user id, else the session id"
            );
            decoded.push(record);
        }
        assert_eq!(
            decoded.len(),
            want.len(),
            "{stream}: read {} records, published {}",
            decoded.len(),
            want.len()
        );
        assert!(
            sorted(decoded) == sorted(want.clone()),
            "{stream}: the records read back differ from those produced"
        );
    }
}

#[test]
fn json_format_publishes_eventsim_json() {
    let broker = Broker::start();
    let scratch = Scratch::new("produce-json");
    let window = [
        "--users",
        "200",
        "--from",
        "2026-01-03",
        "--to",
        "2026-01-03T12:00:00Z",
        "--seed",
        "3",
        "--compression",
        "zstd",
    ];
    let mut args = vec![
        "produce",
        "-q",
        "--format",
        "json",
        "--brokers",
        &broker.address,
    ];
    args.extend_from_slice(&window);
    assert_success(&playlog(&args, &[]), "playlog produce --format json");
    let expected = produce_to_dir(&scratch, "expected", &window);
    let want = &expected[&Stream::PageView];
    let records = broker.read_all(
        Stream::PageView.topic(),
        want.len(),
        Duration::from_secs(60),
    );
    let got: Vec<_> = records
        .iter()
        .map(|(_, _, v)| serde_json::from_slice(v).expect("a JSON event"))
        .collect();
    assert!(
        sorted(got) == sorted(want.clone()),
        "JSON page views differ"
    );
}

#[test]
fn an_unreachable_broker_is_one_clear_error_and_a_failure_exit() {
    let port = free_port().to_string();
    let brokers = format!("127.0.0.1:{port}");
    let output = playlog(
        &["produce", "-q", "--brokers", &brokers, "--users", "5"],
        &[],
    );
    assert!(!output.status.success(), "must fail");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("cannot reach Kafka") && stderr.contains(&brokers),
        "{stderr}"
    );
}

#[test]
fn events_do_not_depend_on_the_host_timezone() {
    let args = [
        "produce",
        "-q",
        "--output",
        "-",
        "--users",
        "50",
        "--from",
        "2026-03-01",
        "--to",
        "2026-03-03",
        "--seed",
        "9",
    ];
    let utc = playlog(&args, &[("TZ", "UTC")]);
    let far = playlog(&args, &[("TZ", "Pacific/Kiritimati")]);
    assert_success(&utc, "produce in UTC");
    assert_success(&far, "produce in UTC+14");
    assert!(!utc.stdout.is_empty());
    assert!(
        utc.stdout == far.stdout,
        "output changed with the host timezone"
    );
}

#[test]
fn a_bad_config_file_names_the_file_and_field() {
    let scratch = Scratch::new("bad-config");
    let path = scratch.path().join("site.json");
    std::fs::write(&path, r#"{"alpha": "fast"}"#).expect("write");
    let output = playlog(
        &[
            "produce",
            "-q",
            "--output",
            "-",
            "--config",
            path.to_str().expect("utf-8 path"),
        ],
        &[],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("site.json") && stderr.contains("alpha"),
        "{stderr}"
    );
}
