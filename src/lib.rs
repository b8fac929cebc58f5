#![cfg_attr(docsrs, feature(doc_cfg))]
//! Web sessions in the SQL database your application already has.
//!
//! A [`Store`] keeps sessions through a [`SessionModel`]: the default model,
//! [`ConnectSession`], uses the `ConnectSession` table of the npm package sequelstore-connect
//! (and of connect-session-sequelize) on SQLite, PostgreSQL and MySQL/MariaDB through sqlx, and
//! on SQLite through rusqlite; [`MemoryModel`] keeps them in memory; your own model can keep
//! them anywhere. The store owns the policy: ttl (14 days unless the cookie says otherwise),
//! sliding expiry with an optional write throttle, and a background task that removes expired
//! sessions every 15 minutes.
//!
//! # Quick start
//!
//! ```
//! use sequelstore::{SessionData, Store};
//! use sqlx::SqlitePool;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> sequelstore::Result<()> {
//! let pool = SqlitePool::connect("sqlite::memory:").await?; // your application's pool
//! let store = Store::auto(pool).await?; // creates ConnectSession when missing
//!
//! let mut data = SessionData::new();
//! data.insert("user".into(), "ann".into());
//! store.set("sid-1", &data, None).await?; // expires in 14 days
//! assert_eq!(store.get("sid-1").await?.unwrap().data, data);
//! assert!(store.destroy("sid-1").await?);
//! assert!(store.get("sid-1").await?.is_none());
//! # Ok(())
//! # }
//! ```
//!
//! # Three ways in
//!
//! - [`Store::auto`] creates the table (and, except on SQLite, its `expires` index) when missing.
//! - [`Store::discover`] finds an existing `ConnectSession` or `ConnectSessions` table (as
//!   Sequelize made it) and checks its columns; errors name the column and the SQL that fixes it.
//! - [`Store::with_model`] takes any [`SessionModel`] of yours.
//!
//! # Features
//!
//! | feature | what it adds | default |
//! |---|---|---|
//! | `sqlite` | [`ConnectSession`] on sqlx's `SqlitePool` (SQLite bundled) | yes |
//! | `postgres` | [`ConnectSession`] on sqlx's `PgPool` | no |
//! | `mysql` | [`ConnectSession`] on sqlx's `MySqlPool` (MySQL and MariaDB) | no |
//! | `rusqlite` | [`ConnectSession`] on a `RusqliteConnection` (SQLite bundled) | no |
//! | `tower-sessions` | [`Store`] as a tower-sessions `SessionStore` (axum) | no |
//! | `actix-session` | [`Store`] as an actix-session `SessionStore` | no |
//! | `sea-orm` | the store on the pool inside a SeaORM 2 `DatabaseConnection` | no |
//! | `express` | express-session's signed `connect.sid` cookie as a tower layer (axum extractor), for sessions shared with an Express app | no |
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
    Backend, Connect, ConnectSession, DEFAULT_BATCH, DEFAULT_TABLE, SEQUELIZE_TABLE, TableOptions,
};
pub use error::{BoxError, Error, Result, redact};
pub use memory::{Fallback, MemoryModel};
pub use model::{
    Capabilities, Created, SessionModel, SessionRow, delete_expired_in_batches, load_then_touch,
    touch_is_due,
};
#[cfg(feature = "mysql")]
pub use mysql::MySqlDialect;
#[cfg(feature = "postgres")]
pub use postgres::PostgresDialect;
#[cfg(feature = "rusqlite")]
pub use rusqlite::RusqliteConnection;
pub use serializer::{ExpressJson, Json, Serializer, SessionData};
#[cfg(any(feature = "sqlite", feature = "rusqlite"))]
pub use sqlite::SqliteDialect;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub use sqlx_backend::SqlxDatabase;
pub use store::{DEFAULT_CLEANUP_INTERVAL, DEFAULT_TTL, LATEST, Session, Store};

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

/// The README's examples, compiled as doctests.
#[cfg(all(
    doctest,
    feature = "postgres",
    feature = "mysql",
    feature = "tower-sessions",
    feature = "actix-session",
    feature = "sea-orm",
    feature = "express"
))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
