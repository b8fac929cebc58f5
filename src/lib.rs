#![cfg_attr(docsrs, feature(doc_cfg))]
//! sequelstore
mod clock;
mod connect_session;
mod error;
pub mod integration;
mod memory;
mod model;
#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
mod mysql;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
mod postgres;
#[cfg(feature = "rusqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "rusqlite")))]
mod rusqlite;
mod serializer;
pub mod sql;
#[cfg(any(feature = "sqlite", feature = "rusqlite"))]
mod sqlite;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod sqlx_backend;
mod store;

pub use clock::{Clock, SystemClock};
pub use connect_session::{
    Backend, Connect, ConnectSession, DEFAULT_BATCH, DEFAULT_TABLE, SEQUELIZE_TABLE,
};
pub use error::{BoxError, Error, Result};
pub use memory::{Fallback, MemoryModel};
pub use model::{Capabilities, Created, SessionModel, SessionRow};
#[cfg(feature = "mysql")]
pub use mysql::MySqlDialect;
#[cfg(feature = "postgres")]
pub use postgres::PostgresDialect;
#[cfg(feature = "rusqlite")]
pub use rusqlite::RusqliteConnection;
pub use serializer::{Json, Serializer, SessionData};
#[cfg(any(feature = "sqlite", feature = "rusqlite"))]
pub use sqlite::SqliteDialect;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub use sqlx_backend::SqlxDatabase;
pub use store::{DEFAULT_CLEANUP_INTERVAL, DEFAULT_TTL, Session, Store};

/// The sqlx this crate is built with, for making pools of the same version.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql")))
)]
pub use sqlx;

/// A store over a `ConnectSession` table in SQLite, through sqlx.
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub type SqliteStore = Store<ConnectSession<sqlx::SqlitePool>>;

/// A store over a `ConnectSession` table in PostgreSQL.
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub type PgStore = Store<ConnectSession<sqlx::PgPool>>;

/// A store over a `ConnectSession` table in MySQL or MariaDB.
#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub type MySqlStore = Store<ConnectSession<sqlx::MySqlPool>>;

/// A store over a `ConnectSession` table in SQLite, through rusqlite.
#[cfg(feature = "rusqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "rusqlite")))]
pub type RusqliteStore = Store<ConnectSession<RusqliteConnection>>;
