//! `/catalog`: the data catalog (`playlog_catalog`) over the served warehouse. Reading it runs every
//! data test, a few seconds at a million events, so one reading is shared by all workers for
//! [`CATALOG_TTL`]; a request that finds it older reads again, and requests meanwhile wait for that one.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use playlog_catalog::Observed;
use playlog_vault::Model;
use playlog_vault::docs::Documentation;

use crate::api::Response;

/// How long one reading of the warehouse (rows, freshness, test results) is shown.
pub const CATALOG_TTL: Duration = Duration::from_secs(60);

/// The catalog page's content, shared by the workers.
pub struct CatalogPage {
    model: Model,
    doc: Documentation,
    /// The freshness test's bound, as `playlog check --max-age` takes it.
    max_age: Duration,
    label: String,
    latest: Mutex<Option<(Instant, Observed)>>,
}

impl CatalogPage {
    pub fn new(model: Model, max_age: Duration, label: String) -> Result<CatalogPage, String> {
        let catalog = playlog_vault::Catalog::for_model(&model).map_err(|e| e.to_string())?;
        let sql = playlog_vault::Sql::new(playlog_sql::DialectName::DuckDb, "");
        let doc = playlog_vault::docs::document(&model, &catalog, &sql, max_age);
        Ok(CatalogPage {
            model,
            doc,
            max_age,
            label,
            latest: Mutex::new(None),
        })
    }

    /// The page, from a reading at most [`CATALOG_TTL`] old, taken on `conn` if it needs one.
    pub fn respond(&self, conn: &duckdb::Connection) -> Response {
        let mut latest = match self.latest.lock() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        if latest
            .as_ref()
            .is_none_or(|(at, _)| at.elapsed() >= CATALOG_TTL)
        {
            let mut reader = playlog_warehouse::DuckDbReader::new(conn);
            match playlog_catalog::observe(&mut reader, &self.doc, &self.model, self.max_age) {
                Ok(observed) => *latest = Some((Instant::now(), observed)),
                Err(e) => {
                    tracing::warn!(error = %e, "reading the warehouse for the catalog");
                    return Response::error(
                        500,
                        None,
                        &format!("reading the warehouse for the catalog: {e}"),
                    );
                }
            }
        }
        let frame = playlog_catalog::Frame {
            css_href: "/assets/catalog.css",
            warehouse: &self.label,
            links: &[("Dashboard", "/"), ("Pipeline", "/pipeline")],
        };
        Response {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body: playlog_catalog::render(&self.doc, latest.as_ref().map(|(_, o)| o), &frame),
        }
    }
}
