//! Whether the warehouse's stored offsets belong to the Kafka log the brokers serve, judged by cluster
//! id before any member joins (a recreated topic on the same cluster is caught later, per partition, by
//! `Partition::log_end`), and the deliberate move to another log (`--reset-offsets`).

use playlog_warehouse::Warehouse;

use crate::group::ConsumeError;
use crate::options::ConsumeOptions;

/// What to do about the cluster id recorded with the offsets and the one the brokers report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The same cluster: go on.
    Same,
    /// Nothing recorded yet (a new warehouse, or one from before cluster ids were kept): record it.
    Record,
    /// The brokers report no cluster id (very old brokers): nothing to compare.
    Unknown,
    /// Another cluster: refuse to start.
    Other,
}

pub fn judge(recorded: Option<&str>, reported: Option<&str>) -> Claim {
    match (recorded, reported) {
        (_, None) => Claim::Unknown,
        (None, Some(_)) => Claim::Record,
        (Some(a), Some(b)) if a == b => Claim::Same,
        (Some(_), Some(_)) => Claim::Other,
    }
}

/// Checks (or, with `--reset-offsets`, resets) the group's claim on the log of the cluster `reported`.
pub fn claim(
    warehouse: &mut Warehouse,
    options: &ConsumeOptions,
    reported: Option<&str>,
) -> Result<(), ConsumeError> {
    let group = &options.group;
    if options.reset_offsets {
        let forgotten = warehouse.reset_offsets(group, reported)?;
        tracing::warn!(
            group,
            partitions = forgotten,
            cluster = reported.unwrap_or("unknown"),
            "--reset-offsets: the group's stored offsets are forgotten and every partition is read from the log's beginning (start without the flag from now on)"
        );
        return Ok(());
    }
    let recorded = warehouse.kafka_cluster(group)?;
    match judge(recorded.as_deref(), reported) {
        Claim::Same => Ok(()),
        Claim::Record => {
            let id = reported.unwrap_or_default();
            warehouse.record_kafka_cluster(group, id)?;
            tracing::info!(
                group,
                cluster = id,
                "recorded the Kafka cluster the group's offsets come from"
            );
            Ok(())
        }
        Claim::Unknown => {
            tracing::warn!(
                group,
                "the brokers report no cluster id: a move to another Kafka cluster cannot be detected"
            );
            Ok(())
        }
        Claim::Other => Err(ConsumeError::OtherCluster {
            group: group.clone(),
            brokers: options.kafka.brokers().to_owned(),
            stored: recorded.unwrap_or_default(),
            current: reported.unwrap_or_default().to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_is_recorded_once_then_compared() {
        assert_eq!(judge(None, Some("a")), Claim::Record);
        assert_eq!(judge(Some("a"), Some("a")), Claim::Same);
        assert_eq!(judge(Some("a"), Some("b")), Claim::Other);
        assert_eq!(judge(Some("a"), None), Claim::Unknown);
        assert_eq!(judge(None, None), Claim::Unknown);
    }
}
