//! What only the warehouse knows about the documented tables: their rows, how fresh they are, the last
//! vault run and the data tests' results, read through the warehouse's own sessions (DuckDB or BigQuery).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use playlog_sql::{SqlError, Transact, Value, transaction};
use playlog_vault::docs::Documentation;
use playlog_vault::{CheckResult, Model, Sql};

/// One table as the warehouse holds it now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableState {
    /// `None`: the table does not exist (yet).
    pub rows: Option<i64>,
    /// The newest load into it (`_loaded_at` in raw, `load_date` in the vault), as the warehouse prints it.
    pub newest_load: Option<String>,
}

/// The data tests' latest results.
#[derive(Debug, Clone)]
pub struct TestRun {
    pub results: Vec<CheckResult>,
    pub seconds: f64,
}

/// The warehouse's side of the catalog, at one moment.
#[derive(Debug, Clone)]
pub struct Observed {
    /// When it was read (UTC, RFC 3339).
    pub at: String,
    /// Per `schema.table`.
    pub tables: BTreeMap<String, TableState>,
    /// When the vault last ran (and so when the marts were last brought up to date).
    pub last_vault_run: Option<String>,
    /// `Err`: why the tests could not run (the vault is not built yet, say).
    pub tests: Result<TestRun, String>,
}

/// Reads rows and freshness of every documented table, then runs the data tests (`max_age` bounds the
/// freshness test).
pub fn observe(
    warehouse: &mut dyn Transact,
    doc: &Documentation,
    model: &Model,
    max_age: Duration,
) -> Result<Observed, SqlError> {
    let sql = Sql::for_warehouse(warehouse);
    let mut tables = BTreeMap::new();
    for table in &doc.tables {
        let newest = match table.schema {
            "raw" => Some("_loaded_at"),
            "vault" => Some("load_date"),
            _ => None,
        };
        let query = format!(
            "SELECT COUNT(*), {} FROM {}",
            newest.map_or("NULL".to_owned(), |c| format!(
                "CAST(MAX({c}) AS {})",
                sql.string_type()
            )),
            sql.table(table.schema, &table.name)
        );
        let state = match transaction(warehouse, |s| s.query(&query)) {
            Ok(rows) => {
                let row = rows.into_iter().next().unwrap_or_default();
                TableState {
                    rows: row.first().and_then(Value::as_i64),
                    newest_load: row.get(1).and_then(text),
                }
            }
            // A table that is not there: before the first load or vault run.
            Err(SqlError::Statement(_)) => TableState::default(),
            Err(other) => return Err(other),
        };
        tables.insert(table.full_name(), state);
    }
    let runs = format!(
        "SELECT CAST(MAX(run_at) AS {}) FROM {}",
        sql.string_type(),
        sql.table("vault", "_runs")
    );
    let last_vault_run = match transaction(warehouse, |s| s.query(&runs)) {
        Ok(rows) => rows.first().and_then(|r| r.first()).and_then(text),
        Err(SqlError::Statement(_)) => None,
        Err(other) => return Err(other),
    };
    let tests = if tables.values().any(|t| t.rows.is_none()) {
        Err("the vault is not built yet: run `playlog vault build` (or `playlog consume --vault-every 10s`)".to_owned())
    } else {
        let started = Instant::now();
        match playlog_vault::check(warehouse, model, max_age) {
            Ok(results) => Ok(TestRun {
                results,
                seconds: started.elapsed().as_secs_f64(),
            }),
            Err(SqlError::Statement(e)) => Err(format!("the data tests failed to run: {e}")),
            Err(other) => return Err(other),
        }
    };
    Ok(Observed {
        at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        tables,
        last_vault_run,
        tests,
    })
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::Text(t) => Some(t.clone()),
        _ => None,
    }
}
