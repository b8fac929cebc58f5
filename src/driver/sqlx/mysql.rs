//! sqlx's `MySqlPool` as a backend: binding, decoding and the catalog for MySQL and MariaDB.

use async_trait::async_trait;
use chrono::NaiveDateTime;
use sqlx::Row;
use sqlx::mysql::{MySql, MySqlArguments, MySqlPool, MySqlQueryResult, MySqlRow};
use sqlx::query::Query;

use super::SqlxDatabase;
use crate::Result;
use crate::sql::dialect::MySqlDialect;
use crate::sql::{Arg, ColumnInfo, Dialect, RawRow, RawTime};

#[async_trait]
impl SqlxDatabase for MySql {
    const DIALECT: &'static dyn Dialect = &MySqlDialect;

    fn bind<'q>(
        query: Query<'q, MySql, MySqlArguments>,
        arg: &Arg<'_>,
    ) -> Query<'q, MySql, MySqlArguments> {
        match arg {
            Arg::Null => query.bind(None::<NaiveDateTime>),
            Arg::NullText => query.bind(None::<&str>),
            Arg::NullInt => query.bind(None::<i64>),
            Arg::Str(s) => query.bind(*s),
            Arg::String(s) => query.bind(s.as_str()),
            Arg::Int(i) => query.bind(*i),
            Arg::Time(t) => query.bind(t.naive_utc()),
            Arg::Naive(n) => query.bind(*n),
        }
    }

    fn decode_row(row: &MySqlRow) -> Result<RawRow, sqlx::Error> {
        Ok(RawRow::new(
            row.try_get(0)?,
            // Unchecked: a TEXT column of a binary collation is reported as a BLOB.
            row.try_get_unchecked(1)?,
            Self::decode_time(row, 2)?,
        ))
    }

    fn decode_time(row: &MySqlRow, index: usize) -> Result<RawTime, sqlx::Error> {
        let t: Option<NaiveDateTime> = row.try_get(index)?;
        Ok(t.map_or(RawTime::Null, RawTime::Naive))
    }

    fn decode_column(row: &MySqlRow) -> Result<ColumnInfo, sqlx::Error> {
        Ok(ColumnInfo::new(
            row.try_get(0)?,
            row.try_get(1)?,
            row.try_get::<i64, _>(2)? != 0,
            row.try_get::<i64, _>(3)? != 0,
            row.try_get(4)?,
        )
        .with_max_chars(row.try_get(5)?)
        .with_collation(row.try_get(6)?))
    }

    fn decode_int(row: &MySqlRow, index: usize) -> Result<i64, sqlx::Error> {
        row.try_get(index)
    }

    fn rows_affected(result: &MySqlQueryResult) -> u64 {
        result.rows_affected()
    }

    async fn connect(url: &str) -> Result<MySqlPool> {
        // On a Galera node, causal reads: a read waits until the node has applied what the
        // cluster committed before it, so that a session destroyed through another node is
        // not served here (RELIABILITY.md, Galera). MySQL has no `wsrep_on`; a MariaDB
        // server without Galera has it off.
        let pool = sqlx::mysql::MySqlPoolOptions::new()
            .after_connect(|conn, _| {
                Box::pin(async move {
                    let galera = sqlx::query_scalar::<_, i64>("SELECT CAST(@@wsrep_on AS SIGNED)")
                        .fetch_one(&mut *conn)
                        .await
                        .is_ok_and(|on| on == 1);
                    if galera {
                        sqlx::raw_sql("SET SESSION wsrep_sync_wait = 1")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        Ok(pool)
    }
}
