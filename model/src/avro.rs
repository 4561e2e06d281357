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

use crate::{Event, EventRecord, Stream};

/// The two bytes that open every single-object encoded datum.
pub const SINGLE_OBJECT_MARKER: [u8; 2] = [0xC3, 0x01];
/// Marker plus fingerprint.
pub const HEADER_LEN: usize = 10;

const SOURCES: [(Stream, &str); 4] = [
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
];

/// The parsed schema of each stream and its single-object header.
pub struct StreamSchemas {
    schemas: Vec<Schema>,
    headers: [[u8; HEADER_LEN]; 4],
}

impl StreamSchemas {
    fn load() -> Result<StreamSchemas, apache_avro::Error> {
        let mut schemas = Vec::with_capacity(4);
        let mut headers = [[0u8; HEADER_LEN]; 4];
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

/// The four streams' schemas, parsed on first use.
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
    }
}

/// Why a single-object datum could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not Avro single-object encoding: the first two bytes are not C3 01")]
    NotSingleObject,
    #[error("unknown schema fingerprint {0}: not one of Playlog's four event schemas")]
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
pub fn decode(bytes: &[u8]) -> Result<(Stream, EventRecord), DecodeError> {
    if bytes.len() < HEADER_LEN || bytes[..2] != SINGLE_OBJECT_MARKER {
        return Err(DecodeError::NotSingleObject);
    }
    let fingerprint = &bytes[2..HEADER_LEN];
    let stream = schemas()
        .stream_for_fingerprint(fingerprint)
        .ok_or_else(|| DecodeError::UnknownFingerprint(hex(fingerprint)))?;
    let mut body = &bytes[HEADER_LEN..];
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
    let record = serde_json::from_value::<EventRecord>(json).map_err(|e| DecodeError::Shape {
        stream,
        message: e.to_string(),
    })?;
    Ok((stream, record))
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
