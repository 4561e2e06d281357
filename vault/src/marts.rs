//! Wide marts over the vault, kept up to date incrementally.
//!
//! - `listens` is event-grain: new plays are inserted; a user whose satellites gained a change point has
//!   their plays since that point rebuilt (a late level change corrects the level at play time).
//! - `sessions` merges each run's new events into the stored rows (min/max/sums are exact to combine).
//! - the daily and hourly aggregates are rebuilt for the event dates this run touched, from rows read by
//!   event-time range (so a run's cost follows the days it touched, not the history).
//!
//! Pure: the marts' tables and the steps that update them, no I/O.

use crate::catalog::{PartitionBy, TableDef};
use crate::dialect::{Sql, Type};
use crate::plan::{ParamType, Step, param};

pub(crate) struct Marts {
    pub sql: Sql,
}

impl Marts {
    fn t(&self, name: &str) -> String {
        self.sql.table("marts", name)
    }

    fn v(&self, name: &str) -> String {
        self.sql.table("vault", name)
    }

    fn added(&self, name: &str) -> String {
        self.sql.temp_table(&format!("new_{name}"))
    }

    /// Plays, with who, where and at which level at play time. `filter` is a condition over `n`.
    fn listens_select(&self, filter: &str) -> String {
        let sql = &self.sql;
        format!(
            "SELECT n.listen_hk, n.event_id, n.ts, {date} AS date, {hour} AS hour, {dow} AS weekday, {dow} >= 6 AS is_weekend,
                    n.user_hk, u.user_id, p.first_name, p.last_name, p.gender, p.registration,
                    loc.city, loc.state, loc.zip, loc.lat, loc.lon, COALESCE(lv.level, n.level) AS level, n.auth,
                    n.song_hk, s.song, s.artist, n.duration, n.session_hk, se.session_id, n.item_in_session
             FROM (SELECT * FROM {nhl} n WHERE {filter}) n
             JOIN {hub_user} u ON u.user_hk = n.user_hk
             JOIN {hub_song} s ON s.song_hk = n.song_hk
             JOIN {hub_session} se ON se.session_hk = n.session_hk
             {profile} {location} {level}",
            date = sql.date_of("n.ts"),
            hour = sql.hour_of("n.ts"),
            dow = sql.iso_weekday("n.ts"),
            nhl = self.v("nhl_listen"),
            hub_user = self.v("hub_user"),
            hub_song = self.v("hub_song"),
            hub_session = self.v("hub_session"),
            profile = sql.asof_left_join(&self.v("sat_user_profile"), "p", ("n.user_hk", "user_hk"), ("n.ts", "effective_from")),
            location = sql.asof_left_join(&self.v("sat_user_location"), "loc", ("n.user_hk", "user_hk"), ("n.ts", "effective_from")),
            level = sql.asof_left_join(&self.v("sat_user_level"), "lv", ("n.user_hk", "user_hk"), ("n.ts", "valid_from")),
        )
    }

    fn daily_user_activity_select(&self, dates: &Dates) -> String {
        let sql = &self.sql;
        format!(
            "WITH pv AS (
               SELECT user_hk, {date} AS date, COUNT(DISTINCT session_hk) AS sessions, COUNT(*) AS page_views,
                      {last_level} AS level
               FROM {pv} WHERE {range} AND user_hk <> {ghost} GROUP BY 1, 2),
             l AS (
               SELECT user_hk, date, COUNT(*) AS listens, SUM(duration) / 60.0 AS minutes_played
               FROM {listens} WHERE {range_l} AND user_hk <> {ghost} GROUP BY 1, 2)
             SELECT pv.date, pv.user_hk, u.user_id, COALESCE(l.listens, 0) AS listens, pv.sessions, pv.page_views,
                    COALESCE(l.minutes_played, 0) AS minutes_played, pv.level
             FROM pv LEFT JOIN l ON l.user_hk = pv.user_hk AND l.date = pv.date
             JOIN {hub_user} u ON u.user_hk = pv.user_hk",
            date = sql.date_of("ts"),
            last_level = sql.arg_max("level", "ts"),
            pv = self.v("nhl_page_view"),
            listens = self.t("listens"),
            range = dates.filter(sql, "ts"),
            range_l = dates.filter(sql, "ts"),
            ghost = sql.ghost_key(),
            hub_user = self.v("hub_user"),
        )
    }

    fn song_hourly_select(&self, dates: &Dates) -> String {
        format!(
            "SELECT date, hour, song_hk, song, artist, COUNT(*) AS plays,
                    COUNT(DISTINCT CASE WHEN user_hk <> {ghost} THEN user_hk END) AS listeners,
                    SUM(CASE WHEN user_hk = {ghost} THEN 1 ELSE 0 END) AS guest_plays,
                    SUM(duration) / 60.0 AS minutes_played
             FROM {listens} WHERE {range} GROUP BY date, hour, song_hk, song, artist",
            ghost = self.sql.ghost_key(),
            listens = self.t("listens"),
            range = dates.filter(&self.sql, "ts"),
        )
    }

    fn top_songs_select(&self, dates: &Dates) -> String {
        format!(
            "SELECT * FROM (
               SELECT date, row_number() OVER (PARTITION BY date ORDER BY plays DESC, song, artist) AS rank,
                      song_hk, song, artist, plays, listeners
               FROM (SELECT date, song_hk, song, artist, COUNT(*) AS plays,
                            COUNT(DISTINCT CASE WHEN user_hk <> {ghost} THEN user_hk END) AS listeners
                     FROM {listens} WHERE {range} GROUP BY date, song_hk, song, artist) d) r
             WHERE rank <= 10",
            ghost = self.sql.ghost_key(),
            listens = self.t("listens"),
            range = dates.filter(&self.sql, "ts"),
        )
    }

    fn level_changes_select(&self, dates: &Dates) -> String {
        let sql = &self.sql;
        format!(
            "SELECT date, SUM(upgrades) AS upgrades, SUM(downgrades) AS downgrades, SUM(cancellations) AS cancellations
             FROM (
               SELECT {date} AS date, SUM(CASE WHEN to_level = 'paid' THEN 1 ELSE 0 END) AS upgrades,
                      SUM(CASE WHEN to_level = 'free' THEN 1 ELSE 0 END) AS downgrades, 0 AS cancellations
               FROM {sc} WHERE {range} GROUP BY 1
               UNION ALL
               SELECT {date}, 0, 0, COUNT(*) FROM {pv}
               WHERE {range} AND page_hk = {cancel} GROUP BY 1) c
             GROUP BY date",
            date = sql.date_of("ts"),
            sc = self.v("nhl_status_change"),
            pv = self.v("nhl_page_view"),
            range = dates.filter(sql, "ts"),
            cancel = sql.hash_key(&["'Cancellation Confirmation'"]),
        )
    }

    /// Offers and holdouts per rule and day, and which converted within [`CONVERSION_DAYS`] of the offer:
    /// an `upgrade*` rule's when the user moved to paid, a `retention*` rule's when the user neither moved
    /// to free nor cancelled. Other rules' conversions are NULL (no goal is known for them).
    fn offer_performance_select(&self) -> String {
        let sql = &self.sql;
        format!(
            "WITH o AS (
               SELECT n.offer_hk, r.rule_id, n.user_hk, n.ts, n.holdout, {date} AS date
               FROM {nhl_offer} n JOIN {hub_rule} r ON r.offer_rule_hk = n.offer_rule_hk),
             moves AS (
               SELECT user_hk, ts, CASE WHEN to_level = 'paid' THEN 'up' ELSE 'down' END AS move FROM {sc}
               UNION ALL
               SELECT user_hk, ts, 'down' FROM {pv} WHERE page_hk = {cancel}),
             per_offer AS (
               SELECT o.offer_hk, o.rule_id, o.date, o.holdout,
                      CASE WHEN o.rule_id LIKE 'upgrade%' THEN MAX(CASE WHEN m.move = 'up' THEN 1 ELSE 0 END)
                           WHEN o.rule_id LIKE 'retention%' THEN 1 - MAX(CASE WHEN m.move = 'down' THEN 1 ELSE 0 END)
                      END AS converted
               FROM o LEFT JOIN moves m ON m.user_hk = o.user_hk AND m.ts > o.ts AND m.ts <= {window_end}
               GROUP BY o.offer_hk, o.rule_id, o.date, o.holdout),
             counted AS (
               SELECT rule_id, date,
                      SUM(CASE WHEN holdout THEN 0 ELSE 1 END) AS offers,
                      SUM(CASE WHEN holdout THEN 1 ELSE 0 END) AS holdouts,
                      SUM(CASE WHEN holdout THEN 0 ELSE converted END) AS conversions,
                      SUM(CASE WHEN holdout THEN converted ELSE 0 END) AS holdout_conversions
               FROM per_offer GROUP BY rule_id, date)
             SELECT rule_id, date, offers, holdouts, conversions, holdout_conversions,
                    1.0 * conversions / NULLIF(offers, 0) AS conversion_rate,
                    1.0 * holdout_conversions / NULLIF(holdouts, 0) AS holdout_conversion_rate,
                    1.0 * conversions / NULLIF(offers, 0) - 1.0 * holdout_conversions / NULLIF(holdouts, 0) AS uplift
             FROM counted",
            date = sql.date_of("n.ts"),
            nhl_offer = self.v("nhl_offer"),
            hub_rule = self.v("hub_offer_rule"),
            sc = self.v("nhl_status_change"),
            pv = self.v("nhl_page_view"),
            cancel = sql.hash_key(&["'Cancellation Confirmation'"]),
            window_end = sql.plus_days("o.ts", CONVERSION_DAYS),
        )
    }

    /// Session aggregates of this run's new events, merged into the stored rows.
    fn sessions_select(&self) -> String {
        let sql = &self.sql;
        let ghost = sql.ghost_key();
        format!(
            "WITH pv AS (
               SELECT session_hk, MIN(ts) AS started_at, MAX(ts) AS ended_at, COUNT(*) AS items,
                      MAX(CASE WHEN user_hk <> {ghost} THEN user_hk END) AS user_hk
               FROM {new_pv} GROUP BY session_hk),
             l AS (SELECT session_hk, COUNT(*) AS listens, MAX(CASE WHEN user_hk <> {ghost} THEN user_hk END) AS user_hk
                   FROM {new_l} GROUP BY session_hk),
             delta AS (
               SELECT COALESCE(pv.session_hk, l.session_hk) AS session_hk, pv.started_at, pv.ended_at,
                      COALESCE(pv.items, 0) AS items, COALESCE(l.listens, 0) AS listens,
                      COALESCE(pv.user_hk, l.user_hk) AS user_hk
               FROM pv FULL OUTER JOIN l ON l.session_hk = pv.session_hk),
             merged AS (
               SELECT d.session_hk,
                      CASE WHEN o.started_at IS NULL OR d.started_at < o.started_at THEN d.started_at ELSE o.started_at END AS started_at,
                      CASE WHEN o.ended_at IS NULL OR d.ended_at > o.ended_at THEN d.ended_at ELSE o.ended_at END AS ended_at,
                      COALESCE(o.items, 0) + d.items AS items, COALESCE(o.listens, 0) + d.listens AS listens,
                      -- A session's user may first show up in a later run (its page views arrive after its plays).
                      CASE WHEN o.user_hk IS NULL OR o.user_hk = {ghost} THEN COALESCE(d.user_hk, {ghost}) ELSE o.user_hk END AS user_hk
               FROM delta d LEFT JOIN {sessions} o ON o.session_hk = d.session_hk)
             SELECT m.session_hk, se.session_id, m.user_hk, u.user_id, {date} AS date, m.started_at, m.ended_at,
                    {length} AS length_seconds, m.items, m.listens
             FROM merged m JOIN {hub_session} se ON se.session_hk = m.session_hk
             JOIN {hub_user} u ON u.user_hk = m.user_hk",
            new_pv = self.added("nhl_page_view"),
            new_l = self.added("nhl_listen"),
            sessions = self.t("sessions"),
            date = sql.date_of("m.started_at"),
            length = sql.seconds_between("m.started_at", "m.ended_at"),
            hub_session = self.v("hub_session"),
            hub_user = self.v("hub_user"),
        )
    }

    /// The steps that bring every mart up to date with this run's new vault rows (the `new_*` tables).
    pub fn update(&self) -> Vec<Step> {
        let sql = &self.sql;
        let mut steps = Vec::new();
        // Users whose satellites changed: their plays since the change are rebuilt.
        let since = sql.temp_table("changed_users");
        let user_sats = ["sat_user_profile", "sat_user_location", "sat_user_level"];
        let union: Vec<String> = user_sats
            .iter()
            .map(|t| format!("SELECT hk, effective_from FROM {}", self.added(t)))
            .collect();
        steps.push(Step::execute(sql.create_temp_as(
            &since,
            &format!(
                "SELECT hk AS user_hk, MIN(effective_from) AS since FROM ({}) c GROUP BY hk",
                union.join(" UNION ALL ")
            ),
        )));
        steps.push(Step::bind(
            format!("SELECT MIN(since) FROM {since}"),
            &[("rebuild_from", ParamType::Timestamp)],
        ));
        let listens = self.t("listens");
        let new_listens = self.added("nhl_listen");
        // The plays to (re)write: this run's new ones, and those of changed users since their change.
        let targets = sql.temp_table("listens_to_write");
        let new_only = format!("SELECT listen_hk, ts FROM {new_listens}");
        steps.push(Step::When {
            param: "rebuild_from".into(),
            then: vec![Step::execute(sql.create_temp_as(
                &targets,
                &format!(
                    "{new_only} UNION DISTINCT SELECT n.listen_hk, n.ts FROM {nhl} n JOIN {since} c ON c.user_hk = n.user_hk AND n.ts >= c.since \
                     WHERE n.ts >= {from}",
                    nhl = self.v("nhl_listen"),
                    from = param("rebuild_from"),
                ),
            ))],
            otherwise: vec![Step::execute(sql.create_temp_as(&targets, &new_only))],
        });
        steps.push(Step::bind(
            format!("SELECT MIN(ts), MAX(ts) FROM {targets}"),
            &[
                ("targets_from", ParamType::Timestamp),
                ("targets_to", ParamType::Timestamp),
            ],
        ));
        // The plays to write, as a condition on a table's columns (prefix: "" or an alias and a dot); the
        // range first, for pruning.
        let in_targets = |prefix: &str| {
            format!(
                "{prefix}ts BETWEEN {lo} AND {hi} AND {prefix}listen_hk IN (SELECT listen_hk FROM {targets})",
                lo = param("targets_from"),
                hi = param("targets_to"),
            )
        };
        steps.push(Step::when(
            "rebuild_from",
            vec![Step::reported(
                format!("DELETE FROM {listens} WHERE {}", in_targets("")),
                "marts.listens (rebuilt)",
            )],
        ));
        steps.push(Step::reported(
            self.insert("listens", &self.listens_select(&in_targets("n."))),
            "marts.listens",
        ));

        // Sessions: merge the new events in.
        let merged = sql.temp_table("merged_sessions");
        steps.push(Step::execute(
            sql.create_temp_as(&merged, &self.sessions_select()),
        ));
        let sessions = self.t("sessions");
        steps.push(Step::execute(format!(
            "DELETE FROM {sessions} WHERE session_hk IN (SELECT session_hk FROM {merged})"
        )));
        steps.push(Step::reported(
            self.insert("sessions", &format!("SELECT * FROM {merged}")),
            "marts.sessions",
        ));

        // Dates touched by this run's new (or rebuilt) events.
        let touched = sql.temp_table("touched_dates");
        steps.push(Step::execute(sql.create_temp_as(
            &touched,
            &format!(
                "SELECT DISTINCT d FROM (
                   SELECT {d_ts} AS d FROM {new_pv} UNION ALL SELECT {d_ts} FROM {targets} UNION ALL SELECT {d_ts} FROM {new_sc}) x",
                d_ts = sql.date_of("ts"),
                new_pv = self.added("nhl_page_view"),
                new_sc = self.added("nhl_status_change"),
            ),
        )));
        steps.push(Step::bind(
            format!("SELECT COUNT(*), MIN(d), MAX(d) FROM {touched}"),
            &[
                ("touched_days", ParamType::Int),
                ("touched_first", ParamType::Date),
                ("touched_last", ParamType::Date),
            ],
        ));
        let dates = Dates { touched };
        let mut rebuilds = Vec::new();
        for (mart, select) in [
            (
                "daily_user_activity",
                self.daily_user_activity_select(&dates),
            ),
            ("song_hourly_metrics", self.song_hourly_select(&dates)),
            ("top_songs_daily", self.top_songs_select(&dates)),
            ("level_changes", self.level_changes_select(&dates)),
        ] {
            rebuilds.push(Step::execute(format!(
                "DELETE FROM {} WHERE {}",
                self.t(mart),
                dates.filter_dates("date")
            )));
            rebuilds.push(Step::reported(
                self.insert(mart, &select),
                format!("marts.{mart}"),
            ));
        }
        steps.push(Step::when("touched_days", rebuilds));

        // Offer performance: a new offer, or any new event (a conversion may be among them), can change
        // any day within the window before it; the mart is small (rules × days), so it is rebuilt whole.
        steps.push(Step::bind(
            format!(
                "SELECT COUNT(*) FROM (SELECT 1 AS x FROM {new_offers} UNION ALL SELECT 1 FROM {touched}) c",
                new_offers = self.added("nhl_offer"),
                touched = dates.touched,
            ),
            &[("offer_changes", ParamType::Int)],
        ));
        let offer_performance = self.t("offer_performance");
        steps.push(Step::when(
            "offer_changes",
            vec![
                Step::execute(format!("DELETE FROM {offer_performance} WHERE TRUE")),
                Step::reported(
                    self.insert("offer_performance", &self.offer_performance_select()),
                    "marts.offer_performance",
                ),
            ],
        ));
        steps
    }

    fn insert(&self, mart: &str, select: &str) -> String {
        let def = mart_tables()
            .into_iter()
            .find(|t| t.name == mart)
            .map(|t| {
                t.column_names()
                    .iter()
                    .map(|c| (*c).to_owned())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let columns: Vec<&str> = def.iter().map(String::as_str).collect();
        self.sql.insert_by_name(&self.t(mart), &columns, select)
    }
}

/// Each mart's unique key, the columns that tell its rows apart: what `playlog serve` pages by (ties
/// broken by it), so that walking the pages skips and repeats no row.
pub const MART_KEYS: [(&str, &[&str]); 7] = [
    ("listens", &["listen_hk"]),
    ("sessions", &["session_hk"]),
    ("daily_user_activity", &["date", "user_hk"]),
    ("song_hourly_metrics", &["hour", "song_hk"]),
    ("top_songs_daily", &["date", "rank"]),
    ("level_changes", &["date"]),
    ("offer_performance", &["date", "rule_id"]),
];

/// Days after an offer within which a conversion (or, for retention, staying) counts.
pub const CONVERSION_DAYS: i64 = 7;

/// Every mart, with typed columns. Partitioned by event date in BigQuery: rebuilds and readers go by
/// date.
pub(crate) fn mart_tables() -> Vec<TableDef> {
    use Type::*;
    let mart = |name: &str, cluster: Option<&str>, columns: &[(&str, Type)]| TableDef {
        schema: "marts",
        name: name.to_owned(),
        columns: columns.iter().map(|(c, t)| ((*c).to_owned(), *t)).collect(),
        partition: Some(PartitionBy::Date("date".into())),
        cluster: cluster.map(str::to_owned),
    };
    vec![
        mart(
            "listens",
            Some("user_hk"),
            &[
                ("listen_hk", Binary),
                ("event_id", Text),
                ("ts", Timestamp),
                ("date", Date),
                ("hour", Timestamp),
                ("weekday", BigInt),
                ("is_weekend", Bool),
                ("user_hk", Binary),
                ("user_id", BigInt),
                ("first_name", Text),
                ("last_name", Text),
                ("gender", Text),
                ("registration", Timestamp),
                ("city", Text),
                ("state", Text),
                ("zip", Text),
                ("lat", Double),
                ("lon", Double),
                ("level", Text),
                ("auth", Text),
                ("song_hk", Binary),
                ("song", Text),
                ("artist", Text),
                ("duration", Double),
                ("session_hk", Binary),
                ("session_id", BigInt),
                ("item_in_session", Int),
            ],
        ),
        mart(
            "sessions",
            Some("session_hk"),
            &[
                ("session_hk", Binary),
                ("session_id", BigInt),
                ("user_hk", Binary),
                ("user_id", BigInt),
                ("date", Date),
                ("started_at", Timestamp),
                ("ended_at", Timestamp),
                ("length_seconds", Double),
                ("items", BigInt),
                ("listens", BigInt),
            ],
        ),
        mart(
            "daily_user_activity",
            Some("user_hk"),
            &[
                ("date", Date),
                ("user_hk", Binary),
                ("user_id", BigInt),
                ("listens", BigInt),
                ("sessions", BigInt),
                ("page_views", BigInt),
                ("minutes_played", Double),
                ("level", Text),
            ],
        ),
        mart(
            "song_hourly_metrics",
            Some("song_hk"),
            &[
                ("date", Date),
                ("hour", Timestamp),
                ("song_hk", Binary),
                ("song", Text),
                ("artist", Text),
                ("plays", BigInt),
                ("listeners", BigInt),
                ("guest_plays", BigInt),
                ("minutes_played", Double),
            ],
        ),
        mart(
            "top_songs_daily",
            None,
            &[
                ("date", Date),
                ("rank", BigInt),
                ("song_hk", Binary),
                ("song", Text),
                ("artist", Text),
                ("plays", BigInt),
                ("listeners", BigInt),
            ],
        ),
        mart(
            "level_changes",
            None,
            &[
                ("date", Date),
                ("upgrades", BigInt),
                ("downgrades", BigInt),
                ("cancellations", BigInt),
            ],
        ),
        mart(
            "offer_performance",
            None,
            &[
                ("rule_id", Text),
                ("date", Date),
                ("offers", BigInt),
                ("holdouts", BigInt),
                ("conversions", BigInt),
                ("holdout_conversions", BigInt),
                ("conversion_rate", Double),
                ("holdout_conversion_rate", Double),
                ("uplift", Double),
            ],
        ),
    ]
}

/// The event dates a run touched (a temp table of `d`), with their first and last day bound as
/// `{{touched_first}}` and `{{touched_last}}` (for pruning reads).
pub(crate) struct Dates {
    touched: String,
}

impl Dates {
    /// Rows of these dates, by a timestamp column: a range first (prunes), then the exact dates.
    fn filter(&self, sql: &Sql, ts: &str) -> String {
        let first = format!("CAST({} AS TIMESTAMP)", param("touched_first"));
        let last = format!("CAST({} AS TIMESTAMP)", param("touched_last"));
        format!(
            "{ts} >= {first} AND {ts} < {hi} AND {date} IN (SELECT d FROM {touched})",
            hi = sql.day_after(&last),
            date = sql.date_of(ts),
            touched = self.touched,
        )
    }

    fn filter_dates(&self, date: &str) -> String {
        format!(
            "{date} BETWEEN {first} AND {last} AND {date} IN (SELECT d FROM {touched})",
            first = param("touched_first"),
            last = param("touched_last"),
            touched = self.touched,
        )
    }
}

#[cfg(test)]
mod key_tests {
    use super::*;

    #[test]
    fn every_mart_has_a_key_of_its_own_columns() {
        let marts = mart_tables();
        assert_eq!(marts.len(), MART_KEYS.len());
        for mart in &marts {
            let (_, key) = MART_KEYS
                .iter()
                .find(|(name, _)| *name == mart.name)
                .unwrap_or_else(|| panic!("{} has no key", mart.name));
            for column in *key {
                assert!(
                    mart.column_names().contains(column),
                    "{}.{column}",
                    mart.name
                );
            }
        }
    }
}
