//! The vault core's plan, generated from the model: staging of new raw rows, hubs, links, transactional
//! links and satellites. Insert-only, anti-joined, so every statement is idempotent. Pure: SQL text and
//! steps, no I/O.

use crate::catalog::{Catalog, TableDef};
use crate::dialect::Sql;
use crate::model::{Model, Satellite};
use crate::plan::{ParamType, Step, param};

/// The columns every vault table carries.
const AUDIT: &str = "load_date, record_source";

pub(crate) struct Core<'a> {
    pub model: &'a Model,
    pub catalog: &'a Catalog,
    pub sql: Sql,
}

/// A source's parameters, bound during the run: its marks from earlier runs, and what its staging holds.
pub(crate) fn p(source: &str, what: &str) -> String {
    param(&format!("{source}.{what}"))
}

impl Core<'_> {
    pub fn stage_table(&self, source: &str) -> String {
        self.sql.temp_table(&format!("stage_{source}"))
    }

    /// A source's rows with derived columns, hub keys, load date and record source; `join` (may be empty)
    /// and `filter` restrict the raw row `r`.
    pub fn stage_select(&self, source: &str, join: &str, filter: &str) -> String {
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
             FROM (SELECT r.*{derived} FROM {raw} r {join} WHERE {filter}) d",
            record_source = sql.string(&format!("kafka.{}", src.table)),
            raw = sql.table("raw", &src.table),
        )
    }

    /// The run's offset ranges to stage, per topic and partition: `from_offset` (the vault's mark) up to
    /// `upto` (the consumer's recorded next offset).
    pub fn ranges_table(&self) -> String {
        self.sql.temp_table("offset_ranges")
    }

    /// The steps that compute the ranges and bind each source's lowest mark, `{{source.from_offset}}`
    /// (NULL when a source has nothing new, which stages nothing).
    pub fn ranges(&self) -> Vec<Step> {
        let sql = &self.sql;
        let part = sql.quote("partition");
        let ranges = self.ranges_table();
        let lowest: Vec<String> = self
            .model
            .sources
            .values()
            .map(|s| {
                format!(
                    "MIN(CASE WHEN topic = {} THEN from_offset END)",
                    sql.string(&s.table)
                )
            })
            .collect();
        let params: Vec<(String, ParamType)> = self
            .model
            .sources
            .keys()
            .map(|s| (format!("{s}.from_offset"), ParamType::Int))
            .collect();
        vec![
            Step::execute(sql.create_temp_as(
                &ranges,
                &format!(
                    "SELECT b.topic, b.{part}, COALESCE(m.next_offset, 0) AS from_offset, b.upto FROM \
                     (SELECT topic, {part}, MAX(next_offset) AS upto FROM {offsets} GROUP BY topic, {part}) b \
                     LEFT JOIN {marks} m ON m.topic = b.topic AND m.{part} = b.{part} \
                     WHERE b.upto > COALESCE(m.next_offset, 0)",
                    offsets = sql.table("raw", "_kafka_offsets"),
                    marks = sql.table("vault", "_staged_offsets"),
                ),
            )),
            Step::Bind {
                sql: format!("SELECT {} FROM {ranges}", lowest.join(", ")),
                params,
                staged: None,
            },
        ]
    }

    /// Moves the vault's marks to the ends of the ranges this run staged.
    pub fn advance_marks(&self) -> Step {
        let sql = &self.sql;
        let part = sql.quote("partition");
        Step::execute(format!(
            "MERGE INTO {marks} t USING {ranges} s ON t.topic = s.topic AND t.{part} = s.{part} \
             WHEN MATCHED THEN UPDATE SET next_offset = s.upto, updated_at = {now} \
             WHEN NOT MATCHED THEN INSERT (topic, {part}, next_offset, updated_at) VALUES (s.topic, s.{part}, s.upto, {now})",
            marks = sql.table("vault", "_staged_offsets"),
            ranges = self.ranges_table(),
            now = sql.now(),
        ))
    }

    /// The vault table a model table is stored in.
    pub fn def(&self, name: &str) -> TableDef {
        self.catalog
            .vault_tables(self.model)
            .into_iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| TableDef {
                schema: "vault",
                name: name.to_owned(),
                columns: Vec::new(),
                partition: None,
                cluster: None,
            })
    }

    /// Inserts a query's rows into a vault table, by column name.
    fn insert(&self, name: &str, select: &str) -> String {
        let def = self.def(name);
        self.sql
            .insert_by_name(&self.sql.table("vault", name), &def.column_names(), select)
    }

    /// The ghost record of a hub, inserted once (by the hub's migration).
    pub fn ghost_row(&self, hub: &crate::model::Hub) -> String {
        let sql = &self.sql;
        let table = sql.table("vault", &hub.name);
        let ghost_bks: String = hub
            .business_keys
            .iter()
            .map(|b| format!(", NULL AS {b}"))
            .collect();
        self.insert(
            &hub.name,
            &format!(
                "SELECT {ghost} AS {key}{ghost_bks}, {begin} AS load_date, 'SYSTEM' AS record_source \
                 FROM (SELECT 1 AS one) g WHERE NOT EXISTS (SELECT 1 FROM {table} WHERE {key} = {ghost})",
                ghost = sql.ghost_key(),
                key = hub.key,
                begin = sql.beginning_of_time(),
            ),
        )
    }

    /// A hub's candidate rows: per source, each distinct (key, business keys, record source) once, with
    /// its earliest load date. The hub keeps the earliest by (load date, record source) of these, which is
    /// the earliest of all staged rows; grouping first spares the window a sort of every staged row
    /// (a million plays and page views for three thousand users).
    fn hub_candidates(&self, hub: &crate::model::Hub) -> String {
        let bks = hub.business_keys.join(", ");
        hub.sources
            .iter()
            .map(|s| {
                format!(
                    "SELECT {key}, {bks}, MIN(load_date) AS load_date, record_source FROM {stage} \
                     WHERE {key} <> {ghost} GROUP BY {key}, {bks}, record_source",
                    key = hub.key,
                    stage = self.stage_table(s),
                    ghost = self.sql.ghost_key()
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
        // Each business key column once (two hubs may share one, as song and artist share `artist`); the
        // hash still takes them all, in order.
        let mut distinct_bks: Vec<&str> = Vec::new();
        for bk in &bks {
            if !distinct_bks.contains(bk) {
                distinct_bks.push(bk);
            }
        }
        // The link key is NULL exactly when every business key is, that is when every hub key is the
        // ghost's: tested on the hub keys, which are cheap, so that the optimizer cannot push a test of the
        // hash itself below the GROUP BY and hash every staged row.
        let all_ghosts: Vec<String> = hubs
            .iter()
            .map(|h| format!("{} = {}", h.key, self.sql.ghost_key()))
            .collect();
        link.sources
            .iter()
            .map(|s| {
                // One row per distinct combination before hashing: hashing is the costly part.
                format!(
                    "SELECT {lk} AS {key}, {hub_keys}load_date, record_source FROM (
                       SELECT {hub_keys}{bk_list}, MIN(load_date) AS load_date, MIN(record_source) AS record_source
                       FROM {stage} WHERE NOT ({all_ghosts}) GROUP BY {hub_keys}{bk_list}) g",
                    lk = self.sql.hash_key(&bks),
                    key = link.key,
                    bk_list = distinct_bks.join(", "),
                    stage = self.stage_table(s),
                    all_ghosts = all_ghosts.join(" AND "),
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
            "SELECT {ek} AS {key}, {id}, {hub_keys}{payload}_topic, _partition, _offset, {AUDIT} FROM {stage}",
            ek = self.sql.hash_key(&[t.id.as_str()]),
            id = t.id,
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

    /// Stages one source's new rows by their Kafka coordinates, then binds what the staging holds:
    /// `{{source.rows}}`, `{{source.min_ts}}`, `{{source.max_ts}}` and `{{source.max_loaded_at}}`.
    ///
    /// New means: in a partition's range from the vault's mark (the next offset it has not staged) up to the
    /// next offset the consumer has recorded in `raw._kafka_offsets`, read in the run's snapshot. Offsets
    /// only grow in commit order, whatever the writers' clocks say, so a row that becomes visible after a
    /// run (a pod with a slower clock, a later request of the same batch) is staged by the next one; a row
    /// whose offset is not recorded yet waits. `{{source.from_offset}}`, the lowest mark of the source's
    /// partitions, lets the warehouse skip older row groups; the dialect may add a load-time window for
    /// partition pruning.
    pub fn stage(&self, source: &str) -> Vec<Step> {
        let sql = &self.sql;
        let table = self.stage_table(source);
        let name = |what: &str| format!("{source}.{what}");
        let part = sql.quote("partition");
        let join = format!(
            "JOIN {ranges} g ON g.topic = r._topic AND g.{part} = r._partition \
             AND r._offset >= g.from_offset AND r._offset < g.upto",
            ranges = self.ranges_table(),
        );
        let mut filter = format!("r._offset >= {}", p(source, "from_offset"));
        if let Some(window) = sql.load_time_window(&p(source, "mark")) {
            filter.push_str(&format!(" AND r._loaded_at >= {window}"));
        }
        vec![
            Step::execute(sql.create_temp_as(&table, &self.stage_select(source, &join, &filter))),
            Step::Bind {
                sql: format!("SELECT count(*), min(ts), max(ts), max(_loaded_at) FROM {table}"),
                params: vec![
                    (name("rows"), ParamType::Int),
                    (name("min_ts"), ParamType::Timestamp),
                    (name("max_ts"), ParamType::Timestamp),
                    (name("max_loaded_at"), ParamType::Timestamp),
                ],
                staged: Some(source.to_owned()),
            },
        ]
    }

    pub fn load_hub(&self, hub: &crate::model::Hub) -> Step {
        self.load_keyed(&hub.name, &hub.key, &self.hub_candidates(hub))
    }

    pub fn load_link(&self, link: &crate::model::Link) -> Step {
        self.load_keyed(&link.name, &link.key, &self.link_candidates(link))
    }

    /// Inserts the candidates whose key the table does not hold yet, the earliest of each key.
    fn load_keyed(&self, name: &str, key: &str, candidates: &str) -> Step {
        let table = self.sql.table("vault", name);
        Step::reported(
            self.insert(
                name,
                &format!(
                    "SELECT * FROM ({candidates}) c \
                     WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.{key} = c.{key}) \
                     QUALIFY row_number() OVER (PARTITION BY c.{key} ORDER BY c.load_date, c.record_source) = 1",
                ),
            ),
            format!("vault.{name}"),
        )
    }

    /// New events of a transactional link, into `new_<name>` (kept for the marts), then the link itself.
    /// The anti-join reads only the link's rows in the staged event-time range: duplicates share the event's ts.
    ///
    /// Duplicate deliveries of one event are rare, so only keys staged more than once go through the
    /// window that keeps the first delivery; the rest pass as they are (half the time of a window over
    /// every staged event).
    pub fn load_transactional(&self, t: &crate::model::TransactionalLink) -> Vec<Step> {
        let sql = &self.sql;
        let table = sql.table("vault", &t.name);
        let new = self.new_table(&t.name);
        let candidates = format!("({})", self.transactional_candidates(t));
        let repeated = sql.temp_table(&format!("repeated_{}", t.name));
        let key = &t.key;
        let not_stored = format!(
            "NOT EXISTS (SELECT 1 FROM {table} n WHERE n.{key} = c.{key} AND n.ts BETWEEN {lo} AND {hi})",
            lo = p(&t.source, "min_ts"),
            hi = p(&t.source, "max_ts"),
        );
        // The candidates are read twice rather than kept: hashing an event id again costs less than
        // copying every staged event once more.
        vec![
            Step::execute(sql.create_temp_as(
                &repeated,
                &format!("SELECT {key} FROM {candidates} c GROUP BY {key} HAVING COUNT(*) > 1"),
            )),
            Step::execute(sql.create_temp_as(
                &new,
                &format!(
                    "SELECT * FROM {candidates} c WHERE c.{key} NOT IN (SELECT {key} FROM {repeated}) AND {not_stored} \
                     UNION ALL \
                     SELECT * FROM (SELECT * FROM {candidates} c WHERE c.{key} IN (SELECT {key} FROM {repeated}) AND {not_stored} \
                     QUALIFY row_number() OVER (PARTITION BY c.{key} ORDER BY c.load_date, c._topic, c._partition, c._offset) = 1) d",
                ),
            )),
            Step::reported(
                self.insert(&t.name, &format!("SELECT * FROM {new}")),
                format!("vault.{}", t.name),
            ),
        ]
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
    /// newest event time of earlier runs (`{{source.event_mark}}`), per source: unchanged observations are
    /// not stored, so a key's own newest observation is not known without reading raw.
    pub fn load_satellite(&self, sat: &Satellite) -> Vec<Step> {
        let sql = &self.sql;
        let table = sql.table("vault", &sat.name);
        let parent = self.model.hub(&sat.parent).map_or("", |h| h.key.as_str());
        let from_col = Self::from_column(sat);
        let payload = sat.payload.join(", ");
        let obs = sql.temp_table(&format!("obs_{}", sat.name));
        let observations = self.satellite_observations_unhashed(sat, &|src| self.stage_table(src));
        // The newest event time earlier runs saw in this satellite's sources: observations older than it
        // are late. Before any run, every mark is the beginning of time, and nothing is late.
        let watermark = {
            let marks: Vec<String> = sat
                .feeds()
                .iter()
                .map(|f| p(f.source, "event_mark"))
                .collect();
            format!("GREATEST({})", marks.join(", "))
        };
        // Each key's distinct payloads, with the first observation of each (by event time, then feed).
        let groups = sql.temp_table(&format!("payloads_{}", sat.name));
        let order = ["effective_from", "priority"];
        let first = format!(
            "MIN(effective_from) AS first_from, {} AS first_load, {} AS first_source, {} AS first_priority",
            sql.first_value("load_date", &order),
            sql.first_value("record_source", &order),
            sql.first_value("priority", &order),
        );
        let mut steps = vec![Step::execute(sql.create_temp_as(
            &groups,
            &format!(
                "SELECT hk, {payload}, {first} FROM ({observations}) o GROUP BY hk, {payload}"
            ),
        ))];
        // A key whose staged observations all carry one payload, none of them late, can only change at its
        // first observation: keep just that one, straight from its group. Most keys are like this, so most
        // observations are never sorted.
        let steady = sql.temp_table(&format!("steady_{}", sat.name));
        steps.push(Step::execute(sql.create_temp_as(
            &steady,
            &format!(
                "SELECT hk FROM {groups} g GROUP BY hk HAVING COUNT(*) = 1 AND MIN(g.first_from) >= {watermark}"
            ),
        )));
        steps.push(Step::execute(sql.create_temp_as(
            &obs,
            &format!(
                "SELECT *, {hd} AS hashdiff FROM (
                   SELECT * FROM ({observations}) n WHERE hk NOT IN (SELECT hk FROM {steady})
                   UNION ALL
                   SELECT g.hk, {steady_payload}, g.first_from, g.first_load, g.first_source, g.first_priority
                   FROM {groups} g WHERE g.hk IN (SELECT hk FROM {steady})) o
                 {qualify}",
                hd = sql.hashdiff(&sat.payload.iter().map(String::as_str).collect::<Vec<_>>()),
                steady_payload = sat.payload.iter().map(|c| format!("g.{c}")).collect::<Vec<_>>().join(", "),
                qualify = sql.qualify(
                    "row_number() OVER (PARTITION BY hk, effective_from, hashdiff ORDER BY load_date, priority) = 1"
                ),
            ),
        )));
        let stored_table = sql.temp_table(&format!("stored_{}", sat.name));
        steps.push(Step::execute(sql.create_temp_as(
            &stored_table,
            &format!(
                "SELECT {parent} AS hk, hashdiff, {payload}, {from_col} AS effective_from, {AUDIT}, -1 AS priority \
                 FROM {table} WHERE {parent} IN (SELECT hk FROM {obs}) \
                 QUALIFY row_number() OVER (PARTITION BY {parent}, {from_col} ORDER BY load_date DESC) = 1"
            ),
        )));
        let late_keys = sql.temp_table(&format!("late_{}", sat.name));
        steps.push(Step::execute(sql.create_temp_as(
            &late_keys,
            &format!("SELECT hk, MIN(effective_from) AS since FROM {obs} WHERE effective_from < {watermark} GROUP BY hk"),
        )));
        let late_since = format!("{}.late_since", sat.name);
        steps.push(Step::bind(
            format!("SELECT MIN(since) FROM {late_keys}"),
            &[(&late_since, ParamType::Timestamp)],
        ));
        // A late key's raw observations that earlier runs staged: below the vault's marks (which move
        // only when the run commits).
        let part = sql.quote("partition");
        let staged_before = format!(
            "JOIN {marks} m ON m.topic = r._topic AND m.{part} = r._partition AND r._offset < m.next_offset",
            marks = sql.table("vault", "_staged_offsets"),
        );
        let raw_of = |src: &str| {
            format!(
                "(SELECT * FROM ({}) x WHERE {parent} IN (SELECT hk FROM {late_keys}))",
                self.stage_select(
                    src,
                    &staged_before,
                    &format!("r.ts >= {}", param(&late_since))
                )
            )
        };
        let replay = self.satellite_observations(sat, &|src| raw_of(src));
        let mut obs_columns = vec!["hk"];
        obs_columns.extend(sat.payload.iter().map(String::as_str));
        obs_columns.extend([
            "effective_from",
            "load_date",
            "record_source",
            "priority",
            "hashdiff",
        ]);
        steps.push(Step::when(
            &late_since,
            vec![Step::execute(sql.insert_by_name(
                &obs,
                &obs_columns,
                &format!(
                    "SELECT o.* FROM ({replay}) o JOIN {late_keys} l ON l.hk = o.hk \
                     WHERE o.effective_from >= l.since"
                ),
            ))],
        ));
        let new = self.new_table(&sat.name);
        let cols = format!("hk, hashdiff, {payload}, effective_from, {AUDIT}, priority");
        let rest = sql.star_except(&["is_new", "previous", "priority"]);
        steps.push(Step::execute(sql.create_temp_as(
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
        )));
        let report = format!("vault.{}", sat.name);
        if !sat.effectivity {
            steps.push(Step::reported(
                self.insert(
                    &sat.name,
                    &format!(
                        "SELECT hk AS {parent}, hashdiff, {payload}, effective_from, {AUDIT} FROM {new}"
                    ),
                ),
                report,
            ));
            return steps;
        }
        // Effectivity: new intervals, plus a new version of every stored interval whose end moved.
        steps.push(Step::reported(self.insert(&sat.name, &format!(
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
        )), report));
        steps
    }
}
