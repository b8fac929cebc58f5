//! Every suite on PostgreSQL (`POSTGRES_URL`): conformance (plain and versioned tables),
//! differential, schema and reliability.

mod common;

use common::reliability::RelCtx;
use common::schema::SchemaCtx;
use common::{Ctx, db, raw_sqlx, table_ctx};
use sequelstore::ConnectSession;
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
