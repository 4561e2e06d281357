//! The dashboard's figures as API resources (`/api/v1/aggregates/{name}.json`): totals and breakdowns
//! over a date range, read from the marts. Pure: each aggregate's parameters are validated here and
//! turned into SQL with every value bound, so the page and any other client get the same numbers.
//!
//! Every aggregate takes `from` and `to` (inclusive ISO dates, each optional: the data's first and last
//! day). The top lists also take `limit` (1–100, default 10) and `top_songs` takes `by`.

use chrono::NaiveDate;

use crate::query::{BadRequest, Sql, bad};

/// What an aggregate answers, for the OpenAPI document and the index.
#[derive(Debug, Clone, Copy)]
pub struct Aggregate {
    pub name: &'static str,
    pub summary: &'static str,
    /// Its columns: name, JSON type, meaning.
    pub columns: &'static [(&'static str, &'static str, &'static str)],
    /// Takes `limit` (the top lists).
    pub limited: bool,
    /// The choices of `by`, first the default (empty: no `by`).
    pub by: &'static [&'static str],
}

pub const DEFAULT_LIMIT: usize = 10;
pub const MAX_LIMIT: usize = 100;

pub const AGGREGATES: &[Aggregate] = &[
    Aggregate {
        name: "summary",
        summary: "The range's key figures: active users, plays, minutes played, paid share, level changes",
        columns: &[
            (
                "first_date",
                "string",
                "First day of the range that has activity",
            ),
            (
                "last_date",
                "string",
                "Last day of the range that has activity",
            ),
            ("days", "integer", "Days with activity in the range"),
            (
                "daily_active_users",
                "number",
                "Users active on a day, averaged over the range's days",
            ),
            (
                "active_users",
                "integer",
                "Distinct users active in the range",
            ),
            ("plays", "integer", "Songs played (guests included)"),
            ("minutes_played", "number", "Minutes of music played"),
            (
                "paid_share",
                "number",
                "Share of active user-days at the paid level (0–1)",
            ),
            ("upgrades", "integer", "Free to paid"),
            ("downgrades", "integer", "Paid to free"),
            ("cancellations", "integer", "Cancelled accounts"),
            (
                "available_from",
                "string",
                "The first day the marts hold (any range)",
            ),
            (
                "available_to",
                "string",
                "The last day the marts hold (any range)",
            ),
        ],
        limited: false,
        by: &[],
    },
    Aggregate {
        name: "daily_activity",
        summary: "Per day: active users, paid users and plays",
        columns: &[
            ("date", "string", "Day"),
            ("active_users", "integer", "Users active that day"),
            (
                "paid_users",
                "integer",
                "Of those, at the paid level at their last page view",
            ),
            ("plays", "integer", "Songs played by signed-in users"),
        ],
        limited: false,
        by: &[],
    },
    Aggregate {
        name: "plays_per_hour",
        summary: "Per hour: plays and minutes played",
        columns: &[
            ("hour", "string", "The hour's start"),
            ("plays", "integer", "Songs played (guests included)"),
            ("minutes_played", "number", "Minutes of music played"),
        ],
        limited: false,
        by: &[],
    },
    Aggregate {
        name: "top_songs",
        summary: "The most played songs, by plays or by distinct listeners",
        columns: &[
            ("song", "string", "Title"),
            ("artist", "string", "Artist"),
            ("plays", "integer", "Plays in the range"),
            (
                "listeners",
                "integer",
                "Distinct signed-in users who played it in the range",
            ),
        ],
        limited: true,
        by: &["plays", "listeners"],
    },
    Aggregate {
        name: "level_changes",
        summary: "Per day: upgrades, downgrades and cancellations",
        columns: &[
            ("date", "string", "Day"),
            ("upgrades", "integer", "Free to paid"),
            ("downgrades", "integer", "Paid to free"),
            ("cancellations", "integer", "Cancelled accounts"),
        ],
        limited: false,
        by: &[],
    },
    Aggregate {
        name: "session_lengths",
        summary: "Sessions by length, in fixed buckets (every bucket, empty ones too)",
        columns: &[
            ("bucket", "integer", "Bucket number, shortest first"),
            ("label", "string", "The bucket's lengths"),
            (
                "sessions",
                "integer",
                "Sessions started in the range with such a length",
            ),
        ],
        limited: false,
        by: &[],
    },
    Aggregate {
        name: "level_mix",
        summary: "Plays and listeners at the free and the paid level",
        columns: &[
            ("level", "string", "free or paid, at play time"),
            ("plays", "integer", "Plays at that level"),
            (
                "listeners",
                "integer",
                "Distinct users who played at that level",
            ),
        ],
        limited: false,
        by: &[],
    },
    Aggregate {
        name: "top_states",
        summary: "The states with the most plays",
        columns: &[
            (
                "state",
                "string",
                "US state of the listener's location at play time",
            ),
            ("plays", "integer", "Plays in the range"),
            ("listeners", "integer", "Distinct listeners in the range"),
        ],
        limited: true,
        by: &[],
    },
];

/// One validated aggregate request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateRequest {
    pub aggregate: &'static str,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub limit: usize,
    pub by: &'static str,
}

pub fn find(name: &str) -> Option<&'static Aggregate> {
    AGGREGATES.iter().find(|a| a.name == name)
}

/// Validates the query-string parameters of `aggregate`.
pub fn parse(
    aggregate: &'static Aggregate,
    params: &[(String, String)],
) -> Result<AggregateRequest, BadRequest> {
    let mut request = AggregateRequest {
        aggregate: aggregate.name,
        from: None,
        to: None,
        limit: DEFAULT_LIMIT,
        by: aggregate.by.first().copied().unwrap_or(""),
    };
    for (key, value) in params {
        match key.as_str() {
            "from" | "to" if value.is_empty() => {}
            "from" => request.from = Some(date(key, value)?),
            "to" => request.to = Some(date(key, value)?),
            "limit" if aggregate.limited => {
                request.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        bad(
                            key,
                            format!("{value:?} is not a whole number from 1 to {MAX_LIMIT}"),
                        )
                    })?;
            }
            "by" if !aggregate.by.is_empty() => {
                request.by = aggregate
                    .by
                    .iter()
                    .find(|b| **b == value.as_str())
                    .copied()
                    .ok_or_else(|| {
                        bad(
                            key,
                            format!("{value:?}: one of {}", aggregate.by.join(", ")),
                        )
                    })?;
            }
            _ => {
                let mut known = vec!["from", "to"];
                if aggregate.limited {
                    known.push("limit");
                }
                if !aggregate.by.is_empty() {
                    known.push("by");
                }
                return Err(bad(
                    key,
                    format!(
                        "unknown parameter for {} (it takes {})",
                        aggregate.name,
                        known.join(", ")
                    ),
                ));
            }
        }
    }
    if let (Some(from), Some(to)) = (request.from, request.to)
        && from > to
    {
        return Err(bad("from", format!("{from} is after to={to}")));
    }
    Ok(request)
}

fn date(parameter: &str, value: &str) -> Result<NaiveDate, BadRequest> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| {
        bad(
            parameter,
            format!("{value:?} is not a date such as 2026-01-31"),
        )
    })
}

/// The range's bounds as bound values: an open end is the whole history on that side.
fn range_params(request: &AggregateRequest) -> [Option<String>; 2] {
    [
        Some(request.from.map_or("0001-01-01".into(), |d| d.to_string())),
        Some(request.to.map_or("9999-12-31".into(), |d| d.to_string())),
    ]
}

/// `date` within the range (two bound values).
const IN_RANGE: &str = "date BETWEEN CAST(? AS DATE) AND CAST(? AS DATE)";

/// Session lengths' buckets: upper bound in seconds (exclusive; the last has none) and label.
pub const SESSION_BUCKETS: &[(Option<u32>, &str)] = &[
    (Some(60), "under 1 min"),
    (Some(300), "1–5 min"),
    (Some(900), "5–15 min"),
    (Some(1800), "15–30 min"),
    (Some(3600), "30–60 min"),
    (Some(7200), "1–2 h"),
    (Some(14400), "2–4 h"),
    (None, "4 h or more"),
];

/// The aggregate's query, its values bound in order.
pub fn sql(request: &AggregateRequest) -> Sql {
    let range = range_params(request);
    let ranges =
        |n: usize| -> Vec<Option<String>> { range.iter().cycle().take(2 * n).cloned().collect() };
    let (text, params) = match request.aggregate {
        "summary" => (
            format!(
                "WITH d AS (SELECT date, COUNT(*) AS users, SUM(CASE WHEN level = 'paid' THEN 1 ELSE 0 END) AS paid
                            FROM marts.daily_user_activity WHERE {IN_RANGE} GROUP BY date),
                      p AS (SELECT SUM(plays) AS plays, SUM(minutes_played) AS minutes
                            FROM marts.song_hourly_metrics WHERE {IN_RANGE}),
                      c AS (SELECT SUM(upgrades) AS up, SUM(downgrades) AS down, SUM(cancellations) AS cancel
                            FROM marts.level_changes WHERE {IN_RANGE}),
                      a AS (SELECT COUNT(DISTINCT user_hk) AS users FROM marts.daily_user_activity WHERE {IN_RANGE}),
                      all_days AS (SELECT MIN(date) AS first, MAX(date) AS last FROM marts.daily_user_activity)
                 SELECT CAST((SELECT MIN(date) FROM d) AS VARCHAR), CAST((SELECT MAX(date) FROM d) AS VARCHAR),
                        (SELECT COUNT(*) FROM d), (SELECT AVG(users) FROM d), a.users,
                        CAST(COALESCE(p.plays, 0) AS BIGINT), COALESCE(p.minutes, 0),
                        (SELECT CAST(SUM(paid) AS DOUBLE) / NULLIF(SUM(users), 0) FROM d),
                        CAST(COALESCE(c.up, 0) AS BIGINT), CAST(COALESCE(c.down, 0) AS BIGINT), CAST(COALESCE(c.cancel, 0) AS BIGINT),
                        CAST(all_days.first AS VARCHAR), CAST(all_days.last AS VARCHAR)
                 FROM p, c, a, all_days"
            ),
            ranges(4),
        ),
        "daily_activity" => (
            format!(
                "SELECT CAST(date AS VARCHAR), COUNT(*), CAST(SUM(CASE WHEN level = 'paid' THEN 1 ELSE 0 END) AS BIGINT), CAST(SUM(listens) AS BIGINT)
                 FROM marts.daily_user_activity WHERE {IN_RANGE} GROUP BY date ORDER BY date"
            ),
            ranges(1),
        ),
        "plays_per_hour" => (
            format!(
                "SELECT strftime(hour, '%Y-%m-%dT%H:%M:%S'), CAST(SUM(plays) AS BIGINT), SUM(minutes_played)
                 FROM marts.song_hourly_metrics WHERE {IN_RANGE} GROUP BY hour ORDER BY hour"
            ),
            ranges(1),
        ),
        "top_songs" => (
            format!(
                "SELECT song, artist, COUNT(*) AS plays, COUNT(DISTINCT user_hk) AS listeners
                 FROM marts.listens WHERE {IN_RANGE} GROUP BY song_hk, song, artist
                 ORDER BY {} DESC, song, artist LIMIT {}",
                if request.by == "listeners" { "listeners" } else { "plays" },
                request.limit
            ),
            ranges(1),
        ),
        "level_changes" => (
            format!(
                "SELECT CAST(date AS VARCHAR), upgrades, downgrades, cancellations
                 FROM marts.level_changes WHERE {IN_RANGE} ORDER BY date"
            ),
            ranges(1),
        ),
        "session_lengths" => {
            let values: Vec<String> = SESSION_BUCKETS
                .iter()
                .enumerate()
                .map(|(i, (_, label))| format!("({i}, '{label}')"))
                .collect();
            let mut case = String::from("CASE");
            for (i, (upper, _)) in SESSION_BUCKETS.iter().enumerate() {
                match upper {
                    Some(upper) => case.push_str(&format!(" WHEN length_seconds < {upper} THEN {i}")),
                    None => case.push_str(&format!(" ELSE {i} END")),
                }
            }
            (
                format!(
                    "SELECT b.bucket, b.label, COALESCE(s.sessions, 0)
                     FROM (VALUES {}) b(bucket, label)
                     LEFT JOIN (SELECT {case} AS bucket, COUNT(*) AS sessions FROM marts.sessions
                                WHERE {IN_RANGE} GROUP BY 1) s ON s.bucket = b.bucket
                     ORDER BY b.bucket",
                    values.join(", ")
                ),
                ranges(1),
            )
        }
        "level_mix" => (
            format!(
                "SELECT level, COUNT(*), COUNT(DISTINCT user_hk) FROM marts.listens
                 WHERE {IN_RANGE} AND level IS NOT NULL GROUP BY level ORDER BY level"
            ),
            ranges(1),
        ),
        "top_states" => (
            format!(
                "SELECT state, COUNT(*) AS plays, COUNT(DISTINCT user_hk) AS listeners FROM marts.listens
                 WHERE {IN_RANGE} AND state IS NOT NULL GROUP BY state ORDER BY plays DESC, state LIMIT {}",
                request.limit
            ),
            ranges(1),
        ),
        other => unreachable!("aggregate {other} has no query"),
    };
    Sql { text, params }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn every_aggregate_has_a_query_binding_two_values_per_range() {
        for aggregate in AGGREGATES {
            let request = parse(aggregate, &[]).unwrap();
            let sql = sql(&request);
            assert_eq!(
                sql.text.matches('?').count(),
                sql.params.len(),
                "{}",
                aggregate.name
            );
            assert!(sql.params.len() >= 2);
        }
    }

    #[test]
    fn dates_limits_and_choices_are_checked_naming_the_parameter() {
        let top = find("top_songs").unwrap();
        let ok = parse(
            top,
            &params(&[
                ("from", "2026-01-02"),
                ("to", "2026-01-05"),
                ("limit", "5"),
                ("by", "listeners"),
            ]),
        )
        .unwrap();
        assert_eq!(ok.limit, 5);
        assert_eq!(ok.by, "listeners");
        assert_eq!(sql(&ok).params[0].as_deref(), Some("2026-01-02"));
        for (pairs, parameter) in [
            (vec![("from", "yesterday")], "from"),
            (vec![("to", "2026-13-01")], "to"),
            (vec![("from", "2026-01-05"), ("to", "2026-01-02")], "from"),
            (vec![("limit", "0")], "limit"),
            (vec![("limit", "101")], "limit"),
            (vec![("by", "minutes; DROP TABLE x")], "by"),
            (vec![("color", "red")], "color"),
        ] {
            assert_eq!(
                parse(top, &params(&pairs)).unwrap_err().parameter,
                parameter,
                "{pairs:?}"
            );
        }
        // Only the top lists take a limit.
        let summary = find("summary").unwrap();
        assert_eq!(
            parse(summary, &params(&[("limit", "3")]))
                .unwrap_err()
                .parameter,
            "limit"
        );
    }

    #[test]
    fn an_empty_date_is_an_open_end() {
        let request = parse(
            find("summary").unwrap(),
            &params(&[("from", ""), ("to", "")]),
        )
        .unwrap();
        assert_eq!(request.from, None);
        assert_eq!(request.to, None);
    }

    #[test]
    fn session_buckets_cover_every_length_once() {
        let request = parse(find("session_lengths").unwrap(), &[]).unwrap();
        let text = sql(&request).text;
        assert_eq!(text.matches(" WHEN ").count(), SESSION_BUCKETS.len() - 1);
        assert!(text.contains(" ELSE 7 END"));
    }
}
