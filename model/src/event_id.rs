use crate::Stream;

/// Length of an event id: 16 hex digits of the session id, `-`, 8 of the item, `-`, the stream's letter.
pub const EVENT_ID_LEN: usize = 16 + 1 + 8 + 1 + 1;

/// A globally unique event id, rendered without allocating.
///
/// Session ids are unique across producer instances, threads and restarts, and `itemInSession` is unique
/// within a session, so (session, item, stream) names one event. Being a pure function of the event, the
/// id is the same when the same simulation is run again: re-publishing a backfill yields the same ids, which
/// is exactly what deduplication downstream needs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct EventId([u8; EVENT_ID_LEN]);

impl EventId {
    pub fn new(session_id: i64, item_in_session: i32, stream: Stream) -> EventId {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; EVENT_ID_LEN];
        let session = session_id as u64;
        for (i, slot) in out[..16].iter_mut().enumerate() {
            *slot = HEX[((session >> (60 - 4 * i)) & 0xf) as usize];
        }
        out[16] = b'-';
        let item = item_in_session as u32;
        for (i, slot) in out[17..25].iter_mut().enumerate() {
            *slot = HEX[((item >> (28 - 4 * i)) & 0xf) as usize];
        }
        out[25] = b'-';
        out[26] = stream.code();
        EventId(out)
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits, '-' and a stream letter are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Debug for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_session_item_and_stream() {
        let id = EventId::new(0x0123_4567_89ab_cdef, 42, Stream::Listen);
        assert_eq!(id.as_str(), "0123456789abcdef-0000002a-l");
        assert_eq!(id.as_str().len(), EVENT_ID_LEN);
    }

    #[test]
    fn streams_of_one_request_get_distinct_ids() {
        let ids: std::collections::HashSet<String> = Stream::EVENTS
            .iter()
            .map(|s| EventId::new(7, 3, *s).as_str().to_owned())
            .collect();
        assert_eq!(ids.len(), 4);
    }
}
