//! The vault's migrations: its tables, the marts and the run log, versioned with the same mechanism as the
//! raw schema (`playlog_sql::migrate`) and recorded in `vault._schema_migrations`.
//!
//! They are generated from the model and the catalog, so a model change is a migration too:
//! - `vault/<table>` (and `marts/<table>`) creates a table with all its columns, and covers the steps
//!   below for a warehouse that gets the table this way;
//! - `vault/<table>/<column>` adds one column to a table made before the column existed (`ADD COLUMN IF
//!   NOT EXISTS`): a satellite that gains a payload column keeps its history, and old rows read NULL there.
//!
//! On DuckDB, `vault/000-…` drops a vault made before the ledger existed (its hash keys were BLOB, now
//! UHUGEINT), so that the next run rebuilds it from raw.
//!
//! Hand-written steps that are not additions (a type change, a backfill) would follow as `NNN-what`.

use playlog_sql::migrate::{Ledger, Migration};

use crate::catalog::{Catalog, TableDef};
use crate::core::Core;
use crate::dialect::Sql;
use crate::model::Model;

pub(crate) fn ledger(sql: &Sql) -> Ledger {
    Ledger {
        table: sql.table("vault", "_schema_migrations"),
        text_type: sql.string_type(),
    }
}

/// The schemas the ledger and the tables live in (nothing to do where datasets are made on open).
pub(crate) fn schemas(sql: &Sql) -> Vec<String> {
    ["vault", "marts"]
        .iter()
        .filter_map(|s| sql.create_schema(s))
        .collect()
}

/// Every migration of a model's vault, in order.
pub(crate) fn migrations(model: &Model, catalog: &Catalog, sql: &Sql) -> Vec<Migration> {
    let core = Core {
        model,
        catalog,
        sql: sql.clone(),
    };
    let mut tables = vec![Catalog::runs_table(), Catalog::staged_offsets_table()];
    tables.extend(catalog.vault_tables(model));
    tables.extend(crate::marts::mart_tables());
    let mut creates = Vec::new();
    if sql.rebuild_vaults_without_ledger() {
        let drops = tables
            .iter()
            .map(|t| format!("DROP TABLE IF EXISTS {}", sql.table(t.schema, &t.name)))
            .collect();
        creates.push(Migration::new(
            "vault/000-rebuild-vaults-made-before-the-ledger",
            drops,
        ));
    }
    let mut columns = Vec::new();
    for def in &tables {
        let name = format!("{}/{}", def.schema, def.name);
        let table = sql.table(def.schema, &def.name);
        let mut statements = vec![sql.create_table(&table, &def.columns, def.layout())];
        if let Some(hub) = model.hubs.iter().find(|h| h.name == def.name) {
            statements.push(core.ghost_row(hub));
        }
        let mut create = Migration::new(&name, statements);
        for (column, t) in &def.columns {
            let step = format!("{name}/{column}");
            create.covers.push(step.clone());
            columns.push(Migration::new(
                step,
                vec![sql.add_column(&table, column, *t)],
            ));
        }
        creates.push(create);
    }
    creates.extend(columns);
    creates
}

/// The tables a model's vault consists of (for `is_built` and the docs).
pub(crate) fn tables(model: &Model, catalog: &Catalog) -> Vec<TableDef> {
    let mut tables = catalog.vault_tables(model);
    tables.extend(crate::marts::mart_tables());
    tables
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DEFAULT_MODEL;
    use playlog_sql::DialectName;
    use playlog_sql::migrate::pending;

    fn shipped() -> (Model, Catalog) {
        let model = Model::parse(DEFAULT_MODEL, "model.toml").expect("model");
        let catalog = Catalog::for_model(&model).expect("catalog");
        (model, catalog)
    }

    #[test]
    fn a_fresh_vault_creates_tables_and_runs_no_column_steps() {
        let (model, catalog) = shipped();
        let sql = Sql::new(DialectName::DuckDb, "");
        let all = migrations(&model, &catalog, &sql);
        let fresh = pending(&all, &[]);
        assert!(
            fresh.iter().all(|m| m.name.matches('/').count() == 1),
            "{:?}",
            fresh.iter().map(|m| &m.name).collect::<Vec<_>>()
        );
        assert_eq!(
            fresh.len(),
            3 + catalog.vault_tables(&model).len() + crate::marts::MART_KEYS.len()
        );
    }

    #[test]
    fn a_payload_column_added_to_the_model_becomes_one_alter() {
        let (model, catalog) = shipped();
        let sql = Sql::new(DialectName::DuckDb, "");
        let before = migrations(&model, &catalog, &sql);
        let mut applied: Vec<String> = before.iter().map(|m| m.name.clone()).collect();
        applied.extend(before.iter().flat_map(|m| m.covers.clone()));
        let changed =
            DEFAULT_MODEL.replace("payload = [\"level\"]", "payload = [\"level\", \"gender\"]");
        assert_ne!(
            changed, DEFAULT_MODEL,
            "the shipped model changed: update this test"
        );
        let model = Model::parse(&changed, "model.toml").expect("model");
        let after = migrations(&model, &catalog, &sql);
        let todo: Vec<(&str, &[String])> = pending(&after, &applied)
            .iter()
            .map(|m| (m.name.as_str(), m.statements.as_slice()))
            .collect();
        assert_eq!(
            todo,
            [(
                "vault/sat_user_level/gender",
                &[
                    "ALTER TABLE vault.sat_user_level ADD COLUMN IF NOT EXISTS \"gender\" VARCHAR"
                        .to_owned()
                ][..]
            )]
        );
    }
}
