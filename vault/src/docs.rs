//! What the data catalog documents, known from the model alone: every raw, vault and mart table, with
//! its columns, their types in a dialect and their descriptions (`schemas/vault/model.toml`), the data
//! tests that cover it, and lineage. Pure; `playlog docs` and `/catalog` add what only the warehouse
//! knows (rows, freshness, test results).

use std::time::Duration;

use playlog_model::Stream;
use playlog_model::raw_columns::{self, PERSONAL};

use crate::catalog::{Catalog, TableDef};
use crate::dialect::{Sql, Type};
use crate::lineage::Edge;
use crate::model::Model;

/// A documented table.
#[derive(Debug, Clone)]
pub struct DocTable {
    /// `raw`, `vault` or `marts`.
    pub schema: &'static str,
    pub name: String,
    /// What kind of table: raw table, hub, link, transactional link, satellite, effectivity satellite, mart.
    pub kind: &'static str,
    pub description: String,
    pub columns: Vec<DocColumn>,
    /// The data tests over it: their name and what they hold true.
    pub tests: Vec<(String, String)>,
}

impl DocTable {
    /// `schema.name`, as lineage names it.
    pub fn full_name(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

#[derive(Debug, Clone)]
pub struct DocColumn {
    pub name: String,
    pub sql_type: &'static str,
    pub description: String,
    /// It identifies a person (served by the API only with `--expose-raw`).
    pub personal: bool,
}

/// The catalog's content.
#[derive(Debug, Clone)]
pub struct Documentation {
    pub tables: Vec<DocTable>,
    pub lineage: Vec<Edge>,
}

impl Documentation {
    /// Columns and tables without a description, as `schema.table[.column]`.
    pub fn undescribed(&self) -> Vec<String> {
        let mut out = Vec::new();
        for t in &self.tables {
            if t.description.is_empty() {
                out.push(t.full_name());
            }
            for c in t.columns.iter().filter(|c| c.description.is_empty()) {
                out.push(format!("{}.{}", t.full_name(), c.name));
            }
        }
        out
    }
}

/// Documents the model's tables in `sql`'s dialect; `max_age` is the freshness test's bound.
pub fn document(model: &Model, catalog: &Catalog, sql: &Sql, max_age: Duration) -> Documentation {
    let tests = crate::check::data_tests(model, sql, max_age);
    let tests_of = |table: &str, schema: &str| -> Vec<(String, String)> {
        tests
            .iter()
            .filter(|t| t.table == table || (schema == "raw" && t.table == "raw.*"))
            .map(|t| (t.name.to_owned(), t.detail.clone()))
            .collect()
    };
    let column = |name: &str, t: Type, own: Option<&String>| DocColumn {
        name: name.to_owned(),
        sql_type: sql.type_name(t),
        description: own
            .or_else(|| model.columns.get(name))
            .cloned()
            .unwrap_or_default(),
        personal: PERSONAL.contains(&name),
    };
    let mut tables = Vec::new();
    for source in model.sources.values() {
        let Some(stream) = Stream::from_topic(&source.table) else {
            continue; // Catalog::for_model refuses such a model
        };
        tables.push(DocTable {
            schema: "raw",
            name: source.table.clone(),
            kind: "raw table",
            description: source.description.clone().unwrap_or_default(),
            columns: raw_columns::columns(stream)
                .iter()
                .map(|c| column(c.name, Type::from(c.kind), None))
                .collect(),
            tests: tests_of(&source.table, "raw"),
        });
    }
    let described = |name: &str| -> (&'static str, Option<&String>) {
        if let Some(h) = model.hubs.iter().find(|h| h.name == name) {
            ("hub", h.description.as_ref())
        } else if let Some(l) = model.links.iter().find(|l| l.name == name) {
            ("link", l.description.as_ref())
        } else if let Some(t) = model.transactional_links.iter().find(|t| t.name == name) {
            ("transactional link", t.description.as_ref())
        } else if let Some(s) = model.satellites.iter().find(|s| s.name == name) {
            let kind = if s.effectivity {
                "effectivity satellite"
            } else {
                "satellite"
            };
            (kind, s.description.as_ref())
        } else {
            ("table", None)
        }
    };
    let columns_of = |t: &TableDef, own: &dyn Fn(&str) -> Option<String>| -> Vec<DocColumn> {
        t.columns
            .iter()
            .map(|(c, ty)| column(c, *ty, own(c).as_ref()))
            .collect()
    };
    for t in catalog.vault_tables(model) {
        let (kind, description) = described(&t.name);
        tables.push(DocTable {
            schema: "vault",
            kind,
            description: description.cloned().unwrap_or_default(),
            columns: columns_of(&t, &|_| None),
            tests: tests_of(&t.name, "vault"),
            name: t.name,
        });
    }
    for t in crate::marts::mart_tables() {
        let doc = model.marts.get(&t.name);
        tables.push(DocTable {
            schema: "marts",
            kind: "mart",
            description: doc.map(|d| d.description.clone()).unwrap_or_default(),
            columns: columns_of(&t, &|c| doc.and_then(|d| d.columns.get(c)).cloned()),
            tests: tests_of(&t.name, "marts"),
            name: t.name,
        });
    }
    Documentation {
        tables,
        lineage: crate::lineage::lineage(model, catalog),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::DEFAULT_MODEL;
    use playlog_sql::DialectName;

    fn shipped() -> Documentation {
        let model = Model::parse(DEFAULT_MODEL, "model.toml").unwrap();
        let catalog = Catalog::for_model(&model).unwrap();
        document(
            &model,
            &catalog,
            &Sql::new(DialectName::DuckDb, ""),
            Duration::from_secs(300),
        )
    }

    #[test]
    fn the_shipped_model_describes_every_table_and_column() {
        assert_eq!(shipped().undescribed(), Vec::<String>::new());
    }

    #[test]
    fn every_raw_vault_and_mart_table_is_documented() {
        let doc = shipped();
        let names: Vec<String> = doc.tables.iter().map(DocTable::full_name).collect();
        for expected in [
            "raw.listen_events",
            "vault.hub_user",
            "vault.nhl_listen",
            "vault.sat_user_level",
            "marts.listens",
            "marts.level_changes",
        ] {
            assert!(names.contains(&expected.to_owned()), "{names:?}");
        }
        let level = doc
            .tables
            .iter()
            .find(|t| t.name == "sat_user_level")
            .unwrap();
        assert_eq!(level.kind, "effectivity satellite");
    }

    #[test]
    fn tests_attach_to_the_tables_they_cover() {
        let doc = shipped();
        let hub = doc.tables.iter().find(|t| t.name == "hub_user").unwrap();
        let names: Vec<&str> = hub.tests.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"unique_key") && names.contains(&"hash_collision"));
        let raw = doc
            .tables
            .iter()
            .find(|t| t.name == "listen_events")
            .unwrap();
        assert!(raw.tests.iter().any(|(n, _)| n == "freshness"));
    }

    #[test]
    fn a_mart_may_say_more_about_a_shared_column() {
        let doc = shipped();
        let level = |table: &str| {
            doc.tables
                .iter()
                .find(|t| t.name == table)
                .unwrap()
                .columns
                .iter()
                .find(|c| c.name == "level")
                .unwrap()
                .description
                .clone()
        };
        assert_ne!(level("listens"), level("nhl_listen"));
        let personal = doc
            .tables
            .iter()
            .find(|t| t.name == "listens")
            .unwrap()
            .columns
            .iter()
            .filter(|c| c.personal)
            .count();
        assert_eq!(personal, 5, "first_name, last_name, zip, lat, lon");
    }

    #[test]
    fn an_unknown_mart_is_an_error_naming_it() {
        let text = format!("{DEFAULT_MODEL}\n[marts.lisens]\ndescription = \"typo\"\n");
        let e = Model::parse(&text, "m.toml").unwrap_err().to_string();
        assert!(e.contains("marts.lisens") && e.contains("listens"), "{e}");
    }
}
