//! Every suite on MySQL and MariaDB (`MYSQL_URL`): conformance (plain and versioned tables),
//! differential, schema and reliability, and exact ids in a case-insensitive table.

mod common;

use common::reliability::RelCtx;
use common::schema::SchemaCtx;
use common::{Ctx, db, raw_sqlx, table_ctx};
use sequelstore::{ConnectSession, SessionModel};
use sqlx::MySqlPool;

fn quote(s: &str) -> String {
    format!("`{s}`")
}

async fn make_with(test: &str, versioned: bool) -> Option<Ctx<ConnectSession<MySqlPool>>> {
    let pool = db::mysql().await?;
    let raw = raw_sqlx(&pool);
    let hour_ago = "UTC_TIMESTAMP(6) - INTERVAL 1 HOUR";
    Some(table_ctx(pool, test, versioned, raw, quote, hour_ago).await)
}

/// The table Sequelize 6 creates for the `ConnectSession` model on MariaDB.
fn sequelize_ddl(table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS `{table}` (`sid` VARCHAR(255), `expires` DATETIME, `data` TEXT, \
         `createdAt` DATETIME NOT NULL, `updatedAt` DATETIME NOT NULL, PRIMARY KEY (`sid`)) ENGINE=InnoDB"
    )
}

async fn make_schema(test: &str) -> Option<SchemaCtx<MySqlPool>> {
    let (pool, drop) = db::mysql_isolated(test).await?;
    Some(SchemaCtx {
        raw: raw_sqlx(&pool),
        backend: pool,
        sequelize_ddl,
        no_expires_ddl: |t| {
            format!(
                "CREATE TABLE `{t}` (`sid` VARCHAR(255) PRIMARY KEY, `data` TEXT, `createdAt` DATETIME NOT NULL, `updatedAt` DATETIME NOT NULL)"
            )
        },
        wrong_expires_ddl: |t| {
            format!(
                "CREATE TABLE `{t}` (`sid` VARCHAR(255) PRIMARY KEY, `expires` INT, `data` TEXT)"
            )
        },
        cleanup: Some(drop),
    })
}

async fn make_rel(test: &str) -> Option<RelCtx<MySqlPool>> {
    let mut backends = Vec::new();
    for _ in 0..4 {
        backends.push(db::mysql().await?);
    }
    Some(RelCtx::new(backends, test, raw_sqlx, quote))
}

backend_suites!(MySqlPool, make_with, make_schema, make_rel);

/// A table Sequelize made has MariaDB's default collation, blind to case and trailing spaces;
/// ids must still match exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_match_exactly_in_a_case_insensitive_sequelize_table() {
    let Some((pool, drop)) = db::mysql_isolated("exact_ids").await else {
        return;
    };
    raw_sqlx(&pool)(sequelize_ddl("ConnectSessions")).await;
    let store = sequelstore::Store::discover(pool.clone()).await.unwrap();
    let data = sequelstore::SessionData::from_iter([("n".to_string(), 1.into())]);
    store.set("Abc", &data, None).await.unwrap();
    for other in ["abc", "ABC", "Abc ", "Abc  "] {
        assert!(store.get(other).await.unwrap().is_none(), "{other:?}");
        assert!(!store.touch(other, None).await.unwrap(), "{other:?}");
        assert!(
            !store.update(other, &data, None).await.unwrap(),
            "{other:?}"
        );
        assert!(!store.destroy(other).await.unwrap(), "{other:?}");
    }
    assert_eq!(store.get("Abc").await.unwrap().unwrap().data, data);
    raw_sqlx(&pool)(drop).await;
}

/// MySQL's `utf8mb4_bin`, the collation of the tables the store makes, pads trailing spaces
/// (`'abc' = 'abc '` is true), so an upsert of `"abc "` landed on the row `"abc"` and
/// overwrote that session. An id ending in a space is now refused on write, before any SQL;
/// `"abc"` is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_with_a_trailing_space_never_overwrites_another_session() {
    let Some(pool) = db::mysql().await else {
        return;
    };
    let table = db::unique_table("trailing_space");
    let store = sequelstore::Store::auto_table(pool.clone(), &table)
        .await
        .unwrap()
        .with_sweep_interval(None);
    let victim = sequelstore::SessionData::from_iter([("user".to_string(), "ann".into())]);
    let other = sequelstore::SessionData::from_iter([("user".to_string(), "eve".into())]);
    store.set("abc", &victim, None).await.unwrap();
    for id in ["abc ", "abc  "] {
        let err = store.set(id, &other, None).await.unwrap_err();
        assert!(
            matches!(err, sequelstore::Error::InvalidInput(ref m) if m.contains("ends with a space")),
            "{err}"
        );
        let err = store.create(id, &other, None).await.unwrap_err();
        assert!(matches!(err, sequelstore::Error::InvalidInput(_)), "{err}");
        assert!(store.get(id).await.unwrap().is_none(), "{id:?}");
    }
    assert_eq!(store.get("abc").await.unwrap().unwrap().data, victim);
    raw_sqlx(&pool)(format!("DROP TABLE `{table}`")).await;
}

/// A `sid` whose collation does not pad (MariaDB's `utf8mb4_nopad_bin`) tells `abc` from
/// `abc `: there an id ending in a space is stored as it is, beside `abc`, and neither
/// overwrites the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_no_pad_collation_keeps_ids_with_trailing_spaces_apart() {
    let Some(pool) = db::mysql().await else {
        return;
    };
    let table = db::unique_table("no_pad");
    raw_sqlx(&pool)(format!(
        "CREATE TABLE `{table}` (`sid` VARCHAR(255) CHARACTER SET utf8mb4 COLLATE \
         utf8mb4_nopad_bin NOT NULL PRIMARY KEY, `expires` DATETIME(6), `data` MEDIUMTEXT, \
         `createdAt` DATETIME(6) NOT NULL, `updatedAt` DATETIME(6) NOT NULL)"
    ))
    .await;
    let model = ConnectSession::discover_table(pool.clone(), &table)
        .await
        .unwrap();
    let store = sequelstore::Store::with_model(model).with_sweep_interval(None);
    let plain = sequelstore::SessionData::from_iter([("user".to_string(), "ann".into())]);
    let spaced = sequelstore::SessionData::from_iter([("user".to_string(), "bob".into())]);
    store.set("abc", &plain, None).await.unwrap();
    store.set("abc ", &spaced, None).await.unwrap();
    assert_eq!(store.get("abc").await.unwrap().unwrap().data, plain);
    assert_eq!(store.get("abc ").await.unwrap().unwrap().data, spaced);
    raw_sqlx(&pool)(format!("DROP TABLE `{table}`")).await;
}

/// Sequelize's `data TEXT` holds 64 KiB on MariaDB: a larger session is refused loudly,
/// never truncated, and the stored one is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_session_fails_loudly_in_a_sequelize_text_column() {
    let Some((pool, drop)) = db::mysql_isolated("text_limit").await else {
        return;
    };
    raw_sqlx(&pool)(sequelize_ddl("ConnectSessions")).await;
    let store = sequelstore::Store::discover(pool.clone()).await.unwrap();
    let small = sequelstore::SessionData::from_iter([("n".to_string(), 1.into())]);
    store.set("big", &small, None).await.unwrap();
    let big =
        sequelstore::SessionData::from_iter([("blob".to_string(), "x".repeat(70_000).into())]);
    let err = store.set("big", &big, None).await.unwrap_err();
    assert!(
        matches!(err, sequelstore::Error::InvalidInput(ref m) if m.contains("65535") && m.contains("MEDIUMTEXT")),
        "{err}"
    );
    assert_eq!(store.get("big").await.unwrap().unwrap().data, small);
    raw_sqlx(&pool)(drop).await;
}

/// `TIMESTAMP` columns end in 2038 and convert through the session time zone: `discover`
/// refuses them and names the `ALTER TABLE` to `DATETIME(6)`, which then works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamp_columns_are_refused_with_the_fix() {
    let Some((pool, drop)) = db::mysql_isolated("timestamp_cols").await else {
        return;
    };
    let raw = raw_sqlx(&pool);
    raw(
        "CREATE TABLE `ConnectSession` (`sid` VARCHAR(255) PRIMARY KEY, \
         `expires` TIMESTAMP NULL, `data` TEXT, \
         `createdAt` TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, \
         `updatedAt` TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)"
            .to_owned(),
    )
    .await;
    let fix = match sequelstore::Store::discover(pool.clone()).await {
        Err(sequelstore::Error::IncompatibleSchema {
            column,
            problem,
            fix,
            ..
        }) => {
            assert_eq!(column, "expires");
            assert!(problem.contains("2038"), "{problem}");
            assert!(fix.contains("DATETIME(6)"), "{fix}");
            fix
        }
        other => panic!("expected IncompatibleSchema, got {other:?}"),
    };
    raw(fix).await;
    for column in ["createdAt", "updatedAt"] {
        raw(format!(
            "ALTER TABLE `ConnectSession` MODIFY `{column}` DATETIME(6) NOT NULL"
        ))
        .await;
    }
    let store = sequelstore::Store::discover(pool.clone()).await.unwrap();
    let far = chrono::DateTime::parse_from_rfc3339("2100-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let data = sequelstore::SessionData::from_iter([("n".to_string(), 1.into())]);
    store.set("after-2038", &data, Some(far)).await.unwrap();
    assert_eq!(
        store.get("after-2038").await.unwrap().unwrap().expires,
        Some(far)
    );
    raw(drop).await;
}

/// Issue 12 item 4: in a Sequelize table whose `sid` collation ignores case, `set("abc")` used
/// to write over the row `"Abc"` (the upsert finds rows through the collation). Now it is
/// refused with the fix, the other session is untouched, and a save of the exact id, live or
/// expired, still replaces it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_never_writes_over_an_id_that_differs_in_case() {
    let Some((pool, drop)) = db::mysql_isolated("ci_upsert").await else {
        return;
    };
    raw_sqlx(&pool)(sequelize_ddl("ConnectSessions")).await;
    let store = sequelstore::Store::discover(pool.clone()).await.unwrap();
    let ann = sequelstore::SessionData::from_iter([("user".to_string(), "ann".into())]);
    let bob = sequelstore::SessionData::from_iter([("user".to_string(), "bob".into())]);
    store.set("Abc", &ann, None).await.unwrap();
    for other in ["abc", "ABC", "Abc "] {
        match store.set(other, &bob, None).await {
            Err(sequelstore::Error::InvalidInput(m)) => {
                assert!(m.contains("utf8mb4_bin"), "{m}")
            }
            result => panic!("{other:?}: expected a refusal, got {result:?}"),
        }
        assert!(store.get(other).await.unwrap().is_none(), "{other:?}");
    }
    assert_eq!(store.get("Abc").await.unwrap().unwrap().data, ann);
    // The exact id: replaced, and brought back from expired as an upsert does.
    store.set("Abc", &bob, None).await.unwrap();
    assert_eq!(store.get("Abc").await.unwrap().unwrap().data, bob);
    let past = chrono::Utc::now() - chrono::TimeDelta::hours(1);
    store.set("Abc", &bob, Some(past)).await.unwrap();
    assert!(store.get("Abc").await.unwrap().is_none());
    store.set("Abc", &ann, None).await.unwrap();
    assert_eq!(store.get("Abc").await.unwrap().unwrap().data, ann);
    // A new id is inserted.
    store.set("new-id", &bob, None).await.unwrap();
    assert_eq!(store.length().await.unwrap(), 2);
    raw_sqlx(&pool)(drop).await;
}

/// Issue 11 item 1: a sweep that finds the sweep lock row held by another transaction deletes
/// nothing and says so (`lock_busy`); once that transaction ends, the next sweep runs. The
/// first sweep makes the lock table and row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_that_finds_the_lock_held_says_so() {
    use sqlx::Connection;

    let Some(pool) = db::mysql().await else {
        return;
    };
    let table = db::unique_table("sweep_lock_busy");
    let model = ConnectSession::options(pool.clone())
        .table(&table)
        .auto()
        .await
        .unwrap();
    let store = sequelstore::Store::with_model(model).with_sweep_interval(None);
    assert_eq!(
        store.sweep().await.unwrap(),
        sequelstore::Sweep::finished(0)
    );
    let past = chrono::Utc::now() - chrono::TimeDelta::hours(1);
    let data = sequelstore::SessionData::from_iter([("user".to_string(), "ann".into())]);
    for i in 0..5 {
        store
            .set(&format!("old-{i}"), &data, Some(past))
            .await
            .unwrap();
    }
    let mut holder =
        sqlx::MySqlConnection::connect(&db::server_url("MYSQL_URL", db::DEFAULT_MYSQL_URL))
            .await
            .unwrap();
    sqlx::raw_sql("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SELECT * FROM sequelstore_locks WHERE name = 'sweep:{table}' FOR UPDATE"
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

    let Some(pool) = db::mysql().await else {
        return;
    };
    let table = db::unique_table("read_only");
    ConnectSession::options(pool.clone())
        .table(&table)
        .auto()
        .await
        .unwrap();
    let read_only: MySqlPool = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(2)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("SET SESSION TRANSACTION READ ONLY").await?;
                Ok(())
            })
        })
        .connect(&db::server_url("MYSQL_URL", db::DEFAULT_MYSQL_URL))
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

/// `Store::connect` on a server without Galera works as before (no causal-read setting).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_opens_its_own_pool_works_without_galera() {
    if db::mysql().await.is_none() {
        return;
    }
    let url = db::server_url("MYSQL_URL", db::DEFAULT_MYSQL_URL);
    let store = sequelstore::MySqlStore::connect(&url).await.unwrap();
    let data = sequelstore::SessionData::from_iter([("user".to_string(), "ann".into())]);
    store.set("s-connect", &data, None).await.unwrap();
    assert!(store.get("s-connect").await.unwrap().is_some());
    assert!(store.destroy("s-connect").await.unwrap());
}

/// Issue 11 item 2: a server in `read_only` mode refuses a write with MySQL error 1290, whose
/// SQLSTATE (HY000) says nothing: the error's number classes it as read-only. The server's
/// `read_only` binds users without `READ_ONLY ADMIN` only, so a user of the test's own writes
/// here, and every other test (as root) goes on; the mode is turned off again however the test
/// ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_server_is_classed_by_its_error_number() {
    let Some(admin) = db::mysql().await else {
        return;
    };
    let user = db::unique_table("ro");
    let table = db::unique_table("read_only_server");
    ConnectSession::options(admin.clone())
        .table(&table)
        .auto()
        .await
        .unwrap();
    for sql in [
        format!("CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'"),
        format!("GRANT ALL ON test.* TO '{user}'@'%'"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&admin)
            .await
            .unwrap();
    }
    struct Writable(MySqlPool, String);
    impl Drop for Writable {
        fn drop(&mut self) {
            let (pool, user) = (self.0.clone(), self.1.clone());
            std::thread::spawn(move || {
                tokio::runtime::Runtime::new()
                    .unwrap()
                    .block_on(async move {
                        let _ = sqlx::raw_sql("SET GLOBAL read_only = 0")
                            .execute(&pool)
                            .await;
                        let sql = format!("DROP USER IF EXISTS '{user}'@'%'");
                        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool).await;
                    });
            })
            .join()
            .unwrap();
        }
    }
    let _writable_again = Writable(admin.clone(), user.clone());
    let url = db::server_url("MYSQL_URL", db::DEFAULT_MYSQL_URL).replacen(
        "root@",
        &format!("{user}:pw@"),
        1,
    );
    let pool = MySqlPool::connect(&url).await.unwrap();
    let store = sequelstore::Store::with_model(
        ConnectSession::options(pool)
            .table(&table)
            .discover()
            .await
            .unwrap(),
    )
    .with_sweep_interval(None)
    .with_retries(0);
    sqlx::raw_sql("SET GLOBAL read_only = 1")
        .execute(&admin)
        .await
        .unwrap();
    let data = sequelstore::SessionData::from_iter([("user".to_string(), "ann".into())]);
    let err = store.set("s", &data, None).await.unwrap_err();
    assert_eq!(err.class(), sequelstore::ErrorClass::ReadOnly, "{err:?}");
    assert!(format!("{err}").contains("1290"), "{err}");
}
