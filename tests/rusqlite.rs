//! Every suite on SQLite through rusqlite (a fresh file per test): conformance (plain and
//! versioned tables), differential, schema and reliability. Raw SQL goes through a second
//! connection, as another client's would.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::reliability::RelCtx;
use common::schema::SchemaCtx;
use common::{Ctx, RawSql, db, table_ctx};
use sequelstore::{ConnectSession, RusqliteConnection};

/// An hour ago, in the text form the table stores.
const HOUR_AGO: &str = "strftime('%Y-%m-%d %H:%M:%f +00:00', 'now', '-1 hour')";

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

fn quote(s: &str) -> String {
    format!("\"{s}\"")
}

fn open(test: &str) -> (RusqliteConnection, PathBuf) {
    let path = db::temp_sqlite_path(test);
    let conn = RusqliteConnection::open(&path).expect("a temporary SQLite file opens");
    (conn, path)
}

async fn make_with(test: &str, versioned: bool) -> Option<Ctx<ConnectSession<RusqliteConnection>>> {
    let (conn, path) = open(test);
    Some(table_ctx(conn, test, versioned, raw(path), quote, HOUR_AGO).await)
}

async fn make_schema(test: &str) -> Option<SchemaCtx<RusqliteConnection>> {
    let (conn, path) = open(test);
    Some(SchemaCtx {
        backend: conn,
        raw: raw(path),
        sequelize_ddl: db::sqlite_sequelize_ddl,
        no_expires_ddl: db::sqlite_no_expires_ddl,
        wrong_expires_ddl: db::sqlite_wrong_expires_ddl,
        cleanup: None,
    })
}

async fn make_rel(test: &str) -> Option<RelCtx<RusqliteConnection>> {
    let path = db::temp_sqlite_path(test);
    let backends = (0..4)
        .map(|_| RusqliteConnection::open(&path).unwrap())
        .collect();
    Some(RelCtx::new(backends, test, |_| raw(path.clone()), quote))
}

backend_suites!(RusqliteConnection, make_with, make_schema, make_rel);

sqlite_tests!(make_with);
