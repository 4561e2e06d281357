//! An offer decision as it travels on `offer_events` and lands in `raw.offer_events`: what `playlog offers`
//! writes, what `playlog produce --offers-topic` reads back, and what the consumer lands.

use serde::{Deserialize, Serialize};

/// One record of `offer_events`, with the Avro schema's (and JSON's) camelCase names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OfferRecord {
    /// `RULE:TRIGGER_EVENT_ID`: the same on every replay of the same page views.
    pub offer_id: String,
    pub rule_id: String,
    pub user_id: i64,
    pub session_id: i64,
    pub trigger_event_id: String,
    /// Event time of the decision, epoch milliseconds.
    pub ts: i64,
    /// Event time after which the offer no longer holds, epoch milliseconds.
    pub expires_at: i64,
    /// Held out: recorded, and no offer is shown.
    pub holdout: bool,
    /// Wall-clock send time, epoch milliseconds: a repeat after a crash differs only here.
    pub emitted_at: i64,
}

impl OfferRecord {
    /// Reads a record of `offer_events` in either encoding `playlog offers` writes: Avro single-object
    /// encoding or JSON.
    pub fn decode(bytes: &[u8]) -> Result<OfferRecord, String> {
        match bytes.first() {
            Some(b'{') => serde_json::from_slice(bytes).map_err(|e| format!("offer JSON: {e}")),
            _ => match crate::avro::decode_fast(bytes) {
                Ok((_, Record::Offer(o))) => Ok(o),
                Ok((stream, _)) => Err(format!("a {stream} event, not an offer")),
                Err(e) => Err(e.to_string()),
            },
        }
    }
}

/// A decoded record of any stream.
// Events are the hot path (hundreds of thousands a second) and offers are rare: boxing the event to even
// out the variants would cost an allocation per event for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Event(crate::EventRecord),
    Offer(OfferRecord),
}

impl Record {
    /// The event, when it is one.
    pub fn into_event(self) -> Option<crate::EventRecord> {
        match self {
            Record::Event(e) => Some(e),
            Record::Offer(_) => None,
        }
    }

    /// The event time, for freshness.
    pub fn ts(&self) -> i64 {
        match self {
            Record::Event(e) => e.ts,
            Record::Offer(o) => o.ts,
        }
    }
}
