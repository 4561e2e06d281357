//! A small blocking client for the BigQuery REST API (v2), for the calls Playlog makes: datasets (get,
//! insert), queries that read (`jobs.query`, then `jobs.getQueryResults` while the job runs or rows page),
//! statements that write (`jobs.insert` with a job id of Playlog's own, then `jobs.get`), table metadata
//! (`tables.get`) and streamed rows (`tabledata.insertAll`).
//!
//! **Every retried call is idempotent.** Transient failures (HTTP 429, 5xx, connection errors, timeouts) are
//! retried here a few times with the process's one retry policy (`crate::retry`), each retry logged; past
//! that they surface as a retriable error, and the consumer keeps retrying with its own backoff.
//! - A statement that changes anything (DML, DDL, `BEGIN`/`COMMIT`) runs as `jobs.insert` with a job id
//!   chosen before the first attempt, and every retry sends the same id. Job ids are permanent: if an
//!   attempt's response was lost, the retry gets `409 duplicate` and Playlog reads that job's outcome
//!   instead of running the statement again. (`jobs.query`'s `requestId` would not do: BigQuery honours it
//!   only "for a few minutes", and a statement must never run twice.)
//! - A read runs as `jobs.query` with a `requestId`, reused by its retries: running a SELECT twice is
//!   harmless, so the short window only saves a duplicate job, and `jobs.query` answers in one round trip.
//!
//! **Every job carries the datasets' location** (`jobReference.location`, `location`, and the `location`
//! parameter of the polls), so that sessions and jobs run where the data is, not in the default (US).
//!
//! Responses are read strictly (`response.rs`): anything the reference does not document is an error that
//! quotes it, a job fails only on its `errorResult`, and warnings are logged.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use serde_json::{Value as Json, json};

use super::auth::TokenSource;
use super::response::{self, JobState, Unexpected};

/// How long one `jobs.query` or poll waits for its job before returning `jobComplete: false` (then polled).
const QUERY_WAIT_MS: u64 = 10_000;
/// Attempts of one call on transient failures before giving up to the caller.
const TRANSIENT_ATTEMPTS: u32 = 5;
/// The longest wait between two of them.
const TRANSIENT_MAX_DELAY: Duration = Duration::from_secs(5);

/// A failed API call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Worth trying again later: the service or the network is unavailable, or a quota was hit.
    #[error("BigQuery unavailable after {attempts} attempts: {message}")]
    Transient { attempts: u32, message: String },
    /// The request itself was refused (bad SQL, missing table): retrying changes nothing.
    #[error("BigQuery refused the request (HTTP {status}): {message}")]
    Refused { status: u16, message: String },
    /// A job ran and failed: BigQuery's `errorResult`.
    #[error("BigQuery job {job} failed ({reason}): {message}")]
    JobFailed {
        job: String,
        reason: String,
        message: String,
    },
    /// HTTP 403 for a missing permission: one line naming it (`response::permission_denied`).
    #[error("{0}")]
    Denied(String),
    /// A response the API reference does not document, quoted.
    #[error("unexpected BigQuery response: {0}")]
    Unexpected(String),
    #[error("BigQuery authentication: {0}")]
    Auth(String),
}

impl ApiError {
    pub fn is_transient(&self) -> bool {
        matches!(self, ApiError::Transient { .. })
    }
}

impl From<Unexpected> for ApiError {
    fn from(u: Unexpected) -> ApiError {
        ApiError::Unexpected(u.0)
    }
}

/// Where and as whom to call.
pub struct Client {
    agent: ureq::Agent,
    /// `…/bigquery/v2/projects/PROJECT`
    base: String,
    project: String,
    tokens: TokenSource,
    /// The datasets' location, sent with every job; `None` only until it is known (datasets.get needs none).
    location: Option<String>,
    /// Random per process: job ids Playlog derives from content are unique to this process's lifetime.
    nonce: u64,
}

/// One query's result: rows as JSON cells (`{"f": [{"v": …}]}`), the schema's field types, and the rows a
/// DML statement changed.
#[derive(Debug, Default)]
pub struct QueryResult {
    pub fields: Vec<(String, String)>,
    pub rows: Vec<Json>,
    pub affected: Option<u64>,
    pub session_id: Option<String>,
}

impl Client {
    /// `endpoint` is the API root (`https://bigquery.googleapis.com`, or an emulator's `http://host:port`).
    pub fn new(endpoint: &str, project: &str, tokens: TokenSource) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_millis(QUERY_WAIT_MS + 50_000)))
            .build()
            .into();
        Client {
            agent,
            base: format!(
                "{}/bigquery/v2/projects/{project}",
                endpoint.trim_end_matches('/')
            ),
            project: project.to_owned(),
            tokens,
            location: None,
            nonce: rand::random(),
        }
    }

    /// The location every job is sent to from now on.
    pub fn with_location(mut self, location: String) -> Client {
        self.location = Some(location);
        self
    }

    pub fn location(&self) -> Option<&str> {
        self.location.as_deref()
    }

    /// A dataset's resource (`datasets.get`), or `None` if it does not exist.
    pub fn dataset(&self, dataset: &str) -> Result<Option<Json>, ApiError> {
        match self.call("GET", &format!("/datasets/{dataset}"), None, "datasets.get") {
            Ok(d) => Ok(Some(d)),
            Err(ApiError::Refused { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates a dataset in `location` unless it exists.
    pub fn create_dataset(&self, dataset: &str, location: &str) -> Result<(), ApiError> {
        let body = json!({ "datasetReference": { "datasetId": dataset }, "location": location });
        match self.call(
            "POST",
            "/datasets",
            Some(&body),
            &format!("datasets.insert {dataset}"),
        ) {
            Ok(_) | Err(ApiError::Refused { status: 409, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A job id for one statement: fresh, and reused by every retry of it.
    pub fn new_job_id(&self) -> String {
        format!("playlog_{:032x}", rand::random::<u128>())
    }

    /// A job id derived from what a statement does (`key`), so that a caller that retries the whole step
    /// after its calls gave up sends the same id again; unique to this process (the nonce).
    pub fn job_id_for(&self, what: &str, key: &str) -> String {
        let mut h = std::hash::DefaultHasher::new();
        key.hash(&mut h);
        format!("playlog_{what}_{:016x}_{:016x}", self.nonce, h.finish())
    }

    /// Runs a read (a SELECT), in `session` if given, and reads back every row: `jobs.query` with a
    /// `requestId`. `create_session` starts a session and returns its id.
    pub fn query(
        &self,
        sql: &str,
        session: Option<&str>,
        create_session: bool,
    ) -> Result<QueryResult, ApiError> {
        let mut body = json!({
            "query": sql,
            "useLegacySql": false,
            "timeoutMs": QUERY_WAIT_MS,
            "formatOptions": { "useInt64Timestamp": true },
            "requestId": format!("{:032x}", rand::random::<u128>()),
        });
        if let Some(l) = &self.location {
            body["location"] = json!(l);
        }
        if create_session {
            body["createSession"] = json!(true);
        }
        if let Some(id) = session {
            body["connectionProperties"] = json!([{ "key": "session_id", "value": id }]);
        }
        let mut response = self.call("POST", "/queries", Some(&body), "jobs.query")?;
        let mut result = QueryResult {
            session_id: response["sessionInfo"]["sessionId"]
                .as_str()
                .map(str::to_owned),
            ..QueryResult::default()
        };
        loop {
            let page = response::query_page(&response)?;
            if page.complete {
                if !page.errors.is_empty() {
                    // A failure or warnings: only the job knows which.
                    let job_id = page.job_id.as_deref().ok_or_else(|| {
                        ApiError::Unexpected(format!(
                            "a query response with errors but no jobReference.jobId: {:?}",
                            page.errors
                        ))
                    })?;
                    self.settled(job_id, &self.get_job(job_id)?)?;
                }
                if result.fields.is_empty() {
                    result.fields = fields(&response["schema"]);
                }
                if page.affected.is_some() {
                    result.affected = page.affected;
                }
                if let Some(rows) = response["rows"].as_array() {
                    result.rows.extend(rows.iter().cloned());
                }
                if page.page_token.is_none() {
                    return Ok(result);
                }
            }
            // `query_page` holds a job id for every response that is polled or paged.
            let job_id = page.job_id.unwrap_or_default();
            let mut path = format!(
                "/queries/{job_id}?timeoutMs={QUERY_WAIT_MS}&formatOptions.useInt64Timestamp=true{}",
                self.location_param()
            );
            if let Some(token) = page.page_token.filter(|_| page.complete) {
                path.push_str(&format!("&pageToken={token}"));
            }
            response = self.call("GET", &path, None, "jobs.getQueryResults")?;
        }
    }

    /// Runs a statement that changes something (DML, DDL, transaction control), in `session` if given, as
    /// `jobs.insert` with `job_id`: idempotent across retries, because a job id runs once.
    pub fn execute(
        &self,
        sql: &str,
        session: Option<&str>,
        job_id: &str,
    ) -> Result<QueryResult, ApiError> {
        let mut reference = json!({ "projectId": self.project, "jobId": job_id });
        if let Some(l) = &self.location {
            reference["location"] = json!(l);
        }
        let mut query = json!({ "query": sql, "useLegacySql": false });
        if let Some(id) = session {
            query["connectionProperties"] = json!([{ "key": "session_id", "value": id }]);
        }
        let body = json!({ "jobReference": reference, "configuration": { "query": query } });
        let mut job = match self.call("POST", "/jobs", Some(&body), "jobs.insert") {
            Ok(job) => job,
            Err(ApiError::Refused { status: 409, .. }) => {
                // An earlier attempt created the job and its response was lost: read its outcome.
                tracing::info!(
                    job = job_id,
                    "BigQuery already has this job (an earlier attempt's response was lost): reading its outcome, not running it again"
                );
                let job = self.get_job(job_id)?;
                if job["configuration"]["query"]["query"].as_str() != Some(sql) {
                    return Err(ApiError::Unexpected(format!(
                        "job {job_id} exists with another statement: {}",
                        response::quote(&job["configuration"].to_string())
                    )));
                }
                job
            }
            Err(e) => return Err(e),
        };
        loop {
            if let Some(result) = self.settled(job_id, &job)? {
                return Ok(result);
            }
            // Waits up to QUERY_WAIT_MS for the job, without rows. Complete, without errors and with its
            // DML count is a success (one round trip); otherwise (DDL, errors or warnings, still running)
            // the job itself says how it ended.
            let waited = self.call(
                "GET",
                &format!(
                    "/queries/{job_id}?timeoutMs={QUERY_WAIT_MS}&maxResults=0{}",
                    self.location_param()
                ),
                None,
                "jobs.getQueryResults",
            )?;
            let page = response::query_page(&waited)?;
            if page.complete && page.errors.is_empty() && page.affected.is_some() {
                return Ok(QueryResult {
                    affected: page.affected,
                    ..QueryResult::default()
                });
            }
            job = self.get_job(job_id)?;
        }
    }

    /// A finished job's result, `None` while it runs, or its failure.
    fn settled(&self, job_id: &str, job: &Json) -> Result<Option<QueryResult>, ApiError> {
        match response::job(job)? {
            JobState::Running => Ok(None),
            JobState::Failed { reason, message } => Err(ApiError::JobFailed {
                job: job_id.to_owned(),
                reason,
                message,
            }),
            JobState::Succeeded {
                affected,
                session_id,
                warnings,
            } => {
                for w in warnings {
                    tracing::warn!(job = job_id, warning = w.as_str(), "BigQuery warning");
                }
                Ok(Some(QueryResult {
                    affected,
                    session_id,
                    ..QueryResult::default()
                }))
            }
        }
    }

    fn get_job(&self, job_id: &str) -> Result<Json, ApiError> {
        let path = format!(
            "/jobs/{job_id}{}",
            self.location_param().replacen('&', "?", 1)
        );
        self.call("GET", &path, None, "jobs.get")
    }

    /// `&location=…`, or nothing before the location is known.
    fn location_param(&self) -> String {
        self.location
            .as_deref()
            .map_or_else(String::new, |l| format!("&location={l}"))
    }

    /// A table's column names, from its metadata (`tables.get`: free, unlike a query).
    pub fn table_columns(&self, dataset: &str, table: &str) -> Result<Vec<String>, ApiError> {
        let response = self.call(
            "GET",
            &format!("/datasets/{dataset}/tables/{table}"),
            None,
            "tables.get",
        )?;
        if !response["schema"]["fields"].is_array() {
            return Err(ApiError::Unexpected(format!(
                "table {dataset}.{table} without schema.fields: {}",
                response::quote(&response.to_string())
            )));
        }
        Ok(fields(&response["schema"])
            .into_iter()
            .map(|(name, _)| name)
            .collect())
    }

    /// Streams rows into a table: `rows` are `{"insertId": …, "json": {…}}`. Invalid rows are skipped and
    /// reported by index with BigQuery's message; the others land.
    pub fn insert_all(
        &self,
        dataset: &str,
        table: &str,
        rows: &[Json],
    ) -> Result<Vec<(usize, String)>, ApiError> {
        let body = json!({ "rows": rows, "skipInvalidRows": true, "ignoreUnknownValues": false });
        let response = self.call(
            "POST",
            &format!("/datasets/{dataset}/tables/{table}/insertAll"),
            Some(&body),
            "tabledata.insertAll",
        )?;
        let mut rejected = Vec::new();
        for e in response["insertErrors"].as_array().into_iter().flatten() {
            let index = e["index"]
                .as_u64()
                .map(|i| i as usize)
                .filter(|i| *i < rows.len())
                .ok_or_else(|| {
                    ApiError::Unexpected(format!(
                        "an insertErrors entry without a valid index: {}",
                        response::quote(&e.to_string())
                    ))
                })?;
            let message: Vec<String> = e["errors"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| {
                    format!(
                        "{}: {}",
                        x["location"].as_str().unwrap_or(""),
                        x["message"].as_str().unwrap_or("")
                    )
                })
                .collect();
            rejected.push((index, message.join("; ")));
        }
        Ok(rejected)
    }

    /// One call, with transient failures retried (the process's one policy, `crate::retry`); every attempt
    /// sends the same body, so the same job id or request id.
    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Json>,
        what: &str,
    ) -> Result<Json, ApiError> {
        let url = format!("{}{path}", self.base);
        let mut attempts = 0;
        crate::retry::retry(
            "a BigQuery call",
            crate::retry::Policy::times(TRANSIENT_ATTEMPTS as usize - 1, TRANSIENT_MAX_DELAY),
            None,
            |f: &Failure| matches!(f, Failure::Transient(_)),
            || {
                attempts += 1;
                self.call_once(method, &url, body, what)
            },
        )
        .map_err(|f| match f {
            Failure::Transient(message) => ApiError::Transient { attempts, message },
            Failure::Final(e) => e,
        })
    }

    fn call_once(
        &self,
        method: &str,
        url: &str,
        body: Option<&Json>,
        what: &str,
    ) -> Result<Json, Failure> {
        let token = self
            .tokens
            .token()
            .map_err(|e| Failure::Final(ApiError::Auth(e)))?;
        let response = match (method, body) {
            ("GET", _) => with_auth(self.agent.get(url), token.as_deref()).call(),
            (_, Some(b)) => with_auth(self.agent.post(url), token.as_deref()).send_json(b),
            (_, None) => with_auth(self.agent.post(url), token.as_deref()).send_empty(),
        };
        let mut response =
            response.map_err(|e| Failure::Transient(format!("{what} ({method} {url}): {e}")))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_string()
            .map_err(|e| Failure::Transient(format!("{what}: reading the response: {e}")))?;
        if (200..300).contains(&status) {
            return response::body(what, &text).map_err(|u| Failure::Final(u.into()));
        }
        let json: Json = serde_json::from_str(&text).unwrap_or(Json::Null);
        let message = json["error"]["message"]
            .as_str()
            .map_or_else(|| response::quote(&text), str::to_owned);
        let reason = json["error"]["errors"][0]["reason"].as_str().unwrap_or("");
        // Quotas and rate limits come back as 403 with these reasons, as well as 429.
        let quota = matches!(
            reason,
            "rateLimitExceeded" | "quotaExceeded" | "backendError"
        );
        if status == 429 || status >= 500 || quota {
            Err(Failure::Transient(format!(
                "{what}: HTTP {status}: {message}"
            )))
        } else if status == 403 {
            Err(Failure::Final(ApiError::Denied(
                response::permission_denied(what, &message),
            )))
        } else {
            Err(Failure::Final(ApiError::Refused { status, message }))
        }
    }
}

enum Failure {
    Transient(String),
    Final(ApiError),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Transient(m) => f.write_str(m),
            Failure::Final(e) => e.fmt(f),
        }
    }
}

fn with_auth<B>(request: ureq::RequestBuilder<B>, token: Option<&str>) -> ureq::RequestBuilder<B> {
    match token {
        Some(t) => request.header("authorization", &format!("Bearer {t}")),
        None => request,
    }
}

fn fields(schema: &Json) -> Vec<(String, String)> {
    schema["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            (
                f["name"].as_str().unwrap_or_default().to_owned(),
                f["type"].as_str().unwrap_or("STRING").to_owned(),
            )
        })
        .collect()
}
