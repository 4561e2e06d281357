//! Sessions and transactions, as generated SQL sees a warehouse.

/// A statement that failed, or a warehouse that could not run it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SqlError {
    /// The warehouse refused the statement (bad SQL, a missing table, a constraint): running it again
    /// will fail again.
    #[error("SQL: {0}")]
    Statement(String),
    /// The warehouse could not be reached, or asked to slow down: the same work can succeed later.
    #[error("warehouse unavailable: {0}")]
    Unavailable(String),
    /// Any other warehouse failure (opening, authentication), as the warehouse worded it.
    #[error("{0}")]
    Warehouse(String),
}

impl SqlError {
    /// A failed statement, with the statement's start for context.
    pub fn in_statement(sql: &str, source: impl std::fmt::Display) -> SqlError {
        let head: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        let head: String = head.chars().take(160).collect();
        SqlError::Statement(format!("{source}\n  in: {head}"))
    }
}

/// Statements run inside one warehouse transaction.
pub trait SqlSession {
    /// Runs one statement; returns the rows it changed (0 for DDL).
    fn execute(&mut self, sql: &str) -> Result<usize, SqlError>;
    /// Runs one query and reads back all of its rows.
    fn query(&mut self, sql: &str) -> Result<crate::Rows, SqlError>;
    /// A table's column names, in order.
    fn columns(&mut self, table: &str) -> Result<Vec<String>, SqlError>;
}

/// The SQL dialects Playlog generates. Which SQL each one gets is the SQL generator's business (the
/// vault's dialect modules); a warehouse only says which it speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialectName {
    DuckDb,
    BigQuery,
}

impl DialectName {
    /// Whether opening a warehouse and running the vault apply pending migrations themselves. A DuckDB file
    /// belongs to the process that opens it, so nothing has to be remembered on a laptop. In BigQuery,
    /// creating datasets and tables is a step of its own (`playlog migrate`, or `consume --migrate`): the
    /// least-privilege accounts that ingest and run the vault may not, and must not crash-loop trying;
    /// they only check that what they need exists.
    pub fn migrates_implicitly(self) -> bool {
        matches!(self, DialectName::DuckDb)
    }
}

/// A warehouse as generated SQL uses it: sessions, in transactions or statement by statement.
pub trait Transact {
    fn dialect(&self) -> DialectName;
    /// What generated SQL puts before a schema name (`raw`, `vault`, `marts`) to name it here.
    fn schema_prefix(&self) -> String;
    /// Runs `work` in one transaction: committed if it returns `Ok`, rolled back otherwise.
    fn transact(
        &mut self,
        work: &mut dyn FnMut(&mut dyn SqlSession) -> Result<(), SqlError>,
    ) -> Result<(), SqlError>;
    /// Runs `work` with each statement committed by itself (BigQuery allows no DDL in a transaction).
    fn autocommit_each(
        &mut self,
        work: &mut dyn FnMut(&mut dyn SqlSession) -> Result<(), SqlError>,
    ) -> Result<(), SqlError>;
}

/// [`Transact::transact`] with a result.
pub fn transaction<T>(
    warehouse: &mut dyn Transact,
    work: impl FnOnce(&mut dyn SqlSession) -> Result<T, SqlError>,
) -> Result<T, SqlError> {
    with_result(work, |w| warehouse.transact(w))
}

/// [`Transact::autocommit_each`] with a result.
pub fn autocommit<T>(
    warehouse: &mut dyn Transact,
    work: impl FnOnce(&mut dyn SqlSession) -> Result<T, SqlError>,
) -> Result<T, SqlError> {
    with_result(work, |w| warehouse.autocommit_each(w))
}

/// Runs a one-shot `work` through a runner that takes a reusable callback, and returns what it made.
fn with_result<T>(
    work: impl FnOnce(&mut dyn SqlSession) -> Result<T, SqlError>,
    runner: impl FnOnce(
        &mut dyn FnMut(&mut dyn SqlSession) -> Result<(), SqlError>,
    ) -> Result<(), SqlError>,
) -> Result<T, SqlError> {
    let mut work = Some(work);
    let mut out = None;
    runner(&mut |s| {
        let work = work.take().ok_or_else(|| {
            SqlError::Warehouse("a warehouse ran one transaction's work twice".into())
        })?;
        out = Some(work(s)?);
        Ok(())
    })?;
    out.ok_or_else(|| SqlError::Warehouse("a warehouse committed without running the work".into()))
}
