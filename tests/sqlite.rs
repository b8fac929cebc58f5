//! Every suite on sqlx SQLite (a fresh file per test): conformance (plain and versioned
//! tables), differential, schema and reliability.

mod common;

use common::reliability::RelCtx;
use common::schema::SchemaCtx;
use common::{Ctx, db, raw_sqlx, table_ctx};
use sequelstore::{ConnectSession, ConnectUrl};
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
        backends.push(SqlitePool::connect_url(&url).await.unwrap());
    }
    Some(RelCtx::new(backends, test, raw_sqlx, quote))
}

backend_suites!(SqlitePool, make_with, make_schema, make_rel);

/// Inserts `n` rows named `{prefix}{i}`, expired an hour ago or live for a day.
async fn insert_rows(pool: &SqlitePool, table: &str, prefix: &str, n: usize, expired: bool) {
    let expires = match expired {
        true => HOUR_AGO,
        false => "strftime('%Y-%m-%d %H:%M:%f +00:00', 'now', '+1 day')",
    };
    let sql = format!(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {n}) \
         INSERT INTO \"{table}\" (sid, data, expires, createdAt, updatedAt) \
         SELECT '{prefix}' || i, '{{}}', {expires}, {expires}, {expires} FROM n"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(pool)
        .await
        .unwrap();
}

async fn rows_left(pool: &SqlitePool, table: &str) -> (i64, i64) {
    let sql =
        format!("SELECT COUNT(*), COUNT(CASE WHEN sid LIKE 'live%' THEN 1 END) FROM \"{table}\"");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Live rows before, between and after runs of expired ones: a batch stops at its `limit`th
/// expired row, the next starts after it, and no live row goes.
async fn sweep_walks_the_table(pool: SqlitePool, table: &str) {
    use sequelstore::SessionModel;
    let model = ConnectSession::discover_table(pool.clone(), table)
        .await
        .unwrap();
    insert_rows(&pool, table, "live-a", 300, false).await;
    insert_rows(&pool, table, "old-a", 1000, true).await;
    insert_rows(&pool, table, "live-b", 200, false).await;
    insert_rows(&pool, table, "old-b", 1500, true).await;
    insert_rows(&pool, table, "live-c", 7, false).await;
    let now = chrono::Utc::now();

    assert_eq!(model.delete_expired(now, 400).await.unwrap(), 400);
    assert_eq!(rows_left(&pool, table).await, (3007 - 400, 507));
    assert_eq!(
        model.delete_all_expired(now, 1000).await.unwrap().removed,
        2100
    );
    assert_eq!(rows_left(&pool, table).await, (507, 507));
    assert_eq!(
        model.delete_all_expired(now, 1000).await.unwrap().removed,
        0
    );
    assert_eq!(model.count(now).await.unwrap(), 507);
}

#[tokio::test]
async fn auto_makes_no_expires_index_and_sweeps_by_rowid() {
    let pool = db::sqlite("auto_makes_no_expires_index").await;
    ConnectSession::auto_table(pool.clone(), "sessions")
        .await
        .unwrap();
    let indexes: Vec<(String,)> =
        sqlx::query_as("SELECT name FROM pragma_index_list('sessions') WHERE origin = 'c'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(indexes, vec![], "auto made an index of its own on SQLite");
    sweep_walks_the_table(pool, "sessions").await;
}

#[tokio::test]
async fn a_table_with_an_expires_index_sweeps_the_same() {
    let pool = db::sqlite("expires_index_sweeps_the_same").await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "{}; CREATE INDEX \"sessions_expires_idx\" ON \"sessions\" (\"expires\")",
        db::sqlite_sequelize_ddl("sessions")
    )))
    .execute(&pool)
    .await
    .unwrap();
    sweep_walks_the_table(pool, "sessions").await;
}

#[tokio::test]
async fn a_without_rowid_table_is_swept_by_sid() {
    let pool = db::sqlite("without_rowid_swept_by_sid").await;
    sqlx::raw_sql(
        "CREATE TABLE \"sessions\" (\"sid\" VARCHAR(255) NOT NULL PRIMARY KEY, \
         \"expires\" DATETIME, \"data\" TEXT, \"createdAt\" DATETIME NOT NULL, \
         \"updatedAt\" DATETIME NOT NULL) WITHOUT ROWID",
    )
    .execute(&pool)
    .await
    .unwrap();
    sweep_walks_the_table(pool, "sessions").await;
}

/// With no busy timeout at all, a write that finds SQLite's lock taken fails at once
/// ("database is locked"). Sixteen tasks writing through one store never get there: the model
/// queues its writes in the process, one at a time.
#[tokio::test]
async fn writes_from_many_tasks_queue_instead_of_failing_on_the_lock() {
    use std::str::FromStr;
    use std::time::Duration;

    use sequelstore::{SessionData, Store};
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

    let options = SqliteConnectOptions::from_str(&db::temp_sqlite_url("writes_queue"))
        .unwrap()
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::ZERO);
    let pool = SqlitePoolOptions::new()
        .max_connections(16)
        .connect_with(options)
        .await
        .unwrap();
    let store = Store::auto(pool).await.unwrap().with_sweep_interval(None);
    let mut tasks = Vec::new();
    for task in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut data = SessionData::new();
            for i in 0..40 {
                let sid = format!("task{task}-session{}", i % 4);
                data.insert("n".into(), i.into());
                store.set(&sid, &data, None).await?;
                store.touch(&sid, None).await?;
                store.get_and_touch(&sid, None).await?;
                if i % 10 == 9 {
                    store.destroy(&sid).await?;
                }
            }
            Ok::<(), sequelstore::Error>(())
        }));
    }
    for task in tasks {
        task.await
            .unwrap()
            .expect("no write failed on SQLite's lock");
    }
    // Each task's session 3 was destroyed last (at i = 39); sessions 0-2 are live.
    assert_eq!(store.length().await.unwrap(), 16 * 3);
}

sqlite_tests!(make_with);

/// A model's `Debug` names its dialect and table (and nothing of the sessions).
#[tokio::test]
async fn the_models_debug_names_dialect_and_table() {
    let ctx = make_with("model_debug", false).await.unwrap();
    let shown = format!("{:?}", ctx.model);
    assert!(
        shown.contains("ConnectSession") && shown.contains("SQLite") && shown.contains(&ctx.table),
        "{shown}"
    );
    ctx.finish().await;
}

/// A table that keeps no `updatedAt` (made by hand, found by `discover`) cannot tell a
/// session's lifetime: a slide by the session's own lifetime goes to now + the ttl there.
#[tokio::test]
async fn a_slide_on_a_table_without_updated_at_goes_to_the_ttl() {
    let pool = db::sqlite("slide_without_updated_at").await;
    sqlx::raw_sql(
        "CREATE TABLE \"sessions\" (\"sid\" VARCHAR(255) NOT NULL PRIMARY KEY, \
         \"expires\" DATETIME, \"data\" TEXT)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let model = ConnectSession::discover_table(pool.clone(), "sessions")
        .await
        .unwrap();
    let ttl = std::time::Duration::from_secs(3600);
    let store = sequelstore::Store::with_model(model)
        .with_sweep_interval(None)
        .with_ttl(ttl);
    let data = sequelstore::SessionData::from_iter([("user".to_string(), "ann".into())]);
    let soon = chrono::Utc::now() + chrono::TimeDelta::minutes(5);
    store.set("s", &data, Some(soon)).await.unwrap();
    let before = store.now();
    let slid = store.get_and_touch("s", None).await.unwrap().unwrap();
    let expires = slid.expires.unwrap();
    assert!(
        expires >= before + chrono::TimeDelta::minutes(59),
        "{expires}"
    );
    assert_eq!(
        store.get("s").await.unwrap().unwrap().expires,
        Some(expires)
    );
}
