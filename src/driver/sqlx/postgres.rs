//! sqlx's `PgPool` as a backend: binding, decoding and the catalog for PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::{PgArguments, PgPool, PgQueryResult, PgRow, Postgres};
use sqlx::query::Query;

use super::SqlxDatabase;
use crate::Result;
use crate::sql::dialect::PostgresDialect;
use crate::sql::{Arg, ColumnInfo, Dialect, RawRow, RawTime};

#[async_trait]
impl SqlxDatabase for Postgres {
    const DIALECT: &'static dyn Dialect = &PostgresDialect;

    fn bind<'q>(
        query: Query<'q, Postgres, PgArguments>,
        arg: &Arg<'_>,
    ) -> Query<'q, Postgres, PgArguments> {
        match arg {
            // A NULL of the column's type: a statement is prepared once, with the types of
            // its first arguments.
            Arg::Null => query.bind(None::<DateTime<Utc>>),
            Arg::NullText => query.bind(None::<&str>),
            Arg::NullInt => query.bind(None::<i64>),
            Arg::Str(s) => query.bind(*s),
            Arg::String(s) => query.bind(s.as_str()),
            Arg::Int(i) => query.bind(*i),
            Arg::Time(t) => query.bind(*t),
            Arg::Naive(n) => query.bind(n.and_utc()),
        }
    }

    fn decode_row(row: &PgRow) -> Result<RawRow, sqlx::Error> {
        Ok(RawRow::new(
            row.try_get(0)?,
            row.try_get(1)?,
            Self::decode_time(row, 2)?,
        ))
    }

    fn decode_time(row: &PgRow, index: usize) -> Result<RawTime, sqlx::Error> {
        let t: Option<DateTime<Utc>> = row.try_get(index)?;
        Ok(t.map_or(RawTime::Null, RawTime::Utc))
    }

    fn decode_column(row: &PgRow) -> Result<ColumnInfo, sqlx::Error> {
        // character_octet_length of an unbounded text column is 1 GiB; keep it as the limit.
        Ok(ColumnInfo::new(
            row.try_get(0)?,
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
            row.try_get(4)?,
        )
        .with_max_chars(row.try_get(5)?))
    }

    fn decode_int(row: &PgRow, index: usize) -> Result<i64, sqlx::Error> {
        row.try_get(index)
    }

    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }

    async fn connect(url: &str) -> Result<PgPool> {
        Ok(PgPool::connect(url).await?)
    }
}
