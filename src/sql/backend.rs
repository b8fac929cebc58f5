//! [`Backend`]: how a model's statements reach a database, implemented by each driver.

use std::fmt;

use async_trait::async_trait;

use super::{Args, ColumnInfo, Dialect, RawRow, RowLock, Statement};
use crate::{Error, Result};

/// A connection (or pool) that a SQL model (`ConnectSession`) runs its statements on.
///
/// Implemented for sqlx's `SqlitePool`, `PgPool` and `MySqlPool` and for
/// `RusqliteConnection`, each behind its feature. A backend runs
/// statements and reads the catalog; what the statements say is the [`Dialect`]'s business and
/// what they are for is the model's.
#[async_trait]
pub trait Backend: Send + Sync + fmt::Debug + 'static {
    /// The SQL this backend speaks.
    fn dialect(&self) -> &'static dyn Dialect;

    /// Runs `stmt` with `args` and returns how many rows it affected.
    ///
    /// # Errors
    /// The driver's error.
    async fn execute(&self, stmt: &Statement, args: &Args<'_>) -> Result<u64>;

    /// Runs `stmt` and returns its rows, which select `sid, data, expires` in that order.
    ///
    /// # Errors
    /// The driver's error, or [`Error::Decode`] for a column of an unexpected type.
    async fn fetch_rows(&self, stmt: &Statement, args: &Args<'_>) -> Result<Vec<RawRow>>;

    /// Runs `stmt`, which selects one integer, and returns it.
    ///
    /// # Errors
    /// The driver's error.
    async fn fetch_count(&self, stmt: &Statement, args: &Args<'_>) -> Result<i64>;

    /// The columns of `table` in the current database or schema; empty when there is no such table.
    ///
    /// # Errors
    /// The driver's error.
    async fn columns(&self, table: &str) -> Result<Vec<ColumnInfo>>;

    /// Runs one DDL statement with no arguments.
    ///
    /// # Errors
    /// The driver's error.
    async fn run_ddl(&self, sql: &str) -> Result<()>;

    /// Whether `err` says a row with the same primary key exists.
    fn is_unique_violation(&self, err: &Error) -> bool;

    /// Runs `stmt`, one batch of a sweep, in a transaction that first takes `lock`'s row, and
    /// returns how many rows it affected, or `None` when another transaction holds the lock
    /// (nothing was run). A missing lock table or row is created first. The lock ends with the
    /// transaction, however this call ends (a cancelled call's transaction is rolled back).
    ///
    /// Only backends whose dialect asks for a [`SweepLock::Row`](super::SweepLock::Row) are
    /// given one; the default refuses, as a bug in the backend.
    ///
    /// # Errors
    /// The driver's error; [`Error::Internal`] from the default.
    async fn execute_row_locked(
        &self,
        lock: &RowLock,
        stmt: &Statement,
        args: &Args<'_>,
    ) -> Result<Option<u64>> {
        let _ = (lock, stmt, args);
        Err(Error::Internal(format!(
            "the {} backend cannot take a sweep lock row",
            self.dialect().name()
        )))
    }
}

/// How often a batch statement runs in one call: once, or until a batch comes back short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// One run.
    Once,
    /// Runs again while a run affects `rows` rows or more (a full batch).
    WhileFull {
        /// A full batch.
        rows: u64,
    },
}

impl Repeat {
    /// Whether to run again after a run that affected `affected` rows.
    pub fn again_after(self, affected: u64) -> bool {
        match self {
            Repeat::Once => false,
            Repeat::WhileFull { rows } => affected >= rows,
        }
    }
}

/// A backend that can open its own connection from a URL: what `Store::connect` needs.
#[async_trait]
pub trait ConnectUrl: Backend + Sized {
    /// Opens a connection or pool to `url`. For SQLite this sets WAL, `synchronous=NORMAL` and a
    /// busy timeout, and creates the file when missing.
    ///
    /// # Errors
    /// The driver's error, when the URL is bad or the database cannot be reached.
    async fn connect_url(url: &str) -> Result<Self>;
}
