//! What every SQL backend shares: the [`Dialect`] a backend speaks, the values it binds, the
//! rows it returns, identifier checks and the statements of a sessions table.

use std::fmt::Debug;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, NaiveDateTime, Utc};

use crate::{Error, Result};

/// The longest table name accepted, so that derived names (`<table>_expires_idx`) stay within
/// every dialect's identifier limit (63 bytes on PostgreSQL, 64 on MySQL).
pub const MAX_TABLE_NAME: usize = 50;

/// The longest session id the default tables hold (`sid VARCHAR(255)`).
pub const MAX_SID_LEN: usize = 255;

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
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Arg<'a> {
    /// SQL NULL.
    Null,
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

/// A session row as the database returned it: `sid, data, expires` and, for a versioned
/// table, `version`.
#[derive(Debug, Clone, PartialEq)]
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
}

impl RawRow {
    /// A raw row from its three columns.
    pub fn new(sid: String, data: Option<String>, expires: RawTime) -> Self {
        RawRow {
            sid,
            data,
            expires,
            version: None,
        }
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
        }
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

/// The SQL a backend speaks: quoting, placeholders, types, and the few statements whose form
/// differs between databases. A dialect writes SQL text only; it never runs anything.
pub trait Dialect: Send + Sync + Debug + 'static {
    /// A short name for messages (`PostgreSQL`).
    fn name(&self) -> &'static str;

    /// `ident` quoted for this dialect. Only called with validated identifiers. Defaults to
    /// standard SQL's double quotes.
    fn quote(&self, ident: &str) -> String {
        format!("\"{ident}\"")
    }

    /// The text of the `n`th placeholder, counting from 1.
    fn placeholder(&self, n: usize) -> String;

    /// Whether placeholders are numbered, so one bound value can be used twice.
    fn numbered_placeholders(&self) -> bool;

    /// The column definition used by `CREATE TABLE` and in fixes (`"expires" TIMESTAMPTZ`).
    fn column_ddl(&self, column: Column) -> String;

    /// The statements that create the table with `columns`, and its `expires` index where
    /// [`Dialect::index_expires`] says so, when they are missing. Defaults to
    /// `CREATE TABLE IF NOT EXISTS` and `CREATE INDEX IF NOT EXISTS`.
    fn create_table(&self, table: &str, columns: &[Column]) -> Vec<String> {
        let columns: Vec<String> = columns.iter().map(|c| self.column_ddl(*c)).collect();
        let mut ddl = vec![format!(
            "CREATE TABLE IF NOT EXISTS {} ({})",
            self.quote(table),
            columns.join(", ")
        )];
        if self.index_expires() {
            ddl.push(format!(
                "CREATE INDEX IF NOT EXISTS {} ON {} ({})",
                self.quote(&format!("{table}_expires_idx")),
                self.quote(table),
                self.quote(Column::Expires.name())
            ));
        }
        ddl
    }

    /// Whether a table made here gets an index on `expires`, so that a sweep finds expired
    /// rows without reading the others. Every touch and update then moves the row's entry in
    /// it. Defaults to yes unless sweeps walk the table by `rowid`, which needs no index.
    fn index_expires(&self) -> bool {
        !self.sweeps_by_rowid()
    }

    /// Whether sweeps walk the table by `rowid` (SQLite) where the table has one, instead of
    /// finding expired rows through an index on `expires`.
    fn sweeps_by_rowid(&self) -> bool {
        false
    }

    /// Why a column of `column`'s role cannot be used with this type, or `None` if it can.
    /// Returns the problem and the SQL that fixes it.
    fn check_type(
        &self,
        table: &str,
        column: Column,
        info: &ColumnInfo,
    ) -> Option<(String, String)>;

    /// Clause appended to a plain `INSERT` so that a row with the same key is left alone and
    /// the insert affects no row. `None` where the dialect has no such clause: then the
    /// backend reports the conflict as a unique violation, which the model maps. Defaults to
    /// `ON CONFLICT (sid) DO NOTHING`.
    fn on_conflict_do_nothing(&self) -> Option<String> {
        Some(format!(
            " ON CONFLICT ({}) DO NOTHING",
            self.quote(Column::Sid.name())
        ))
    }

    /// The value an upsert's insert gave for `column` (quoted), usable in the update part:
    /// `excluded."data"` (the default) or `VALUES(`data`)`.
    fn excluded(&self, column: &str) -> String {
        format!("excluded.{column}")
    }

    /// Clause appended to an `INSERT` that turns it into an upsert on `sid` (quoted) making
    /// the `assignments` (`col = expr`) to the existing row. Defaults to
    /// `ON CONFLICT (sid) DO UPDATE SET ...`.
    fn upsert(&self, sid: &str, assignments: &[String]) -> String {
        format!(
            " ON CONFLICT ({sid}) DO UPDATE SET {}",
            assignments.join(", ")
        )
    }

    /// Writes into `b` a condition that the `sid` column (quoted) equals argument `arg`,
    /// exactly: same case, same trailing spaces.
    fn sid_equals(&self, b: &mut StatementBuilder<'_>, sid: &str, arg: usize) {
        b.push(&format!("{sid} = ")).arg(arg);
    }

    /// Whether the database lets one writer in at a time, so that a model queues its writes
    /// in the process rather than at the database's lock.
    fn single_writer(&self) -> bool {
        false
    }

    /// Whether `UPDATE ... RETURNING` returns the updated rows.
    fn update_returning(&self) -> bool {
        false
    }

    /// Whether a data-modifying statement can stand in a `WITH` clause of a `SELECT`
    /// (PostgreSQL's writable CTEs).
    fn writable_cte(&self) -> bool {
        false
    }

    /// SQL that takes and gives back a lock, held by one connection, under which only one
    /// app instance at a time sweeps `table`; `None` where the database needs none.
    fn sweep_lock(&self, table: &str) -> Option<SweepLock> {
        let _ = table;
        None
    }

    /// Writes into `b` a statement deleting at most `limit` rows of `table` (unquoted) whose
    /// `expires` is at or before `now`, where `now` and `limit` are argument indexes. Defaults
    /// to [`delete_expired_by_key`] with no lock clause.
    fn delete_expired(&self, b: &mut StatementBuilder<'_>, table: &str, now: usize, limit: usize) {
        delete_expired_by_key(b, table, now, limit, "");
    }

    /// `t` as the bound value this dialect stores, given the table's time offset.
    fn encode_time(&self, t: DateTime<Utc>, offset: FixedOffset) -> Arg<'static>;

    /// A stored time back to UTC, or a message saying why it does not decode.
    fn decode_time(
        &self,
        raw: RawTime,
        offset: FixedOffset,
    ) -> std::result::Result<Option<DateTime<Utc>>, String>;
}

/// A lock one connection takes before sweeping and gives back after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepLock {
    /// Selects one integer: 1 when the lock was taken, anything else when another holds it.
    pub acquire: String,
    /// Gives the lock back.
    pub release: String,
}

/// A statement with the order in which argument indexes are bound to its placeholders.
#[derive(Debug, Clone)]
pub struct Statement {
    sql: Arc<str>,
    params: Box<[usize]>,
}

impl Statement {
    /// The SQL text.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The SQL text, shared.
    pub fn shared_sql(&self) -> Arc<str> {
        Arc::clone(&self.sql)
    }

    /// The arguments to bind, in placeholder order, picked from `args` by index.
    ///
    /// # Errors
    /// Each item is [`Error::InvalidInput`] when the statement needs an argument that is not
    /// there.
    pub fn bound<'s, 'a>(
        &'s self,
        args: &'s [Arg<'a>],
    ) -> impl Iterator<Item = Result<&'s Arg<'a>>> + 's {
        self.params.iter().map(move |&i| {
            args.get(i).ok_or_else(|| {
                Error::InvalidInput(format!(
                    "statement needs argument {i} but {} were given",
                    args.len()
                ))
            })
        })
    }
}

/// Writes a [`Statement`], numbering placeholders as the dialect wants.
#[derive(Debug)]
pub struct StatementBuilder<'d> {
    dialect: &'d dyn Dialect,
    sql: String,
    params: Vec<usize>,
}

impl<'d> StatementBuilder<'d> {
    /// An empty statement in `dialect`.
    pub fn new(dialect: &'d dyn Dialect) -> Self {
        StatementBuilder {
            dialect,
            sql: String::new(),
            params: Vec::new(),
        }
    }

    /// The dialect being written.
    pub fn dialect(&self) -> &'d dyn Dialect {
        self.dialect
    }

    /// Appends SQL text.
    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Appends a placeholder for argument `index`. With numbered placeholders, a second use of
    /// one index reuses its number.
    pub fn arg(&mut self, index: usize) -> &mut Self {
        let n = match self.params.iter().position(|&p| p == index) {
            Some(pos) if self.dialect.numbered_placeholders() => pos + 1,
            _ => {
                self.params.push(index);
                self.params.len()
            }
        };
        let placeholder = self.dialect.placeholder(n);
        self.sql.push_str(&placeholder);
        self
    }

    /// The finished statement.
    pub fn build(self) -> Statement {
        Statement {
            sql: self.sql.into(),
            params: self.params.into(),
        }
    }
}

/// Formats `t` as Sequelize writes times into SQLite: `2026-11-27 00:00:32.446 +00:00`.
/// Text in this form sorts in time order.
pub fn sqlite_time_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3f +00:00").to_string()
}

/// Parses a time stored as text: the Sequelize form above, RFC 3339 (`T`, `Z` or an offset),
/// or a plain `YYYY-MM-DD HH:MM:SS[.fff]` taken as UTC.
pub fn parse_time_text(s: &str) -> std::result::Result<DateTime<Utc>, String> {
    let s = s.trim();
    DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f %:z")
        .or_else(|_| DateTime::parse_from_rfc3339(s))
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").map(|n| n.and_utc()))
        .map_err(|_| format!("{s:?} is not a time this store can read"))
}

/// The batched sweep for dialects that can pick a bounded set of keys in a subquery:
/// `DELETE ... WHERE sid IN (SELECT sid ... LIMIT n <lock>) AND expires <= now`. The outer
/// condition is checked again on the row as it is when deleted, so a row that a concurrent
/// touch made live meanwhile is kept.
pub fn delete_expired_by_key(
    b: &mut StatementBuilder<'_>,
    table: &str,
    now: usize,
    limit: usize,
    lock: &str,
) {
    let d = b.dialect();
    let (t, sid, expires) = (d.quote(table), d.quote("sid"), d.quote("expires"));
    b.push(&format!(
        "DELETE FROM {t} WHERE {sid} IN (SELECT {sid} FROM {t} WHERE {expires} <= "
    ))
    .arg(now)
    .push(" LIMIT ")
    .arg(limit)
    .push(lock)
    .push(&format!(") AND {expires} <= "))
    .arg(now);
}
