//! An incremental, insert-only Data Vault 2.0 core and wide marts, generated from the declarative model in
//! `schemas/vault/model.toml`, plus data tests (`playlog check`).
//!
//! A run stages the raw rows loaded since the last run (a high-water mark per source, in `vault._runs`),
//! loads hubs, links, transactional links and satellites from them, brings the marts up to date, and
//! commits all of it in one transaction: a crash midway leaves the previous state intact, and a second run
//! with no new data changes nothing.

mod check;
mod core;
mod dialect;
mod marts;
pub mod metrics;
pub mod model;
mod report;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use playlog_sql::{SqlError, SqlSession, Transact, Value, autocommit, transaction};

pub use check::CheckResult;
pub use dialect::Sql;
pub use metrics::VaultMetrics;
pub use model::{DEFAULT_MODEL, Model, ModelError};
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

/// Runs the vault once: new raw rows into the core and the marts, in one transaction.
pub fn run(warehouse: &mut dyn Transact, model: &Model) -> Result<RunReport, SqlError> {
    let started = Instant::now();
    let sql = Sql::for_warehouse(warehouse);
    let core = core::Core {
        model,
        sql: sql.clone(),
    };
    let marts = marts::Marts { sql: sql.clone() };
    let sql = &sql;
    // DDL first, outside the run's transaction: BigQuery allows no DDL inside one. Every statement is
    // idempotent, so a crash between the two leaves nothing to undo.
    autocommit(warehouse, |session| {
        let s = &mut Timed(session);
        for setting in sql.session_settings() {
            s.execute(setting)?;
        }
        core.create_tables(s)?;
        marts.create_tables(s)
    })?;
    let mut report = transaction(warehouse, |session| {
        let s = &mut Timed(session);
        let mut report = RunReport::default();
        let previous = s.query(&format!(
            "SELECT source, MAX(loaded_through), MAX(max_ts) FROM {} GROUP BY source",
            sql.table("vault", "_runs")
        ))?;
        let mut marks = BTreeMap::new();
        let mut event_marks = BTreeMap::new();
        for row in previous {
            if let [Value::Text(source), Value::Text(loaded), Value::Text(ts)] = row.as_slice() {
                marks.insert(source.clone(), sql.timestamp(loaded));
                event_marks.insert(source.clone(), sql.timestamp(ts));
            }
        }
        let mut staged = BTreeMap::new();
        for source in model.sources.keys() {
            let after = marks
                .get(source)
                .cloned()
                .unwrap_or_else(|| sql.beginning_of_time());
            if let Some(st) = core.stage(s, source, &after)? {
                report.staged.insert(source.clone(), st.rows);
                staged.insert(source.clone(), st);
            }
        }
        if staged.is_empty() {
            return Ok(report);
        }
        for hub in &model.hubs {
            report
                .changed
                .push((format!("vault.{}", hub.name), core.load_hub(s, hub)?));
        }
        for link in &model.links {
            report
                .changed
                .push((format!("vault.{}", link.name), core.load_link(s, link)?));
        }
        for t in &model.transactional_links {
            let n = match staged.get(&t.source) {
                Some(st) => core.load_transactional(s, t, st)?,
                None => core.load_transactional(s, t, &core::Staged::nothing(sql))?,
            };
            report.changed.push((format!("vault.{}", t.name), n));
        }
        for sat in &model.satellites {
            report.changed.push((
                format!("vault.{}", sat.name),
                core.load_satellite(s, sat, &marks, &event_marks)?,
            ));
        }
        report.changed.extend(marts.update(s)?);
        let seconds = started.elapsed().as_secs_f64();
        for (source, st) in &staged {
            s.execute(&format!(
                "INSERT INTO {} VALUES ({}, {}, {}, {}, {}, {seconds})",
                sql.table("vault", "_runs"),
                sql.now(),
                sql.string(source),
                st.max_loaded_at,
                st.max_ts,
                st.rows
            ))?;
        }
        Ok(report)
    })?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
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

/// Whether a vault has been built in this warehouse (its first hub and the marts' top songs exist), so that
/// `check` and `report` can say "run `playlog vault build` first" instead of a catalog error.
pub fn is_built(warehouse: &mut dyn Transact, model: &Model) -> Result<bool, SqlError> {
    let sql = Sql::for_warehouse(warehouse);
    let mut tables = vec![sql.table("marts", "top_songs_daily")];
    if let Some(hub) = model.hubs.first() {
        tables.push(sql.table("vault", &hub.name));
    }
    for table in tables {
        match transaction(warehouse, |s| s.columns(&table)) {
            Ok(_) => {}
            Err(SqlError::Statement(_)) => return Ok(false),
            Err(other) => return Err(other),
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
