//! Reading BigQuery's responses strictly: pure functions over the JSON the REST API returns, no I/O.
//!
//! Anything that is not what the API reference documents is an error that quotes what BigQuery said: a
//! 2xx body that is not a JSON object, a query response without `jobComplete`, a job without
//! `status.state`. A job has failed only when `status.errorResult` says so; `errors` alone may hold warnings
//! ("Errors here do not necessarily mean that the job has completed or was unsuccessful", jobs.query's
//! reference), which are logged, not failures.

use serde_json::Value as Json;

/// At most this much of a response is quoted in an error.
const QUOTE: usize = 300;

/// What a response is, when it is not what the reference documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unexpected(pub String);

/// The first characters of a text, for quoting in an error.
pub fn quote(text: &str) -> String {
    let mut q: String = text.chars().take(QUOTE).collect();
    if text.chars().count() > QUOTE {
        q.push('…');
    }
    q
}

/// A 2xx body: must be a JSON object.
pub fn body(call: &str, text: &str) -> Result<Json, Unexpected> {
    match serde_json::from_str::<Json>(text) {
        Ok(json) if json.is_object() => Ok(json),
        _ => Err(Unexpected(format!(
            "{call} answered 2xx with a body that is not a JSON object: {:?}",
            quote(text)
        ))),
    }
}

/// A job's state, as `jobs.insert` and `jobs.get` return it.
#[derive(Debug, Clone, PartialEq)]
pub enum JobState {
    /// PENDING or RUNNING: poll again.
    Running,
    /// DONE without `errorResult`; `warnings` are `status.errors`' messages, if any.
    Succeeded {
        affected: Option<u64>,
        session_id: Option<String>,
        warnings: Vec<String>,
    },
    /// DONE with `errorResult`: BigQuery's reason and message.
    Failed { reason: String, message: String },
}

/// Reads a job resource.
pub fn job(job: &Json) -> Result<JobState, Unexpected> {
    let state = job["status"]["state"].as_str().ok_or_else(|| {
        Unexpected(format!(
            "a job without status.state: {}",
            quote(&job.to_string())
        ))
    })?;
    match state {
        "PENDING" | "RUNNING" => Ok(JobState::Running),
        "DONE" => {
            let error = &job["status"]["errorResult"];
            if error.is_object() {
                return Ok(JobState::Failed {
                    reason: error["reason"].as_str().unwrap_or_default().to_owned(),
                    message: error["message"]
                        .as_str()
                        .map_or_else(|| error.to_string(), str::to_owned),
                });
            }
            let affected = match &job["statistics"]["query"]["numDmlAffectedRows"] {
                Json::Null => None,
                n => Some(count(n).ok_or_else(|| {
                    Unexpected(format!("numDmlAffectedRows is not a count: {n}"))
                })?),
            };
            Ok(JobState::Succeeded {
                affected,
                session_id: job["statistics"]["sessionInfo"]["sessionId"]
                    .as_str()
                    .map(str::to_owned),
                warnings: messages(&job["status"]["errors"]),
            })
        }
        other => Err(Unexpected(format!("a job in state {other:?}"))),
    }
}

/// A `jobs.query` or `jobs.getQueryResults` response.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryPage {
    pub complete: bool,
    pub job_id: Option<String>,
    /// `errors` of a complete query: a failure or warnings; only the job's `errorResult` tells which.
    pub errors: Vec<String>,
    pub page_token: Option<String>,
    pub affected: Option<u64>,
}

pub fn query_page(response: &Json) -> Result<QueryPage, Unexpected> {
    let complete = response["jobComplete"].as_bool().ok_or_else(|| {
        Unexpected(format!(
            "a query response without jobComplete: {}",
            quote(&response.to_string())
        ))
    })?;
    let job_id = response["jobReference"]["jobId"]
        .as_str()
        .map(str::to_owned);
    let page_token = response["pageToken"].as_str().map(str::to_owned);
    if (!complete || page_token.is_some()) && job_id.is_none() {
        return Err(Unexpected(format!(
            "a query response to poll or page without jobReference.jobId: {}",
            quote(&response.to_string())
        )));
    }
    let affected = match &response["numDmlAffectedRows"] {
        Json::Null => None,
        n => Some(
            count(n)
                .ok_or_else(|| Unexpected(format!("numDmlAffectedRows is not a count: {n}")))?,
        ),
    };
    Ok(QueryPage {
        complete,
        job_id,
        errors: messages(&response["errors"]),
        page_token,
        affected,
    })
}

/// The location a dataset resource names.
pub fn dataset_location(dataset: &Json) -> Result<String, Unexpected> {
    dataset["location"]
        .as_str()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            Unexpected(format!(
                "a dataset without a location: {}",
                quote(&dataset.to_string())
            ))
        })
}

/// BigQuery's 403 for a missing permission, as one line: the permission (BigQuery names it in its message:
/// "Permission bigquery.tables.create denied on dataset …", "User does not have bigquery.jobs.create
/// permission in project …"), what was being done, and what to do.
pub fn permission_denied(call: &str, message: &str) -> String {
    let permission = message
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_'))
        .find(|w| w.starts_with("bigquery.") && w.matches('.').count() == 2);
    let what = match permission {
        Some(p) => format!("BigQuery denied permission {p}"),
        None => "BigQuery denied access".to_owned(),
    };
    format!(
        "{what} ({call}): grant this service account a role that holds it (docs/bigquery.md lists what each step needs), or run the step that needs it (`playlog migrate` creates datasets and tables) as an account that may. BigQuery said: {}",
        quote(message)
    )
}

/// A count as BigQuery sends it (int64 values are JSON strings).
fn count(n: &Json) -> Option<u64> {
    n.as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| n.as_u64())
}

fn messages(errors: &Json) -> Vec<String> {
    errors
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let reason = e["reason"].as_str().unwrap_or_default();
            let message = e["message"].as_str().unwrap_or_default();
            if reason.is_empty() {
                message.to_owned()
            } else {
                format!("{reason}: {message}")
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_body_that_is_not_a_json_object_is_an_error_quoting_it() {
        let e = body("jobs.query", "<html>proxy error</html>").unwrap_err();
        assert!(e.0.contains("<html>proxy error</html>"), "{e:?}");
        assert!(body("jobs.query", "[1]").is_err());
        assert!(body("jobs.query", "").is_err());
        assert_eq!(body("x", "{\"a\":1}").unwrap()["a"], 1);
    }

    #[test]
    fn a_query_response_without_job_complete_is_not_taken_as_complete() {
        let e = query_page(&json!({"rows": []})).unwrap_err();
        assert!(e.0.contains("jobComplete"), "{e:?}");
        let running = query_page(&json!({"jobComplete": false, "jobReference": {"jobId": "j"}}));
        assert!(!running.unwrap().complete);
        // Polling needs the job's id.
        assert!(query_page(&json!({"jobComplete": false})).is_err());
    }

    #[test]
    fn a_job_fails_only_on_its_error_result_and_warnings_are_not_failures() {
        let warned = job(
            &json!({"status": {"state": "DONE", "errors": [{"reason": "warning", "message": "slow"}]},
                                 "statistics": {"query": {"numDmlAffectedRows": "3"}}}),
        );
        assert_eq!(
            warned.unwrap(),
            JobState::Succeeded {
                affected: Some(3),
                session_id: None,
                warnings: vec!["warning: slow".into()]
            }
        );
        let failed = job(&json!({"status": {"state": "DONE",
            "errorResult": {"reason": "invalidQuery", "message": "Syntax error"}, "errors": [{"message": "Syntax error"}]}}));
        assert_eq!(
            failed.unwrap(),
            JobState::Failed {
                reason: "invalidQuery".into(),
                message: "Syntax error".into()
            }
        );
        assert_eq!(
            job(&json!({"status": {"state": "RUNNING"}})).unwrap(),
            JobState::Running
        );
        assert!(job(&json!({"status": {}})).is_err());
        assert!(job(&json!({"status": {"state": "WEIRD"}})).is_err());
        assert!(
            job(&json!({"status": {"state": "DONE"}, "statistics": {"query": {"numDmlAffectedRows": "x"}}}))
                .is_err()
        );
    }

    #[test]
    fn a_403_names_the_missing_permission_in_one_line() {
        let line = permission_denied(
            "datasets.insert pl_raw",
            "Access Denied: Project p: User does not have bigquery.datasets.create permission in project p.",
        );
        assert!(
            line.starts_with(
                "BigQuery denied permission bigquery.datasets.create (datasets.insert pl_raw)"
            ),
            "{line}"
        );
        assert!(!line.contains('\n'));
        let line = permission_denied(
            "jobs.insert",
            "Access Denied: Table p:d.t: Permission bigquery.tables.updateData denied on table p:d.t (or it may not exist).",
        );
        assert!(
            line.contains("permission bigquery.tables.updateData "),
            "{line}"
        );
        assert!(permission_denied("x", "nope").starts_with("BigQuery denied access (x)"));
    }

    #[test]
    fn a_dataset_names_its_location() {
        assert_eq!(dataset_location(&json!({"location": "EU"})).unwrap(), "EU");
        assert!(dataset_location(&json!({})).is_err());
    }
}
