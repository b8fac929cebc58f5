//! The sqlx pools as [`Backend`]s, written once for every database sqlx drives here. What
//! differs per database (binding, decoding, the catalog) is in [`SqlxDatabase`], implemented in
//! `sqlite.rs`, `postgres.rs` and `mysql.rs` beside this file.

use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, Connection, Database, Executor, IntoArguments, Pool, Row};

use crate::sql::{
    Arg, Args, Backend, ColumnInfo, ConnectUrl, Dialect, RawRow, RawTime, RowLock, Statement,
};
use crate::{Error, Result};

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(all(feature = "postgres", feature = "cache"))]
mod pg_notify;
#[cfg(feature = "postgres")]
mod pgbouncer;
#[cfg(feature = "postgres")]
mod postgres;

#[cfg(all(feature = "postgres", feature = "cache"))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "postgres", feature = "cache"))))]
pub use pg_notify::{DEFAULT_HEARTBEAT, PgNotify};
#[cfg(feature = "postgres")]
pub use pgbouncer::PgBouncerPool;
#[cfg(feature = "sqlite")]
mod sqlite;

/// A sqlx database this crate has a dialect for: what its pool needs to be a [`Backend`].
#[async_trait]
pub trait SqlxDatabase: Database {
    /// The SQL it speaks.
    const DIALECT: &'static dyn Dialect;

    /// Binds one argument the way this database wants it.
    fn bind<'q>(
        query: Query<'q, Self, Self::Arguments>,
        arg: &Arg<'_>,
    ) -> Query<'q, Self, Self::Arguments>;

    /// Reads `sid, data, expires` from a row: the first three columns of a
    /// [`RawRow`]; a fourth and fifth, when selected, are read as the version and the last
    /// write by [`decode_int`](SqlxDatabase::decode_int) and
    /// [`decode_time`](SqlxDatabase::decode_time).
    ///
    /// # Errors
    /// The driver's decode error.
    fn decode_row(row: &Self::Row) -> std::result::Result<RawRow, sqlx::Error>;

    /// Reads the time in column `index` (the last write of a row, after `sid, data, expires,
    /// version`).
    ///
    /// # Errors
    /// The driver's decode error.
    fn decode_time(row: &Self::Row, index: usize) -> std::result::Result<RawTime, sqlx::Error>;

    /// Reads one row of the dialect's [`catalog`](Dialect::catalog) query.
    ///
    /// # Errors
    /// The driver's decode error.
    fn decode_column(row: &Self::Row) -> std::result::Result<ColumnInfo, sqlx::Error>;

    /// Reads the integer in column `index` (a `COUNT(*)`, a version).
    ///
    /// # Errors
    /// The driver's decode error.
    fn decode_int(row: &Self::Row, index: usize) -> std::result::Result<i64, sqlx::Error>;

    /// How many rows a statement affected.
    fn rows_affected(result: &Self::QueryResult) -> u64;

    /// Opens a pool to `url`, with this database's recommended settings.
    ///
    /// # Errors
    /// The driver's error.
    async fn connect(url: &str) -> Result<Pool<Self>>;
}

/// The rows of a read as [`RawRow`]s: `sid, data, expires`, then the version and the last
/// write where the statement selected them.
fn raw_rows<DB: SqlxDatabase>(rows: &[DB::Row]) -> Result<Vec<RawRow>> {
    rows.iter()
        .map(|row| {
            let mut raw = DB::decode_row(row)?;
            if RawRow::has_version(row.len()) {
                raw = raw.with_version(Some(DB::decode_int(row, 3)?));
            }
            if RawRow::has_written(row.len()) {
                raw = raw.with_written(DB::decode_time(row, 4)?);
            }
            if RawRow::has_created(row.len()) {
                raw = raw.with_created(DB::decode_time(row, 5)?);
            }
            Ok(raw)
        })
        .collect()
}

fn query<'q, DB: SqlxDatabase>(
    stmt: &Statement,
    args: &Args<'_>,
) -> Result<Query<'q, DB, DB::Arguments>> {
    let mut query = sqlx::query::<DB>(AssertSqlSafe(stmt.shared_sql()));
    for arg in stmt.bound(args) {
        query = DB::bind(query, arg?);
    }
    Ok(query)
}

#[async_trait]
impl<DB> Backend for Pool<DB>
where
    DB: SqlxDatabase,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
{
    fn dialect(&self) -> &'static dyn Dialect {
        DB::DIALECT
    }

    async fn execute(&self, stmt: &Statement, args: &Args<'_>) -> Result<u64> {
        let query = query::<DB>(stmt, args)?;
        let mut conn = self.acquire().await?;
        let ran = query.execute(&mut *conn).await;
        let result = retire_if_read_only(&mut conn, ran)?;
        Ok(DB::rows_affected(&result))
    }

    async fn fetch_rows(&self, stmt: &Statement, args: &Args<'_>) -> Result<Vec<RawRow>> {
        let query = query::<DB>(stmt, args)?;
        let mut conn = self.acquire().await?;
        let ran = query.fetch_all(&mut *conn).await;
        let rows = retire_if_read_only(&mut conn, ran)?;
        raw_rows::<DB>(&rows)
    }

    async fn fetch_count(&self, stmt: &Statement, args: &Args<'_>) -> Result<i64> {
        let query = query::<DB>(stmt, args)?;
        let mut conn = self.acquire().await?;
        let ran = query.fetch_one(&mut *conn).await;
        let row = retire_if_read_only(&mut conn, ran)?;
        Ok(DB::decode_int(&row, 0)?)
    }

    async fn columns(&self, table: &str) -> Result<Vec<ColumnInfo>> {
        let rows = DB::bind(sqlx::query::<DB>(DB::DIALECT.catalog()), &Arg::Str(table))
            .fetch_all(self)
            .await?;
        rows.iter()
            .map(|row| DB::decode_column(row).map_err(Error::from))
            .collect()
    }

    async fn run_ddl(&self, sql: &str) -> Result<()> {
        sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
            .execute(self)
            .await?;
        Ok(())
    }

    fn is_unique_violation(&self, err: &Error) -> bool {
        match err {
            Error::Sqlx(sqlx::Error::Database(db)) => db.is_unique_violation(),
            _ => false,
        }
    }

    async fn execute_row_locked(
        &self,
        lock: &RowLock,
        stmt: &Statement,
        args: &Args<'_>,
    ) -> Result<Option<u64>> {
        // The batch runs on a task of its own, so that a caller who stops waiting (a timeout
        // around a sweep, a shutdown) does not cut it off mid-statement: it commits or rolls
        // back on its own, and its row locks go with it. A transaction dropped mid-statement
        // kept MariaDB's locks on the expiry index until the server noticed, which made
        // other instances' writes wait past their timeout.
        let (pool, lock, stmt, args) = (
            self.clone(),
            lock.clone(),
            stmt.clone(),
            args.to_owned_args(),
        );
        tokio::spawn(async move { locked_batches(&pool, &lock, &stmt, &args).await })
            .await
            .map_err(|err| Error::Internal(format!("a sweep batch's task ended: {err}")))?
    }
}

/// [`Backend::execute_row_locked`] on the caller's task: makes the lock table and row when
/// the first try finds them missing.
async fn locked_batches<DB>(
    pool: &Pool<DB>,
    lock: &RowLock,
    stmt: &Statement,
    args: &Args<'_>,
) -> Result<Option<u64>>
where
    DB: SqlxDatabase,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
{
    let mut created = false;
    loop {
        let mut conn = pool.acquire().await?;
        let ran = locked_batch(&mut conn, lock, stmt, args).await;
        match retire_if_read_only(&mut conn, ran)? {
            Batch::Ran(n) => return Ok(Some(n)),
            Batch::Busy => return Ok(None),
            Batch::NoLock if !created => {
                drop(conn);
                create_lock(pool, lock).await?;
                created = true;
            }
            Batch::NoLock => return Ok(None),
        }
    }
}

/// What one batch under a [`RowLock`] found.
enum Batch {
    /// It ran and affected this many rows.
    Ran(u64),
    /// Another transaction holds the lock.
    Busy,
    /// The lock table or row is missing.
    NoLock,
}

/// One batch in a transaction under `lock`, on `conn`.
async fn locked_batch<DB>(
    conn: &mut DB::Connection,
    lock: &RowLock,
    stmt: &Statement,
    args: &Args<'_>,
) -> Result<Batch>
where
    DB: SqlxDatabase,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
{
    let mut tx = conn.begin().await?;
    let took = sqlx::query::<DB>(AssertSqlSafe(lock.take.clone()))
        .fetch_optional(&mut *tx)
        .await;
    match took {
        Ok(Some(_)) => {}
        Ok(None) => {
            // Held by another transaction, or not made yet.
            let exists = sqlx::query::<DB>(AssertSqlSafe(lock.exists.clone()))
                .fetch_one(&mut *tx)
                .await?;
            tx.rollback().await?;
            return Ok(match DB::decode_int(&exists, 0)? > 0 {
                true => Batch::Busy,
                false => Batch::NoLock,
            });
        }
        Err(err) if is_missing_table(&err) => return Ok(Batch::NoLock),
        Err(err) => return Err(err.into()),
    }
    sqlx::query::<DB>(AssertSqlSafe(lock.mark.clone()))
        .execute(&mut *tx)
        .await?;
    let done = query::<DB>(stmt, args)?.execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(Batch::Ran(DB::rows_affected(&done)))
}

/// `result` as this crate's result; when it says the server takes no writes (a primary
/// demoted by a failover, a standby), `conn` is closed instead of going back to the pool, so
/// that the pool's next connection may reach the new primary. sqlx's ping before a pooled
/// connection is handed out does not see a demoted server: it still answers.
fn retire_if_read_only<DB: Database, T>(
    conn: &mut PoolConnection<DB>,
    result: std::result::Result<T, impl Into<Error>>,
) -> Result<T> {
    let result = result.map_err(Into::into);
    if let Err(err) = &result
        && err.is_read_only()
    {
        tracing::debug!(error = %err, "closing a connection to a server that takes no writes");
        conn.close_on_drop();
    }
    result
}

/// Makes the lock table and row, where another instance has not made them already.
async fn create_lock<DB>(pool: &Pool<DB>, lock: &RowLock) -> Result<()>
where
    DB: SqlxDatabase,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    for sql in &lock.create {
        sqlx::raw_sql(AssertSqlSafe(sql.clone()))
            .execute(pool)
            .await
            .map_err(|err| {
                Error::Misconfigured(format!(
                    "the sweep lock needs a table of its own, and it could not be made ({err}): \
                     make it with `{sql}`, or grant this database user CREATE"
                ))
            })?;
    }
    Ok(())
}

/// Whether `err` says a table does not exist (SQLSTATE `42S02` on MySQL, `42P01` on
/// PostgreSQL).
fn is_missing_table(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => matches!(db.code().as_deref(), Some("42S02" | "42P01")),
        _ => false,
    }
}

#[async_trait]
impl<DB> ConnectUrl for Pool<DB>
where
    DB: SqlxDatabase,
    Pool<DB>: Backend,
{
    async fn connect_url(url: &str) -> Result<Self> {
        DB::connect(url).await
    }
}
