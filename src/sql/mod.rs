//! What every SQL backend shares: the values it binds, the rows it returns, identifier checks
//! and time text; the [`Backend`] trait a driver implements, the [`Dialect`] it speaks and the
//! [`Statement`]s a model runs through it.

mod backend;
pub mod dialect;
mod statement;
mod time_text;

use chrono::{DateTime, NaiveDateTime, Utc};

pub use backend::{Backend, ConnectUrl, Repeat};
pub use dialect::{Dialect, RowLock, SweepLock, delete_expired_by_key};
pub use statement::{Args, Param, Statement, StatementBuilder};
pub use time_text::{parse_time_text, sqlite_time_text};

use crate::{Error, Result};

/// The longest table name accepted, so that derived names (`<table>_expires_idx`) stay within
/// every dialect's identifier limit (63 bytes on PostgreSQL, 64 on MySQL).
pub const MAX_TABLE_NAME: usize = 50;

/// Checks that `name` is a plain identifier: 1 to 50 ASCII letters, digits and underscores,
/// not starting with a digit. Only such names are ever put into SQL text.
///
/// # Errors
/// [`Error::InvalidIdentifier`] saying what is wrong.
pub fn validate_identifier(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_TABLE_NAME {
        Some("it is longer than 50 characters")
    } else if name.starts_with(|c: char| c.is_ascii_digit()) {
        Some("it starts with a digit")
    } else if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Some("it has a character other than an ASCII letter, digit or underscore")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidIdentifier {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// A value bound to a statement. Backends bind each variant as their driver's natural type.
/// Its `Debug` shortens text as session ids are shortened: text may be one.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub enum Arg<'a> {
    /// SQL NULL, of a time column (a session that never expires).
    Null,
    /// SQL NULL, of a text column (a session without a user).
    NullText,
    /// SQL NULL, of an integer column (a session without a user, where user ids are
    /// integers).
    NullInt,
    /// Text borrowed from the caller.
    Str(&'a str),
    /// Text made for this statement (a time written as text, for instance).
    String(String),
    /// An integer.
    Int(i64),
    /// A point in time, bound as a zone-aware timestamp.
    Time(DateTime<Utc>),
    /// A wall-clock time with no zone, bound as `DATETIME`.
    Naive(NaiveDateTime),
}

impl Arg<'_> {
    /// The same value, owning its text: for a statement that runs on a task of its own.
    pub fn into_owned(self) -> Arg<'static> {
        match self {
            Arg::Null => Arg::Null,
            Arg::NullText => Arg::NullText,
            Arg::NullInt => Arg::NullInt,
            Arg::Str(s) => Arg::String(s.to_owned()),
            Arg::String(s) => Arg::String(s),
            Arg::Int(i) => Arg::Int(i),
            Arg::Time(t) => Arg::Time(t),
            Arg::Naive(n) => Arg::Naive(n),
        }
    }
}

impl std::fmt::Debug for Arg<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Arg::Null => f.write_str("Null"),
            Arg::NullText => f.write_str("NullText"),
            Arg::NullInt => f.write_str("NullInt"),
            Arg::Str(s) => f.debug_tuple("Str").field(&crate::redact(s)).finish(),
            Arg::String(s) => f.debug_tuple("String").field(&crate::redact(s)).finish(),
            Arg::Int(i) => f.debug_tuple("Int").field(i).finish(),
            Arg::Time(t) => f.debug_tuple("Time").field(t).finish(),
            Arg::Naive(n) => f.debug_tuple("Naive").field(n).finish(),
        }
    }
}

/// A time as the database returned it, before the dialect turns it into UTC.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RawTime {
    /// NULL.
    Null,
    /// Text (SQLite).
    Text(String),
    /// A zone-aware timestamp (PostgreSQL `timestamptz`).
    Utc(DateTime<Utc>),
    /// A wall-clock `DATETIME` (MySQL), in the table's offset.
    Naive(NaiveDateTime),
}

/// A session row as the database returned it: `sid, data, expires`, then `version` from a
/// versioned table, then the time of the last write (`updatedAt`) for a read that asks for it
/// (with a `0` in the version's place when the table keeps none). Its `Debug` shows the id
/// shortened and the data's length only.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct RawRow {
    /// The `sid` column.
    pub sid: String,
    /// The `data` column; `None` for SQL NULL.
    pub data: Option<String>,
    /// The `expires` column.
    pub expires: RawTime,
    /// The `version` column, when the statement selected it.
    pub version: Option<i64>,
    /// The `updatedAt` column, when the statement selected it; [`RawTime::Null`] otherwise.
    pub written: RawTime,
    /// The `createdAt` column, when the statement selected it (a sixth column, after the
    /// last write); [`RawTime::Null`] otherwise.
    pub created: RawTime,
}

impl std::fmt::Debug for RawRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawRow")
            .field("sid", &crate::redact(&self.sid))
            .field(
                "data",
                &self.data.as_ref().map(|d| format!("<{} bytes>", d.len())),
            )
            .field("expires", &self.expires)
            .field("version", &self.version)
            .field("written", &self.written)
            .field("created", &self.created)
            .finish()
    }
}

impl RawRow {
    /// A raw row from its three columns.
    pub fn new(sid: String, data: Option<String>, expires: RawTime) -> Self {
        RawRow {
            sid,
            data,
            expires,
            version: None,
            written: RawTime::Null,
            created: RawTime::Null,
        }
    }

    /// Whether a row of `columns` columns holds a version in its fourth column: reads select
    /// `sid, data, expires`, and `version` after them from a versioned table.
    pub fn has_version(columns: usize) -> bool {
        columns >= 4
    }

    /// Whether a row of `columns` columns holds the time of its last write in its fifth column.
    pub fn has_written(columns: usize) -> bool {
        columns >= 5
    }

    /// Whether a row of `columns` columns holds the time it was made in its sixth column.
    pub fn has_created(columns: usize) -> bool {
        columns >= 6
    }

    /// The same row with the time it was made.
    pub fn with_created(mut self, created: RawTime) -> Self {
        self.created = created;
        self
    }

    /// The same row with the time of its last write.
    pub fn with_written(mut self, written: RawTime) -> Self {
        self.written = written;
        self
    }

    /// The same row with a `version` column.
    pub fn with_version(mut self, version: Option<i64>) -> Self {
        self.version = version;
        self
    }
}

/// One column of a table, as the database catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ColumnInfo {
    /// The column name, as stored.
    pub name: String,
    /// The declared type, lower case (`timestamp with time zone`, `datetime`, `varchar(255)`).
    pub data_type: String,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// Whether the column has a default value.
    pub has_default: bool,
    /// The most bytes (or characters, where the catalog counts those) a text column holds.
    pub max_len: Option<i64>,
    /// The most characters a text column holds (`VARCHAR(36)`: 36); `None` when unbounded or
    /// not enforced (SQLite).
    pub max_chars: Option<i64>,
    /// The collation of a text column, where the catalog names one that matters (MySQL).
    pub collation: Option<String>,
}

impl ColumnInfo {
    /// A column description from the catalog's fields.
    pub fn new(
        name: String,
        data_type: String,
        nullable: bool,
        has_default: bool,
        max_len: Option<i64>,
    ) -> Self {
        ColumnInfo {
            name,
            data_type: data_type.to_ascii_lowercase(),
            nullable,
            has_default,
            max_len,
            max_chars: None,
            collation: None,
        }
    }

    /// The same column holding at most `max_chars` characters.
    pub fn with_max_chars(mut self, max_chars: Option<i64>) -> Self {
        self.max_chars = max_chars;
        self
    }

    /// The same column with `collation`.
    pub fn with_collation(mut self, collation: Option<String>) -> Self {
        self.collation = collation.map(|c| c.to_ascii_lowercase());
        self
    }
}

/// The roles the columns of a sessions table play.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Column {
    /// The session id, the primary key.
    Sid,
    /// The serialized session.
    Data,
    /// The expiry.
    Expires,
    /// When the row was made (Sequelize's `createdAt`).
    CreatedAt,
    /// When the row was last written (Sequelize's `updatedAt`).
    UpdatedAt,
    /// The version number, for optimistic concurrency; optional.
    Version,
    /// The user a session belongs to; optional (`userId` on a table Sequelize made with
    /// `extendDefaultFields`).
    UserId,
}

impl Column {
    /// The column's name in a `ConnectSession` table.
    pub fn name(self) -> &'static str {
        match self {
            Column::Sid => "sid",
            Column::Data => "data",
            Column::Expires => "expires",
            Column::CreatedAt => "createdAt",
            Column::UpdatedAt => "updatedAt",
            Column::Version => "version",
            Column::UserId => "user_id",
        }
    }

    /// The columns of a `ConnectSession` table, in table order, with `version` when asked.
    pub fn table_columns(versioned: bool) -> &'static [Column] {
        const PLAIN: [Column; 5] = [
            Column::Sid,
            Column::Expires,
            Column::Data,
            Column::CreatedAt,
            Column::UpdatedAt,
        ];
        const VERSIONED: [Column; 6] = [
            Column::Sid,
            Column::Expires,
            Column::Data,
            Column::CreatedAt,
            Column::UpdatedAt,
            Column::Version,
        ];
        if versioned { &VERSIONED } else { &PLAIN }
    }

    /// Whether the column holds a time.
    pub fn is_time(self) -> bool {
        matches!(
            self,
            Column::Expires | Column::CreatedAt | Column::UpdatedAt
        )
    }
}
