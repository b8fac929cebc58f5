//! What the test targets share: the conformance suite (exported by the crate's `testing`
//! feature and instantiated per backend with `sequelstore::conformance_tests!`), contexts over
//! fresh tables, and the schema, reliability and differential suites.
#![allow(dead_code, unreachable_pub)]

pub mod db;
pub mod differential;
pub mod reliability;
pub mod schema;

use std::sync::Arc;

use chrono::Utc;
pub use sequelstore::testing::*;
use sequelstore::{Backend, ConnectSession, SessionModel};

/// A `Ctx` over a fresh `ConnectSession` table on `backend`: plain, or versioned with a user
/// column, so that the suite runs on the bare shape and on the full one.
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
        .user_id(versioned)
        .auto()
        .await
        .unwrap();
    assert_eq!(model.capabilities().version, versioned);
    assert_eq!(model.capabilities().user_id, versioned);
    Ctx {
        model: Arc::new(model),
        table,
        raw: Some(raw),
        quote,
        hour_ago,
    }
}

/// The same context with `wrap` (a cache) around its model.
#[cfg(feature = "cache")]
pub fn wrapped<M: SessionModel, W: SessionModel>(ctx: Ctx<M>, wrap: impl FnOnce(M) -> W) -> Ctx<W> {
    let model =
        Arc::try_unwrap(ctx.model).unwrap_or_else(|_| panic!("a fresh Ctx holds its model alone"));
    Ctx {
        model: Arc::new(wrap(model)),
        table: ctx.table,
        raw: ctx.raw,
        quote: ctx.quote,
        hour_ago: ctx.hour_ago,
    }
}

/// The same context with a cache of this process's own in front of its model, serving each
/// entry for an hour: every load the suite makes twice is served from it.
#[cfg(feature = "cache")]
pub fn cached_ctx<M: SessionModel>(ctx: Ctx<M>) -> Ctx<sequelstore::Cached<M>> {
    let config = sequelstore::CacheConfig::new().with_ttl(std::time::Duration::from_secs(3600));
    wrapped(ctx, |m| sequelstore::Cached::new(m, config))
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

        /// The conformance and differential suites again, with a cache in front of the model.
        #[cfg(feature = "cache")]
        mod cached {
            use super::*;

            async fn make_cached(
                test: &str,
            ) -> Option<common::Ctx<sequelstore::Cached<sequelstore::ConnectSession<$backend>>>>
            {
                Some(common::cached_ctx($make_with(test, false).await?))
            }

            async fn make_cached_versioned(
                test: &str,
            ) -> Option<common::Ctx<sequelstore::Cached<sequelstore::ConnectSession<$backend>>>>
            {
                Some(common::cached_ctx($make_with(test, true).await?))
            }

            sequelstore::conformance_tests!(make_cached);
            $crate::differential_test!(make_cached);

            mod versioned {
                use super::*;
                sequelstore::conformance_tests!(make_cached_versioned);
                $crate::differential_test!(make_cached_versioned);
            }
        }
    };
}

/// The tests only SQLite needs, for both of its drivers: `$make_with(test, versioned)` as for
/// `backend_suites!`.
#[macro_export]
macro_rules! sqlite_tests {
    ($make_with:path) => {
        #[tokio::test]
        async fn constraints_other_than_the_key_are_errors() {
            let ctx = $make_with("constraints_other", false).await.unwrap();
            common::sqlite_constraints_other_than_the_key_are_errors(&ctx).await;
            ctx.finish().await;
        }

        #[tokio::test]
        async fn times_with_an_offset_are_refused() {
            let ctx = $make_with("offset_times", false).await.unwrap();
            common::sqlite_times_with_an_offset_are_refused(&ctx).await;
            ctx.finish().await;
        }
    };
}

/// SQLite: a write refused by a constraint other than the primary key (here a trigger's
/// `RAISE(ABORT)`, SQLite's `SQLITE_CONSTRAINT_TRIGGER`) is an error, never `AlreadyExists`, so
/// that adapters do not redraw ids and then fail with a misleading message; a taken id still is
/// `AlreadyExists`.
pub async fn sqlite_constraints_other_than_the_key_are_errors<M: SessionModel>(ctx: &Ctx<M>) {
    let raw = ctx.raw.as_ref().expect("a SQL table");
    raw(format!(
        "CREATE TRIGGER \"{t}_short\" BEFORE INSERT ON \"{t}\" WHEN length(NEW.data) > 20 \
         BEGIN SELECT RAISE(ABORT, 'data too long'); END",
        t = ctx.table
    ))
    .await;
    let long = row("long", &format!("\"{}\"", "x".repeat(40)), t0() + secs(60));
    match ctx.model.create(&long, t0()).await {
        Err(err) => assert!(err.to_string().contains("data too long"), "{err}"),
        Ok(created) => panic!("a refused insert was reported as {created:?}"),
    }
    let short = row("short", "{}", t0() + secs(60));
    assert_eq!(
        ctx.model.create(&short, t0()).await.unwrap(),
        sequelstore::Created::Inserted
    );
    assert_eq!(
        ctx.model.create(&short, t0()).await.unwrap(),
        sequelstore::Created::AlreadyExists
    );
}

/// SQLite: a row another client wrote with an offset (`+05:30`), whose text sorts unlike its
/// time, is a decode error for that session only: never served as live. Here it expired two
/// hours ago by the clock, but sorts as live for five and a half hours.
pub async fn sqlite_times_with_an_offset_are_refused<M: SessionModel>(ctx: &Ctx<M>) {
    let raw = ctx.raw.as_ref().expect("a SQL table");
    raw(format!(
        "INSERT INTO \"{t}\" (sid, data, expires, createdAt, updatedAt) VALUES \
         ('offset', '{{}}', strftime('%Y-%m-%d %H:%M:%f +05:30', 'now', '+210 minutes'), \
          '2026-01-01 00:00:00.000 +00:00', '2026-01-01 00:00:00.000 +00:00'), \
         ('plain', '{{}}', strftime('%Y-%m-%d %H:%M:%f +00:00', 'now', '+1 day'), \
          '2026-01-01 00:00:00.000 +00:00', '2026-01-01 00:00:00.000 +00:00')",
        t = ctx.table
    ))
    .await;
    let now = Utc::now();
    match ctx.model.load("offset", now).await {
        Err(sequelstore::Error::Decode { column, .. }) => assert_eq!(column, "expires"),
        other => panic!("expected a decode error, got {other:?}"),
    }
    assert!(ctx.model.load("plain", now).await.unwrap().is_some());
    assert!(ctx.model.destroy("offset").await.unwrap());
}
