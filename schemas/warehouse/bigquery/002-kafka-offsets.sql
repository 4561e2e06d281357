-- Where each consumer group stands: the next offset to read per partition. Advanced by one conditional
-- MERGE after the rows it covers have landed (see warehouse/src/bigquery/mod.rs), never before.
CREATE TABLE IF NOT EXISTS `{raw}._kafka_offsets` (
    consumer_group   STRING    NOT NULL,
    topic            STRING    NOT NULL,
    `partition`      INT64     NOT NULL,
    next_offset      INT64     NOT NULL,
    updated_at       TIMESTAMP NOT NULL
)
CLUSTER BY consumer_group, topic;
