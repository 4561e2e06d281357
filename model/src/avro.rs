//! Avro single-object encoding of events, as the Avro specification defines it: the two marker bytes
//! `C3 01`, the writer schema's CRC-64-AVRO fingerprint (little-endian), then the binary body.
//!
//! The schemas are the `.avsc` files in `schemas/avro/`, embedded at build time and parsed once by the
//! `apache-avro` crate, which also computes their fingerprints and decodes. Encoding is written out by hand
//! for the hot path: one pass, no intermediate `Value`, no allocation beyond the output buffer. Tests decode
//! what it writes with `apache-avro` against the `.avsc` files, so the two cannot drift apart.

use std::sync::LazyLock;

use apache_avro::Schema;
use apache_avro::rabin::Rabin;

use crate::{Event, EventRecord, OfferRecord, Record, Stream};

/// The two bytes that open every single-object encoded datum.
pub const SINGLE_OBJECT_MARKER: [u8; 2] = [0xC3, 0x01];
/// Marker plus fingerprint.
pub const HEADER_LEN: usize = 10;

const SOURCES: [(Stream, &str); 5] = [
    (
        Stream::Listen,
        include_str!("../../schemas/avro/listen_events.avsc"),
    ),
    (
        Stream::PageView,
        include_str!("../../schemas/avro/page_view_events.avsc"),
    ),
    (
        Stream::Auth,
        include_str!("../../schemas/avro/auth_events.avsc"),
    ),
    (
        Stream::StatusChange,
        include_str!("../../schemas/avro/status_change_events.avsc"),
    ),
    (
        Stream::Offer,
        include_str!("../../schemas/avro/offer_events.avsc"),
    ),
];

/// The parsed schema of each stream and its single-object header.
pub struct StreamSchemas {
    schemas: Vec<Schema>,
    headers: [[u8; HEADER_LEN]; 5],
}

impl StreamSchemas {
    fn load() -> Result<StreamSchemas, apache_avro::Error> {
        let mut schemas = Vec::with_capacity(SOURCES.len());
        let mut headers = [[0u8; HEADER_LEN]; 5];
        for (stream, source) in SOURCES {
            let schema = Schema::parse_str(source)?;
            let fingerprint = schema.fingerprint::<Rabin>();
            let header = &mut headers[stream.index()];
            header[..2].copy_from_slice(&SINGLE_OBJECT_MARKER);
            header[2..].copy_from_slice(&fingerprint.bytes);
            schemas.push(schema);
        }
        Ok(StreamSchemas { schemas, headers })
    }

    pub fn schema(&self, stream: Stream) -> &Schema {
        &self.schemas[stream.index()]
    }

    /// The schema's text as shipped in `schemas/avro/`.
    pub fn source(&self, stream: Stream) -> &'static str {
        SOURCES[stream.index()].1
    }

    pub fn header(&self, stream: Stream) -> &[u8; HEADER_LEN] {
        &self.headers[stream.index()]
    }

    /// The stream whose schema has this CRC-64-AVRO fingerprint (as the 8 little-endian header bytes).
    pub fn stream_for_fingerprint(&self, fingerprint: &[u8]) -> Option<Stream> {
        Stream::ALL
            .into_iter()
            .find(|s| &self.headers[s.index()][2..] == fingerprint)
    }
}

static SCHEMAS: LazyLock<StreamSchemas> = LazyLock::new(|| {
    StreamSchemas::load().expect("the embedded .avsc files parse; tested by avro::tests")
});

/// The five streams' schemas, parsed on first use.
pub fn schemas() -> &'static StreamSchemas {
    &SCHEMAS
}

/// Appends `event` to `out` in single-object encoding.
pub fn encode(event: &Event<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(schemas().header(event.stream));
    encode_body(event, out);
}

/// Appends the binary body (no header). The field order is the `.avsc` files' order.
pub fn encode_body(event: &Event<'_>, out: &mut Vec<u8>) {
    write_string(out, event.event_id().as_str());
    write_long(out, event.ts);
    write_long(out, event.session_id);
    write_long(out, i64::from(event.item_in_session));
    write_string(out, event.level);
    match &event.user {
        Some(user) => {
            write_long(out, 1);
            write_long(out, user.user_id);
            write_long(out, 1);
            write_string(out, user.first_name);
            write_long(out, 1);
            write_string(out, user.last_name);
            write_long(out, 1);
            write_string(out, user.gender);
            write_long(out, 1);
            write_long(out, user.registration);
        }
        // Five nulls: branch 0 of each ["null", T] union.
        None => out.extend_from_slice(&[0; 5]),
    }
    let location = event.location;
    write_string(out, &location.zip);
    write_string(out, &location.city);
    write_string(out, &location.state);
    out.extend_from_slice(&location.lat.to_le_bytes());
    out.extend_from_slice(&location.lon.to_le_bytes());
    write_string(out, event.user_agent);
    match event.stream {
        Stream::Listen => {
            let song = event
                .song
                .expect("listen events are built for NextSong requests, which carry a song");
            write_string(out, &song.artist);
            write_string(out, &song.title);
            out.extend_from_slice(&song.duration.to_le_bytes());
            write_string(out, event.auth);
        }
        Stream::PageView => {
            write_string(out, event.page);
            write_string(out, event.auth);
            write_string(out, event.method);
            write_long(out, i64::from(event.status));
            match event.song {
                Some(song) => {
                    write_long(out, 1);
                    write_string(out, &song.artist);
                    write_long(out, 1);
                    write_string(out, &song.title);
                    write_long(out, 1);
                    out.extend_from_slice(&song.duration.to_le_bytes());
                }
                None => out.extend_from_slice(&[0; 3]),
            }
        }
        Stream::Auth => out.push(u8::from(event.success)),
        Stream::StatusChange => write_string(out, event.auth),
        Stream::Offer => {
            unreachable!("events are made for Stream::EVENTS only; offers use encode_offer")
        }
    }
}

/// Why a single-object datum could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not Avro single-object encoding: the first two bytes are not C3 01")]
    NotSingleObject,
    #[error("unknown schema fingerprint {0}: not one of Playlog's schemas (schemas/avro/)")]
    UnknownFingerprint(String),
    #[error("malformed Avro body for {stream}: {source}")]
    Body {
        stream: Stream,
        #[source]
        source: apache_avro::Error,
    },
    #[error("Avro body for {stream} does not fit the event model: {message}")]
    Shape { stream: Stream, message: String },
    #[error("{len} trailing bytes after the Avro body for {stream}")]
    TrailingBytes { stream: Stream, len: usize },
}

/// Decodes one single-object encoded datum with `apache-avro`, against the schema its fingerprint names.
pub fn decode(bytes: &[u8]) -> Result<(Stream, Record), DecodeError> {
    let (stream, mut body) = split_header(bytes)?;
    let value = apache_avro::from_avro_datum(schemas().schema(stream), &mut body, None)
        .map_err(|source| DecodeError::Body { stream, source })?;
    if !body.is_empty() {
        return Err(DecodeError::TrailingBytes {
            stream,
            len: body.len(),
        });
    }
    // Through JSON, where Avro unions become plain values or null, to land in the Option fields.
    let json = serde_json::Value::try_from(value)
        .map_err(|source| DecodeError::Body { stream, source })?;
    let shape = |e: serde_json::Error| DecodeError::Shape {
        stream,
        message: e.to_string(),
    };
    let record = if stream.is_event() {
        Record::Event(serde_json::from_value::<EventRecord>(json).map_err(shape)?)
    } else {
        Record::Offer(serde_json::from_value::<OfferRecord>(json).map_err(shape)?)
    };
    Ok((stream, record))
}

/// Decodes one single-object encoded datum in a single pass, without `apache-avro`: the consumer's hot
/// path. Strict: every length is bounds-checked, strings must be UTF-8, union branches must exist, and no
/// byte may be left over. Tests hold it equal to [`decode`] on real events.
pub fn decode_fast(bytes: &[u8]) -> Result<(Stream, Record), DecodeError> {
    let (stream, body) = split_header(bytes)?;
    let mut r = Reader { buf: body, stream };
    let record = if stream.is_event() {
        Record::Event(event_body(&mut r)?)
    } else {
        Record::Offer(offer_body(&mut r)?)
    };
    if !r.buf.is_empty() {
        return Err(DecodeError::TrailingBytes {
            stream,
            len: r.buf.len(),
        });
    }
    Ok((stream, record))
}

/// An offer's body, in `offer_events.avsc`'s field order.
fn offer_body(r: &mut Reader<'_>) -> Result<OfferRecord, DecodeError> {
    Ok(OfferRecord {
        offer_id: r.string()?,
        rule_id: r.string()?,
        user_id: r.long()?,
        session_id: r.long()?,
        trigger_event_id: r.string()?,
        ts: r.long()?,
        expires_at: r.long()?,
        holdout: r.boolean()?,
        emitted_at: r.long()?,
    })
}

/// Appends `offer` to `out` in single-object encoding.
pub fn encode_offer(offer: &OfferRecord, out: &mut Vec<u8>) {
    out.extend_from_slice(schemas().header(Stream::Offer));
    write_string(out, &offer.offer_id);
    write_string(out, &offer.rule_id);
    write_long(out, offer.user_id);
    write_long(out, offer.session_id);
    write_string(out, &offer.trigger_event_id);
    write_long(out, offer.ts);
    write_long(out, offer.expires_at);
    out.push(u8::from(offer.holdout));
    write_long(out, offer.emitted_at);
}

/// An event's body, in the event schemas' field order.
fn event_body(r: &mut Reader<'_>) -> Result<EventRecord, DecodeError> {
    let stream = r.stream;
    let event_id = r.string()?;
    let ts = r.long()?;
    let session_id = r.long()?;
    let item_in_session = r.int()?;
    let level = r.string()?;
    let user_id = r.optional(Reader::long)?;
    let first_name = r.optional(Reader::string)?;
    let last_name = r.optional(Reader::string)?;
    let gender = r.optional(Reader::string)?;
    let registration = r.optional(Reader::long)?;
    let zip = r.string()?;
    let city = r.string()?;
    let state = r.string()?;
    let lat = r.double()?;
    let lon = r.double()?;
    let user_agent = r.string()?;
    let mut record = EventRecord {
        event_id: Some(event_id),
        ts,
        session_id,
        item_in_session,
        level,
        user_id,
        first_name,
        last_name,
        gender,
        registration,
        zip,
        city,
        state,
        lat,
        lon,
        user_agent,
        page: None,
        auth: None,
        method: None,
        status: None,
        artist: None,
        song: None,
        duration: None,
        success: None,
    };
    match stream {
        Stream::Listen => {
            record.artist = Some(r.string()?);
            record.song = Some(r.string()?);
            record.duration = Some(r.double()?);
            record.auth = Some(r.string()?);
        }
        Stream::PageView => {
            record.page = Some(r.string()?);
            record.auth = Some(r.string()?);
            record.method = Some(r.string()?);
            record.status = Some(r.int()?);
            record.artist = r.optional(Reader::string)?;
            record.song = r.optional(Reader::string)?;
            record.duration = r.optional(Reader::double)?;
        }
        Stream::Auth => record.success = Some(r.boolean()?),
        Stream::StatusChange => record.auth = Some(r.string()?),
        Stream::Offer => return Err(r.malformed("an offer, not an event")),
    }
    Ok(record)
}

/// A cursor over an Avro binary body.
struct Reader<'a> {
    buf: &'a [u8],
    stream: Stream,
}

impl Reader<'_> {
    fn malformed(&self, what: &str) -> DecodeError {
        DecodeError::Shape {
            stream: self.stream,
            message: what.to_owned(),
        }
    }

    fn long(&mut self) -> Result<i64, DecodeError> {
        let mut value: u64 = 0;
        for (i, byte) in self.buf.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.buf = &self.buf[i + 1..];
                return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
            }
        }
        Err(self.malformed("truncated or overlong varint"))
    }

    fn int(&mut self) -> Result<i32, DecodeError> {
        let v = self.long()?;
        i32::try_from(v).map_err(|_| self.malformed("int out of range"))
    }

    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        if self.buf.len() < n {
            return Err(self.malformed("truncated"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let len = self.long()?;
        let len = usize::try_from(len).map_err(|_| self.malformed("negative string length"))?;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| DecodeError::Shape {
                stream: self.stream,
                message: "string is not UTF-8".into(),
            })
    }

    fn double(&mut self) -> Result<f64, DecodeError> {
        let bytes = self.take(8)?;
        let mut le = [0u8; 8];
        le.copy_from_slice(bytes);
        Ok(f64::from_le_bytes(le))
    }

    fn boolean(&mut self) -> Result<bool, DecodeError> {
        match self.take(1)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.malformed("boolean byte is neither 0 nor 1")),
        }
    }

    /// A `["null", T]` union.
    fn optional<T>(
        &mut self,
        read: fn(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        match self.long()? {
            0 => Ok(None),
            1 => read(self).map(Some),
            _ => Err(self.malformed("union branch out of range")),
        }
    }
}

/// The stream a single-object header names, and the body after it.
fn split_header(bytes: &[u8]) -> Result<(Stream, &[u8]), DecodeError> {
    if bytes.len() < HEADER_LEN || bytes[..2] != SINGLE_OBJECT_MARKER {
        return Err(DecodeError::NotSingleObject);
    }
    let fingerprint = &bytes[2..HEADER_LEN];
    let stream = schemas()
        .stream_for_fingerprint(fingerprint)
        .ok_or_else(|| DecodeError::UnknownFingerprint(hex(fingerprint)))?;
    Ok((stream, &bytes[HEADER_LEN..]))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[inline]
fn write_long(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push((zigzag as u8) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

#[inline]
fn write_string(out: &mut Vec<u8>, value: &str) {
    write_long(out, value.len() as i64);
    out.extend_from_slice(value.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(holdout: bool) -> OfferRecord {
        OfferRecord {
            offer_id: "upgrade_nudge:0000000000042-000017-p".into(),
            rule_id: "upgrade_nudge".into(),
            user_id: 7,
            session_id: 42,
            trigger_event_id: "0000000000042-000017-p".into(),
            ts: 1_767_225_600_123,
            expires_at: 1_767_312_000_123,
            holdout,
            emitted_at: 1_767_225_600_200,
        }
    }

    #[test]
    fn an_offer_round_trips_through_both_decoders_and_apache_avro_reads_what_we_write() {
        for holdout in [false, true] {
            let o = offer(holdout);
            let mut bytes = Vec::new();
            encode_offer(&o, &mut bytes);
            let (stream, fast) = decode_fast(&bytes).expect("fast decodes");
            assert_eq!(stream, Stream::Offer);
            assert_eq!(fast, Record::Offer(o.clone()));
            let (_, reference) = decode(&bytes).expect("apache-avro decodes");
            assert_eq!(reference, Record::Offer(o));
            let mut extra = bytes.clone();
            extra.push(0);
            assert!(matches!(
                decode_fast(&extra),
                Err(DecodeError::TrailingBytes { .. })
            ));
            assert!(decode_fast(&bytes[..bytes.len() - 1]).is_err());
        }
    }

    #[test]
    fn zigzag_varints_match_the_spec_examples() {
        // From the Avro specification's table of zig-zag encodings.
        for (value, expected) in [
            (0i64, vec![0x00]),
            (-1, vec![0x01]),
            (1, vec![0x02]),
            (-2, vec![0x03]),
            (-64, vec![0x7f]),
            (64, vec![0x80, 0x01]),
        ] {
            let mut out = Vec::new();
            write_long(&mut out, value);
            assert_eq!(out, expected, "zig-zag of {value}");
        }
    }

    #[test]
    fn every_schema_parses_and_has_a_distinct_fingerprint() {
        let s = schemas();
        let mut seen = std::collections::HashSet::new();
        for stream in Stream::ALL {
            assert!(matches!(s.schema(stream), Schema::Record(_)));
            assert!(
                seen.insert(s.header(stream)[2..].to_vec()),
                "duplicate fingerprint for {stream}"
            );
        }
    }
}
