//! Record values to events (or, on `offer_events`, offers). Accepts Avro single-object encoding (as
//! `playlog produce` and `playlog offers` write it) and JSON: eventsim's own (camelCase, `ts` in epoch ms,
//! user fields absent for guests), or an offer's. Anything else is a dead letter with a reason.

use playlog_model::{EventRecord, OfferRecord, Record, Stream};

/// Why a record went to the dead-letter topic. `code()` is the metric label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadLetterReason {
    Oversized {
        bytes: usize,
        limit: usize,
    },
    Empty,
    NotAvroOrJson,
    UnknownFingerprint(String),
    MalformedAvro(String),
    WrongStream {
        expected: Stream,
        found: Stream,
    },
    InvalidJson(String),
    MissingField {
        field: &'static str,
    },
    /// The warehouse refused the row (BigQuery's insertAll error, kept verbatim).
    WarehouseRejected(String),
}

impl DeadLetterReason {
    /// Every `code()`, so that metrics can show each reason at 0 before its first dead letter.
    pub const CODES: [&'static str; 9] = [
        "oversized",
        "empty",
        "not_avro_or_json",
        "unknown_fingerprint",
        "malformed_avro",
        "wrong_stream",
        "invalid_json",
        "missing_field",
        "warehouse_rejected",
    ];

    pub fn code(&self) -> &'static str {
        match self {
            DeadLetterReason::Oversized { .. } => "oversized",
            DeadLetterReason::Empty => "empty",
            DeadLetterReason::NotAvroOrJson => "not_avro_or_json",
            DeadLetterReason::UnknownFingerprint(_) => "unknown_fingerprint",
            DeadLetterReason::MalformedAvro(_) => "malformed_avro",
            DeadLetterReason::WrongStream { .. } => "wrong_stream",
            DeadLetterReason::InvalidJson(_) => "invalid_json",
            DeadLetterReason::MissingField { .. } => "missing_field",
            DeadLetterReason::WarehouseRejected(_) => "warehouse_rejected",
        }
    }
}

impl std::fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeadLetterReason::Oversized { bytes, limit } => {
                write!(f, "record of {bytes} bytes exceeds the {limit}-byte limit")
            }
            DeadLetterReason::Empty => write!(f, "empty record value"),
            DeadLetterReason::NotAvroOrJson => {
                write!(f, "neither Avro single-object encoding nor a JSON object")
            }
            DeadLetterReason::UnknownFingerprint(fp) => {
                write!(f, "unknown Avro schema fingerprint {fp}")
            }
            DeadLetterReason::MalformedAvro(m) => write!(f, "malformed Avro: {m}"),
            DeadLetterReason::WrongStream { expected, found } => {
                write!(f, "a {found} event in the {expected} topic")
            }
            DeadLetterReason::InvalidJson(m) => write!(f, "invalid JSON event: {m}"),
            DeadLetterReason::MissingField { field } => write!(f, "missing required field {field}"),
            DeadLetterReason::WarehouseRejected(m) => {
                write!(f, "the warehouse rejected the row: {m}")
            }
        }
    }
}

/// Decodes one record value read from `stream`'s topic: an event, or on `offer_events` an offer.
pub fn decode(stream: Stream, value: &[u8], max_bytes: usize) -> Result<Record, DeadLetterReason> {
    if value.len() > max_bytes {
        return Err(DeadLetterReason::Oversized {
            bytes: value.len(),
            limit: max_bytes,
        });
    }
    match value.iter().find(|b| !b.is_ascii_whitespace()) {
        None => Err(DeadLetterReason::Empty),
        Some(0xC3) => decode_avro(stream, value),
        Some(b'{') if stream.is_event() => decode_json(stream, value).map(Record::Event),
        Some(b'{') => serde_json::from_slice::<OfferRecord>(value)
            .map(Record::Offer)
            .map_err(|e| DeadLetterReason::InvalidJson(e.to_string())),
        Some(_) => Err(DeadLetterReason::NotAvroOrJson),
    }
}

/// Decodes one record value of an event stream: [`decode`], for callers that read events only.
pub fn decode_event(
    stream: Stream,
    value: &[u8],
    max_bytes: usize,
) -> Result<EventRecord, DeadLetterReason> {
    match decode(stream, value, max_bytes)? {
        Record::Event(e) => Ok(e),
        Record::Offer(_) => Err(DeadLetterReason::WrongStream {
            expected: stream,
            found: Stream::Offer,
        }),
    }
}

fn decode_avro(stream: Stream, value: &[u8]) -> Result<Record, DeadLetterReason> {
    use playlog_model::avro::DecodeError;
    match playlog_model::avro::decode_fast(value) {
        Ok((found, record)) if found == stream => Ok(record),
        Ok((found, _)) => Err(DeadLetterReason::WrongStream {
            expected: stream,
            found,
        }),
        Err(DecodeError::UnknownFingerprint(fp)) => Err(DeadLetterReason::UnknownFingerprint(fp)),
        Err(DecodeError::NotSingleObject) => Err(DeadLetterReason::NotAvroOrJson),
        Err(e) => Err(DeadLetterReason::MalformedAvro(e.to_string())),
    }
}

fn decode_json(stream: Stream, value: &[u8]) -> Result<EventRecord, DeadLetterReason> {
    let record: EventRecord =
        serde_json::from_slice(value).map_err(|e| DeadLetterReason::InvalidJson(e.to_string()))?;
    // Each stream's own required fields; the common ones are required by the type itself.
    let missing = |present: bool, field: &'static str| {
        if present {
            Ok(())
        } else {
            Err(DeadLetterReason::MissingField { field })
        }
    };
    match stream {
        Stream::Listen => {
            missing(record.artist.is_some(), "artist")?;
            missing(record.song.is_some(), "song")?;
            missing(record.duration.is_some(), "duration")?;
            missing(record.auth.is_some(), "auth")?;
        }
        Stream::PageView => {
            missing(record.page.is_some(), "page")?;
            missing(record.auth.is_some(), "auth")?;
            missing(record.method.is_some(), "method")?;
            missing(record.status.is_some(), "status")?;
        }
        Stream::Auth => missing(record.success.is_some(), "success")?,
        Stream::StatusChange => missing(record.auth.is_some(), "auth")?,
        Stream::Offer => unreachable!("decode reads offers' JSON as OfferRecord"),
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_code_is_listed() {
        let reasons = [
            DeadLetterReason::Oversized { bytes: 2, limit: 1 },
            DeadLetterReason::Empty,
            DeadLetterReason::NotAvroOrJson,
            DeadLetterReason::UnknownFingerprint(String::new()),
            DeadLetterReason::MalformedAvro(String::new()),
            DeadLetterReason::WrongStream {
                expected: Stream::Listen,
                found: Stream::Auth,
            },
            DeadLetterReason::InvalidJson(String::new()),
            DeadLetterReason::MissingField { field: "userId" },
            DeadLetterReason::WarehouseRejected(String::new()),
        ];
        let codes: Vec<&str> = reasons.iter().map(DeadLetterReason::code).collect();
        assert_eq!(codes, DeadLetterReason::CODES);
    }

    const EVENTSIM_LISTEN: &str = r#"{"artist":"Sigur Rós","song":"Hoppípolla","duration":268.5,"ts":1767225600123,"sessionId":42,"auth":"Logged In","level":"free","itemInSession":3,"city":"Boston-Cambridge-Newton","zip":"02108","state":"MA-NH","userAgent":"\"Mozilla/5.0\"","lon":-71.06,"lat":42.35,"userId":7,"lastName":"Müller","firstName":"Zoë","gender":"F","registration":1700000000000}"#;
    const EVENTSIM_GUEST_PAGE: &str = r#"{"ts":1767225600123,"sessionId":43,"page":"Home","auth":"Guest","method":"GET","status":200,"level":"free","itemInSession":0,"city":"Anchorage","zip":"99501","state":"AK","userAgent":"x","lon":-149.9,"lat":61.2}"#;

    #[test]
    fn eventsim_json_decodes_as_emitted() {
        let r = decode_event(Stream::Listen, EVENTSIM_LISTEN.as_bytes(), 1 << 20).expect("listen");
        assert_eq!(
            (
                r.zip.as_str(),
                r.first_name.as_deref(),
                r.user_agent.as_str()
            ),
            ("02108", Some("Zoë"), "\"Mozilla/5.0\"")
        );
        assert_eq!(
            r.event_id, None,
            "eventsim has no eventId; the batch derives it"
        );
        let g = decode_event(Stream::PageView, EVENTSIM_GUEST_PAGE.as_bytes(), 1 << 20)
            .expect("guest page view");
        assert_eq!(g.user_id, None);
    }

    #[test]
    fn bad_input_gets_a_reason() {
        let max = 1 << 20;
        assert_eq!(
            decode(Stream::Listen, b"\x00\x01garbage", max)
                .expect_err("garbage")
                .code(),
            "not_avro_or_json"
        );
        assert_eq!(
            decode(Stream::Listen, b"", max).expect_err("empty").code(),
            "empty"
        );
        assert_eq!(
            decode(
                Stream::Listen,
                &[0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 0],
                max
            )
            .expect_err("fp")
            .code(),
            "unknown_fingerprint"
        );
        let wrong_type = EVENTSIM_LISTEN.replace("\"sessionId\":42", "\"sessionId\":\"42\"");
        assert_eq!(
            decode(Stream::Listen, wrong_type.as_bytes(), max)
                .expect_err("type")
                .code(),
            "invalid_json"
        );
        assert_eq!(
            decode(Stream::Listen, EVENTSIM_GUEST_PAGE.as_bytes(), max)
                .expect_err("missing")
                .code(),
            "missing_field"
        );
        assert_eq!(
            decode(Stream::Listen, EVENTSIM_LISTEN.as_bytes(), 100)
                .expect_err("size")
                .code(),
            "oversized"
        );
    }
}
