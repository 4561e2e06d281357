#![allow(clippy::unwrap_used)]

//! The vault against a real DuckDB file, from raw rows written directly (the consumer's tables, without the
//! consumer): golden hashes, the scenarios a Data Vault must get right, idempotency and atomicity.

use std::time::Duration;

use playlog_vault::{DEFAULT_MODEL, Model, RunReport, Sql};
use playlog_warehouse::{Value, Warehouse};

struct Fixture {
    _dir: tempfile::TempDir,
    warehouse: Warehouse,
    model: Model,
    /// Each load gets a later `_loaded_at`, like consumer batches.
    load: u32,
    offset: i64,
}

/// One raw event: the columns that matter to a scenario; the rest get plausible defaults.
#[derive(Clone)]
struct Ev {
    table: &'static str,
    event_id: String,
    ts: &'static str,
    user_id: Option<i64>,
    session_id: i64,
    level: &'static str,
    city: &'static str,
    song: &'static str,
    page: &'static str,
}

fn ev(table: &'static str, id: &str, ts: &'static str, user_id: Option<i64>) -> Ev {
    Ev {
        table,
        event_id: id.to_owned(),
        ts,
        user_id,
        session_id: 7,
        level: "free",
        city: "Boston",
        song: "Hoppípolla",
        page: if table == "listen_events" {
            "NextSong"
        } else {
            "Home"
        },
    }
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("w.duckdb");
        let warehouse = Warehouse::open(&format!("duckdb:{}", path.display())).expect("open");
        Fixture {
            _dir: dir,
            warehouse,
            model: Model::parse(DEFAULT_MODEL, "model.toml").expect("model"),
            load: 0,
            offset: 0,
        }
    }

    /// Appends events as one consumer batch would (one `_loaded_at` for all), and records the offsets.
    fn load(&mut self, events: &[Ev]) {
        self.load += 1;
        let loaded_at = format!("2030-01-01 00:00:{:02}", self.load);
        self.load_at(events, &loaded_at);
        self.record_offsets();
    }

    /// Records in `raw._kafka_offsets` the next offset after every landed row, as the consumer does when
    /// its write commits (BigQuery: after the rows have streamed).
    fn record_offsets(&mut self) {
        let per_table: Vec<String> = [
            "listen_events",
            "page_view_events",
            "auth_events",
            "status_change_events",
        ]
        .iter()
        .map(|t| {
            format!(
                "SELECT _topic, _partition, MAX(_offset) + 1 AS next FROM raw.{t} GROUP BY 1, 2"
            )
        })
        .collect();
        self.warehouse
            .query(&format!(
                "INSERT OR REPLACE INTO raw._kafka_offsets
                 SELECT 'test', _topic, _partition, next, TIMESTAMP '2030-01-01' FROM ({}) o",
                per_table.join(" UNION ALL ")
            ))
            .expect("offsets recorded");
    }

    /// Appends events with a given load time, without recording their offsets.
    fn load_at(&mut self, events: &[Ev], loaded_at: &str) {
        let mut statements = Vec::new();
        for e in events {
            self.offset += 1;
            let user = |v: &str| {
                if e.user_id.is_some() {
                    format!("'{v}'")
                } else {
                    "NULL".into()
                }
            };
            let common = format!(
                "event_id := '{id}', ts := TIMESTAMP '{ts}', session_id := {session}, item_in_session := {item}, level := '{level}',
                 user_id := {uid}, first_name := {first}, last_name := {last}, gender := {gender}, registration := {reg},
                 zip := '02134', city := '{city}', state := 'MA', lat := 42.35, lon := -71.06, user_agent := 'Mozilla/5.0 \"quoted\"',
                 _topic := '{table}', _partition := 0, _offset := {offset}, _kafka_ts := TIMESTAMP '{ts}', _loaded_at := TIMESTAMP '{loaded_at}'",
                id = e.event_id,
                ts = e.ts,
                session = e.session_id,
                item = self.offset,
                level = e.level,
                uid = e.user_id.map_or("NULL".into(), |u| u.to_string()),
                first = user("Ada"),
                last = user("O''Brien"),
                gender = user("F"),
                reg = if e.user_id.is_some() { "TIMESTAMP '2029-06-01 00:00:00'" } else { "NULL" },
                city = e.city,
                table = e.table,
                offset = self.offset,
            );
            let specific = match e.table {
                "listen_events" => format!(
                    "artist := 'Sigur Rós', song := '{}', duration := 180.5, auth := 'Logged In'",
                    e.song
                ),
                "page_view_events" => format!(
                    "page := '{}', auth := 'Logged In', method := 'GET', status := 200, artist := NULL, song := NULL, duration := NULL",
                    e.page
                ),
                "auth_events" => "success := true".into(),
                "status_change_events" => "auth := 'Logged In'".into(),
                other => panic!("table {other}"),
            };
            statements.push(format!(
                "INSERT INTO raw.{t} BY NAME SELECT UNNEST(struct_pack({common}, {specific}))",
                t = e.table
            ));
        }
        self.warehouse
            .transaction(|s| {
                for st in &statements {
                    s.execute(st)?;
                }
                Ok(())
            })
            .expect("raw rows");
    }

    fn run(&mut self) -> RunReport {
        playlog_vault::run(&mut self.warehouse, &self.model).expect("vault run")
    }

    fn rows(&mut self, sql: &str) -> Vec<Vec<Value>> {
        self.warehouse.query(sql).expect(sql)
    }

    fn count(&mut self, table: &str) -> i64 {
        self.rows(&format!("SELECT count(*) FROM {table}"))[0][0]
            .as_i64()
            .expect("count")
    }

    fn texts(&mut self, sql: &str) -> Vec<String> {
        self.rows(sql)
            .into_iter()
            .map(|r| r.iter().map(Value::to_string).collect::<Vec<_>>().join(" "))
            .collect()
    }
}

const ALL_TABLES: [&str; 22] = [
    "vault.hub_user",
    "vault.hub_song",
    "vault.hub_artist",
    "vault.hub_session",
    "vault.hub_page",
    "vault.link_song_artist",
    "vault.link_user_session",
    "vault.nhl_listen",
    "vault.nhl_page_view",
    "vault.nhl_auth",
    "vault.nhl_status_change",
    "vault.sat_user_profile",
    "vault.sat_user_location",
    "vault.sat_user_device",
    "vault.sat_song",
    "vault.sat_user_level",
    "marts.listens",
    "marts.sessions",
    "marts.daily_user_activity",
    "marts.song_hourly_metrics",
    "marts.top_songs_daily",
    "marts.level_changes",
];

/// The current level timeline: the newest version of each interval.
fn level_timeline(f: &mut Fixture) -> Vec<String> {
    f.texts(
        "SELECT level, CAST(valid_from AS VARCHAR), CAST(valid_to AS VARCHAR) FROM vault.sat_user_level
         QUALIFY row_number() OVER (PARTITION BY user_hk, valid_from ORDER BY load_date DESC) = 1 ORDER BY valid_from",
    )
}

fn snapshot(f: &mut Fixture) -> Vec<i64> {
    ALL_TABLES.iter().map(|t| f.count(t)).collect()
}

#[test]
fn hash_keys_and_hashdiffs_match_golden_vectors_computed_with_hashlib() {
    let mut f = Fixture::new();
    let sql = Sql::for_warehouse(&f.warehouse);
    let golden = include_str!("data/golden-hashes.tsv");
    let mut checked = 0;
    for line in golden.lines().filter(|l| !l.starts_with('#')) {
        let [kind, columns, want] = line.split('\t').collect::<Vec<_>>()[..] else {
            panic!("bad golden line {line:?}")
        };
        let literal = |v: &str| {
            if v == "\\N" {
                "CAST(NULL AS VARCHAR)".to_owned()
            } else {
                sql.string(v)
            }
        };
        let expr = match kind {
            "key" => {
                let cols: Vec<String> = columns.split('|').map(literal).collect();
                sql.hash_key(&cols.iter().map(String::as_str).collect::<Vec<_>>())
            }
            "hashdiff" => {
                // Pass the columns unsorted: the hashdiff must sort them by name.
                let named: Vec<(String, String)> = columns
                    .split('|')
                    .map(|kv| {
                        let (k, v) = kv.split_once('=').expect("name=value");
                        (k.to_owned(), literal(v))
                    })
                    .collect();
                let select: Vec<String> =
                    named.iter().map(|(k, v)| format!("{v} AS {k}")).collect();
                let names: Vec<&str> = named.iter().map(|(k, _)| k.as_str()).collect();
                format!(
                    "(SELECT {} FROM (SELECT {}))",
                    sql.hashdiff(&names),
                    select.join(", ")
                )
            }
            other => panic!("kind {other}"),
        };
        let got = f.rows(&format!("SELECT {expr}"))[0][0].to_string();
        let got = if got == "NULL" { "\\N".to_owned() } else { got };
        assert_eq!(got, want, "{kind} of {columns:?}");
        checked += 1;
    }
    assert!(checked >= 10);
}

#[test]
fn satellite_changes_a_b_a_are_three_rows_and_duplicates_collapse() {
    let mut f = Fixture::new();
    let mut boston = ev("page_view_events", "e1", "2030-01-01 10:00:00", Some(1));
    let mut nyc = ev("page_view_events", "e2", "2030-01-01 11:00:00", Some(1));
    nyc.city = "New York";
    let mut back = ev("page_view_events", "e3", "2030-01-01 12:00:00", Some(1));
    back.city = "Boston";
    boston.session_id = 1;
    // e2 delivered twice (a producer retry, or a consumer restart elsewhere): one event.
    f.load(&[boston, nyc.clone(), nyc, back]);
    f.run();
    assert_eq!(f.count("vault.nhl_page_view"), 3);
    assert_eq!(
        f.texts("SELECT city FROM vault.sat_user_location ORDER BY effective_from"),
        ["Boston", "New York", "Boston"]
    );
    assert_eq!(
        f.count("vault.sat_user_profile"),
        1,
        "the profile never changed"
    );
}

#[test]
fn a_second_run_with_no_new_data_changes_nothing() {
    let mut f = Fixture::new();
    f.load(&[
        ev("listen_events", "l1", "2030-01-01 10:00:00", Some(1)),
        ev("page_view_events", "p1", "2030-01-01 10:00:00", Some(1)),
    ]);
    let first = f.run();
    assert!(first.vault_rows() > 0);
    let before = snapshot(&mut f);
    let second = f.run();
    assert_eq!(second.vault_rows(), 0);
    assert!(second.staged.is_empty());
    assert_eq!(snapshot(&mut f), before);
    // Re-loading the same events (a duplicate batch) adds nothing either.
    f.load(&[
        ev("listen_events", "l1", "2030-01-01 10:00:00", Some(1)),
        ev("page_view_events", "p1", "2030-01-01 10:00:00", Some(1)),
    ]);
    let third = f.run();
    assert_eq!(third.staged_rows(), 2);
    assert_eq!(snapshot(&mut f), before, "{:?}", third.changed);
}

#[test]
fn guests_link_to_the_ghost_user_and_are_never_dropped() {
    let mut f = Fixture::new();
    f.load(&[
        ev("listen_events", "g1", "2030-01-01 10:00:00", None),
        ev("page_view_events", "g2", "2030-01-01 10:00:00", None),
    ]);
    f.run();
    assert_eq!(f.count("vault.nhl_listen"), 1);
    assert_eq!(
        f.texts(
            "SELECT user_hk, user_id FROM vault.nhl_listen JOIN vault.hub_user USING (user_hk)"
        ),
        ["00000000000000000000000000000000 NULL"]
    );
    assert_eq!(
        f.count("vault.sat_user_profile"),
        0,
        "no satellite rows for the ghost"
    );
    assert_eq!(
        f.texts("SELECT user_id, level FROM marts.listens"),
        ["NULL free"]
    );
    assert_eq!(
        f.count("marts.daily_user_activity"),
        0,
        "guests are not active users"
    );
    assert_eq!(
        f.texts("SELECT user_id, items, listens FROM marts.sessions"),
        ["NULL 1 1"]
    );
}

#[test]
fn upgrade_then_downgrade_and_a_cancellation() {
    let mut f = Fixture::new();
    let mut up = ev("status_change_events", "s1", "2030-01-02 10:00:00", Some(1));
    up.level = "free"; // submitted while free
    let mut paid_listen = ev("listen_events", "l2", "2030-01-02 11:00:00", Some(1));
    paid_listen.level = "paid";
    let mut down = ev("status_change_events", "s2", "2030-01-02 12:00:00", Some(1));
    down.level = "paid";
    let mut cancel = ev("page_view_events", "p3", "2030-01-02 13:00:00", Some(1));
    cancel.page = "Cancellation Confirmation";
    let first_listen = ev("listen_events", "l1", "2030-01-02 09:00:00", Some(1));
    f.load(&[first_listen, up, paid_listen]);
    f.run();
    f.load(&[down, cancel]);
    f.run();
    assert_eq!(
        f.texts("SELECT from_level, to_level FROM vault.nhl_status_change ORDER BY ts"),
        ["free paid", "paid free"]
    );
    assert_eq!(
        level_timeline(&mut f),
        [
            "free 2030-01-02 09:00:00 2030-01-02 10:00:00.001",
            "paid 2030-01-02 10:00:00.001 2030-01-02 12:00:00.001",
            "free 2030-01-02 12:00:00.001 9999-12-31 00:00:00",
        ]
    );
    assert_eq!(
        f.texts("SELECT CAST(date AS VARCHAR), upgrades, downgrades, cancellations FROM marts.level_changes"),
        ["2030-01-02 1 1 1"]
    );
    assert_eq!(
        f.texts("SELECT level FROM marts.listens ORDER BY ts"),
        ["free", "paid"]
    );
}

#[test]
fn late_events_correct_the_satellite_timeline_and_the_marts() {
    let mut f = Fixture::new();
    let l1 = ev("listen_events", "l1", "2030-01-03 10:00:00", Some(1));
    let l3 = ev("listen_events", "l3", "2030-01-03 12:00:00", Some(1));
    // Each play's NextSong page view; the late play's page view arrives late too.
    let p1 = ev("page_view_events", "p1", "2030-01-03 10:00:00", Some(1));
    let p3 = ev("page_view_events", "p3", "2030-01-03 12:00:00", Some(1));
    f.load(&[l1, l3, p1, p3]);
    f.run();
    assert_eq!(
        f.texts("SELECT level FROM marts.listens ORDER BY ts"),
        ["free", "free"]
    );
    // A play at 11:00 at the paid level arrives late: paid from 11:00, and free again from 12:00 (the play
    // at 12:00 said so), not paid for ever.
    let mut late = ev("listen_events", "l2", "2030-01-03 11:00:00", Some(1));
    late.level = "paid";
    let mut late_page = ev("page_view_events", "p2", "2030-01-03 11:00:00", Some(1));
    late_page.level = "paid";
    f.load(&[late, late_page]);
    f.run();
    assert_eq!(
        level_timeline(&mut f),
        [
            "free 2030-01-03 10:00:00 2030-01-03 11:00:00",
            "paid 2030-01-03 11:00:00 2030-01-03 12:00:00",
            "free 2030-01-03 12:00:00 9999-12-31 00:00:00",
        ]
    );
    assert_eq!(
        f.texts("SELECT level FROM marts.listens ORDER BY ts"),
        ["free", "paid", "free"]
    );
    assert_eq!(
        f.texts("SELECT listens, page_views, level FROM marts.daily_user_activity"),
        ["3 3 free"]
    );
}

#[test]
fn a_failed_run_leaves_the_previous_state_intact() {
    let mut f = Fixture::new();
    f.load(&[ev("listen_events", "l1", "2030-01-01 10:00:00", Some(1))]);
    f.run();
    let before = snapshot(&mut f);
    let runs_before = f.count("vault._runs");
    f.load(&[ev("listen_events", "l2", "2030-01-01 11:00:00", Some(2))]);
    // A model whose last satellite fails at run time: everything before it in the same run is rolled back.
    let broken =
        DEFAULT_MODEL.replace("payload = [\"duration\"]", "payload = [\"no_such_column\"]");
    let broken = Model::parse(&broken, "broken.toml").expect("parses; fails only when run");
    let err = playlog_vault::run(&mut f.warehouse, &broken).expect_err("the run fails");
    assert!(err.to_string().contains("no_such_column"), "{err}");
    assert_eq!(snapshot(&mut f), before);
    assert_eq!(f.count("vault._runs"), runs_before);
    // The next good run picks the rows up.
    f.run();
    assert_eq!(f.count("vault.nhl_listen"), 2);
}

#[test]
fn check_passes_on_a_consistent_vault_and_reports_failures() {
    let mut f = Fixture::new();
    f.load(&[
        ev("listen_events", "l1", "2030-01-01 10:00:00", Some(1)),
        ev("page_view_events", "p1", "2030-01-01 10:00:00", None),
    ]);
    f.run();
    let max_age = Duration::from_secs(u64::MAX / 4);
    let results = playlog_vault::check(&mut f.warehouse, &f.model, max_age).expect("checks run");
    let failed: Vec<_> = results.iter().filter(|r| !r.passed()).collect();
    assert!(failed.is_empty(), "{failed:?}");
    // Break referential integrity and an accepted value: both are reported.
    f.warehouse
        .transaction(|s| {
            s.execute("DELETE FROM vault.hub_song")?;
            Ok(s.execute("UPDATE vault.nhl_listen SET level = 'gold'")?)
        })
        .expect("vandalism");
    let results = playlog_vault::check(&mut f.warehouse, &f.model, Duration::from_secs(1))
        .expect("checks run");
    let failed: Vec<String> = results
        .iter()
        .filter(|r| !r.passed())
        .map(|r| format!("{} {}", r.name, r.table))
        .collect();
    assert!(
        failed.contains(&"relationships nhl_listen".to_owned()),
        "{failed:?}"
    );
    assert!(
        failed.contains(&"accepted_values nhl_listen".to_owned()),
        "{failed:?}"
    );
    // Freshness: an empty warehouse has no recent load.
    let mut empty = Fixture::new();
    empty.run();
    let results =
        playlog_vault::check(&mut empty.warehouse, &empty.model, max_age).expect("checks run");
    let failed: Vec<&str> = results
        .iter()
        .filter(|r| !r.passed())
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(failed, ["freshness"]);
}

#[test]
fn a_session_whose_plays_land_before_its_page_views_keeps_its_user() {
    let mut f = Fixture::new();
    f.load(&[ev("listen_events", "l1", "2030-01-04 10:00:00", Some(5))]);
    f.run();
    f.load(&[ev("page_view_events", "p1", "2030-01-04 10:00:00", Some(5))]);
    f.run();
    assert_eq!(
        f.texts("SELECT user_id, items, listens, CAST(started_at AS VARCHAR) FROM marts.sessions"),
        ["5 1 1 2030-01-04 10:00:00"]
    );
}

#[test]
fn a_vault_made_before_the_migration_ledger_is_rebuilt_from_raw_with_the_same_marts() {
    let mut f = Fixture::new();
    f.load(&[
        ev("listen_events", "l1", "2030-01-01 10:00:00", Some(1)),
        ev("page_view_events", "p1", "2030-01-01 10:00:00", Some(1)),
        ev("listen_events", "l2", "2030-01-01 11:00:00", None),
    ]);
    f.run();
    let expected = snapshot(&mut f);
    let listens = f.texts("SELECT event_id, user_id, song FROM marts.listens ORDER BY event_id");
    // What an earlier Playlog left: the same tables with BLOB hash keys, a run log, and no ledger.
    f.warehouse
        .transaction(|s| {
            s.execute("DROP TABLE vault._schema_migrations")?;
            s.execute("DROP TABLE vault.hub_user")?;
            s.execute(
                "CREATE TABLE vault.hub_user (user_hk BLOB, user_id BIGINT, load_date TIMESTAMP, record_source VARCHAR)",
            )?;
            s.execute("INSERT INTO vault.hub_user VALUES (unhex('00'), 1, TIMESTAMP '2030-01-01', 'old')")?;
            Ok(())
        })
        .unwrap();
    let report = f.run();
    assert_eq!(
        report.staged_rows(),
        3,
        "the rebuild stages all of raw again"
    );
    assert_eq!(snapshot(&mut f), expected);
    assert_eq!(
        f.texts("SELECT typeof(user_hk) FROM vault.hub_user LIMIT 1"),
        ["UHUGEINT"]
    );
    assert_eq!(
        f.texts("SELECT event_id, user_id, song FROM marts.listens ORDER BY event_id"),
        listens
    );
    let results = playlog_vault::check(&mut f.warehouse, &f.model, Duration::from_secs(1 << 40))
        .expect("checks run");
    assert!(results.iter().all(|r| r.passed()), "{results:?}");
}

#[test]
fn a_payload_column_added_to_the_model_is_migrated_without_a_rebuild() {
    let mut f = Fixture::new();
    f.load(&[ev("page_view_events", "p1", "2030-01-01 10:00:00", Some(1))]);
    f.run();
    let runs = f.count("vault._runs");
    let changed =
        DEFAULT_MODEL.replace("payload = [\"level\"]", "payload = [\"level\", \"gender\"]");
    assert_ne!(changed, DEFAULT_MODEL);
    f.model = Model::parse(&changed, "model.toml").unwrap();
    let applied = playlog_vault::migrate(&mut f.warehouse, &f.model).unwrap();
    assert_eq!(applied, ["vault/sat_user_level/gender"]);
    // The old row reads NULL in the new column; nothing was dropped or rebuilt.
    assert_eq!(
        f.texts("SELECT level, gender FROM vault.sat_user_level"),
        ["free NULL"]
    );
    assert_eq!(f.count("vault._runs"), runs);
    f.load(&[ev("page_view_events", "p2", "2030-01-01 11:00:00", Some(1))]);
    f.run();
    assert_eq!(
        f.texts(
            "SELECT level, gender FROM vault.sat_user_level
             QUALIFY row_number() OVER (PARTITION BY user_hk, valid_from ORDER BY load_date DESC) = 1 ORDER BY valid_from"
        ),
        ["free NULL", "free F"],
        "the current timeline: the old interval, closed, and a new one where the hashdiff changed"
    );
    assert!(
        playlog_vault::migrate(&mut f.warehouse, &f.model)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn rows_stamped_earlier_than_a_staged_batch_still_reach_the_vault() {
    // A pod whose clock is behind, or a later insertAll request of a batch already partly staged: its rows
    // become visible after a run, stamped before the newest load that run staged. Staging by load time
    // skipped them for good; staging by Kafka offsets takes them in the next run.
    let mut f = Fixture::new();
    f.load_at(
        &[ev("listen_events", "later", "2030-01-01 10:00:00", Some(1))],
        "2030-01-01 00:00:30",
    );
    f.record_offsets();
    f.run();
    f.load_at(
        &[
            ev("listen_events", "earlier", "2030-01-01 10:05:00", Some(2)),
            ev(
                "page_view_events",
                "earlier-pv",
                "2030-01-01 10:05:00",
                Some(2),
            ),
        ],
        "2030-01-01 00:00:10",
    );
    f.record_offsets();
    let report = f.run();
    assert_eq!(report.staged_rows(), 2, "{report:?}");
    assert_eq!(f.count("vault.nhl_listen"), 2);
    assert_eq!(f.count("marts.listens"), 2);
    let results =
        playlog_vault::check(&mut f.warehouse, &f.model, Duration::from_secs(1 << 40)).unwrap();
    assert!(results.iter().all(|r| r.passed()), "{results:?}");
}

#[test]
fn rows_whose_offsets_are_not_recorded_yet_wait_for_the_next_run() {
    // BigQuery streams a batch's rows, then advances the offsets: in between, the rows are visible but not
    // yet the consumer's. The vault stages them only once their offsets are recorded.
    let mut f = Fixture::new();
    f.load(&[ev("listen_events", "l1", "2030-01-01 10:00:00", Some(1))]);
    f.run();
    f.load_at(
        &[ev("listen_events", "l2", "2030-01-01 10:01:00", Some(1))],
        "2030-01-01 00:00:40",
    );
    let early = f.run();
    assert_eq!(early.staged_rows(), 0, "{early:?}");
    assert_eq!(f.count("vault.nhl_listen"), 1);
    f.record_offsets();
    let later = f.run();
    assert_eq!(later.staged_rows(), 1, "{later:?}");
    assert_eq!(f.count("vault.nhl_listen"), 2);
}
