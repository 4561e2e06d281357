//! The whole generated SQL for the shipped model, per dialect, as committed snapshots
//! (`vault/tests/snapshots/`). A change to the model, the planner or a dialect shows up here as a readable
//! SQL diff: review it like code, then accept it with `cargo insta review` (or `INSTA_UPDATE=always`).

use playlog_sql::DialectName;
use playlog_vault::{Catalog, DEFAULT_MODEL, Model, Sql, migration_plan, plan};

fn shipped() -> (Model, Catalog) {
    let model = Model::parse(DEFAULT_MODEL, "schemas/vault/model.toml").expect("the shipped model");
    let catalog = Catalog::for_model(&model).expect("its catalog");
    (model, catalog)
}

#[test]
fn duckdb_run() {
    let (model, catalog) = shipped();
    let sql = Sql::new(DialectName::DuckDb, "");
    insta::assert_snapshot!(playlog_vault::plan::render(&plan(&model, &catalog, &sql)));
}

#[test]
fn bigquery_run() {
    let (model, catalog) = shipped();
    let sql = Sql::new(DialectName::BigQuery, "project.playlog_");
    insta::assert_snapshot!(playlog_vault::plan::render(&plan(&model, &catalog, &sql)));
}

#[test]
fn duckdb_migrations() {
    let (model, catalog) = shipped();
    let sql = Sql::new(DialectName::DuckDb, "");
    insta::assert_snapshot!(migration_plan(&model, &catalog, &sql));
}

#[test]
fn bigquery_migrations() {
    let (model, catalog) = shipped();
    let sql = Sql::new(DialectName::BigQuery, "project.playlog_");
    insta::assert_snapshot!(migration_plan(&model, &catalog, &sql));
}
