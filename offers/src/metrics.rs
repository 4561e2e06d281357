//! `playlog offers`' metrics: decisions per rule (offers and holdouts), how far evaluation is behind the
//! events, how long a trigger takes to become an offer, and the size of the per-user state.

use std::sync::atomic::AtomicU64;

use playlog_metrics::MetricsRegistry;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use crate::rules::Rules;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub rule: String,
    /// `offer` or `holdout`.
    pub outcome: String,
}

pub struct OffersMetrics {
    pub decisions: Family<DecisionLabels, Counter>,
    pub page_views: Counter,
    /// Wall time minus the Kafka timestamp of the last page view evaluated.
    pub evaluation_lag_seconds: Gauge<f64, AtomicU64>,
    /// The Kafka timestamp (Unix seconds) of the newest page view evaluated: it stops moving when
    /// evaluation stops, whatever the process still answers, which is what the lag alert reads.
    pub evaluated_through_seconds: Gauge<f64, AtomicU64>,
    /// Trigger page view published (its Kafka timestamp) to its offer handed to the producer.
    pub latency_seconds: Histogram,
    /// Users and sessions held in the engine's state.
    pub state_size: Gauge,
}

impl OffersMetrics {
    pub fn register(registry: &MetricsRegistry, rules: &Rules) -> OffersMetrics {
        let m = OffersMetrics {
            decisions: Family::default(),
            page_views: Counter::default(),
            evaluation_lag_seconds: Gauge::default(),
            evaluated_through_seconds: Gauge::default(),
            // 1 ms to about 33 s: the 250 ms target sits between buckets 8 and 9.
            latency_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            state_size: Gauge::default(),
        };
        // Every rule's series from the start, so that a rule that has made nothing reads 0, not absent.
        for rule in &rules.rules {
            for outcome in ["offer", "holdout"] {
                m.decisions
                    .get_or_create(&DecisionLabels {
                        rule: rule.id.clone(),
                        outcome: outcome.into(),
                    })
                    .inc_by(0);
            }
        }
        registry.register(
            "playlog_offers_decisions",
            "Decisions made by playlog offers, per rule: offers shown, and holdouts recorded",
            m.decisions.clone(),
        );
        registry.register(
            "playlog_offers_page_views",
            "Page views evaluated by playlog offers",
            m.page_views.clone(),
        );
        registry.register(
            "playlog_offers_evaluation_lag_seconds",
            "Seconds between the newest page view evaluated being published and now",
            m.evaluation_lag_seconds.clone(),
        );
        registry.register(
            "playlog_offers_evaluated_through_seconds",
            "Publish time (Kafka timestamp, Unix seconds) of the newest page view evaluated",
            m.evaluated_through_seconds.clone(),
        );
        registry.register(
            "playlog_offers_latency_seconds",
            "Seconds from a triggering page view's publication (Kafka timestamp) to its offer being sent",
            m.latency_seconds.clone(),
        );
        registry.register(
            "playlog_offers_state_size",
            "Users and sessions held in playlog offers' evaluation state",
            m.state_size.clone(),
        );
        m
    }
}
