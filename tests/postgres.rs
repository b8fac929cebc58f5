//! Every suite on PostgreSQL (`POSTGRES_URL`): conformance (plain and versioned tables),
//! differential, schema and reliability.

mod common;

use common::reliability::RelCtx;
use common::schema::SchemaCtx;
use common::{Ctx, db, raw_sqlx, table_ctx};
use sequelstore::{ConnectSession, SessionModel};
use sqlx::PgPool;

fn quote(s: &str) -> String {
    format!("\"{s}\"")
}

async fn make_with(test: &str, versioned: bool) -> Option<Ctx<ConnectSession<PgPool>>> {
    let pool = db::postgres().await?;
    let raw = raw_sqlx(&pool);
    Some(
        table_ctx(
            pool,
            test,
            versioned,
            raw,
            quote,
            "now() - interval '1 hour'",
        )
        .await,
    )
}

/// The table Sequelize 6 creates for the `ConnectSession` model on PostgreSQL.
fn sequelize_ddl(table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS \"{table}\" (\"sid\" VARCHAR(255), \"expires\" TIMESTAMP WITH TIME ZONE, \
         \"data\" TEXT, \"createdAt\" TIMESTAMP WITH TIME ZONE NOT NULL, \
         \"updatedAt\" TIMESTAMP WITH TIME ZONE NOT NULL, PRIMARY KEY (\"sid\"))"
    )
}

async fn make_schema(test: &str) -> Option<SchemaCtx<PgPool>> {
    let (pool, drop) = db::postgres_isolated(test).await?;
    Some(SchemaCtx {
        raw: raw_sqlx(&pool),
        backend: pool,
        sequelize_ddl,
        no_expires_ddl: |t| {
            format!(
                "CREATE TABLE \"{t}\" (\"sid\" VARCHAR(255) PRIMARY KEY, \"data\" TEXT, \"createdAt\" TIMESTAMPTZ NOT NULL, \"updatedAt\" TIMESTAMPTZ NOT NULL)"
            )
        },
        wrong_expires_ddl: |t| {
            format!(
                "CREATE TABLE \"{t}\" (\"sid\" VARCHAR(255) PRIMARY KEY, \"expires\" TIMESTAMP, \"data\" TEXT)"
            )
        },
        cleanup: Some(drop),
    })
}

async fn make_rel(test: &str) -> Option<RelCtx<PgPool>> {
    let mut backends = Vec::new();
    for _ in 0..4 {
        backends.push(db::postgres().await?);
    }
    Some(RelCtx::new(backends, test, raw_sqlx, quote))
}

backend_suites!(PgPool, make_with, make_schema, make_rel);

/// Issue 12 item 14: the throttled load-and-slide is one statement, a writable CTE whose other
/// branch reads the row as it was when the statement began. When a destroy holds the row and
/// commits while the statement's UPDATE waits for it, the UPDATE finds the row gone and writes
/// nothing, and the read branch may still return the row: the request began before the sign-out
/// was acknowledged, and reads the session as it was then, as a plain load that began at the same
/// moment would. What must hold, and is checked here with the interleaving forced: nothing brings
/// the row back, and every call after the destroy committed finds no session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destroy_committing_during_a_throttled_slide_stays_destroyed() {
    let hour = chrono::Utc::now() + chrono::TimeDelta::hours(1);
    destroy_during_a_slide("cte_destroy_race", Some(hour), "WITH touched AS%").await;
}

/// The same interleaving for the slide by the session's own lifetime (`get_and_touch(sid,
/// None)`, what tower-sessions does): a read, then a touch whose `UPDATE` waits for the destroy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destroy_committing_during_a_slide_by_lifetime_stays_destroyed() {
    destroy_during_a_slide("lifetime_destroy_race", None, "UPDATE %").await;
}

async fn destroy_during_a_slide(
    name: &str,
    slide_to: Option<chrono::DateTime<chrono::Utc>>,
    statement: &str,
) {
    use sqlx::Connection;

    let Some(pool) = db::postgres().await else {
        return;
    };
    let table = db::unique_table(name);
    let model = ConnectSession::options(pool.clone())
        .table(&table)
        .auto()
        .await
        .unwrap();
    let store = sequelstore::Store::with_model(model)
        .with_sweep_interval(None)
        .with_ttl(std::time::Duration::from_secs(3600))
        .with_touch_after(std::time::Duration::from_secs(60));
    let data = sequelstore::SessionData::from_iter([("user".to_string(), "ann".into())]);
    // Ten seconds left of an hour: the touch is due, so the UPDATE needs the row's lock.
    let soon = chrono::Utc::now() + chrono::TimeDelta::seconds(10);
    store.set("s", &data, Some(soon)).await.unwrap();
    // Last written an hour ago, so a slide by the session's own lifetime is due too.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "UPDATE \"{table}\" SET \"updatedAt\" = now() - interval '1 hour'"
    )))
    .execute(&pool)
    .await
    .unwrap();

    let mut destroyer =
        sqlx::PgConnection::connect(&db::server_url("POSTGRES_URL", db::DEFAULT_POSTGRES_URL))
            .await
            .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "BEGIN; DELETE FROM \"{table}\" WHERE sid = 's'"
    )))
    .execute(&mut destroyer)
    .await
    .unwrap();

    let sliding = tokio::spawn({
        let store = store.clone();
        async move { store.get_and_touch("s", slide_to).await }
    });
    // Wait (30 s at most) until the statement waits for the destroy's lock.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (waiting,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
             AND query LIKE $1",
        )
        .bind(statement)
        .fetch_one(&pool)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the slide never waited for the lock"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    sqlx::raw_sql("COMMIT")
        .execute(&mut destroyer)
        .await
        .unwrap();

    let in_flight = sliding.await.unwrap().unwrap();
    eprintln!(
        "the request in flight during the destroy got {}",
        if in_flight.is_some() {
            "the session as it was"
        } else {
            "no session"
        }
    );
    if let Some(session) = &in_flight {
        // The state as it was when the request began: not slid, since the UPDATE wrote nothing.
        assert_eq!(session.data, data);
        assert_eq!(
            session.expires.map(|t| t.timestamp_millis()),
            Some(soon.timestamp_millis())
        );
    }
    let (rows,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM \"{table}\""
    )))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(rows, 0, "the destroyed session came back");
    assert!(store.get("s").await.unwrap().is_none());
    assert!(store.get_and_touch("s", None).await.unwrap().is_none());
    assert!(!store.touch("s", None).await.unwrap());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP TABLE \"{table}\"")))
        .execute(&pool)
        .await
        .unwrap();
}

/// Issue 11 item 1: a sweep that finds the sweep lock held by another instance deletes nothing
/// and says so (`lock_busy`), rather than reporting "0 rows"; once the holder's transaction
/// ends, the next sweep runs. The lock is transaction-scoped: here another connection holds it
/// in an open transaction, as a sweep's statement holds it while it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_that_finds_the_lock_held_says_so() {
    use sqlx::Connection;

    let Some(pool) = db::postgres().await else {
        return;
    };
    let table = db::unique_table("sweep_lock_busy");
    let model = ConnectSession::options(pool.clone())
        .table(&table)
        .auto()
        .await
        .unwrap();
    let store = sequelstore::Store::with_model(model).with_sweep_interval(None);
    let past = chrono::Utc::now() - chrono::TimeDelta::hours(1);
    let data = sequelstore::SessionData::from_iter([("user".to_string(), "ann".into())]);
    for i in 0..5 {
        store
            .set(&format!("old-{i}"), &data, Some(past))
            .await
            .unwrap();
    }
    let mut holder =
        sqlx::PgConnection::connect(&db::server_url("POSTGRES_URL", db::DEFAULT_POSTGRES_URL))
            .await
            .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "BEGIN; SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.{table}'))"
    )))
    .execute(&mut holder)
    .await
    .unwrap();
    assert_eq!(
        store.sweep().await.unwrap(),
        sequelstore::Sweep::lock_busy(0)
    );
    assert_eq!(
        store
            .model()
            .count(past - chrono::TimeDelta::hours(1))
            .await
            .unwrap(),
        5
    );
    sqlx::raw_sql("COMMIT").execute(&mut holder).await.unwrap();
    assert_eq!(
        store.sweep().await.unwrap(),
        sequelstore::Sweep::finished(5)
    );
}

/// Issue 11 item 2: a write refused because the server takes none (here every connection of
/// the pool is read-only, as a primary demoted by a failover is) is classed as such, and the
/// connection that answered so is closed, not handed out again; reads still work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_answers_read_only_is_closed() {
    use sqlx::Executor;

    let Some(pool) = db::postgres().await else {
        return;
    };
    let table = db::unique_table("read_only");
    ConnectSession::options(pool.clone())
        .table(&table)
        .auto()
        .await
        .unwrap();
    let read_only: PgPool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("SET SESSION default_transaction_read_only = on")
                    .await?;
                Ok(())
            })
        })
        .connect(&db::server_url("POSTGRES_URL", db::DEFAULT_POSTGRES_URL))
        .await
        .unwrap();
    let model = ConnectSession::options(read_only.clone())
        .table(&table)
        .discover()
        .await
        .unwrap();
    let store = sequelstore::Store::with_model(model).with_sweep_interval(None);
    assert!(store.get("nobody").await.unwrap().is_none());
    assert!(
        read_only.size() > 0,
        "the read left its connection in the pool"
    );
    let data = sequelstore::SessionData::from_iter([("user".to_string(), "ann".into())]);
    let err = store.set("s", &data, None).await.unwrap_err();
    assert!(err.is_read_only(), "{err:?}");
    assert_eq!(err.class(), sequelstore::ErrorClass::ReadOnly);
    // Closing happens as the connection is dropped: wait for it (30 s at most).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while read_only.size() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} connections that answered read-only are still pooled",
            read_only.size()
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(store.get("s").await.unwrap().is_none());
}

/// Issue 11 item 4: a store call that the database keeps waiting (here on a row lock another
/// transaction holds; at a failover, on a synchronous standby that is gone) ends after the
/// store's call timeout with `Error::TimedOut`, not never; the store serves again after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_the_database_keeps_waiting_times_out() {
    use sqlx::Connection;

    let Some(pool) = db::postgres().await else {
        return;
    };
    let table = db::unique_table("call_timeout");
    let model = ConnectSession::options(pool.clone())
        .table(&table)
        .auto()
        .await
        .unwrap();
    let limit = std::time::Duration::from_millis(300);
    let store = sequelstore::Store::with_model(model)
        .with_sweep_interval(None)
        .with_call_timeout(Some(limit));
    assert_eq!(store.call_timeout(), Some(limit));
    let data = sequelstore::SessionData::from_iter([("user".to_string(), "ann".into())]);
    store.set("s", &data, None).await.unwrap();
    let mut holder =
        sqlx::PgConnection::connect(&db::server_url("POSTGRES_URL", db::DEFAULT_POSTGRES_URL))
            .await
            .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "BEGIN; SELECT * FROM \"{table}\" WHERE sid = 's' FOR UPDATE"
    )))
    .execute(&mut holder)
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let err = store.update("s", &data, None).await.unwrap_err();
    assert!(
        matches!(err, sequelstore::Error::TimedOut { after } if after == limit),
        "{err:?}"
    );
    assert!(err.is_connection(), "{err:?}");
    assert!(started.elapsed() >= limit);
    sqlx::raw_sql("COMMIT").execute(&mut holder).await.unwrap();
    assert!(store.update("s", &data, None).await.unwrap());
}
