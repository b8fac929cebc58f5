//! SQLite's dialect, shared by the sqlx and rusqlite drivers.
//!
//! Times are stored as text in the form Sequelize writes, `2026-11-27 00:00:32.446 +00:00`,
//! which sorts in time order, so that comparisons in SQL are comparisons of times and a table
//! is shared with a Node app without either side misreading the other's rows.

use chrono::{DateTime, FixedOffset, Utc};

use super::index_on;
use crate::sql::time_text::parse_sequelize_utc;
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
         NULL, NULL, NULL FROM pragma_table_info(?1)"
    }

    fn sid_unique_indexes(&self, table: &str) -> String {
        // A TEXT primary key is an automatic unique index here (origin 'pk').
        format!(
            "SELECT COUNT(*) FROM pragma_index_list('{table}') AS il WHERE il.\"unique\" = 1 \
             AND (SELECT COUNT(*) FROM pragma_index_info(il.name)) = 1 \
             AND (SELECT lower(name) FROM pragma_index_info(il.name)) = 'sid'"
        )
    }

    fn indexes_led_by(&self, table: &str, column: &str) -> String {
        format!(
            "SELECT COUNT(*) FROM pragma_index_list('{table}') AS il \
             WHERE (SELECT lower(name) FROM pragma_index_info(il.name) WHERE seqno = 0) \
             = lower('{column}')"
        )
    }

    fn make_sid_unique(&self, table: &str) -> String {
        format!(
            "CREATE UNIQUE INDEX {};",
            index_on(self, table, "sid_key", Column::Sid)
        )
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
            Column::UserId => "VARCHAR(255)",
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
        // A user column of integers (a foreign key to a users table) is bound as integers.
        if !column.is_time() && column != Column::UserId && numeric {
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

    /// Yes: an `UPDATE ... SET user_id = ?` rewrote the `(user_id, sid)` index entry with the
    /// same value, which took an update from 40 to 80 us (10,000 rows, Python's sqlite3).
    fn rewrites_unchanged_index_entries(&self) -> bool {
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
            RawTime::Text(s) => {
                // The form this store writes, which sorts right: no more checks needed.
                if let Some(t) = parse_sequelize_utc(&s) {
                    return Ok(Some(t));
                }
                let t = parse_time_text(&s)?;
                sorts_as_time(&s)?;
                Ok(Some(t))
            }
            RawTime::Utc(t) => Ok(Some(t)),
            RawTime::Naive(n) => Ok(Some(n.and_utc())),
        }
    }
}

/// Refuses time text whose order as text is not its order in time next to the form this store
/// writes (`2026-11-27 00:00:32.446 +00:00`): SQLite compares the `expires` column as text, so a
/// row written by another client with an offset (`+05:30`) or a `T` between date and time would
/// be served, counted or swept at the wrong moment. UTC written with `Z`, `+00:00` or no offset
/// sorts right and is read.
fn sorts_as_time(text: &str) -> Result<(), String> {
    let text = text.trim();
    let offset = text
        .get(19..)
        .unwrap_or("")
        .trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let utc = matches!(
        offset.trim(),
        "" | "Z" | "z" | "+00:00" | "-00:00" | "+0000" | "+00"
    );
    if text.as_bytes().get(10) == Some(&b' ') && utc {
        return Ok(());
    }
    Err(format!(
        "{text:?} is not UTC in the form `YYYY-MM-DD HH:MM:SS.SSS +00:00`, and SQLite compares \
         times as text, so this row would sort wrongly among the others; rewrite it in UTC \
         (strftime('%Y-%m-%d %H:%M:%f +00:00', ...)) or destroy the session"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc() -> FixedOffset {
        FixedOffset::east_opt(0).expect("zero is an offset")
    }

    fn decode(text: &str) -> Result<Option<DateTime<Utc>>, String> {
        SqliteDialect.decode_time(RawTime::Text(text.into()), utc())
    }

    #[test]
    fn utc_text_in_the_sortable_form_is_read() {
        let t = DateTime::parse_from_rfc3339("2026-11-27T00:00:32.446Z")
            .unwrap()
            .with_timezone(&Utc);
        for text in [
            "2026-11-27 00:00:32.446 +00:00",
            "2026-11-27 00:00:32.446Z",
            "2026-11-27 00:00:32.446",
        ] {
            assert_eq!(decode(text), Ok(Some(t)), "{text}");
        }
        assert!(decode("2026-11-27 00:00:32").is_ok());
    }

    #[test]
    fn text_that_sorts_unlike_its_time_is_refused() {
        for text in [
            "2026-11-27 05:30:32.446 +05:30",
            "2026-11-26 19:00:32.446 -05:00",
            "2026-11-27T00:00:32.446Z",
            "2026-11-27T00:00:32.446+00:00",
        ] {
            let err = decode(text).unwrap_err();
            assert!(err.contains("sort"), "{text}: {err}");
        }
        assert!(decode("yesterday").is_err());
    }
}
