//! `playlog serve` off loopback: it refuses to start without a token (or `--insecure-no-auth`), refuses a
//! short one, and with one, every page and API request but `/healthz`, `/login` and the static assets
//! needs the bearer token or the session cookie a login sets; the cookie is HttpOnly and SameSite, a
//! logout ends it, and the token never reaches the log.

#![allow(clippy::unwrap_used)] // A test: a failed step should stop it loudly.

use std::time::Duration;

use playlog_e2e::http::wait_until_serving;
use playlog_e2e::*;

const TOKEN: &str = "e2e-token-0123456789abcdef";

/// An agent that follows no redirect and returns every status.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

struct Reply {
    status: u16,
    location: Option<String>,
    set_cookie: Option<String>,
    www_authenticate: Option<String>,
    body: String,
}

fn reply(mut response: ureq::http::Response<ureq::Body>) -> Reply {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (location, set_cookie, www_authenticate) = (
        header("location"),
        header("set-cookie"),
        header("www-authenticate"),
    );
    Reply {
        status: response.status().as_u16(),
        location,
        set_cookie,
        www_authenticate,
        body: response.body_mut().read_to_string().unwrap_or_default(),
    }
}

fn get(addr: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = agent().get(format!("http://{addr}{path}"));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    reply(request.call().unwrap())
}

fn login(addr: &str, token: &str, next: &str) -> Reply {
    reply(
        agent()
            .post(format!("http://{addr}/login"))
            .send_form([("token", token), ("next", next)])
            .unwrap(),
    )
}

fn empty_warehouse(scratch: &Scratch) -> String {
    let file = scratch.path().join("w.duckdb");
    duckdb::Connection::open(&file)
        .unwrap()
        .execute_batch("CREATE SCHEMA raw")
        .unwrap();
    format!("duckdb:{}", file.display())
}

#[test]
fn off_loopback_the_server_needs_a_token_and_checks_it_everywhere() {
    let scratch = Scratch::new("serve-auth");
    let warehouse = empty_warehouse(&scratch);
    let port = free_port();
    let all_interfaces = format!("0.0.0.0:{port}");

    // No token: it does not start, and says what to give.
    let refused = playlog(
        &[
            "serve",
            "--warehouse",
            &warehouse,
            "--addr",
            &all_interfaces,
        ],
        &[],
    );
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("--auth-token-file") && said.contains("--insecure-no-auth"),
        "{said}"
    );
    // A short token: refused, with its length and how to make a good one.
    let short = scratch.path().join("short.token");
    std::fs::write(&short, "abc\n").unwrap();
    let refused = playlog(
        &[
            "serve",
            "--warehouse",
            &warehouse,
            "--addr",
            &all_interfaces,
            "--auth-token-file",
            short.to_str().unwrap(),
        ],
        &[],
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("at least 16"),
        "{refused:?}"
    );

    let token_file = scratch.path().join("serve.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let log = scratch.path().join("serve.log");
    let mut serve = Background::spawn(
        &[
            "serve",
            "--warehouse",
            &warehouse,
            "--addr",
            &all_interfaces,
            "--auth-token-file",
            token_file.to_str().unwrap(),
        ],
        &[("PLAYLOG_LOG", "debug")],
        log.clone(),
    );
    let addr = format!("127.0.0.1:{port}");
    assert!(
        wait_until_serving(&addr, Duration::from_secs(30)),
        "{}",
        serve.output()
    );

    // The API: the bearer token, and nothing else.
    let none = get(&addr, "/api/v1", &[]);
    assert_eq!(none.status, 401, "{}", none.body);
    assert_eq!(
        none.www_authenticate.as_deref(),
        Some(r#"Bearer realm="playlog""#)
    );
    assert!(none.body.contains("Authorization: Bearer"), "{}", none.body);
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(
        get(&addr, "/api/v1", &[("Authorization", &bearer)]).status,
        200
    );
    for wrong in [
        format!("Bearer {TOKEN}x"),
        format!("Bearer {}", &TOKEN[1..]),
        format!("Basic {TOKEN}"),
        TOKEN.to_owned(),
    ] {
        let r = get(&addr, "/api/v1/pipeline.json", &[("Authorization", &wrong)]);
        assert_eq!(r.status, 401, "{wrong}");
    }
    // Pages send the browser to the login, which comes back to the page.
    for page in ["/", "/catalog", "/pipeline"] {
        let r = get(&addr, page, &[]);
        assert_eq!(r.status, 303, "{page}");
        assert!(
            r.location
                .as_deref()
                .unwrap()
                .starts_with("/login?next=%2F"),
            "{page}: {:?}",
            r.location
        );
    }
    // Open: health, the login page and the static assets (no data in them).
    assert_eq!(get(&addr, "/healthz", &[]).status, 200);
    let page = get(&addr, "/login?next=/catalog", &[]);
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains(r#"name="next" value="/catalog""#),
        "{}",
        page.body
    );
    assert_eq!(get(&addr, "/assets/dashboard.css", &[]).status, 200);

    // A wrong login: no cookie. A right one: an HttpOnly, SameSite cookie, and back to the page.
    let wrong = login(&addr, "not-the-token-at-all", "/catalog");
    assert_eq!(wrong.status, 401);
    assert!(wrong.set_cookie.is_none());
    assert!(
        login(&addr, TOKEN, "https://evil.example/")
            .location
            .as_deref()
            == Some("/"),
        "a login forwards only to this server"
    );
    let good = login(&addr, TOKEN, "/catalog");
    assert_eq!(good.status, 303);
    assert_eq!(good.location.as_deref(), Some("/catalog"));
    let set_cookie = good.set_cookie.unwrap();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    assert_eq!(get(&addr, "/", &[("Cookie", &cookie)]).status, 200);
    assert_eq!(get(&addr, "/catalog", &[("Cookie", &cookie)]).status, 200);
    assert_eq!(
        get(&addr, "/api/v1/pipeline.json", &[("Cookie", &cookie)]).status,
        200,
        "the pages' scripts read the API with the cookie"
    );
    // A forged session and a logged-out one are refused.
    assert_eq!(
        get(
            &addr,
            "/api/v1",
            &[("Cookie", "playlog_session=00000000000000000000000000000000")]
        )
        .status,
        401
    );
    let out = get(&addr, "/logout", &[("Cookie", &cookie)]);
    assert_eq!(out.status, 303);
    assert!(out.set_cookie.unwrap().contains("Max-Age=0"));
    assert_eq!(get(&addr, "/", &[("Cookie", &cookie)]).status, 303);
    // Read-only all the same.
    let post = reply(
        agent()
            .post(format!("http://{addr}/api/v1"))
            .header("Authorization", &bearer)
            .send("")
            .unwrap(),
    );
    assert_eq!(post.status, 405);

    assert!(
        serve.terminate(Duration::from_secs(10)),
        "{}",
        serve.output()
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("responded"),
        "debug logging was on: {logged}"
    );
    assert!(!logged.contains(TOKEN), "the token reached the log");

    // The token from the environment instead of a file works the same.
    let port = free_port();
    let mut serve = Background::spawn(
        &[
            "serve",
            "--warehouse",
            &warehouse,
            "--addr",
            &format!("0.0.0.0:{port}"),
        ],
        &[("PLAYLOG_SERVE_TOKEN", TOKEN)],
        scratch.path().join("serve-env.log"),
    );
    let addr = format!("127.0.0.1:{port}");
    assert!(
        wait_until_serving(&addr, Duration::from_secs(30)),
        "{}",
        serve.output()
    );
    assert_eq!(get(&addr, "/api/v1", &[]).status, 401);
    assert_eq!(
        get(&addr, "/api/v1", &[("Authorization", &bearer)]).status,
        200
    );
    assert!(serve.terminate(Duration::from_secs(10)));
}
