-- The offers that `playlog offers` makes (topic offer_events), landed like the event streams: one row per
-- Kafka record, the record's fields (snake_case), then the Kafka coordinates and load time. A replay after a
-- crash can land the same offer_id twice (at another offset); the vault deduplicates on it.
CREATE TABLE IF NOT EXISTS raw.offer_events (
    offer_id         VARCHAR   NOT NULL,  -- RULE:TRIGGER_EVENT_ID
    rule_id          VARCHAR   NOT NULL,
    user_id          BIGINT    NOT NULL,
    session_id       BIGINT    NOT NULL,
    trigger_event_id VARCHAR   NOT NULL,
    ts               TIMESTAMP NOT NULL,  -- event time of the decision, UTC
    expires_at       TIMESTAMP NOT NULL,  -- UTC
    holdout          BOOLEAN   NOT NULL,  -- held out: recorded, no offer shown
    emitted_at       TIMESTAMP NOT NULL,  -- wall-clock send time, UTC
    _topic           VARCHAR   NOT NULL,
    _partition       INTEGER   NOT NULL,
    _offset          BIGINT    NOT NULL,
    _kafka_ts        TIMESTAMP,           -- the record's Kafka timestamp, UTC
    _loaded_at       TIMESTAMP NOT NULL   -- the batch's commit time: the Data Vault load date
);
