//! `playlog check`: data tests over the vault, in the spirit of dbt tests. Each test counts offending rows;
//! zero passes.

use std::time::Duration;

use playlog_sql::{SqlError, SqlSession, Value};

use crate::dialect::Sql;
use crate::model::Model;

/// One data test's outcome.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub name: String,
    pub table: String,
    /// Offending rows (0 passes).
    pub failures: i64,
    pub detail: String,
}

impl CheckResult {
    pub fn passed(&self) -> bool {
        self.failures == 0
    }
}

/// One data test: a query counting the rows that break it.
#[derive(Debug, Clone)]
pub struct DataTest {
    pub name: &'static str,
    /// The vault table it covers (bare name), or `raw.*` for every raw table.
    pub table: String,
    pub query: String,
    /// What it holds true, in words.
    pub detail: String,
}

/// Every data test of the model, in the order `playlog check` runs them.
pub fn data_tests(model: &Model, sql: &Sql, max_age: Duration) -> Vec<DataTest> {
    let v = |t: &str| sql.table("vault", t);
    let mut out = Vec::new();
    let mut keyed: Vec<(String, String)> = Vec::new();
    keyed.extend(model.hubs.iter().map(|h| (h.name.clone(), h.key.clone())));
    keyed.extend(model.links.iter().map(|l| (l.name.clone(), l.key.clone())));
    keyed.extend(
        model
            .transactional_links
            .iter()
            .map(|t| (t.name.clone(), t.key.clone())),
    );
    for (table, key) in &keyed {
        out.push(DataTest {
            name: "unique_key",
            table: table.clone(),
            query: format!("SELECT COUNT(*) - COUNT(DISTINCT {key}) FROM {}", v(table)),
            detail: format!("{key} is unique"),
        });
        out.push(DataTest {
            name: "not_null_key",
            table: table.clone(),
            query: format!("SELECT COUNT(*) FROM {} WHERE {key} IS NULL", v(table)),
            detail: format!("{key} is never NULL"),
        });
    }
    // Referential integrity: every hub key in a link, transactional link or satellite exists in its hub.
    let mut references: Vec<(String, String)> = Vec::new();
    for l in &model.links {
        references.extend(l.hubs.iter().map(|h| (l.name.clone(), h.clone())));
    }
    for t in &model.transactional_links {
        references.extend(t.hubs.iter().map(|h| (t.name.clone(), h.clone())));
    }
    for s in &model.satellites {
        references.push((s.name.clone(), s.parent.clone()));
    }
    for (table, hub_name) in references {
        let Some(hub) = model.hub(&hub_name) else {
            continue;
        };
        out.push(DataTest {
            name: "relationships",
            table: table.clone(),
            query: format!(
                "SELECT COUNT(*) FROM {} x WHERE NOT EXISTS (SELECT 1 FROM {} h WHERE h.{k} = x.{k})",
                v(&table),
                v(&hub.name),
                k = hub.key
            ),
            detail: format!("every {} is in {}", hub.key, hub.name),
        });
    }
    // Hash collisions: one key for two different (standardised) business keys anywhere in the raw data.
    for hub in &model.hubs {
        let bks: Vec<&str> = hub.business_keys.iter().map(String::as_str).collect();
        let standardised: Vec<String> = bks
            .iter()
            .map(|b| format!("COALESCE({}, '^^')", sql.standardise(b)))
            .collect();
        let per_source: Vec<String> = hub
            .sources
            .iter()
            .map(|s| {
                format!(
                    "SELECT {hk} AS hk, CONCAT({std}) AS bk FROM {raw} WHERE {hk} IS NOT NULL",
                    hk = sql.hash_key(&bks),
                    std = standardised.join(", '||', "),
                    raw = sql.table("raw", &model.sources[s].table),
                )
            })
            .collect();
        out.push(DataTest {
            name: "hash_collision",
            table: hub.name.clone(),
            query: format!(
                "SELECT COUNT(*) FROM (SELECT hk FROM (SELECT DISTINCT hk, bk FROM ({})) d GROUP BY hk HAVING COUNT(*) > 1) c",
                per_source.join(" UNION ALL ")
            ),
            detail: format!("{} never maps two business keys", hub.key),
        });
    }
    // Reconciliation: every raw event the vault has been through is in its transactional link.
    for t in &model.transactional_links {
        let source = &model.sources[&t.source];
        out.push(DataTest {
            name: "reconciliation",
            table: t.name.clone(),
            // The events the vault has been through: those below its marks (per topic and partition).
            query: format!(
                "SELECT COUNT(*) FROM (SELECT DISTINCT {id} AS id FROM {raw} r
                   JOIN {marks} m ON m.topic = r._topic AND m.{part} = r._partition AND r._offset < m.next_offset) e
                 WHERE NOT EXISTS (SELECT 1 FROM {nhl} n WHERE n.{key} = {ek})",
                id = t.id,
                raw = sql.table("raw", &source.table),
                marks = v("_staged_offsets"),
                part = sql.quote("partition"),
                nhl = v(&t.name),
                key = t.key,
                ek = sql.hash_key(&["e.id"]),
            ),
            detail: format!("every event of raw.{} is in {}", source.table, t.name),
        });
    }
    // Accepted values.
    for t in &model.transactional_links {
        for (column, accepted) in [
            ("level", "'free', 'paid'"),
            ("from_level", "'free', 'paid'"),
            ("to_level", "'free', 'paid'"),
            ("auth", "'Logged In', 'Logged Out', 'Guest', 'Cancelled'"),
        ] {
            if t.payload.iter().any(|p| p == column) {
                out.push(DataTest {
                    name: "accepted_values",
                    table: t.name.clone(),
                    query: format!("SELECT COUNT(*) FROM {} WHERE {column} IS NULL OR {column} NOT IN ({accepted})", v(&t.name)),
                    detail: format!("{column} in ({accepted})"),
                });
            }
        }
    }
    // Freshness: the newest load, across the raw tables.
    let newest: Vec<String> = model
        .sources
        .values()
        .map(|s| {
            format!(
                "SELECT MAX(_loaded_at) AS l FROM {}",
                sql.table("raw", &s.table)
            )
        })
        .collect();
    out.push(DataTest {
        name: "freshness",
        table: "raw.*".into(),
        query: format!(
            "SELECT CASE WHEN MAX(l) IS NULL OR {age} > {secs} THEN 1 ELSE 0 END FROM ({}) n",
            newest.join(" UNION ALL "),
            age = sql.seconds_between("MAX(l)", sql.now()),
            secs = max_age.as_secs(),
        ),
        detail: format!("newest _loaded_at within {}s", max_age.as_secs()),
    });
    out
}

/// Runs every data test.
pub fn run_checks(
    s: &mut dyn SqlSession,
    model: &Model,
    sql: &Sql,
    max_age: Duration,
) -> Result<Vec<CheckResult>, SqlError> {
    let mut results = Vec::new();
    for test in data_tests(model, sql, max_age) {
        let rows = s.query(&test.query)?;
        let failures = rows
            .first()
            .and_then(|r| r.first())
            .and_then(Value::as_i64)
            .unwrap_or(0);
        results.push(CheckResult {
            name: test.name.to_owned(),
            table: test.table,
            failures,
            detail: test.detail,
        });
    }
    Ok(results)
}
