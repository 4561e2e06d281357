//! BigQuery, for production: `bigquery://PROJECT/PREFIX` writes to the datasets `PREFIX_raw`,
//! `PREFIX_vault` and `PREFIX_marts` of PROJECT.
//!
//! Opening creates nothing (`migrate` does; the others `require_migrated`), and every job runs in the
//! datasets' location (see `client.rs` for idempotent retries and strict responses).
//!
//! Delivery into raw is at-least-once, as strong as the streaming API allows: rows are streamed first
//! (insertAll, `insertId` = topic-partition-offset, so BigQuery drops most repeats), and only then are the
//! offsets advanced, by one conditional MERGE that also fences off a member whose partitions moved. A crash
//! or a fenced member between the two can leave repeated rows in raw; the vault and marts are exactly-once
//! regardless, because every event-grain table is de-duplicated on the event's hash key.
//!
//! Generated SQL runs in a BigQuery session (so that temp tables work), and `transaction` wraps it in a
//! multi-statement transaction spanning the session's jobs.

mod auth;
mod client;
mod response;
pub mod rows;

use serde_json::Value as Json;

use crate::raw_batch::RawBatch;
use crate::sql::{Rows, SqlError, SqlSession, Value, timestamp_text};
use crate::{Committed, OffsetAdvance, PartitionOffset, Rejected, WarehouseError};
use auth::TokenSource;
use client::{ApiError, Client, QueryResult};
use playlog_sql::migrate::{Ledger, Migration};

const DEFAULT_ENDPOINT: &str = "https://bigquery.googleapis.com";

/// The raw schema's migrations, applied once each through the ledger `PREFIX_raw._schema_migrations` (the
/// mechanism of `playlog_sql::migrate`, as for DuckDB and the vault); each statement is idempotent too.
const DDL: [(&str, &str); 4] = [
    (
        "001-raw-events",
        include_str!("../../../schemas/warehouse/bigquery/001-raw-events.sql"),
    ),
    (
        "002-kafka-offsets",
        include_str!("../../../schemas/warehouse/bigquery/002-kafka-offsets.sql"),
    ),
    (
        "003-kafka-clusters",
        include_str!("../../../schemas/warehouse/bigquery/003-kafka-clusters.sql"),
    ),
    (
        "004-offer-events",
        include_str!("../../../schemas/warehouse/bigquery/004-offer-events.sql"),
    ),
];

pub struct BigQueryWarehouse {
    /// Shared by every handle `connect` makes: one HTTP agent and one token cache per process.
    client: std::sync::Arc<Client>,
    /// The URL it was opened with, for errors that say which command to run.
    url: String,
    project: String,
    prefix: String,
    endpoint: String,
    /// Whether `PREFIX_raw` existed at open (or has been created since).
    raw_exists: bool,
    /// The session generated SQL runs in, created on first use.
    session: Option<String>,
    last_loaded_at: i64,
}

impl From<ApiError> for WarehouseError {
    fn from(e: ApiError) -> WarehouseError {
        if e.is_transient() {
            WarehouseError::Unavailable(e.to_string())
        } else {
            WarehouseError::Sql(e.to_string())
        }
    }
}

/// BigQuery's location when a dataset is created without one.
const DEFAULT_LOCATION: &str = "US";

impl BigQueryWarehouse {
    /// `rest` is what follows `bigquery://`: `PROJECT/PREFIX`. `endpoint` points at an emulator (no
    /// authentication); without it, Google's API with Application Default Credentials. `location` is where
    /// the datasets are (`EU`, `europe-west1`, …): without it, the location of `PREFIX_raw`, read from the
    /// dataset. Every job is sent there. Opening creates nothing: see [`BigQueryWarehouse::migrate`] and
    /// [`BigQueryWarehouse::require_migrated`].
    pub fn open(
        url: &str,
        rest: &str,
        endpoint: Option<&str>,
        location: Option<&str>,
    ) -> Result<Self, WarehouseError> {
        let bad = |why: &str| WarehouseError::BadUrl {
            url: url.to_owned(),
            why: why.to_owned(),
        };
        let (project, prefix) = rest
            .split_once('/')
            .ok_or_else(|| bad("expected bigquery://PROJECT/DATASET_PREFIX"))?;
        let valid = |s: &str, extra: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(c))
        };
        if !valid(project, "-.:") {
            return Err(bad(
                "the project id is empty or has characters BigQuery does not allow",
            ));
        }
        if !valid(prefix, "") {
            return Err(bad(
                "the dataset prefix must be letters, digits and underscores (datasets are PREFIX_raw, PREFIX_vault, PREFIX_marts)",
            ));
        }
        if let Some(l) = location
            && !valid(l, "-")
        {
            return Err(WarehouseError::Sql(format!(
                "--bigquery-location {l:?}: expected a BigQuery location such as EU, US or europe-west1"
            )));
        }
        let (endpoint, tokens) = match endpoint.filter(|e| !e.is_empty()) {
            Some(e) if e.contains("://") => (e.to_owned(), TokenSource::None),
            Some(e) => (format!("http://{e}"), TokenSource::None),
            None => (
                DEFAULT_ENDPOINT.to_owned(),
                TokenSource::application_default().map_err(WarehouseError::Auth)?,
            ),
        };
        let client = Client::new(&endpoint, project, tokens);
        let raw = format!("{prefix}_raw");
        let found = client
            .dataset(&raw)
            .map_err(|e| WarehouseError::from(e).context(&format!("reading dataset {raw}")))?
            .map(|d| response::dataset_location(&d))
            .transpose()
            .map_err(|u| WarehouseError::Sql(u.0))?;
        let location = match (&found, location) {
            (Some(found), Some(wanted)) if !found.eq_ignore_ascii_case(wanted) => {
                return Err(WarehouseError::Sql(format!(
                    "dataset {project}:{raw} is in {found}, not in {wanted} (--bigquery-location): jobs must run where the data is; drop the flag or correct it"
                )));
            }
            (Some(found), _) => found.clone(),
            (None, Some(wanted)) => wanted.to_owned(),
            (None, None) => DEFAULT_LOCATION.to_owned(),
        };
        Ok(BigQueryWarehouse {
            client: std::sync::Arc::new(client.with_location(location)),
            url: url.to_owned(),
            project: project.to_owned(),
            prefix: prefix.to_owned(),
            endpoint,
            raw_exists: found.is_some(),
            session: None,
            last_loaded_at: 0,
        })
    }

    /// Another handle on the same datasets, with a session of its own, for another thread.
    pub fn connect(&self) -> BigQueryWarehouse {
        BigQueryWarehouse {
            client: self.client.clone(),
            url: self.url.clone(),
            project: self.project.clone(),
            prefix: self.prefix.clone(),
            endpoint: self.endpoint.clone(),
            raw_exists: self.raw_exists,
            session: None,
            last_loaded_at: self.last_loaded_at,
        }
    }

    pub fn describe(&self) -> String {
        let via = if self.endpoint == DEFAULT_ENDPOINT {
            String::new()
        } else {
            format!(" via {}", self.endpoint)
        };
        format!(
            "bigquery://{}/{} in {}{via}",
            self.project,
            self.prefix,
            self.location()
        )
    }

    /// The location every job runs in.
    pub fn location(&self) -> &str {
        self.client.location().unwrap_or(DEFAULT_LOCATION)
    }

    /// `project.prefix_`: what a schema name is prefixed with to name a dataset.
    pub fn schema_prefix(&self) -> String {
        format!("{}.{}_", self.project, self.prefix)
    }

    fn dataset(&self, schema: &str) -> String {
        format!("{}_{schema}", self.prefix)
    }

    fn table(&self, schema: &str, name: &str) -> String {
        format!("`{}{schema}.{name}`", self.schema_prefix())
    }

    fn raw_migrations(&self) -> Vec<Migration> {
        let raw = format!("{}raw", self.schema_prefix());
        DDL.iter()
            .map(|(name, file)| {
                let statements = playlog_sql::migrate::statements(file)
                    .iter()
                    .map(|s| s.replace("{raw}", &raw))
                    .collect();
                Migration::new(*name, statements)
            })
            .collect()
    }

    fn raw_ledger(&self) -> Ledger {
        Ledger {
            table: self.table("raw", "_schema_migrations"),
            text_type: "STRING",
        }
    }

    /// What `playlog migrate` (or `consume --migrate`) does here: creates the three datasets in this
    /// location unless they exist (refusing one that is elsewhere: a query cannot join across locations),
    /// then applies the raw schema's pending migrations. Returns the migrations applied.
    pub fn migrate(&mut self) -> Result<Vec<String>, WarehouseError> {
        let location = self.location().to_owned();
        for schema in ["raw", "vault", "marts"] {
            if schema == "raw" && self.raw_exists {
                // Read at open, its location checked there.
                continue;
            }
            let dataset = self.dataset(schema);
            let at = |e: ApiError| WarehouseError::from(e).context(&format!("dataset {dataset}"));
            match self.client.dataset(&dataset).map_err(at)? {
                Some(d) => {
                    let found =
                        response::dataset_location(&d).map_err(|u| WarehouseError::Sql(u.0))?;
                    if !found.eq_ignore_ascii_case(&location) {
                        return Err(WarehouseError::Sql(format!(
                            "dataset {}:{dataset} is in {found}, the others in {location}: BigQuery cannot query across locations; recreate it in {location}",
                            self.project
                        )));
                    }
                }
                None => {
                    self.client
                        .create_dataset(&dataset, &location)
                        .map_err(|e| {
                            WarehouseError::from(e).context(&format!("creating dataset {dataset}"))
                        })?;
                    tracing::info!(dataset, location, "dataset created");
                }
            }
        }
        self.raw_exists = true;
        let migrations = self.raw_migrations();
        let ledger = self.raw_ledger();
        let applied =
            playlog_sql::migrate::apply(self, &ledger, &migrations, false).map_err(|e| {
                WarehouseError::Sql(format!("applying schemas/warehouse/bigquery: {e}"))
            })?;
        for name in &applied {
            tracing::info!(migration = name.as_str(), "applied");
        }
        Ok(applied)
    }

    /// What every other step does instead of migrating: checks that the raw schema is there and up to
    /// date (one read of its ledger), and otherwise names what is missing and the command that creates it.
    pub fn require_migrated(&mut self) -> Result<(), WarehouseError> {
        let missing = if self.raw_exists {
            let migrations = self.raw_migrations();
            let ledger = self.raw_ledger();
            let unapplied = playlog_sql::migrate::unapplied(self, &ledger, &migrations)?;
            if unapplied.is_empty() {
                return Ok(());
            }
            format!(
                "the raw schema in {} has migrations not applied: {}",
                self.dataset("raw"),
                playlog_sql::migrate::describe(&unapplied)
            )
        } else {
            format!(
                "dataset {}:{} does not exist",
                self.project,
                self.dataset("raw")
            )
        };
        Err(WarehouseError::NotMigrated(format!(
            "{missing}. Run `playlog migrate --warehouse {url}` (or start the consumer with --migrate) as an account that may create datasets and tables",
            url = self.url
        )))
    }

    pub fn stored_offsets(&mut self, group: &str) -> Result<Vec<PartitionOffset>, WarehouseError> {
        let result = self.client.query(
            &format!(
                "SELECT topic, `partition`, next_offset FROM {} WHERE consumer_group = {}",
                self.table("raw", "_kafka_offsets"),
                string(group)
            ),
            None,
            false,
        )?;
        Ok(to_rows(&result)
            .into_iter()
            .filter_map(|r| match r.as_slice() {
                [Value::Text(topic), p, n] => Some(PartitionOffset {
                    topic: topic.clone(),
                    partition: p.as_i64()? as i32,
                    next_offset: n.as_i64()?,
                }),
                _ => None,
            })
            .collect())
    }

    /// Streams the rows, hands rows BigQuery rejected to `rejected` (the dead-letter topic), then advances
    /// the offsets if no other member has moved them since.
    pub fn write(
        &mut self,
        group: &str,
        batch: &RawBatch,
        offsets: &[OffsetAdvance],
        rejected: &mut dyn FnMut(Vec<Rejected>) -> Result<(), WarehouseError>,
    ) -> Result<Committed, WarehouseError> {
        let mut rows = batch.rows_per_stream();
        let loaded_at = crate::now_ms().max(self.last_loaded_at + 1);
        let mut refused = Vec::new();
        for (stream, records) in batch.finish(loaded_at)? {
            let dataset = self.dataset("raw");
            for request in rows::requests(stream, &records)? {
                let errors = self
                    .client
                    .insert_all(&dataset, stream.topic(), &request.rows)?;
                for (index, message) in errors {
                    let Some((topic, partition, offset)) = request.origins.get(index).cloned()
                    else {
                        continue;
                    };
                    rows[stream.index()] -= 1;
                    refused.push(Rejected {
                        topic,
                        partition,
                        offset,
                        row: request.rows[index]["json"].to_string(),
                        message,
                    });
                }
            }
        }
        if !refused.is_empty() {
            tracing::warn!(
                rows = refused.len(),
                "BigQuery rejected rows; sending them to the dead-letter topic"
            );
            rejected(refused)?;
        }
        self.advance(group, offsets, loaded_at)?;
        self.last_loaded_at = loaded_at;
        Ok(Committed { rows, loaded_at })
    }

    /// One MERGE: every partition moves from `previous` to `next_offset`, or none does (fenced).
    fn advance(
        &mut self,
        group: &str,
        offsets: &[OffsetAdvance],
        loaded_at: i64,
    ) -> Result<(), WarehouseError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let table = self.table("raw", "_kafka_offsets");
        let source = offsets
            .iter()
            .map(|o| {
                format!(
                    "SELECT {} AS consumer_group, {} AS topic, {} AS `partition`, CAST({} AS INT64) AS previous, {} AS next_offset",
                    string(group),
                    string(&o.topic),
                    o.partition,
                    o.previous.map_or("NULL".to_owned(), |p| p.to_string()),
                    o.next_offset
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let sql = format!(
            "MERGE {table} t
             USING (SELECT * FROM ({source}) s WHERE NOT EXISTS (
                      SELECT 1 FROM ({source}) c LEFT JOIN {table} o
                        ON o.consumer_group = c.consumer_group AND o.topic = c.topic AND o.`partition` = c.`partition`
                      WHERE o.next_offset IS DISTINCT FROM c.previous)) s
             ON t.consumer_group = s.consumer_group AND t.topic = s.topic AND t.`partition` = s.`partition`
             WHEN MATCHED THEN UPDATE SET next_offset = s.next_offset, updated_at = TIMESTAMP '{at}'
             WHEN NOT MATCHED THEN INSERT (consumer_group, topic, `partition`, next_offset, updated_at)
               VALUES (s.consumer_group, s.topic, s.`partition`, s.next_offset, TIMESTAMP '{at}')",
            at = timestamp_text(loaded_at * 1000),
        );
        // The job id follows from the advance itself, so that a flush retried after its calls gave up
        // sends the same id: a MERGE whose response was lost is then read back, not taken for a fence.
        let key: Vec<String> = offsets
            .iter()
            .map(|o| {
                format!(
                    "{}/{}:{:?}>{}",
                    o.topic, o.partition, o.previous, o.next_offset
                )
            })
            .collect();
        let job = self
            .client
            .job_id_for("offsets", &format!("{group}|{}", key.join(",")));
        let result = self.client.execute(&sql, None, &job)?;
        if result.affected.unwrap_or(0) as usize == offsets.len() {
            return Ok(());
        }
        let stored = self.stored_offsets(group)?;
        let moved = offsets.iter().find(|o| {
            stored
                .iter()
                .find(|s| s.topic == o.topic && s.partition == o.partition)
                .map(|s| s.next_offset)
                != o.previous
        });
        let o = moved.unwrap_or(&offsets[0]);
        Err(WarehouseError::Fenced {
            topic: o.topic.clone(),
            partition: o.partition,
            stored: stored
                .iter()
                .find(|s| s.topic == o.topic && s.partition == o.partition)
                .map(|s| s.next_offset),
            expected: o.previous,
        })
    }

    fn session(&mut self) -> Result<String, WarehouseError> {
        if let Some(id) = &self.session {
            return Ok(id.clone());
        }
        let result = self.client.query("SELECT 1", None, true)?;
        let id = result.session_id.ok_or_else(|| {
            WarehouseError::Sql("BigQuery did not create a session (createSession)".into())
        })?;
        self.session = Some(id.clone());
        Ok(id)
    }

    /// Runs `work` in one multi-statement transaction of this handle's session.
    pub fn transaction<T>(
        &mut self,
        work: impl FnOnce(&mut dyn SqlSession) -> Result<T, WarehouseError>,
    ) -> Result<T, WarehouseError> {
        self.autocommit(|session| {
            session.execute("BEGIN TRANSACTION")?;
            match work(session) {
                Ok(value) => {
                    session.execute("COMMIT TRANSACTION")?;
                    Ok(value)
                }
                Err(e) => {
                    // If the session is gone, BigQuery rolls back the abandoned transaction itself.
                    if let Err(rollback) = session.execute("ROLLBACK TRANSACTION") {
                        tracing::warn!(error = %rollback, "rolling back");
                    }
                    Err(e)
                }
            }
        })
    }

    /// Runs `work` in this handle's session, each statement committing by itself: for DDL, which BigQuery
    /// does not allow inside transactions.
    pub fn autocommit<T>(
        &mut self,
        work: impl FnOnce(&mut dyn SqlSession) -> Result<T, WarehouseError>,
    ) -> Result<T, WarehouseError> {
        let id = self.session()?;
        let mut session = BigQuerySession {
            client: &self.client,
            id: &id,
        };
        let result = work(&mut session);
        if result.is_err() {
            // A fresh session next time: this one may have expired or hold a half-finished transaction.
            self.session = None;
        }
        result
    }
}

impl playlog_sql::Transact for BigQueryWarehouse {
    fn dialect(&self) -> crate::Dialect {
        crate::Dialect::BigQuery
    }

    fn schema_prefix(&self) -> String {
        BigQueryWarehouse::schema_prefix(self)
    }

    fn transact(
        &mut self,
        work: &mut dyn FnMut(&mut dyn SqlSession) -> Result<(), SqlError>,
    ) -> Result<(), SqlError> {
        Ok(self.transaction(|s| Ok(work(s)?))?)
    }

    fn autocommit_each(
        &mut self,
        work: &mut dyn FnMut(&mut dyn SqlSession) -> Result<(), SqlError>,
    ) -> Result<(), SqlError> {
        Ok(self.autocommit(|s| Ok(work(s)?))?)
    }
}

struct BigQuerySession<'a> {
    client: &'a Client,
    id: &'a str,
}

impl SqlSession for BigQuerySession<'_> {
    fn execute(&mut self, sql: &str) -> Result<usize, SqlError> {
        let result = self
            .client
            .execute(sql, Some(self.id), &self.client.new_job_id())
            .map_err(|e| session_error(sql, e))?;
        Ok(result.affected.unwrap_or(0) as usize)
    }

    fn query(&mut self, sql: &str) -> Result<Rows, SqlError> {
        let result = self
            .client
            .query(sql, Some(self.id), false)
            .map_err(|e| session_error(sql, e))?;
        Ok(to_rows(&result))
    }

    fn columns(&mut self, table: &str) -> Result<Vec<String>, SqlError> {
        // A permanent table (`project.dataset.table`): its metadata, which costs no query.
        let parts: Vec<&str> = table.trim_matches('`').split('.').collect();
        if table.starts_with('`')
            && let [_, dataset, name] = parts.as_slice()
        {
            return self
                .client
                .table_columns(dataset, name)
                .map_err(|e| session_error(&format!("tables.get {table}"), e));
        }
        // A session's temp table has no metadata endpoint: read the shape of an empty result.
        let sql = format!("SELECT * FROM {table} LIMIT 0");
        let result = self
            .client
            .query(&sql, Some(self.id), false)
            .map_err(|e| session_error(&sql, e))?;
        Ok(result.fields.into_iter().map(|(name, _)| name).collect())
    }
}

/// A failed call as generated SQL sees it: transient failures stay retriable, and a missing permission is
/// not taken for a missing table (probes read `Statement` errors as "it does not exist").
fn session_error(sql: &str, e: ApiError) -> SqlError {
    match e {
        ApiError::Transient { .. } => SqlError::Unavailable(e.to_string()),
        ApiError::Denied(line) => SqlError::Warehouse(line),
        ApiError::Auth(_) => SqlError::Warehouse(e.to_string()),
        other => crate::sql::sql_error(sql, other),
    }
}

pub(crate) fn string(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn to_rows(result: &QueryResult) -> Rows {
    result
        .rows
        .iter()
        .map(|row| {
            row["f"]
                .as_array()
                .into_iter()
                .flatten()
                .zip(&result.fields)
                .map(|(cell, (_, kind))| to_value(&cell["v"], kind))
                .collect()
        })
        .collect()
}

/// A cell as BigQuery's JSON sends it (every scalar as text) to a portable value.
fn to_value(v: &Json, kind: &str) -> Value {
    let Some(text) = v.as_str() else {
        return Value::Null;
    };
    match kind {
        "INTEGER" | "INT64" => text
            .parse()
            .map_or_else(|_| Value::Text(text.to_owned()), Value::Int),
        "FLOAT" | "FLOAT64" | "NUMERIC" | "BIGNUMERIC" => text
            .parse()
            .map_or_else(|_| Value::Text(text.to_owned()), Value::Float),
        "BOOLEAN" | "BOOL" => Value::Bool(text.eq_ignore_ascii_case("true")),
        "BYTES" => base64::Engine::decode(&base64::engine::general_purpose::STANDARD, text)
            .map_or_else(|_| Value::Text(text.to_owned()), Value::Bytes),
        // With useInt64Timestamp, microseconds since the epoch; older servers send float seconds.
        "TIMESTAMP" => match text.parse::<i64>() {
            Ok(micros) => Value::Text(timestamp_text(micros)),
            Err(_) => text.parse::<f64>().map_or_else(
                |_| Value::Text(text.to_owned()),
                |s| Value::Text(timestamp_text((s * 1e6).round() as i64)),
            ),
        },
        _ => Value::Text(text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_splits_into_one_statement_per_table() {
        let s: Vec<String> = DDL
            .iter()
            .flat_map(|(_, f)| playlog_sql::migrate::statements(f))
            .collect();
        assert_eq!(s.len(), 7);
        for (statement, table) in s.iter().zip(
            playlog_model::Stream::EVENTS
                .iter()
                .map(|s| s.topic())
                .chain(["_kafka_offsets", "_kafka_clusters", "offer_events"]),
        ) {
            assert!(
                statement.starts_with(&format!("CREATE TABLE IF NOT EXISTS `{{raw}}.{table}`")),
                "{statement}"
            );
            assert!(!statement.contains("--"), "{statement}");
        }
    }

    #[test]
    fn cells_become_portable_values() {
        assert_eq!(to_value(&Json::from("42"), "INTEGER"), Value::Int(42));
        assert_eq!(
            to_value(&Json::from("1767225600123000"), "TIMESTAMP"),
            Value::Text("2026-01-01 00:00:00.123".into())
        );
        assert_eq!(
            to_value(&Json::from("AP8="), "BYTES"),
            Value::Bytes(vec![0, 255])
        );
        assert_eq!(to_value(&Json::Null, "STRING"), Value::Null);
    }
}
