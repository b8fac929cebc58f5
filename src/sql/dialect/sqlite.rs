//! SQLite's dialect, shared by the sqlx and rusqlite drivers.
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

    fn catalog(&self) -> &'static str {
        "SELECT name, type, \"notnull\" = 0, dflt_value IS NOT NULL, \
         NULL FROM pragma_table_info(?1)"
    }

    fn placeholder(&self, n: usize) -> String {
        format!("?{n}")
    }

    fn column_type(&self, column: Column) -> &'static str {
        match column {
            Column::Sid => "VARCHAR(255) NOT NULL PRIMARY KEY",
            Column::Data => "TEXT",
            Column::Expires => "DATETIME",
            Column::Version => "INTEGER NOT NULL DEFAULT 0",
            Column::CreatedAt | Column::UpdatedAt => "DATETIME NOT NULL",
        }
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
    /// every touch and update (BENCHMARKS.md has the figures), while a sweep walking the table
    /// by `rowid` reads each row once, every 15 minutes.
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
