-- Which Kafka cluster each consumer group's offsets came from (the cluster id its brokers report), so
-- that a consumer pointed at another cluster refuses to start instead of skipping records.
CREATE TABLE IF NOT EXISTS `{raw}._kafka_clusters` (
    consumer_group   STRING    NOT NULL,
    cluster_id       STRING    NOT NULL,
    recorded_at      TIMESTAMP NOT NULL
);
