//! The schema suite: `auto`, `discover` and identifier checks, written once and instantiated
//! per SQL backend with `schema_tests!`. Each test gets a database of its own (a file, a
//! PostgreSQL schema or a MariaDB database), so the default table names can be used.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use sequelstore::{Backend, ConnectSession, Error, SessionData, Store};

use super::RawSql;

/// A fresh, empty database for one test.
pub struct SchemaCtx<B> {
    pub backend: B,
    pub raw: RawSql,
    /// DDL for a table as Sequelize creates it for the `ConnectSession` model.
    pub sequelize_ddl: fn(&str) -> String,
    /// DDL for a table like that but without the `expires` column.
    pub no_expires_ddl: fn(&str) -> String,
    /// DDL for a table whose `expires` column has a type the model cannot use.
    pub wrong_expires_ddl: fn(&str) -> String,
    /// Drops the database made for the test.
    pub cleanup: Option<String>,
}

impl<B> SchemaCtx<B> {
    pub async fn finish(self) {
        if let Some(sql) = &self.cleanup {
            (self.raw)(sql.clone()).await;
        }
    }
}

/// Instantiates the schema suite: `$make` takes the test's name and returns
/// `Option<SchemaCtx<B>>` (`None` when its server cannot be reached outside CI).
#[macro_export]
macro_rules! schema_tests {
    ($make:path) => {
        $crate::schema_tests!(@each $make;
            discover_prefers_connect_session_then_connect_sessions,
            discover_reports_a_missing_table_with_ddl,
            discover_names_a_missing_column_and_the_fix,
            discover_names_a_column_of_the_wrong_type,
            auto_is_idempotent_under_concurrent_starts,
            auto_refuses_an_incompatible_existing_table,
            hostile_table_names_are_rejected,
            discover_refuses_a_sid_that_is_not_unique,
            a_narrow_sid_is_used_and_longer_ids_are_refused,
            a_missing_expires_index_is_reported_with_the_online_statement,
            auto_adds_the_user_column_and_its_index_to_an_existing_table,
            discover_uses_an_integer_user_id_column
        );
    };
    (@each $make:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(ctx) = $make(stringify!($name)).await {
                    common::schema::$name(&ctx).await;
                    ctx.finish().await;
                }
            }
        )*
    };
}

fn data(pairs: &[(&str, serde_json::Value)]) -> SessionData {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

pub async fn discover_prefers_connect_session_then_connect_sessions<B: Backend + Clone>(
    ctx: &SchemaCtx<B>,
) {
    (ctx.raw)((ctx.sequelize_ddl)("ConnectSessions")).await;
    let store = Store::discover(ctx.backend.clone()).await.unwrap();
    assert_eq!(store.model().table(), "ConnectSessions");
    // Sequelize's createdAt/updatedAt are NOT NULL with no default: writes must fill them.
    let d = data(&[("user", "ann".into())]);
    store.set("s1", &d, None).await.unwrap();
    assert_eq!(store.get("s1").await.unwrap().unwrap().data, d);
    assert!(store.touch("s1", None).await.unwrap());
    assert!(store.destroy("s1").await.unwrap());

    (ctx.raw)((ctx.sequelize_ddl)("ConnectSession")).await;
    let store = Store::discover(ctx.backend.clone()).await.unwrap();
    assert_eq!(store.model().table(), "ConnectSession");
}

pub async fn discover_reports_a_missing_table_with_ddl<B: Backend + Clone>(ctx: &SchemaCtx<B>) {
    match Store::discover(ctx.backend.clone()).await {
        Err(Error::TableNotFound { tried, ddl }) => {
            assert_eq!(tried, ["ConnectSession", "ConnectSessions"]);
            assert!(ddl.contains("CREATE TABLE"), "{ddl}");
        }
        other => panic!("expected TableNotFound, got {other:?}"),
    }
    let err = Store::discover_table(ctx.backend.clone(), "elsewhere")
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("elsewhere") && msg.contains("CREATE TABLE"),
        "{msg}"
    );
}

pub async fn discover_names_a_missing_column_and_the_fix<B: Backend + Clone>(ctx: &SchemaCtx<B>) {
    (ctx.raw)((ctx.no_expires_ddl)("ConnectSessions")).await;
    match Store::discover(ctx.backend.clone()).await {
        Err(Error::IncompatibleSchema {
            table, column, fix, ..
        }) => {
            assert_eq!(table, "ConnectSessions");
            assert_eq!(column, "expires");
            assert!(
                fix.contains("ALTER TABLE") && fix.contains("expires"),
                "{fix}"
            );
            // The fix works.
            (ctx.raw)(fix).await;
            Store::discover(ctx.backend.clone()).await.unwrap();
        }
        other => panic!("expected IncompatibleSchema, got {other:?}"),
    }
}

pub async fn discover_names_a_column_of_the_wrong_type<B: Backend + Clone>(ctx: &SchemaCtx<B>) {
    (ctx.raw)((ctx.wrong_expires_ddl)("ConnectSession")).await;
    match Store::discover(ctx.backend.clone()).await {
        Err(Error::IncompatibleSchema {
            column, problem, ..
        }) => {
            assert_eq!(column, "expires");
            assert!(problem.contains("type"), "{problem}");
        }
        other => panic!("expected IncompatibleSchema, got {other:?}"),
    }
}

pub async fn auto_is_idempotent_under_concurrent_starts<B: Backend + Clone>(ctx: &SchemaCtx<B>) {
    let backend = Arc::new(ctx.backend.clone());
    let starts: Vec<_> = (0..6)
        .map(|_| {
            let backend = B::clone(&backend);
            tokio::spawn(async move { ConnectSession::auto(backend).await.map(|_| ()) })
        })
        .collect();
    for s in starts {
        s.await.unwrap().unwrap();
    }
    let store = Store::auto(ctx.backend.clone()).await.unwrap();
    store
        .set("a", &data(&[("n", 1.into())]), None)
        .await
        .unwrap();
    let again = Store::auto(ctx.backend.clone()).await.unwrap();
    assert_eq!(
        again.length().await.unwrap(),
        1,
        "auto must not drop or recreate the table"
    );
    let found = Store::discover(ctx.backend.clone()).await.unwrap();
    assert_eq!(found.model().table(), "ConnectSession");
}

pub async fn auto_refuses_an_incompatible_existing_table<B: Backend + Clone>(ctx: &SchemaCtx<B>) {
    (ctx.raw)((ctx.wrong_expires_ddl)("ConnectSession")).await;
    let err = Store::auto(ctx.backend.clone()).await.unwrap_err();
    assert!(matches!(err, Error::IncompatibleSchema { .. }), "{err:?}");
}

pub async fn hostile_table_names_are_rejected<B: Backend + Clone>(ctx: &SchemaCtx<B>) {
    let long = "a".repeat(51);
    for name in [
        "x; DROP TABLE y",
        "a\"b",
        "a`b",
        "a'b",
        "",
        "1abc",
        "sch.tbl",
        "Connect Session",
        "ConnectSession--",
        long.as_str(),
        "é",
    ] {
        for result in [
            Store::auto_table(ctx.backend.clone(), name)
                .await
                .map(|_| ()),
            Store::discover_table(ctx.backend.clone(), name)
                .await
                .map(|_| ()),
        ] {
            match result {
                Err(Error::InvalidIdentifier { name: got, .. }) => assert_eq!(got, name),
                other => panic!("{name:?}: expected InvalidIdentifier, got {other:?}"),
            }
        }
    }
}

/// `ddl` (Sequelize's table) without its primary key.
fn without_primary_key(ddl: &str) -> String {
    let ddl = match ddl.find(", PRIMARY KEY (") {
        Some(at) => {
            let end = at + ddl[at..].find(')').expect("the key's closing parenthesis") + 1;
            format!("{}{}", &ddl[..at], &ddl[end..])
        }
        None => ddl.to_owned(),
    };
    ddl.replacen(" PRIMARY KEY", "", 1)
}

/// Issue 12 item 5: a table with no primary key (nor unique index) on `sid` would take a second
/// row under a taken id: `discover` refuses it and names the fix, which then works.
pub async fn discover_refuses_a_sid_that_is_not_unique<B: Backend + Clone>(ctx: &SchemaCtx<B>) {
    let ddl = without_primary_key(&(ctx.sequelize_ddl)("ConnectSession"));
    assert!(!ddl.contains("PRIMARY KEY"), "{ddl}");
    (ctx.raw)(ddl).await;
    let fix = match Store::discover(ctx.backend.clone()).await {
        Err(Error::IncompatibleSchema {
            column,
            problem,
            fix,
            ..
        }) => {
            assert_eq!(column, "sid");
            assert!(problem.contains("not unique"), "{problem}");
            fix
        }
        other => panic!("expected IncompatibleSchema, got {other:?}"),
    };
    (ctx.raw)(fix).await;
    // On SQLite a pooled connection still reading from before the fix keeps the schema it
    // had until that read ends, so the first write there may not see the new index yet (in an
    // application the fix is followed by a restart): wait for the write to pass, 30 s at most.
    let store = Store::discover(ctx.backend.clone()).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while let Err(err) = store.set("s", &data(&[("n", 1.into())]), None).await {
        assert!(
            std::time::Instant::now() < deadline,
            "the fix did not take within 30 s: {err}"
        );
        tokio::task::yield_now().await;
    }
    assert!(store.get("s").await.unwrap().is_some());
}

/// Issue 12 item 5: connect-session-sequelize's usual model declares `sid` as `STRING(36)`. The
/// table is used; where the database enforces the width (PostgreSQL, MySQL), a longer id (an
/// actix-session key) is refused before any SQL with a message naming the width, instead of a
/// database error (strict) or a silent truncation (non-strict MySQL).
pub async fn a_narrow_sid_is_used_and_longer_ids_are_refused<B: Backend + Clone>(
    ctx: &SchemaCtx<B>,
) {
    let ddl = (ctx.sequelize_ddl)("ConnectSession").replacen("VARCHAR(255)", "VARCHAR(36)", 1);
    (ctx.raw)(ddl).await;
    let store = Store::discover(ctx.backend.clone()).await.unwrap();
    let d = data(&[("n", 1.into())]);
    let express_id = "a".repeat(32);
    store.set(&express_id, &d, None).await.unwrap();
    assert_eq!(store.get(&express_id).await.unwrap().unwrap().data, d);
    let actix_key = "k".repeat(64);
    let enforced = ctx.backend.dialect().name() != "SQLite";
    match store.set(&actix_key, &d, None).await {
        Err(Error::InvalidInput(m)) if enforced => assert!(m.contains("at most 36"), "{m}"),
        Ok(()) if !enforced => {
            assert_eq!(store.get(&actix_key).await.unwrap().unwrap().data, d);
        }
        other => panic!("enforced width {enforced}: {other:?}"),
    }
}

/// Issue 12 item 3: Sequelize makes no index on `expires`. `auto` on such a table no longer
/// builds one itself (a long, write-blocking DDL on a large table), and neither does
/// `discover`: both report the statement that adds it online, which then works. A table `auto`
/// makes has the index from the start. SQLite sweeps by `rowid` and needs none.
pub async fn a_missing_expires_index_is_reported_with_the_online_statement<B: Backend + Clone>(
    ctx: &SchemaCtx<B>,
) {
    let sqlite = ctx.backend.dialect().name() == "SQLite";
    let made = ConnectSession::options(ctx.backend.clone())
        .table("MadeHere")
        .auto()
        .await
        .unwrap();
    assert_eq!(made.expires_index_fix(), None);

    (ctx.raw)((ctx.sequelize_ddl)("ConnectSession")).await;
    let auto = ConnectSession::auto(ctx.backend.clone()).await.unwrap();
    let found = ConnectSession::discover(ctx.backend.clone()).await.unwrap();
    if sqlite {
        assert_eq!(found.expires_index_fix(), None);
        return;
    }
    let fix = found
        .expires_index_fix()
        .expect("no index on expires is reported")
        .to_owned();
    assert_eq!(
        auto.expires_index_fix(),
        Some(fix.as_str()),
        "auto built none"
    );
    assert!(
        fix.contains("CONCURRENTLY") || fix.contains("LOCK=NONE"),
        "{fix}"
    );
    (ctx.raw)(fix).await;
    let fixed = ConnectSession::discover(ctx.backend.clone()).await.unwrap();
    assert_eq!(fixed.expires_index_fix(), None);
}

/// How many indexes named `index` `table` has, from the catalog.
async fn indexes_named<B: Backend>(backend: &B, table: &str, index: &str) -> i64 {
    let d = backend.dialect();
    let sql = match d.name() {
        "SQLite" => format!(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = '{table}' \
             AND name = '{index}'"
        ),
        "PostgreSQL" => format!(
            "SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() \
             AND tablename = '{table}' AND indexname = '{index}'"
        ),
        _ => format!(
            "SELECT COUNT(DISTINCT INDEX_NAME) FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{table}' AND INDEX_NAME = '{index}'"
        ),
    };
    let mut b = sequelstore::sql::StatementBuilder::new(d);
    b.push(&sql);
    backend
        .fetch_count(&b.build(), &sequelstore::sql::Args::new())
        .await
        .unwrap()
}

/// Issue 14 item 1: on a table Sequelize made, `discover` asked for users names the missing
/// column and its fix; `auto` asked for them adds the column and its `(user_id, sid)` index,
/// from several instances at once, keeping the rows; the store then fills the column from its
/// user key.
pub async fn auto_adds_the_user_column_and_its_index_to_an_existing_table<B: Backend + Clone>(
    ctx: &SchemaCtx<B>,
) {
    (ctx.raw)((ctx.sequelize_ddl)("ConnectSession")).await;
    let before = Store::discover(ctx.backend.clone()).await.unwrap();
    assert!(!sequelstore::SessionModel::capabilities(before.model()).user_id);
    before
        .set("old", &data(&[("user", "ann".into())]), None)
        .await
        .unwrap();
    let err = ConnectSession::options(ctx.backend.clone())
        .user_id(true)
        .discover()
        .await
        .unwrap_err();
    match &err {
        Error::IncompatibleSchema { column, fix, .. } => {
            assert_eq!(column, "user_id");
            assert!(fix.contains("ADD COLUMN"), "{fix}");
        }
        other => panic!("{other:?}"),
    }
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let backend = ctx.backend.clone();
            tokio::spawn(async move {
                ConnectSession::options(backend)
                    .user_id(true)
                    .auto()
                    .await
                    .map(|_| ())
            })
        })
        .collect();
    for s in starts {
        s.await.unwrap().unwrap();
    }
    assert_eq!(
        indexes_named(&ctx.backend, "ConnectSession", "ConnectSession_user_idx").await,
        1
    );
    let model = ConnectSession::options(ctx.backend.clone())
        .user_id(true)
        .discover()
        .await
        .unwrap();
    assert_eq!(model.user_index_fix(), None, "auto built the index");
    let store = Store::with_model(model).with_user_key("user");
    assert_eq!(store.length().await.unwrap(), 1, "the rows are kept");
    assert_eq!(
        store.count_user_sessions("ann").await.unwrap(),
        0,
        "written before the column"
    );
    store
        .set("old", &data(&[("user", "ann".into())]), None)
        .await
        .unwrap();
    store
        .set("new", &data(&[("user", "ann".into())]), None)
        .await
        .unwrap();
    let listed = store.user_sessions("ann", None, 10).await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|s| s.sid.as_str()).collect();
    assert_eq!(ids, ["new", "old"]);
    assert!(
        listed
            .iter()
            .all(|s| s.created.is_some() && s.written.is_some())
    );
}

/// Issue 14 item 1: a Sequelize table with `extendDefaultFields` has a `userId` column, often
/// an integer (a foreign key to the users table): `discover` uses it, numeric user ids are
/// written as integers, and a user id that is not an integer is refused with an error naming
/// the column, writing nothing.
pub async fn discover_uses_an_integer_user_id_column<B: Backend + Clone>(ctx: &SchemaCtx<B>) {
    (ctx.raw)((ctx.sequelize_ddl)("ConnectSessions")).await;
    let d = ctx.backend.dialect();
    (ctx.raw)(format!(
        "ALTER TABLE {} ADD COLUMN {} INTEGER",
        d.quote("ConnectSessions"),
        d.quote("userId")
    ))
    .await;
    let unasked = Store::discover(ctx.backend.clone()).await.unwrap();
    assert!(
        !sequelstore::SessionModel::capabilities(unasked.model()).user_id,
        "a user column not asked for is left alone"
    );
    let asked = || ConnectSession::options(ctx.backend.clone()).user_id(true);
    let found = asked().discover().await.unwrap();
    let fix = found
        .user_index_fix()
        .expect("a userId column without an index is reported")
        .to_owned();
    assert!(fix.contains("userId") && fix.contains("sid"), "{fix}");
    (ctx.raw)(fix).await;
    let store =
        Store::with_model(asked().discover().await.unwrap()).with_user_key("/passport/user");
    assert_eq!(store.model().user_index_fix(), None, "the fix built it");
    assert!(sequelstore::SessionModel::capabilities(store.model()).user_id);
    let signed_in =
        |user: serde_json::Value| data(&[("passport", serde_json::json!({ "user": user }))]);
    store.set("a", &signed_in(7.into()), None).await.unwrap();
    store.set("b", &signed_in("7".into()), None).await.unwrap();
    store.set("c", &signed_in(8.into()), None).await.unwrap();
    assert_eq!(store.count_user_sessions("7").await.unwrap(), 2);
    let err = store
        .set("d", &signed_in("ann".into()), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput(m) if m.contains("userId") && m.contains("integer")),
        "{err}"
    );
    assert!(
        store.get("d").await.unwrap().is_none(),
        "nothing was written"
    );
    assert_eq!(
        store.destroy_other_user_sessions("7", "a").await.unwrap(),
        1
    );
    assert!(store.get("a").await.unwrap().is_some());
    assert!(store.get("b").await.unwrap().is_none());
    assert_eq!(store.count_user_sessions("8").await.unwrap(), 1);
}
