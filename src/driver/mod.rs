//! How statements reach a database: sqlx's pools, a rusqlite connection, and the pool inside
//! a SeaORM connection, each a [`Backend`](crate::sql::Backend) behind its feature.

#[cfg(feature = "rusqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "rusqlite")))]
pub mod rusqlite;
#[cfg(feature = "sea-orm")]
#[cfg_attr(docsrs, doc(cfg(feature = "sea-orm")))]
pub mod sea_orm;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql")))
)]
pub mod sqlx;

/// How long a SQLite connection the store opened itself waits for a lock another writer holds.
#[cfg(any(feature = "sqlite", feature = "rusqlite"))]
const SQLITE_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
