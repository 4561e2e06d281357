//! Who may read: with a token configured (`--auth-token-file`, or `PLAYLOG_SERVE_TOKEN`), the API takes
//! `Authorization: Bearer <token>`, and the pages, which a browser cannot send a bearer header to, a
//! session cookie that `/login` sets once the token is typed in: random, `HttpOnly` (no script reads it)
//! and `SameSite=Strict` (no other site's page sends it), `Secure` behind HTTPS. Sessions live in memory
//! for [`SESSION_TTL`]; a restart logs everyone out. `/healthz`, `/login` and the static assets (no data)
//! are open.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a login lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// The session cookie's name.
pub const COOKIE: &str = "playlog_session";
/// Shortest token accepted: a guessable one would make the login a formality.
pub const MIN_TOKEN_LEN: usize = 16;

/// What a request may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Allowed,
    /// No credentials, or wrong ones.
    Denied,
}

pub struct Auth {
    token: Option<String>,
    sessions: Mutex<HashMap<String, Instant>>,
}

impl Auth {
    /// `None`: everyone may read (loopback, or `--insecure-no-auth`).
    pub fn new(token: Option<String>) -> Auth {
        Auth {
            token,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    pub fn required(&self) -> bool {
        self.token.is_some()
    }

    /// Whether a request with these `Authorization` and `Cookie` headers may read.
    pub fn check(&self, authorization: Option<&str>, cookie: Option<&str>) -> Access {
        let Some(token) = &self.token else {
            return Access::Allowed;
        };
        if authorization
            .and_then(bearer)
            .is_some_and(|presented| same(presented.as_bytes(), token.as_bytes()))
        {
            return Access::Allowed;
        }
        if let Some(session) = cookie.and_then(|c| cookie_value(c, COOKIE)) {
            let mut sessions = self.lock();
            sessions.retain(|_, started| started.elapsed() < SESSION_TTL);
            if sessions.contains_key(session) {
                return Access::Allowed;
            }
        }
        Access::Denied
    }

    /// A new session for a login with `presented`, or `None` if it is not the token.
    pub fn login(&self, presented: &str) -> Option<String> {
        let token = self.token.as_ref()?;
        if !same(presented.trim().as_bytes(), token.as_bytes()) {
            return None;
        }
        let id = new_session_id();
        self.lock().insert(id.clone(), Instant::now());
        Some(id)
    }

    /// Ends a session (logout).
    pub fn logout(&self, cookie: Option<&str>) {
        if let Some(session) = cookie.and_then(|c| cookie_value(c, COOKIE)) {
            self.lock().remove(session);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        match self.sessions.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// The `Set-Cookie` value for a session (`secure`: the request came over HTTPS, through a proxy).
pub fn session_cookie(id: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_TTL.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that ends a session.
pub fn cleared_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// A token read from a file: one line, trimmed, long enough.
pub fn read_token(text: &str, origin: &str) -> Result<String, String> {
    let token = text.trim();
    if token.contains(['\n', '\r']) {
        return Err(format!("{origin}: the token must be one line"));
    }
    if token.len() < MIN_TOKEN_LEN {
        return Err(format!(
            "{origin}: the token is {} characters; use at least {MIN_TOKEN_LEN} (for example `openssl rand -hex 32`)",
            token.len()
        ));
    }
    Ok(token.to_owned())
}

fn bearer(header: &str) -> Option<&str> {
    let (scheme, value) = header.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| value.trim())
}

/// A cookie's value in a `Cookie` header (`a=1; b=2`).
fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// Equal, in a time that does not depend on where they differ (only on their lengths).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 32 random bytes from the operating system, as hex.
fn new_session_id() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const TOKEN: &str = "correct-horse-battery-staple";

    #[test]
    fn without_a_token_everyone_reads() {
        let auth = Auth::new(None);
        assert_eq!(auth.check(None, None), Access::Allowed);
        assert!(!auth.required());
        assert_eq!(auth.login("anything"), None);
    }

    #[test]
    fn the_bearer_token_and_nothing_else_opens_the_api() {
        let auth = Auth::new(Some(TOKEN.into()));
        assert_eq!(auth.check(None, None), Access::Denied);
        assert_eq!(
            auth.check(Some(&format!("Bearer {TOKEN}")), None),
            Access::Allowed
        );
        assert_eq!(
            auth.check(Some(&format!("bearer  {TOKEN} ")), None),
            Access::Allowed
        );
        for wrong in [
            "Bearer correct-horse-battery-stapl",
            "Bearer correct-horse-battery-staple2",
            "Basic Y29ycmVjdA==",
            TOKEN,
            "Bearer ",
        ] {
            assert_eq!(auth.check(Some(wrong), None), Access::Denied, "{wrong}");
        }
    }

    #[test]
    fn a_login_makes_a_session_the_cookie_carries_until_logout() {
        let auth = Auth::new(Some(TOKEN.into()));
        assert_eq!(auth.login("wrong-but-long-enough"), None);
        let id = auth.login(&format!("{TOKEN}\n")).unwrap();
        assert_eq!(id.len(), 64);
        let header = format!("theme=dark; {COOKIE}={id}; other=1");
        assert_eq!(auth.check(None, Some(&header)), Access::Allowed);
        // One hex digit changed (to another digit: an id starting with 0 made this test pass the real one,
        // one run in sixteen).
        let other = if id.starts_with('0') { '1' } else { '0' };
        assert_eq!(
            auth.check(None, Some(&format!("{COOKIE}={other}{}", &id[1..]))),
            Access::Denied
        );
        assert_eq!(
            auth.check(None, Some(&format!("{COOKIE}="))),
            Access::Denied
        );
        let other = auth.login(TOKEN).unwrap();
        assert_ne!(id, other, "each login its own session");
        auth.logout(Some(&header));
        assert_eq!(auth.check(None, Some(&header)), Access::Denied);
    }

    #[test]
    fn cookies_are_http_only_and_same_site() {
        let c = session_cookie("abc", false);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && !c.contains("Secure"));
        assert!(session_cookie("abc", true).ends_with("; Secure"));
        assert!(cleared_cookie().contains("Max-Age=0"));
    }

    #[test]
    fn a_short_or_multi_line_token_is_refused() {
        assert!(
            read_token("short\n", "t")
                .unwrap_err()
                .contains("at least 16")
        );
        assert!(read_token("aaaaaaaaaaaaaaaa\nbbbbbbbbbbbbbbbbb", "t").is_err());
        assert_eq!(read_token(&format!("  {TOKEN}\n"), "t").unwrap(), TOKEN);
    }
}
