//! A small blocking client for the BigQuery REST API (v2): the five calls Playlog makes — create a dataset,
//! run a query (`jobs.query`, then `jobs.getQueryResults` while the job runs or rows page), stream rows
//! (`tabledata.insertAll`), and nothing else.
//!
//! Transient failures (HTTP 429, 5xx, connection errors, timeouts) are retried here a few times with
//! the process's one retry policy (`crate::retry`: exponential backoff with jitter), each retry logged; past that they surface as a retriable error, and the consumer
//! keeps retrying with its own backoff while it pauses fetching. Other errors surface at once, with
//! BigQuery's message.

use std::time::Duration;

use serde_json::{Value as Json, json};

use super::auth::TokenSource;

/// How long one `jobs.query` waits for its job before returning `jobComplete: false` (then polled).
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
    /// The request itself was refused (bad SQL, missing table, permissions): retrying changes nothing.
    #[error("BigQuery refused the request (HTTP {status}): {message}")]
    Refused { status: u16, message: String },
    #[error("BigQuery authentication: {0}")]
    Auth(String),
}

impl ApiError {
    pub fn is_transient(&self) -> bool {
        matches!(self, ApiError::Transient { .. })
    }
}

/// Where and as whom to call.
pub struct Client {
    agent: ureq::Agent,
    /// `…/bigquery/v2/projects/PROJECT`
    base: String,
    tokens: TokenSource,
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
            tokens,
        }
    }

    /// Creates a dataset unless it exists.
    pub fn ensure_dataset(&self, dataset: &str, location: Option<&str>) -> Result<(), ApiError> {
        let mut body = json!({ "datasetReference": { "datasetId": dataset } });
        if let Some(l) = location {
            body["location"] = json!(l);
        }
        match self.call("POST", "/datasets", Some(&body)) {
            Ok(_) => Ok(()),
            Err(ApiError::Refused { status: 409, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Runs one statement (or script), in `session` if given, and reads back every row.
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
        });
        if create_session {
            body["createSession"] = json!(true);
        }
        if let Some(id) = session {
            body["connectionProperties"] = json!([{ "key": "session_id", "value": id }]);
        }
        let mut response = self.call("POST", "/queries", Some(&body))?;
        let mut result = QueryResult {
            session_id: response["sessionInfo"]["sessionId"]
                .as_str()
                .map(str::to_owned),
            ..QueryResult::default()
        };
        loop {
            let complete = response["jobComplete"].as_bool().unwrap_or(true);
            if complete {
                if let Some(e) = response["errors"].as_array().and_then(|e| e.first()) {
                    return Err(ApiError::Refused {
                        status: 400,
                        message: e["message"].as_str().unwrap_or("query failed").to_owned(),
                    });
                }
                if result.fields.is_empty() {
                    result.fields = fields(&response["schema"]);
                }
                if let Some(n) = response["numDmlAffectedRows"].as_str() {
                    result.affected = n.parse().ok();
                }
                if let Some(rows) = response["rows"].as_array() {
                    result.rows.extend(rows.iter().cloned());
                }
            }
            let page = response["pageToken"].as_str();
            if complete && page.is_none() {
                return Ok(result);
            }
            let job = &response["jobReference"];
            let job_id = job["jobId"].as_str().unwrap_or_default();
            let mut path = format!(
                "/queries/{job_id}?timeoutMs={QUERY_WAIT_MS}&formatOptions.useInt64Timestamp=true"
            );
            if let Some(location) = job["location"].as_str() {
                path.push_str(&format!("&location={location}"));
            }
            if let Some(token) = page {
                path.push_str(&format!("&pageToken={token}"));
            }
            response = self.call("GET", &path, None)?;
        }
    }

    /// A table's column names, from its metadata (`tables.get`: free, unlike a query).
    pub fn table_columns(&self, dataset: &str, table: &str) -> Result<Vec<String>, ApiError> {
        let response = self.call("GET", &format!("/datasets/{dataset}/tables/{table}"), None)?;
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
        )?;
        let mut rejected = Vec::new();
        for e in response["insertErrors"].as_array().into_iter().flatten() {
            let index = e["index"].as_u64().unwrap_or(0) as usize;
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

    /// One call, with transient failures retried (the process's one policy, `crate::retry`).
    fn call(&self, method: &str, path: &str, body: Option<&Json>) -> Result<Json, ApiError> {
        let url = format!("{}{path}", self.base);
        let mut attempts = 0;
        crate::retry::retry(
            "a BigQuery call",
            crate::retry::Policy::times(TRANSIENT_ATTEMPTS as usize - 1, TRANSIENT_MAX_DELAY),
            None,
            |f: &Failure| matches!(f, Failure::Transient(_)),
            || {
                attempts += 1;
                self.call_once(method, &url, body)
            },
        )
        .map_err(|f| match f {
            Failure::Transient(message) => ApiError::Transient { attempts, message },
            Failure::Final(e) => e,
        })
    }

    fn call_once(&self, method: &str, url: &str, body: Option<&Json>) -> Result<Json, Failure> {
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
            response.map_err(|e| Failure::Transient(format!("{method} {url}: {e}")))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_string()
            .map_err(|e| {
                Failure::Transient(format!("{method} {url}: reading the response: {e}"))
            })?;
        let json: Json = serde_json::from_str(&text).unwrap_or(Json::Null);
        if (200..300).contains(&status) {
            return Ok(json);
        }
        let message = json["error"]["message"]
            .as_str()
            .map_or_else(|| text.chars().take(300).collect(), str::to_owned);
        let reason = json["error"]["errors"][0]["reason"].as_str().unwrap_or("");
        // Quotas and rate limits come back as 403 with these reasons, as well as 429.
        let quota = matches!(
            reason,
            "rateLimitExceeded" | "quotaExceeded" | "backendError"
        );
        if status == 429 || status >= 500 || quota {
            Err(Failure::Transient(format!("HTTP {status}: {message}")))
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
