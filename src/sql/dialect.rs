//! [`Dialect`]: the SQL text a database speaks, written once per database in `dialect/`.

use std::fmt::Debug;

use chrono::{DateTime, FixedOffset, Utc};

use super::{Arg, Column, ColumnInfo, Param, RawTime, StatementBuilder};

mod mysql;
mod postgres;
mod sqlite;

pub use mysql::MySqlDialect;
pub use postgres::PostgresDialect;
pub use sqlite::SqliteDialect;

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

    /// The catalog query listing a table's columns in the current database or schema, with
    /// the table name as its one parameter. Each row is `name, type, nullable, has_default,
    /// max_len, max_chars, collation` (NULL where the catalog has no such figure: SQLite
    /// enforces no width, and only MySQL's collations decide how ids compare).
    fn catalog(&self) -> &'static str;

    /// SQL counting the unique indexes (a primary key included) of `table` (validated) that
    /// are on the `sid` column alone: 0 means ids are not unique.
    fn sid_unique_indexes(&self, table: &str) -> String;

    /// The SQL that makes the `sid` column of `table` unique, for an error message.
    fn make_sid_unique(&self, table: &str) -> String {
        format!(
            "ALTER TABLE {} ADD PRIMARY KEY ({});",
            self.quote(table),
            self.quote(Column::Sid.name())
        )
    }

    /// Whether the `sid` column described by `info` finds a row for an id that differs in case
    /// (a MySQL collation other than a binary one). A save on such a table cannot be one
    /// upsert. Writes always compare exactly ([`Dialect::sid_equals`]); reads keep only the
    /// row whose id is exactly the one asked for. Defaults to no.
    fn sid_ignores_case(&self, info: &ColumnInfo) -> bool {
        let _ = info;
        false
    }

    /// Whether the `sid` column described by `info` compares ids as if padded with trailing
    /// spaces (MySQL's PAD SPACE collations, `utf8mb4_bin` among them: `'abc' = 'abc '`), so
    /// that an id ending in a space is refused on write. Defaults to no.
    fn sid_pads_spaces(&self, info: &ColumnInfo) -> bool {
        let _ = info;
        false
    }

    /// The text of the `n`th placeholder, counting from 1.
    fn placeholder(&self, n: usize) -> String;

    /// Whether placeholders are numbered, so one bound value can be used twice. Defaults to
    /// yes.
    fn numbered_placeholders(&self) -> bool {
        true
    }

    /// The type (and constraints) of `column` in a table made here (`TIMESTAMPTZ NOT NULL`).
    fn column_type(&self, column: Column) -> &'static str;

    /// The column definition used by `CREATE TABLE` and in fixes (`"expires" TIMESTAMPTZ`).
    fn column_ddl(&self, column: Column) -> String {
        format!("{} {}", self.quote(column.name()), self.column_type(column))
    }

    /// The statements that create the table with `columns`, and its `expires` index where
    /// [`Dialect::index_expires`] says so, when they are missing. Defaults to
    /// `CREATE TABLE IF NOT EXISTS` and `CREATE INDEX IF NOT EXISTS`.
    fn create_table(&self, table: &str, columns: &[Column]) -> Vec<String> {
        let with_user = columns.contains(&Column::UserId);
        let columns: Vec<String> = columns.iter().map(|c| self.column_ddl(*c)).collect();
        let mut ddl = vec![format!(
            "CREATE TABLE IF NOT EXISTS {} ({})",
            self.quote(table),
            columns.join(", ")
        )];
        if self.index_expires() {
            ddl.push(format!(
                "CREATE INDEX IF NOT EXISTS {}",
                index_on(self, table, "expires_idx", Column::Expires)
            ));
        }
        if with_user {
            ddl.push(format!(
                "CREATE INDEX IF NOT EXISTS {}",
                user_index(self, table)
            ));
        }
        ddl
    }

    /// The statements that add the user column and its `(user_id, sid)` index to an existing
    /// `table`, run by `auto` when the table options ask for users. Defaults to
    /// `ALTER TABLE ... ADD COLUMN` and `CREATE INDEX IF NOT EXISTS`.
    fn add_user_column(&self, table: &str) -> Vec<String> {
        vec![
            format!(
                "ALTER TABLE {} ADD COLUMN {}",
                self.quote(table),
                self.column_ddl(Column::UserId)
            ),
            format!("CREATE INDEX IF NOT EXISTS {}", user_index(self, table)),
        ]
    }

    /// SQL counting the valid indexes of `table` (validated) whose first column is `column`
    /// (validated; compared without case).
    fn indexes_led_by(&self, table: &str, column: &str) -> String;

    /// SQL counting the indexes of `table` (validated) whose first column is `expires`.
    fn expires_indexes(&self, table: &str) -> String {
        self.indexes_led_by(table, Column::Expires.name())
    }

    /// The statement that adds the `(user, sid)` index to `table`, whose user column is
    /// `column`, without blocking its writes while it builds: suggested, not run, for a table
    /// made by someone else. Defaults to a plain `CREATE INDEX`.
    fn add_user_index_online(&self, table: &str, column: &str) -> String {
        format!(
            "CREATE INDEX {} ON {} ({}, {});",
            self.quote(&format!("{table}_user_idx")),
            self.quote(table),
            self.quote(column),
            self.quote(Column::Sid.name())
        )
    }

    /// The statement that adds the `expires` index to `table` without blocking its writes
    /// while it builds, for a table made by someone else: the store suggests it, it does not
    /// run it. Defaults to a plain `CREATE INDEX`.
    fn add_expires_index_online(&self, table: &str) -> String {
        format!(
            "CREATE INDEX {};",
            index_on(self, table, "expires_idx", Column::Expires)
        )
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

    /// Writes into `b` a condition that the `sid` column (quoted) equals parameter `arg`,
    /// exactly: same case, same trailing spaces.
    fn sid_equals(&self, b: &mut StatementBuilder<'_>, sid: &str, arg: Param) {
        b.push(&format!("{sid} = ")).arg(arg);
    }

    /// A `0` of the version column's type (`BIGINT`), selected in its place by a read that
    /// needs a fifth column from a table that keeps no version.
    fn zero_version(&self) -> &'static str {
        "CAST(0 AS BIGINT)"
    }

    /// Whether an `UPDATE` that assigns an indexed column rewrites its index entry even when
    /// the value does not change (SQLite), so that a write that keeps a row's user is cheaper
    /// without assigning it. Such a dialect must read `IS` as null-safe equality. Defaults to
    /// no: PostgreSQL and InnoDB compare the old and new values.
    fn rewrites_unchanged_index_entries(&self) -> bool {
        false
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

    /// How this dialect keeps two app instances from sweeping `table` at once: see
    /// [`SweepLock`]. [`delete_expired`](Dialect::delete_expired) writes the statement to match.
    fn sweep_lock(&self, table: &str) -> SweepLock {
        let _ = table;
        SweepLock::None
    }

    /// Writes into `b` a statement deleting at most `limit` rows of `table` (unquoted) whose
    /// `expires` is at or before parameter `now`, with `limit` the parameter of the bound.
    /// Defaults to [`delete_expired_by_key`] with no lock clause.
    fn delete_expired(&self, b: &mut StatementBuilder<'_>, table: &str, now: Param, limit: Param) {
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

/// How one batch of a sweep keeps other app instances from sweeping the same table at the same
/// time. Every kind lasts one statement or one transaction: nothing is left held by a
/// connection, so a sweep cancelled at any point (or run behind a pooler that hands each
/// transaction to another server connection) cannot keep other instances from sweeping.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SweepLock {
    /// No lock: the database lets one writer in at a time anyway (SQLite).
    None,
    /// The batch statement takes a lock for its own length (PostgreSQL's
    /// `pg_try_advisory_xact_lock`) and selects one integer: how many rows it deleted, or a
    /// negative number when another instance holds the lock and nothing was deleted.
    InStatement,
    /// Each batch runs in a transaction that first locks a row of a small table of the store's
    /// own ([`RowLock`]), for databases without a transaction-scoped named lock (MySQL,
    /// MariaDB, Galera).
    Row(RowLock),
}

/// A lock row, taken by a transaction and given back by its end: see [`SweepLock::Row`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowLock {
    /// Selects the lock row for update, skipping it when another transaction holds it: a row
    /// means the lock is taken; no row means it is held elsewhere, or does not exist yet.
    pub take: String,
    /// Counts the row's rows (without locking), to tell "held elsewhere" from "missing".
    pub exists: String,
    /// Writes the lock row in the batch's transaction. A multi-primary cluster (Galera) does
    /// not see a row lock taken on another node, but it lets only one of two transactions
    /// that wrote the same row commit: so batches from two nodes never both go through.
    pub mark: String,
    /// Creates the lock table, if missing, and the row, if missing; run once, when `take`
    /// finds no table or `exists` no row.
    pub create: Vec<String>,
}

/// The batched sweep for dialects that can pick a bounded set of keys in a subquery:
/// `DELETE ... WHERE sid IN (SELECT sid ... LIMIT n <lock>) AND expires <= now`. The outer
/// condition is checked again on the row as it is when deleted, so a row that a concurrent
/// touch made live meanwhile is kept.
pub fn delete_expired_by_key(
    b: &mut StatementBuilder<'_>,
    table: &str,
    now: Param,
    limit: Param,
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

/// `"<table>_<suffix>" ON "<table>" ("<column>")`, quoted for `d`: what follows `CREATE INDEX`
/// for an index of the sessions table on one column.
/// `<table>_user_idx ON <table> (user_id, sid)`: the index of the per-user calls, which finds
/// a user's rows in id order, so that a page of them is a range of it.
pub fn user_index<D: Dialect + ?Sized>(d: &D, table: &str) -> String {
    format!(
        "{} ON {} ({}, {})",
        d.quote(&format!("{table}_user_idx")),
        d.quote(table),
        d.quote(Column::UserId.name()),
        d.quote(Column::Sid.name())
    )
}

/// `<table>_<suffix> ON <table> (<column>)`, for a `CREATE INDEX`.
pub fn index_on<D: Dialect + ?Sized>(d: &D, table: &str, suffix: &str, column: Column) -> String {
    format!(
        "{} ON {} ({})",
        d.quote(&format!("{table}_{suffix}")),
        d.quote(table),
        d.quote(column.name())
    )
}
