//! eventsim's JSON shape, key for key and in eventsim's key order, followed by Playlog's one addition,
//! `eventId`. User keys are absent (not null) when eventsim would hide them; song keys appear on NextSong
//! page views only. One event per line.

use std::io::Write;

use crate::{Event, Stream};

/// Appends `event` as one line of JSON (with the trailing newline) to `out`.
pub fn encode_line(event: &Event<'_>, out: &mut Vec<u8>) {
    let mut w = ObjectWriter { out, first: true };
    w.out.push(b'{');
    match event.stream {
        Stream::Listen => {
            write_song(&mut w, event);
            w.int("ts", event.ts);
            w.int("sessionId", event.session_id);
            w.str("auth", event.auth);
            write_session_tail(&mut w, event);
        }
        Stream::PageView => {
            w.int("ts", event.ts);
            w.int("sessionId", event.session_id);
            w.str("page", event.page);
            w.str("auth", event.auth);
            w.str("method", event.method);
            w.int("status", i64::from(event.status));
            write_session_tail(&mut w, event);
            write_song(&mut w, event);
        }
        Stream::Auth => {
            w.int("ts", event.ts);
            w.int("sessionId", event.session_id);
            write_session_tail(&mut w, event);
            w.key("success");
            w.out
                .extend_from_slice(if event.success { b"true" } else { b"false" });
        }
        Stream::StatusChange => {
            w.int("ts", event.ts);
            w.int("sessionId", event.session_id);
            w.str("auth", event.auth);
            write_session_tail(&mut w, event);
        }
        Stream::Offer => unreachable!("events are made for Stream::EVENTS only"),
    }
    w.str("eventId", event.event_id().as_str());
    w.out.extend_from_slice(b"}\n");
}

/// level, itemInSession, the device (location and user agent), then the user when shown.
fn write_session_tail(w: &mut ObjectWriter<'_>, event: &Event<'_>) {
    w.str("level", event.level);
    w.int("itemInSession", i64::from(event.item_in_session));
    let location = event.location;
    w.str("city", &location.city);
    w.str("zip", &location.zip);
    w.str("state", &location.state);
    w.str("userAgent", event.user_agent);
    w.float("lon", location.lon);
    w.float("lat", location.lat);
    if let Some(user) = &event.user {
        w.int("userId", user.user_id);
        w.str("lastName", user.last_name);
        w.str("firstName", user.first_name);
        w.str("gender", user.gender);
        w.int("registration", user.registration);
    }
}

fn write_song(w: &mut ObjectWriter<'_>, event: &Event<'_>) {
    if let Some(song) = event.song {
        w.str("artist", &song.artist);
        w.str("song", &song.title);
        w.float("duration", song.duration);
    }
}

struct ObjectWriter<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl ObjectWriter<'_> {
    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        // serde_json does the escaping (quotes in user agents, control characters); UTF-8 passes through.
        let _ = serde_json::to_writer(&mut *self.out, value);
    }

    fn int(&mut self, key: &str, value: i64) {
        self.key(key);
        let _ = serde_json::to_writer(&mut *self.out, &value);
    }

    fn float(&mut self, key: &str, value: f64) {
        self.key(key);
        if value.is_finite() {
            let _ = serde_json::to_writer(&mut *self.out, &value);
        } else {
            // JSON has no NaN or infinity; the simulation never makes them, but never write invalid JSON.
            let _ = self.out.write_all(b"null");
        }
    }
}
