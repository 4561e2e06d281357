-- Raw event tables: one row per Kafka record, columns in the Avro schemas' order (snake_case), then
-- the Kafka coordinates and load time. Playlog's appender writes columns in exactly this order.
CREATE SCHEMA IF NOT EXISTS raw;

CREATE TABLE IF NOT EXISTS raw.listen_events (
    event_id         VARCHAR   NOT NULL,
    ts               TIMESTAMP NOT NULL,  -- UTC
    session_id       BIGINT    NOT NULL,
    item_in_session  INTEGER   NOT NULL,
    level            VARCHAR   NOT NULL,
    user_id          BIGINT,              -- NULL for guests and logged-out users
    first_name       VARCHAR,
    last_name        VARCHAR,
    gender           VARCHAR,
    registration     TIMESTAMP,           -- UTC
    zip              VARCHAR   NOT NULL,  -- text: leading zeros kept
    city             VARCHAR   NOT NULL,
    state            VARCHAR   NOT NULL,
    lat              DOUBLE    NOT NULL,
    lon              DOUBLE    NOT NULL,
    user_agent       VARCHAR   NOT NULL,
    artist           VARCHAR   NOT NULL,
    song             VARCHAR   NOT NULL,
    duration         DOUBLE    NOT NULL,  -- seconds
    auth             VARCHAR   NOT NULL,
    _topic           VARCHAR   NOT NULL,
    _partition       INTEGER   NOT NULL,
    _offset          BIGINT    NOT NULL,
    _kafka_ts        TIMESTAMP,           -- the record's Kafka timestamp, UTC
    _loaded_at       TIMESTAMP NOT NULL   -- the batch's commit time: the Data Vault load date
);

CREATE TABLE IF NOT EXISTS raw.page_view_events (
    event_id         VARCHAR   NOT NULL,
    ts               TIMESTAMP NOT NULL,  -- UTC
    session_id       BIGINT    NOT NULL,
    item_in_session  INTEGER   NOT NULL,
    level            VARCHAR   NOT NULL,
    user_id          BIGINT,              -- NULL for guests and logged-out users
    first_name       VARCHAR,
    last_name        VARCHAR,
    gender           VARCHAR,
    registration     TIMESTAMP,           -- UTC
    zip              VARCHAR   NOT NULL,  -- text: leading zeros kept
    city             VARCHAR   NOT NULL,
    state            VARCHAR   NOT NULL,
    lat              DOUBLE    NOT NULL,
    lon              DOUBLE    NOT NULL,
    user_agent       VARCHAR   NOT NULL,
    page             VARCHAR   NOT NULL,
    auth             VARCHAR   NOT NULL,
    method           VARCHAR   NOT NULL,
    status           INTEGER   NOT NULL,
    artist           VARCHAR,             -- NextSong only
    song             VARCHAR,
    duration         DOUBLE,
    _topic           VARCHAR   NOT NULL,
    _partition       INTEGER   NOT NULL,
    _offset          BIGINT    NOT NULL,
    _kafka_ts        TIMESTAMP,           -- the record's Kafka timestamp, UTC
    _loaded_at       TIMESTAMP NOT NULL   -- the batch's commit time: the Data Vault load date
);

CREATE TABLE IF NOT EXISTS raw.auth_events (
    event_id         VARCHAR   NOT NULL,
    ts               TIMESTAMP NOT NULL,  -- UTC
    session_id       BIGINT    NOT NULL,
    item_in_session  INTEGER   NOT NULL,
    level            VARCHAR   NOT NULL,
    user_id          BIGINT,              -- NULL for guests and logged-out users
    first_name       VARCHAR,
    last_name        VARCHAR,
    gender           VARCHAR,
    registration     TIMESTAMP,           -- UTC
    zip              VARCHAR   NOT NULL,  -- text: leading zeros kept
    city             VARCHAR   NOT NULL,
    state            VARCHAR   NOT NULL,
    lat              DOUBLE    NOT NULL,
    lon              DOUBLE    NOT NULL,
    user_agent       VARCHAR   NOT NULL,
    success          BOOLEAN   NOT NULL,
    _topic           VARCHAR   NOT NULL,
    _partition       INTEGER   NOT NULL,
    _offset          BIGINT    NOT NULL,
    _kafka_ts        TIMESTAMP,           -- the record's Kafka timestamp, UTC
    _loaded_at       TIMESTAMP NOT NULL   -- the batch's commit time: the Data Vault load date
);

CREATE TABLE IF NOT EXISTS raw.status_change_events (
    event_id         VARCHAR   NOT NULL,
    ts               TIMESTAMP NOT NULL,  -- UTC
    session_id       BIGINT    NOT NULL,
    item_in_session  INTEGER   NOT NULL,
    level            VARCHAR   NOT NULL,
    user_id          BIGINT,              -- NULL for guests and logged-out users
    first_name       VARCHAR,
    last_name        VARCHAR,
    gender           VARCHAR,
    registration     TIMESTAMP,           -- UTC
    zip              VARCHAR   NOT NULL,  -- text: leading zeros kept
    city             VARCHAR   NOT NULL,
    state            VARCHAR   NOT NULL,
    lat              DOUBLE    NOT NULL,
    lon              DOUBLE    NOT NULL,
    user_agent       VARCHAR   NOT NULL,
    auth             VARCHAR   NOT NULL,
    _topic           VARCHAR   NOT NULL,
    _partition       INTEGER   NOT NULL,
    _offset          BIGINT    NOT NULL,
    _kafka_ts        TIMESTAMP,           -- the record's Kafka timestamp, UTC
    _loaded_at       TIMESTAMP NOT NULL   -- the batch's commit time: the Data Vault load date
);
