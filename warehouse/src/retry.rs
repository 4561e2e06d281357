//! Playlog's one retry policy for warehouse calls: exponential backoff with full jitter (`backon`), a
//! ceiling on the delay, and a stop signal that ends the waiting at once. What is worth retrying is the
//! error's own answer (`WarehouseError::is_retriable`, `ApiError::is_transient`), never a guess here.
//!
//! Jitter matters with several pods: members that failed together (a warehouse restart) would otherwise
//! retry together, in waves.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use backon::{BlockingRetryable, ExponentialBuilder};

/// The first delay; each later one doubles, up to the policy's ceiling, each jittered.
const FIRST_DELAY: Duration = Duration::from_millis(100);
/// How often a waiting retry looks at its stop signal.
const STOP_CHECK: Duration = Duration::from_millis(50);

/// How long and how often to retry.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// The longest backoff between two attempts; `backon`'s jitter adds a random share of up to as much
    /// again, so that members that failed together do not retry together.
    pub max_delay: Duration,
    /// Attempts after the first; `None` retries until success or the stop signal.
    pub retries: Option<usize>,
}

impl Policy {
    /// Until success or the stop signal, at most `max_delay` apart: for work that must not be dropped
    /// (a batch whose offsets would otherwise be lost to a restart).
    pub const fn forever(max_delay: Duration) -> Policy {
        Policy {
            max_delay,
            retries: None,
        }
    }

    /// At most `retries` more attempts.
    pub const fn times(retries: usize, max_delay: Duration) -> Policy {
        Policy {
            max_delay,
            retries: Some(retries),
        }
    }

    fn backoff(&self) -> ExponentialBuilder {
        let builder = ExponentialBuilder::default()
            .with_min_delay(FIRST_DELAY)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_jitter();
        match self.retries {
            Some(n) => builder.with_max_times(n),
            None => builder.without_max_times(),
        }
    }
}

/// Runs `op` until it succeeds, fails with an error `retriable` refuses, the policy gives up, or `stop`
/// is set. Each retry is logged as a warning naming `what`.
pub fn retry<T, E: std::fmt::Display>(
    what: &str,
    policy: Policy,
    stop: Option<&Arc<AtomicBool>>,
    retriable: impl Fn(&E) -> bool,
    op: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let stopped = {
        let stop = stop.cloned();
        move || stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed))
    };
    let sleep_stop = stopped.clone();
    let mut attempt = 1u32;
    op.retry(policy.backoff())
        .sleep(move |delay: Duration| {
            // Sleeps in slices, so that a stop signal ends the wait (the next `when` then gives up).
            let until = std::time::Instant::now() + delay;
            while !sleep_stop() {
                let left = until.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                std::thread::sleep(left.min(STOP_CHECK));
            }
        })
        .when(|e| retriable(e) && !stopped())
        .notify(|e, delay| {
            tracing::warn!(attempt, retry_in = ?delay, error = %e, "{what} failed; retrying");
            attempt += 1;
        })
        .call()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_what_is_retriable_and_stops_at_the_first_final_error() {
        let mut calls = 0;
        let result: Result<u32, String> = retry(
            "test",
            Policy::times(5, Duration::from_millis(1)),
            None,
            |e: &String| e == "transient",
            || {
                calls += 1;
                match calls {
                    1 | 2 => Err("transient".into()),
                    _ => Ok(calls),
                }
            },
        );
        assert_eq!(result, Ok(3));
        let mut calls = 0;
        let result: Result<(), String> = retry(
            "test",
            Policy::forever(Duration::from_millis(1)),
            None,
            |e: &String| e == "transient",
            || {
                calls += 1;
                Err(if calls < 3 { "transient" } else { "final" }.into())
            },
        );
        assert_eq!(result, Err("final".into()));
        assert_eq!(calls, 3);
    }

    #[test]
    fn gives_up_after_its_retries_or_when_stopped() {
        let mut calls = 0;
        let result: Result<(), &str> = retry(
            "test",
            Policy::times(2, Duration::from_millis(1)),
            None,
            |_| true,
            || {
                calls += 1;
                Err("transient")
            },
        );
        assert!(result.is_err());
        assert_eq!(calls, 3, "the first attempt and two retries");
        let stop = Arc::new(AtomicBool::new(false));
        let mut calls = 0;
        let result: Result<(), &str> = retry(
            "test",
            Policy::forever(Duration::from_secs(3600)),
            Some(&stop),
            |_| true,
            || {
                calls += 1;
                if calls == 3 {
                    stop.store(true, Ordering::Relaxed);
                }
                Err("transient")
            },
        );
        assert!(result.is_err());
        assert_eq!(calls, 3, "no attempt after the stop signal");
    }
}
