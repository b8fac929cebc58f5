//! The conformance and schema suites on PostgreSQL (`POSTGRES_URL`).

mod common;

use std::sync::Arc;

use common::reliability::RelCtx;
use common::schema::SchemaCtx;
use common::{Ctx, RawSql, db};
use sequelstore::{ConnectSession, SessionModel};
use sqlx::PgPool;

fn raw(pool: &PgPool) -> RawSql {
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

type ConnectSessionOf = ConnectSession<PgPool>;

async fn make_with(test: &str, versioned: bool) -> Option<Ctx<ConnectSession<PgPool>>> {
    let pool = db::postgres().await?;
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
        hour_ago: "now() - interval '1 hour'",
    })
}

/// The table Sequelize 6 creates for the `ConnectSession` model on PostgreSQL.
pub fn sequelize_ddl(table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS \"{table}\" (\"sid\" VARCHAR(255), \"expires\" TIMESTAMP WITH TIME ZONE, \
         \"data\" TEXT, \"createdAt\" TIMESTAMP WITH TIME ZONE NOT NULL, \
         \"updatedAt\" TIMESTAMP WITH TIME ZONE NOT NULL, PRIMARY KEY (\"sid\"))"
    )
}

async fn make_schema(test: &str) -> Option<SchemaCtx<PgPool>> {
    let (pool, drop) = db::postgres_isolated(test).await?;
    Some(SchemaCtx {
        raw: raw(&pool),
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
