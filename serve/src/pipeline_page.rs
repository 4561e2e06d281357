//! `/api/v1/pipeline.json`, which the `/pipeline` page draws: the metrics' figures (`pipeline.rs`), from
//! the process's own registry or a Prometheus server, and the warehouse's own view: how old each raw
//! table's newest load is, and the last vault run.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use crate::api::Response;
use crate::pipeline;

/// Where the metrics come from.
#[derive(Debug, Clone)]
pub enum MetricsSource {
    /// This process's registry: `playlog consume --serve`.
    Process(playlog_metrics::MetricsRegistry),
    /// A Prometheus server that scrapes the consumers (its base URL): read through `/federate`.
    Prometheus(String),
    /// None: only the warehouse's view.
    None,
}

/// How long the ingest rate is averaged over.
const RATE_WINDOW: Duration = Duration::from_secs(30);
const PROMETHEUS_TIMEOUT: Duration = Duration::from_secs(5);

pub struct PipelinePage {
    source: MetricsSource,
    /// Rows ingested, as read at each request, for the rate.
    history: Mutex<VecDeque<(Instant, f64)>>,
    started: Instant,
    agent: ureq::Agent,
}

impl PipelinePage {
    pub fn new(source: MetricsSource) -> PipelinePage {
        PipelinePage {
            source,
            history: Mutex::new(VecDeque::new()),
            started: Instant::now(),
            agent: ureq::Agent::config_builder()
                .timeout_global(Some(PROMETHEUS_TIMEOUT))
                .build()
                .into(),
        }
    }

    fn metrics_text(&self) -> Result<(String, String), String> {
        match &self.source {
            MetricsSource::Process(registry) => Ok((registry.encode(), "this process".into())),
            MetricsSource::Prometheus(base) => {
                let url = format!(
                    "{}/federate?{}",
                    base.trim_end_matches('/'),
                    form_urlencoded::Serializer::new(String::new())
                        .append_pair(
                            "match[]",
                            r#"{__name__=~"playlog_.+|kafka_consumergroup_.+"}"#
                        )
                        .finish()
                );
                let text = self
                    .agent
                    .get(&url)
                    .call()
                    .and_then(|mut r| r.body_mut().read_to_string())
                    .map_err(|e| format!("reading metrics from Prometheus at {base}: {e}"))?;
                Ok((text, format!("Prometheus at {base}")))
            }
            MetricsSource::None => Err(
                "no metrics here: this server runs apart from the consumers; give --prometheus-url to read lag and dead letters from Prometheus"
                    .into(),
            ),
        }
    }

    pub fn respond(&self, conn: &duckdb::Connection) -> Response {
        let (metrics, source, metrics_error) = match self.metrics_text() {
            Ok((text, source)) => {
                let samples = pipeline::parse(&text);
                let mut figures = pipeline::figures(&samples);
                let rate = figures["rows_ingested"]
                    .as_f64()
                    .and_then(|rows| self.rate(rows));
                figures["ingest_rows_per_second"] = json!(rate);
                (figures, Some(source), None)
            }
            Err(e) => (Json::Null, None, Some(e)),
        };
        Response {
            status: 200,
            content_type: "application/json",
            body: json!({
                "metrics": metrics,
                "metrics_source": source,
                "metrics_error": metrics_error,
                "warehouse": warehouse_view(conn),
                "now": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            })
            .to_string(),
        }
    }

    fn rate(&self, rows: f64) -> Option<f64> {
        let mut history = match self.history.lock() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        };
        let now = Instant::now();
        history.push_back((now, rows));
        while history.len() > 2
            && history
                .get(1)
                .is_some_and(|(at, _)| now.duration_since(*at) >= RATE_WINDOW)
        {
            history.pop_front();
        }
        let seconds: Vec<(f64, f64)> = history
            .iter()
            .map(|(at, rows)| (at.duration_since(self.started).as_secs_f64(), *rows))
            .collect();
        pipeline::rate(&seconds)
    }
}

/// Each raw table's newest load and its age, and the last vault run, as the warehouse holds them.
fn warehouse_view(conn: &duckdb::Connection) -> Json {
    let now = chrono::Utc::now().naive_utc();
    let tables: Vec<Json> = playlog_model::Stream::ALL
        .iter()
        .map(|s| {
            let newest: Option<String> = conn
                .query_row(
                    &format!(
                        "SELECT CAST(max(_loaded_at) AS VARCHAR) FROM raw.{}",
                        s.topic()
                    ),
                    [],
                    |r| r.get(0),
                )
                .ok()
                .flatten();
            let age = newest.as_deref().and_then(|t| {
                chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f")
                    .ok()
                    .map(|at| (now - at).num_milliseconds() as f64 / 1000.0)
            });
            json!({ "table": format!("raw.{}", s.topic()), "newest_load": newest, "age_seconds": age })
        })
        .collect();
    let last_run = conn
        .query_row(
            "SELECT CAST(run_at AS VARCHAR), CAST(sum(rows) AS BIGINT), max(seconds) FROM vault._runs \
             WHERE run_at = (SELECT max(run_at) FROM vault._runs) GROUP BY run_at",
            [],
            |r| {
                Ok(json!({
                    "at": r.get::<_, String>(0)?,
                    "raw_rows": r.get::<_, i64>(1)?,
                    "seconds": r.get::<_, f64>(2)?,
                }))
            },
        )
        .ok();
    json!({ "raw_tables": tables, "last_vault_run": last_run })
}
