//! SQLite through rusqlite: [`RusqliteConnection`], a [`Backend`] that runs each blocking call on
//! tokio's blocking pool. It speaks the same [`SqliteDialect`] as the sqlx driver, so both read
//! and write the same tables.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{Connection, ErrorCode, params_from_iter};

use super::SQLITE_BUSY_TIMEOUT;
use crate::sql::dialect::SqliteDialect;
use crate::sql::{
    Arg, Args, Backend, ColumnInfo, ConnectUrl, Dialect, RawRow, RawTime, Statement,
    sqlite_time_text,
};
use crate::{Error, Result};

/// A rusqlite connection shared by a store. Cloning shares the connection.
///
/// Calls are serialized on the one connection and run on tokio's blocking pool, so they never
/// block the async runtime.
#[derive(Debug, Clone)]
pub struct RusqliteConnection {
    conn: Arc<Mutex<Connection>>,
}

impl RusqliteConnection {
    /// Wraps a connection the application opened. It is used as it is: set `journal_mode=WAL`,
    /// `synchronous=NORMAL` and a busy timeout on it for concurrent use.
    pub fn new(conn: Connection) -> Self {
        RusqliteConnection {
            conn: Arc::new(Mutex::new(conn)),
        }
    }

    /// Opens (creating when missing) the database file at `path` with WAL, `synchronous=NORMAL`
    /// and a 5 second busy timeout.
    ///
    /// # Errors
    /// rusqlite's error when the file cannot be opened or the settings cannot be made.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(SQLITE_BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(Self::new(conn))
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // A panic in another call cannot leave a rusqlite connection half-changed in a way
            // that matters here: each call is one statement. Go on with it.
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut conn)
        })
        .await
        .map_err(|e| Error::backend(format!("the rusqlite task did not finish: {e}")))?
    }
}

fn owned(stmt: &Statement, args: &Args<'_>) -> Result<Vec<Value>> {
    stmt.bound(args)
        .map(|arg| {
            Ok(match arg? {
                Arg::Null | Arg::NullText | Arg::NullInt => Value::Null,
                Arg::Str(s) => Value::Text((*s).to_owned()),
                Arg::String(s) => Value::Text(s.clone()),
                Arg::Int(i) => Value::Integer(*i),
                Arg::Time(t) => Value::Text(sqlite_time_text(*t)),
                Arg::Naive(n) => Value::Text(sqlite_time_text(n.and_utc())),
            })
        })
        .collect()
}

/// Reads a column as text whatever its storage class, as the sqlx backend does.
/// Column `i` as a time, in the text form SQLite keeps.
fn time(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<RawTime> {
    Ok(text(row, i)?.map_or(RawTime::Null, RawTime::Text))
}

fn text(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<String>> {
    Ok(match row.get_ref(i)? {
        rusqlite::types::ValueRef::Null => None,
        rusqlite::types::ValueRef::Integer(n) => Some(n.to_string()),
        rusqlite::types::ValueRef::Real(x) => Some(x.to_string()),
        rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => {
            Some(String::from_utf8_lossy(b).into_owned())
        }
    })
}

#[async_trait]
impl Backend for RusqliteConnection {
    fn dialect(&self) -> &'static dyn Dialect {
        &SqliteDialect
    }

    async fn execute(&self, stmt: &Statement, args: &Args<'_>) -> Result<u64> {
        let (sql, values) = (stmt.shared_sql(), owned(stmt, args)?);
        self.call(move |conn| {
            let n = conn
                .prepare_cached(&sql)?
                .execute(params_from_iter(values))?;
            Ok(n as u64)
        })
        .await
    }

    async fn fetch_rows(&self, stmt: &Statement, args: &Args<'_>) -> Result<Vec<RawRow>> {
        let (sql, values) = (stmt.shared_sql(), owned(stmt, args)?);
        self.call(move |conn| {
            let mut st = conn.prepare_cached(&sql)?;
            let columns = st.column_count();
            let rows = st.query_map(params_from_iter(values), |row| {
                let mut raw = RawRow::new(
                    text(row, 0)?.unwrap_or_default(),
                    text(row, 1)?,
                    time(row, 2)?,
                );
                if RawRow::has_version(columns) {
                    raw = raw.with_version(Some(row.get(3)?));
                }
                if RawRow::has_written(columns) {
                    raw = raw.with_written(time(row, 4)?);
                }
                if RawRow::has_created(columns) {
                    raw = raw.with_created(time(row, 5)?);
                }
                Ok(raw)
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn fetch_count(&self, stmt: &Statement, args: &Args<'_>) -> Result<i64> {
        let (sql, values) = (stmt.shared_sql(), owned(stmt, args)?);
        self.call(move |conn| {
            Ok(conn
                .prepare_cached(&sql)?
                .query_row(params_from_iter(values), |row| row.get(0))?)
        })
        .await
    }

    async fn columns(&self, table: &str) -> Result<Vec<ColumnInfo>> {
        let table = table.to_owned();
        self.call(move |conn| {
            let mut st = conn.prepare_cached(SqliteDialect.catalog())?;
            let rows = st.query_map([table], |row| {
                Ok(ColumnInfo::new(
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    None,
                ))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn run_ddl(&self, sql: &str) -> Result<()> {
        let sql = sql.to_owned();
        self.call(move |conn| Ok(conn.execute_batch(&sql)?)).await
    }

    /// A primary-key or unique conflict only: NOT NULL, CHECK, a trigger's `RAISE` and foreign
    /// keys are constraint violations too, but no other id would pass them.
    fn is_unique_violation(&self, err: &Error) -> bool {
        matches!(err, Error::Rusqlite(rusqlite::Error::SqliteFailure(e, _))
        if e.code == ErrorCode::ConstraintViolation
            && matches!(
                e.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY | rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            ))
    }
}

#[async_trait]
impl ConnectUrl for RusqliteConnection {
    /// Opens the file named by `url`: a path, or a `sqlite://` / `sqlite:` URL of one.
    async fn connect_url(url: &str) -> Result<Self> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        let path = path.split('?').next().unwrap_or(path).to_owned();
        tokio::task::spawn_blocking(move || Self::open(path))
            .await
            .map_err(|e| Error::backend(format!("opening the database did not finish: {e}")))?
    }
}
