//! The column catalog: every table the vault reads or writes, with typed columns, known without a
//! warehouse. Raw columns come from the one definition the consumer's batches are built from
//! (`playlog_model::raw_columns`); vault tables follow from the model; marts are spelled out in `marts.rs`.
//! The planner names columns from here (BigQuery has no `INSERT … BY NAME`) and the migrations create and
//! extend tables from here.

use std::collections::BTreeMap;

use playlog_model::Stream;
use playlog_model::raw_columns;

use crate::dialect::{Partition, Type};
use crate::model::{Model, ModelError};

/// A table's columns, in order.
pub type Columns = Vec<(String, Type)>;

/// A permanent table the vault owns.
#[derive(Debug, Clone, PartialEq)]
pub struct TableDef {
    pub schema: &'static str,
    pub name: String,
    pub columns: Columns,
    /// BigQuery layout: the partition column (a DATE, or the day of a TIMESTAMP) and the cluster column.
    pub partition: Option<PartitionBy>,
    pub cluster: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PartitionBy {
    Date(String),
    DayOf(String),
}

impl TableDef {
    pub fn column_names(&self) -> Vec<&str> {
        self.columns.iter().map(|(c, _)| c.as_str()).collect()
    }

    pub fn layout(&self) -> crate::dialect::Layout<'_> {
        crate::dialect::Layout {
            partition: self.partition.as_ref().map(|p| match p {
                PartitionBy::Date(c) => Partition::Date(c),
                PartitionBy::DayOf(c) => Partition::DayOf(c),
            }),
            cluster: self.cluster.as_deref(),
        }
    }
}

/// What the vault knows of its tables' columns.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Per model source: its raw columns, then its derived columns.
    sources: BTreeMap<String, Columns>,
}

const AUDIT: [(&str, Type); 2] = [
    ("load_date", Type::Timestamp),
    ("record_source", Type::Text),
];

fn owned(columns: &[(&str, Type)]) -> Columns {
    columns.iter().map(|(c, t)| ((*c).to_owned(), *t)).collect()
}

impl Catalog {
    /// The catalog of a model over the raw tables Playlog's consumer writes. A source naming a table the
    /// consumer does not write is an error.
    pub fn for_model(model: &Model) -> Result<Catalog, ModelError> {
        let mut sources = BTreeMap::new();
        for (name, source) in &model.sources {
            let stream = Stream::from_topic(&source.table).ok_or_else(|| ModelError::Invalid {
                origin: "model".into(),
                message: format!(
                    "source {name:?} reads table {:?}, which is not a raw table (one of {})",
                    source.table,
                    Stream::ALL.map(|s| s.topic()).join(", ")
                ),
            })?;
            let mut columns: Columns = raw_columns::columns(stream)
                .iter()
                .map(|c| (c.name.to_owned(), Type::from(c.kind)))
                .collect();
            // A derived column that names a raw column has its type; any other expression is text (the
            // shipped model's derived columns are all text).
            for (derived, expr) in &source.columns {
                let t = columns
                    .iter()
                    .find(|(c, _)| c == expr.trim())
                    .map_or(Type::Text, |(_, t)| *t);
                columns.push((derived.clone(), t));
            }
            sources.insert(name.clone(), columns);
        }
        let catalog = Catalog { sources };
        catalog
            .check(model)
            .map_err(|message| ModelError::Invalid {
                origin: "model".into(),
                message,
            })?;
        Ok(catalog)
    }

    /// Every column the model reads exists in the source it reads it from.
    fn check(&self, model: &Model) -> Result<(), String> {
        let has = |source: &str, column: &str, at: &str| {
            let columns = &self.sources[source];
            if columns.iter().any(|(c, _)| c == column) {
                Ok(())
            } else {
                Err(format!(
                    "{at}: source {source:?} has no column {column:?} (it has {})",
                    columns
                        .iter()
                        .map(|(c, _)| c.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        };
        for hub in &model.hubs {
            for source in &hub.sources {
                for bk in &hub.business_keys {
                    has(source, bk, &format!("hub {}", hub.name))?;
                }
            }
        }
        for t in &model.transactional_links {
            has(&t.source, &t.id, &format!("transactional link {}", t.name))?;
            for p in &t.payload {
                has(&t.source, p, &format!("transactional link {}", t.name))?;
            }
        }
        for sat in &model.satellites {
            for feed in sat.feeds() {
                for (_, from) in &feed.columns {
                    has(feed.source, from, &format!("satellite {}", sat.name))?;
                }
            }
        }
        Ok(())
    }

    /// A source column's type; text for a column the catalog does not know (an expression).
    pub fn column_type(&self, source: &str, column: &str) -> Type {
        self.sources
            .get(source)
            .and_then(|cs| cs.iter().find(|(c, _)| c == column))
            .map_or(Type::Text, |(_, t)| *t)
    }

    /// Every vault table of the model, in load order: hubs, links, transactional links, satellites.
    pub fn vault_tables(&self, model: &Model) -> Vec<TableDef> {
        let mut out = Vec::new();
        for hub in &model.hubs {
            let mut columns = vec![(hub.key.clone(), Type::Binary)];
            for bk in &hub.business_keys {
                let t = hub
                    .sources
                    .first()
                    .map_or(Type::Text, |s| self.column_type(s, bk));
                columns.push((bk.clone(), t));
            }
            columns.extend(owned(&AUDIT));
            out.push(TableDef {
                schema: "vault",
                name: hub.name.clone(),
                columns,
                partition: None,
                cluster: Some(hub.key.clone()),
            });
        }
        for link in &model.links {
            let mut columns = vec![(link.key.clone(), Type::Binary)];
            for hub in link.hubs.iter().filter_map(|h| model.hub(h)) {
                columns.push((hub.key.clone(), Type::Binary));
            }
            columns.extend(owned(&AUDIT));
            out.push(TableDef {
                schema: "vault",
                name: link.name.clone(),
                columns,
                partition: None,
                cluster: Some(link.key.clone()),
            });
        }
        for t in &model.transactional_links {
            let mut columns = vec![
                (t.key.clone(), Type::Binary),
                (t.id.clone(), self.column_type(&t.source, &t.id)),
            ];
            for hub in t.hubs.iter().filter_map(|h| model.hub(h)) {
                columns.push((hub.key.clone(), Type::Binary));
            }
            for p in &t.payload {
                columns.push((p.clone(), self.column_type(&t.source, p)));
            }
            columns.extend(owned(&[
                ("_topic", Type::Text),
                ("_partition", Type::Int),
                ("_offset", Type::BigInt),
            ]));
            columns.extend(owned(&AUDIT));
            // Event-grain: partitioned by event day, which the de-duplicating anti-join reads by.
            out.push(TableDef {
                schema: "vault",
                name: t.name.clone(),
                columns,
                partition: Some(PartitionBy::DayOf("ts".into())),
                cluster: Some(t.key.clone()),
            });
        }
        for sat in &model.satellites {
            let parent = model.hub(&sat.parent).map_or("", |h| h.key.as_str());
            let mut columns = vec![
                (parent.to_owned(), Type::Binary),
                ("hashdiff".into(), Type::Binary),
            ];
            let feeds = sat.feeds();
            for p in &sat.payload {
                let t = feeds
                    .first()
                    .and_then(|f| {
                        f.columns
                            .iter()
                            .find(|(name, _)| name == p)
                            .map(|(_, from)| self.column_type(f.source, from))
                    })
                    .unwrap_or(Type::Text);
                columns.push((p.clone(), t));
            }
            if sat.effectivity {
                columns.push(("valid_from".into(), Type::Timestamp));
                columns.push(("valid_to".into(), Type::Timestamp));
            } else {
                columns.push(("effective_from".into(), Type::Timestamp));
            }
            columns.extend(owned(&AUDIT));
            out.push(TableDef {
                schema: "vault",
                name: sat.name.clone(),
                columns,
                partition: None,
                cluster: Some(parent.to_owned()),
            });
        }
        out
    }

    /// The vault's marks: per topic and partition, the next offset no run has staged yet.
    pub fn staged_offsets_table() -> TableDef {
        TableDef {
            schema: "vault",
            name: "_staged_offsets".into(),
            columns: owned(&[
                ("topic", Type::Text),
                ("partition", Type::Int),
                ("next_offset", Type::BigInt),
                ("updated_at", Type::Timestamp),
            ]),
            partition: None,
            cluster: None,
        }
    }

    /// The run log: what each run staged, and the newest load and event times, which prune reads.
    pub fn runs_table() -> TableDef {
        TableDef {
            schema: "vault",
            name: "_runs".into(),
            columns: owned(&[
                ("run_at", Type::Timestamp),
                ("source", Type::Text),
                ("loaded_through", Type::Timestamp),
                ("max_ts", Type::Timestamp),
                ("rows", Type::BigInt),
                ("seconds", Type::Double),
            ]),
            partition: None,
            cluster: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DEFAULT_MODEL;

    #[test]
    fn a_payload_column_missing_from_a_source_is_named() {
        let changed =
            DEFAULT_MODEL.replace("payload = [\"level\"]", "payload = [\"level\", \"auth\"]");
        let model = Model::parse(&changed, "model.toml").expect("model");
        let err = Catalog::for_model(&model)
            .expect_err("auth_events has no auth column")
            .to_string();
        assert!(
            err.contains("satellite sat_user_level: source \"auth\" has no column \"auth\""),
            "{err}"
        );
    }

    #[test]
    fn vault_tables_take_their_types_from_the_raw_catalog() {
        let model = Model::parse(DEFAULT_MODEL, "model.toml").expect("model");
        let catalog = Catalog::for_model(&model).expect("catalog");
        let tables = catalog.vault_tables(&model);
        let hub_user = tables
            .iter()
            .find(|t| t.name == "hub_user")
            .expect("hub_user");
        assert_eq!(
            hub_user.columns,
            owned(&[
                ("user_hk", Type::Binary),
                ("user_id", Type::BigInt),
                ("load_date", Type::Timestamp),
                ("record_source", Type::Text),
            ])
        );
        let listen = tables
            .iter()
            .find(|t| t.name == "nhl_listen")
            .expect("nhl_listen");
        assert!(listen.columns.contains(&("duration".into(), Type::Double)));
        assert!(
            listen
                .columns
                .contains(&("item_in_session".into(), Type::Int))
        );
        let level = tables
            .iter()
            .find(|t| t.name == "sat_user_level")
            .expect("level");
        assert!(
            level
                .columns
                .contains(&("valid_to".into(), Type::Timestamp))
        );
    }
}
