//! Identifiers that never collide: eventsim numbered sessions from 1 in every process, so two instances (or
//! one instance restarted) reused session ids. Playlog builds them from the generator and the time.

/// Milliseconds from the Unix epoch to 2020-01-01T00:00:00Z, the origin of session-id time.
const ID_EPOCH_MS: i64 = 1_577_836_800_000;
/// Sessions per simulated millisecond before the counter borrows from the next millisecond.
const SEQUENCE_BITS: u32 = 12;
/// Bits below the generator: 41 bits of milliseconds (69 years from 2020) and the sequence.
const GENERATOR_SHIFT: u32 = 41 + SEQUENCE_BITS;
/// Producer instances (`--instance-id`) that can run side by side.
pub const MAX_INSTANCES: u16 = 64;
/// Generator threads per instance.
pub const MAX_SHARDS: u16 = 16;

/// Hands out session ids for one generator (an instance's shard).
///
/// An id is `generator << 53 | sequence`, where the sequence is at least the session's first emitted
/// event's time in milliseconds since 2020, times 4096, and always more than the last one handed out.
/// Ids are assigned when a session's first event is emitted, which happens in time order, so a restarted
/// instance, whose clock has moved on, continues above every id it handed out before.
#[derive(Debug)]
pub struct SessionIds {
    prefix: u64,
    last: u64,
}

impl SessionIds {
    pub fn new(instance_id: u16, shard: u16) -> SessionIds {
        assert!(
            instance_id < MAX_INSTANCES && shard < MAX_SHARDS,
            "validated by the caller"
        );
        let generator = u64::from(instance_id) * u64::from(MAX_SHARDS) + u64::from(shard);
        SessionIds {
            prefix: generator << GENERATOR_SHIFT,
            last: 0,
        }
    }

    /// The id of a session whose first emitted event happens at `ts` (epoch milliseconds).
    pub fn assign(&mut self, ts: i64) -> i64 {
        let floor = ((ts - ID_EPOCH_MS).max(0) as u64) << SEQUENCE_BITS;
        let sequence = floor.max(self.last + 1);
        self.last = sequence;
        (self.prefix | sequence) as i64
    }
}

/// A well-mixed 64-bit value from two inputs (SplitMix64's finaliser), to seed independent random streams.
pub fn mix_seed(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_different_generators_never_meet() {
        let mut a = SessionIds::new(0, 0);
        let mut b = SessionIds::new(1, 0);
        let mut c = SessionIds::new(0, 1);
        let ts = 1_767_225_600_000;
        let ids = [a.assign(ts), b.assign(ts), c.assign(ts)];
        assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);
        assert!(ids.iter().all(|id| *id > 0), "ids stay positive longs");
    }

    #[test]
    fn a_restart_later_in_time_continues_above_the_last_run() {
        let ts = 1_767_225_600_000;
        let mut first = SessionIds::new(3, 0);
        // Many sessions in one millisecond borrow from the following ones...
        let last_of_first_run = (0..10_000).map(|_| first.assign(ts)).max().expect("ids");
        // ...and a restart a second later still starts above them.
        let mut restarted = SessionIds::new(3, 0);
        assert!(restarted.assign(ts + 1000) > last_of_first_run);
    }

    #[test]
    fn ids_are_strictly_increasing_within_a_generator() {
        let mut g = SessionIds::new(0, 0);
        let mut prev = 0;
        for ts in [5, 5, 5, 4, 100, 100] {
            let id = g.assign(1_700_000_000_000 + ts);
            assert!(id > prev);
            prev = id;
        }
    }
}
