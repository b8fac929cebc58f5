//! sqlx's `SqlitePool` as a backend: binding, decoding and the catalog for SQLite.

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::query::Query;
use sqlx::sqlite::{
    Sqlite, SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteQueryResult, SqliteRow, SqliteSynchronous,
};

use super::SqlxDatabase;
use crate::Result;
use crate::driver::SQLITE_BUSY_TIMEOUT;
use crate::sql::dialect::SqliteDialect;
use crate::sql::{Arg, ColumnInfo, Dialect, RawRow, RawTime};

#[async_trait]
impl SqlxDatabase for Sqlite {
    const DIALECT: &'static dyn Dialect = &SqliteDialect;

    fn bind<'q>(
        query: Query<'q, Sqlite, SqliteArguments>,
        arg: &Arg<'_>,
    ) -> Query<'q, Sqlite, SqliteArguments> {
        match arg {
            Arg::Null | Arg::NullText => query.bind(None::<String>),
            Arg::NullInt => query.bind(None::<i64>),
            Arg::Str(s) => query.bind(*s),
            Arg::String(s) => query.bind(s.as_str()),
            Arg::Int(i) => query.bind(*i),
            Arg::Time(t) => query.bind(crate::sql::sqlite_time_text(*t)),
            Arg::Naive(n) => query.bind(crate::sql::sqlite_time_text(n.and_utc())),
        }
    }

    fn decode_row(row: &SqliteRow) -> Result<RawRow, sqlx::Error> {
        // Unchecked: the declared types (VARCHAR, DATETIME) say nothing in SQLite; the
        // values are read as text whatever they are, and a bad time is reported on decode.
        Ok(RawRow::new(
            row.try_get_unchecked(0)?,
            row.try_get_unchecked(1)?,
            Self::decode_time(row, 2)?,
        ))
    }

    fn decode_time(row: &SqliteRow, index: usize) -> Result<RawTime, sqlx::Error> {
        let t: Option<String> = row.try_get_unchecked(index)?;
        Ok(t.map_or(RawTime::Null, RawTime::Text))
    }

    fn decode_column(row: &SqliteRow) -> Result<ColumnInfo, sqlx::Error> {
        Ok(ColumnInfo::new(
            row.try_get(0)?,
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
            row.try_get_unchecked(4)?,
        ))
    }

    fn decode_int(row: &SqliteRow, index: usize) -> Result<i64, sqlx::Error> {
        row.try_get(index)
    }

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }

    async fn connect(url: &str) -> Result<SqlitePool> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(SQLITE_BUSY_TIMEOUT);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool = if in_memory {
            // An in-memory database lives as long as one of its connections: keep one open.
            SqlitePoolOptions::new()
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await?
        } else {
            SqlitePool::connect_with(options).await?
        };
        Ok(pool)
    }
}
