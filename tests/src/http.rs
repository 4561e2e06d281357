//! Plain HTTP GETs against a Playlog server (the API and the pages), failing loudly with the body.

use std::time::Duration;

use serde_json::Value as Json;

/// An agent that returns every status as a response (the tests look at 4xx and 5xx).
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// GET `path` with `query` pairs: (status, body); `None` while nothing answers.
pub fn try_get(addr: &str, path: &str, query: &[(&str, &str)]) -> Option<(u16, String)> {
    let mut request = agent().get(format!("http://{addr}{path}"));
    for (k, v) in query {
        request = request.query(*k, *v);
    }
    let mut response = request.call().ok()?;
    let status = response.status().as_u16();
    Some((status, response.body_mut().read_to_string().ok()?))
}

pub fn get(addr: &str, path: &str, query: &[(&str, &str)]) -> (u16, String) {
    try_get(addr, path, query).unwrap_or_else(|| panic!("nothing answers at {addr}{path}"))
}

pub fn get_json(addr: &str, path: &str, query: &[(&str, &str)]) -> Json {
    let (status, body) = get(addr, path, query);
    assert_eq!(status, 200, "{path} {query:?}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// Waits (at most `timeout`) until the server at `addr` answers `/healthz`.
pub fn wait_until_serving(addr: &str, timeout: Duration) -> bool {
    crate::wait_for(timeout, || {
        try_get(addr, "/healthz", &[]).is_some_and(|(status, _)| status == 200)
    })
}
