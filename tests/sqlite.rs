//! Every suite on sqlx SQLite (a fresh file per test): conformance (plain and versioned
//! tables), differential, schema and reliability.

mod common;

use common::reliability::RelCtx;
use common::schema::SchemaCtx;
use common::{Ctx, db, raw_sqlx, table_ctx};
use sequelstore::ConnectSession;
use sqlx::SqlitePool;

/// An hour ago, in the text form the table stores.
const HOUR_AGO: &str = "strftime('%Y-%m-%d %H:%M:%f +00:00', 'now', '-1 hour')";

fn quote(s: &str) -> String {
    format!("\"{s}\"")
}

async fn make_with(test: &str, versioned: bool) -> Option<Ctx<ConnectSession<SqlitePool>>> {
    let pool = db::sqlite(test).await;
    let raw = raw_sqlx(&pool);
    Some(table_ctx(pool, test, versioned, raw, quote, HOUR_AGO).await)
}

async fn make_schema(test: &str) -> Option<SchemaCtx<SqlitePool>> {
    let pool = db::sqlite(test).await;
    Some(SchemaCtx {
        raw: raw_sqlx(&pool),
        backend: pool,
        sequelize_ddl: db::sqlite_sequelize_ddl,
        no_expires_ddl: db::sqlite_no_expires_ddl,
        wrong_expires_ddl: db::sqlite_wrong_expires_ddl,
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
    Some(RelCtx::new(backends, test, raw_sqlx, quote))
}

backend_suites!(SqlitePool, make_with, make_schema, make_rel);
