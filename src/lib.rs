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
//! | `cache` | [`Cached`]: an in-process cache of loaded sessions in front of any model, kept coherent across app instances by [`Invalidation`] (PostgreSQL: `PgNotify`) | no |
//! | `testing` | [`testing`]: the conformance suite of the [`SessionModel`] contract, for a model of your own | no |
//!
//! # Layout
//!
//! A folder is a layer and imports run one way, from the top of this list down (a test,
//! `tests/layout.rs`, holds the source to it):
//!
//! | module | what it holds |
//! |---|---|
//! | `integration/` | the web framework adapters: tower-sessions, actix-session, express-session's cookie |
//! | `store/` | [`Store`]: the policy (ttl, touch, sweeps, serialization); no SQL |
//! | `connect_session/` | [`ConnectSession`], the default model: options, schema, statements, sweeps |
//! | `model/` | the [`SessionModel`] trait, [`SessionRow`], [`MemoryModel`], [`Fallback`], and with `cache` the `Cached` model |
//! | [`sql`] | what SQL backends share: [`Backend`], [`Dialect`](sql::Dialect) and `dialect/<database>.rs`, statements |
//! | [`driver`] | how statements reach a database: sqlx, rusqlite, SeaORM |
//!
//! # Names
//!
//! The store speaks express-session's words, the model the words of a table:
//!
//! | [`Store`] | [`SessionModel`] | what it does |
//! |---|---|---|
//! | [`get`](Store::get) | [`load`](SessionModel::load) | the live session, or none |
//! | [`get_and_touch`](Store::get_and_touch) | [`load_and_touch`](SessionModel::load_and_touch) | the live session, its expiry slid |
//! | [`set`](Store::set) | [`save`](SessionModel::save) | insert or replace |
//! | [`create`](Store::create), [`create_with_fresh_id`](Store::create_with_fresh_id) | [`create`](SessionModel::create) | insert only |
//! | [`update`](Store::update), [`update_session`](Store::update_session) | [`update`](SessionModel::update) | replace a live session only |
//! | [`touch`](Store::touch) | [`touch`](SessionModel::touch) | slide the expiry |
//! | [`destroy`](Store::destroy) | [`destroy`](SessionModel::destroy) | delete one |
//! | [`all`](Store::all) | [`list`](SessionModel::list) | every live session |
//! | [`length`](Store::length) | [`count`](SessionModel::count) | how many are live |
//! | [`clear`](Store::clear) | [`clear`](SessionModel::clear) | delete all |
//! | [`sweep`](Store::sweep) | [`delete_all_expired`](SessionModel::delete_all_expired) (batches of [`delete_expired`](SessionModel::delete_expired)) | delete the expired ones |
mod clock;
mod connect_session;
pub mod driver;
mod error;
pub mod integration;
#[cfg(feature = "cache")]
mod invalidation;
mod model;
mod random;
mod serializer;
pub mod sql;
mod store;
mod task;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
mod time;

pub use clock::{Clock, SystemClock};
pub use connect_session::{ConnectSession, DEFAULT_TABLE, SEQUELIZE_TABLE, TableOptions};
#[cfg(feature = "rusqlite")]
pub use driver::rusqlite::RusqliteConnection;
#[cfg(feature = "sea-orm")]
pub use driver::sea_orm::SeaOrmBackend;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use driver::sqlx::PgBouncerPool;
#[cfg(all(feature = "postgres", feature = "cache"))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "postgres", feature = "cache"))))]
pub use driver::sqlx::PgNotify;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub use driver::sqlx::SqlxDatabase;
pub use error::{BoxError, Error, ErrorClass, RETRIES, Result, redact};
#[cfg(feature = "cache")]
#[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
pub use invalidation::{Evictions, Fingerprint, Invalidate, Invalidation};
#[cfg(feature = "cache")]
#[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
pub use model::{
    CacheConfig, CacheStats, Cached, DEFAULT_LOCAL_CACHE_TTL, DEFAULT_SHARED_CACHE_TTL,
};
pub use model::{
    Capabilities, Created, Fallback, MAX_SID_LEN, MAX_USER_ID_LEN, MemoryModel, SessionModel,
    SessionRow, Slide, Sweep, UserSession, delete_expired_in_batches, load_then_slide,
    load_then_touch, no_user_column, slide_loaded, touch_is_due,
};
pub use serializer::{ExpressJson, Json, Serializer, SessionData};
pub use sql::dialect::{MySqlDialect, PostgresDialect, SqliteDialect};
pub use sql::{Backend, ConnectUrl};
pub use store::{
    DEFAULT_CALL_TIMEOUT, DEFAULT_SWEEP_BATCH, DEFAULT_SWEEP_INTERVAL, DEFAULT_TTL,
    FRESH_ID_ATTEMPTS, MAX_USER_PAGE, Session, Store,
};
pub use time::MAX_EXPIRY;

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

/// A store over a `ConnectSession` table in PostgreSQL reached through PgBouncer (or another
/// pooler) in transaction mode.
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub type PgBouncerStore = Store<ConnectSession<PgBouncerPool>>;

/// A store over a `ConnectSession` table in MySQL or MariaDB.
#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub type MySqlStore = Store<ConnectSession<sqlx::MySqlPool>>;

/// A store over a `ConnectSession` table in SQLite, through rusqlite.
#[cfg(feature = "rusqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "rusqlite")))]
pub type RusqliteStore = Store<ConnectSession<RusqliteConnection>>;

/// A store over a `ConnectSession` table, on the pool of a SeaORM `DatabaseConnection`.
#[cfg(feature = "sea-orm")]
#[cfg_attr(docsrs, doc(cfg(feature = "sea-orm")))]
pub type SeaOrmStore = Store<ConnectSession<SeaOrmBackend>>;

/// The README's examples, compiled as doctests.
#[cfg(all(
    doctest,
    feature = "postgres",
    feature = "mysql",
    feature = "tower-sessions",
    feature = "actix-session",
    feature = "sea-orm",
    feature = "express",
    feature = "testing",
    feature = "cache"
))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
