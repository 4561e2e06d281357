//! The pipeline page's figures: consumer lag, ingest rate, freshness, dead letters and the vault's runs,
//! from metrics in the Prometheus text format. Two sources give that same format: the process's own
//! registry (`playlog consume --serve`) and a Prometheus server's `/federate` endpoint (`--prometheus-url`,
//! for a `playlog serve` that runs apart from the consumers, as on GKE), where every pod's series are
//! summed. Pure: parsing and summing, no I/O.

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};

/// One sample: a metric name, its labels, its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// The samples of a text exposition (OpenMetrics or Prometheus 0.0.4); lines it cannot read are skipped.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (name, labels, rest) = match line.find('{') {
        Some(open) => {
            let close = line[open..].rfind('}')? + open;
            (
                &line[..open],
                labels_of(&line[open + 1..close])?,
                &line[close + 1..],
            )
        }
        None => {
            let (name, rest) = line.split_once(' ')?;
            (name, BTreeMap::new(), rest)
        }
    };
    // The value, then an optional timestamp (federation adds one).
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name: name.trim().to_owned(),
        labels,
        value,
    })
}

/// `a="x",b="y"`, with `\"`, `\\` and `\n` escapes in values.
fn labels_of(text: &str) -> Option<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let after = after.strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break i,
                c => value.push(c),
            }
        };
        labels.insert(key.trim().trim_start_matches(',').trim().to_owned(), value);
        rest = after[end + 1..].trim_start_matches(',').trim();
    }
    Some(labels)
}

/// The sum of every series of `name` whose labels include `with`.
fn sum(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<f64> = samples
        .iter()
        .filter(|s| {
            s.name == name
                && with
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).is_some_and(|x| x == v))
        })
        .map(|s| s.value)
        .collect();
    (!matching.is_empty()).then(|| matching.iter().sum())
}

fn max(samples: &[Sample], name: &str) -> Option<f64> {
    samples
        .iter()
        .filter(|s| s.name == name && s.value.is_finite())
        .map(|s| s.value)
        .reduce(f64::max)
}

/// A quantile of a histogram, summed over its series, by linear interpolation within the bucket it falls
/// in (as PromQL's `histogram_quantile`); over everything observed since the process started.
pub fn histogram_quantile(samples: &[Sample], name: &str, q: f64) -> Option<f64> {
    let mut buckets: BTreeMap<u64, (f64, f64)> = BTreeMap::new(); // bound bits (sortable) -> (bound, count)
    let bucket = format!("{name}_bucket");
    for s in samples.iter().filter(|s| s.name == bucket) {
        let bound: f64 = match s.labels.get("le")?.as_str() {
            "+Inf" => f64::INFINITY,
            le => le.parse().ok()?,
        };
        // Non-negative bounds sort as their bit patterns do.
        buckets.entry(bound.to_bits()).or_insert((bound, 0.0)).1 += s.value;
    }
    let total = buckets.values().last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for (bound, count) in buckets.values().copied() {
        if count >= rank {
            if bound.is_infinite() {
                return Some(lower.0); // past the last finite bucket: its bound is all that is known
            }
            let within = (rank - lower.1) / (count - lower.1).max(f64::MIN_POSITIVE);
            return Some(lower.0 + (bound - lower.0) * within.clamp(0.0, 1.0));
        }
        lower = (bound, count);
    }
    None
}

/// The figures the page shows, from one reading of the metrics (`None` where a metric is absent).
pub fn figures(samples: &[Sample]) -> Json {
    json!({
        "lag_records": sum(samples, "kafka_consumergroup_group_lag", &[]),
        "lag_seconds": max(samples, "kafka_consumergroup_group_lag_seconds"),
        "rows_ingested": sum(samples, "playlog_rows_ingested_total", &[]),
        "dead_letters": sum(samples, "playlog_dead_letters_total", &[]),
        "warehouse_errors": sum(samples, "playlog_warehouse_errors_total", &[]),
        "rebalances": sum(samples, "playlog_rebalances_total", &[]),
        "assigned_partitions": sum(samples, "playlog_assigned_partitions", &[]),
        "subscribed_partitions": max(samples, "playlog_subscribed_partitions"),
        "freshness_p50_seconds": histogram_quantile(samples, "playlog_event_freshness_seconds", 0.5),
        "freshness_p99_seconds": histogram_quantile(samples, "playlog_event_freshness_seconds", 0.99),
        "publish_freshness_p50_seconds": histogram_quantile(samples, "playlog_publish_freshness_seconds", 0.5),
        "publish_freshness_p99_seconds": histogram_quantile(samples, "playlog_publish_freshness_seconds", 0.99),
        "vault_runs_succeeded": sum(samples, "playlog_vault_runs_total", &[("outcome", "succeeded")]),
        "vault_runs_failed": sum(samples, "playlog_vault_runs_total", &[("outcome", "failed")]),
        "vault_last_success_unix": max(samples, "playlog_vault_last_success_timestamp_seconds"),
    })
}

/// Rows per second between the oldest and newest of `history` (time in seconds, rows ingested so far);
/// `None` until two readings are a second apart, or when the counter went back (a restart).
pub fn rate(history: &[(f64, f64)]) -> Option<f64> {
    let (first, last) = (history.first()?, history.last()?);
    let seconds = last.0 - first.0;
    (seconds >= 1.0 && last.1 >= first.1).then(|| (last.1 - first.1) / seconds)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP kafka_consumergroup_group_lag High watermark minus the group's committed offset
# TYPE kafka_consumergroup_group_lag gauge
kafka_consumergroup_group_lag{consumergroup="playlog",topic="listen_events",partition="0"} 5
kafka_consumergroup_group_lag{consumergroup="playlog",topic="listen_events",partition="1"} 7
kafka_consumergroup_group_lag_seconds{consumergroup="playlog",topic="listen_events",partition="0"} 0.25
kafka_consumergroup_group_lag_seconds{consumergroup="playlog",topic="listen_events",partition="1"} 1.5
playlog_rows_ingested_total{table="listen_events"} 100 1764669600000
playlog_rows_ingested_total{table="page_view_events"} 150
playlog_dead_letters_total{topic="listen_events",reason="bad \"json\", really"} 2
playlog_vault_runs_total{outcome="succeeded"} 9
playlog_vault_runs_total{outcome="failed"} 1
playlog_event_freshness_seconds_bucket{le="0.5"} 50
playlog_event_freshness_seconds_bucket{le="1.0"} 90
playlog_event_freshness_seconds_bucket{le="2.0"} 100
playlog_event_freshness_seconds_bucket{le="+Inf"} 100
playlog_event_freshness_seconds_sum 60.0
playlog_event_freshness_seconds_count 100
# EOF
"#;

    #[test]
    fn sums_series_and_reads_escaped_labels_and_timestamps() {
        let samples = parse(TEXT);
        let f = figures(&samples);
        assert_eq!(f["lag_records"], 12.0);
        assert_eq!(f["lag_seconds"], 1.5);
        assert_eq!(f["rows_ingested"], 250.0);
        assert_eq!(f["dead_letters"], 2.0);
        assert_eq!(f["vault_runs_succeeded"], 9.0);
        assert_eq!(f["vault_runs_failed"], 1.0);
        assert!(f["warehouse_errors"].is_null(), "absent, not zero");
        let dead = samples
            .iter()
            .find(|s| s.name == "playlog_dead_letters_total")
            .unwrap();
        assert_eq!(dead.labels["reason"], "bad \"json\", really");
    }

    #[test]
    fn quantiles_interpolate_within_their_bucket() {
        let samples = parse(TEXT);
        let p50 = histogram_quantile(&samples, "playlog_event_freshness_seconds", 0.5).unwrap();
        assert!((p50 - 0.5).abs() < 1e-9, "{p50}");
        let p70 = histogram_quantile(&samples, "playlog_event_freshness_seconds", 0.7).unwrap();
        assert!((p70 - 0.75).abs() < 1e-9, "{p70}");
        let p99 = histogram_quantile(&samples, "playlog_event_freshness_seconds", 0.99).unwrap();
        assert!((p99 - 1.9).abs() < 1e-9, "{p99}");
        assert_eq!(histogram_quantile(&[], "x", 0.5), None);
    }

    #[test]
    fn pods_histograms_add_up() {
        let two = format!("{TEXT}\n{}", TEXT.replace("50\n", "0\n"));
        let samples = parse(&two);
        assert!(
            histogram_quantile(&samples, "playlog_event_freshness_seconds", 0.5).unwrap() > 0.5
        );
    }

    #[test]
    fn a_rate_needs_a_second_and_a_counter_that_did_not_restart() {
        assert_eq!(rate(&[(0.0, 0.0)]), None);
        assert_eq!(rate(&[(0.0, 0.0), (0.5, 10.0)]), None);
        assert_eq!(rate(&[(0.0, 100.0), (2.0, 300.0)]), Some(100.0));
        assert_eq!(rate(&[(0.0, 100.0), (2.0, 10.0)]), None);
    }

    #[test]
    fn garbage_lines_are_skipped() {
        assert!(parse("not a metric\nx{a=\"1\" 3\n{}\n").is_empty());
    }
}
