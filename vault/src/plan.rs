//! A vault run as data: the steps the planner builds from the model and the catalog, without a warehouse,
//! and that the executor (`execute.rs`) runs in one session.
//!
//! A run depends on a few values only the warehouse knows: each source's high-water marks, what a
//! staging holds, whether any key arrived late. A [`Step::Bind`] reads such values from one row into named
//! parameters, which later statements use as `{{name}}` and the executor fills in as literals (literals,
//! not subqueries, so that BigQuery prunes partitions by them). [`Step::When`] branches on one of them. The
//! rest is plain SQL text, so the whole run can be printed, reviewed and snapshot-tested per dialect.

use std::fmt::Write as _;

/// The type of a bound parameter, which decides how its literal is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    Timestamp,
    Date,
    Int,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Runs one statement. With `report`, the rows it changed are reported under that name.
    Execute { sql: String, report: Option<String> },
    /// Runs a query of one row and binds its columns, in order, to `params`. With `staged`, the first
    /// column is the row count staged for that source.
    Bind {
        sql: String,
        params: Vec<(String, ParamType)>,
        staged: Option<String>,
    },
    /// Runs `then` when the parameter is neither NULL nor zero, `otherwise` when it is.
    When {
        param: String,
        then: Vec<Step>,
        otherwise: Vec<Step>,
    },
}

impl Step {
    pub fn execute(sql: impl Into<String>) -> Step {
        Step::Execute {
            sql: sql.into(),
            report: None,
        }
    }

    pub fn reported(sql: impl Into<String>, report: impl Into<String>) -> Step {
        Step::Execute {
            sql: sql.into(),
            report: Some(report.into()),
        }
    }

    pub fn bind(sql: impl Into<String>, params: &[(&str, ParamType)]) -> Step {
        Step::Bind {
            sql: sql.into(),
            params: params.iter().map(|(n, t)| ((*n).to_owned(), *t)).collect(),
            staged: None,
        }
    }

    pub fn when(param: &str, then: Vec<Step>) -> Step {
        Step::When {
            param: param.to_owned(),
            then,
            otherwise: Vec::new(),
        }
    }
}

/// A parameter's placeholder in SQL text.
pub fn param(name: &str) -> String {
    format!("{{{{{name}}}}}")
}

/// The elapsed time of the run so far, in seconds: the one parameter the executor provides itself.
pub const ELAPSED_SECONDS: &str = "elapsed_seconds";

/// A plan printed for review: one numbered step per paragraph, SQL with its lines trimmed.
pub fn render(steps: &[Step]) -> String {
    let mut out = String::new();
    render_into(&mut out, steps, "");
    out
}

fn render_into(out: &mut String, steps: &[Step], indent: &str) {
    for (i, step) in steps.iter().enumerate() {
        let n = i + 1;
        match step {
            Step::Execute { sql, report } => {
                let label = report
                    .as_ref()
                    .map_or_else(String::new, |r| format!(" -> {r}"));
                let _ = writeln!(out, "{indent}-- {n}. execute{label}");
                write_sql(out, sql, indent);
            }
            Step::Bind {
                sql,
                params,
                staged,
            } => {
                let names: Vec<String> =
                    params.iter().map(|(p, t)| format!("{p}: {t:?}")).collect();
                let staged = staged
                    .as_ref()
                    .map_or_else(String::new, |s| format!(" (rows staged from {s})"));
                let _ = writeln!(out, "{indent}-- {n}. bind {}{staged}", names.join(", "));
                write_sql(out, sql, indent);
            }
            Step::When {
                param,
                then,
                otherwise,
            } => {
                let _ = writeln!(out, "{indent}-- {n}. when {{{{{param}}}}} is set");
                render_into(out, then, &format!("{indent}    "));
                if !otherwise.is_empty() {
                    let _ = writeln!(out, "{indent}-- {n}. otherwise");
                    render_into(out, otherwise, &format!("{indent}    "));
                }
            }
        }
    }
}

fn write_sql(out: &mut String, sql: &str, indent: &str) {
    for line in sql.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let _ = writeln!(out, "{indent}{line}");
    }
    let _ = writeln!(out, "{indent};");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_steps_render_indented() {
        let plan = vec![
            Step::bind("SELECT 1", &[("x", ParamType::Int)]),
            Step::when("x", vec![Step::reported("DELETE FROM t", "t")]),
        ];
        assert_eq!(
            render(&plan),
            "-- 1. bind x: Int\nSELECT 1\n;\n-- 2. when {{x}} is set\n    -- 1. execute -> t\n    DELETE FROM t\n    ;\n"
        );
    }
}
