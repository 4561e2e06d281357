-- The offers that `playlog offers` makes (topic offer_events): the same columns, in the same order, as
-- schemas/warehouse/duckdb/004-offer-events.sql, mapped to BigQuery types. A replay after a crash can land the
-- same offer_id twice (at another offset); the vault deduplicates on it.
CREATE TABLE IF NOT EXISTS `{raw}.offer_events` (
    offer_id         STRING NOT NULL,   -- RULE:TRIGGER_EVENT_ID
    rule_id          STRING NOT NULL,
    user_id          INT64 NOT NULL,
    session_id       INT64 NOT NULL,
    trigger_event_id STRING NOT NULL,
    ts               TIMESTAMP NOT NULL, -- event time of the decision, UTC
    expires_at       TIMESTAMP NOT NULL, -- UTC
    holdout          BOOL NOT NULL,      -- held out: recorded, no offer shown
    emitted_at       TIMESTAMP NOT NULL, -- wall-clock send time, UTC
    _topic           STRING NOT NULL,
    _partition       INT64 NOT NULL,
    _offset          INT64 NOT NULL,
    _kafka_ts        TIMESTAMP,         -- the record's Kafka timestamp, UTC
    _loaded_at       TIMESTAMP NOT NULL  -- the batch's commit time: the Data Vault load date
)
PARTITION BY DATE(_loaded_at)
CLUSTER BY user_id;
