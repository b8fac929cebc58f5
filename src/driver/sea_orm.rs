//! SeaORM 2: a store on the pool inside the application's `sea_orm::DatabaseConnection`.
//!
//! SeaORM 2 runs on sqlx 0.9, the sqlx this crate uses, so a `DatabaseConnection` made by
//! [`sea_orm::Database::connect`] holds a `SqlitePool`, `PgPool` or `MySqlPool` that a
//! [`ConnectSession`](crate::ConnectSession) can run on directly. [`SeaOrmBackend`] takes that pool out of the
//! connection (a clone of the handle, not a second pool), so sessions share the application's
//! connections, its limits and its settings. It works with every constructor of [`Store`](crate::Store):
//!
//! - `Store::auto(SeaOrmBackend::new(&db)?)` creates the `ConnectSession` table when missing;
//! - `Store::discover(SeaOrmBackend::new(&db)?)` uses the one Sequelize (or an earlier run) made;
//! - `Store::with_model(model)` takes a model of yours, which may hold `db.clone()` itself, or a
//!   [`ConnectSession`](crate::ConnectSession) built on a [`SeaOrmBackend`] with settings of your choice
//!   ([`ConnectSession::options`](crate::ConnectSession::options)).
//!
//! ```
//! use sea_orm::{ConnectionTrait, Database, Statement};
//! use sequelstore::{SeaOrmBackend, SeaOrmStore};
//! use sequelstore::{SessionData, Store};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The application's connection (here an in-memory SQLite; postgres:// and mysql:// URLs
//! // work the same). The store runs on the pool inside it.
//! let db = Database::connect("sqlite::memory:").await?;
//!
//! let store: SeaOrmStore = Store::auto(SeaOrmBackend::new(&db)?).await?; // creates the table
//! let found = Store::discover(SeaOrmBackend::new(&db)?).await?; // finds it, as Sequelize's
//!
//! let mut data = SessionData::new();
//! data.insert("user".into(), "ann".into());
//! store.set("sid-1", &data, None).await?;
//! assert_eq!(found.get("sid-1").await?.unwrap().data, data);
//!
//! // The application's own SeaORM queries see the same rows, on the same connections
//! // (quoted for SQLite and PostgreSQL; MySQL quotes with backticks).
//! let sql = r#"SELECT data FROM "ConnectSession" WHERE sid = 'sid-1'"#;
//! let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await?;
//! assert!(row.is_some());
//! # Ok(())
//! # }
//! ```
//!
//! A model of your own ([`Store::with_model`](crate::Store::with_model)) can hold `db.clone()` and write its table with
//! SeaORM's query builder; `examples/sea_orm.rs` has one that runs on all three databases.
//!
//! An application that only ever talks to one database can also pass the pool itself, as
//! `Store::auto(db.get_postgres_connection_pool().clone())`; [`SeaOrmBackend`] adds one store
//! type whatever the URL, and an error instead of SeaORM's panic for a connection of
//! another kind.
//!
//! # SQLite
//!
//! SeaORM opens a SQLite database with **one** connection unless told otherwise, and the store
//! then waits its turn behind the application's queries. `sequelstore`'s own
//! [`Store::connect`](crate::Store::connect) opens SQLite files in WAL mode with `synchronous=NORMAL`; to get the same
//! through SeaORM, set it on its `ConnectOptions`:
//!
//! ```no_run
//! use sea_orm::{ConnectOptions, Database};
//! use sequelstore::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
//!
//! # async fn run() -> Result<(), sea_orm::DbErr> {
//! let mut options = ConnectOptions::new("sqlite://app.db?mode=rwc");
//! options.max_connections(8).map_sqlx_sqlite_opts(|o| {
//!     o.journal_mode(SqliteJournalMode::Wal)
//!         .synchronous(SqliteSynchronous::Normal)
//! });
//! let db = Database::connect(options).await?;
//! # Ok(())
//! # }
//! ```

use async_trait::async_trait;
use sea_orm::{DatabaseConnection, DatabaseConnectionType};

use crate::sql::{Args, Backend, ColumnInfo, Dialect, RawRow, RowLock, Statement};
use crate::{Error, Result};

/// The sqlx pool inside a SeaORM [`DatabaseConnection`], as a [`Backend`].
///
/// Made with [`SeaOrmBackend::new`] (or `TryFrom<&DatabaseConnection>`). It holds a clone of
/// the connection's pool handle: statements run on the same connections as the application's
/// SeaORM queries, and closing the `DatabaseConnection` closes it too. Cloning is cheap.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SeaOrmBackend {
    /// A SQLite connection (`sqlite:` URL).
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
    /// A PostgreSQL connection (`postgres:` URL).
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
    /// A MySQL or MariaDB connection (`mysql:` URL).
    #[cfg(feature = "mysql")]
    MySql(sqlx::MySqlPool),
}

/// Runs `$body` with `$pool` bound to the pool of whichever variant `$backend` is.
macro_rules! on_pool {
    ($backend:expr, $pool:ident => $body:expr) => {
        // `match *x` with `ref` bindings also compiles when no variant is enabled.
        match *$backend {
            #[cfg(feature = "sqlite")]
            SeaOrmBackend::Sqlite(ref $pool) => $body,
            #[cfg(feature = "postgres")]
            SeaOrmBackend::Postgres(ref $pool) => $body,
            #[cfg(feature = "mysql")]
            SeaOrmBackend::MySql(ref $pool) => $body,
        }
    };
}

impl SeaOrmBackend {
    /// The pool inside `db`, shared with it: no new connection is opened.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] when `db` holds no sqlx pool this build can use: a
    /// `DatabaseConnection::default()` (disconnected), SeaORM's mock, proxy or rusqlite
    /// connections, or a database whose `sequelstore` feature is off. The message says which.
    // The last arm is reachable when the application enables SeaORM's `mock`, `proxy` or
    // `rusqlite` features, which add variants to `DatabaseConnectionType`.
    #[allow(unreachable_patterns)]
    pub fn new(db: &DatabaseConnection) -> Result<Self> {
        // The accessors below panic on another kind of connection; each is called only in the
        // arm that matched that kind.
        match &db.inner {
            #[cfg(feature = "sqlite")]
            DatabaseConnectionType::SqlxSqlitePoolConnection(_) => {
                Ok(SeaOrmBackend::Sqlite(db.get_sqlite_connection_pool().clone()))
            }
            #[cfg(feature = "postgres")]
            DatabaseConnectionType::SqlxPostgresPoolConnection(_) => Ok(SeaOrmBackend::Postgres(
                db.get_postgres_connection_pool().clone(),
            )),
            #[cfg(feature = "mysql")]
            DatabaseConnectionType::SqlxMySqlPoolConnection(_) => {
                Ok(SeaOrmBackend::MySql(db.get_mysql_connection_pool().clone()))
            }
            DatabaseConnectionType::Disconnected => Err(Error::Misconfigured(
                "this sea_orm::DatabaseConnection is disconnected (DatabaseConnection::default()); \
                 pass the one sea_orm::Database::connect returned"
                    .into(),
            )),
            other => Err(Error::Misconfigured(format!(
                "this sea_orm::DatabaseConnection is a {other:?}, which holds no sqlx pool that \
                 sequelstore can share; connect with sea_orm::Database::connect and a sqlite:, \
                 postgres: or mysql: URL (with sequelstore's feature for that database on), or \
                 in tests use a SQLite file or sequelstore::MemoryModel"
            ))),
        }
    }
}

impl TryFrom<&DatabaseConnection> for SeaOrmBackend {
    type Error = Error;

    /// As [`SeaOrmBackend::new`].
    fn try_from(db: &DatabaseConnection) -> Result<Self> {
        SeaOrmBackend::new(db)
    }
}

// Every method is delegated, those with a default body included: the pool's own
// implementation (a sweep lock on its connection, say) must not fall back to the default.
// With no database feature on, the enum has no variant and the arguments go unused.
#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(unused_variables)
)]
#[async_trait]
impl Backend for SeaOrmBackend {
    fn dialect(&self) -> &'static dyn Dialect {
        on_pool!(self, pool => Backend::dialect(pool))
    }

    async fn execute(&self, stmt: &Statement, args: &Args<'_>) -> Result<u64> {
        on_pool!(self, pool => Backend::execute(pool, stmt, args).await)
    }

    async fn fetch_rows(&self, stmt: &Statement, args: &Args<'_>) -> Result<Vec<RawRow>> {
        on_pool!(self, pool => Backend::fetch_rows(pool, stmt, args).await)
    }

    async fn fetch_count(&self, stmt: &Statement, args: &Args<'_>) -> Result<i64> {
        on_pool!(self, pool => Backend::fetch_count(pool, stmt, args).await)
    }

    async fn columns(&self, table: &str) -> Result<Vec<ColumnInfo>> {
        on_pool!(self, pool => Backend::columns(pool, table).await)
    }

    async fn run_ddl(&self, sql: &str) -> Result<()> {
        on_pool!(self, pool => Backend::run_ddl(pool, sql).await)
    }

    fn is_unique_violation(&self, err: &Error) -> bool {
        on_pool!(self, pool => Backend::is_unique_violation(pool, err))
    }

    async fn execute_row_locked(
        &self,
        lock: &RowLock,
        stmt: &Statement,
        args: &Args<'_>,
    ) -> Result<Option<u64>> {
        on_pool!(self, pool => Backend::execute_row_locked(pool, lock, stmt, args).await)
    }
}
