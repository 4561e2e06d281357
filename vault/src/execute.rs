//! The executor: runs a plan's steps in one session, binding parameters from the rows its queries read.

use std::collections::BTreeMap;
use std::time::Instant;

use playlog_sql::{SqlError, SqlSession, Value};

use crate::dialect::Sql;
use crate::plan::{ELAPSED_SECONDS, ParamType, Step};

/// What running a plan did.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub staged: BTreeMap<String, u64>,
    pub changed: Vec<(String, usize)>,
}

pub(crate) struct Executor<'a> {
    sql: &'a Sql,
    started: Instant,
    /// Each bound parameter: its value as read, and its literal.
    params: BTreeMap<String, (Value, String)>,
    pub outcome: Outcome,
}

impl<'a> Executor<'a> {
    pub fn new(sql: &'a Sql, started: Instant) -> Executor<'a> {
        Executor {
            sql,
            started,
            params: BTreeMap::new(),
            outcome: Outcome::default(),
        }
    }

    pub fn run(&mut self, s: &mut dyn SqlSession, steps: &[Step]) -> Result<(), SqlError> {
        for step in steps {
            match step {
                Step::Execute { sql, report } => {
                    let changed = s.execute(&self.fill(sql)?)?;
                    if let Some(name) = report {
                        self.outcome.changed.push((name.clone(), changed));
                    }
                }
                Step::Bind {
                    sql,
                    params,
                    staged,
                } => {
                    let rows = s.query(&self.fill(sql)?)?;
                    let row = rows.into_iter().next().unwrap_or_default();
                    for (i, (name, t)) in params.iter().enumerate() {
                        let value = row.get(i).cloned().unwrap_or(Value::Null);
                        let literal = self.literal(&value, *t);
                        self.params.insert(name.clone(), (value, literal));
                    }
                    if let (Some(source), Some((first, _))) = (staged, params.first()) {
                        let rows = self.params[first].0.as_i64().unwrap_or(0);
                        if rows > 0 {
                            self.outcome.staged.insert(source.clone(), rows as u64);
                        }
                    }
                }
                Step::When {
                    param,
                    then,
                    otherwise,
                } => {
                    let set = match self.params.get(param) {
                        Some((value, _)) => {
                            !matches!(value, Value::Null) && value.as_i64() != Some(0)
                        }
                        None => return Err(unbound(param)),
                    };
                    self.run(s, if set { then } else { otherwise })?;
                }
            }
        }
        Ok(())
    }

    fn literal(&self, value: &Value, t: ParamType) -> String {
        let sql = self.sql;
        match (value, t) {
            (Value::Null, ParamType::Timestamp) => "CAST(NULL AS TIMESTAMP)".into(),
            (Value::Null, ParamType::Date) => "CAST(NULL AS DATE)".into(),
            (Value::Null, ParamType::Int) => format!("CAST(NULL AS {})", sql.int_type()),
            (v, ParamType::Timestamp) => sql.timestamp(&v.to_string()),
            (v, ParamType::Date) => sql.date(&v.to_string()),
            (v, ParamType::Int) => v.as_i64().unwrap_or(0).to_string(),
        }
    }

    /// The statement with every `{{name}}` replaced by its literal.
    fn fill(&self, sql: &str) -> Result<String, SqlError> {
        let mut out = String::with_capacity(sql.len());
        let mut rest = sql;
        while let Some(open) = rest.find("{{") {
            out.push_str(&rest[..open]);
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| SqlError::Warehouse(format!("unclosed parameter in: {sql}")))?;
            let name = &after[..close];
            if name == ELAPSED_SECONDS {
                out.push_str(&format!("{:.3}", self.started.elapsed().as_secs_f64()));
            } else {
                let (_, literal) = self.params.get(name).ok_or_else(|| unbound(name))?;
                out.push_str(literal);
            }
            rest = &after[close + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

fn unbound(name: &str) -> SqlError {
    SqlError::Warehouse(format!(
        "the vault's plan uses the parameter {{{{{name}}}}} before binding it (a planner bug)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use playlog_sql::{DialectName, Rows};

    /// A session that answers every query with one row and records what ran: the executor's own logic
    /// (binding, branching, filling in) needs no warehouse.
    struct Recorder {
        ran: Vec<String>,
        row: Vec<Value>,
    }

    impl SqlSession for Recorder {
        fn execute(&mut self, sql: &str) -> Result<usize, SqlError> {
            self.ran.push(sql.to_owned());
            Ok(7)
        }

        fn query(&mut self, sql: &str) -> Result<Rows, SqlError> {
            self.ran.push(sql.to_owned());
            Ok(vec![self.row.clone()])
        }

        fn columns(&mut self, _table: &str) -> Result<Vec<String>, SqlError> {
            Ok(Vec::new())
        }
    }

    #[test]
    fn bound_values_fill_later_statements_and_pick_branches() {
        let sql = Sql::new(DialectName::DuckDb, "");
        let mut session = Recorder {
            ran: Vec::new(),
            row: vec![
                Value::Int(3),
                Value::Text("2026-01-01 00:00:00".into()),
                Value::Null,
            ],
        };
        let plan = vec![
            Step::Bind {
                sql: "SELECT rows, ts, late".into(),
                params: vec![
                    ("rows".into(), ParamType::Int),
                    ("ts".into(), ParamType::Timestamp),
                    ("late".into(), ParamType::Timestamp),
                ],
                staged: Some("listen".into()),
            },
            Step::reported("DELETE FROM t WHERE ts > {{ts}}", "t"),
            Step::When {
                param: "late".into(),
                then: vec![Step::execute("late")],
                otherwise: vec![Step::execute("SELECT {{late}}")],
            },
        ];
        let mut executor = Executor::new(&sql, Instant::now());
        executor.run(&mut session, &plan).expect("runs");
        assert_eq!(
            session.ran[1..],
            [
                "DELETE FROM t WHERE ts > TIMESTAMP '2026-01-01 00:00:00'",
                "SELECT CAST(NULL AS TIMESTAMP)"
            ]
        );
        assert_eq!(executor.outcome.staged["listen"], 3);
        assert_eq!(executor.outcome.changed, [("t".to_owned(), 7)]);
    }

    #[test]
    fn an_unbound_parameter_is_an_error_not_a_guess() {
        let sql = Sql::new(DialectName::DuckDb, "");
        let mut session = Recorder {
            ran: Vec::new(),
            row: Vec::new(),
        };
        let err = Executor::new(&sql, Instant::now())
            .run(&mut session, &[Step::execute("SELECT {{nope}}")])
            .expect_err("unbound");
        assert!(err.to_string().contains("{{nope}}"), "{err}");
        assert!(session.ran.is_empty());
    }
}
