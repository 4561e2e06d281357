-- Raw event tables in BigQuery: the same columns, in the same order, as the DuckDB tables
-- (schemas/warehouse/duckdb/001-raw-events.sql), mapped to BigQuery types. `{raw}` is the raw dataset,
-- `project.prefix_raw`, filled in by Playlog.
--
-- Partitioned by load day, so that the vault's incremental reads (`_loaded_at > mark`) prune to the days
-- since its last run; clustered by user, the key most marts and satellites group by.
-- Rows arrive through the streaming API (insertAll) with insertId = topic-partition-offset.

CREATE TABLE IF NOT EXISTS `{raw}.listen_events` (
    event_id         STRING NOT NULL,
    ts               TIMESTAMP NOT NULL, -- UTC
    session_id       INT64 NOT NULL,
    item_in_session  INT64 NOT NULL,
    level            STRING NOT NULL,
    user_id          INT64,             -- NULL for guests and logged-out users
    first_name       STRING,
    last_name        STRING,
    gender           STRING,
    registration     TIMESTAMP,         -- UTC
    zip              STRING NOT NULL,   -- text: leading zeros kept
    city             STRING NOT NULL,
    state            STRING NOT NULL,
    lat              FLOAT64 NOT NULL,
    lon              FLOAT64 NOT NULL,
    user_agent       STRING NOT NULL,
    artist           STRING NOT NULL,
    song             STRING NOT NULL,
    duration         FLOAT64 NOT NULL,  -- seconds
    auth             STRING NOT NULL,
    _topic           STRING NOT NULL,
    _partition       INT64 NOT NULL,
    _offset          INT64 NOT NULL,
    _kafka_ts        TIMESTAMP,         -- the record's Kafka timestamp, UTC
    _loaded_at       TIMESTAMP NOT NULL  -- the batch's commit time: the Data Vault load date
)
PARTITION BY DATE(_loaded_at)
CLUSTER BY user_id;

CREATE TABLE IF NOT EXISTS `{raw}.page_view_events` (
    event_id         STRING NOT NULL,
    ts               TIMESTAMP NOT NULL, -- UTC
    session_id       INT64 NOT NULL,
    item_in_session  INT64 NOT NULL,
    level            STRING NOT NULL,
    user_id          INT64,             -- NULL for guests and logged-out users
    first_name       STRING,
    last_name        STRING,
    gender           STRING,
    registration     TIMESTAMP,         -- UTC
    zip              STRING NOT NULL,   -- text: leading zeros kept
    city             STRING NOT NULL,
    state            STRING NOT NULL,
    lat              FLOAT64 NOT NULL,
    lon              FLOAT64 NOT NULL,
    user_agent       STRING NOT NULL,
    page             STRING NOT NULL,
    auth             STRING NOT NULL,
    method           STRING NOT NULL,
    status           INT64 NOT NULL,
    artist           STRING,            -- NextSong only
    song             STRING,
    duration         FLOAT64,
    _topic           STRING NOT NULL,
    _partition       INT64 NOT NULL,
    _offset          INT64 NOT NULL,
    _kafka_ts        TIMESTAMP,         -- the record's Kafka timestamp, UTC
    _loaded_at       TIMESTAMP NOT NULL  -- the batch's commit time: the Data Vault load date
)
PARTITION BY DATE(_loaded_at)
CLUSTER BY user_id;

CREATE TABLE IF NOT EXISTS `{raw}.auth_events` (
    event_id         STRING NOT NULL,
    ts               TIMESTAMP NOT NULL, -- UTC
    session_id       INT64 NOT NULL,
    item_in_session  INT64 NOT NULL,
    level            STRING NOT NULL,
    user_id          INT64,             -- NULL for guests and logged-out users
    first_name       STRING,
    last_name        STRING,
    gender           STRING,
    registration     TIMESTAMP,         -- UTC
    zip              STRING NOT NULL,   -- text: leading zeros kept
    city             STRING NOT NULL,
    state            STRING NOT NULL,
    lat              FLOAT64 NOT NULL,
    lon              FLOAT64 NOT NULL,
    user_agent       STRING NOT NULL,
    success          BOOL NOT NULL,
    _topic           STRING NOT NULL,
    _partition       INT64 NOT NULL,
    _offset          INT64 NOT NULL,
    _kafka_ts        TIMESTAMP,         -- the record's Kafka timestamp, UTC
    _loaded_at       TIMESTAMP NOT NULL  -- the batch's commit time: the Data Vault load date
)
PARTITION BY DATE(_loaded_at)
CLUSTER BY user_id;

CREATE TABLE IF NOT EXISTS `{raw}.status_change_events` (
    event_id         STRING NOT NULL,
    ts               TIMESTAMP NOT NULL, -- UTC
    session_id       INT64 NOT NULL,
    item_in_session  INT64 NOT NULL,
    level            STRING NOT NULL,
    user_id          INT64,             -- NULL for guests and logged-out users
    first_name       STRING,
    last_name        STRING,
    gender           STRING,
    registration     TIMESTAMP,         -- UTC
    zip              STRING NOT NULL,   -- text: leading zeros kept
    city             STRING NOT NULL,
    state            STRING NOT NULL,
    lat              FLOAT64 NOT NULL,
    lon              FLOAT64 NOT NULL,
    user_agent       STRING NOT NULL,
    auth             STRING NOT NULL,
    _topic           STRING NOT NULL,
    _partition       INT64 NOT NULL,
    _offset          INT64 NOT NULL,
    _kafka_ts        TIMESTAMP,         -- the record's Kafka timestamp, UTC
    _loaded_at       TIMESTAMP NOT NULL  -- the batch's commit time: the Data Vault load date
)
PARTITION BY DATE(_loaded_at)
CLUSTER BY user_id;
