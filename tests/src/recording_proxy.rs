//! An HTTP/1.1 proxy in front of a real server, for what that server cannot show by itself:
//! - every request is recorded (method, path with its query, body), so that a test can check what Playlog
//!   sends: a location on every BigQuery job, a job id or request id on every retry;
//! - a chosen response can be lost: the request is forwarded and runs, then the client's connection is
//!   closed without an answer, as a network fault after the server acted would (no real part produces that
//!   on demand);
//! - a `jobs.insert` whose job id the server has already seen gets `409 duplicate`, as BigQuery documents
//!   ("job IDs are unique: a second insert with the same id fails"); bqemulator 1.4.0 runs it again instead.
//!
//! - with [`RecordingProxy::report_jobs_running`], a `jobs.insert` that the server finished is answered as
//!   still `RUNNING`, as BigQuery answers any job that takes longer than the call (bqemulator runs every
//!   job before it answers), so that the client's polling path runs.
//!
//! One request per connection (`Connection: close` both ways), bodies by `Content-Length`: what ureq and
//! uvicorn speak.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// One request as the client sent it, with the status the client got (`None`: the response was lost, or
/// answered by the proxy itself with 409).
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub body: String,
    pub status: Option<u16>,
}

impl Recorded {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

type LoseRule = Box<dyn FnMut(&Recorded) -> bool + Send>;

#[derive(Default)]
struct State {
    requests: Vec<Recorded>,
    lose: Option<LoseRule>,
    job_ids: HashSet<String>,
    jobs_running: bool,
}

pub struct RecordingProxy {
    pub address: String,
    state: Arc<Mutex<State>>,
}

impl RecordingProxy {
    /// Listens on a free loopback port and forwards to `upstream` (`host:port`).
    pub fn start(upstream: &str) -> RecordingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("proxy: {e}"));
        let address = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("proxy: {e}"))
            .to_string();
        let state = Arc::new(Mutex::new(State::default()));
        let (shared, upstream) = (state.clone(), upstream.to_owned());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (state, upstream) = (shared.clone(), upstream.clone());
                std::thread::spawn(move || serve(client, &upstream, &state));
            }
        });
        RecordingProxy { address, state }
    }

    /// The next request `rule` matches is forwarded, and its response lost.
    pub fn lose_response_of(&self, rule: impl FnMut(&Recorded) -> bool + Send + 'static) {
        self.lock().lose = Some(Box::new(rule));
    }

    /// From now on, finished jobs are reported as running (see the module's documentation).
    pub fn report_jobs_running(&self, on: bool) {
        self.lock().jobs_running = on;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn serve(client: TcpStream, upstream: &str, state: &Mutex<State>) {
    let Ok(mut reader) = client.try_clone().map(BufReader::new) else {
        return;
    };
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line == "\r\n" {
            break;
        }
        head.push(line.trim_end().to_owned());
    }
    let Some(request_line) = head.first().cloned() else {
        return;
    };
    let mut parts = request_line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or_default().to_owned(),
        parts.next().unwrap_or_default().to_owned(),
    );
    let length: usize = head
        .iter()
        .find_map(|h| {
            let (k, v) = h.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    assert!(
        !head.iter().any(|h| h
            .to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")),
        "the recording proxy reads bodies by Content-Length only: {request_line}"
    );
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let mut recorded = Recorded {
        method,
        path,
        body: String::from_utf8_lossy(&body).into_owned(),
        status: None,
    };
    let mut client = client;
    // BigQuery's answer to a job id it has: 409, which bqemulator does not give.
    let job_id = (recorded.method == "POST" && recorded.path.ends_with("/jobs"))
        .then(|| {
            recorded.json()["jobReference"]["jobId"]
                .as_str()
                .map(str::to_owned)
        })
        .flatten();
    if let Some(id) = &job_id {
        {
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            if s.job_ids.contains(id) {
                s.requests.push(recorded);
                drop(s);
                let body = format!(
                    "{{\"error\":{{\"code\":409,\"message\":\"Already Exists: Job {id}\",\"errors\":[{{\"reason\":\"duplicate\",\"message\":\"Already Exists: Job {id}\"}}],\"status\":\"ALREADY_EXISTS\"}}}}"
                );
                let _ = write!(
                    client,
                    "HTTP/1.1 409 Conflict\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                return;
            }
        }
    }
    let Ok(mut server) = TcpStream::connect(upstream) else {
        return;
    };
    let mut forwarded = String::new();
    for h in &head {
        if !h.to_ascii_lowercase().starts_with("connection:") {
            forwarded.push_str(h);
            forwarded.push_str("\r\n");
        }
    }
    forwarded.push_str("connection: close\r\n\r\n");
    if server.write_all(forwarded.as_bytes()).is_err() || server.write_all(&body).is_err() {
        return;
    }
    let mut response = Vec::new();
    if server.read_to_end(&mut response).is_err() {
        return;
    }
    let status = String::from_utf8_lossy(&response)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok());
    let running = state.lock().unwrap_or_else(|e| e.into_inner()).jobs_running;
    if running && job_id.is_some() && status == Some(200) {
        response = as_running(&response);
    }
    let lose = {
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = job_id.filter(|_| status.is_some_and(|s: u16| (200..300).contains(&s))) {
            s.job_ids.insert(id);
        }
        let lose = s.lose.as_mut().is_some_and(|rule| rule(&recorded));
        if lose {
            s.lose = None;
        } else {
            recorded.status = status;
        }
        s.requests.push(recorded);
        lose
    };
    if lose {
        let _ = client.shutdown(std::net::Shutdown::Both);
        return;
    }
    let _ = client.write_all(&response);
}

/// A finished job's response, rewritten as BigQuery's answer for a job still running: `status.state`
/// RUNNING, no statistics.
fn as_running(response: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(response);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return response.to_vec();
    };
    let Ok(mut job) = serde_json::from_str::<serde_json::Value>(body) else {
        return response.to_vec();
    };
    job["status"] = serde_json::json!({ "state": "RUNNING" });
    if let Some(o) = job.as_object_mut() {
        o.remove("statistics");
    }
    let body = job.to_string();
    let mut out = String::new();
    for line in head.split("\r\n") {
        if !line.to_ascii_lowercase().starts_with("content-length:") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    out.into_bytes()
}
