//! [`ConnectSession`], the default model, over any [`Backend`]: the table layout Sequelize makes
//! for the original package's `ConnectSession` model, on SQLite, PostgreSQL and MySQL/MariaDB.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, FixedOffset, Utc};
use tokio::sync::{Mutex, MutexGuard};

use crate::model::Capabilities;
use crate::model::{Created, SessionModel, SessionRow, delete_expired_in_batches, load_then_touch};
use crate::sql::{
    Arg, Column, ColumnInfo, Dialect, RawRow, Statement, StatementBuilder, SweepLock,
    validate_identifier,
};
use crate::{Error, Result};

/// The table name `Store::auto` creates and `Store::discover` looks for first.
pub const DEFAULT_TABLE: &str = "ConnectSession";

/// The table name Sequelize gives the `ConnectSession` model unless told to freeze table names;
/// `Store::discover` looks for it second.
pub const SEQUELIZE_TABLE: &str = "ConnectSessions";

/// How many expired rows one sweep statement deletes at most, unless the store says otherwise.
pub const DEFAULT_BATCH: u32 = 1000;

/// A connection (or pool) that a [`ConnectSession`] runs its SQL on.
///
/// Implemented for sqlx's `SqlitePool`, `PgPool` and `MySqlPool` and for
/// `RusqliteConnection`, each behind its feature. A backend runs
/// statements and reads the catalog; what the statements say is the [`Dialect`]'s business and
/// what they are for is the model's.
#[async_trait]
pub trait Backend: Send + Sync + fmt::Debug + 'static {
    /// The SQL this backend speaks.
    fn dialect(&self) -> &'static dyn Dialect;

    /// Runs `stmt` with `args` and returns how many rows it affected.
    ///
    /// # Errors
    /// The driver's error.
    async fn execute(&self, stmt: &Statement, args: &[Arg<'_>]) -> Result<u64>;

    /// Runs `stmt` and returns its rows, which select `sid, data, expires` in that order.
    ///
    /// # Errors
    /// The driver's error, or [`Error::Decode`] for a column of an unexpected type.
    async fn fetch_rows(&self, stmt: &Statement, args: &[Arg<'_>]) -> Result<Vec<RawRow>>;

    /// Runs `stmt`, which selects one integer, and returns it.
    ///
    /// # Errors
    /// The driver's error.
    async fn fetch_count(&self, stmt: &Statement, args: &[Arg<'_>]) -> Result<i64>;

    /// The columns of `table` in the current database or schema; empty when there is no such table.
    ///
    /// # Errors
    /// The driver's error.
    async fn columns(&self, table: &str) -> Result<Vec<ColumnInfo>>;

    /// Runs one DDL statement with no arguments.
    ///
    /// # Errors
    /// The driver's error.
    async fn run_ddl(&self, sql: &str) -> Result<()>;

    /// Whether `err` says a row with the same primary key exists.
    fn is_unique_violation(&self, err: &Error) -> bool;

    /// Runs `stmt` on one connection while holding `lock`, again while a run affects
    /// `repeat_while` rows or more (`u64::MAX`: once), and returns how many rows the runs
    /// affected in all, or `None` when another connection holds the lock (nothing was run).
    ///
    /// The default runs `stmt` without locking, for backends that serialize writers anyway.
    ///
    /// # Errors
    /// The driver's error.
    async fn execute_locked(
        &self,
        lock: &SweepLock,
        stmt: &Statement,
        args: &[Arg<'_>],
        repeat_while: u64,
    ) -> Result<Option<u64>> {
        let _ = lock;
        let mut total = 0;
        loop {
            let n = self.execute(stmt, args).await?;
            total += n;
            if n < repeat_while {
                return Ok(Some(total));
            }
            tokio::task::yield_now().await;
        }
    }
}

/// A backend that can open its own connection from a URL.
#[async_trait]
pub trait Connect: Backend + Sized {
    /// Opens a connection or pool to `url`. For SQLite this sets WAL, `synchronous=NORMAL` and a
    /// busy timeout, and creates the file when missing.
    ///
    /// # Errors
    /// The driver's error, when the URL is bad or the database cannot be reached.
    async fn connect(url: &str) -> Result<Self>;
}

/// The shape of a discovered or created table: which optional columns it has and the limits
/// the model checks before writing.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Table {
    name: String,
    has_created_at: bool,
    has_updated_at: bool,
    has_version: bool,
    data_max: Option<usize>,
    /// Whether expired rows are swept by `rowid` (SQLite tables that have one).
    sweep_by_rowid: bool,
}

/// The statements of one table, written once when the model is made.
#[derive(Debug)]
struct Statements {
    load: Statement,
    create: Statement,
    save: Statement,
    update: Statement,
    update_if_version: Statement,
    touch: Statement,
    touch_throttled: Statement,
    touch_returning: Option<Statement>,
    touch_returning_throttled: Option<Statement>,
    destroy: Statement,
    delete_expired: Statement,
    count: Statement,
    list: Statement,
    clear: Statement,
    sweep_lock: Option<SweepLock>,
    rowid_sweep: Option<RowidSweep>,
}

/// A sweep that walks a SQLite table in `rowid` order, a batch at a time, so that it needs no
/// index on `expires` and never scans a row twice.
#[derive(Debug)]
struct RowidSweep {
    /// The `rowid` of the expired row after the next `LIMIT` ones past `AFTER`, or `AFTER`
    /// itself when no more than `LIMIT` are left.
    next: Statement,
    /// Deletes the expired rows with a `rowid` after `AFTER` and before `UPTO`.
    range: Statement,
    /// Deletes the expired rows with a `rowid` after `AFTER`: the last, partial batch.
    tail: Statement,
}

// Argument indexes shared by the statements below.
const SID: usize = 0;
const DATA: usize = 1;
const EXPIRES: usize = 2;
const NOW: usize = 3;
const LIMIT: usize = 4;
const VERSION: usize = 5;
const AFTER: usize = 6;
const SKIP: usize = 7;
const UPTO: usize = 8;

impl Statements {
    fn new(d: &dyn Dialect, t: &Table) -> Self {
        let q = |c: Column| d.quote(c.name());
        let table = d.quote(&t.name);
        let (sid, data, expires) = (q(Column::Sid), q(Column::Data), q(Column::Expires));
        let live = format!("({expires} IS NULL OR {expires} > ");

        // Columns written on insert, with the argument each takes.
        let mut insert_cols = vec![(sid.clone(), SID), (data.clone(), DATA)];
        insert_cols.push((expires.clone(), EXPIRES));
        if t.has_created_at {
            insert_cols.push((q(Column::CreatedAt), NOW));
        }
        if t.has_updated_at {
            insert_cols.push((q(Column::UpdatedAt), NOW));
        }
        let updated_at = t.has_updated_at.then(|| q(Column::UpdatedAt));

        let insert = |tail: Option<String>| {
            let mut b = StatementBuilder::new(d);
            let names: Vec<&str> = insert_cols.iter().map(|(c, _)| c.as_str()).collect();
            b.push(&format!(
                "INSERT INTO {table} ({}) VALUES (",
                names.join(", ")
            ));
            for (i, (_, arg)) in insert_cols.iter().enumerate() {
                if i > 0 {
                    b.push(", ");
                }
                b.arg(*arg);
            }
            b.push(")");
            if let Some(tail) = tail {
                b.push(&tail);
            }
            b.build()
        };

        let version = t.has_version.then(|| q(Column::Version));
        let selected = match &version {
            Some(v) => format!("{sid}, {data}, {expires}, {v}"),
            None => format!("{sid}, {data}, {expires}"),
        };
        let select = |by_sid: bool| {
            let mut b = StatementBuilder::new(d);
            b.push(&format!("SELECT {selected} FROM {table} WHERE "));
            if by_sid {
                d.sid_equals(&mut b, &sid, SID);
                b.push(" AND ");
            }
            b.push(&live).arg(NOW).push(")");
            b.build()
        };

        // What an upsert changes on an existing row: the data, the expiry, the update time,
        // and the version goes up by one.
        let mut assignments: Vec<String> = [&data, &expires]
            .into_iter()
            .chain(updated_at.as_ref())
            .map(|c| format!("{c} = {}", d.excluded(c)))
            .collect();
        assignments.extend(version.as_ref().map(|v| format!("{v} = {table}.{v} + 1")));

        let update = |if_version: bool| {
            let mut b = StatementBuilder::new(d);
            b.push(&format!("UPDATE {table} SET {data} = "))
                .arg(DATA)
                .push(&format!(", {expires} = "))
                .arg(EXPIRES);
            if let Some(u) = &updated_at {
                b.push(&format!(", {u} = ")).arg(NOW);
            }
            if let Some(v) = &version {
                b.push(&format!(", {v} = {v} + 1"));
            }
            b.push(" WHERE ");
            d.sid_equals(&mut b, &sid, SID);
            b.push(" AND ").push(&live).arg(NOW).push(")");
            if let (true, Some(v)) = (if_version, &version) {
                b.push(&format!(" AND {v} = ")).arg(VERSION);
            }
            b.build()
        };

        let write_touch = |b: &mut StatementBuilder<'_>, throttled: bool| {
            b.push(&format!("UPDATE {table} SET {expires} = "))
                .arg(EXPIRES);
            if let Some(u) = &updated_at {
                b.push(&format!(", {u} = ")).arg(NOW);
            }
            b.push(" WHERE ");
            d.sid_equals(b, &sid, SID);
            b.push(" AND ").push(&live).arg(NOW).push(")");
            if throttled {
                b.push(&format!(" AND ({expires} IS NULL OR {expires} < "))
                    .arg(LIMIT)
                    .push(")");
            }
        };
        let touch = |throttled: bool| {
            let mut b = StatementBuilder::new(d);
            write_touch(&mut b, throttled);
            b.build()
        };
        // Load and slide in one statement: the updated row comes back.
        let touch_returning = d.update_returning().then(|| {
            let mut b = StatementBuilder::new(d);
            write_touch(&mut b, false);
            b.push(&format!(" RETURNING {selected}"));
            b.build()
        });
        // The same with the throttle, where a touch that is not due must still return the
        // row but write nothing: the update in a CTE, and the row as it was when it did not run.
        let touch_returning_throttled = d.writable_cte().then(|| {
            let mut b = StatementBuilder::new(d);
            b.push("WITH touched AS (");
            write_touch(&mut b, true);
            b.push(&format!(" RETURNING {selected}) SELECT {selected} FROM touched UNION ALL SELECT {selected} FROM {table} WHERE "));
            d.sid_equals(&mut b, &sid, SID);
            b.push(" AND ")
                .push(&live)
                .arg(NOW)
                .push(") AND NOT EXISTS (SELECT 1 FROM touched)");
            b.build()
        });

        let plain = |sql: String| {
            let mut b = StatementBuilder::new(d);
            b.push(&sql);
            b
        };

        let mut destroy = plain(format!("DELETE FROM {table} WHERE "));
        d.sid_equals(&mut destroy, &sid, SID);
        let mut delete_expired = StatementBuilder::new(d);
        d.delete_expired(&mut delete_expired, &t.name, NOW, LIMIT);
        // `+expires` keeps SQLite from answering by an `expires` index (made by an earlier
        // version, or by hand): the walk goes by `rowid`, so each row is read once per sweep.
        let rowid_sweep = t.sweep_by_rowid.then(|| {
            let mut next = plain(format!(
                "SELECT coalesce((SELECT rowid FROM {table} WHERE rowid > "
            ));
            next.arg(AFTER)
                .push(&format!(" AND +{expires} <= "))
                .arg(NOW)
                .push(" ORDER BY rowid LIMIT 1 OFFSET ")
                .arg(SKIP)
                .push("), ")
                .arg(AFTER)
                .push(")");
            let mut range = plain(format!("DELETE FROM {table} WHERE rowid > "));
            range
                .arg(AFTER)
                .push(" AND rowid < ")
                .arg(UPTO)
                .push(&format!(" AND +{expires} <= "))
                .arg(NOW);
            let mut tail = plain(format!("DELETE FROM {table} WHERE rowid > "));
            tail.arg(AFTER)
                .push(&format!(" AND +{expires} <= "))
                .arg(NOW);
            RowidSweep {
                next: next.build(),
                range: range.build(),
                tail: tail.build(),
            }
        });
        let mut count = plain(format!("SELECT COUNT(*) FROM {table} WHERE "));
        count.push(&live).arg(NOW).push(")");

        Statements {
            load: select(true),
            create: insert(d.on_conflict_do_nothing()),
            save: insert(Some(d.upsert(&sid, &assignments))),
            update: update(false),
            update_if_version: update(true),
            touch: touch(false),
            touch_throttled: touch(true),
            touch_returning,
            touch_returning_throttled,
            destroy: destroy.build(),
            delete_expired: delete_expired.build(),
            count: count.build(),
            list: select(false),
            clear: plain(format!("DELETE FROM {table}")).build(),
            sweep_lock: d.sweep_lock(&t.name),
            rowid_sweep,
        }
    }
}

/// The default model: sessions in a `ConnectSession`-shaped table (`sid`, `expires`, `data`,
/// `createdAt`, `updatedAt`) on any [`Backend`].
///
/// Make one with [`ConnectSession::auto`] (creates the table when missing) or
/// [`ConnectSession::discover`] (uses a table that exists, as Sequelize or an earlier run made
/// it), or through the `Store` shorthands of the same names.
pub struct ConnectSession<B> {
    backend: B,
    table: Table,
    offset: FixedOffset,
    stmts: Arc<Statements>,
    /// Where the database lets one writer in at a time (SQLite), this model's writes queue
    /// here, in the process, instead of at the database's lock; shared by its clones.
    writer: Option<Arc<Mutex<()>>>,
}

impl<B: Backend> fmt::Debug for ConnectSession<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectSession")
            .field("dialect", &self.backend.dialect().name())
            .field("table", &self.table.name)
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

impl<B: Backend + Clone> Clone for ConnectSession<B> {
    fn clone(&self) -> Self {
        ConnectSession {
            backend: self.backend.clone(),
            table: self.table.clone(),
            offset: self.offset,
            stmts: Arc::clone(&self.stmts),
            writer: self.writer.clone(),
        }
    }
}

/// How to find or make the table of a [`ConnectSession`]: its name, whether it keeps a
/// version column, and the offset of its wall-clock times. Made by [`ConnectSession::options`].
#[derive(Debug)]
pub struct TableOptions<B> {
    backend: B,
    table: Option<String>,
    versioned: bool,
    offset: FixedOffset,
}

impl<B: Backend> TableOptions<B> {
    /// Use the table `name` instead of the default names.
    pub fn table(mut self, name: impl Into<String>) -> Self {
        self.table = Some(name.into());
        self
    }

    /// Keep a `version` column for optimistic concurrency: [`Store::auto`](crate::Store::auto)
    /// creates it (adding it to an existing table), and updates based on an older version are
    /// refused with [`Error::Conflict`]. [`TableOptions::discover`] uses the column when it is
    /// there, whether or not this is set, and fails when it is set and the column is missing.
    pub fn versioned(mut self, yes: bool) -> Self {
        self.versioned = yes;
        self
    }

    /// Read and write wall-clock `DATETIME` columns at `offset` instead of UTC, for a MySQL
    /// table written by Sequelize with another `timezone` setting. PostgreSQL and SQLite times
    /// carry their zone, so there it changes nothing.
    pub fn time_offset(mut self, offset: FixedOffset) -> Self {
        self.offset = offset;
        self
    }

    /// Creates the table (default `ConnectSession`) and its `expires` index when missing,
    /// adds the `version` column when asked for and missing, and returns a model over it.
    /// Safe to run from several app instances at once.
    ///
    /// # Errors
    /// [`Error::InvalidIdentifier`] for a bad name; the backend's error when the DDL fails;
    /// [`Error::IncompatibleSchema`] when a table of that name exists with columns this model
    /// cannot use, naming the column and the fix.
    pub async fn auto(self) -> Result<ConnectSession<B>> {
        let name = self.table.clone().unwrap_or_else(|| DEFAULT_TABLE.into());
        validate_identifier(&name)?;
        let d = self.backend.dialect();
        let columns = Column::table_columns(self.versioned);
        for ddl in d.create_table(&name, columns) {
            self.run_ddl_tolerating_races(&name, &ddl).await?;
        }
        if self.versioned {
            let existing = self.backend.columns(&name).await?;
            if !existing
                .iter()
                .any(|c| c.name.eq_ignore_ascii_case(Column::Version.name()))
            {
                let ddl = format!(
                    "ALTER TABLE {} ADD COLUMN {}",
                    d.quote(&name),
                    d.column_ddl(Column::Version)
                );
                self.run_ddl_tolerating_races(&name, &ddl).await?;
            }
        }
        self.discover_among(&[&name]).await
    }

    /// Runs `ddl`; when it fails, but `table` exists and has what `ddl` was to add, another
    /// instance starting at the same moment got there first, which is success for us too.
    async fn run_ddl_tolerating_races(&self, table: &str, ddl: &str) -> Result<()> {
        let Err(err) = self.backend.run_ddl(ddl).await else {
            return Ok(());
        };
        let columns = self.backend.columns(table).await?;
        let has_version = columns
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case(Column::Version.name()));
        let adds_version = ddl.contains("ADD COLUMN");
        if columns.is_empty() || (adds_version && !has_version) {
            return Err(err);
        }
        tracing::debug!(table, error = %err, "DDL failed but another instance made the table; going on");
        Ok(())
    }

    /// Finds the table (by default `ConnectSession`, else `ConnectSessions`), checks its
    /// columns and returns a model over it.
    ///
    /// # Errors
    /// [`Error::InvalidIdentifier`] for a bad name; [`Error::TableNotFound`] with the DDL to
    /// run when there is no table; [`Error::IncompatibleSchema`] naming the column and the fix
    /// when one cannot be used.
    pub async fn discover(self) -> Result<ConnectSession<B>> {
        match self.table.clone() {
            Some(name) => self.discover_among(&[&name]).await,
            None => self.discover_among(&[DEFAULT_TABLE, SEQUELIZE_TABLE]).await,
        }
    }

    /// Whether `table` has a `rowid`: SQLite tables do unless made `WITHOUT ROWID`, where
    /// selecting it fails. Any failure means no, and the sweep goes by `sid` instead.
    async fn has_rowid(&self, table: &str) -> bool {
        let probe = format!(
            "SELECT COUNT(*) FROM (SELECT rowid FROM {} LIMIT 0)",
            self.backend.dialect().quote(table)
        );
        let mut b = StatementBuilder::new(self.backend.dialect());
        b.push(&probe);
        match self.backend.fetch_count(&b.build(), &[]).await {
            Ok(_) => true,
            Err(err) => {
                tracing::debug!(table, error = %err, "no rowid; sweeping by sid");
                false
            }
        }
    }

    async fn discover_among(self, names: &[&str]) -> Result<ConnectSession<B>> {
        let d = self.backend.dialect();
        for name in names {
            validate_identifier(name)?;
            let columns = self.backend.columns(name).await?;
            if columns.is_empty() {
                continue;
            }
            let mut table = inspect(d, name, &columns, self.versioned)?;
            table.sweep_by_rowid = d.sweeps_by_rowid() && self.has_rowid(name).await;
            return Ok(ConnectSession::over(self.backend, table, self.offset));
        }
        let ddl = d.create_table(names[0], Column::table_columns(self.versioned));
        Err(Error::TableNotFound {
            tried: names.iter().map(|n| n.to_string()).collect(),
            ddl: ddl.join(";\n") + ";",
        })
    }
}

impl<B: Backend> ConnectSession<B> {
    /// Options for finding or making the table; end with [`TableOptions::auto`] or
    /// [`TableOptions::discover`].
    pub fn options(backend: B) -> TableOptions<B> {
        TableOptions {
            backend,
            table: None,
            versioned: false,
            offset: utc(),
        }
    }

    /// Creates the table `ConnectSession` and its `expires` index when missing, and returns a
    /// model over it. Safe to run from several app instances at once.
    ///
    /// # Errors
    /// As [`TableOptions::auto`].
    pub async fn auto(backend: B) -> Result<Self> {
        Self::options(backend).auto().await
    }

    /// [`ConnectSession::auto`] for a table of another name.
    ///
    /// # Errors
    /// As [`TableOptions::auto`].
    pub async fn auto_table(backend: B, table: &str) -> Result<Self> {
        Self::options(backend).table(table).auto().await
    }

    /// Finds an existing table named `ConnectSession`, or else `ConnectSessions` (Sequelize's
    /// plural), checks its columns and returns a model over it.
    ///
    /// # Errors
    /// As [`TableOptions::discover`].
    pub async fn discover(backend: B) -> Result<Self> {
        Self::options(backend).discover().await
    }

    /// [`ConnectSession::discover`] for a table of another name.
    ///
    /// # Errors
    /// As [`TableOptions::discover`].
    pub async fn discover_table(backend: B, table: &str) -> Result<Self> {
        Self::options(backend).table(table).discover().await
    }

    fn over(backend: B, table: Table, offset: FixedOffset) -> Self {
        let stmts = Arc::new(Statements::new(backend.dialect(), &table));
        let writer = backend
            .dialect()
            .single_writer()
            .then(|| Arc::new(Mutex::new(())));
        ConnectSession {
            backend,
            table,
            offset,
            stmts,
            writer,
        }
    }

    /// Waits for this model's turn to write, where the database takes one writer at a time.
    ///
    /// A writer that finds SQLite's write lock taken sleeps in the busy handler (1 ms, then 2,
    /// 5, 10 ... up to 100 ms) and tries again; with many tasks writing through one pool those
    /// sleeps, not the writes, set the pace. Queued here, each write starts as the one before
    /// it ends. Writers in other processes, or through other models, still meet at the
    /// database's lock and its busy timeout.
    async fn write_turn(&self) -> Option<MutexGuard<'_, ()>> {
        match &self.writer {
            Some(writer) => Some(writer.lock().await),
            None => None,
        }
    }

    /// Runs a statement that writes, in this model's turn ([`ConnectSession::write_turn`]),
    /// and returns how many rows it affected.
    async fn write(&self, stmt: &Statement, args: &[Arg<'_>]) -> Result<u64> {
        let _turn = self.write_turn().await;
        self.backend.execute(stmt, args).await
    }

    /// [`ConnectSession::write`] for a statement that returns the rows it wrote.
    async fn write_returning(&self, stmt: &Statement, args: &[Arg<'_>]) -> Result<Vec<RawRow>> {
        let _turn = self.write_turn().await;
        self.backend.fetch_rows(stmt, args).await
    }

    /// The table this model uses.
    pub fn table(&self) -> &str {
        &self.table.name
    }

    /// The backend (pool or connection) this model runs on.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    fn time(&self, t: Option<DateTime<Utc>>) -> Arg<'static> {
        match t {
            Some(t) => self.backend.dialect().encode_time(t, self.offset),
            None => Arg::Null,
        }
    }

    fn row_args<'a>(&self, row: &'a SessionRow, now: DateTime<Utc>) -> Result<[Arg<'a>; 6]> {
        if let Some(max) = self.table.data_max
            && row.data.len() > max
        {
            return Err(Error::InvalidInput(format!(
                "session {} is {} bytes but column {}.data holds at most {max}; widen it \
                 (MySQL: ALTER TABLE {} MODIFY data MEDIUMTEXT) or store less in the session",
                crate::error::redact(&row.sid),
                row.data.len(),
                self.table.name,
                self.table.name
            )));
        }
        Ok([
            Arg::Str(&row.sid),
            Arg::Str(&row.data),
            self.time(row.expires),
            self.time(Some(now)),
            Arg::Null,
            row.version.map_or(Arg::Null, Arg::Int),
        ])
    }

    fn decode(&self, raw: RawRow) -> Result<SessionRow> {
        let RawRow {
            sid,
            data,
            expires,
            version,
        } = raw;
        let expires = match self.backend.dialect().decode_time(expires, self.offset) {
            Ok(t) => t,
            Err(message) => {
                return Err(Error::Decode {
                    sid,
                    column: "expires",
                    message,
                });
            }
        };
        let Some(data) = data else {
            return Err(Error::Decode {
                sid,
                column: "data",
                message: "it is NULL".into(),
            });
        };
        let mut row = SessionRow::new(sid, data, expires);
        row.version = version;
        Ok(row)
    }
}

impl<B: Backend> ConnectSession<B> {
    /// Deletes expired rows `limit` at a time, again while a batch deletes `repeat_while` rows
    /// or more, all under the dialect's sweep lock, taken once; on a SQLite table with a
    /// `rowid`, by walking the table ([`ConnectSession::sweep_by_rowid`]).
    async fn sweep(&self, now: DateTime<Utc>, limit: u32, repeat_while: u64) -> Result<u64> {
        if let Some(walk) = &self.stmts.rowid_sweep {
            return self.sweep_by_rowid(walk, now, limit, repeat_while).await;
        }
        let args = [
            Arg::Null,
            Arg::Null,
            Arg::Null,
            self.time(Some(now)),
            Arg::Int(i64::from(limit)),
        ];
        let stmt = &self.stmts.delete_expired;
        match &self.stmts.sweep_lock {
            // Another instance is sweeping this table right now: leave it to that one.
            Some(lock) => Ok(self
                .backend
                .execute_locked(lock, stmt, &args, repeat_while)
                .await?
                .unwrap_or(0)),
            None if repeat_while == u64::MAX => self.write(stmt, &args).await,
            None => delete_expired_in_batches(self, now, limit).await,
        }
    }
}

impl<B: Backend> ConnectSession<B> {
    /// [`ConnectSession::sweep`] walking the table by `rowid`: each batch finds the expired row
    /// that comes after the next `limit` (a read, beside other readers), then deletes the
    /// expired rows before it in one write whose `rowid` range bounds how long it holds the
    /// write lock. When there is no such row, one last write deletes the rest and the sweep
    /// ends: a sweep of up to `limit` rows is one read and one write.
    async fn sweep_by_rowid(
        &self,
        walk: &RowidSweep,
        now: DateTime<Utc>,
        limit: u32,
        repeat_while: u64,
    ) -> Result<u64> {
        let mut args = [
            Arg::Null,
            Arg::Null,
            Arg::Null,
            self.time(Some(now)),
            Arg::Null,
            Arg::Null,
            Arg::Null,
            Arg::Int(i64::from(limit.max(1))),
            Arg::Null,
        ];
        let mut total = 0;
        let mut after = i64::MIN;
        loop {
            args[AFTER] = Arg::Int(after);
            let upto = self.backend.fetch_count(&walk.next, &args).await?;
            if upto == after {
                // No more than `limit` expired rows are left: delete them and stop.
                return Ok(total + self.write(&walk.tail, &args).await?);
            }
            args[UPTO] = Arg::Int(upto);
            total += self.write(&walk.range, &args).await?;
            if repeat_while == u64::MAX {
                return Ok(total);
            }
            // The row at `upto` starts the next batch; `upto` is more than `limit` past
            // `after`, so every turn moves on.
            after = upto - 1;
            tokio::task::yield_now().await;
        }
    }
}

fn utc() -> FixedOffset {
    FixedOffset::east_opt(0).expect("zero is a valid offset")
}

/// Checks a table's columns against what the model needs and returns its shape.
fn inspect(
    d: &dyn Dialect,
    name: &str,
    columns: &[ColumnInfo],
    need_version: bool,
) -> Result<Table> {
    let find = |c: Column| {
        columns
            .iter()
            .find(|info| info.name.eq_ignore_ascii_case(c.name()))
    };
    let incompatible = |column: &str, problem: String, fix: String| Error::IncompatibleSchema {
        table: name.to_owned(),
        column: column.to_owned(),
        problem,
        fix,
    };
    let all = Column::table_columns(true);
    let mut data_max = None;
    for &role in all {
        let required = match role {
            Column::Sid | Column::Data | Column::Expires => true,
            Column::Version => need_version,
            _ => false,
        };
        match find(role) {
            None if !required => {}
            None => {
                return Err(incompatible(
                    role.name(),
                    "is missing".into(),
                    format!(
                        "ALTER TABLE {} ADD COLUMN {};",
                        d.quote(name),
                        d.column_ddl(role)
                    ),
                ));
            }
            Some(info) => {
                if let Some((problem, fix)) = d.check_type(name, role, info) {
                    return Err(incompatible(&info.name, problem, fix));
                }
                if role == Column::Data {
                    data_max = info.max_len.and_then(|n| usize::try_from(n).ok());
                }
            }
        }
    }
    let known = |info: &&ColumnInfo| all.iter().any(|c| info.name.eq_ignore_ascii_case(c.name()));
    if let Some(extra) = columns
        .iter()
        .filter(|info| !known(info))
        .find(|info| !info.nullable && !info.has_default)
    {
        return Err(incompatible(
            &extra.name,
            "is NOT NULL with no default, and this model does not write it".into(),
            "give it a default, or let it be NULL; or write a model of your own that fills it \
             (see examples/custom_model.rs)"
                .into(),
        ));
    }
    Ok(Table {
        name: name.to_owned(),
        has_created_at: find(Column::CreatedAt).is_some(),
        has_updated_at: find(Column::UpdatedAt).is_some(),
        has_version: find(Column::Version).is_some(),
        data_max,
        sweep_by_rowid: false,
    })
}

#[async_trait]
impl<B: Backend> SessionModel for ConnectSession<B> {
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE.with_version(self.table.has_version)
    }

    async fn load(&self, sid: &str, now: DateTime<Utc>) -> Result<Option<SessionRow>> {
        let args = [Arg::Str(sid), Arg::Null, Arg::Null, self.time(Some(now))];
        let rows = self.backend.fetch_rows(&self.stmts.load, &args).await?;
        rows.into_iter().next().map(|r| self.decode(r)).transpose()
    }

    async fn create(&self, row: &SessionRow, now: DateTime<Utc>) -> Result<Created> {
        let args = self.row_args(row, now)?;
        match self.write(&self.stmts.create, &args).await {
            Ok(0) => Ok(Created::AlreadyExists),
            Ok(_) => Ok(Created::Inserted),
            Err(e) if self.backend.is_unique_violation(&e) => Ok(Created::AlreadyExists),
            Err(e) => Err(e),
        }
    }

    async fn save(&self, row: &SessionRow, now: DateTime<Utc>) -> Result<()> {
        let args = self.row_args(row, now)?;
        self.write(&self.stmts.save, &args).await?;
        Ok(())
    }

    async fn update(&self, row: &SessionRow, now: DateTime<Utc>) -> Result<bool> {
        let args = self.row_args(row, now)?;
        let (Some(expected), true) = (row.version, self.table.has_version) else {
            return Ok(self.write(&self.stmts.update, &args).await? > 0);
        };
        if self.write(&self.stmts.update_if_version, &args).await? > 0 {
            return Ok(true);
        }
        // Nothing changed: either there is no live row, or another version is stored. Only
        // this rare path pays a second round trip to tell which.
        match self.load(&row.sid, now).await? {
            Some(current) => Err(Error::Conflict {
                sid: row.sid.clone(),
                expected,
                found: current.version.unwrap_or(0),
            }),
            None => Ok(false),
        }
    }

    async fn touch(
        &self,
        sid: &str,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
        only_if_before: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        let (stmt, limit) = match only_if_before {
            Some(limit) => (&self.stmts.touch_throttled, self.time(Some(limit))),
            None => (&self.stmts.touch, Arg::Null),
        };
        let args = [
            Arg::Str(sid),
            Arg::Null,
            self.time(Some(expires)),
            self.time(Some(now)),
            limit,
        ];
        Ok(self.write(stmt, &args).await? > 0)
    }

    async fn load_and_touch(
        &self,
        sid: &str,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
        only_if_before: Option<DateTime<Utc>>,
    ) -> Result<Option<SessionRow>> {
        let stmt = match only_if_before {
            None => self.stmts.touch_returning.as_ref(),
            Some(_) => self.stmts.touch_returning_throttled.as_ref(),
        };
        let Some(stmt) = stmt else {
            return load_then_touch(self, sid, expires, now, only_if_before).await;
        };
        let args = [
            Arg::Str(sid),
            Arg::Null,
            self.time(Some(expires)),
            self.time(Some(now)),
            self.time(only_if_before),
        ];
        let rows = self.write_returning(stmt, &args).await?;
        rows.into_iter().next().map(|r| self.decode(r)).transpose()
    }

    async fn destroy(&self, sid: &str) -> Result<bool> {
        Ok(self.write(&self.stmts.destroy, &[Arg::Str(sid)]).await? > 0)
    }

    async fn delete_expired(&self, now: DateTime<Utc>, limit: u32) -> Result<u64> {
        self.sweep(now, limit, u64::MAX).await
    }

    async fn delete_all_expired(&self, now: DateTime<Utc>, batch: u32) -> Result<u64> {
        let batch = batch.max(1);
        self.sweep(now, batch, u64::from(batch)).await
    }

    async fn count(&self, now: DateTime<Utc>) -> Result<u64> {
        let args = [Arg::Null, Arg::Null, Arg::Null, self.time(Some(now))];
        let n = self.backend.fetch_count(&self.stmts.count, &args).await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn list(&self, now: DateTime<Utc>) -> Result<Vec<SessionRow>> {
        let args = [Arg::Null, Arg::Null, Arg::Null, self.time(Some(now))];
        let rows = self.backend.fetch_rows(&self.stmts.list, &args).await?;
        rows.into_iter().map(|r| self.decode(r)).collect()
    }

    async fn clear(&self) -> Result<u64> {
        self.write(&self.stmts.clear, &[]).await
    }
}
