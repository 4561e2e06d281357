//! Lineage, raw → vault → marts, read from the run plan itself rather than drawn by hand: whatever the
//! planner makes a table from is what the table comes from. Pure.
//!
//! The plan (in the DuckDB dialect, whose names are plain `schema.table` and `temp.main.table`) is a list
//! of statements. A statement that fills a table (`INSERT INTO`, `CREATE … TABLE … AS`, `MERGE INTO`)
//! makes it from every other table it names. Temp tables are then resolved away, with one rule: a temp
//! table that feeds exactly one permanent table is that table's new rows (the marts read `new_nhl_listen`,
//! which becomes `vault.nhl_listen`), so readers of it depend on that table and not on what made it.

use std::collections::{BTreeMap, BTreeSet};

use playlog_sql::DialectName;

use crate::catalog::Catalog;
use crate::dialect::Sql;
use crate::model::Model;
use crate::plan::Step;

/// One edge: `to` is made from `from` (both `schema.table`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge {
    pub from: String,
    pub to: String,
}

/// Every table-to-table edge of the model's run, between raw, vault and mart tables (the vault's own
/// bookkeeping tables, whose names start with `_`, left out).
pub fn lineage(model: &Model, catalog: &Catalog) -> Vec<Edge> {
    let sql = Sql::new(DialectName::DuckDb, "");
    let mut flows: Vec<(String, BTreeSet<String>)> = Vec::new();
    collect(&crate::plan(model, catalog, &sql), &mut flows);
    resolve(&flows)
}

fn collect(steps: &[Step], out: &mut Vec<(String, BTreeSet<String>)>) {
    for step in steps {
        match step {
            Step::Execute { sql, .. } => {
                if let Some(flow) = flow_of(sql) {
                    out.push(flow);
                }
            }
            Step::Bind { .. } => {}
            Step::When {
                then, otherwise, ..
            } => {
                collect(then, out);
                collect(otherwise, out);
            }
        }
    }
}

/// The table a statement fills and the tables it reads; `None` for statements that fill nothing.
fn flow_of(statement: &str) -> Option<(String, BTreeSet<String>)> {
    let words: Vec<&str> = statement.split_whitespace().collect();
    let target = match words.as_slice() {
        ["INSERT", "INTO", t, ..] | ["MERGE", "INTO", t, ..] => *t,
        [first, rest @ ..] if *first == "CREATE" => {
            let at = rest.iter().position(|w| *w == "TABLE")?;
            rest.get(at + 1)?
        }
        _ => return None,
    };
    let target = table_name(target)?;
    let reads = statement
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .filter_map(table_name)
        .filter(|t| *t != target)
        .collect();
    Some((target, reads))
}

/// A token as a table name, if it is one: `raw.x`, `vault.x`, `marts.x` or `temp.main.x` (as `temp.x`).
fn table_name(token: &str) -> Option<String> {
    let token = token.trim_matches(|c: char| c == '(' || c == ')' || c == ',');
    let mut parts = token.split('.');
    let name = match (parts.next()?, parts.next()?, parts.next()) {
        ("temp", "main", Some(name)) => format!("temp.{name}"),
        (schema @ ("raw" | "vault" | "marts"), name, None) => format!("{schema}.{name}"),
        _ => return None,
    };
    let bare = name.split_once('.').map_or("", |(_, n)| n);
    let plain = !bare.is_empty()
        && !bare.starts_with('_')
        && bare
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    plain.then_some(name)
}

fn is_temp(name: &str) -> bool {
    name.starts_with("temp.")
}

/// Permanent-to-permanent edges, temp tables resolved away.
fn resolve(flows: &[(String, BTreeSet<String>)]) -> Vec<Edge> {
    let mut made_from: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (target, reads) in flows {
        made_from
            .entry(target)
            .or_default()
            .extend(reads.iter().map(String::as_str));
    }
    // A temp table that feeds exactly one permanent table stands for that table's new rows.
    let mut feeds: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (target, reads) in &made_from {
        if !is_temp(target) {
            for read in reads.iter().filter(|r| is_temp(r)) {
                feeds.entry(read).or_default().insert(target);
            }
        }
    }
    let stands_for: BTreeMap<&str, &str> = feeds
        .iter()
        .filter(|(_, targets)| targets.len() == 1)
        .filter_map(|(temp, targets)| targets.first().map(|t| (*temp, *t)))
        .collect();
    let mut edges = BTreeSet::new();
    for (target, reads) in &made_from {
        if is_temp(target) {
            continue;
        }
        let mut sources = BTreeSet::new();
        for read in reads {
            permanent_sources(read, target, &made_from, &stands_for, &mut sources, 0);
        }
        for source in sources.into_iter().filter(|s| s != target) {
            edges.insert(Edge {
                from: source.to_owned(),
                to: (*target).to_owned(),
            });
        }
    }
    edges.into_iter().collect()
}

/// The permanent tables `table` comes from, as read by `reader`.
fn permanent_sources<'a>(
    table: &'a str,
    reader: &str,
    made_from: &BTreeMap<&'a str, BTreeSet<&'a str>>,
    stands_for: &BTreeMap<&'a str, &'a str>,
    out: &mut BTreeSet<&'a str>,
    depth: usize,
) {
    if !is_temp(table) {
        out.insert(table);
        return;
    }
    // The new rows of another table: the reader depends on that table.
    if let Some(stood) = stands_for.get(table)
        && *stood != reader
    {
        out.insert(stood);
        return;
    }
    // Temp tables are made from earlier ones, so this ends; the bound is for a plan that would not.
    if depth > 32 {
        return;
    }
    for source in made_from.get(table).into_iter().flatten() {
        permanent_sources(source, reader, made_from, stands_for, out, depth + 1);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::DEFAULT_MODEL;

    fn shipped() -> Vec<Edge> {
        let model = Model::parse(DEFAULT_MODEL, "model.toml").unwrap();
        let catalog = Catalog::for_model(&model).unwrap();
        lineage(&model, &catalog)
    }

    fn sources_of(edges: &[Edge], to: &str) -> Vec<String> {
        edges
            .iter()
            .filter(|e| e.to == to)
            .map(|e| e.from.clone())
            .collect()
    }

    #[test]
    fn hubs_come_from_the_raw_tables_that_feed_them() {
        let edges = shipped();
        assert_eq!(
            sources_of(&edges, "vault.hub_user"),
            [
                "raw.auth_events",
                "raw.listen_events",
                "raw.offer_events",
                "raw.page_view_events",
                "raw.status_change_events"
            ]
        );
        assert_eq!(sources_of(&edges, "vault.hub_song"), ["raw.listen_events"]);
    }

    #[test]
    fn marts_come_from_the_vault_not_from_raw() {
        let edges = shipped();
        let listens = sources_of(&edges, "marts.listens");
        for needed in [
            "vault.nhl_listen",
            "vault.hub_user",
            "vault.hub_song",
            "vault.sat_user_level",
        ] {
            assert!(listens.contains(&needed.to_owned()), "{listens:?}");
        }
        assert!(
            edges
                .iter()
                .all(|e| !(e.from.starts_with("raw.") && e.to.starts_with("marts."))),
            "{edges:?}"
        );
    }

    #[test]
    fn only_raw_vault_and_mart_tables_appear() {
        for e in shipped() {
            for name in [&e.from, &e.to] {
                assert!(
                    ["raw.", "vault.", "marts."]
                        .iter()
                        .any(|p| name.starts_with(p))
                        && !name.contains("._"),
                    "{e:?}"
                );
            }
            assert_ne!(e.from, e.to);
        }
    }

    #[test]
    fn every_vault_and_mart_table_has_a_source() {
        let model = Model::parse(DEFAULT_MODEL, "model.toml").unwrap();
        let catalog = Catalog::for_model(&model).unwrap();
        let edges = lineage(&model, &catalog);
        for table in crate::migrations::tables(&model, &catalog) {
            let name = format!("{}.{}", table.schema, table.name);
            assert!(
                edges.iter().any(|e| e.to == name),
                "{name} has no source in {edges:?}"
            );
        }
    }

    #[test]
    fn statements_that_fill_nothing_make_no_flow() {
        assert_eq!(
            flow_of("DELETE FROM marts.listens WHERE x IN (SELECT 1 FROM vault.a)"),
            None
        );
        let (target, reads) =
            flow_of("CREATE OR REPLACE TEMP TABLE temp.main.s AS SELECT * FROM raw.listen_events r JOIN vault._staged_offsets m ON 1").unwrap();
        assert_eq!(target, "temp.s");
        assert_eq!(reads.into_iter().collect::<Vec<_>>(), ["raw.listen_events"]);
    }
}
