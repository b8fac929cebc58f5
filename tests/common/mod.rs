//! What the test targets share: the conformance suite (exported by the crate's `testing`
//! feature and instantiated per backend with `sequelstore::conformance_tests!`), contexts over
//! fresh tables, and the schema, reliability and differential suites.
#![allow(dead_code, unreachable_pub)]

pub mod db;
pub mod differential;
pub mod reliability;
pub mod schema;

use std::sync::Arc;

pub use sequelstore::testing::*;
use sequelstore::{Backend, ConnectSession, SessionModel};

/// A `Ctx` over a fresh `ConnectSession` table (plain or versioned) on `backend`.
pub async fn table_ctx<B: Backend + Clone>(
    backend: B,
    test: &str,
    versioned: bool,
    raw: RawSql,
    quote: fn(&str) -> String,
    hour_ago: &'static str,
) -> Ctx<ConnectSession<B>> {
    let table = db::unique_table(test);
    let model = ConnectSession::options(backend)
        .table(&table)
        .versioned(versioned)
        .auto()
        .await
        .unwrap();
    assert_eq!(model.capabilities().version, versioned);
    Ctx {
        model: Arc::new(model),
        table,
        raw: Some(raw),
        quote,
        hour_ago,
    }
}

/// Raw SQL on a sqlx pool.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub fn raw_sqlx<DB: sqlx::Database>(pool: &sqlx::Pool<DB>) -> RawSql
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
{
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

/// Every suite for one backend: `$make_with(test, versioned)` makes a `Ctx`, `$make_schema`
/// a `SchemaCtx`, `$make_rel` a `RelCtx`. Runs the conformance suite on plain and versioned
/// tables, the differential test on both, the schema suite and the reliability suite.
#[macro_export]
macro_rules! backend_suites {
    ($backend:ty, $make_with:path, $make_schema:path, $make_rel:path) => {
        async fn make(test: &str) -> Option<common::Ctx<sequelstore::ConnectSession<$backend>>> {
            $make_with(test, false).await
        }

        async fn make_versioned(
            test: &str,
        ) -> Option<common::Ctx<sequelstore::ConnectSession<$backend>>> {
            $make_with(test, true).await
        }

        sequelstore::conformance_tests!(make);

        mod versioned {
            use super::*;
            sequelstore::conformance_tests!(make_versioned);
            $crate::differential_test!(make_versioned);
        }

        mod plain {
            use super::*;
            $crate::differential_test!(make);
        }

        mod schema {
            use super::*;
            $crate::schema_tests!($make_schema);
        }

        mod reliability {
            use super::*;
            $crate::reliability_tests!($make_rel);
        }
    };
}
