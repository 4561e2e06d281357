//! A short report from the marts, for people: top songs of the latest day, daily active users, upgrades and
//! downgrades, sessions, and how the offers performed. `playlog report` prints it; the quickstart prints it
//! on exit.

use playlog_sql::{Rows, SqlError, SqlSession};

use crate::dialect::Sql;

/// One titled table of the report.
pub struct Section {
    pub title: String,
    pub header: Vec<&'static str>,
    pub rows: Rows,
}

pub(crate) fn sections(s: &mut dyn SqlSession, sql: &Sql) -> Result<Vec<Section>, SqlError> {
    let m = |t: &str| sql.table("marts", t);
    let latest = crate::first_value(
        s,
        &format!("SELECT MAX(date) FROM {}", m("top_songs_daily")),
    )?;
    let mut out = Vec::new();
    if let Some(day) = latest {
        out.push(Section {
            title: format!("Top songs on {day} (the latest simulated day)"),
            header: vec!["rank", "song", "artist", "plays", "listeners"],
            rows: s.query(&format!(
                "SELECT rank, song, artist, plays, listeners FROM {} WHERE date = DATE {} ORDER BY rank",
                m("top_songs_daily"),
                sql.string(&day)
            ))?,
        });
    }
    out.push(Section {
        title: "Daily active users, plays and minutes (latest 7 days)".into(),
        header: vec!["date", "active users", "plays", "minutes played"],
        rows: s.query(&format!(
            "SELECT date, COUNT(*), SUM(listens), CAST(ROUND(SUM(minutes_played)) AS {int})
             FROM {} GROUP BY date ORDER BY date DESC LIMIT 7",
            m("daily_user_activity"),
            int = sql.int_type(),
        ))?,
    });
    out.push(Section {
        title: "Upgrades, downgrades and cancellations (latest 7 days)".into(),
        header: vec!["date", "upgrades", "downgrades", "cancellations"],
        rows: s.query(&format!(
            "SELECT date, upgrades, downgrades, cancellations FROM {} ORDER BY date DESC LIMIT 7",
            m("level_changes")
        ))?,
    });
    out.push(Section {
        title: "Sessions".into(),
        header: vec![
            "sessions",
            "by guests",
            "average minutes",
            "average items",
            "plays",
        ],
        rows: s.query(&format!(
            "SELECT COUNT(*), SUM(CASE WHEN user_id IS NULL THEN 1 ELSE 0 END),
                    ROUND(AVG(length_seconds) / 60.0, 1), ROUND(AVG(items), 1), SUM(listens)
             FROM {}",
            m("sessions")
        ))?,
    });
    out.push(Section {
        title: format!(
            "Offer performance, all days (conversion within {} days of the offer; playlog offers)",
            crate::marts::CONVERSION_DAYS
        ),
        header: vec![
            "rule",
            "offers",
            "held out",
            "converted",
            "held out converted",
            "rate %",
            "held-out rate %",
            "uplift pp",
        ],
        rows: s.query(&format!(
            "SELECT rule_id, SUM(offers), SUM(holdouts), SUM(conversions), SUM(holdout_conversions),
                    ROUND(100.0 * SUM(conversions) / NULLIF(SUM(offers), 0), 1),
                    ROUND(100.0 * SUM(holdout_conversions) / NULLIF(SUM(holdouts), 0), 1),
                    ROUND(100.0 * SUM(conversions) / NULLIF(SUM(offers), 0)
                          - 100.0 * SUM(holdout_conversions) / NULLIF(SUM(holdouts), 0), 1)
             FROM {} GROUP BY rule_id ORDER BY rule_id",
            m("offer_performance")
        ))?,
    });
    Ok(out)
}

/// The report as aligned text.
pub fn render(sections: &[Section]) -> String {
    let mut out = String::new();
    for section in sections {
        out.push_str(&format!("\n{}\n", section.title));
        let cells: Vec<Vec<String>> =
            std::iter::once(section.header.iter().map(|h| h.to_string()).collect())
                .chain(
                    section
                        .rows
                        .iter()
                        .map(|r| r.iter().map(ToString::to_string).collect()),
                )
                .collect();
        let columns = section.header.len();
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                cells
                    .iter()
                    .map(|r| r.get(c).map_or(0, |v| v.chars().count()))
                    .max()
                    .unwrap_or(0)
                    .min(40)
            })
            .collect();
        for row in &cells {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(v, w)| {
                    let v: String = v.chars().take(*w).collect();
                    format!("{v:<w$}")
                })
                .collect();
            out.push_str(&format!("  {}\n", line.join("  ").trim_end()));
        }
        if section.rows.is_empty() {
            out.push_str("  (nothing yet)\n");
        }
    }
    out
}
