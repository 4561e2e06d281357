-- Where each consumer group stands: the next offset to read per partition. Written in the same transaction
-- as the rows it covers, so the warehouse, not Kafka, is the source of truth for exactly-once.
CREATE TABLE IF NOT EXISTS raw._kafka_offsets (
    consumer_group   VARCHAR   NOT NULL,
    topic            VARCHAR   NOT NULL,
    "partition"      INTEGER   NOT NULL,
    next_offset      BIGINT    NOT NULL,
    updated_at       TIMESTAMP NOT NULL,
    PRIMARY KEY (consumer_group, topic, "partition")
);
