//! SQLite: its dialect (shared by the sqlx and rusqlite backends) and the sqlx `SqlitePool` backend.
//!
//! Times are stored as text in the form Sequelize writes, `2026-11-27 00:00:32.446 +00:00`,
//! which sorts in time order, so that comparisons in SQL are comparisons of times and a table
//! is shared with a Node app without either side misreading the other's rows.

use chrono::{DateTime, FixedOffset, Utc};

use crate::sql::{Arg, Column, ColumnInfo, Dialect, RawTime, parse_time_text, sqlite_time_text};

/// The SQLite dialect.
#[derive(Debug, Clone, Copy, Default)]
pub struct SqliteDialect;

impl Dialect for SqliteDialect {
    fn name(&self) -> &'static str {
        "SQLite"
    }

    fn placeholder(&self, n: usize) -> String {
        format!("?{n}")
    }

    fn numbered_placeholders(&self) -> bool {
        true
    }

    fn column_ddl(&self, column: Column) -> String {
        let ty = match column {
            Column::Sid => "VARCHAR(255) NOT NULL PRIMARY KEY",
            Column::Data => "TEXT",
            Column::Expires => "DATETIME",
            Column::Version => "INTEGER NOT NULL DEFAULT 0",
            Column::CreatedAt | Column::UpdatedAt => "DATETIME NOT NULL",
        };
        format!("{} {ty}", self.quote(column.name()))
    }

    fn check_type(
        &self,
        table: &str,
        column: Column,
        info: &ColumnInfo,
    ) -> Option<(String, String)> {
        // SQLite stores any value in any column; what matters is that the declared type does not
        // turn our text into numbers (INTEGER, REAL, NUMERIC affinity on a number-like value).
        let ty = info.data_type.as_str();
        if column == Column::Version {
            return (!ty.contains("int")).then(|| {
                (
                    format!("has type {ty:?} where an INTEGER is needed"),
                    format!(
                        "recreate {} with {}",
                        self.quote(table),
                        self.column_ddl(column)
                    ),
                )
            });
        }
        let numeric = ty.contains("int") || ty.contains("real") || ty.contains("floa");
        if column.is_time() && numeric {
            return Some((
                format!("has type {ty:?}; times are stored as text and it must hold text"),
                format!(
                    "recreate {} with {} (SQLite cannot change a column's type in place)",
                    self.quote(table),
                    self.column_ddl(column)
                ),
            ));
        }
        if !column.is_time() && numeric {
            return Some((
                format!("has type {ty:?}, which does not hold text"),
                format!(
                    "recreate {} with {}",
                    self.quote(table),
                    self.column_ddl(column)
                ),
            ));
        }
        None
    }

    fn single_writer(&self) -> bool {
        true
    }

    /// Yes, and so tables made here have no `expires` index: on SQLite it doubled the cost of
    /// every touch and update (33 against 16 us per `UPDATE` of `expires`, 10,000 rows, WAL),
    /// while a sweep walking the table by `rowid` reads each row once, every 15 minutes.
    fn sweeps_by_rowid(&self) -> bool {
        true
    }

    fn update_returning(&self) -> bool {
        true
    }

    fn encode_time(&self, t: DateTime<Utc>, _offset: FixedOffset) -> Arg<'static> {
        Arg::String(sqlite_time_text(t))
    }

    fn decode_time(
        &self,
        raw: RawTime,
        _offset: FixedOffset,
    ) -> Result<Option<DateTime<Utc>>, String> {
        match raw {
            RawTime::Null => Ok(None),
            RawTime::Text(s) => parse_time_text(&s).map(Some),
            RawTime::Utc(t) => Ok(Some(t)),
            RawTime::Naive(n) => Ok(Some(n.and_utc())),
        }
    }
}

#[cfg(feature = "sqlite")]
mod sqlx_sqlite {
    use std::str::FromStr;
    use std::time::Duration;

    use async_trait::async_trait;
    use sqlx::Row;
    use sqlx::query::Query;
    use sqlx::sqlite::{
        Sqlite, SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool,
        SqlitePoolOptions, SqliteQueryResult, SqliteRow, SqliteSynchronous,
    };

    use super::SqliteDialect;
    use crate::Result;
    use crate::sql::{Arg, ColumnInfo, Dialect, RawRow, RawTime};
    use crate::sqlx_backend::SqlxDatabase;

    /// How long a connection the store opened waits for a lock held by another writer.
    pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

    #[async_trait]
    impl SqlxDatabase for Sqlite {
        const DIALECT: &'static dyn Dialect = &SqliteDialect;
        const CATALOG: &'static str = "SELECT name, type, \"notnull\" = 0, dflt_value IS NOT NULL, \
             NULL FROM pragma_table_info(?1)";

        fn bind<'q>(
            query: Query<'q, Sqlite, SqliteArguments>,
            arg: &Arg<'_>,
        ) -> Query<'q, Sqlite, SqliteArguments> {
            match arg {
                Arg::Null => query.bind(None::<String>),
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
            let expires: Option<String> = row.try_get_unchecked(2)?;
            Ok(RawRow::new(
                row.try_get_unchecked(0)?,
                row.try_get_unchecked(1)?,
                expires.map_or(RawTime::Null, RawTime::Text),
            ))
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
                .busy_timeout(BUSY_TIMEOUT);
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
}
