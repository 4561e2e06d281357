//! The declarative vault model (`schemas/vault/model.toml`): sources, hubs, links, transactional links and
//! satellites. Read strictly: unknown keys and dangling references are errors naming where they are.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The model shipped with Playlog.
pub const DEFAULT_MODEL: &str = include_str!("../../schemas/vault/model.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    pub sources: BTreeMap<String, Source>,
    #[serde(default)]
    pub hubs: Vec<Hub>,
    #[serde(default)]
    pub links: Vec<Link>,
    #[serde(default)]
    pub transactional_links: Vec<TransactionalLink>,
    #[serde(default)]
    pub satellites: Vec<Satellite>,
    /// What each mart holds, for the data catalog (the marts themselves are defined in `marts.rs`).
    #[serde(default)]
    pub marts: BTreeMap<String, MartDoc>,
    /// What each column holds, wherever it appears (raw, vault and marts share names on purpose).
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
}

/// A mart's description, and columns whose meaning differs there from the shared one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MartDoc {
    pub description: String,
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
}

/// A raw table, with derived columns (SQL expressions over its row).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// What the table holds, for the data catalog.
    #[serde(default)]
    pub description: Option<String>,
    /// The table in the raw schema; its Kafka topic has the same name.
    pub table: String,
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hub {
    /// What the table holds, for the data catalog.
    #[serde(default)]
    pub description: Option<String>,
    pub name: String,
    pub key: String,
    pub business_keys: Vec<String>,
    pub sources: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// What the table holds, for the data catalog.
    #[serde(default)]
    pub description: Option<String>,
    pub name: String,
    pub key: String,
    pub hubs: Vec<String>,
    pub sources: Vec<String>,
}

/// A non-historised link: one row per event, keyed by the hash of the event id.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransactionalLink {
    /// What the table holds, for the data catalog.
    #[serde(default)]
    pub description: Option<String>,
    pub name: String,
    pub key: String,
    /// The source column that identifies the event (its hash is `key`): `event_id` unless said otherwise.
    #[serde(default = "event_id")]
    pub id: String,
    pub source: String,
    pub hubs: Vec<String>,
    pub payload: Vec<String>,
}

fn event_id() -> String {
    "event_id".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Satellite {
    /// What the table holds, for the data catalog.
    #[serde(default)]
    pub description: Option<String>,
    pub name: String,
    pub parent: String,
    pub payload: Vec<String>,
    pub sources: Vec<String>,
    /// Also keep valid_from/valid_to (an effectivity satellite).
    #[serde(default)]
    pub effectivity: bool,
    /// Sources whose payload columns come from other columns, or take effect later than the event.
    #[serde(default)]
    pub extra_sources: Vec<SatelliteSource>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SatelliteSource {
    pub source: String,
    /// Payload column → the source column (or derived column) that feeds it.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// Milliseconds after the event at which its values take effect.
    #[serde(default)]
    pub effective_after_ms: i64,
}

/// One feed of a satellite: a source, how payload columns map onto it, and when its values take effect.
#[derive(Debug, Clone)]
pub struct Feed<'a> {
    pub source: &'a str,
    pub columns: Vec<(&'a str, &'a str)>,
    pub effective_after_ms: i64,
}

impl Satellite {
    /// Every source feeding the satellite, with payload columns mapped.
    pub fn feeds(&self) -> Vec<Feed<'_>> {
        let plain = self.sources.iter().map(|s| Feed {
            source: s,
            columns: self
                .payload
                .iter()
                .map(|c| (c.as_str(), c.as_str()))
                .collect(),
            effective_after_ms: 0,
        });
        let extra = self.extra_sources.iter().map(|e| Feed {
            source: &e.source,
            columns: self
                .payload
                .iter()
                .map(|c| {
                    (
                        c.as_str(),
                        e.columns.get(c).map_or(c.as_str(), String::as_str),
                    )
                })
                .collect(),
            effective_after_ms: e.effective_after_ms,
        });
        plain.chain(extra).collect()
    }
}

/// A model that does not hold together.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("vault model {origin}: {path}: {message}")]
    Parse {
        origin: String,
        path: String,
        message: String,
    },
    #[error("vault model {origin}: {message}")]
    Invalid { origin: String, message: String },
}

impl Model {
    /// Parses and checks a model; `origin` names it in errors (a file path).
    pub fn parse(text: &str, origin: &str) -> Result<Model, ModelError> {
        let deserializer = toml::Deserializer::parse(text).map_err(|e| ModelError::Parse {
            origin: origin.to_owned(),
            path: "(syntax)".into(),
            message: e.to_string(),
        })?;
        let model: Model =
            serde_path_to_error::deserialize(deserializer).map_err(|e| ModelError::Parse {
                origin: origin.to_owned(),
                path: e.path().to_string(),
                message: e.inner().message().to_owned(),
            })?;
        model.validate().map_err(|message| ModelError::Invalid {
            origin: origin.to_owned(),
            message,
        })?;
        Ok(model)
    }

    pub fn hub(&self, name: &str) -> Option<&Hub> {
        self.hubs.iter().find(|h| h.name == name)
    }

    /// The hubs whose keys a source's staging computes: those that list it.
    pub fn hubs_of_source(&self, source: &str) -> impl Iterator<Item = &Hub> {
        self.hubs
            .iter()
            .filter(move |h| h.sources.iter().any(|s| s == source))
    }

    fn validate(&self) -> Result<(), String> {
        let source = |s: &str, at: &str| {
            if self.sources.contains_key(s) {
                Ok(())
            } else {
                Err(format!(
                    "{at}: unknown source {s:?} (sources: {:?})",
                    self.sources.keys().collect::<Vec<_>>()
                ))
            }
        };
        // A hub used on a source must be computed there: it must list that source.
        let hub_on = |h: &str, s: &str, at: &str| match self.hub(h) {
            None => Err(format!("{at}: unknown hub {h:?}")),
            Some(hub) if !hub.sources.iter().any(|x| x == s) => Err(format!(
                "{at}: hub {h:?} is not fed by source {s:?}; add it to the hub's sources"
            )),
            Some(_) => Ok(()),
        };
        let marts: Vec<String> = crate::marts::mart_tables()
            .into_iter()
            .map(|t| t.name)
            .collect();
        if let Some(unknown) = self.marts.keys().find(|m| !marts.contains(m)) {
            return Err(format!(
                "marts.{unknown}: no such mart (the marts are {})",
                marts.join(", ")
            ));
        }
        let mut names = std::collections::HashSet::new();
        let all_names = self
            .hubs
            .iter()
            .map(|h| &h.name)
            .chain(self.links.iter().map(|l| &l.name))
            .chain(self.transactional_links.iter().map(|t| &t.name))
            .chain(self.satellites.iter().map(|s| &s.name));
        for name in all_names {
            if !names.insert(name) {
                return Err(format!("table {name:?} is declared twice"));
            }
            if !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                return Err(format!(
                    "table {name:?}: use lowercase letters, digits and _"
                ));
            }
        }
        for h in &self.hubs {
            if h.business_keys.is_empty() {
                return Err(format!("hub {}: no business_keys", h.name));
            }
            for s in &h.sources {
                source(s, &format!("hub {}", h.name))?;
            }
        }
        for l in &self.links {
            if l.hubs.len() < 2 {
                return Err(format!("link {}: a link joins at least two hubs", l.name));
            }
            for s in &l.sources {
                source(s, &format!("link {}", l.name))?;
                for h in &l.hubs {
                    hub_on(h, s, &format!("link {}", l.name))?;
                }
            }
        }
        for t in &self.transactional_links {
            source(&t.source, &format!("transactional link {}", t.name))?;
            for h in &t.hubs {
                hub_on(h, &t.source, &format!("transactional link {}", t.name))?;
            }
        }
        for sat in &self.satellites {
            for feed in sat.feeds() {
                source(feed.source, &format!("satellite {}", sat.name))?;
                hub_on(&sat.parent, feed.source, &format!("satellite {}", sat.name))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_model_is_valid() {
        let model = Model::parse(DEFAULT_MODEL, "model.toml").expect("valid");
        assert_eq!(model.hubs.len(), 6);
        assert_eq!(model.transactional_links.len(), 5);
    }

    #[test]
    fn errors_name_the_place() {
        let bad = DEFAULT_MODEL.replace("business_keys = [\"page\"]", "business_key = [\"page\"]");
        let e = Model::parse(&bad, "m.toml")
            .expect_err("unknown key")
            .to_string();
        assert!(e.contains("m.toml") && e.contains("hubs[4]"), "{e}");
        let bad = DEFAULT_MODEL.replace(
            "hubs = [\"hub_song\", \"hub_artist\"]",
            "hubs = [\"hub_song\", \"hub_nope\"]",
        );
        let e = Model::parse(&bad, "m.toml")
            .expect_err("dangling")
            .to_string();
        assert!(
            e.contains("link_song_artist") && e.contains("hub_nope"),
            "{e}"
        );
    }
}
