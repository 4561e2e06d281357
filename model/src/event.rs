use serde::{Deserialize, Serialize};

use crate::{EventId, Stream};

/// Where a user is: these five fields always belong together.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    /// A string: zip codes such as `02108` keep their leading zero.
    pub zip: String,
    pub city: String,
    pub state: String,
    pub lat: f64,
    pub lon: f64,
}

/// A track as the events carry it.
#[derive(Debug, Clone, PartialEq)]
pub struct Song {
    pub artist: String,
    pub title: String,
    /// Seconds.
    pub duration: f64,
}

/// The user fields that eventsim shows only for some auth states (`show-user-details`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UserDetails<'a> {
    pub user_id: i64,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub gender: &'a str,
    /// Epoch milliseconds, UTC.
    pub registration: i64,
}

/// One event of one stream, borrowing its text from the simulation's tables so that producing it does not
/// allocate. Which fields a stream carries is decided by the encoders, from `stream`.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub stream: Stream,
    /// Epoch milliseconds, UTC.
    pub ts: i64,
    pub session_id: i64,
    pub item_in_session: i32,
    pub level: &'a str,
    pub auth: &'a str,
    pub page: &'a str,
    pub method: &'a str,
    pub status: i32,
    pub location: &'a Location,
    pub user_agent: &'a str,
    /// `None` for guests and logged-out users.
    pub user: Option<UserDetails<'a>>,
    /// Set on NextSong requests.
    pub song: Option<&'a Song>,
    /// Auth events only: whether the login succeeded.
    pub success: bool,
}

impl Event<'_> {
    pub fn event_id(&self) -> EventId {
        EventId::new(self.session_id, self.item_in_session, self.stream)
    }

    /// The Kafka record key: the user id, or the session id for users without one, so that one user's
    /// (or one anonymous session's) events stay in one partition, in order.
    pub fn key(&self) -> i64 {
        self.user.map_or(self.session_id, |u| u.user_id)
    }

    /// An owned copy with exactly the fields this event's stream carries.
    pub fn to_record(&self) -> EventRecord {
        let user = self.user.as_ref();
        let stream = self.stream;
        let song = match stream {
            Stream::Listen | Stream::PageView => self.song,
            _ => None,
        };
        EventRecord {
            event_id: Some(self.event_id().as_str().to_owned()),
            ts: self.ts,
            session_id: self.session_id,
            item_in_session: self.item_in_session,
            level: self.level.to_owned(),
            user_id: user.map(|u| u.user_id),
            first_name: user.map(|u| u.first_name.to_owned()),
            last_name: user.map(|u| u.last_name.to_owned()),
            gender: user.map(|u| u.gender.to_owned()),
            registration: user.map(|u| u.registration),
            zip: self.location.zip.clone(),
            city: self.location.city.clone(),
            state: self.location.state.clone(),
            lat: self.location.lat,
            lon: self.location.lon,
            user_agent: self.user_agent.to_owned(),
            page: (stream == Stream::PageView).then(|| self.page.to_owned()),
            auth: (stream != Stream::Auth).then(|| self.auth.to_owned()),
            method: (stream == Stream::PageView).then(|| self.method.to_owned()),
            status: (stream == Stream::PageView).then_some(self.status),
            artist: song.map(|s| s.artist.clone()),
            song: song.map(|s| s.title.clone()),
            duration: song.map(|s| s.duration),
            success: (stream == Stream::Auth).then_some(self.success),
        }
    }
}

/// An owned event of any stream, with eventsim's field names. Fields a stream lacks are `None`.
///
/// This is the decoding side's shape: it reads eventsim's own JSON (where user fields are absent for
/// guests and `eventId` does not exist) as well as Playlog's Avro.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    pub ts: i64,
    pub session_id: i64,
    pub item_in_session: i32,
    pub level: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration: Option<i64>,
    pub zip: String,
    pub city: String,
    pub state: String,
    pub lat: f64,
    pub lon: f64,
    pub user_agent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artist: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub song: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
}
