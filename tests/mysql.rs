//! The conformance and schema suites on MySQL and MariaDB (`MYSQL_URL`).

mod common;

use std::sync::Arc;

use common::reliability::RelCtx;
use common::schema::SchemaCtx;
use common::{Ctx, RawSql, db};
use sequelstore::{ConnectSession, SessionModel};
use sqlx::MySqlPool;

fn raw(pool: &MySqlPool) -> RawSql {
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
    format!("`{s}`")
}

async fn make(test: &str) -> Option<Ctx<ConnectSessionOf>> {
    make_with(test, false).await
}

async fn make_versioned(test: &str) -> Option<Ctx<ConnectSessionOf>> {
    make_with(test, true).await
}

type ConnectSessionOf = ConnectSession<MySqlPool>;

async fn make_with(test: &str, versioned: bool) -> Option<Ctx<ConnectSession<MySqlPool>>> {
    let pool = db::mysql().await?;
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
        hour_ago: "UTC_TIMESTAMP(6) - INTERVAL 1 HOUR",
    })
}

/// The table Sequelize 6 creates for the `ConnectSession` model on MariaDB.
pub fn sequelize_ddl(table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS `{table}` (`sid` VARCHAR(255), `expires` DATETIME, `data` TEXT, \
         `createdAt` DATETIME NOT NULL, `updatedAt` DATETIME NOT NULL, PRIMARY KEY (`sid`)) ENGINE=InnoDB"
    )
}

async fn make_schema(test: &str) -> Option<SchemaCtx<MySqlPool>> {
    let (pool, drop) = db::mysql_isolated(test).await?;
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

/// A table Sequelize made has MariaDB's default collation, blind to case and trailing spaces;
/// ids must still match exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_match_exactly_in_a_case_insensitive_sequelize_table() {
    let Some((pool, drop)) = db::mysql_isolated("exact_ids").await else {
        return;
    };
    raw(&pool)(sequelize_ddl("ConnectSessions")).await;
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
    raw(&pool)(drop).await;
}
