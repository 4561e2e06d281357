//! The REST API on one DuckDB connection: routes, one read transaction per response (the count, the page
//! and `as_of` come from one snapshot), and JSON or CSV out.

use serde_json::{Value as Json, json};

use crate::aggregates;
use crate::query::{self, BadRequest, Request, Shape};
use crate::tables::ServedTable;

/// The aggregates, with their parameters' meaning and their columns.
fn aggregates_index() -> Response {
    let list: Vec<Json> = aggregates::AGGREGATES
        .iter()
        .map(|a| {
            json!({
                "name": a.name,
                "summary": a.summary,
                "url": format!("/api/v1/aggregates/{}.json", a.name),
                "columns": a.columns.iter().map(|(n, t, d)| json!({"name": n, "type": t, "description": d})).collect::<Vec<_>>(),
            })
        })
        .collect();
    Response::json(200, &json!({ "aggregates": list }))
}

/// An HTTP response, before it meets the server.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Response {
    fn json(status: u16, body: &Json) -> Response {
        Response {
            status,
            content_type: "application/json",
            body: body.to_string(),
        }
    }

    pub(crate) fn error(status: u16, parameter: Option<&str>, message: &str) -> Response {
        Response::json(status, &json!({ "error": message, "parameter": parameter }))
    }
}

impl From<BadRequest> for Response {
    fn from(e: BadRequest) -> Response {
        Response::error(400, Some(&e.parameter), &e.to_string())
    }
}

pub struct Api {
    tables: Vec<ServedTable>,
    conn: duckdb::Connection,
    refreshed: Option<std::time::Instant>,
}

/// How often the served tables are read again from the warehouse (marts appear with the first vault
/// run, and a migration may add columns).
const REFRESH_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
}

impl Api {
    pub fn new(tables: Vec<ServedTable>, conn: duckdb::Connection) -> Api {
        Api {
            tables,
            conn,
            refreshed: None,
        }
    }

    /// The worker's warehouse connection.
    pub fn connection(&self) -> &duckdb::Connection {
        &self.conn
    }

    /// Reads the served tables again if they are older than [`REFRESH_EVERY`].
    pub fn refresh_if_needed(&mut self, expose_raw: bool) {
        if self
            .refreshed
            .is_some_and(|at| at.elapsed() < REFRESH_EVERY)
        {
            return;
        }
        self.refresh(expose_raw);
    }

    /// Answers `url`; a table this worker does not know (the first vault run may have made the marts
    /// a moment after its last look) is looked up again before it is refused. A throttle here let a
    /// look taken just before the marts appeared answer 404 (seen in CI); one catalog read per miss is
    /// cheap.
    pub fn get_fresh(&mut self, url: &str, expose_raw: bool) -> Response {
        self.refresh_if_needed(expose_raw);
        let response = self.get(url);
        if response.status == 404 {
            self.refresh(expose_raw);
            return self.get(url);
        }
        response
    }

    fn refresh(&mut self, expose_raw: bool) {
        match crate::discover(&self.conn, expose_raw) {
            Ok(tables) => {
                self.tables = tables;
                self.refreshed = Some(std::time::Instant::now());
            }
            Err(e) => tracing::warn!(error = %e, "reading the warehouse's tables for the API"),
        }
    }

    /// Answers one GET of `url` (path and query string).
    pub fn get(&self, url: &str) -> Response {
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let Some(rest) = path.strip_prefix("/api/v1") else {
            return Response::error(404, None, "not found: the API is under /api/v1");
        };
        match rest.trim_start_matches('/') {
            "" | ".json" => self.index(),
            "openapi.json" => Response::json(200, &crate::openapi::document(&self.tables)),
            "aggregates" | "aggregates.json" => aggregates_index(),
            resource if resource.starts_with("aggregates/") => {
                let name = resource["aggregates/".len()..]
                    .strip_suffix(".json")
                    .unwrap_or(&resource["aggregates/".len()..]);
                match aggregates::find(name) {
                    Some(aggregate) => self.aggregate(aggregate, &params),
                    None => Response::error(
                        404,
                        None,
                        &format!(
                            "no aggregate {name:?} (there are: {})",
                            aggregates::AGGREGATES
                                .iter()
                                .map(|a| a.name)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ),
                }
            }
            resource => {
                let (name, format) = if let Some(n) = resource.strip_suffix(".csv") {
                    (n, Format::Csv)
                } else {
                    (
                        resource.strip_suffix(".json").unwrap_or(resource),
                        Format::Json,
                    )
                };
                match self.tables.iter().find(|t| t.name == name) {
                    Some(table) => self.table(table, path, &params, format),
                    None => Response::error(
                        404,
                        None,
                        &format!(
                            "no table {name:?} is served (served: {})",
                            self.tables
                                .iter()
                                .map(|t| t.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ),
                }
            }
        }
    }

    fn index(&self) -> Response {
        let tables: Vec<Json> = self
            .tables
            .iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "url": format!("/api/v1/{}.json", t.name),
                    "columns": t.columns.iter().map(|c| json!({"name": c.name, "type": c.sql_type})).collect::<Vec<_>>(),
                    "key": t.key.iter().map(|k| t.columns[*k].name.clone()).collect::<Vec<_>>(),
                })
            })
            .collect();
        Response::json(
            200,
            &json!({ "tables": tables, "openapi": "/api/v1/openapi.json" }),
        )
    }

    fn table(
        &self,
        table: &ServedTable,
        path: &str,
        params: &[(String, String)],
        format: Format,
    ) -> Response {
        let request = match query::parse(table, params) {
            Ok(r) => r,
            Err(e) => return e.into(),
        };
        match self.read(table, &request) {
            Ok(page) => render(table, &request, page, path, params, format),
            Err(e) => {
                tracing::warn!(table = table.name, error = %e, "serving a page");
                Response::error(500, None, &format!("reading {}: {e}", table.name))
            }
        }
    }

    fn aggregate(
        &self,
        aggregate: &'static aggregates::Aggregate,
        params: &[(String, String)],
    ) -> Response {
        let request = match aggregates::parse(aggregate, params) {
            Ok(r) => r,
            Err(e) => return e.into(),
        };
        let result = self.in_snapshot(|| {
            let rows = self.rows(&aggregates::sql(&request), aggregate.columns.len())?;
            Ok((rows, self.marts_as_of()))
        });
        match result {
            Ok((rows, as_of)) => {
                let rows: Vec<Json> = rows
                    .into_iter()
                    .map(|r| {
                        Json::Object(
                            aggregate
                                .columns
                                .iter()
                                .map(|(c, _, _)| (*c).to_owned())
                                .zip(r)
                                .collect(),
                        )
                    })
                    .collect();
                Response::json(
                    200,
                    &json!({
                        "aggregate": aggregate.name,
                        "from": request.from.map(|d| d.to_string()),
                        "to": request.to.map(|d| d.to_string()),
                        "rows": rows,
                        "as_of": as_of,
                    }),
                )
            }
            // Before the first vault run there are no marts: the dashboard says so rather than failing.
            Err(e) if e.to_string().contains("does not exist") => Response::error(
                503,
                None,
                "the marts do not exist yet: run the vault (`playlog vault run`, or `playlog consume --vault-every 10s`)",
            ),
            Err(e) => {
                tracing::warn!(aggregate = aggregate.name, error = %e, "serving an aggregate");
                Response::error(500, None, &format!("reading {}: {e}", aggregate.name))
            }
        }
    }

    /// When the marts were last brought up to date (the last vault run).
    fn marts_as_of(&self) -> Option<String> {
        self.conn
            .query_row(
                "SELECT CAST(max(run_at) AS VARCHAR) FROM vault._runs",
                [],
                |r| r.get(0),
            )
            .unwrap_or(None)
    }

    /// `read`'s statements in one read transaction: one committed snapshot for the whole response.
    fn in_snapshot<T>(
        &self,
        read: impl FnOnce() -> Result<T, duckdb::Error>,
    ) -> Result<T, duckdb::Error> {
        self.conn.execute_batch("BEGIN TRANSACTION")?;
        let result = read();
        let _ = self.conn.execute_batch("ROLLBACK");
        result
    }

    /// The rows of `sql`, the first `width` columns of each as JSON values.
    fn rows(&self, sql: &query::Sql, width: usize) -> Result<Vec<Vec<Json>>, duckdb::Error> {
        let mut stmt = self.conn.prepare_cached(&sql.text)?;
        let mut rows = stmt.query(duckdb::params_from_iter(sql.params.iter()))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                values.push(json_value(row.get_ref(i)?));
            }
            out.push(values);
        }
        Ok(out)
    }

    /// The count, the page and `as_of`, in one read transaction.
    fn read(&self, table: &ServedTable, request: &Request) -> Result<Page, duckdb::Error> {
        self.in_snapshot(|| self.read_in_transaction(table, request))
    }

    fn read_in_transaction(
        &self,
        table: &ServedTable,
        request: &Request,
    ) -> Result<Page, duckdb::Error> {
        let count = query::count_sql(table, request);
        let total: i64 = self.conn.query_row(
            &count.text,
            duckdb::params_from_iter(count.params.iter()),
            |r| r.get(0),
        )?;
        let out = self.rows(&query::page_sql(table, request), table.columns.len())?;
        let as_of = if table.schema == "raw" {
            self.conn
                .query_row(
                    &format!(
                        "SELECT CAST(max(_loaded_at) AS VARCHAR) FROM {}",
                        table.sql_name()
                    ),
                    [],
                    |r| r.get(0),
                )
                .unwrap_or(None)
        } else {
            self.marts_as_of()
        };
        Ok(Page {
            total,
            rows: out,
            as_of,
        })
    }
}

struct Page {
    total: i64,
    rows: Vec<Vec<Json>>,
    as_of: Option<String>,
}

fn json_value(value: duckdb::types::ValueRef<'_>) -> Json {
    use duckdb::types::ValueRef as V;
    match value {
        V::Null => Json::Null,
        V::Boolean(b) => json!(b),
        V::TinyInt(i) => json!(i),
        V::SmallInt(i) => json!(i),
        V::Int(i) => json!(i),
        V::BigInt(i) => json!(i),
        V::UTinyInt(i) => json!(i),
        V::USmallInt(i) => json!(i),
        V::UInt(i) => json!(i),
        V::UBigInt(i) => json!(i),
        V::Float(f) => json!(f),
        V::Double(f) => json!(f),
        V::Text(t) => json!(String::from_utf8_lossy(t)),
        // JSON has no 128-bit integers: hash keys go out as decimal text (which filters take back).
        V::HugeInt(i) => json!(i.to_string()),
        V::UHugeInt(u) => json!(u.to_string()),
        other => json!(format!("{other:?}")),
    }
}

/// A row's order columns as text, which the next page casts back to their types.
fn order_values(row: &[Json], order: &[(usize, bool)]) -> Vec<Option<String>> {
    order
        .iter()
        .map(|(c, _)| match &row[*c] {
            Json::Null => None,
            Json::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        })
        .collect()
}

fn render(
    table: &ServedTable,
    request: &Request,
    mut page: Page,
    path: &str,
    params: &[(String, String)],
    format: Format,
) -> Response {
    let more = page.rows.len() > request.size;
    page.rows.truncate(request.size);
    let next = more
        .then(|| query::encode_token(&order_values(&page.rows[request.size - 1], &request.order)));
    let next_url = next.as_ref().map(|token| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in params.iter().filter(|(k, _)| k != "_next") {
            q.append_pair(k, v);
        }
        q.append_pair("_next", token);
        format!("{path}?{}", q.finish())
    });
    let columns: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
    match format {
        Format::Csv => {
            let mut body = csv_line(columns.iter().map(|c| (*c).to_owned()));
            for row in &page.rows {
                body.push_str(&csv_line(row.iter().map(|v| match v {
                    Json::Null => String::new(),
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                })));
            }
            Response {
                status: 200,
                content_type: "text/csv; charset=utf-8",
                body,
            }
        }
        Format::Json => {
            let rows: Vec<Json> = match request.shape {
                Shape::Arrays => page.rows.into_iter().map(Json::Array).collect(),
                Shape::Objects => page
                    .rows
                    .into_iter()
                    .map(|r| Json::Object(columns.iter().map(|c| (*c).to_owned()).zip(r).collect()))
                    .collect(),
            };
            Response::json(
                200,
                &json!({
                    "table": table.name,
                    "columns": columns,
                    "rows": rows,
                    "total": page.total,
                    "next": next,
                    "next_url": next_url,
                    "as_of": page.as_of,
                }),
            )
        }
    }
}

/// One CSV record (RFC 4180: fields with commas, quotes or line breaks are quoted).
fn csv_line(fields: impl Iterator<Item = String>) -> String {
    let fields: Vec<String> = fields
        .map(|f| {
            if f.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f
            }
        })
        .collect();
    format!("{}\r\n", fields.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_quoting() {
        assert_eq!(
            csv_line(["a".to_owned(), "b,c".to_owned(), "say \"hi\"".to_owned()].into_iter()),
            "a,\"b,c\",\"say \"\"hi\"\"\"\r\n"
        );
    }
}
