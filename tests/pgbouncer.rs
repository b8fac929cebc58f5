//! The conformance, differential and reliability suites on PostgreSQL through a real PgBouncer
//! in transaction mode (`PGBOUNCER_URL`, started by `scripts/cluster/pgbouncer.sh`), with the
//! store's statements sent unprepared (`PgBouncerPool`). Each statement of a client may run on
//! another server connection there: prepared statements and session-level locks break.

mod common;

use common::reliability::RelCtx;
use common::{Ctx, db, raw_sqlx, table_ctx};
use sequelstore::{ConnectSession, PgBouncerPool};

fn quote(s: &str) -> String {
    format!("\"{s}\"")
}

async fn make_with(test: &str, versioned: bool) -> Option<Ctx<ConnectSession<PgBouncerPool>>> {
    let pool = db::pgbouncer().await?;
    let raw = raw_sqlx(pool.pool());
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

async fn make(test: &str) -> Option<Ctx<ConnectSession<PgBouncerPool>>> {
    make_with(test, false).await
}

async fn make_versioned(test: &str) -> Option<Ctx<ConnectSession<PgBouncerPool>>> {
    make_with(test, true).await
}

async fn make_rel(test: &str) -> Option<RelCtx<PgBouncerPool>> {
    let mut backends = Vec::new();
    for _ in 0..4 {
        backends.push(db::pgbouncer().await?);
    }
    Some(RelCtx::new(backends, test, |b| raw_sqlx(b.pool()), quote))
}

sequelstore::conformance_tests!(make);

mod versioned {
    use super::*;
    sequelstore::conformance_tests!(make_versioned);
    differential_test!(make_versioned);
}

mod plain {
    use super::*;
    differential_test!(make);
}

mod reliability {
    use super::*;
    reliability_tests!(make_rel);
}

/// Values that would end a badly quoted literal early round-trip exactly through the
/// unprepared statements.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_round_trips_exactly() {
    let Some(pool) = db::pgbouncer().await else {
        return;
    };
    let model = ConnectSession::options(pool)
        .table(db::unique_table("hostile_text"))
        .auto()
        .await
        .unwrap();
    let store = sequelstore::Store::with_model(model).with_sweep_interval(None);
    for (i, text) in [
        "it's",
        "$s$",
        "x$s",
        "$s1$ $s$ $$",
        "\\x00 \\' \\\\",
        "'); DROP TABLE x; --",
        "żółw 🐢",
    ]
    .into_iter()
    .enumerate()
    {
        let sid = format!("{text}-{i}");
        let data = sequelstore::SessionData::from_iter([("v".to_string(), text.into())]);
        store.set(&sid, &data, None).await.unwrap();
        let got = store.get(&sid).await.unwrap().expect("stored");
        assert_eq!(got.data.get("v").and_then(|v| v.as_str()), Some(text));
        assert!(store.destroy(&sid).await.unwrap());
    }
}
