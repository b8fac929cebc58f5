//! The sqlx pools as [`Backend`]s, written once for every database sqlx drives here. What
//! differs per database (binding, decoding, the catalog) is in [`SqlxDatabase`], implemented in
//! `sqlite.rs`, `postgres.rs` and `mysql.rs` beside this file.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, Database, Executor, IntoArguments, Pool, Row};

use crate::sql::{
    Arg, Args, Backend, ColumnInfo, ConnectUrl, Dialect, RawRow, Repeat, Statement, SweepLock,
};
use crate::{Error, Result};

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
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
    /// [`RawRow`]; a fourth, when selected, is read as the version.
    ///
    /// # Errors
    /// The driver's decode error.
    fn decode_row(row: &Self::Row) -> std::result::Result<RawRow, sqlx::Error>;

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
        let result = query::<DB>(stmt, args)?.execute(self).await?;
        Ok(DB::rows_affected(&result))
    }

    async fn fetch_rows(&self, stmt: &Statement, args: &Args<'_>) -> Result<Vec<RawRow>> {
        let rows = query::<DB>(stmt, args)?.fetch_all(self).await?;
        rows.iter()
            .map(|row| {
                let raw = DB::decode_row(row)?;
                Ok(match RawRow::has_version(row.len()) {
                    true => raw.with_version(Some(DB::decode_int(row, 3)?)),
                    false => raw,
                })
            })
            .collect()
    }

    async fn fetch_count(&self, stmt: &Statement, args: &Args<'_>) -> Result<i64> {
        let row = query::<DB>(stmt, args)?.fetch_one(self).await?;
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

    async fn execute_locked(
        &self,
        lock: &SweepLock,
        stmt: &Statement,
        args: &Args<'_>,
        repeat: Repeat,
    ) -> Result<Option<u64>> {
        // The lock belongs to a connection: take one from the pool for the whole turn, and
        // close it afterwards rather than give it back. A sweep cancelled anywhere between the
        // lock and the unlock (a timeout around it, a shutdown) then cannot leave the lock held
        // on a pooled connection, where every instance would skip every sweep: the server
        // gives a closed connection's session locks back. One connection per sweep is cheap.
        let mut conn = self.acquire().await?;
        conn.close_on_drop();
        let got = sqlx::query::<DB>(AssertSqlSafe(lock.acquire.clone()))
            .fetch_one(&mut *conn)
            .await?;
        if DB::decode_int(&got, 0)? != 1 {
            return Ok(None);
        }
        // From here on every way out goes through the release below: the lock is the
        // connection's, and a connection back in the pool must not keep it.
        let mut result = Ok(0);
        let sweep_started = Instant::now();
        let mut retry = 0;
        loop {
            let started = Instant::now();
            let ran = match query::<DB>(stmt, args) {
                Ok(query) => query.execute(&mut *conn).await.map_err(Error::from),
                Err(err) => Err(err),
            };
            match ran {
                Ok(done) => {
                    retry = 0;
                    let n = DB::rows_affected(&done);
                    result = result.map(|total| total + n);
                    if !repeat.again_after(n) {
                        break;
                    }
                    let pause = pause_after(sweep_started.elapsed(), started.elapsed());
                    tokio::time::sleep(pause).await;
                }
                Err(err) => {
                    // A batch the database rolled back (a deadlock with a request's write)
                    // runs again; the batches before it stay deleted and counted.
                    retry += 1;
                    match err.retry_after(retry) {
                        Some(pause) => {
                            tracing::debug!(error = %err, retry, "sweep batch rolled back; running it again");
                            tokio::time::sleep(pause).await;
                        }
                        None => {
                            result = Err(err);
                            break;
                        }
                    }
                }
            }
        }
        let released = sqlx::query::<DB>(AssertSqlSafe(lock.release.clone()))
            .execute(&mut *conn)
            .await;
        if let Err(err) = released {
            // Closing the connection gives the lock back on the server's side.
            tracing::warn!(error = %err, "could not give back the sweep lock; closing its connection");
            let _ = conn.close().await;
        }
        Ok(Some(result?))
    }
}

/// How long a sweep that has run for `so_far` leaves the database to requests after a full
/// batch that took `took`: nothing in its first [`UNPACED`], so that the usual sweep (every 15
/// minutes, a few thousand rows) runs straight through; after that as long as the batch took,
/// so that a long sweep (a backlog of a million rows) takes about half of the database's time,
/// not all of it (BENCHMARKS.md, the 1,000,000-row sweep, has the effect on requests' p99).
fn pause_after(so_far: Duration, took: Duration) -> Duration {
    if so_far < UNPACED {
        Duration::ZERO
    } else {
        took
    }
}

/// How long a sweep runs before it starts pausing between batches.
const UNPACED: Duration = Duration::from_millis(100);

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
