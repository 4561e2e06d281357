//! Watching a client's connection errors, so that a refused password or an untrusted certificate ends a
//! start-up with one line that names the cause, instead of a metadata timeout after librdkafka's silent
//! reconnects. Every client context of Playlog hands its `error` callback here.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryResult, ProducerContext};

use crate::client_config::{KafkaClientConfig, redact_values};

/// What kind of connection failure librdkafka reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// A TLS handshake or TLS transport failure.
    Tls,
    /// SASL authentication failed.
    Authentication,
    /// A bootstrap or advertised host name does not resolve.
    Resolution,
}

/// A connection failure: its kind and librdkafka's own words (redacted before they are shown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionFailure {
    pub kind: FailureKind,
    pub detail: String,
}

/// Classifies a librdkafka error callback; `None` for errors librdkafka retries by itself and that say
/// nothing about the configuration (a broker restarting, a closed idle connection).
pub fn classify(code: Option<RDKafkaErrorCode>, reason: &str) -> Option<FailureKind> {
    let lower = reason.to_ascii_lowercase();
    match code {
        Some(RDKafkaErrorCode::SSL) => Some(FailureKind::Tls),
        Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed) => {
            Some(FailureKind::Authentication)
        }
        Some(RDKafkaErrorCode::Resolve) => Some(FailureKind::Resolution),
        // A TLS 1.3 server refuses a missing client certificate after the handshake, so librdkafka sees a
        // transport error carrying the TLS alert.
        _ if lower.contains("ssl") && (lower.contains("alert") || lower.contains("handshake")) => {
            Some(FailureKind::Tls)
        }
        _ if lower.contains("sasl") && lower.contains("authentication") => {
            Some(FailureKind::Authentication)
        }
        _ => None,
    }
}

/// The connection failures one client has seen. Everything it keeps or logs is redacted of the client's
/// secrets first, whichever context hands it the callback.
#[derive(Debug)]
pub struct ConnectionWatch {
    secrets: Vec<String>,
    failure: Mutex<Option<ConnectionFailure>>,
    /// librdkafka's latest `FAIL` log line (a disconnect, a refused connection): it reports those as
    /// logs, not errors, and they are the best words for a start-up that times out.
    last_disconnect: Mutex<Option<String>>,
    started: AtomicBool,
}

impl ConnectionWatch {
    /// A watch for a client configured by `config` (whose secrets it redacts).
    pub fn new(config: &KafkaClientConfig) -> ConnectionWatch {
        ConnectionWatch {
            secrets: config.secret_values(),
            failure: Mutex::new(None),
            last_disconnect: Mutex::new(None),
            started: AtomicBool::new(false),
        }
    }

    /// Records an error callback. Before [`ConnectionWatch::started`], failures are kept for the start-up
    /// check's one line; afterwards they are logged as warnings (librdkafka keeps retrying).
    pub fn observe(&self, error: &KafkaError, reason: &str) {
        let reason = &redact_values(reason, &self.secrets);
        let Some(kind) = classify(error.rdkafka_error_code(), reason) else {
            tracing::debug!(%error, reason, "kafka client error (retried by librdkafka)");
            return;
        };
        if self.started.load(Ordering::Relaxed) {
            tracing::warn!(?kind, reason, "kafka connection failed; retrying");
        }
        self.record(kind, reason);
    }

    fn record(&self, kind: FailureKind, detail: &str) {
        if let Ok(mut failure) = self.failure.lock() {
            *failure = Some(ConnectionFailure {
                kind,
                detail: detail.to_owned(),
            });
        }
    }

    /// Records a librdkafka log line (keeping the latest `FAIL`), and forwards it to `tracing` under the
    /// target `librdkafka`, off by default (see `--log`).
    pub fn observe_log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        let message = &redact_values(message, &self.secrets);
        if facility == "FAIL" {
            // The same failure also reaches the error callback, but a consumer's only when it is polled:
            // the log line is the one that always arrives.
            if let Some(kind) = classify(None, message) {
                self.record(kind, message);
            }
            if let Ok(mut last) = self.last_disconnect.lock() {
                *last = Some(message.to_owned());
            }
        }
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", "librdkafka: {facility} {message}")
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", "librdkafka: {facility} {message}")
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", "librdkafka: {facility} {message}")
            }
            RDKafkaLogLevel::Debug => {
                tracing::debug!(target: "librdkafka", "librdkafka: {facility} {message}")
            }
        }
    }

    /// librdkafka's latest disconnect message, if any.
    pub fn last_disconnect(&self) -> Option<String> {
        self.last_disconnect.lock().ok().and_then(|l| l.clone())
    }

    /// The latest connection failure, if any.
    pub fn failure(&self) -> Option<ConnectionFailure> {
        self.failure.lock().ok().and_then(|f| f.clone())
    }

    /// The client is up: later failures are logged as they come.
    pub fn started(&self) {
        self.started.store(true, Ordering::Relaxed);
    }
}

/// Contexts whose connection errors are watched.
pub trait Watched {
    fn watch(&self) -> &ConnectionWatch;
}

/// The context of clients without callbacks of their own: admin clients, probes, the dead-letter producer.
#[derive(Debug)]
pub struct WatchedContext {
    pub watch: ConnectionWatch,
}

impl WatchedContext {
    pub fn new(config: &KafkaClientConfig) -> WatchedContext {
        WatchedContext {
            watch: ConnectionWatch::new(config),
        }
    }
}

impl Watched for WatchedContext {
    fn watch(&self) -> &ConnectionWatch {
        &self.watch
    }
}

impl ClientContext for WatchedContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.watch.observe(&error, reason);
    }

    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.watch.observe_log(level, facility, message);
    }
}

impl ConsumerContext for WatchedContext {}

impl ProducerContext for WatchedContext {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests: a failed step should stop them loudly.
mod tests {
    use super::*;

    #[test]
    fn classifies_what_librdkafka_reports() {
        use FailureKind::*;
        for (code, reason, want) in [
            (
                Some(RDKafkaErrorCode::SSL),
                "ssl://localhost:9093/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed",
                Some(Tls),
            ),
            (
                Some(RDKafkaErrorCode::Authentication),
                "sasl_ssl://localhost:9093/bootstrap: SASL authentication error: Authentication failed",
                Some(Authentication),
            ),
            (
                Some(RDKafkaErrorCode::Resolve),
                "no.such.host:9092/bootstrap: Failed to resolve 'no.such.host:9092'",
                Some(Resolution),
            ),
            (
                Some(RDKafkaErrorCode::BrokerTransportFailure),
                "ssl://localhost:9093/bootstrap: SSL transport error: error:0A00045C:SSL routines::tlsv13 alert certificate required",
                Some(Tls),
            ),
            (
                Some(RDKafkaErrorCode::BrokerTransportFailure),
                "localhost:9092/1: Connect to ipv4#127.0.0.1:9092 failed: Connection refused",
                None,
            ),
            (
                Some(RDKafkaErrorCode::AllBrokersDown),
                "1/1 brokers are down",
                None,
            ),
        ] {
            assert_eq!(classify(code, reason), want, "{reason}");
        }
    }

    #[test]
    fn keeps_the_latest_failure() {
        let watch = ConnectionWatch::new(&KafkaClientConfig::plaintext("b:9092"));
        watch.observe(
            &KafkaError::Global(RDKafkaErrorCode::BrokerTransportFailure),
            "Connection refused",
        );
        assert_eq!(watch.failure(), None);
        watch.observe(
            &KafkaError::Global(RDKafkaErrorCode::SSL),
            "SSL handshake failed",
        );
        assert_eq!(watch.failure().map(|f| f.kind), Some(FailureKind::Tls));
    }

    #[test]
    fn failures_are_recognised_in_log_lines_too() {
        let watch = ConnectionWatch::new(&KafkaClientConfig::plaintext("b:9092"));
        watch.observe_log(
            RDKafkaLogLevel::Error,
            "FAIL",
            "sasl_ssl://b:9093/bootstrap: SASL authentication error: SASL SCRAM authentication failed: broker responded with invalid-proof",
        );
        assert_eq!(
            watch.failure().map(|f| f.kind),
            Some(FailureKind::Authentication)
        );
    }

    #[test]
    fn what_it_keeps_is_redacted() {
        let config = KafkaClientConfig::plaintext("b:9092").with("sasl.password", "hunter2-long");
        let watch = ConnectionWatch::new(&config);
        watch.observe(
            &KafkaError::Global(RDKafkaErrorCode::Authentication),
            "SASL authentication error: bad password hunter2-long",
        );
        watch.observe_log(RDKafkaLogLevel::Info, "FAIL", "closed: hunter2-long");
        assert_eq!(
            watch.failure().map(|f| f.kind),
            Some(FailureKind::Authentication)
        );
        let kept = format!("{:?} {:?}", watch.failure(), watch.last_disconnect());
        assert!(!kept.contains("hunter2"), "{kept}");
        assert!(kept.contains("[redacted]"), "{kept}");
    }
}
