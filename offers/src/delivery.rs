//! What `playlog offers` has sent and what the brokers have acknowledged, so that a checkpoint waits for
//! the offers before it (and the offsets for the checkpoints before them) without stopping the poll loop:
//! a flush that blocks the loop for a round trip to the brokers delays every page view behind it, which
//! is where the latency tail came from.
//!
//! Every record gets a sequence number; [`Deliveries::acknowledged_below`] says whether every record
//! numbered below one has been acknowledged. A delivery that fails (after librdkafka's retries) is kept as
//! an error that ends the run: its offer must not be covered by a checkpoint, and a restart from the last
//! checkpoint makes it again.

use std::collections::BTreeSet;
use std::sync::Mutex;

use rdkafka::ClientContext;
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, ProducerContext};

#[derive(Default)]
pub struct Deliveries {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next: u64,
    outstanding: BTreeSet<u64>,
    failed: Option<String>,
}

impl Deliveries {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Numbers a record about to be sent.
    pub fn sending(&self) -> u64 {
        let mut s = self.state();
        let seq = s.next;
        s.next += 1;
        s.outstanding.insert(seq);
        seq
    }

    /// A record that never reached librdkafka's queue.
    pub fn not_sent(&self, seq: u64) {
        self.state().outstanding.remove(&seq);
    }

    /// The number the next record will get: everything sent so far is below it.
    pub fn mark(&self) -> u64 {
        self.state().next
    }

    /// Whether every record numbered below `mark` has been acknowledged.
    pub fn acknowledged_below(&self, mark: u64) -> bool {
        self.state().outstanding.first().is_none_or(|&s| s >= mark)
    }

    /// The first delivery that failed, if any.
    pub fn failure(&self) -> Option<String> {
        self.state().failed.clone()
    }

    fn delivered(&self, seq: u64, error: Option<String>) {
        let mut s = self.state();
        s.outstanding.remove(&seq);
        if let Some(e) = error {
            s.failed.get_or_insert(e);
        }
    }
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = Box<u64>;

    fn delivery(&self, result: &DeliveryResult<'_>, seq: Self::DeliveryOpaque) {
        let error = result
            .as_ref()
            .err()
            .map(|(e, m)| format!("delivering to {}: {e}", m.topic()));
        self.delivered(*seq, error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_is_reached_when_everything_before_it_is_acknowledged_in_any_order() {
        let d = Deliveries::default();
        let a = d.sending();
        let b = d.sending();
        let mark = d.mark();
        let c = d.sending();
        assert!(!d.acknowledged_below(mark));
        d.delivered(b, None);
        d.delivered(c, None);
        assert!(!d.acknowledged_below(mark), "a is still out");
        d.delivered(a, None);
        assert!(d.acknowledged_below(mark));
        assert!(d.failure().is_none());
    }

    #[test]
    fn a_failed_delivery_is_kept_and_a_record_never_queued_is_not_waited_for() {
        let d = Deliveries::default();
        let a = d.sending();
        let b = d.sending();
        d.not_sent(b);
        d.delivered(a, Some("delivering to offer_events: timed out".into()));
        assert!(d.acknowledged_below(d.mark()));
        assert_eq!(
            d.failure().as_deref(),
            Some("delivering to offer_events: timed out")
        );
    }
}
