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

/// The session cache behind PgBouncer. A `LISTEN` through the pooler stays on a server
/// connection it lends to other clients, whose queries then fail on the notifications (seen
/// here before the check: "unexpected message: NotificationResponse" on the store's loads), so
/// the listener refuses it and the cache never serves. With a listener straight to PostgreSQL
/// and publishing through the pooler, two instances stay coherent.
#[cfg(feature = "cache")]
mod cache {
    use std::time::Duration;

    use chrono::{TimeDelta, Utc};
    use sequelstore::{CacheConfig, Cached, ConnectSession, PgNotify, SessionModel, SessionRow};
    use tokio::time::Instant;

    use super::db;

    fn config() -> CacheConfig {
        CacheConfig::new().with_ttl(Duration::from_secs(3600))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_listener_through_pgbouncer_is_refused_and_the_cache_never_serves() {
        let Some(bouncer) = db::pgbouncer().await else {
            return;
        };
        let table = db::unique_table("cache_via_bouncer");
        let model = ConnectSession::auto_table(bouncer.clone(), &table)
            .await
            .unwrap();
        let channel =
            PgNotify::new(bouncer.pool(), &table).with_heartbeat(Duration::from_millis(20));
        let cache = Cached::with_invalidation(model, config(), channel);
        let now = Utc::now();
        let row = SessionRow::new("s", "{}", Some(now + TimeDelta::hours(1)));
        cache.save(&row, now).await.unwrap();
        // The listener finds the pooler and gives up, for good.
        tokio::time::timeout(Duration::from_secs(60), cache.stopped())
            .await
            .expect("the listener refuses the pooler within a minute");
        assert!(
            !cache.is_serving(),
            "a listener behind PgBouncer was let listen"
        );
        // The store's loads through the pooler still work (a LISTEN there made them fail on
        // its notifications), and none is served from memory.
        for _ in 0..20 {
            assert!(cache.load("s", now).await.unwrap().is_some());
        }
        assert_eq!((cache.stats().hits, cache.stats().entries), (0, 0));
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE \"{table}\"")))
            .execute(bouncer.pool())
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_direct_listener_keeps_caches_behind_pgbouncer_coherent() {
        let (Some(bouncer), Some(direct)) = (db::pgbouncer().await, db::postgres().await) else {
            return;
        };
        let table = db::unique_table("cache_bouncer_direct");
        let instance = async || {
            let model = ConnectSession::auto_table(bouncer.clone(), &table)
                .await
                .unwrap();
            let channel = PgNotify::new(bouncer.pool(), &table)
                .with_listen_options(direct.connect_options().as_ref().clone());
            let cache = Cached::with_invalidation(model, config(), channel);
            tokio::time::timeout(Duration::from_secs(60), cache.serving())
                .await
                .expect("a direct listener is heard within a minute");
            cache
        };
        let (a, b) = (instance().await, instance().await);
        let now = Utc::now();
        for i in 0..10 {
            let sid = format!("s{i}");
            let row = SessionRow::new(&sid, "{}", Some(now + TimeDelta::hours(1)));
            a.save(&row, now).await.unwrap();
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let hits = b.stats().hits;
                assert!(b.load(&sid, now).await.unwrap().is_some());
                if b.stats().hits > hits {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "b serves the session from memory"
                );
            }
            assert!(a.destroy(&sid).await.unwrap());
            let deadline = Instant::now() + Duration::from_secs(60);
            while b.load(&sid, now).await.unwrap().is_some() {
                assert!(Instant::now() < deadline, "b drops the destroyed session");
                tokio::task::yield_now().await;
            }
        }
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE \"{table}\"")))
            .execute(&direct)
            .await
            .unwrap();
    }
}
