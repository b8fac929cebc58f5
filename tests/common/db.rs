//! Reaching the test databases: unique table names, temporary SQLite files, and the server URLs
//! from `POSTGRES_URL` / `MYSQL_URL`, read at run time. A server that cannot be reached skips its
//! tests loudly, or fails them when `CI=true`.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The PostgreSQL test server, unless `POSTGRES_URL` names another.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// The MariaDB test server, unless `MYSQL_URL` names another.
pub const DEFAULT_MYSQL_URL: &str = "mysql://root@127.0.0.1:3306/test";

/// A table name no other test (in this or another process) uses: `<prefix>_<test>_<unique>`.
pub fn unique_table(test: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tag = format!("{:x}{:x}{n:x}", std::process::id(), nanos);
    let test: String = test
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(50usize.saturating_sub(4 + tag.len()))
        .collect();
    format!("ss_{test}_{tag}").to_ascii_lowercase()
}

/// A fresh SQLite file path in the temporary folder.
pub fn temp_sqlite_path(test: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{}.db", unique_table(test)))
}

/// `sqlite://` URL of a fresh file.
pub fn temp_sqlite_url(test: &str) -> String {
    format!("sqlite://{}", temp_sqlite_path(test).display())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Reports that a server is unreachable: a panic in CI, a loud skip elsewhere.
pub fn unreachable_server(name: &str, url: &str, err: &dyn std::fmt::Display) {
    let msg = format!("{name} at {url} cannot be reached ({err}); its tests did not run");
    if in_ci() {
        panic!("{msg} (CI=true makes this a failure)");
    }
    eprintln!("\n!!! SKIPPED: {msg}. Start it or set the URL variable. !!!\n");
}

/// The URL of a server from its variable, or the default.
pub fn server_url(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

/// A PostgreSQL pool on `POSTGRES_URL`, or `None` (after saying so) when unreachable.
#[cfg(feature = "postgres")]
pub async fn postgres() -> Option<sqlx::PgPool> {
    let url = server_url("POSTGRES_URL", DEFAULT_POSTGRES_URL);
    match sqlx::postgres::PgPoolOptions::new()
        .max_connections(20)
        .acquire_timeout(std::time::Duration::from_secs(20))
        .connect(&url)
        .await
    {
        Ok(pool) => Some(pool),
        Err(err) => {
            unreachable_server("PostgreSQL", &url, &err);
            None
        }
    }
}

/// A MySQL/MariaDB pool on `MYSQL_URL`, or `None` (after saying so) when unreachable.
#[cfg(feature = "mysql")]
pub async fn mysql() -> Option<sqlx::MySqlPool> {
    let url = server_url("MYSQL_URL", DEFAULT_MYSQL_URL);
    match sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(20)
        .acquire_timeout(std::time::Duration::from_secs(20))
        .connect(&url)
        .await
    {
        Ok(pool) => Some(pool),
        Err(err) => {
            unreachable_server("MariaDB/MySQL", &url, &err);
            None
        }
    }
}

/// A sqlx SQLite pool on a fresh file, opened as the store opens its own (WAL, busy timeout).
#[cfg(feature = "sqlite")]
pub async fn sqlite(test: &str) -> sqlx::SqlitePool {
    <sqlx::SqlitePool as sequelstore::ConnectUrl>::connect_url(&temp_sqlite_url(test))
        .await
        .expect("a temporary SQLite file opens")
}

/// A pool whose `search_path` is a fresh schema of its own, and the SQL that drops it.
#[cfg(feature = "postgres")]
pub async fn postgres_isolated(test: &str) -> Option<(sqlx::PgPool, String)> {
    postgres_isolated_named(test)
        .await
        .map(|(pool, drop, _)| (pool, drop))
}

/// [`postgres_isolated`], with the schema's name.
#[cfg(feature = "postgres")]
pub async fn postgres_isolated_named(test: &str) -> Option<(sqlx::PgPool, String, String)> {
    use std::str::FromStr;
    let admin = postgres().await?;
    let schema = unique_table(test);
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
        .execute(&admin)
        .await
        .expect("CREATE SCHEMA");
    let url = server_url("POSTGRES_URL", DEFAULT_POSTGRES_URL);
    let options = sqlx::postgres::PgConnectOptions::from_str(&url)
        .expect("valid POSTGRES_URL")
        .options([("search_path", schema.as_str())]);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(10)
        .connect_with(options)
        .await
        .expect("connect to the isolated schema");
    Some((pool, format!("DROP SCHEMA \"{schema}\" CASCADE"), schema))
}

/// A pool on a fresh database of its own, and the SQL that drops it.
#[cfg(feature = "mysql")]
pub async fn mysql_isolated(test: &str) -> Option<(sqlx::MySqlPool, String)> {
    mysql_isolated_named(test)
        .await
        .map(|(pool, drop, _)| (pool, drop))
}

/// [`mysql_isolated`], with the database's name.
#[cfg(feature = "mysql")]
pub async fn mysql_isolated_named(test: &str) -> Option<(sqlx::MySqlPool, String, String)> {
    use std::str::FromStr;
    let admin = mysql().await?;
    let name = unique_table(test);
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE `{name}`")))
        .execute(&admin)
        .await
        .expect("CREATE DATABASE");
    let url = server_url("MYSQL_URL", DEFAULT_MYSQL_URL);
    let options = sqlx::mysql::MySqlConnectOptions::from_str(&url)
        .expect("valid MYSQL_URL")
        .database(&name);
    let pool = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(10)
        .connect_with(options)
        .await
        .expect("connect to the isolated database");
    Some((pool, format!("DROP DATABASE `{name}`"), name))
}

/// The table Sequelize 6 creates for the `ConnectSession` model on SQLite.
pub fn sqlite_sequelize_ddl(table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS `{table}` (`sid` VARCHAR(255) PRIMARY KEY, `expires` DATETIME, \
         `data` TEXT, `createdAt` DATETIME NOT NULL, `updatedAt` DATETIME NOT NULL)"
    )
}

/// A SQLite sessions table without `expires`.
pub fn sqlite_no_expires_ddl(table: &str) -> String {
    format!(
        "CREATE TABLE `{table}` (`sid` VARCHAR(255) PRIMARY KEY, `data` TEXT, \
         `createdAt` DATETIME NOT NULL, `updatedAt` DATETIME NOT NULL)"
    )
}

/// A SQLite sessions table whose `expires` holds integers.
pub fn sqlite_wrong_expires_ddl(table: &str) -> String {
    format!(
        "CREATE TABLE `{table}` (`sid` VARCHAR(255) PRIMARY KEY, `expires` INTEGER, `data` TEXT)"
    )
}

/// The URL a cluster script set up (`scripts/cluster/*.sh start DIR` writes `DIR/env`), read
/// from `var`, or `None` after saying so: a panic in CI, a loud skip elsewhere.
pub fn cluster_url(var: &str, script: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let msg = format!(
                "{var} is not set, so the tests of this setup did not run; start it with \
                 `scripts/cluster/{script} start DIR` and export what DIR/env says \
                 (or run `.ci/run`, which does both)"
            );
            if in_ci() {
                panic!("{msg} (CI=true makes this a failure)");
            }
            eprintln!("\n!!! SKIPPED: {msg} !!!\n");
            None
        }
    }
}

/// A pool through the PgBouncer of `PGBOUNCER_URL` (transaction mode), wrapped as the store
/// must use it there.
#[cfg(feature = "postgres")]
pub async fn pgbouncer() -> Option<sequelstore::PgBouncerPool> {
    let url = cluster_url("PGBOUNCER_URL", "pgbouncer.sh")?;
    match sqlx::postgres::PgPoolOptions::new()
        .max_connections(20)
        .acquire_timeout(std::time::Duration::from_secs(20))
        .connect(&url)
        .await
    {
        Ok(pool) => Some(sequelstore::PgBouncerPool::new(pool)),
        Err(err) => {
            unreachable_server("PgBouncer", &url, &err);
            None
        }
    }
}
