//! A member's writer: a thread that owns the member's own warehouse connection, so that polling,
//! heartbeats and rebalances never wait on the warehouse. The poll thread hands it one batch at a time
//! and builds the next one meanwhile; replies come back on a channel that the poll loop drains.
//!
//! A write is: dead letters acknowledged by the broker, then rows and offsets in one warehouse
//! transaction. Retriable failures are retried here, with the process's one policy, for as long as it
//! takes (the poll thread pauses fetching meanwhile: back-pressure); the visible time of the rows is taken
//! after the commit, so freshness measures what a reader sees.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

use playlog_model::Stream;
use playlog_warehouse::retry::{Policy, retry};
use playlog_warehouse::{OffsetAdvance, RawBatch, Rejected, Warehouse, WarehouseError};

use crate::dead_letter::Origin;
use crate::decode::DeadLetterReason;
use crate::group::Shared;
use crate::metrics::TableLabels;

/// The longest backoff between two attempts of a write or a lookup (jitter adds up to as much again).
const MAX_RETRY_DELAY: Duration = Duration::from_secs(15);

/// Each stored offset of the group, by topic and partition.
pub type StoredOffsets = HashMap<(String, i32), i64>;

/// What a writer is asked to do, in order.
pub enum Command {
    /// Read the group's stored offsets (for partitions just assigned). Queued behind any write, so that
    /// it sees the member's own writes.
    LookUp,
    /// Land a batch and move its partitions' offsets.
    Write {
        batch: RawBatch,
        advances: Vec<OffsetAdvance>,
    },
}

/// What a writer answers, one reply per command, in order.
pub enum Reply {
    Stored(StoredOffsets),
    Written {
        advances: Vec<OffsetAdvance>,
    },
    /// Another member moved one of the partitions first: nothing was written; here is what is stored now.
    Fenced {
        stored: StoredOffsets,
    },
    /// Not retriable (or given up at shutdown): nothing was written.
    Failed(WarehouseError),
}

/// The poll thread's side of a writer.
pub struct Writer {
    commands: Option<Sender<Command>>,
    replies: Receiver<Reply>,
    /// Set to abandon retries (shutdown past its deadline).
    abandon: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Commands sent and not yet answered.
    pending: usize,
}

impl Writer {
    /// `warehouse`: the member's connection, and the epoch of the instance it belongs to.
    pub fn spawn(
        name: &str,
        (warehouse, epoch): (Warehouse, u64),
        shared: Arc<Shared>,
    ) -> std::io::Result<Writer> {
        let (commands, inbox) = std::sync::mpsc::channel();
        let (outbox, replies) = std::sync::mpsc::channel();
        let abandon = Arc::new(AtomicBool::new(false));
        let thread = {
            let abandon = abandon.clone();
            std::thread::Builder::new()
                .name(format!("{name}-writer"))
                .spawn(move || {
                    let mut writer = WriterThread {
                        warehouse,
                        epoch,
                        shared,
                        abandon,
                    };
                    for command in inbox {
                        if outbox.send(writer.serve(command)).is_err() {
                            break;
                        }
                    }
                })?
        };
        Ok(Writer {
            commands: Some(commands),
            replies,
            abandon,
            thread: Some(thread),
            pending: 0,
        })
    }

    pub fn send(&mut self, command: Command) {
        if let Some(commands) = &self.commands
            && commands.send(command).is_ok()
        {
            self.pending += 1;
        }
    }

    /// A reply, if one has come.
    pub fn try_reply(&mut self) -> Option<Reply> {
        let reply = self.replies.try_recv().ok()?;
        self.pending -= 1;
        Some(reply)
    }

    /// The next reply, waiting at most `timeout`.
    pub fn reply_within(&mut self, timeout: Duration) -> Option<Reply> {
        if self.pending == 0 {
            return None;
        }
        let reply = self.replies.recv_timeout(timeout).ok()?;
        self.pending -= 1;
        Some(reply)
    }

    /// Stops retrying, lets the thread finish its command and joins it.
    pub fn close(&mut self) {
        self.abandon.store(true, Ordering::Relaxed);
        self.commands = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.close();
    }
}

struct WriterThread {
    warehouse: Warehouse,
    /// Which opening of the warehouse `warehouse` is a connection of.
    epoch: u64,
    shared: Arc<Shared>,
    abandon: Arc<AtomicBool>,
}

impl WriterThread {
    fn serve(&mut self, command: Command) -> Reply {
        match command {
            Command::LookUp => match self.stored_offsets() {
                Ok(stored) => Reply::Stored(stored),
                Err(e) => Reply::Failed(e),
            },
            Command::Write { batch, advances } => {
                let started = Instant::now();
                let result =
                    self.until_done("landing a batch", |w| w.write_once(&batch, &advances));
                match result {
                    Ok(()) => {
                        self.shared
                            .metrics
                            .flush_duration
                            .observe(started.elapsed().as_secs_f64());
                        Reply::Written { advances }
                    }
                    Err(error @ WarehouseError::Fenced { .. }) => {
                        tracing::warn!(%error, "fenced: another member moved the partition first");
                        match self.stored_offsets() {
                            Ok(stored) => Reply::Fenced { stored },
                            Err(e) => Reply::Failed(e),
                        }
                    }
                    Err(e) => Reply::Failed(e),
                }
            }
        }
    }

    /// Runs `op` on this writer's connection until it succeeds, fails for good, or the writer is
    /// abandoned: retriable errors with the process's policy, a dead connection by reopening.
    fn until_done<T>(
        &mut self,
        what: &str,
        mut op: impl FnMut(&mut Self) -> Result<T, WarehouseError>,
    ) -> Result<T, WarehouseError> {
        let abandon = self.abandon.clone();
        let metrics = self.shared.metrics.clone();
        retry(
            what,
            Policy::forever(MAX_RETRY_DELAY),
            Some(&abandon),
            |e: &WarehouseError| {
                metrics.warehouse_errors.inc();
                e.is_retriable()
            },
            || {
                let result = op(self);
                self.reopen_if_fatal(result)
            },
        )
    }

    /// A fatal error (DuckDB invalidated its instance, for example after a commit hit a full disk) leaves
    /// this connection dead for good: the warehouse is opened again and the operation retried on a new
    /// connection (its writes fenced as usual). A warehouse that will not open again is not retried: the
    /// member stops and the process exits non-zero, for its supervisor to restart.
    fn reopen_if_fatal<T>(
        &mut self,
        result: Result<T, WarehouseError>,
    ) -> Result<T, WarehouseError> {
        match result {
            Err(e) if e.is_fatal() => {
                tracing::error!(error = %e, "the warehouse failed fatally; opening it again");
                self.shared.metrics.warehouse_errors.inc();
                match self.shared.reopen(self.epoch) {
                    Ok((warehouse, epoch)) => {
                        self.warehouse = warehouse;
                        self.epoch = epoch;
                        Err(WarehouseError::Unavailable(format!(
                            "{e} (reopened; retrying)"
                        )))
                    }
                    Err(open) => Err(WarehouseError::Sql(format!(
                        "the warehouse failed fatally ({e}) and would not open again: {open}"
                    ))),
                }
            }
            other => other,
        }
    }

    /// The group's stored offsets, retried until the warehouse answers (assigning without them could
    /// re-read or skip events) or the writer is abandoned.
    fn stored_offsets(&mut self) -> Result<StoredOffsets, WarehouseError> {
        let group = self.shared.options.group.clone();
        self.until_done("reading the stored offsets", |w| {
            w.warehouse.stored_offsets(&group)
        })
        .map(|offsets| {
            offsets
                .into_iter()
                .map(|o| ((o.topic, o.partition), o.next_offset))
                .collect()
        })
    }

    fn write_once(
        &mut self,
        batch: &RawBatch,
        advances: &[OffsetAdvance],
    ) -> Result<(), WarehouseError> {
        let shared = self.shared.clone();
        if let Err(e) = shared.dead_letters.flush() {
            // Not a warehouse failure, but it blocks recording offsets in the same way: nothing moves past
            // a letter that is not in the topic.
            tracing::error!(
                topic = shared.dead_letters.topic(),
                error = %e,
                "dead letters not acknowledged: offsets held back; retrying"
            );
            return Err(WarehouseError::Unavailable(format!(
                "dead-letter topic {}: {e}",
                shared.dead_letters.topic()
            )));
        }
        let mut dead_letter = |rows: Vec<Rejected>| dead_letter_rejected(&shared, rows);
        let committed =
            self.warehouse
                .write(&shared.options.group, batch, advances, &mut dead_letter)?;
        // Visible to readers from now on: freshness is measured to here, not to a stamp before the commit.
        let visible_at = crate::group::now_ms();
        let m = &shared.metrics;
        m.batches.inc();
        for stream in Stream::ALL {
            let n = committed.rows[stream.index()];
            if n > 0 {
                m.rows_ingested
                    .get_or_create(&TableLabels {
                        table: stream.topic().to_owned(),
                    })
                    .inc_by(n);
                shared.rows[stream.index()].fetch_add(n, Ordering::Relaxed);
            }
        }
        for ts in batch.event_times() {
            m.freshness.observe((visible_at - ts) as f64 / 1000.0);
        }
        for ts in batch.publish_times() {
            m.publish_freshness
                .observe((visible_at - ts) as f64 / 1000.0);
        }
        shared.batches.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Rows the warehouse refused: to the dead-letter topic, acknowledged before the offsets move past them.
fn dead_letter_rejected(shared: &Shared, rows: Vec<Rejected>) -> Result<(), WarehouseError> {
    let failed = |e: String| {
        WarehouseError::Unavailable(format!(
            "dead-letter topic {}: {e}",
            shared.dead_letters.topic()
        ))
    };
    for row in rows {
        let reason = DeadLetterReason::WarehouseRejected(row.message);
        let origin = Origin {
            topic: &row.topic,
            partition: row.partition,
            offset: row.offset,
        };
        shared
            .dead_letters
            .send(Some(row.row.as_bytes()), None, &origin, &reason)
            .map_err(|e| failed(e.to_string()))?;
        shared.dead_letter_count.fetch_add(1, Ordering::Relaxed);
        shared.metrics.count_dead_letter(&row.topic, &reason);
    }
    shared
        .dead_letters
        .flush()
        .map_err(|e| failed(e.to_string()))
}
