//! Access tokens for the BigQuery API.
//!
//! Credentials are found the way every Google client finds them (Application Default Credentials), by the
//! `gcp_auth` crate: a service-account key file named by `GOOGLE_APPLICATION_CREDENTIALS`, the user
//! credentials `gcloud auth application-default login` wrote, or — on GKE with workload identity, or any
//! Google Cloud VM — the metadata server. An emulator needs no token at all.

use std::sync::Arc;

const SCOPE: &str = "https://www.googleapis.com/auth/bigquery";

pub enum TokenSource {
    /// An emulator: requests go out without an `authorization` header.
    None,
    Google {
        provider: Arc<dyn gcp_auth::TokenProvider>,
        /// gcp_auth is async; Playlog's warehouse calls are blocking, so a small runtime drives it.
        runtime: tokio::runtime::Runtime,
    },
}

impl TokenSource {
    /// Finds Application Default Credentials; fails with what was tried.
    pub fn application_default() -> Result<TokenSource, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("starting the auth runtime: {e}"))?;
        let provider = runtime.block_on(gcp_auth::provider()).map_err(|e| {
            format!(
                "no Google credentials found ({e}). Set GOOGLE_APPLICATION_CREDENTIALS to a service-account key \
                 file, run `gcloud auth application-default login`, or run on GKE with workload identity; \
                 for an emulator, pass --bigquery-endpoint (or set BIGQUERY_EMULATOR_HOST)"
            )
        })?;
        Ok(TokenSource::Google { provider, runtime })
    }

    /// A current token (cached and refreshed by the provider), or `None` for an emulator.
    pub fn token(&self) -> Result<Option<String>, String> {
        match self {
            TokenSource::None => Ok(None),
            TokenSource::Google { provider, runtime } => runtime
                .block_on(provider.token(&[SCOPE]))
                .map(|t| Some(t.as_str().to_owned()))
                .map_err(|e| format!("getting an access token: {e}")),
        }
    }
}
