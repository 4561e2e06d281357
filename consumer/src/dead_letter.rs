//! The dead-letter topic: bad records keep their original bytes and key, with headers saying where they
//! came from and why. Every letter's delivery report is checked before the offsets past it are recorded:
//! a letter the broker refuses (in its delivery report, after `send` returned) is kept and sent again at
//! the next flush, and until it is acknowledged the flush fails, so the batch's offsets do not move.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use playlog_kafka::{KafkaClientConfig, WatchedContext};
use rdkafka::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use crate::decode::DeadLetterReason;

/// Room for the headers beside a letter's key and value: the origin, the reason (its message cut to
/// `MAX_REASON_BYTES`) and, for a truncated letter, the original size and digest.
const HEADER_ALLOWANCE: usize = 8 * 1024;
const MAX_REASON_BYTES: usize = 2 * 1024;

/// The largest dead letter, headers and framing included, for records of up to `max_record_bytes`: the
/// dead-letter producer's `message.max.bytes` and the topic's `max.message.bytes`. Kafka's defaults
/// (1,000,000 and 1,048,588) refuse a 1 MiB record with headers, and a refused letter would stop the
/// partition.
pub fn letter_limit(max_record_bytes: usize) -> usize {
    max_record_bytes + HEADER_ALLOWANCE
}

/// The part of a record's value that a letter carries: all of it when key and value fit in
/// `max_record_bytes`, else its first bytes, with the original size and SHA-256 in headers.
#[derive(Debug, PartialEq, Eq)]
pub struct Fitted<'a> {
    pub value: &'a [u8],
    /// (original value size, hex SHA-256 of the whole value), when cut.
    pub truncated: Option<(usize, String)>,
}

pub fn fit<'a>(value: &'a [u8], key_len: usize, max_record_bytes: usize) -> Fitted<'a> {
    let room = max_record_bytes.saturating_sub(key_len);
    if value.len() <= room {
        return Fitted {
            value,
            truncated: None,
        };
    }
    let digest = openssl::sha::sha256(value);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Fitted {
        value: &value[..room],
        truncated: Some((value.len(), hex)),
    }
}

/// A reason message cut to `MAX_REASON_BYTES`, on a character boundary.
fn cut_reason(message: &str) -> &str {
    if message.len() <= MAX_REASON_BYTES {
        return message;
    }
    let mut end = MAX_REASON_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    &message[..end]
}

/// A letter whose delivery failed, kept whole for the next attempt.
struct Undelivered {
    value: Option<Vec<u8>>,
    key: Option<Vec<u8>>,
    headers: Option<OwnedHeaders>,
}

/// Letters refused in their delivery reports since the last flush took them, and the latest reason.
#[derive(Default)]
struct Refusals {
    letters: Vec<Undelivered>,
    last_error: String,
}

/// The dead-letter producer's context: the connection watch, plus every failed delivery report.
pub struct DeadLetterContext {
    watched: WatchedContext,
    refused: Mutex<Refusals>,
}

impl ClientContext for DeadLetterContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.watched.error(error, reason);
    }

    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.watched.log(level, facility, message);
    }
}

impl ProducerContext for DeadLetterContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, message)) = result {
            let letter = Undelivered {
                value: message.payload().map(<[u8]>::to_vec),
                key: message.key().map(<[u8]>::to_vec),
                headers: message.headers().map(|h| h.detach()),
            };
            let origin = letter_origin(message.headers());
            let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
            refused.letters.push(letter);
            refused.last_error = format!("{error} (the letter of {origin})");
        }
    }
}

/// `topic/partition@offset` from a letter's origin headers.
fn letter_origin(headers: Option<&rdkafka::message::BorrowedHeaders>) -> String {
    let mut parts = [String::new(), String::new(), String::new()];
    if let Some(headers) = headers {
        for header in headers.iter() {
            let slot = match header.key {
                "playlog.source.topic" => 0,
                "playlog.source.partition" => 1,
                "playlog.source.offset" => 2,
                _ => continue,
            };
            parts[slot] = String::from_utf8_lossy(header.value.unwrap_or_default()).into_owned();
        }
    }
    format!("{}/{}@{}", parts[0], parts[1], parts[2])
}

/// Why dead letters are not (yet) safe in the topic.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error("{0}")]
    Kafka(#[from] KafkaError),
    #[error("{count} dead letter(s) refused by the broker, kept and retried: {last}")]
    Refused { count: usize, last: String },
}

pub struct DeadLetterSink {
    topic: String,
    max_record_bytes: usize,
    producer: ThreadedProducer<DeadLetterContext>,
    /// Test-only fault injection (`PLAYLOG_FAULT_DEAD_LETTER_DELIVERIES=N`): the next N letters go to a
    /// topic that does not exist, so that the broker's real answer (unknown topic) fails their delivery
    /// reports after `message.timeout.ms`. No broker the tests can run refuses a write on demand while
    /// still serving reads (tansu checks no ACLs or size limits).
    misdirect: AtomicU64,
}

/// Where a dead letter came from.
pub struct Origin<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

impl DeadLetterSink {
    /// A producer with the group's connection settings (security included) over its own defaults.
    pub fn new(
        kafka: &KafkaClientConfig,
        topic: &str,
        max_record_bytes: usize,
    ) -> Result<DeadLetterSink, KafkaError> {
        let mut config = ClientConfig::new();
        config
            .set("client.id", "playlog-dead-letters")
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set(
                "message.max.bytes",
                letter_limit(max_record_bytes).to_string(),
            );
        kafka.apply(&mut config);
        let context = DeadLetterContext {
            watched: WatchedContext::new(kafka),
            refused: Mutex::default(),
        };
        context.watched.watch.started();
        let producer = config.create_with_context(context)?;
        Ok(DeadLetterSink {
            topic: topic.to_owned(),
            max_record_bytes,
            producer,
            misdirect: AtomicU64::new(
                std::env::var("PLAYLOG_FAULT_DEAD_LETTER_DELIVERIES")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            ),
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Queues a dead letter. Blocks while librdkafka's queue is full. A value too large for the topic is
    /// cut (see [`fit`]); its original size and digest go in headers.
    pub fn send(
        &self,
        value: Option<&[u8]>,
        key: Option<&[u8]>,
        origin: &Origin<'_>,
        reason: &DeadLetterReason,
    ) -> Result<(), KafkaError> {
        let partition = origin.partition.to_string();
        let offset = origin.offset.to_string();
        let message = reason.to_string();
        let fitted = value.map(|v| fit(v, key.map_or(0, <[u8]>::len), self.max_record_bytes));
        let mut headers = OwnedHeaders::new()
            .insert(Header {
                key: "playlog.source.topic",
                value: Some(origin.topic),
            })
            .insert(Header {
                key: "playlog.source.partition",
                value: Some(&partition),
            })
            .insert(Header {
                key: "playlog.source.offset",
                value: Some(&offset),
            })
            .insert(Header {
                key: "playlog.error.reason",
                value: Some(reason.code()),
            })
            .insert(Header {
                key: "playlog.error.message",
                value: Some(cut_reason(&message)),
            });
        if let Some(Fitted {
            truncated: Some((size, digest)),
            ..
        }) = &fitted
        {
            headers = headers
                .insert(Header {
                    key: "playlog.original.size",
                    value: Some(&size.to_string()),
                })
                .insert(Header {
                    key: "playlog.original.sha256",
                    value: Some(digest.as_str()),
                });
        }
        self.queue(fitted.map(|f| f.value), key, headers)
    }

    fn queue(
        &self,
        value: Option<&[u8]>,
        key: Option<&[u8]>,
        headers: OwnedHeaders,
    ) -> Result<(), KafkaError> {
        let misdirected;
        let topic = if self
            .misdirect
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
        {
            misdirected = format!("{}.playlog-fault-no-such-topic", self.topic);
            misdirected.as_str()
        } else {
            self.topic.as_str()
        };
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).headers(headers);
        if let Some(v) = value {
            record = record.payload(v);
        }
        if let Some(k) = key {
            record = record.key(k);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    /// Waits until every dead letter sent so far is acknowledged by the brokers. Letters refused in their
    /// delivery reports are sent again, once per flush; while any stays refused, this fails.
    pub fn flush(&self) -> Result<(), DeadLetterError> {
        self.wait_for_reports()?;
        let retry = std::mem::take(&mut self.refused().letters);
        if retry.is_empty() {
            return Ok(());
        }
        for letter in retry {
            let headers = letter.headers.unwrap_or_default();
            self.queue(letter.value.as_deref(), letter.key.as_deref(), headers)?;
        }
        self.wait_for_reports()?;
        let refused = self.refused();
        if refused.letters.is_empty() {
            return Ok(());
        }
        Err(DeadLetterError::Refused {
            count: refused.letters.len(),
            last: refused.last_error.clone(),
        })
    }

    fn wait_for_reports(&self) -> Result<(), KafkaError> {
        if self.producer.in_flight_count() == 0 {
            return Ok(());
        }
        self.producer.flush(Duration::from_secs(30))
    }

    fn refused(&self) -> std::sync::MutexGuard<'_, Refusals> {
        self.producer
            .context()
            .refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_that_fits_is_carried_whole() {
        let value = vec![7u8; 1000];
        assert_eq!(
            fit(&value, 24, 1024),
            Fitted {
                value: &value,
                truncated: None
            }
        );
        // Key and value together at the limit still fit.
        assert_eq!(fit(&value, 24, 1024).value.len(), 1000);
    }

    #[test]
    fn a_record_over_the_limit_is_cut_with_its_size_and_digest() {
        let value = b"abc".repeat(1000);
        let fitted = fit(&value, 100, 1000);
        assert_eq!(fitted.value, &value[..900]);
        let (size, digest) = fitted.truncated.expect("cut");
        assert_eq!(size, 3000);
        // sha256 of "abc" * 1000, from Python's hashlib.
        assert_eq!(
            digest,
            "328de8f1895f8bb09f6e6b4c2012ef2b2a6f067cd002794b750aa040a6f6d8bd"
        );
    }

    #[test]
    fn a_key_longer_than_the_limit_leaves_an_empty_value() {
        let fitted = fit(b"value", 2000, 1000);
        assert!(fitted.value.is_empty());
        assert_eq!(fitted.truncated.map(|t| t.0), Some(5));
    }

    #[test]
    fn long_reasons_are_cut_on_a_character_boundary() {
        let message = "é".repeat(MAX_REASON_BYTES);
        let cut = cut_reason(&message);
        assert!(cut.len() <= MAX_REASON_BYTES && cut.len() >= MAX_REASON_BYTES - 1);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(cut_reason("short"), "short");
    }

    #[test]
    fn the_letter_limit_covers_the_record_limit_and_headers() {
        assert!(letter_limit(1 << 20) > (1 << 20) + 5 * 64 + MAX_REASON_BYTES);
    }
}
