//! A member's librdkafka context. Callbacks run on the member's poll thread, inside `poll()`: statistics
//! are recorded, and a rebalance changes the member's partitions without waiting on the warehouse longer
//! than a bounded deadline (a revocation lands the batch first, within `REVOKE_DEADLINE`).

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use playlog_kafka::ConnectionWatch;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::types::RDKafkaRespErr;

use crate::member::Member;

/// How long a revocation waits for the batch to land before giving the partitions up anyway. A write that
/// lands later is harmless: the next owner's first write is fenced and it re-reads from what is stored.
const REVOKE_DEADLINE: Duration = Duration::from_secs(5);

pub struct MemberContext {
    member: Mutex<Member>,
    /// Started at once: the group checked the connection before any member ran, so later failures (a
    /// rotated password, an expired certificate) are logged as warnings while librdkafka retries.
    watch: ConnectionWatch,
}

impl MemberContext {
    pub fn new(member: Member, watch: ConnectionWatch) -> MemberContext {
        MemberContext {
            member: Mutex::new(member),
            watch,
        }
    }

    /// The member's state. Never held across `poll()`: the callbacks below take it.
    pub fn member(&self) -> MutexGuard<'_, Member> {
        self.member
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ClientContext for MemberContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.watch.observe(&error, reason);
    }

    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        self.watch.observe_log(level, facility, message);
    }

    fn stats(&self, statistics: Statistics) {
        let mut member = self.member();
        member.subscribed(&statistics);
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                if *partition < 0 || p.hi_offset < 0 {
                    continue;
                }
                member.observe(
                    topic,
                    *partition,
                    (p.lo_offset >= 0).then_some(p.lo_offset),
                    p.hi_offset,
                );
            }
        }
    }
}

impl ConsumerContext for MemberContext {
    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            // Common in a rebalance (the generation moved on); the poll loop commits again.
            tracing::debug!(error = %e, "an offset commit to Kafka failed; committing again");
            self.member().commit_failed_at = Some(Instant::now());
        }
    }

    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let partitions: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let result = if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                };
                if let Err(e) = result {
                    tracing::error!(error = %e, "assigning partitions");
                    return;
                }
                // Nothing is fetched until the warehouse's offsets are known: the writer looks them up,
                // and the poll loop seeks and resumes when they come.
                if let Err(e) = consumer.pause(tpl) {
                    tracing::warn!(error = %e, "pausing newly assigned partitions");
                }
                self.member().assigned(&partitions, Instant::now());
                tracing::info!(
                    partitions = partitions.len(),
                    "assigned; looking up the warehouse's offsets"
                );
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let lost = consumer.assignment_lost();
                self.member()
                    .revoked(consumer, &partitions, lost, REVOKE_DEADLINE);
                tracing::info!(partitions = partitions.len(), lost, "revoked");
                let result = if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                };
                if let Err(e) = result {
                    tracing::error!(error = %e, "unassigning partitions");
                }
            }
            other => tracing::error!(error = ?other, "rebalance error"),
        }
    }
}
