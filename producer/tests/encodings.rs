//! Avro round trips for every stream (decoded by `apache-avro` against the shipped `.avsc` files) and
//! eventsim's JSON shape.

mod common;

use common::*;
use playlog_model::avro::{HEADER_LEN, SINGLE_OBJECT_MARKER, schemas};
use playlog_model::{EventRecord, Stream};
use playlog_producer::SiteModel;

fn sample() -> Vec<Emitted> {
    let world = world(SiteModel::default_site().expect("default site"));
    let mut p = plan(3, 400);
    p.growth_rate = 5.0;
    simulate(&world, p, 7).0
}

#[test]
fn every_stream_round_trips_through_avro() {
    let events = sample();
    for stream in Stream::EVENTS {
        let of_stream: Vec<&Emitted> = events.iter().filter(|e| e.stream == stream).collect();
        assert!(!of_stream.is_empty(), "the sample has {stream} events");
        for e in of_stream {
            let (decoded_stream, record) = playlog_model::avro::decode(&e.avro).expect("decodes");
            assert_eq!(decoded_stream, stream);
            assert_eq!(
                record.into_event().as_ref(),
                Some(&e.record),
                "{stream} changed in an Avro round trip"
            );
        }
    }
}

/// CRC-64-AVRO, written out from the Avro specification, to check the fingerprints independently.
fn crc64_avro(data: &[u8]) -> u64 {
    const EMPTY: u64 = 0xc15d_213a_a4d7_a795;
    let table: Vec<u64> = (0..256u64)
        .map(|i| (0..8).fold(i, |fp, _| (fp >> 1) ^ (EMPTY & (0u64.wrapping_sub(fp & 1)))))
        .collect();
    data.iter().fold(EMPTY, |fp, b| {
        (fp >> 8) ^ table[((fp ^ u64::from(*b)) & 0xff) as usize]
    })
}

#[test]
fn single_object_headers_carry_the_spec_fingerprint() {
    for stream in Stream::EVENTS {
        let schema = schemas().schema(stream);
        let expected = crc64_avro(schema.canonical_form().as_bytes()).to_le_bytes();
        let header = schemas().header(stream);
        assert_eq!(header[..2], SINGLE_OBJECT_MARKER);
        assert_eq!(header[2..HEADER_LEN], expected, "{stream} fingerprint");
    }
}

#[test]
fn avro_text_survives_byte_for_byte() {
    let events = sample();
    let quoted = events
        .iter()
        .find(|e| e.record.user_agent.starts_with('"'))
        .expect("a quoted user agent");
    let (_, r) = playlog_model::avro::decode(&quoted.avro).expect("decodes");
    let r = r.into_event().expect("an event");
    assert!(r.user_agent.starts_with('"') && r.user_agent.ends_with('"'));
    let accented = events
        .iter()
        .find(|e| {
            e.record
                .first_name
                .as_deref()
                .is_some_and(|n| !n.is_ascii())
        })
        .expect("a non-ASCII name");
    let (_, r) = playlog_model::avro::decode(&accented.avro).expect("decodes");
    let r = r.into_event().expect("an event");
    assert_eq!(r.first_name, accented.record.first_name);
}

#[test]
fn corrupt_avro_is_rejected_not_misread() {
    let events = sample();
    let good = &events[0].avro;
    assert!(
        playlog_model::avro::decode(&good[..good.len() / 2]).is_err(),
        "truncated"
    );
    let mut unknown = good.clone();
    unknown[5] ^= 0xff;
    assert!(matches!(
        playlog_model::avro::decode(&unknown),
        Err(playlog_model::avro::DecodeError::UnknownFingerprint(_))
    ));
    assert!(matches!(
        playlog_model::avro::decode(b"{\"ts\":1}"),
        Err(playlog_model::avro::DecodeError::NotSingleObject)
    ));
}

/// eventsim's key order per stream (its JSON constructors write them in this order), then our eventId.
fn eventsim_keys(stream: Stream, shows_user: bool, has_song: bool) -> Vec<&'static str> {
    let device = [
        "level",
        "itemInSession",
        "city",
        "zip",
        "state",
        "userAgent",
        "lon",
        "lat",
    ];
    let user: &[&str] = if shows_user {
        &["userId", "lastName", "firstName", "gender", "registration"]
    } else {
        &[]
    };
    let song: &[&str] = if has_song {
        &["artist", "song", "duration"]
    } else {
        &[]
    };
    let mut keys: Vec<&str> = Vec::new();
    match stream {
        Stream::Listen => {
            keys.extend(song);
            keys.extend(["ts", "sessionId", "auth"]);
            keys.extend(device);
            keys.extend(user);
        }
        Stream::PageView => {
            keys.extend(["ts", "sessionId", "page", "auth", "method", "status"]);
            keys.extend(device);
            keys.extend(user);
            keys.extend(song);
        }
        Stream::Auth => {
            keys.extend(["ts", "sessionId"]);
            keys.extend(device);
            keys.extend(user);
            keys.push("success");
        }
        Stream::StatusChange => {
            keys.extend(["ts", "sessionId", "auth"]);
            keys.extend(device);
            keys.extend(user);
        }
        Stream::Offer => panic!("the simulator makes no offers"),
    }
    keys.push("eventId");
    keys
}

/// The keys of a flat JSON object, in document order.
fn keys_in_order(line: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut de = serde_json::Deserializer::from_str(line);
    let value: serde_json::Map<String, serde_json::Value> =
        serde::Deserialize::deserialize(&mut de).expect("an object");
    // serde_json's Map is sorted unless preserve_order is on, so recover the order from the text.
    let mut positions: Vec<(usize, String)> = value
        .keys()
        .map(|k| {
            (
                line.find(&format!("\"{k}\":")).expect("key present"),
                k.clone(),
            )
        })
        .collect();
    positions.sort();
    keys.extend(positions.into_iter().map(|(_, k)| k));
    keys
}

#[test]
fn json_matches_eventsims_shape() {
    let events = sample();
    let mut checked = [0usize; 4];
    for e in &events {
        let line = std::str::from_utf8(&e.json).expect("UTF-8");
        assert!(
            line.ends_with('\n') && !line[..line.len() - 1].contains('\n'),
            "one event per line"
        );
        let expected = eventsim_keys(
            e.stream,
            e.record.user_id.is_some(),
            e.record.artist.is_some(),
        );
        assert_eq!(
            keys_in_order(line.trim_end()),
            expected,
            "key order of a {} line",
            e.stream
        );
        let parsed: EventRecord = serde_json::from_str(line).expect("parses as an event record");
        assert_eq!(parsed, e.record);
        let value: serde_json::Value = serde_json::from_str(line).expect("JSON");
        assert!(value["zip"].is_string() && value["ts"].is_i64() && value["sessionId"].is_i64());
        checked[e.stream.index()] += 1;
    }
    assert!(
        checked.iter().all(|n| *n > 0),
        "every stream checked: {checked:?}"
    );
}

#[test]
fn guests_have_no_user_keys_at_all() {
    let events = sample();
    let guest = events
        .iter()
        .find(|e| e.record.auth.as_deref() == Some("Guest"))
        .expect("a guest event");
    let line = std::str::from_utf8(&guest.json).expect("UTF-8");
    for key in ["userId", "firstName", "lastName", "gender", "registration"] {
        assert!(
            !line.contains(&format!("\"{key}\"")),
            "guest line has {key}: {line}"
        );
    }
}

#[test]
fn the_fast_decoder_agrees_with_apache_avro() {
    let events = sample();
    for e in &events {
        let reference = playlog_model::avro::decode(&e.avro).expect("apache-avro decodes");
        let fast = playlog_model::avro::decode_fast(&e.avro).expect("fast decoder decodes");
        assert_eq!(fast, reference);
    }
}

#[test]
fn the_fast_decoder_rejects_every_truncation_without_panicking() {
    let events = sample();
    for e in events.iter().take(200) {
        for len in 0..e.avro.len() {
            assert!(
                playlog_model::avro::decode_fast(&e.avro[..len]).is_err(),
                "accepted {len} of {} bytes",
                e.avro.len()
            );
        }
        let mut extra = e.avro.clone();
        extra.push(0);
        assert!(
            playlog_model::avro::decode_fast(&extra).is_err(),
            "accepted a trailing byte"
        );
    }
}
