//! The vault core, generated from the model: staging of new raw rows, hubs, links, transactional links and
//! satellites. Insert-only, anti-joined, so every statement is idempotent.

use std::collections::BTreeMap;

use playlog_sql::{SqlError, SqlSession};

use crate::dialect::{Layout, Partition, Sql};
use crate::model::{Model, Satellite};

/// The columns every vault table carries.
const AUDIT: &str = "load_date, record_source";

pub(crate) struct Core<'a> {
    pub model: &'a Model,
    pub sql: Sql,
}

/// What one source's staging holds this run.
#[derive(Debug, Clone)]
pub(crate) struct Staged {
    pub rows: u64,
    /// Event-time range and newest load time of the staged rows (SQL literals).
    pub min_ts: String,
    pub max_ts: String,
    pub max_loaded_at: String,
}

impl Staged {
    /// An empty staging: ranges that match nothing.
    pub fn nothing(sql: &Sql) -> Staged {
        Staged {
            rows: 0,
            min_ts: sql.end_of_time(),
            max_ts: sql.beginning_of_time(),
            max_loaded_at: sql.beginning_of_time(),
        }
    }
}

impl Core<'_> {
    pub fn stage_table(&self, source: &str) -> String {
        self.sql.temp_table(&format!("stage_{source}"))
    }

    /// A source's rows with derived columns, hub keys, load date and record source; `filter` is a condition
    /// over the raw row `r`.
    pub fn stage_select(&self, source: &str, filter: &str) -> String {
        let sql = &self.sql;
        let src = &self.model.sources[source];
        let derived: String = src
            .columns
            .iter()
            .map(|(name, expr)| format!(", {expr} AS {name}"))
            .collect();
        let keys: String = self
            .model
            .hubs_of_source(source)
            .map(|h| {
                let bks: Vec<&str> = h.business_keys.iter().map(String::as_str).collect();
                format!(", {} AS {}", sql.hash_key_or_ghost(&bks), h.key)
            })
            .collect();
        format!(
            "SELECT d.*{keys}, d._loaded_at AS load_date, {record_source} AS record_source \
             FROM (SELECT r.*{derived} FROM {raw} r WHERE {filter}) d",
            record_source = sql.string(&format!("kafka.{}", src.table)),
            raw = sql.table("raw", &src.table),
        )
    }

    /// DDL: every vault table (shaped by the SQL that fills it, so types follow the raw tables), the ghost
    /// records, and the run log whose high-water marks make runs incremental.
    pub fn create_tables(&self, s: &mut dyn SqlSession) -> Result<(), SqlError> {
        let sql = &self.sql;
        if let Some(ddl) = sql.create_schema("vault") {
            s.execute(&ddl)?;
        }
        s.execute(&format!(
            "CREATE TABLE IF NOT EXISTS {} (run_at TIMESTAMP NOT NULL, source {text} NOT NULL, \
             loaded_through TIMESTAMP NOT NULL, max_ts TIMESTAMP NOT NULL, {rows} {int} NOT NULL, seconds {float} NOT NULL)",
            sql.table("vault", "_runs"),
            text = sql.string_type(),
            rows = sql.quote("rows"),
            int = sql.int_type(),
            float = sql.float_type(),
        ))?;
        for source in self.model.sources.keys() {
            // Shapes only: nothing is read.
            s.execute(&sql.create_temp_as(
                &self.stage_table(source),
                &format!("{} LIMIT 0", self.stage_select(source, "FALSE")),
            ))?;
        }
        for hub in &self.model.hubs {
            let table = sql.table("vault", &hub.name);
            s.execute(&sql.create_table_like(
                &table,
                &self.hub_candidates(hub),
                Layout {
                    partition: None,
                    cluster: Some(&hub.key),
                },
            ))?;
            let ghost_bks: String = hub
                .business_keys
                .iter()
                .map(|b| format!(", NULL AS {b}"))
                .collect();
            sql.insert_by_name(
                s,
                &table,
                &format!(
                    "SELECT {ghost} AS {key}{ghost_bks}, {begin} AS load_date, 'SYSTEM' AS record_source \
                     FROM (SELECT 1 AS one) g WHERE NOT EXISTS (SELECT 1 FROM {table} WHERE {key} = {ghost})",
                    ghost = sql.ghost_key(),
                    key = hub.key,
                    begin = sql.beginning_of_time(),
                ),
            )?;
        }
        for link in &self.model.links {
            s.execute(&sql.create_table_like(
                &sql.table("vault", &link.name),
                &self.link_candidates(link),
                Layout {
                    partition: None,
                    cluster: Some(&link.key),
                },
            ))?;
        }
        for t in &self.model.transactional_links {
            // Event-grain: partitioned by event day, which the de-duplicating anti-join reads by.
            s.execute(&sql.create_table_like(
                &sql.table("vault", &t.name),
                &self.transactional_candidates(t),
                Layout {
                    partition: Some(Partition::DayOf("ts")),
                    cluster: Some(&t.key),
                },
            ))?;
        }
        for sat in &self.model.satellites {
            let parent = self.model.hub(&sat.parent).map(|h| h.key.as_str());
            s.execute(&sql.create_table_like(
                &sql.table("vault", &sat.name),
                &self.satellite_table_shape(sat),
                Layout {
                    partition: None,
                    cluster: parent,
                },
            ))?;
        }
        Ok(())
    }

    fn hub_candidates(&self, hub: &crate::model::Hub) -> String {
        let cols = format!("{}, {}, {AUDIT}", hub.key, hub.business_keys.join(", "));
        hub.sources
            .iter()
            .map(|s| {
                format!(
                    "SELECT {cols} FROM {} WHERE {} <> {}",
                    self.stage_table(s),
                    hub.key,
                    self.sql.ghost_key()
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ")
    }

    fn link_candidates(&self, link: &crate::model::Link) -> String {
        let hubs: Vec<_> = link.hubs.iter().filter_map(|h| self.model.hub(h)).collect();
        let bks: Vec<&str> = hubs
            .iter()
            .flat_map(|h| h.business_keys.iter().map(String::as_str))
            .collect();
        let hub_keys: String = hubs.iter().map(|h| format!("{}, ", h.key)).collect();
        link.sources
            .iter()
            .map(|s| {
                // One row per distinct combination before hashing: hashing is the costly part.
                format!(
                    "SELECT {lk} AS {key}, {hub_keys}load_date, record_source FROM (
                       SELECT {hub_keys}{bk_list}, MIN(load_date) AS load_date, MIN(record_source) AS record_source
                       FROM {stage} GROUP BY {hub_keys}{bk_list}) g",
                    lk = self.sql.hash_key(&bks),
                    key = link.key,
                    bk_list = bks.join(", "),
                    stage = self.stage_table(s),
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ")
    }

    fn transactional_candidates(&self, t: &crate::model::TransactionalLink) -> String {
        let hub_keys: String = t
            .hubs
            .iter()
            .filter_map(|h| self.model.hub(h))
            .map(|h| format!("{}, ", h.key))
            .collect();
        let payload: String = t.payload.iter().map(|p| format!("{p}, ")).collect();
        format!(
            "SELECT {ek} AS {key}, event_id, {hub_keys}{payload}_topic, _partition, _offset, {AUDIT} FROM {stage}",
            ek = self.sql.hash_key(&["event_id"]),
            key = t.key,
            stage = self.stage_table(&t.source),
        )
    }

    /// A satellite's observations in the staged rows (or, for late keys, in older raw rows).
    fn satellite_observations(&self, sat: &Satellite, table_of: &dyn Fn(&str) -> String) -> String {
        format!(
            "SELECT *, {hd} AS hashdiff FROM ({obs}) u",
            hd = self
                .sql
                .hashdiff(&sat.payload.iter().map(String::as_str).collect::<Vec<_>>()),
            obs = self.satellite_observations_unhashed(sat, table_of)
        )
    }

    /// Observations with payload columns under the satellite's names, before hashing (hashing is the costly
    /// part, so it is done only on the rows that can be change points).
    fn satellite_observations_unhashed(
        &self,
        sat: &Satellite,
        table_of: &dyn Fn(&str) -> String,
    ) -> String {
        let sql = &self.sql;
        let parent = self.model.hub(&sat.parent).map_or("", |h| h.key.as_str());
        sat.feeds()
            .iter()
            .enumerate()
            .map(|(priority, feed)| {
                let payload: String = feed
                    .columns
                    .iter()
                    .map(|(name, from)| format!("{from} AS {name}, "))
                    .collect();
                format!(
                    "SELECT {parent} AS hk, {payload}{from_ts} AS effective_from, {AUDIT}, {priority} AS priority \
                     FROM {table} WHERE {parent} <> {ghost}",
                    from_ts = sql.plus_ms("ts", feed.effective_after_ms),
                    table = table_of(feed.source),
                    ghost = sql.ghost_key(),
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ")
    }

    fn from_column(sat: &Satellite) -> &'static str {
        if sat.effectivity {
            "valid_from"
        } else {
            "effective_from"
        }
    }

    fn satellite_table_shape(&self, sat: &Satellite) -> String {
        let parent = self.model.hub(&sat.parent).map_or("", |h| h.key.as_str());
        let payload = sat.payload.join(", ");
        let obs = self.satellite_observations(sat, &|s| self.stage_table(s));
        if sat.effectivity {
            format!(
                "SELECT hk AS {parent}, hashdiff, {payload}, effective_from AS valid_from, effective_from AS valid_to, {AUDIT} FROM ({obs})"
            )
        } else {
            format!(
                "SELECT hk AS {parent}, hashdiff, {payload}, effective_from, {AUDIT} FROM ({obs})"
            )
        }
    }

    /// Stages one source's rows loaded after `after` (a SQL literal); returns what was staged.
    pub fn stage(
        &self,
        s: &mut dyn SqlSession,
        source: &str,
        after: &str,
    ) -> Result<Option<Staged>, SqlError> {
        let table = self.stage_table(source);
        s.execute(&self.sql.create_temp_as(
            &table,
            &self.stage_select(source, &format!("r._loaded_at > {after}")),
        ))?;
        let row = s.query(&format!(
            "SELECT count(*), min(ts), max(ts), max(_loaded_at) FROM {table}"
        ))?;
        let Some([n, min_ts, max_ts, loaded]) = row.first().map(|r| r.as_slice()) else {
            return Ok(None);
        };
        let rows = n.as_i64().unwrap_or(0) as u64;
        if rows == 0 {
            return Ok(None);
        }
        Ok(Some(Staged {
            rows,
            min_ts: self.sql.timestamp(&min_ts.to_string()),
            max_ts: self.sql.timestamp(&max_ts.to_string()),
            max_loaded_at: self.sql.timestamp(&loaded.to_string()),
        }))
    }

    pub fn load_hub(
        &self,
        s: &mut dyn SqlSession,
        hub: &crate::model::Hub,
    ) -> Result<usize, SqlError> {
        let table = self.sql.table("vault", &hub.name);
        self.sql.insert_by_name(s, &table, &format!(
            "SELECT * FROM ({c}) c \
             WHERE NOT EXISTS (SELECT 1 FROM {table} h WHERE h.{key} = c.{key}) \
             QUALIFY row_number() OVER (PARTITION BY c.{key} ORDER BY c.load_date, c.record_source) = 1",
            c = self.hub_candidates(hub),
            key = hub.key,
        ))
    }

    pub fn load_link(
        &self,
        s: &mut dyn SqlSession,
        link: &crate::model::Link,
    ) -> Result<usize, SqlError> {
        let table = self.sql.table("vault", &link.name);
        self.sql.insert_by_name(s, &table, &format!(
            "SELECT * FROM ({c}) c \
             WHERE c.{key} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {table} l WHERE l.{key} = c.{key}) \
             QUALIFY row_number() OVER (PARTITION BY c.{key} ORDER BY c.load_date, c.record_source) = 1",
            c = self.link_candidates(link),
            key = link.key,
        ))
    }

    /// New events of a transactional link, into `new_<name>` (kept for the marts), then the link itself.
    /// The anti-join reads only the link's rows in the staged event-time range: duplicates share the event's ts.
    pub fn load_transactional(
        &self,
        s: &mut dyn SqlSession,
        t: &crate::model::TransactionalLink,
        staged: &Staged,
    ) -> Result<usize, SqlError> {
        let table = self.sql.table("vault", &t.name);
        let new = self.new_table(&t.name);
        s.execute(&self.sql.create_temp_as(
            &new,
            &format!(
                "SELECT * FROM ({c}) c WHERE NOT EXISTS (SELECT 1 FROM {table} n \
                 WHERE n.{key} = c.{key} AND n.ts BETWEEN {lo} AND {hi}) \
                 QUALIFY row_number() OVER (PARTITION BY c.{key} ORDER BY c.load_date, c._topic, c._partition, c._offset) = 1",
                c = self.transactional_candidates(t),
                key = t.key,
                lo = staged.min_ts,
                hi = staged.max_ts,
            ),
        ))?;
        self.sql
            .insert_by_name(s, &table, &format!("SELECT * FROM {new}"))
    }

    /// The temp table holding what this run added to a vault table.
    pub fn new_table(&self, name: &str) -> String {
        self.sql.temp_table(&format!("new_{name}"))
    }

    /// Adds a satellite's new change points. Observations are ordered by event time together with the
    /// stored change points of the same keys; a row is a change point when its hashdiff differs from the one
    /// before it. When observations arrive late (older than a key's newest stored change point), the key's
    /// older raw observations since then are replayed too, so that a late change inside an interval is
    /// followed by the value the later observations showed (A→late B→A). "Late" is judged against the
    /// newest event time of earlier runs (`event_marks`), per source: unchanged observations are not stored,
    /// so a key's own newest observation is not known without reading raw.
    pub fn load_satellite(
        &self,
        s: &mut dyn SqlSession,
        sat: &Satellite,
        marks: &BTreeMap<String, String>,
        event_marks: &BTreeMap<String, String>,
    ) -> Result<usize, SqlError> {
        let sql = &self.sql;
        let table = sql.table("vault", &sat.name);
        let parent = self.model.hub(&sat.parent).map_or("", |h| h.key.as_str());
        let from_col = Self::from_column(sat);
        let payload = sat.payload.join(", ");
        let obs = sql.temp_table(&format!("obs_{}", sat.name));
        let unhashed = sql.temp_table(&format!("unhashed_{}", sat.name));
        s.execute(&sql.create_temp_as(
            &unhashed,
            &self.satellite_observations_unhashed(sat, &|src| self.stage_table(src)),
        ))?;
        // The newest event time earlier runs saw in this satellite's sources: observations older than it
        // are late.
        let watermark = {
            let marks: Vec<&str> = sat
                .feeds()
                .iter()
                .filter_map(|f| event_marks.get(f.source).map(String::as_str))
                .collect();
            (!marks.is_empty()).then(|| format!("GREATEST({})", marks.join(", ")))
        };
        // A key whose staged observations all carry one payload, none of them late, can only change at its
        // first observation: keep just that one. Most keys are like this.
        let not_late = watermark.clone().unwrap_or_else(|| sql.beginning_of_time());
        let steady = sql.temp_table(&format!("steady_{}", sat.name));
        s.execute(&sql.create_temp_as(
            &steady,
            &format!(
                "SELECT hk FROM (SELECT hk, {payload}, MIN(effective_from) AS first_seen FROM {unhashed} GROUP BY hk, {payload}) p \
                 GROUP BY hk HAVING COUNT(*) = 1 AND MIN(first_seen) >= {not_late}"
            ),
        ))?;
        s.execute(&sql.create_temp_as(
            &obs,
            &format!(
                "SELECT *, {hd} AS hashdiff FROM (
                   SELECT * FROM {unhashed} WHERE hk NOT IN (SELECT hk FROM {steady})
                   UNION ALL
                   SELECT * FROM (SELECT * FROM {unhashed} WHERE hk IN (SELECT hk FROM {steady})
                                  QUALIFY row_number() OVER (PARTITION BY hk ORDER BY effective_from, priority) = 1) f) o
                 WHERE TRUE
                 QUALIFY row_number() OVER (PARTITION BY hk, effective_from, hashdiff ORDER BY load_date, priority) = 1",
                hd = sql.hashdiff(&sat.payload.iter().map(String::as_str).collect::<Vec<_>>()),
            ),
        ))?;
        let stored = format!(
            "SELECT {parent} AS hk, hashdiff, {payload}, {from_col} AS effective_from, {AUDIT}, -1 AS priority \
             FROM {table} WHERE {parent} IN (SELECT hk FROM {obs}) \
             QUALIFY row_number() OVER (PARTITION BY {parent}, {from_col} ORDER BY load_date DESC) = 1"
        );
        let stored_table = sql.temp_table(&format!("stored_{}", sat.name));
        s.execute(&sql.create_temp_as(&stored_table, &stored))?;
        if let Some(watermark) = watermark {
            let late_keys = sql.temp_table(&format!("late_{}", sat.name));
            s.execute(&sql.create_temp_as(
                &late_keys,
                &format!("SELECT hk, MIN(effective_from) AS since FROM {obs} WHERE effective_from < {watermark} GROUP BY hk"),
            ))?;
            let late_since = crate::first_value(s, &format!("SELECT MIN(since) FROM {late_keys}"))?;
            if let Some(since) = late_since {
                let since = sql.timestamp(&since);
                let raw_of = |src: &str| {
                    let mark = marks
                        .get(src)
                        .cloned()
                        .unwrap_or_else(|| sql.beginning_of_time());
                    format!(
                        "(SELECT * FROM ({}) x WHERE {parent} IN (SELECT hk FROM {late_keys}))",
                        self.stage_select(
                            src,
                            &format!("r._loaded_at <= {mark} AND r.ts >= {since}")
                        )
                    )
                };
                let replay = self.satellite_observations(sat, &|src| raw_of(src));
                sql.insert_by_name(
                    s,
                    &obs,
                    &format!(
                        "SELECT o.* FROM ({replay}) o JOIN {late_keys} l ON l.hk = o.hk \
                         WHERE o.effective_from >= l.since"
                    ),
                )?;
            }
        }
        let new = self.new_table(&sat.name);
        let cols = format!("hk, hashdiff, {payload}, effective_from, {AUDIT}, priority");
        let rest = sql.star_except(&["is_new", "previous", "priority"]);
        s.execute(&sql.create_temp_as(
            &new,
            &format!(
                "WITH timeline AS (
                   SELECT *, lag(hashdiff) OVER (PARTITION BY hk ORDER BY effective_from, is_new, priority) AS previous
                   FROM (SELECT {cols}, 1 AS is_new FROM {obs} UNION ALL SELECT {cols}, 0 AS is_new FROM {stored_table}) u)
                 SELECT {rest} FROM timeline t
                 WHERE is_new = 1 AND (previous IS NULL OR previous <> hashdiff)
                   AND NOT EXISTS (SELECT 1 FROM {stored_table} x WHERE x.hk = t.hk AND x.effective_from = t.effective_from AND x.hashdiff = t.hashdiff)
                 QUALIFY row_number() OVER (PARTITION BY hk, effective_from, hashdiff ORDER BY load_date) = 1"
            ),
        ))?;
        if !sat.effectivity {
            return sql.insert_by_name(
                s,
                &table,
                &format!(
                    "SELECT hk AS {parent}, hashdiff, {payload}, effective_from, {AUDIT} FROM {new}"
                ),
            );
        }
        // Effectivity: new intervals, plus a new version of every stored interval whose end moved.
        sql.insert_by_name(s, &table, &format!(
            "WITH current AS (
               SELECT {parent} AS hk, hashdiff, {payload}, valid_from, valid_to, {AUDIT}, 0 AS is_new FROM {table}
               WHERE {parent} IN (SELECT hk FROM {new})
               QUALIFY row_number() OVER (PARTITION BY {parent}, valid_from ORDER BY load_date DESC, valid_to) = 1),
             merged AS (
               SELECT hk, hashdiff, {payload}, effective_from AS valid_from, CAST(NULL AS TIMESTAMP) AS valid_to, {AUDIT}, 1 AS is_new FROM {new}
               UNION ALL SELECT hk, hashdiff, {payload}, valid_from, valid_to, {AUDIT}, is_new FROM current),
             timeline AS (
               SELECT *, COALESCE(lead(valid_from) OVER (PARTITION BY hk ORDER BY valid_from, is_new), {end}) AS new_valid_to,
                      max(CASE WHEN is_new = 1 THEN load_date END) OVER (PARTITION BY hk) AS run_load_date
               FROM merged)
             SELECT hk AS {parent}, hashdiff, {payload}, valid_from, new_valid_to AS valid_to,
                    CASE WHEN is_new = 1 THEN load_date ELSE run_load_date END AS load_date, record_source
             FROM timeline WHERE is_new = 1 OR valid_to <> new_valid_to",
            end = sql.end_of_time(),
        ))
    }
}
