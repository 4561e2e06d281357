use std::fmt;

/// One of the streams that land in raw: the four event streams the simulator (or eventsim) produces, and
/// the offers that `playlog offers` makes from them. Each has a Kafka topic, an Avro schema and a raw table
/// of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stream {
    Listen,
    PageView,
    Auth,
    StatusChange,
    /// `offer_events`, written by `playlog offers`: its records are [`crate::OfferRecord`]s, not events.
    Offer,
}

impl Stream {
    /// Every stream that lands in raw.
    pub const ALL: [Stream; 5] = [
        Stream::Listen,
        Stream::PageView,
        Stream::Auth,
        Stream::StatusChange,
        Stream::Offer,
    ];

    /// The four event streams: what the simulator produces, as [`crate::Event`]s.
    pub const EVENTS: [Stream; 4] = [
        Stream::Listen,
        Stream::PageView,
        Stream::Auth,
        Stream::StatusChange,
    ];

    /// Whether its records are events (not offers).
    pub const fn is_event(self) -> bool {
        !matches!(self, Stream::Offer)
    }

    /// The Kafka topic, which is also the raw table's name.
    pub const fn topic(self) -> &'static str {
        match self {
            Stream::Listen => "listen_events",
            Stream::PageView => "page_view_events",
            Stream::Auth => "auth_events",
            Stream::StatusChange => "status_change_events",
            Stream::Offer => "offer_events",
        }
    }

    pub fn from_topic(topic: &str) -> Option<Stream> {
        Stream::ALL.into_iter().find(|s| s.topic() == topic)
    }

    /// Dense index, for per-stream arrays of counters.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// One letter that tells the streams apart inside an event id.
    pub(crate) const fn code(self) -> u8 {
        match self {
            Stream::Listen => b'l',
            Stream::PageView => b'p',
            Stream::Auth => b'a',
            Stream::StatusChange => b's',
            Stream::Offer => b'o',
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.topic())
    }
}
