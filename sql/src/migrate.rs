//! Versioned migrations: numbered, named steps applied once each and recorded in a ledger table, in
//! order. One mechanism for every schema Playlog owns: raw tables and the offsets table (the warehouse
//! adapters), and the vault's, marts' and run-control tables (the vault). `playlog migrate` runs them all.
//! Where a dialect [migrates implicitly](crate::DialectName::migrates_implicitly) (DuckDB), opening a
//! warehouse and `vault run` apply what is pending too, so that nothing has to be remembered on a laptop;
//! elsewhere (BigQuery) they only check, with [`unapplied`], and name what is missing.
//!
//! Every statement is idempotent as well (`IF NOT EXISTS`), so a crash between a migration's statements and
//! its ledger row (BigQuery runs DDL outside transactions) only repeats harmless work.

use crate::{SqlError, SqlSession, Transact};

/// One versioned step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// Unique and stable: `NNN-what` for hand-written steps, or a generated name (see the vault).
    pub name: String,
    pub statements: Vec<String>,
    /// Later migrations this one makes unnecessary when it runs: a table created with every column covers
    /// the steps that add those columns to an older table. They are recorded with it, not run.
    pub covers: Vec<String>,
}

impl Migration {
    pub fn new(name: impl Into<String>, statements: Vec<String>) -> Migration {
        Migration {
            name: name.into(),
            statements,
            covers: Vec::new(),
        }
    }
}

/// The statements of a DDL file: split at `;` that end a line, comments dropped.
pub fn statements(file: &str) -> Vec<String> {
    let code: String = file
        .lines()
        .map(|l| l.split(" --").next().unwrap_or(l))
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    code.split(";\n")
        .map(|s| s.trim().trim_end_matches(';').trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Where applied migrations are recorded.
#[derive(Debug, Clone)]
pub struct Ledger {
    /// The table, as SQL names it (`raw._schema_migrations`).
    pub table: String,
    /// The dialect's text type (`VARCHAR`, `STRING`).
    pub text_type: &'static str,
}

impl Ledger {
    pub fn create(&self) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS {} (name {} NOT NULL, applied_at TIMESTAMP NOT NULL)",
            self.table, self.text_type
        )
    }

    pub fn read(&self) -> String {
        format!("SELECT name FROM {}", self.table)
    }

    /// The ledger row of one applied migration. Names are Playlog's own (checked in [`pending`]), so a
    /// plain literal is safe in every dialect.
    pub fn record(&self, names: &[&str]) -> String {
        let rows: Vec<String> = names
            .iter()
            .map(|n| format!("('{n}', CAST(CURRENT_TIMESTAMP AS TIMESTAMP))"))
            .collect();
        format!(
            "INSERT INTO {} (name, applied_at) VALUES {}",
            self.table,
            rows.join(", ")
        )
    }
}

/// The migrations still to apply, in their order: those neither in `applied` nor covered by an earlier
/// migration that is applied or pending.
pub fn pending<'a>(migrations: &'a [Migration], applied: &[String]) -> Vec<&'a Migration> {
    let mut done: std::collections::HashSet<&str> = applied.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    for m in migrations {
        if done.contains(m.name.as_str()) {
            continue;
        }
        done.insert(&m.name);
        done.extend(m.covers.iter().map(String::as_str));
        out.push(m);
    }
    out
}

/// Whether a migration name is safe to write as a literal: letters, digits, `-`, `_`, `.` and `/`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

/// Applies what is pending, each migration with its ledger row; returns the names applied (callers log
/// them). Where DDL is
/// transactional (`ddl_in_transactions`), a migration and its row commit together.
pub fn apply(
    warehouse: &mut dyn Transact,
    ledger: &Ledger,
    migrations: &[Migration],
    ddl_in_transactions: bool,
) -> Result<Vec<String>, SqlError> {
    let names = migrations
        .iter()
        .flat_map(|m| std::iter::once(&m.name).chain(&m.covers));
    if let Some(bad) = names.into_iter().find(|n| !valid_name(n)) {
        return Err(SqlError::Warehouse(format!(
            "migration name {bad:?} has characters other than letters, digits, -, _, . and /"
        )));
    }
    // Read first: the ledger exists on every open but the first, and creating it each time would be one
    // more DDL job per open on BigQuery.
    let applied = match crate::autocommit(warehouse, |s| read_applied(s, ledger)) {
        Ok(applied) => applied,
        Err(SqlError::Statement(_)) => crate::autocommit(warehouse, |s| {
            s.execute(&ledger.create())?;
            read_applied(s, ledger)
        })?,
        Err(other) => return Err(other),
    };
    let mut done = Vec::new();
    for migration in pending(migrations, &applied) {
        let run = |s: &mut dyn SqlSession| -> Result<(), SqlError> {
            for statement in &migration.statements {
                s.execute(statement)?;
            }
            let mut names = vec![migration.name.as_str()];
            names.extend(migration.covers.iter().map(String::as_str));
            s.execute(&ledger.record(&names))?;
            Ok(())
        };
        if ddl_in_transactions {
            crate::transaction(warehouse, run)?;
        } else {
            crate::autocommit(warehouse, run)?;
        }
        done.push(migration.name.clone());
    }
    Ok(done)
}

/// The migrations not applied yet, without applying any: what a step that may not migrate checks. A
/// missing ledger means that nothing is applied.
pub fn unapplied<'a>(
    warehouse: &mut dyn Transact,
    ledger: &Ledger,
    migrations: &'a [Migration],
) -> Result<Vec<&'a Migration>, SqlError> {
    let applied = match crate::autocommit(warehouse, |s| read_applied(s, ledger)) {
        Ok(applied) => applied,
        Err(SqlError::Statement(_)) => Vec::new(),
        Err(other) => return Err(other),
    };
    Ok(pending(migrations, &applied))
}

/// What unapplied migrations would create, for an error that names the missing tables: each migration's
/// name with the tables its `CREATE TABLE` statements make, or its name alone.
pub fn describe(migrations: &[&Migration]) -> String {
    migrations
        .iter()
        .map(|m| {
            let tables: Vec<&str> = m
                .statements
                .iter()
                .filter_map(|s| created_table(s))
                .collect();
            if tables.is_empty() {
                m.name.clone()
            } else {
                format!("{} ({})", m.name, tables.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The table a `CREATE [OR REPLACE] TABLE [IF NOT EXISTS] name …` statement makes.
fn created_table(statement: &str) -> Option<&str> {
    let words: Vec<&str> = statement.split_whitespace().take(8).collect();
    let at = words.iter().position(|w| w.eq_ignore_ascii_case("TABLE"))?;
    if !words.first()?.eq_ignore_ascii_case("CREATE") {
        return None;
    }
    let mut name = words.get(at + 1)?;
    if name.eq_ignore_ascii_case("IF") {
        name = words.get(at + 4)?;
    }
    Some(name.split('(').next().unwrap_or(name))
}

fn read_applied(s: &mut dyn SqlSession, ledger: &Ledger) -> Result<Vec<String>, SqlError> {
    Ok(s.query(&ledger.read())?
        .into_iter()
        .filter_map(|r| r.into_iter().next())
        .map(|v| v.to_string())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str) -> Migration {
        Migration::new(name, vec![format!("-- {name}")])
    }

    #[test]
    fn unapplied_migrations_are_described_by_the_tables_they_create() {
        let a = Migration::new(
            "001-a",
            vec![
                "CREATE TABLE IF NOT EXISTS `p.d.t` (x INT64)".into(),
                "CREATE TABLE raw.u(x INT)".into(),
            ],
        );
        let b = Migration::new("002-b", vec!["ALTER TABLE t ADD COLUMN y INT".into()]);
        assert_eq!(describe(&[&a, &b]), "001-a (`p.d.t`, raw.u); 002-b");
    }

    #[test]
    fn pending_keeps_order_and_skips_what_is_applied() {
        let all = [m("001-a"), m("002-b"), m("003-c")];
        let names: Vec<&str> = pending(&all, &["002-b".into()])
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        assert_eq!(names, ["001-a", "003-c"]);
        assert!(pending(&all, &["001-a".into(), "002-b".into(), "003-c".into()]).is_empty());
    }

    #[test]
    fn ddl_files_split_into_statements_without_comments() {
        let file = "-- header\nCREATE TABLE a (x INT); -- trailing\nCREATE TABLE b (\n  y INT -- why\n);\n";
        assert_eq!(
            statements(file),
            ["CREATE TABLE a (x INT)", "CREATE TABLE b (\n  y INT\n)"]
        );
    }

    #[test]
    fn a_new_table_covers_the_steps_that_add_its_columns() {
        let mut create = m("vault/t");
        create.covers = vec!["vault/t/x".into()];
        let all = [create, m("vault/t/x"), m("vault/u")];
        let names = |applied: &[String]| -> Vec<String> {
            pending(&all, applied)
                .iter()
                .map(|m| m.name.clone())
                .collect()
        };
        // A fresh warehouse: the table is created with x, and x's own step is not run.
        assert_eq!(names(&[]), ["vault/t", "vault/u"]);
        // A warehouse whose t predates x: only x's step runs.
        assert_eq!(names(&["vault/t".into(), "vault/u".into()]), ["vault/t/x"]);
    }

    #[test]
    fn names_that_could_break_a_literal_are_refused() {
        assert!(valid_name("vault/hub_user/001"));
        assert!(!valid_name("x'); DROP TABLE y; --"));
        assert!(!valid_name(""));
    }
}
