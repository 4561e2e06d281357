//! Kafka plumbing that every Kafka client of Playlog shares: the connection configuration (layered from a
//! `client.properties` file, the environment and `-X`, with secrets redacted), start-up reachability checks
//! that name the cause of a failure, and topic creation.

pub mod client_config;
pub mod connection_watch;
pub mod jaas;
pub mod java_client;
pub mod tls_diagnosis;

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{Client, ClientContext};
use rdkafka::error::RDKafkaErrorCode;

pub use client_config::KafkaClientConfig;
pub use connection_watch::{
    ConnectionFailure, ConnectionWatch, FailureKind, Watched, WatchedContext,
};

/// How long a start-up waits for the brokers before giving up. A refused login or an untrusted
/// certificate ends the wait as soon as librdkafka reports it.
const REACH_TIMEOUT: Duration = Duration::from_secs(15);
/// After this long with only disconnects, check whether client and listener disagree about TLS.
const TLS_MISMATCH_LOOK: Duration = Duration::from_secs(2);

/// Fails with one actionable sentence when the brokers do not answer a metadata request: the cause when
/// librdkafka reported one (TLS, authentication, name resolution), else a timeout. `serve` runs the
/// client's callbacks after each attempt: a consumer's error callbacks run only when it is polled (a
/// threaded producer's poll themselves, so it passes a no-op).
pub fn check_reachable<C: ClientContext + Watched>(
    client: &Client<C>,
    config: &KafkaClientConfig,
    serve: &dyn Fn(),
) -> Result<(), String> {
    let started = Instant::now();
    let deadline = started + REACH_TIMEOUT;
    let mut looked = false;
    loop {
        let error = match client.fetch_metadata(None, Duration::from_secs(1)) {
            Ok(_) => {
                client.context().watch().started();
                return Ok(());
            }
            Err(e) => e,
        };
        serve();
        let watch = client.context().watch();
        if let Some(failure) = watch.failure() {
            return Err(explain(&failure, config));
        }
        // A TLS mismatch shows only as disconnects (a plaintext client at a TLS listener) or as a stalled
        // handshake (a TLS client at a plaintext listener, which waits for more bytes): after a couple of
        // seconds of either, look once before the full timeout.
        let disconnects = watch.last_disconnect();
        if !looked
            && (disconnects.is_some() || uses_tls(config))
            && started.elapsed() >= TLS_MISMATCH_LOOK
        {
            looked = true;
            if let Some(cause) = tls_mismatch(config) {
                return Err(cause);
            }
        }
        if Instant::now() >= deadline {
            return Err(unreachable(config, disconnects, &error));
        }
    }
}

/// The start-up timed out without a TLS, login or TLS-mismatch finding: nothing answers, or the broker
/// closes the connections.
fn unreachable(
    config: &KafkaClientConfig,
    last_disconnect: Option<String>,
    error: &dyn std::fmt::Display,
) -> String {
    let protocol = protocol(config);
    let brokers = config.brokers();
    // A broker that closes each connection as soon as it is up, to a client without SASL, most likely
    // wants a login.
    let closed_at_start = last_disconnect
        .as_deref()
        .is_some_and(|d| d.contains("in state UP") || d.contains("in state APIVERSION_QUERY"));
    let hint = if closed_at_start && !protocol.starts_with("sasl") {
        " The broker closes connections as they start: if it requires a login, set security.protocol=sasl_ssl (or sasl_plaintext), sasl.mechanism, sasl.username and sasl.password."
    } else {
        ""
    };
    let said = last_disconnect.unwrap_or_else(|| error.to_string());
    format!(
        "cannot reach Kafka at {brokers}: {}. Is a broker running there, and does its listener speak {protocol}? Check --brokers (or PLAYLOG_BROKERS, or bootstrap.servers in --kafka-config) and security.protocol; `scripts/broker.sh` starts a local one.{hint}",
        config.redact(&said)
    )
}

fn protocol(config: &KafkaClientConfig) -> String {
    config
        .get("security.protocol")
        .unwrap_or("plaintext")
        .to_ascii_lowercase()
}

fn uses_tls(config: &KafkaClientConfig) -> bool {
    matches!(protocol(config).as_str(), "ssl" | "sasl_ssl")
}

/// A TLS client at a plaintext listener, or the other way round, or a TLS failure the handshake names.
fn tls_mismatch(config: &KafkaClientConfig) -> Option<String> {
    let brokers = config.brokers();
    let protocol = protocol(config);
    if uses_tls(config) {
        return tls_cause(config);
    }
    let (host, port) = tls_diagnosis::first_broker(brokers)?;
    tls_diagnosis::speaks_tls(&host, port).then(|| {
        format!(
            "Kafka at {brokers} is a TLS listener, and this client speaks {protocol}: set security.protocol=ssl (or sasl_ssl with SASL), and ssl.ca.location if its CA is not a public one"
        )
    })
}

/// The cause of a failing TLS handshake with the first broker, as one line, when a repeated handshake
/// names it.
fn tls_cause(config: &KafkaClientConfig) -> Option<String> {
    let (host, port) = tls_diagnosis::first_broker(config.brokers())?;
    let cause = tls_diagnosis::diagnose(&host, port, &tls_diagnosis::TlsSettings::of(config))?;
    Some(format!(
        "TLS connection to Kafka at {} failed: {cause}",
        config.brokers()
    ))
}

/// One line naming the cause of a connection failure and what to change.
pub fn explain(failure: &ConnectionFailure, config: &KafkaClientConfig) -> String {
    let brokers = config.brokers();
    let detail = config.redact(&failure.detail);
    match failure.kind {
        FailureKind::Tls => tls_cause(config)
            .unwrap_or_else(|| format!("TLS connection to Kafka at {brokers} failed: {detail}")),
        FailureKind::Authentication => {
            let user = config.get("sasl.username").unwrap_or("(no sasl.username)");
            let mechanism = config
                .get("sasl.mechanism")
                .or(config.get("sasl.mechanisms"))
                .unwrap_or("GSSAPI");
            let from = config
                .origin("sasl.password")
                .map(|o| format!(" (the password is set by {o})"))
                .unwrap_or_default();
            format!(
                "Kafka at {brokers} refused the SASL {mechanism} login of user {user}: {detail}. Check sasl.username and sasl.password{from}, and sasl.mechanism"
            )
        }
        FailureKind::Resolution => format!(
            "cannot resolve a Kafka broker's host name: {detail}. Check --brokers (or bootstrap.servers) and the brokers' advertised listeners"
        ),
    }
}

/// Creates each `(topic, partitions)` that does not exist yet, with the topic-level `settings` (for
/// example `max.message.bytes`); existing topics are left as they are.
/// Existence is read from metadata first, so that a least-privilege user (Describe and Write, no Create)
/// passes when the topics are there: Kafka refuses CreateTopics without Create even for existing topics.
pub fn ensure_topics(
    config: &KafkaClientConfig,
    topics: &[(&str, i32)],
    replication_factor: i32,
    settings: &[(&str, &str)],
) -> Result<(), String> {
    let admin: AdminClient<WatchedContext> = config
        .client_config()
        .create_with_context(WatchedContext::new(config))
        .map_err(|e| {
            format!(
                "configuring the Kafka admin client: {}",
                config.explain_config_error(&e)
            )
        })?;
    let metadata = admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(30))
        .map_err(|e| admin_failure(&admin, config, "reading topics", &e))?;
    let topics: Vec<(&str, i32)> = topics
        .iter()
        .copied()
        .filter(|(name, _)| {
            !metadata
                .topics()
                .iter()
                .any(|t| t.name() == *name && !t.partitions().is_empty())
        })
        .collect();
    if topics.is_empty() {
        return Ok(());
    }
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|(name, partitions)| {
            settings.iter().fold(
                NewTopic::new(
                    name,
                    *partitions,
                    TopicReplication::Fixed(replication_factor),
                ),
                |topic, (key, value)| topic.set(key, value),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = futures_executor::block_on(admin.create_topics(&new, &options))
        .map_err(|e| admin_failure(&admin, config, "creating topics", &e))?;
    for result in results {
        match result {
            Ok(topic) => tracing::info!(topic, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, RDKafkaErrorCode::TopicAuthorizationFailed)) => {
                return Err(format!(
                    "topic {topic}: this Kafka user can neither see it (Describe) nor create it (Create). Grant Describe (and Write or Read) on an existing topic, or create it beforehand"
                ));
            }
            Err((topic, code)) => return Err(format!("creating topic {topic}: {code}")),
        }
    }
    Ok(())
}

/// An admin request's failure: the connection's cause when there is one, else the error, redacted.
fn admin_failure(
    admin: &AdminClient<WatchedContext>,
    config: &KafkaClientConfig,
    doing: &str,
    error: &dyn std::fmt::Display,
) -> String {
    match admin.inner().context().watch().failure() {
        Some(failure) => explain(&failure, config),
        None => format!(
            "{doing} on {}: {}",
            config.brokers(),
            config.redact(&error.to_string())
        ),
    }
}
