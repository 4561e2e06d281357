//! Wide marts over the vault, kept up to date incrementally.
//!
//! - `listens` is event-grain: new plays are inserted; a user whose satellites gained a change point has
//!   their plays since that point rebuilt (a late level change corrects the level at play time).
//! - `sessions` merges each run's new events into the stored rows (min/max/sums are exact to combine).
//! - the daily and hourly aggregates are rebuilt for the event dates this run touched, from rows read by
//!   event-time range (so a run's cost follows the days it touched, not the history).

use playlog_sql::{SqlError, SqlSession, Value};

use crate::dialect::{Layout, Partition, Sql};

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

    fn daily_user_activity_select(&self, dates: &DateRange) -> String {
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

    fn song_hourly_select(&self, dates: &DateRange) -> String {
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

    fn top_songs_select(&self, dates: &DateRange) -> String {
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

    fn level_changes_select(&self, dates: &DateRange) -> String {
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

    pub fn create_tables(&self, s: &mut dyn SqlSession) -> Result<(), SqlError> {
        let sql = &self.sql;
        if let Some(ddl) = sql.create_schema("marts") {
            s.execute(&ddl)?;
        }
        let none = DateRange::empty();
        // Every mart is partitioned by event date in BigQuery: its rebuilds and readers go by date.
        let by_date = |cluster| Layout {
            partition: Some(Partition::Date("date")),
            cluster,
        };
        for (mart, select, cluster) in [
            ("listens", self.listens_select("FALSE"), Some("user_hk")),
            ("sessions", self.sessions_shape(), Some("session_hk")),
            (
                "daily_user_activity",
                self.daily_user_activity_select(&none),
                Some("user_hk"),
            ),
            (
                "song_hourly_metrics",
                self.song_hourly_select(&none),
                Some("song_hk"),
            ),
            ("top_songs_daily", self.top_songs_select(&none), None),
            ("level_changes", self.level_changes_select(&none), None),
        ] {
            s.execute(&sql.create_table_like(&self.t(mart), &select, by_date(cluster)))?;
        }
        Ok(())
    }

    fn sessions_shape(&self) -> String {
        // The merge reads the sessions table itself, so its first shape is spelled out.
        let sql = &self.sql;
        format!(
            "SELECT se.session_hk, se.session_id, u.user_hk, u.user_id, {date} AS date, n.ts AS started_at, n.ts AS ended_at,
                    {length} AS length_seconds, CAST(0 AS {int}) AS items, CAST(0 AS {int}) AS listens
             FROM {pv} n JOIN {hub_session} se ON se.session_hk = n.session_hk JOIN {hub_user} u ON u.user_hk = n.user_hk",
            date = sql.date_of("n.ts"),
            length = sql.seconds_between("n.ts", "n.ts"),
            int = sql.int_type(),
            pv = self.v("nhl_page_view"),
            hub_session = self.v("hub_session"),
            hub_user = self.v("hub_user"),
        )
    }

    /// Brings every mart up to date with this run's new vault rows (the `new_*` tables).
    pub fn update(&self, s: &mut dyn SqlSession) -> Result<Vec<(String, usize)>, SqlError> {
        let sql = &self.sql;
        let mut changed = Vec::new();
        // Users whose satellites changed: their plays since the change are rebuilt.
        let since = sql.temp_table("changed_users");
        let user_sats = ["sat_user_profile", "sat_user_location", "sat_user_level"];
        let union: Vec<String> = user_sats
            .iter()
            .map(|t| format!("SELECT hk, effective_from FROM {}", self.added(t)))
            .collect();
        s.execute(&sql.create_temp_as(
            &since,
            &format!(
                "SELECT hk AS user_hk, MIN(effective_from) AS since FROM ({}) c GROUP BY hk",
                union.join(" UNION ALL ")
            ),
        ))?;
        let rebuild_from = crate::first_value(s, &format!("SELECT MIN(since) FROM {since}"))?;
        let listens = self.t("listens");
        let new_listens = self.added("nhl_listen");
        // The plays to (re)write: this run's new ones, and those of changed users since their change.
        let targets = sql.temp_table("listens_to_write");
        let rebuilt = match &rebuild_from {
            Some(from) => format!(
                " UNION DISTINCT SELECT n.listen_hk, n.ts FROM {nhl} n JOIN {since} c ON c.user_hk = n.user_hk AND n.ts >= c.since \
                 WHERE n.ts >= {from}",
                nhl = self.v("nhl_listen"),
                from = sql.timestamp(from),
            ),
            None => String::new(),
        };
        s.execute(&sql.create_temp_as(
            &targets,
            &format!("SELECT listen_hk, ts FROM {new_listens}{rebuilt}"),
        ))?;
        let range = s.query(&format!("SELECT MIN(ts), MAX(ts) FROM {targets}"))?;
        let (lo, hi) = match range.first().map(Vec::as_slice) {
            Some([Value::Text(lo), Value::Text(hi)]) => (sql.timestamp(lo), sql.timestamp(hi)),
            _ => (sql.end_of_time(), sql.beginning_of_time()),
        };
        // The plays to write, as a condition on a table's columns (prefix: "" or an alias and a dot); the
        // range first, for pruning.
        let in_targets = |prefix: &str| {
            format!(
                "{prefix}ts BETWEEN {lo} AND {hi} AND {prefix}listen_hk IN (SELECT listen_hk FROM {targets})"
            )
        };
        if rebuild_from.is_some() {
            let deleted = s.execute(&format!("DELETE FROM {listens} WHERE {}", in_targets("")))?;
            changed.push(("marts.listens (rebuilt)".to_owned(), deleted));
        }
        let inserted = sql.insert_by_name(s, &listens, &self.listens_select(&in_targets("n.")))?;
        changed.push(("marts.listens".to_owned(), inserted));

        // Sessions: merge the new events in.
        let merged = sql.temp_table("merged_sessions");
        s.execute(&sql.create_temp_as(&merged, &self.sessions_select()))?;
        let sessions = self.t("sessions");
        s.execute(&format!(
            "DELETE FROM {sessions} WHERE session_hk IN (SELECT session_hk FROM {merged})"
        ))?;
        changed.push((
            "marts.sessions".to_owned(),
            sql.insert_by_name(s, &sessions, &format!("SELECT * FROM {merged}"))?,
        ));

        // Dates touched by this run's new (or rebuilt) events.
        let touched = s.query(&format!(
            "SELECT DISTINCT d FROM (
               SELECT {d_ts} AS d FROM {new_pv} UNION ALL SELECT {d_ts} FROM {targets} UNION ALL SELECT {d_ts} FROM {new_sc}) x
             ORDER BY 1",
            d_ts = sql.date_of("ts"),
            new_pv = self.added("nhl_page_view"),
            new_sc = self.added("nhl_status_change"),
        ))?;
        let dates = DateRange::of(
            touched
                .iter()
                .filter_map(|r| r.first())
                .map(Value::to_string)
                .collect(),
        );
        if dates.is_empty() {
            return Ok(changed);
        }
        for (mart, select) in [
            (
                "daily_user_activity",
                self.daily_user_activity_select(&dates),
            ),
            ("song_hourly_metrics", self.song_hourly_select(&dates)),
            ("top_songs_daily", self.top_songs_select(&dates)),
            ("level_changes", self.level_changes_select(&dates)),
        ] {
            let table = self.t(mart);
            s.execute(&format!(
                "DELETE FROM {table} WHERE {}",
                dates.filter_dates(sql, "date")
            ))?;
            changed.push((
                format!("marts.{mart}"),
                sql.insert_by_name(s, &table, &select)?,
            ));
        }
        Ok(changed)
    }
}

/// A set of event dates, with the event-time range around them (for pruning reads).
pub(crate) struct DateRange {
    dates: Vec<String>,
}

impl DateRange {
    fn empty() -> DateRange {
        DateRange { dates: Vec::new() }
    }

    fn of(mut dates: Vec<String>) -> DateRange {
        dates.sort();
        dates.dedup();
        DateRange { dates }
    }

    fn is_empty(&self) -> bool {
        self.dates.is_empty()
    }

    fn list(&self, sql: &Sql) -> String {
        self.dates
            .iter()
            .map(|d| format!("DATE {}", sql.string(d)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Rows of these dates, by a timestamp column: a range first (prunes), then the exact dates.
    fn filter(&self, sql: &Sql, ts: &str) -> String {
        let (Some(first), Some(last)) = (self.dates.first(), self.dates.last()) else {
            return "FALSE".into();
        };
        format!(
            "{ts} >= {lo} AND {ts} < {hi} AND {date} IN ({list})",
            lo = sql.timestamp(&format!("{first} 00:00:00")),
            hi = sql.day_after(&format!("{last} 00:00:00")),
            date = sql.date_of(ts),
            list = self.list(sql),
        )
    }

    fn filter_dates(&self, sql: &Sql, date: &str) -> String {
        if self.dates.is_empty() {
            return "FALSE".into();
        }
        format!("{date} IN ({})", self.list(sql))
    }
}
