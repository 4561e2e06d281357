//! One metrics registry per process. `playlog consume --vault-every` runs the consumer and the vault in one
//! process, so both register into the same registry and one `/metrics` endpoint serves them together; the
//! producer and `playlog vault run` serve their own.

use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::collector::Collector;
use prometheus_client::registry::{Metric, Registry};

/// A cheaply cloned handle on a process's registry.
#[derive(Clone, Default)]
pub struct MetricsRegistry(Arc<Mutex<Registry>>);

impl std::fmt::Debug for MetricsRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsRegistry")
    }
}

impl MetricsRegistry {
    /// Registers one metric; counters get their `_total` suffix when encoded.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.lock().register(name, help, metric);
    }

    /// Registers a collector, read at every scrape.
    pub fn register_collector(&self, collector: Box<dyn Collector>) {
        self.lock().register_collector(collector);
    }

    /// The OpenMetrics text of every registered metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.lock());
        out
    }

    /// Serves `/metrics` on `addr` from a background thread. Fails at once if the address cannot be bound.
    pub fn serve(&self, addr: &str) -> Result<std::net::SocketAddr, String> {
        let server = tiny_http::Server::http(addr).map_err(|e| {
            format!(
                "serving metrics on {addr}: {e}. Is the port in use? Pick another with --metrics-addr"
            )
        })?;
        let bound = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| format!("serving metrics on {addr}: not an IP address"))?;
        let registry = self.clone();
        std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                for request in server.incoming_requests() {
                    let response = match request.url() {
                        "/metrics" => {
                            let header = tiny_http::Header::from_bytes(
                                "Content-Type",
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            )
                            .expect("a valid static header");
                            tiny_http::Response::from_string(registry.encode()).with_header(header)
                        }
                        // For container and Kubernetes probes: the process is up and serving.
                        "/healthz" => tiny_http::Response::from_string("ok\n"),
                        _ => {
                            tiny_http::Response::from_string("see /metrics\n").with_status_code(404)
                        }
                    };
                    let _ = request.respond(response);
                }
            })
            .map_err(|e| format!("starting the metrics thread: {e}"))?;
        tracing::info!(%bound, "serving /metrics");
        Ok(bound)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        // A panic while encoding leaves the registry intact; keep serving.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;

    #[test]
    fn metrics_registered_by_two_components_are_served_together() {
        let registry = MetricsRegistry::default();
        let a = Counter::<u64>::default();
        let b = Counter::<u64>::default();
        registry.register("playlog_a", "A", a.clone());
        registry.register("playlog_b", "B", b.clone());
        a.inc();
        b.inc_by(2);
        let text = registry.encode();
        assert!(text.contains("playlog_a_total 1\n"), "{text}");
        assert!(text.contains("playlog_b_total 2\n"), "{text}");
        assert_eq!(text.matches("# EOF").count(), 1);
    }
}
