//! The HTTP front: hyper (HTTP/1.1, keep-alive) on a one-thread tokio runtime of its own. Pages and
//! `/healthz` are answered here; API requests are handed to the worker threads, which own the warehouse
//! connections, through a bounded queue, and each waits at most [`REQUEST_TIMEOUT`] for its answer.
//!
//! Why not `tiny_http` (the metrics endpoint's server): its 0.12 connection pool can lose a wake-up, so a
//! new connection waits until a thread frees up, and a browser's keep-alive connections hold threads for
//! minutes: 2 of the dashboard's 9 requests were never answered, in about 1 page load out of 3.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response as HttpResponse};
use hyper_util::rt::TokioIo;

use std::sync::Arc;

use http_body_util::BodyExt as _;

use crate::api::Response;
use crate::auth::{Access, Auth};

/// The login form's largest body.
const MAX_FORM_BYTES: usize = 4096;

/// Requests that may wait for a worker, per worker; more are refused with 503 at once.
pub const QUEUE_PER_WORKER: usize = 16;
/// How long a request may take, queueing included (a slow query goes on, but nobody waits for it).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// An API request for a worker: the URL (path and query), and where the answer goes.
pub struct Job {
    pub url: String,
    pub reply: tokio::sync::oneshot::Sender<Response>,
}

/// Serves `listener` on a thread of its own, handing API requests to `jobs`; `auth` decides who reads.
pub fn spawn(
    listener: std::net::TcpListener,
    jobs: std::sync::mpsc::SyncSender<Job>,
    auth: Arc<Auth>,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    std::thread::Builder::new()
        .name("serve-http".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!(error = %e, "serving the API");
                        return;
                    }
                };
                loop {
                    let stream = match listener.accept().await {
                        Ok((stream, _)) => stream,
                        Err(e) => {
                            // Out of file descriptors, say: wait a moment rather than spin.
                            tracing::warn!(error = %e, "accepting an API connection");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    let jobs = jobs.clone();
                    let auth = auth.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |request| {
                            let jobs = jobs.clone();
                            let auth = auth.clone();
                            async move { Ok::<_, Infallible>(handle(request, &jobs, &auth).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .timer(hyper_util::rt::TokioTimer::new())
                            .header_read_timeout(Duration::from_secs(10))
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        })?;
    Ok(())
}

async fn handle(
    request: Request<Incoming>,
    jobs: &std::sync::mpsc::SyncSender<Job>,
    auth: &Auth,
) -> HttpResponse<Full<Bytes>> {
    let started = Instant::now();
    let url = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_owned(),
        |p| p.as_str().to_owned(),
    );
    let path = request.uri().path().to_owned();
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (authorization, cookie) = (header("authorization"), header("cookie"));
    // Behind an HTTPS load balancer or proxy, the session cookie is marked Secure.
    let https = header("x-forwarded-proto").is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let head = request.method() == Method::HEAD;
    let mut extra: Vec<(&'static str, String)> = Vec::new();
    let response = if request.method() == Method::POST && path == "/login" {
        let form = match http_body_util::Limited::new(request.into_body(), MAX_FORM_BYTES)
            .collect()
            .await
        {
            Ok(body) => body.to_bytes(),
            Err(_) => Bytes::new(),
        };
        let field = |name: &str| {
            form_urlencoded::parse(&form)
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        let next = safe_next(field("next").as_deref());
        match auth.login(&field("token").unwrap_or_default()) {
            Some(session) => {
                extra.push(("Set-Cookie", crate::auth::session_cookie(&session, https)));
                extra.push(("Location", next));
                redirect()
            }
            None => {
                tracing::info!("a login with a wrong token");
                let mut page = crate::pages::login(Some("That is not the token."), &next);
                page.status = 401;
                page
            }
        }
    } else if request.method() != Method::GET && !head {
        error(405, "read-only: only GET (and HEAD)")
    } else if path == "/healthz" {
        Response {
            status: 200,
            content_type: "text/plain",
            body: "ok\n".into(),
        }
    } else if path == "/login" {
        let next = form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
            .find(|(k, _)| k == "next")
            .map(|(_, v)| v.into_owned());
        crate::pages::login(None, &safe_next(next.as_deref()))
    } else if path == "/logout" {
        auth.logout(cookie.as_deref());
        extra.push(("Set-Cookie", crate::auth::cleared_cookie()));
        extra.push(("Location", "/login".into()));
        redirect()
    } else if let Some(asset) = path
        .starts_with("/assets/")
        .then(|| crate::pages::get(&path))
        .flatten()
    {
        asset // no data in them, and the login page needs its stylesheet
    } else if auth.check(authorization.as_deref(), cookie.as_deref()) == Access::Denied {
        if path.starts_with("/api/") {
            extra.push(("WWW-Authenticate", r#"Bearer realm="playlog""#.into()));
            error(
                401,
                "authentication required: send Authorization: Bearer <token> (the token of --auth-token-file)",
            )
        } else {
            let mut q = form_urlencoded::Serializer::new(String::new());
            q.append_pair("next", &url);
            extra.push(("Location", format!("/login?{}", q.finish())));
            redirect()
        }
    } else if let Some(page) = crate::pages::get(&path) {
        page
    } else {
        ask_worker(url.clone(), jobs).await
    };
    tracing::debug!(
        path,
        status = response.status,
        ms = started.elapsed().as_millis() as u64,
        "responded"
    );
    render(response, head, &extra)
}

/// Where a login may send the browser next: a path on this server, nothing else (an open redirect
/// would let a link to the login page forward to any site).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/".to_owned(),
    }
}

fn redirect() -> Response {
    Response {
        status: 303,
        content_type: "text/plain",
        body: String::new(),
    }
}

/// Hands the request to a worker and waits for its answer, within the time limit.
async fn ask_worker(url: String, jobs: &std::sync::mpsc::SyncSender<Job>) -> Response {
    let (reply, answer) = tokio::sync::oneshot::channel();
    match jobs.try_send(Job { url, reply }) {
        Ok(()) => {}
        Err(std::sync::mpsc::TrySendError::Full(_)) => {
            return error(
                503,
                "busy: every worker has a full queue; retry in a moment",
            );
        }
        Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {
            return error(503, "the API's workers have stopped");
        }
    }
    match tokio::time::timeout(REQUEST_TIMEOUT, answer).await {
        Ok(Ok(response)) => response,
        Ok(Err(_)) => error(500, "the worker answering this request stopped"),
        Err(_) => error(
            503,
            &format!(
                "no answer within {} s (the warehouse is slow or busy); retry, or ask for less",
                REQUEST_TIMEOUT.as_secs()
            ),
        ),
    }
}

fn error(status: u16, message: &str) -> Response {
    Response {
        status,
        content_type: "application/json",
        body: serde_json::json!({ "error": message, "parameter": null }).to_string(),
    }
}

fn render(
    response: Response,
    head: bool,
    extra: &[(&'static str, String)],
) -> HttpResponse<Full<Bytes>> {
    let body = if head {
        Bytes::new()
    } else {
        Bytes::from(response.body)
    };
    let mut builder = HttpResponse::builder()
        .status(response.status)
        .header("Content-Type", response.content_type)
        .header("X-Content-Type-Options", "nosniff")
        .header("Cache-Control", "no-store");
    for (name, value) in extra {
        builder = builder.header(*name, value);
    }
    if response.content_type.starts_with("text/html") {
        // The pages load nothing from elsewhere and run no inline script.
        builder = builder.header(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
        );
    }
    builder.body(Full::new(body)).unwrap_or_else(|e| {
        // Only a header value could be refused, and they are all constants.
        tracing::error!(error = %e, "building a response");
        HttpResponse::new(Full::new(Bytes::from_static(b"internal error")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_only_forwards_to_this_server() {
        assert_eq!(safe_next(Some("/catalog")), "/catalog");
        assert_eq!(safe_next(Some("/api/v1?x=1")), "/api/v1?x=1");
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil.example",
            "",
            "catalog",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
