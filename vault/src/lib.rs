//! An incremental, insert-only Data Vault 2.0 core and wide marts, generated from the declarative model in
//! `schemas/vault/model.toml`, plus data tests (`playlog check`).
//!
//! A run stages the raw rows loaded since the last run (a high-water mark per source, in `vault._runs`),
//! loads hubs, links, transactional links and satellites from them, brings the marts up to date, and
//! commits all of it in one transaction: a crash midway leaves the previous state intact, and a second run
//! with no new data changes nothing.

mod catalog;
mod check;
mod core;
mod dialect;
pub mod docs;
mod execute;
pub mod lineage;
mod marts;
pub mod metrics;
mod migrations;
pub mod model;
pub mod plan;
mod report;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use playlog_sql::{SqlError, SqlSession, Transact, Value, autocommit, transaction};

pub use catalog::Catalog;
pub use check::{CheckResult, DataTest, data_tests};
pub use dialect::{Dialect, Sql};
pub use marts::{CONVERSION_DAYS, MART_KEYS};
pub use metrics::VaultMetrics;
pub use model::{DEFAULT_MODEL, Model, ModelError};
pub use plan::Step;
pub use report::{Section, render};

/// What one run did.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// Raw rows staged per source.
    pub staged: BTreeMap<String, u64>,
    /// Rows inserted (or rebuilt) per table, in load order.
    pub changed: Vec<(String, usize)>,
    pub seconds: f64,
}

impl RunReport {
    pub fn staged_rows(&self) -> u64 {
        self.staged.values().sum()
    }

    /// Rows inserted into vault tables (not marts).
    pub fn vault_rows(&self) -> usize {
        self.changed
            .iter()
            .filter(|(t, _)| t.starts_with("vault."))
            .map(|(_, n)| n)
            .sum()
    }
}

/// The plan of one run, for a model over a catalog in one dialect: pure, no warehouse. The run stages the
/// raw rows loaded since each source's mark, loads hubs, links, transactional links and satellites from
/// them, brings the marts up to date and records the new marks; with nothing staged it ends after
/// staging.
pub fn plan(model: &Model, catalog: &Catalog, sql: &Sql) -> Vec<Step> {
    use plan::{ELAPSED_SECONDS, ParamType, param};
    let core = core::Core {
        model,
        catalog,
        sql: sql.clone(),
    };
    let marts = marts::Marts { sql: sql.clone() };
    let mut steps: Vec<Step> = sql
        .session_settings()
        .iter()
        .map(|s| Step::execute(*s))
        .collect();
    // Every source's marks in one scan of the run log: the newest load time and event time earlier runs
    // staged.
    let runs = sql.table("vault", "_runs");
    let mut reads = Vec::new();
    let mut params = Vec::new();
    for source in model.sources.keys() {
        for (column, what) in [("loaded_through", "mark"), ("max_ts", "event_mark")] {
            reads.push(format!(
                "COALESCE(MAX(CASE WHEN source = {name} THEN {column} END), {begin})",
                begin = sql.beginning_of_time(),
                name = sql.string(source),
            ));
            params.push((format!("{source}.{what}"), ParamType::Timestamp));
        }
    }
    steps.push(Step::Bind {
        sql: format!("SELECT {} FROM {runs}", reads.join(", ")),
        params,
        staged: None,
    });
    steps.extend(core.ranges());
    for source in model.sources.keys() {
        steps.extend(core.stage(source));
    }
    let counts: Vec<String> = model.sources.keys().map(|s| core::p(s, "rows")).collect();
    steps.push(Step::bind(
        format!("SELECT {}", counts.join(" + ")),
        &[("staged_rows", ParamType::Int)],
    ));
    let mut load = Vec::new();
    load.extend(model.hubs.iter().map(|h| core.load_hub(h)));
    load.extend(model.links.iter().map(|l| core.load_link(l)));
    for t in &model.transactional_links {
        load.extend(core.load_transactional(t));
    }
    for sat in &model.satellites {
        load.extend(core.load_satellite(sat));
    }
    load.extend(marts.update());
    for source in model.sources.keys() {
        load.push(Step::when(
            &format!("{source}.rows"),
            vec![Step::execute(format!(
                "INSERT INTO {runs} (run_at, source, loaded_through, max_ts, {rows}, seconds) \
                 VALUES ({now}, {name}, {through}, {max_ts}, {count}, {elapsed})",
                rows = sql.quote("rows"),
                now = sql.now(),
                name = sql.string(source),
                through = core::p(source, "max_loaded_at"),
                max_ts = core::p(source, "max_ts"),
                count = core::p(source, "rows"),
                elapsed = param(ELAPSED_SECONDS),
            ))],
        ));
    }
    load.push(core.advance_marks());
    steps.push(Step::when("staged_rows", load));
    steps
}

/// Every migration of a model's vault, printed for review: name, then statements (the tables, the marts,
/// the run log, and the column steps a table made earlier would need).
pub fn migration_plan(model: &Model, catalog: &Catalog, sql: &Sql) -> String {
    let mut out = String::new();
    for m in migrations::migrations(model, catalog, sql) {
        out.push_str(&format!("-- {}\n", m.name));
        for statement in &m.statements {
            out.push_str(statement);
            out.push_str(";\n");
        }
    }
    out
}

/// Applies the vault's pending migrations (its tables, the marts, the run log); returns their names.
/// `playlog migrate` runs this; so does every run, where it costs one read of the ledger.
pub fn migrate(warehouse: &mut dyn Transact, model: &Model) -> Result<Vec<String>, SqlError> {
    let sql = Sql::for_warehouse(warehouse);
    let catalog = Catalog::for_model(model).map_err(|e| SqlError::Warehouse(e.to_string()))?;
    let schemas = migrations::schemas(&sql);
    if !schemas.is_empty() {
        autocommit(warehouse, |s| {
            for ddl in &schemas {
                s.execute(ddl)?;
            }
            Ok(())
        })?;
    }
    let all = migrations::migrations(model, &catalog, &sql);
    // A vault an older Playlog made: a run log but no ledger (probed only where the rebuild applies).
    let legacy = sql.rebuild_vaults_without_ledger()
        && !exists(warehouse, &migrations::ledger(&sql).table)?
        && exists(warehouse, &sql.table("vault", "_runs"))?;
    let applied = playlog_sql::migrate::apply(
        warehouse,
        &migrations::ledger(&sql),
        &all,
        sql.transactional_ddl(),
    )?;
    for name in &applied {
        tracing::info!(migration = name.as_str(), "vault migration applied");
    }
    if legacy && applied.iter().any(|n| n.starts_with("vault/000-")) {
        // The next run takes as long as a first build: say why.
        tracing::warn!(
            "a vault made before the migration ledger was dropped (its hash keys were BLOB, now UHUGEINT); the vault run that follows rebuilds it from raw, as long as a first build"
        );
    }
    Ok(applied)
}

/// Before a run: applies pending migrations where the dialect migrates implicitly (DuckDB); elsewhere
/// (BigQuery) checks that none is pending, and names the missing tables and the command that creates them.
pub fn prepare(warehouse: &mut dyn Transact, model: &Model) -> Result<(), SqlError> {
    if warehouse.dialect().migrates_implicitly() {
        migrate(warehouse, model)?;
        return Ok(());
    }
    let sql = Sql::for_warehouse(warehouse);
    let catalog = Catalog::for_model(model).map_err(|e| SqlError::Warehouse(e.to_string()))?;
    let all = migrations::migrations(model, &catalog, &sql);
    let unapplied = playlog_sql::migrate::unapplied(warehouse, &migrations::ledger(&sql), &all)?;
    if unapplied.is_empty() {
        return Ok(());
    }
    Err(SqlError::Warehouse(format!(
        "the vault in {} has migrations not applied: {}. Run `playlog migrate` with the same --warehouse (or start the consumer with --migrate) as an account that may create tables",
        warehouse.schema_prefix(),
        playlog_sql::migrate::describe(&unapplied)
    )))
}

/// Runs the vault once: new raw rows into the core and the marts, in one transaction (after
/// [`prepare`]: applying pending migrations on DuckDB, checking that none is pending on BigQuery).
pub fn run(warehouse: &mut dyn Transact, model: &Model) -> Result<RunReport, SqlError> {
    let started = Instant::now();
    prepare(warehouse, model)?;
    let migrated = started.elapsed();
    let sql = Sql::for_warehouse(warehouse);
    let catalog = Catalog::for_model(model).map_err(|e| SqlError::Warehouse(e.to_string()))?;
    let steps = plan(model, &catalog, &sql);
    let outcome = transaction(warehouse, |session| {
        let s = &mut Timed(session);
        let mut executor = execute::Executor::new(&sql, started);
        executor.run(s, &steps)?;
        tracing::debug!(
            ms = started.elapsed().as_millis() as u64,
            "vault run's statements done; committing"
        );
        Ok(executor.outcome)
    })?;
    tracing::debug!(
        migrate_ms = migrated.as_millis() as u64,
        total_ms = started.elapsed().as_millis() as u64,
        "vault run committed"
    );
    Ok(RunReport {
        staged: outcome.staged,
        changed: outcome.changed,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The first column of a query's first row, as text; `None` for no row or NULL.
pub(crate) fn first_value(s: &mut dyn SqlSession, query: &str) -> Result<Option<String>, SqlError> {
    Ok(s.query(query)?
        .first()
        .and_then(|r| r.first())
        .filter(|v| !matches!(v, Value::Null))
        .map(Value::to_string))
}

/// Logs each statement's time at debug level (`PLAYLOG_LOG=playlog_vault=debug`): where a run's time goes.
struct Timed<'a>(&'a mut dyn SqlSession);

impl Timed<'_> {
    fn timed<T>(&mut self, sql: &str, f: impl FnOnce(&mut dyn SqlSession) -> T) -> T {
        let started = Instant::now();
        let out = f(&mut *self.0);
        let head: String = sql
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(100)
            .collect();
        tracing::debug!(
            ms = started.elapsed().as_millis() as u64,
            sql = head,
            "vault statement"
        );
        out
    }
}

impl SqlSession for Timed<'_> {
    fn execute(&mut self, sql: &str) -> Result<usize, SqlError> {
        self.timed(sql, |s| s.execute(sql))
    }

    fn query(&mut self, sql: &str) -> Result<playlog_sql::Rows, SqlError> {
        self.timed(sql, |s| s.query(sql))
    }

    fn columns(&mut self, table: &str) -> Result<Vec<String>, SqlError> {
        self.0.columns(table)
    }
}

/// Forgets the vault's marks (the next offset it has staged, per topic and partition), so that the next
/// run stages raw from each partition's beginning: what a move of the consumer to another Kafka log
/// needs (`playlog consume --reset-offsets`), where offsets restart below the marks. Rows staged again
/// are loaded only where new (hubs, links and change points are keyed), so the run that follows costs
/// about as much as a first build and changes nothing already loaded. Returns the marks forgotten.
pub fn forget_marks(warehouse: &mut dyn Transact) -> Result<usize, SqlError> {
    let sql = Sql::for_warehouse(warehouse);
    let marks = sql.table("vault", "_staged_offsets");
    if !exists(warehouse, &marks)? {
        return Ok(0);
    }
    transaction(warehouse, |s| {
        s.execute(&format!("DELETE FROM {marks} WHERE true"))
    })
}

/// Whether a table exists (a catalog error, not a failure, when it does not).
fn exists(warehouse: &mut dyn Transact, table: &str) -> Result<bool, SqlError> {
    match transaction(warehouse, |s| s.columns(table)) {
        Ok(_) => Ok(true),
        Err(SqlError::Statement(_)) => Ok(false),
        Err(other) => Err(other),
    }
}

/// Whether a vault has been built in this warehouse (every table of the model and the marts exists), so that
/// `check` and `report` can say "run `playlog vault build` first" instead of a catalog error.
pub fn is_built(warehouse: &mut dyn Transact, model: &Model) -> Result<bool, SqlError> {
    let sql = Sql::for_warehouse(warehouse);
    let catalog = Catalog::for_model(model).map_err(|e| SqlError::Warehouse(e.to_string()))?;
    let tables: Vec<String> = migrations::tables(model, &catalog)
        .iter()
        .map(|t| sql.table(t.schema, &t.name))
        .collect();
    for table in tables {
        if !exists(warehouse, &table)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Runs the data tests; `max_age` bounds how old the newest raw load may be.
pub fn check(
    warehouse: &mut dyn Transact,
    model: &Model,
    max_age: Duration,
) -> Result<Vec<CheckResult>, SqlError> {
    let sql = Sql::for_warehouse(warehouse);
    transaction(warehouse, |s| check::run_checks(s, model, &sql, max_age))
}

/// A short report from the marts (run `run` first).
pub fn report(warehouse: &mut dyn Transact) -> Result<Vec<report::Section>, SqlError> {
    let sql = Sql::for_warehouse(warehouse);
    transaction(warehouse, |s| report::sections(s, &sql))
}
