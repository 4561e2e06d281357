//! The vault's metrics: how long runs take, how they end, what they add, and when one last succeeded, so
//! that an alert can tell a vault that has fallen behind its schedule.

use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use playlog_metrics::MetricsRegistry;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use crate::RunReport;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabels {
    table: String,
}

pub struct VaultMetrics {
    runs: Family<OutcomeLabels, Counter>,
    duration: Histogram,
    rows_added: Family<TableLabels, Counter>,
    raw_rows: Family<TableLabels, Counter>,
    last_success: Gauge<f64, AtomicU64>,
}

impl VaultMetrics {
    /// Registers the vault's metrics; `schedule` is the time between two runs' starts.
    pub fn register(registry: &MetricsRegistry, schedule: Duration) -> VaultMetrics {
        let runs = Family::<OutcomeLabels, Counter>::default();
        // 50 ms to about 7 minutes.
        let duration = Histogram::new(exponential_buckets(0.05, 2.0, 14));
        let rows_added = Family::<TableLabels, Counter>::default();
        let raw_rows = Family::<TableLabels, Counter>::default();
        // Until the first run succeeds, the process start stands in: a vault that has just started is not
        // behind its schedule, and one that never succeeds falls behind from then on.
        let last_success = Gauge::<f64, AtomicU64>::default();
        last_success.set(unix_now());
        let schedule_gauge = Gauge::<f64, AtomicU64>::default();
        schedule_gauge.set(schedule.as_secs_f64());
        // Both outcomes exist from the start, so that rates over them are 0 rather than absent.
        for outcome in ["succeeded", "failed"] {
            runs.get_or_create(&OutcomeLabels { outcome }).inc_by(0);
        }
        registry.register(
            "playlog_vault_runs",
            "Vault runs, by outcome (succeeded, failed)",
            runs.clone(),
        );
        registry.register(
            "playlog_vault_run_duration_seconds",
            "Wall time of one vault run, failed runs included",
            duration.clone(),
        );
        registry.register(
            "playlog_vault_rows_added",
            "Rows inserted into vault tables and marts by vault runs",
            rows_added.clone(),
        );
        registry.register(
            "playlog_vault_raw_rows",
            "Raw rows taken in by vault runs, per raw table",
            raw_rows.clone(),
        );
        registry.register(
            "playlog_vault_last_success_timestamp_seconds",
            "Unix time at which the last successful vault run ended (the process start before the first)",
            last_success.clone(),
        );
        registry.register(
            "playlog_vault_schedule_seconds",
            "Configured time between the starts of two vault runs",
            schedule_gauge,
        );
        VaultMetrics {
            runs,
            duration,
            rows_added,
            raw_rows,
            last_success,
        }
    }

    /// Records one run's outcome; `elapsed` is its wall time.
    pub fn record<E>(&self, result: &Result<RunReport, E>, elapsed: Duration) {
        self.duration.observe(elapsed.as_secs_f64());
        let outcome = if result.is_ok() {
            "succeeded"
        } else {
            "failed"
        };
        self.runs.get_or_create(&OutcomeLabels { outcome }).inc();
        let Ok(report) = result else { return };
        for (table, rows) in &report.changed {
            let labels = TableLabels {
                table: table.clone(),
            };
            self.rows_added.get_or_create(&labels).inc_by(*rows as u64);
        }
        for (table, rows) in &report.staged {
            let labels = TableLabels {
                table: table.clone(),
            };
            self.raw_rows.get_or_create(&labels).inc_by(*rows);
        }
        self.last_success.set(unix_now());
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_counted_by_outcome_and_its_rows_by_table() {
        let registry = MetricsRegistry::default();
        let metrics = VaultMetrics::register(&registry, Duration::from_secs(10));
        let report = RunReport {
            staged: [("listen_events".to_owned(), 7)].into_iter().collect(),
            changed: vec![("vault.hub_user".to_owned(), 3)],
            seconds: 0.5,
        };
        metrics.record::<()>(&Ok(report), Duration::from_millis(500));
        metrics.record(&Err(()), Duration::from_millis(100));
        let text = registry.encode();
        for line in [
            "playlog_vault_runs_total{outcome=\"succeeded\"} 1",
            "playlog_vault_runs_total{outcome=\"failed\"} 1",
            "playlog_vault_rows_added_total{table=\"vault.hub_user\"} 3",
            "playlog_vault_raw_rows_total{table=\"listen_events\"} 7",
            "playlog_vault_run_duration_seconds_count 2",
            "playlog_vault_schedule_seconds 10.0",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(
            !text.contains("playlog_vault_last_success_timestamp_seconds 0.0"),
            "{text}"
        );
    }
}
