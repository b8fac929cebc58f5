//! The conformance and schema suites on SQLite through rusqlite (a fresh file per test). Raw
//! SQL goes through a second connection, as another client's would.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::reliability::RelCtx;
use common::schema::SchemaCtx;
use common::{Ctx, RawSql, db};
use sequelstore::{ConnectSession, RusqliteConnection, SessionModel};

fn raw(path: PathBuf) -> RawSql {
    Arc::new(move |sql: String| {
        let path = path.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let conn = rusqlite::Connection::open(&path).expect("open the test file");
                conn.busy_timeout(std::time::Duration::from_secs(5))
                    .unwrap();
                conn.execute_batch(&sql)
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            })
            .await
            .unwrap();
        })
    })
}

async fn open(test: &str) -> (RusqliteConnection, PathBuf) {
    let path = db::temp_sqlite_path(test);
    let conn = RusqliteConnection::open(&path).expect("a temporary SQLite file opens");
    (conn, path)
}

async fn make(test: &str) -> Option<Ctx<ConnectSession<RusqliteConnection>>> {
    make_with(test, false).await
}

async fn make_versioned(test: &str) -> Option<Ctx<ConnectSession<RusqliteConnection>>> {
    make_with(test, true).await
}

async fn make_with(test: &str, versioned: bool) -> Option<Ctx<ConnectSession<RusqliteConnection>>> {
    let (conn, path) = open(test).await;
    let table = db::unique_table(test);
    let model = ConnectSession::options(conn)
        .table(&table)
        .versioned(versioned)
        .auto()
        .await
        .unwrap();
    assert_eq!(model.capabilities().version, versioned);
    Some(Ctx {
        model: Arc::new(model),
        table,
        raw: Some(raw(path)),
        quote: |s| format!("\"{s}\""),
        hour_ago: "strftime('%Y-%m-%d %H:%M:%f +00:00', 'now', '-1 hour')",
    })
}

async fn make_schema(test: &str) -> Option<SchemaCtx<RusqliteConnection>> {
    let (conn, path) = open(test).await;
    Some(SchemaCtx {
        backend: conn,
        raw: raw(path),
        sequelize_ddl: |t| {
            format!(
                "CREATE TABLE IF NOT EXISTS `{t}` (`sid` VARCHAR(255) PRIMARY KEY, `expires` DATETIME, \
                 `data` TEXT, `createdAt` DATETIME NOT NULL, `updatedAt` DATETIME NOT NULL)"
            )
        },
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

async fn make_rel(test: &str) -> Option<RelCtx<RusqliteConnection>> {
    let path = db::temp_sqlite_path(test);
    let mut backends = Vec::new();
    for _ in 0..4 {
        backends.push(RusqliteConnection::open(&path).unwrap());
    }
    Some(RelCtx {
        backends,
        table: db::unique_table(test),
        raw: raw(path),
        quote: |s| format!("\"{s}\""),
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
