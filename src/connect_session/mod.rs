//! [`ConnectSession`], the default model, over any [`Backend`]: the table layout Sequelize makes
//! for the original package's `ConnectSession` model, on SQLite, PostgreSQL and MySQL/MariaDB.

mod options;
mod schema;
mod statements;
mod store;
mod sweep;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, FixedOffset, Utc};
use tokio::sync::{Mutex, MutexGuard};

pub use options::TableOptions;
use statements::Statements;

use crate::model::{
    Capabilities, Created, SessionModel, SessionRow, Slide, Sweep, UserSession, load_then_slide,
    load_then_touch, slide_loaded,
};
use crate::sql::{Arg, Args, Backend, Column, Param, RawRow, RawTime, Repeat, Statement};
use crate::{Error, Result};

/// The table name `Store::auto` creates and `Store::discover` looks for first.
pub const DEFAULT_TABLE: &str = "ConnectSession";

/// The table name Sequelize gives the `ConnectSession` model unless told to freeze table names;
/// `Store::discover` looks for it second.
pub const SEQUELIZE_TABLE: &str = "ConnectSessions";

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
    /// The statement that adds the missing `expires` index, when a table made by someone else
    /// has none (`ConnectSession::expires_index_fix`).
    expires_index_fix: Option<String>,
    /// The most characters the `sid` column holds, where the catalog says (`VARCHAR(36)`).
    sid_max: Option<usize>,
    /// Whether the `sid` column's collation finds ids that differ in case or trailing spaces
    /// (a Sequelize table on MariaDB), so that a save cannot be one upsert.
    sid_ignores_case: bool,
    /// Whether the `sid` column's collation pads trailing spaces (MySQL's `utf8mb4_bin` too):
    /// an id ending in a space would be another id's row to its upsert and primary key.
    sid_pads_spaces: bool,
    /// The column that holds the user a session belongs to, where the table has one.
    user: Option<UserColumn>,
    /// The statement that adds the missing `(user, sid)` index (`ConnectSession::user_index_fix`).
    user_index_fix: Option<String>,
}

/// The user column of a table: `user_id`, or `userId` on a table Sequelize made.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UserColumn {
    /// Its name, as the catalog spells it.
    name: String,
    /// Whether it holds integers (a foreign key to a users table): user ids are bound as
    /// integers, and one that is not an integer is refused.
    is_int: bool,
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

impl<B: Backend> ConnectSession<B> {
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
    async fn write(&self, stmt: &Statement, args: &Args<'_>) -> Result<u64> {
        let _turn = self.write_turn().await;
        self.backend.execute(stmt, args).await
    }

    /// [`ConnectSession::write`] for a statement that returns the rows it wrote.
    async fn write_returning(&self, stmt: &Statement, args: &Args<'_>) -> Result<Vec<RawRow>> {
        let _turn = self.write_turn().await;
        self.backend.fetch_rows(stmt, args).await
    }

    /// A save on a table whose `sid` ignores case, where an upsert of `"abc"` would write over
    /// the row `"Abc"`: replace the row with exactly this id, else insert one; an insert that
    /// meets another id equal but for case is refused. One statement when the session exists.
    async fn save_exactly(&self, row: &SessionRow, args: &Args<'_>) -> Result<()> {
        if self.write(&self.stmts.replace, args).await? > 0 {
            return Ok(());
        }
        match self.write(&self.stmts.create, args).await {
            Ok(_) => Ok(()),
            Err(err) if self.backend.is_unique_violation(&err) => {
                // Another save of the same id may have inserted it meanwhile.
                if self.write(&self.stmts.replace, args).await? > 0 {
                    return Ok(());
                }
                Err(Error::InvalidInput(format!(
                    "session {} cannot be stored: table {} holds an id that differs from it \
                     only in case or trailing spaces, and its sid column's collation treats \
                     them as one; make it exact with ALTER TABLE {} MODIFY sid VARCHAR(255) \
                     CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL",
                    crate::redact(&row.sid),
                    self.table.name,
                    self.table.name
                )))
            }
            Err(err) => Err(err),
        }
    }

    /// The statement to run when the table has no index on `expires`, which a table made by
    /// Sequelize (or by hand) lacks: without it each sweep batch reads the whole table and, on
    /// MySQL, locks what it reads, so session writes wait on every batch. `None` when the index
    /// is there, or where sweeps need none (SQLite). The store does not build it itself on a
    /// table that already existed: on a large table that is a long DDL to run at a time of your
    /// choosing. The statement builds it without blocking writes (`CREATE INDEX CONCURRENTLY`
    /// on PostgreSQL, online DDL on MySQL/MariaDB); `discover` and `auto` also log it as a
    /// warning.
    pub fn expires_index_fix(&self) -> Option<&str> {
        self.table.expires_index_fix.as_deref()
    }

    /// The statement to run when the table's user column leads no index (a Sequelize table
    /// with `userId`, or an index whose online build failed): without it each per-user call
    /// reads the whole table. `None` when the index is there or the table keeps no users. As
    /// with [`ConnectSession::expires_index_fix`], the store does not build it on a table it
    /// did not make; `discover` and `auto` log it as a warning.
    pub fn user_index_fix(&self) -> Option<&str> {
        self.table.user_index_fix.as_deref()
    }

    /// The table this model uses.
    pub fn table(&self) -> &str {
        &self.table.name
    }

    /// The backend (pool or connection) this model runs on.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// `t` as this table stores it.
    fn time(&self, t: DateTime<Utc>) -> Arg<'static> {
        self.backend.dialect().encode_time(t, self.offset)
    }

    /// The arguments of a call about session `sid` at `now`.
    fn sid_args<'a>(&self, sid: &'a str, now: DateTime<Utc>) -> Args<'a> {
        Args::new()
            .with(Param::Sid, Arg::Str(sid))
            .with(Param::Now, self.time(now))
    }

    /// Refuses to insert or upsert an id ending in a space where the `sid` column pads
    /// trailing spaces: to the primary key it is the id without them, whose row an upsert
    /// would overwrite. Exact writes (update, touch, destroy) need no such check.
    fn check_unpadded(&self, sid: &str) -> Result<()> {
        if self.table.sid_pads_spaces && sid.ends_with(' ') {
            return Err(Error::InvalidInput(format!(
                "session id {} ends with a space, and the sid column of table {} compares ids \
                 as if padded with spaces (MySQL's PAD SPACE collations, utf8mb4_bin among \
                 them), so storing it could overwrite the session without the space; use ids \
                 without trailing spaces",
                crate::error::redact(sid),
                self.table.name
            )));
        }
        Ok(())
    }

    fn row_args<'a>(&self, row: &'a SessionRow, now: DateTime<Utc>) -> Result<Args<'a>> {
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
        let expires = row.expires.map_or(Arg::Null, |t| self.time(t));
        let mut args = self
            .sid_args(&row.sid, now)
            .with(Param::Data, Arg::Str(&row.data))
            .with(Param::Expires, expires);
        if let Some(version) = row.version {
            args.set(Param::Version, Arg::Int(version));
        }
        if self.table.user.is_some() {
            let user = match (&row.user_id, &self.table.user) {
                (Some(user), _) => self.user_arg(user)?,
                (None, Some(UserColumn { is_int: true, .. })) => Arg::NullInt,
                (None, _) => Arg::NullText,
            };
            args.set(Param::User, user);
        }
        Ok(args)
    }

    /// User id `user` as the user column takes it: text, or an integer for a column of
    /// integers.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an empty or oversized id, or one that is not an integer
    /// where the column holds integers.
    fn user_arg<'a>(&self, user: &'a str) -> Result<Arg<'a>> {
        crate::model::check_user_id(user)?;
        match &self.table.user {
            Some(UserColumn { is_int: true, name }) => user.parse().map(Arg::Int).map_err(|_| {
                Error::InvalidInput(format!(
                    "user id {user:?} is not an integer, and column {}.{name} holds integers",
                    self.table.name
                ))
            }),
            _ => Ok(Arg::Str(user)),
        }
    }

    /// The per-user statements, or the error that says how to get them.
    fn user_statements(&self) -> Result<&statements::UserStatements> {
        self.stmts.users.as_ref().ok_or_else(|| {
            Error::Unsupported(format!(
                "table {} has no user_id column, so sessions cannot be found by user; let \
                 ConnectSession::options(pool).user_id(true).auto() add it, or run {}",
                self.table.name,
                self.backend
                    .dialect()
                    .add_user_column(&self.table.name)
                    .join("; ")
            ))
        })
    }

    /// A listed row as a [`UserSession`]: the times the table keeps.
    fn listed(&self, raw: RawRow) -> Result<UserSession> {
        let dialect = self.backend.dialect();
        let time = |value: RawTime, column: &'static str, sid: &str| {
            dialect
                .decode_time(value, self.offset)
                .map_err(|message| Error::decode(sid.to_owned(), column, message))
        };
        let expires = time(raw.expires, "expires", &raw.sid)?;
        let written = match self.table.has_updated_at {
            true => time(raw.written, Column::UpdatedAt.name(), &raw.sid)?,
            false => None,
        };
        let created = match self.table.has_created_at {
            true => time(raw.created, Column::CreatedAt.name(), &raw.sid)?,
            false => None,
        };
        Ok(UserSession::new(raw.sid, created, written, expires))
    }

    fn decode(&self, raw: RawRow) -> Result<SessionRow> {
        Ok(self.decode_written(raw)?.0)
    }

    /// A row and the time of its last write, where the statement selected it.
    fn decode_written(&self, raw: RawRow) -> Result<(SessionRow, Option<DateTime<Utc>>)> {
        let RawRow {
            sid,
            data,
            expires,
            version,
            written,
            ..
        } = raw;
        let dialect = self.backend.dialect();
        let expires = match dialect.decode_time(expires, self.offset) {
            Ok(t) => t,
            Err(message) => return Err(Error::decode(sid, "expires", message)),
        };
        let written = match dialect.decode_time(written, self.offset) {
            Ok(t) => t,
            Err(message) => return Err(Error::decode(sid, Column::UpdatedAt.name(), message)),
        };
        let Some(data) = data else {
            return Err(Error::decode(sid, "data", "it is NULL"));
        };
        let mut row = SessionRow::new(sid, data, expires);
        row.version = version.filter(|_| self.table.has_version);
        Ok((row, written))
    }
}

/// The row of `rows` whose id is exactly `sid`: a read compares ids with the column's
/// collation, which on a Sequelize table made by MySQL ignores case and trailing spaces, so
/// `abc` may find the row `Abc`, which is another session.
fn exact(rows: Vec<RawRow>, sid: &str) -> Option<RawRow> {
    rows.into_iter().find(|r| r.sid == sid)
}

#[async_trait]
impl<B: Backend> SessionModel for ConnectSession<B> {
    fn capabilities(&self) -> Capabilities {
        let caps = Capabilities::NONE
            .with_version(self.table.has_version)
            .with_user_id(self.table.user.is_some());
        match self.table.sid_max {
            Some(chars) => caps.with_max_sid_len(chars),
            None => caps,
        }
    }

    async fn load(&self, sid: &str, now: DateTime<Utc>) -> Result<Option<SessionRow>> {
        let args = self.sid_args(sid, now);
        let rows = self.backend.fetch_rows(&self.stmts.load, &args).await?;
        exact(rows, sid).map(|r| self.decode(r)).transpose()
    }

    async fn create(&self, row: &SessionRow, now: DateTime<Utc>) -> Result<Created> {
        self.check_unpadded(&row.sid)?;
        let args = self.row_args(row, now)?;
        match self.write(&self.stmts.create, &args).await {
            Ok(0) => Ok(Created::AlreadyExists),
            Ok(_) => Ok(Created::Inserted),
            Err(e) if self.backend.is_unique_violation(&e) => Ok(Created::AlreadyExists),
            Err(e) => Err(e),
        }
    }

    async fn save(&self, row: &SessionRow, now: DateTime<Utc>) -> Result<()> {
        self.check_unpadded(&row.sid)?;
        let args = self.row_args(row, now)?;
        if self.table.sid_ignores_case {
            return self.save_exactly(row, &args).await;
        }
        if let Some(same) = &self.stmts.same_user
            && self.write(&same.replace, &args).await? > 0
        {
            return Ok(());
        }
        self.write(&self.stmts.save, &args).await?;
        Ok(())
    }

    async fn update(&self, row: &SessionRow, now: DateTime<Utc>) -> Result<bool> {
        let args = self.row_args(row, now)?;
        let versioned = row.version.filter(|_| self.table.has_version);
        // Where assigning the user column costs even when unchanged (SQLite), the usual write
        // (a session that keeps its user) goes without it; a change of user, or a missing
        // row, then takes the plain statement.
        if let Some(same) = &self.stmts.same_user {
            let stmt = match versioned {
                Some(_) => &same.update_if_version,
                None => &same.update,
            };
            if self.write(stmt, &args).await? > 0 {
                return Ok(true);
            }
        }
        let Some(expected) = versioned else {
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
        let mut args = self
            .sid_args(sid, now)
            .with(Param::Expires, self.time(expires));
        let stmt = match only_if_before {
            Some(limit) => {
                args.set(Param::Limit, self.time(limit));
                &self.stmts.touch_throttled
            }
            None => &self.stmts.touch,
        };
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
        let mut args = self
            .sid_args(sid, now)
            .with(Param::Expires, self.time(expires));
        if let Some(limit) = only_if_before {
            args.set(Param::Limit, self.time(limit));
        }
        let rows = self.write_returning(stmt, &args).await?;
        rows.into_iter().next().map(|r| self.decode(r)).transpose()
    }

    async fn load_and_slide(&self, sid: &str, slide: Slide) -> Result<Option<SessionRow>> {
        let Some(stmt) = &self.stmts.load_written else {
            // No `updatedAt`: the lifetime is unknown, so the slide goes to the fallback.
            return load_then_slide(self, sid, &slide).await;
        };
        let args = self.sid_args(sid, slide.now);
        let rows = self.backend.fetch_rows(stmt, &args).await?;
        let Some(raw) = exact(rows, sid) else {
            return Ok(None);
        };
        let (row, written) = self.decode_written(raw)?;
        Ok(Some(slide_loaded(self, row, written, &slide).await?))
    }

    async fn destroy(&self, sid: &str) -> Result<bool> {
        let args = Args::new().with(Param::Sid, Arg::Str(sid));
        Ok(self.write(&self.stmts.destroy, &args).await? > 0)
    }

    async fn delete_expired(&self, now: DateTime<Utc>, limit: u32) -> Result<u64> {
        Ok(self.sweep(now, limit, Repeat::Once).await?.removed)
    }

    async fn delete_all_expired(&self, now: DateTime<Utc>, batch: u32) -> Result<Sweep> {
        let batch = batch.max(1);
        let repeat = Repeat::WhileFull {
            rows: u64::from(batch),
        };
        self.sweep(now, batch, repeat).await
    }

    async fn count(&self, now: DateTime<Utc>) -> Result<u64> {
        let args = Args::new().with(Param::Now, self.time(now));
        let n = self.backend.fetch_count(&self.stmts.count, &args).await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn list(&self, now: DateTime<Utc>) -> Result<Vec<SessionRow>> {
        let args = Args::new().with(Param::Now, self.time(now));
        let rows = self.backend.fetch_rows(&self.stmts.list, &args).await?;
        rows.into_iter().map(|r| self.decode(r)).collect()
    }

    async fn clear(&self) -> Result<u64> {
        self.write(&self.stmts.clear, &Args::new()).await
    }

    async fn list_for_user<'a>(
        &self,
        user: &str,
        now: DateTime<Utc>,
        after: Option<&'a str>,
        limit: u32,
    ) -> Result<Vec<UserSession>> {
        let stmts = self.user_statements()?;
        // Ids are never empty, so every id sorts after "".
        let args = Args::new()
            .with(Param::User, self.user_arg(user)?)
            .with(Param::Now, self.time(now))
            .with(Param::After, Arg::Str(after.unwrap_or("")))
            .with(Param::Limit, Arg::Int(i64::from(limit)));
        let rows = self.backend.fetch_rows(&stmts.list, &args).await?;
        rows.into_iter().map(|r| self.listed(r)).collect()
    }

    async fn count_for_user(&self, user: &str, now: DateTime<Utc>) -> Result<u64> {
        let stmts = self.user_statements()?;
        let args = Args::new()
            .with(Param::User, self.user_arg(user)?)
            .with(Param::Now, self.time(now));
        let n = self.backend.fetch_count(&stmts.count, &args).await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn destroy_for_user<'a>(&self, user: &str, except: Option<&'a str>) -> Result<u64> {
        let stmts = self.user_statements()?;
        let mut args = Args::new().with(Param::User, self.user_arg(user)?);
        let stmt = match except {
            Some(sid) => {
                args.set(Param::Sid, Arg::Str(sid));
                &stmts.destroy_except
            }
            None => &stmts.destroy,
        };
        self.write(stmt, &args).await
    }
}
