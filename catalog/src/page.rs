//! The catalog as one HTML page: a summary, the lineage graph, an index of every table, and a section
//! per table with its columns, its data tests and their results. No script: it reads the same served by
//! `/catalog` or opened from `playlog docs --out DIR`. Pure.

use std::fmt::Write as _;

use playlog_vault::docs::{DocTable, Documentation};

use crate::lineage_svg::{self, Node};
use crate::observe::{Observed, TestRun};

/// Text for HTML (element content and quoted attributes).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// How the page is framed: where its stylesheet is, and what it describes.
pub struct Frame<'a> {
    pub css_href: &'a str,
    /// The warehouse, as the user named it (`duckdb:playlog.duckdb`).
    pub warehouse: &'a str,
    /// Links to the server's other pages (label, href), when served.
    pub links: &'a [(&'a str, &'a str)],
}

/// A table's tests, with their latest results where there are some.
fn results_of(table: &DocTable, run: Option<&TestRun>) -> Vec<(String, String, Option<i64>)> {
    table
        .tests
        .iter()
        .map(|(name, detail)| {
            let failures = run.and_then(|r| {
                r.results
                    .iter()
                    .find(|c| {
                        &c.name == name
                            && &c.detail == detail
                            && (c.table == table.name || c.table == "raw.*")
                    })
                    .map(|c| c.failures)
            });
            (name.clone(), detail.clone(), failures)
        })
        .collect()
}

fn failing(table: &DocTable, run: Option<&TestRun>) -> usize {
    results_of(table, run)
        .iter()
        .filter(|(_, _, f)| f.is_some_and(|f| f != 0))
        .count()
}

pub fn render(doc: &Documentation, observed: Option<&Observed>, frame: &Frame<'_>) -> String {
    let run = observed.and_then(|o| o.tests.as_ref().ok());
    let mut html = String::new();
    let _ = write!(
        html,
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Playlog data catalog</title>
<link rel="stylesheet" href="{css}">
</head>
<body>
<header>
  <div class="brand"><strong>Playlog</strong> <span class="muted">data catalog</span></div>
  <div class="muted">{warehouse}</div>
  {dashboard}
</header>
<main>
"#,
        css = escape(frame.css_href),
        warehouse = escape(frame.warehouse),
        dashboard = if frame.links.is_empty() {
            String::new()
        } else {
            format!(
                r#"<nav class="nav">{}</nav>"#,
                frame
                    .links
                    .iter()
                    .map(|(label, href)| format!(
                        r#"<a href="{}">{}</a>"#,
                        escape(href),
                        escape(label)
                    ))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        },
    );
    summary(&mut html, doc, observed);
    let names: Vec<String> = doc.tables.iter().map(DocTable::full_name).collect();
    let nodes: Vec<Node> = doc
        .tables
        .iter()
        .zip(&names)
        .map(|(t, name)| Node {
            name,
            class: if failing(t, run) > 0 { "fail" } else { "" },
        })
        .collect();
    let _ = write!(
        html,
        r#"<section class="card"><h2>Lineage</h2>
<p class="muted">Generated from the vault's run plan: an arrow means the run reads the table on its left to make (or to decide what to rebuild in) the one on its right. Click a table to read about it.</p>
<div class="graph">{}</div></section>
"#,
        lineage_svg::render(&nodes, &doc.lineage)
    );
    index(&mut html, doc, observed, run);
    for table in &doc.tables {
        section(&mut html, doc, table, observed, run);
    }
    html.push_str("</main>\n<footer class=\"muted\">Descriptions live in schemas/vault/model.toml; tests are those of <code>playlog check</code>.</footer>\n</body>\n</html>\n");
    html
}

fn summary(html: &mut String, doc: &Documentation, observed: Option<&Observed>) {
    html.push_str(r#"<section class="summary">"#);
    let count = |schema: &str| doc.tables.iter().filter(|t| t.schema == schema).count();
    let _ = write!(
        html,
        r#"<div class="kpi"><span class="label">Tables</span><span class="value">{}</span><span class="muted">{} raw · {} vault · {} marts</span></div>"#,
        doc.tables.len(),
        count("raw"),
        count("vault"),
        count("marts")
    );
    match observed {
        None => html.push_str(r#"<div class="kpi"><span class="label">Warehouse</span><span class="value">—</span><span class="muted">not read: the model alone</span></div>"#),
        Some(o) => {
            let newest = o
                .tables
                .iter()
                .filter(|(name, _)| name.starts_with("raw."))
                .filter_map(|(_, t)| t.newest_load.clone())
                .max();
            let _ = write!(
                html,
                r#"<div class="kpi"><span class="label">Newest raw load</span><span class="value small">{}</span><span class="muted">read at {}</span></div>"#,
                escape(newest.as_deref().unwrap_or("none yet")),
                escape(&o.at)
            );
            let _ = write!(
                html,
                r#"<div class="kpi"><span class="label">Last vault run</span><span class="value small">{}</span><span class="muted">the marts are as of it</span></div>"#,
                escape(o.last_vault_run.as_deref().unwrap_or("never"))
            );
            match &o.tests {
                Ok(run) => {
                    let failed = run.results.iter().filter(|r| !r.passed()).count();
                    let _ = write!(
                        html,
                        r#"<div class="kpi {class}"><span class="label">Data tests</span><span class="value">{passed} / {total} pass</span><span class="muted">{failed} failing · ran at {at} in {secs:.1} s</span></div>"#,
                        class = if failed > 0 { "fail" } else { "pass" },
                        passed = run.results.len() - failed,
                        total = run.results.len(),
                        at = escape(&o.at),
                        secs = run.seconds,
                    );
                }
                Err(why) => {
                    let _ = write!(
                        html,
                        r#"<div class="kpi"><span class="label">Data tests</span><span class="value">not run</span><span class="muted">{}</span></div>"#,
                        escape(why)
                    );
                }
            }
        }
    }
    html.push_str("</section>\n");
}

fn rows_and_freshness(table: &DocTable, observed: Option<&Observed>) -> (String, String) {
    let Some(o) = observed else {
        return ("—".into(), "—".into());
    };
    let state = o.tables.get(&table.full_name());
    let rows = match state.and_then(|s| s.rows) {
        Some(n) => thousands(n),
        None => "not created yet".into(),
    };
    let fresh = if table.schema == "marts" {
        o.last_vault_run
            .clone()
            .map_or("—".into(), |r| format!("vault run {r}"))
    } else {
        state
            .and_then(|s| s.newest_load.clone())
            .unwrap_or_else(|| "—".into())
    };
    (rows, fresh)
}

fn index(
    html: &mut String,
    doc: &Documentation,
    observed: Option<&Observed>,
    run: Option<&TestRun>,
) {
    html.push_str(
        r#"<section class="card"><h2>Tables</h2><table class="index"><thead><tr><th>Table</th><th>Kind</th><th>What it holds</th><th class="n">Rows</th><th>Newest load</th><th>Tests</th></tr></thead><tbody>"#,
    );
    for t in &doc.tables {
        let (rows, fresh) = rows_and_freshness(t, observed);
        let _ = write!(
            html,
            r##"<tr><td><a href="#{id}">{id}</a></td><td>{kind}</td><td>{desc}</td><td class="n">{rows}</td><td>{fresh}</td><td>{tests}</td></tr>"##,
            id = escape(&t.full_name()),
            kind = t.kind,
            desc = escape(&t.description),
            rows = escape(&rows),
            fresh = escape(&fresh),
            tests = test_badge(t, run),
        );
    }
    html.push_str("</tbody></table></section>\n");
}

fn test_badge(table: &DocTable, run: Option<&TestRun>) -> String {
    if table.tests.is_empty() {
        return r#"<span class="muted">none</span>"#.into();
    }
    let Some(run) = run else {
        return format!(
            r#"<span class="muted">{} (not run)</span>"#,
            table.tests.len()
        );
    };
    let failed = failing(table, Some(run));
    if failed == 0 {
        format!(
            r#"<span class="badge pass">{} pass</span>"#,
            table.tests.len()
        )
    } else {
        format!(
            r#"<span class="badge fail">{failed} of {} fail</span>"#,
            table.tests.len()
        )
    }
}

fn section(
    html: &mut String,
    doc: &Documentation,
    table: &DocTable,
    observed: Option<&Observed>,
    run: Option<&TestRun>,
) {
    let name = table.full_name();
    let (rows, fresh) = rows_and_freshness(table, observed);
    let links = |names: Vec<&str>| {
        if names.is_empty() {
            "—".to_owned()
        } else {
            names
                .iter()
                .map(|n| format!(r##"<a href="#{0}">{0}</a>"##, escape(n)))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let from: Vec<&str> = doc
        .lineage
        .iter()
        .filter(|e| e.to == name)
        .map(|e| e.from.as_str())
        .collect();
    let into: Vec<&str> = doc
        .lineage
        .iter()
        .filter(|e| e.from == name)
        .map(|e| e.to.as_str())
        .collect();
    let _ = write!(
        html,
        r#"<section class="card table" id="{id}"><h2>{id} <span class="kind">{kind}</span></h2>
<p>{desc}</p>
<dl><dt>Rows</dt><dd>{rows}</dd><dt>Newest load</dt><dd>{fresh}</dd><dt>Made from</dt><dd>{from}</dd><dt>Feeds</dt><dd>{into}</dd></dl>
<h3>Columns</h3><table><thead><tr><th>Column</th><th>Type</th><th>Description</th></tr></thead><tbody>"#,
        id = escape(&name),
        kind = table.kind,
        desc = escape(&table.description),
        rows = escape(&rows),
        fresh = escape(&fresh),
        from = links(from),
        into = links(into),
    );
    for c in &table.columns {
        let _ = write!(
            html,
            r#"<tr><td><code>{}</code>{}</td><td><code>{}</code></td><td>{}</td></tr>"#,
            escape(&c.name),
            if c.personal {
                r#" <span class="badge personal" title="Identifies a person: served by the API only with --expose-raw">personal</span>"#
            } else {
                ""
            },
            escape(c.sql_type),
            escape(&c.description),
        );
    }
    html.push_str("</tbody></table>\n");
    let tests = results_of(table, run);
    if !tests.is_empty() {
        html.push_str(r#"<h3>Data tests</h3><table><thead><tr><th>Test</th><th>Holds that</th><th>Latest result</th></tr></thead><tbody>"#);
        for (test, detail, failures) in tests {
            let result = match failures {
                None => r#"<span class="muted">not run</span>"#.to_owned(),
                Some(0) => r#"<span class="badge pass">pass</span>"#.to_owned(),
                Some(n) => format!(
                    r#"<span class="badge fail">fail: {} offending rows</span>"#,
                    thousands(n)
                ),
            };
            let _ = write!(
                html,
                "<tr><td><code>{}</code></td><td>{}</td><td>{result}</td></tr>",
                escape(&test),
                escape(&detail)
            );
        }
        html.push_str("</tbody></table>\n");
    }
    html.push_str("</section>\n");
}

fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::observe::TableState;
    use playlog_vault::{Catalog, CheckResult, DEFAULT_MODEL, Model};

    fn shipped() -> Documentation {
        let model = Model::parse(DEFAULT_MODEL, "model.toml").unwrap();
        let catalog = Catalog::for_model(&model).unwrap();
        let sql = playlog_vault::Sql::new(playlog_sql::DialectName::DuckDb, "");
        playlog_vault::docs::document(&model, &catalog, &sql, std::time::Duration::from_secs(60))
    }

    const FRAME: Frame<'static> = Frame {
        css_href: "catalog.css",
        warehouse: "duckdb:<test>.duckdb",
        links: &[],
    };

    #[test]
    fn every_table_has_a_section_and_a_node() {
        let doc = shipped();
        let html = render(&doc, None, &FRAME);
        for t in &doc.tables {
            assert!(
                html.contains(&format!(r#"id="{}""#, t.full_name())),
                "{}",
                t.name
            );
            assert!(html.contains(&format!(r##"<a href="#{}"><g"##, t.full_name())));
        }
        assert!(html.contains("duckdb:&lt;test&gt;.duckdb"));
        assert!(!html.contains("<script"));
    }

    #[test]
    fn a_failing_test_shows_on_its_table_and_in_the_summary() {
        let doc = shipped();
        let tables = doc
            .tables
            .iter()
            .map(|t| {
                (
                    t.full_name(),
                    TableState {
                        rows: Some(1234567),
                        newest_load: Some("2026-12-02 10:00:00".into()),
                    },
                )
            })
            .collect();
        let results = vec![
            CheckResult {
                name: "unique_key".into(),
                table: "hub_user".into(),
                failures: 3,
                detail: "user_hk is unique".into(),
            },
            CheckResult {
                name: "not_null_key".into(),
                table: "hub_user".into(),
                failures: 0,
                detail: "user_hk is never NULL".into(),
            },
        ];
        let observed = Observed {
            at: "2026-12-02T10:00:05Z".into(),
            tables,
            last_vault_run: Some("2026-12-02 09:59:00".into()),
            tests: Ok(TestRun {
                results,
                seconds: 0.5,
            }),
        };
        let html = render(&doc, Some(&observed), &FRAME);
        assert!(html.contains("fail: 3 offending rows"), "{html}");
        assert!(html.contains("1 / 2 pass"));
        assert!(html.contains("1,234,567"));
        assert!(html.contains(r#"class="node vault fail""#));
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(-1234567), "-1,234,567");
    }
}
