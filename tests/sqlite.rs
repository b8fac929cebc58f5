//! The conformance and schema suites on sqlx SQLite (a fresh file per test).

mod common;

use std::sync::Arc;

use common::reliability::RelCtx;
use common::schema::SchemaCtx;
use common::{Ctx, RawSql, db};
use sequelstore::{ConnectSession, SessionModel};
use sqlx::SqlitePool;

fn raw(pool: &SqlitePool) -> RawSql {
    let pool = pool.clone();
    Arc::new(move |sql: String| {
        let pool = pool.clone();
        Box::pin(async move {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
                .execute(&pool)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        })
    })
}

fn quote(s: &str) -> String {
    format!("\"{s}\"")
}

async fn make(test: &str) -> Option<Ctx<ConnectSessionOf>> {
    make_with(test, false).await
}

async fn make_versioned(test: &str) -> Option<Ctx<ConnectSessionOf>> {
    make_with(test, true).await
}

type ConnectSessionOf = ConnectSession<SqlitePool>;

async fn make_with(test: &str, versioned: bool) -> Option<Ctx<ConnectSession<SqlitePool>>> {
    let pool = db::sqlite(test).await;
    let table = db::unique_table(test);
    let model = ConnectSession::options(pool.clone())
        .table(&table)
        .versioned(versioned)
        .auto()
        .await
        .unwrap();
    assert_eq!(model.capabilities().version, versioned);
    Some(Ctx {
        model: Arc::new(model),
        table,
        raw: Some(raw(&pool)),
        quote,
        hour_ago: "strftime('%Y-%m-%d %H:%M:%f +00:00', 'now', '-1 hour')",
    })
}

/// The table Sequelize 6 creates for the `ConnectSession` model on SQLite.
pub fn sequelize_ddl(table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS `{table}` (`sid` VARCHAR(255) PRIMARY KEY, `expires` DATETIME, \
         `data` TEXT, `createdAt` DATETIME NOT NULL, `updatedAt` DATETIME NOT NULL)"
    )
}

async fn make_schema(test: &str) -> Option<SchemaCtx<SqlitePool>> {
    let pool = db::sqlite(test).await;
    Some(SchemaCtx {
        raw: raw(&pool),
        backend: pool,
        sequelize_ddl,
        no_expires_ddl: |t| {
            format!(
                "CREATE TABLE `{t}` (`sid` VARCHAR(255) PRIMARY KEY, `data` TEXT, `createdAt` DATETIME NOT NULL, `updatedAt` DATETIME NOT NULL)"
            )
        },
        wrong_expires_ddl: |t| {
            format!(
                "CREATE TABLE `{t}` (`sid` VARCHAR(255) PRIMARY KEY, `expires` INTEGER, `data` TEXT)"
            )
        },
        cleanup: None,
    })
}

async fn make_rel(test: &str) -> Option<RelCtx<SqlitePool>> {
    let url = db::temp_sqlite_url(test);
    let mut backends = Vec::new();
    for _ in 0..4 {
        backends.push(
            <SqlitePool as sequelstore::Connect>::connect(&url)
                .await
                .unwrap(),
        );
    }
    Some(RelCtx {
        raw: raw(&backends[0]),
        backends,
        table: db::unique_table(test),
        quote,
    })
}

conformance_tests!(make);

mod versioned {
    use super::*;
    conformance_tests!(make_versioned);
    differential_test!(make_versioned);
}

mod plain {
    use super::*;
    differential_test!(make);
}

mod schema {
    use super::*;
    schema_tests!(make_schema);
}

mod reliability {
    use super::*;
    reliability_tests!(make_rel);
}
