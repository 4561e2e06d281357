//! The pages a browser opens: the dashboard (`/`) and its assets, built into the binary so that the
//! dashboard works offline (Chart.js is vendored under `serve/assets/vendor/`, see
//! `scripts/vendor-chartjs.sh`). Every figure on a page comes from the API.

use crate::api::Response;

/// The page or asset at `path`, if there is one.
pub fn get(path: &str) -> Option<Response> {
    let (content_type, body) = match path {
        "/" | "/index.html" => (
            "text/html; charset=utf-8",
            include_str!("../assets/dashboard.html"),
        ),
        "/assets/dashboard.js" => (
            "text/javascript; charset=utf-8",
            include_str!("../assets/dashboard.js"),
        ),
        "/assets/dashboard.css" => (
            "text/css; charset=utf-8",
            include_str!("../assets/dashboard.css"),
        ),
        "/pipeline" => (
            "text/html; charset=utf-8",
            include_str!("../assets/pipeline.html"),
        ),
        "/assets/pipeline.js" => (
            "text/javascript; charset=utf-8",
            include_str!("../assets/pipeline.js"),
        ),
        "/assets/catalog.css" => ("text/css; charset=utf-8", playlog_catalog::CSS),
        "/assets/chart.umd.min.js" => (
            "text/javascript; charset=utf-8",
            include_str!("../assets/vendor/chart.js-4.6.1/chart.umd.min.js"),
        ),
        _ => return None,
    };
    Some(Response {
        status: 200,
        content_type,
        body: body.to_owned(),
    })
}

/// The login page: one field for the token. `next` is where a good login goes (a path on this server).
pub fn login(error: Option<&str>, next: &str) -> Response {
    use playlog_catalog::page::escape;
    let error = error.map_or(String::new(), |e| {
        format!(r#"<p class="notice" role="alert">{}</p>"#, escape(e))
    });
    Response {
        status: 200,
        content_type: "text/html; charset=utf-8",
        body: format!(
            r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Playlog — log in</title>
<link rel="stylesheet" href="/assets/dashboard.css">
</head>
<body>
<header><div class="brand"><strong>Playlog</strong> <span class="muted">log in</span></div></header>
<main class="login">
{error}
<form method="post" action="/login" class="card">
  <label for="token">Access token</label>
  <input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
  <input type="hidden" name="next" value="{next}">
  <button type="submit">Log in</button>
  <p class="muted">The token is the one this server was started with (<code>--auth-token-file</code>). The session lasts 12 hours.</p>
</form>
</main>
</body>
</html>
"#,
            next = escape(next),
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_dashboard_loads_only_assets_this_server_has() {
        let html = get("/").unwrap().body;
        for line in html
            .lines()
            .filter(|l| l.contains("src=") || l.contains("href="))
        {
            for attr in ["src=\"", "href=\""] {
                if let Some(at) = line.find(attr) {
                    let url = &line[at + attr.len()..];
                    let url = &url[..url.find('"').unwrap()];
                    assert!(url.starts_with('/'), "{url} leaves the server");
                    if url.starts_with("/assets/") {
                        assert!(get(url).is_some(), "{url} is not served");
                    }
                }
            }
        }
    }
}
