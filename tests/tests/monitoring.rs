//! The monitoring, verified with the real tools: a real Prometheus (Debian's package) scrapes the real
//! pipeline (tansu, `playlog produce`, `playlog consume --vault-every`, `playlog vault run`, `playlog
//! offers`), loads
//! `docker/monitoring/prometheus/rules/playlog.rules.yml` as production does, and every PromQL expression
//! in the Grafana dashboard and in the rules is evaluated through Prometheus's HTTP API. Each must return
//! data at some point of the run; a panel or rule that never does fails the test.
//!
//! Alerts return data only when their condition holds, so the pipeline is driven through the conditions:
//! 1. healthy: live events, a few undecodable records (dead letters), the vault running in the consumer,
//!    offers evaluating the page views; freshness, no-ingest, warehouse-error and offer-lag alerts must
//!    stay silent;
//! 2. a backlog: a day-old backfill lands, and p99 freshness goes over the 60 s SLA;
//! 3. an outage: the consumer restarts with every warehouse write failing (the one injected fault,
//!    `PLAYLOG_FAULT_WAREHOUSE_WRITES`: a real DuckDB cannot fail writes on demand), while a separate
//!    `playlog vault run` cannot open the DuckDB file the consumer holds (a real lock conflict) and falls
//!    behind its schedule; the producer keeps producing, so lag grows and nothing is ingested; and offers
//!    restarts reading a topic nothing is published to, so it falls behind the page views.

#![allow(clippy::unwrap_used)] // A test: a failed step should stop it loudly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use playlog_e2e::*;

fn monitoring_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docker/monitoring")
}

/// Every `expr` of every panel target in the dashboard, with Grafana's interval variables replaced by
/// what Grafana sends for a one-hour view at a 15 s scrape interval.
fn dashboard_expressions() -> Vec<(String, String)> {
    let path = monitoring_dir().join("grafana/dashboards/playlog-pipeline.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            let expr = expr
                .replace("$__rate_interval", "1m")
                .replace("$__interval", "15s");
            assert!(!expr.contains('$'), "unknown variable in {expr}");
            let name = format!(
                "panel {:?} / {}",
                panel["title"].as_str().unwrap(),
                target["legendFormat"].as_str().unwrap_or("")
            );
            out.push((name, expr));
        }
    }
    out
}

/// Every rule Prometheus loaded, as (name, expression), from its own API: this also proves the file loaded.
fn rule_expressions(prometheus: &Prometheus) -> Vec<(String, String)> {
    let data = prometheus.api("rules", &[]);
    let mut out = Vec::new();
    for group in data["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            // "unknown" until the first evaluation; "err" is a rule Prometheus cannot evaluate.
            assert_ne!(rule["health"], "err", "rule {rule} fails to evaluate");
            let name = format!("{} {}", rule["type"].as_str().unwrap(), rule["name"]);
            out.push((name, rule["query"].as_str().unwrap().to_owned()));
        }
    }
    out
}

/// Which expressions have returned data so far.
struct Coverage {
    expressions: Vec<(String, String)>,
    seen: BTreeMap<String, bool>,
}

impl Coverage {
    fn new(expressions: Vec<(String, String)>) -> Coverage {
        let seen = expressions
            .iter()
            .map(|(n, _)| (n.clone(), false))
            .collect();
        Coverage { expressions, seen }
    }

    fn poll(&mut self, prometheus: &Prometheus) {
        for (name, expr) in &self.expressions {
            if !self.seen[name] && !prometheus.query(expr).is_empty() {
                eprintln!("  data: {name}");
                self.seen.insert(name.clone(), true);
            }
        }
    }

    fn missing(&self) -> Vec<String> {
        let exprs: BTreeMap<_, _> = self.expressions.iter().cloned().collect();
        self.seen
            .iter()
            .filter(|(_, seen)| !**seen)
            .map(|(name, _)| format!("{name}: {}", exprs[name]))
            .collect()
    }

    /// Polls until `done` holds for the missing names, or `timeout`.
    fn poll_until(
        &mut self,
        prometheus: &Prometheus,
        timeout: Duration,
        done: impl Fn(&Coverage) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        loop {
            self.poll(prometheus);
            if done(self) || Instant::now() > deadline {
                return;
            }
            std::thread::sleep(Duration::from_secs(2));
        }
    }
}

fn alert_expr<'a>(rules: &'a [(String, String)], alert: &str) -> &'a str {
    let name = format!("alerting \"{alert}\"");
    &rules.iter().find(|(n, _)| *n == name).unwrap().1
}

#[test]
fn every_dashboard_and_rule_expression_returns_data_from_the_real_pipeline() {
    let broker = Broker::start();
    let scratch = Scratch::new("monitoring");
    let producer_addr = format!("127.0.0.1:{}", free_port());
    let consumer_addr = format!("127.0.0.1:{}", free_port());
    let vault_addr = format!("127.0.0.1:{}", free_port());
    let offers_addr = format!("127.0.0.1:{}", free_port());
    // start_consumer_at's warehouse, which the separate vault process is pointed at too.
    let warehouse = format!("duckdb:{}", scratch.path().join("w.duckdb").display());
    let rules = monitoring_dir().join("prometheus/rules/playlog.rules.yml");
    let prometheus = Prometheus::start(
        &[
            ("playlog-producer", &producer_addr),
            ("playlog-consumer", &consumer_addr),
            ("playlog-vault", &vault_addr),
            ("playlog-offers", &offers_addr),
        ],
        &[rules],
    );
    let rules = rule_expressions(&prometheus);
    assert_eq!(
        rules
            .iter()
            .filter(|(n, _)| n.starts_with("alerting"))
            .count(),
        8,
        "{rules:?}"
    );
    // PlaylogPartitionsUnowned needs an assignment that leaves partitions to nobody, which no healthy
    // broker makes on demand (tansu 0.6 makes one by a quirk, at random). Its logic is promtool's test
    // (prometheus/tests); here both of its series must return data, and it must clear when healthy.
    let unowned = "alerting \"PlaylogPartitionsUnowned\"";
    let mut coverage = Coverage::new(
        dashboard_expressions()
            .into_iter()
            .chain(rules.iter().filter(|(n, _)| n != unowned).cloned())
            .chain(
                [
                    "max by (job) (playlog_subscribed_partitions) > 0",
                    "sum by (job) (playlog_assigned_partitions) > 0",
                ]
                .map(|e| (format!("{unowned}'s series: {e}"), e.to_owned())),
            )
            .collect(),
    );

    // 1. Healthy: live events at wall-clock pace, two members, the vault every 2 s in the consumer.
    let _producer = spawn_continuous_producer(
        &broker,
        &scratch,
        &[
            "--users",
            "3000",
            "--partitions",
            "2",
            "--metrics-addr",
            &producer_addr,
        ],
        "1",
    );
    assert!(wait_for(Duration::from_secs(30), || broker
        .has_topic("listen_events")));
    let offers = |name: &str, input: &str| {
        Background::spawn(
            &[
                "offers",
                "--brokers",
                &broker.address,
                "--input-topic",
                input,
                "--metrics-addr",
                &offers_addr,
            ],
            &[],
            scratch.path().join(format!("{name}.log")),
        )
    };
    assert!(wait_for(Duration::from_secs(30), || broker
        .has_topic("page_view_events")));
    let mut offers_healthy = offers("offers-healthy", "page_view_events");
    let consume = |name: &str, extra: &[&str], envs: &[(&str, &str)]| {
        let mut args = vec!["--members", "2"];
        args.extend_from_slice(extra);
        start_consumer_at(&broker, &scratch, name, &consumer_addr, &args, envs).process
    };
    // It also serves the pipeline page, reading the consumers' metrics back from Prometheus (as a
    // `playlog serve` apart from the consumers does on GKE).
    let serve_addr = format!("127.0.0.1:{}", free_port());
    let prometheus_url = format!("http://{}", prometheus.address);
    let mut consumer = consume(
        "consumer-healthy",
        &[
            "--vault-every",
            "2s",
            "--serve",
            &serve_addr,
            "--prometheus-url",
            &prometheus_url,
        ],
        &[],
    );
    // Dead letters once Prometheus has seen the consumer's series at 0, as in a long-running deployment.
    assert!(wait_for(Duration::from_secs(30), || !prometheus
        .query("playlog_dead_letters_total")
        .is_empty()));
    broker.publish(
        "listen_events",
        &[
            (None, b"not an event".to_vec()),
            (None, b"{\"nor\": 1}".to_vec()),
        ],
    );
    eprintln!("phase 1: healthy");
    coverage.poll_until(&prometheus, Duration::from_secs(90), |c| {
        c.missing().iter().all(|m| m.starts_with("alerting"))
    });
    let missing_panels: Vec<String> = coverage
        .missing()
        .into_iter()
        .filter(|m| !m.starts_with("alerting"))
        .collect();
    assert!(
        missing_panels.is_empty(),
        "no data from a healthy pipeline for:\n{}\nconsumer log:\n{}",
        missing_panels.join("\n"),
        consumer.output()
    );
    // The pipeline page's figures are Prometheus's own sums over the consumer's series.
    let dead_letters = |v: &serde_json::Value| v["metrics"]["dead_letters"].as_f64();
    let mut pipeline = serde_json::Value::Null;
    let agreed = wait_for(Duration::from_secs(30), || {
        pipeline = playlog_e2e::http::get_json(&serve_addr, "/api/v1/pipeline.json", &[]);
        let summed = prometheus.query("sum(playlog_dead_letters_total)");
        let summed: Option<f64> = summed
            .first()
            .and_then(|s| s["value"][1].as_str())
            .and_then(|v| v.parse().ok());
        dead_letters(&pipeline) >= Some(2.0) && dead_letters(&pipeline) == summed
    });
    assert!(agreed, "{pipeline:#}");
    assert!(
        pipeline["metrics_source"]
            .as_str()
            .unwrap()
            .contains("Prometheus"),
        "{pipeline:#}"
    );
    assert!(pipeline["metrics"]["rows_ingested"].as_f64().unwrap() > 0.0);
    assert!(
        pipeline["metrics"]["lag_records"].is_number(),
        "{pipeline:#}"
    );
    assert!(
        pipeline["metrics"]["freshness_p99_seconds"].is_number(),
        "{pipeline:#}"
    );
    assert!(
        pipeline["warehouse"]["last_vault_run"]["at"].is_string(),
        "{pipeline:#}"
    );

    // Checked against what makes an alert fire: its expression holding for its `for:` (2 minutes for the
    // first two). At start-up, before the first flush has been scraped twice, "producing but not ingesting"
    // is briefly true, so each expression must clear within a minute rather than at once. A warehouse
    // error would keep its expression (`increase` over 5 minutes) true for longer than that.
    for alert in [
        "PlaylogFreshnessOverSLA",
        "PlaylogNoIngest",
        "PlaylogWarehouseErrors",
        "PlaylogPartitionsUnowned",
        "PlaylogOffersLagging",
    ] {
        let expr = alert_expr(&rules, alert);
        let cleared = wait_for(Duration::from_secs(60), || {
            prometheus.query(expr).is_empty()
        });
        assert!(
            cleared,
            "{alert} holds on a healthy pipeline for a minute: {:?}",
            prometheus.query(expr)
        );
    }

    // 2. A backlog: yesterday's events land now, a day late.
    eprintln!("phase 2: a day-old backlog");
    assert_success(
        &playlog(
            &[
                "produce",
                "-q",
                "--brokers",
                &broker.address,
                "--users",
                "100",
                "--max-events",
                "3000",
            ],
            &[],
        ),
        "backfill",
    );
    coverage.poll_until(&prometheus, Duration::from_secs(60), |c| {
        !c.missing()
            .iter()
            .any(|m| m.contains("PlaylogFreshnessOverSLA"))
    });

    // 3. An outage: every warehouse write fails, and the vault cannot open the file the consumer holds.
    // Offers are stuck too: reading a topic nothing is published to, while page views keep coming.
    eprintln!("phase 3: warehouse writes failing, vault locked out, offers stuck");
    assert!(
        offers_healthy.terminate(Duration::from_secs(30)),
        "{}",
        offers_healthy.output()
    );
    broker.create_topics(&[("idle_page_views", 1)]);
    let _offers_stuck = offers("offers-stuck", "idle_page_views");
    assert!(
        consumer.terminate(Duration::from_secs(60)),
        "{}",
        consumer.output()
    );
    let _failing = consume(
        "consumer-failing",
        &[],
        &[("PLAYLOG_FAULT_WAREHOUSE_WRITES", "1000000000")],
    );
    // The consumer holds the DuckDB file once it serves metrics.
    assert!(wait_for(Duration::from_secs(30), || scrape(&consumer_addr).is_some()));
    let vault = Background::spawn(
        &[
            "vault",
            "run",
            "--every",
            "1s",
            "--warehouse",
            &warehouse,
            "--metrics-addr",
            &vault_addr,
        ],
        &[],
        scratch.path().join("vault.log"),
    );
    coverage.poll_until(&prometheus, Duration::from_secs(150), |c| {
        c.missing().is_empty()
    });
    assert!(
        coverage.missing().is_empty(),
        "these expressions never returned data:\n{}\nvault log (tail):\n{}",
        coverage.missing().join("\n"),
        vault
            .output()
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );
}
