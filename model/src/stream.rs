use std::fmt;

/// One of the four event streams. Each has a Kafka topic and an Avro schema of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stream {
    Listen,
    PageView,
    Auth,
    StatusChange,
}

impl Stream {
    pub const ALL: [Stream; 4] = [
        Stream::Listen,
        Stream::PageView,
        Stream::Auth,
        Stream::StatusChange,
    ];

    /// The Kafka topic, which is also the raw table's name.
    pub const fn topic(self) -> &'static str {
        match self {
            Stream::Listen => "listen_events",
            Stream::PageView => "page_view_events",
            Stream::Auth => "auth_events",
            Stream::StatusChange => "status_change_events",
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
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.topic())
    }
}
