//! Criterion benches of the `Store` API, one group per database: get, set (new and existing
//! id), touch (without and with the touch throttle, where the throttled touch writes nothing),
//! get_and_touch (both ways), destroy, and a sweep of 1,000 expired rows among 1,000 live ones;
//! each beside its floor from the same run (`floor_*`: hand-written sqlx statements on the same
//! table, see `benches/compare/floor.rs`).
//! SQLite is a file in WAL mode; PostgreSQL (`POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`) and MariaDB/MySQL (`MYSQL_URL`, default
//! `mysql://root@127.0.0.1:3306/test`) run when they answer and are skipped loudly when not.
//!
//! Run with: `cargo bench --bench store --features sqlite,postgres,mysql` (short: about two
//! minutes on 2 cores). `SEQUELSTORE_BENCH_LONG=1` takes 100 samples over 5 s per bench, for
//! release numbers. Each run uses tables (and a SQLite file) of its own and drops them after.
//! For figures beside hand-written sqlx and tower-sessions-sqlx-store, see
//! `benches/compare.sh`.

// The floor (hand-written sqlx on the same table) comes from the comparison program.
#[allow(dead_code)]
#[path = "compare/floor.rs"]
mod floor;
#[allow(dead_code)]
#[path = "compare/workload.rs"]
mod workload;

use std::cell::Cell;
use std::hint::black_box;
use std::str::FromStr;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use sequelstore::sqlx::mysql::MySqlPoolOptions;
use sequelstore::sqlx::postgres::PgPoolOptions;
use sequelstore::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sequelstore::sqlx::{self, AssertSqlSafe, MySqlPool, PgPool, SqlitePool};
use sequelstore::{Backend, ConnectSession, SessionData, Store};
use tokio::runtime::Runtime;

use floor::{Floor, FloorPool, in_a_day};

/// Sessions made before the benches; `get`, `touch` and the like cycle through them.
const LIVE: usize = 1_000;
/// Expired rows each sweep removes.
const SWEEP_ROWS: usize = 1_000;

fn criterion() -> Criterion {
    let long = std::env::var("SEQUELSTORE_BENCH_LONG").is_ok_and(|v| v != "0" && !v.is_empty());
    let c = Criterion::default();
    if long {
        c.sample_size(100)
            .measurement_time(Duration::from_secs(5))
            .warm_up_time(Duration::from_secs(2))
    } else {
        c.sample_size(10)
            .measurement_time(Duration::from_millis(1200))
            .warm_up_time(Duration::from_millis(300))
    }
}

/// About 200 bytes of JSON, as a signed-in user's session might hold.
fn data() -> SessionData {
    let value = serde_json::json!({
        "user_id": 48213,
        "name": "user-48213",
        "roles": ["reader", "writer"],
        "csrf": "3f9a0c2be4d81f7a6c5e0b9d2a4f8e1c",
        "locale": "en-GB",
        "theme": "dark",
        "cart": [17, 912, 408],
        "last_path": "/account/orders/1234/details",
        "visits": 12,
    });
    match value {
        serde_json::Value::Object(map) => map,
        _ => unreachable!("a json object literal"),
    }
}

/// Raw SQL for each database: bulk-inserting expired rows and dropping the table.
#[derive(Clone)]
enum Raw {
    Sqlite(SqlitePool),
    Postgres(PgPool),
    MySql(MySqlPool),
}

impl Raw {
    /// Inserts `SWEEP_ROWS` rows that expired in 2000, in one statement.
    async fn insert_expired(&self, table: &str, batch: u64, data: &str) {
        let cols = "(sid, expires, data, \"createdAt\", \"updatedAt\")";
        let result = match self {
            Raw::Sqlite(pool) => {
                let sql = format!(
                    "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < {SWEEP_ROWS}) \
                     INSERT INTO \"{table}\" {cols} SELECT 'dead-{batch}-' || x, \
                     '2000-01-01 00:00:00.000 +00:00', ?1, '2000-01-01 00:00:00.000 +00:00', \
                     '2000-01-01 00:00:00.000 +00:00' FROM g"
                );
                sqlx::query(AssertSqlSafe(sql))
                    .bind(data)
                    .execute(pool)
                    .await
                    .map(|_| ())
            }
            Raw::Postgres(pool) => {
                let sql = format!(
                    "INSERT INTO \"{table}\" {cols} SELECT 'dead-{batch}-' || g, \
                     '2000-01-01'::timestamptz, $1, '2000-01-01'::timestamptz, \
                     '2000-01-01'::timestamptz FROM generate_series(1, {SWEEP_ROWS}) g"
                );
                sqlx::query(AssertSqlSafe(sql))
                    .bind(data)
                    .execute(pool)
                    .await
                    .map(|_| ())
            }
            Raw::MySql(pool) => {
                let sql = format!(
                    "INSERT INTO `{table}` (sid, expires, data, createdAt, updatedAt) \
                     SELECT CONCAT('dead-{batch}-', x), '2000-01-01', ?, '2000-01-01', '2000-01-01' \
                     FROM (WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g \
                     WHERE x < {SWEEP_ROWS}) SELECT x FROM g) AS s"
                );
                sqlx::query(AssertSqlSafe(sql))
                    .bind(data)
                    .execute(pool)
                    .await
                    .map(|_| ())
            }
        };
        result.expect("bulk insert of expired rows");
    }

    fn floor(&self, table: &str) -> Floor {
        let pool = match self {
            Raw::Sqlite(p) => FloorPool::Sqlite(p.clone()),
            Raw::Postgres(p) => FloorPool::Postgres(p.clone()),
            Raw::MySql(p) => FloorPool::MySql(p.clone()),
        };
        Floor::new(pool, table)
    }

    /// Checkpoints SQLite's WAL, so the first bench does not pay for the setup's writes.
    async fn settle(&self) {
        if let Raw::Sqlite(pool) = self {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(pool)
                .await
                .expect("checkpoint");
        }
    }

    async fn drop_table(&self, table: &str) {
        let result = match self {
            // The file goes with the table.
            Raw::Sqlite(_) => Ok(()),
            Raw::Postgres(pool) => sqlx::raw_sql(AssertSqlSafe(format!("DROP TABLE \"{table}\"")))
                .execute(pool)
                .await
                .map(|_| ()),
            Raw::MySql(pool) => sqlx::raw_sql(AssertSqlSafe(format!("DROP TABLE `{table}`")))
                .execute(pool)
                .await
                .map(|_| ()),
        };
        if let Err(e) = result {
            eprintln!("could not drop bench table {table}: {e}");
        }
    }
}

/// The benches of one database.
fn bench_backend<B: Backend + Clone>(
    c: &mut Criterion,
    rt: &Runtime,
    name: &str,
    pool: B,
    raw: Raw,
) {
    let table = format!("bench_{}", std::process::id());
    let model = rt
        .block_on(ConnectSession::auto_table(pool, &table))
        .expect("bench table");
    let store = Store::with_model(model).with_sweep_interval(None);
    let throttled = store.clone().with_touch_after(Duration::from_secs(60));
    let data = data();
    let text = serde_json::to_string(&data).expect("json");
    let sids: Vec<String> = (0..LIVE).map(|i| format!("live-{i:06}")).collect();
    let floor = raw.floor(&table);
    rt.block_on(async {
        for sid in &sids {
            store.set(sid, &data, None).await.expect("setup");
        }
        // Settle before the first bench: fold SQLite's WAL back, warm both read paths.
        raw.settle().await;
        for sid in &sids {
            store.get(sid).await.expect("warm-up");
            floor.select(sid).await.expect("warm-up");
        }
    });

    let mut g = c.benchmark_group(name);
    let next = Cell::new(0usize);
    let pick = || {
        let i = next.get();
        next.set(i + 1);
        &sids[i % sids.len()]
    };

    g.bench_function("get", |b| {
        b.to_async(rt).iter(|| {
            let sid = pick();
            async { black_box(store.get(sid).await.expect("get")) }
        })
    });
    g.bench_function("floor_get", |b| {
        b.to_async(rt).iter(|| {
            let sid = pick();
            async { black_box(floor.select(sid).await.expect("select")) }
        })
    });
    let fresh = Cell::new(0u64);
    let fresh_sid = || {
        let n = fresh.get();
        fresh.set(n + 1);
        format!("new-{n}")
    };
    g.bench_function("set_new", |b| {
        b.to_async(rt).iter(|| {
            let sid = fresh_sid();
            let (store, data) = (&store, &data);
            async move { store.set(&sid, data, None).await.expect("set") }
        })
    });
    g.bench_function("floor_set_new", |b| {
        b.to_async(rt).iter(|| {
            let sid = fresh_sid();
            let (floor, data) = (&floor, &data);
            async move { floor.upsert(&sid, data, in_a_day()).await.expect("upsert") }
        })
    });
    g.bench_function("set_existing", |b| {
        b.to_async(rt).iter(|| {
            let sid = pick();
            async { store.set(sid, &data, None).await.expect("set") }
        })
    });
    g.bench_function("floor_set_existing", |b| {
        b.to_async(rt).iter(|| {
            let sid = pick();
            async { floor.upsert(sid, &data, in_a_day()).await.expect("upsert") }
        })
    });
    g.bench_function("touch", |b| {
        b.to_async(rt).iter(|| {
            let sid = pick();
            async { black_box(store.touch(sid, None).await.expect("touch")) }
        })
    });
    g.bench_function("touch_throttled_skip", |b| {
        b.to_async(rt).iter(|| {
            let sid = pick();
            async { black_box(throttled.touch(sid, None).await.expect("touch")) }
        })
    });
    g.bench_function("floor_touch", |b| {
        b.to_async(rt).iter(|| {
            let sid = pick();
            async { black_box(floor.slide(sid, in_a_day()).await.expect("update")) }
        })
    });
    g.bench_function("get_and_touch", |b| {
        b.to_async(rt).iter(|| {
            let sid = pick();
            async { black_box(store.get_and_touch(sid, None).await.expect("get_and_touch")) }
        })
    });
    g.bench_function("get_and_touch_throttled_skip", |b| {
        b.to_async(rt).iter(|| {
            let sid = pick();
            async {
                black_box(
                    throttled
                        .get_and_touch(sid, None)
                        .await
                        .expect("get_and_touch"),
                )
            }
        })
    });
    g.bench_function("floor_get_then_touch", |b| {
        b.to_async(rt).iter(|| {
            let sid = pick();
            async {
                assert!(floor.select(sid).await.expect("select"));
                black_box(floor.slide(sid, in_a_day()).await.expect("update"))
            }
        })
    });
    let doomed = Cell::new(0u64);
    let mut destroy_bench = |bench: &str, use_floor: bool| {
        g.bench_function(bench, |b| {
            b.to_async(rt).iter_custom(|iters| {
                let first = doomed.get();
                doomed.set(first + iters);
                let (store, floor, data) = (&store, &floor, &data);
                async move {
                    let ids: Vec<String> = (first..first + iters)
                        .map(|n| format!("doomed-{n}"))
                        .collect();
                    for sid in &ids {
                        store.set(sid, data, None).await.expect("setup");
                    }
                    let t = Instant::now();
                    for sid in &ids {
                        let gone = if use_floor {
                            floor.delete(sid).await.expect("delete") == 1
                        } else {
                            store.destroy(sid).await.expect("destroy")
                        };
                        assert!(gone);
                    }
                    t.elapsed()
                }
            })
        });
    };
    destroy_bench("destroy", false);
    destroy_bench("floor_destroy", true);
    g.sampling_mode(SamplingMode::Flat);
    let batch = Cell::new(0u64);
    let mut sweep_bench = |bench: &str, use_floor: bool| {
        g.bench_function(bench, |b| {
            b.to_async(rt).iter_custom(|iters| {
                let first = batch.get();
                batch.set(first + iters);
                let (store, floor, raw, table, text) = (&store, &floor, &raw, &table, &text);
                async move {
                    let mut total = Duration::ZERO;
                    for n in first..first + iters {
                        raw.insert_expired(table, n, text).await;
                        let t = Instant::now();
                        let removed = if use_floor {
                            floor.sweep_at(chrono::Utc::now()).await.expect("sweep")
                        } else {
                            store.sweep().await.expect("sweep").removed
                        };
                        total += t.elapsed();
                        assert_eq!(removed, SWEEP_ROWS as u64);
                    }
                    total
                }
            })
        });
    };
    sweep_bench("sweep_1000_expired_among_live", false);
    sweep_bench("floor_sweep_1000_expired_among_live", true);
    g.finish();
    rt.block_on(raw.drop_table(&table));
}

fn server_url(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

fn skip(name: &str, var: &str, url: &str, err: impl std::fmt::Display) {
    eprintln!("\n!!! SKIPPING the {name} benches: {url} is unreachable ({err}); set {var}\n");
}

fn main() {
    let mut c = criterion().configure_from_args();
    let rt = Runtime::new().expect("tokio runtime");

    let path = std::env::temp_dir().join(format!("sequelstore-bench-{}.db", std::process::id()));
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
        .expect("sqlite url")
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5));
    let pool = rt
        .block_on(SqlitePoolOptions::new().connect_with(options))
        .expect("sqlite file");
    bench_backend(
        &mut c,
        &rt,
        "sqlite",
        pool.clone(),
        Raw::Sqlite(pool.clone()),
    );
    rt.block_on(pool.close());
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }

    let url = server_url("POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test");
    let connect = PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(5))
        .connect(&url);
    match rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), connect).await }) {
        Ok(Ok(pool)) => bench_backend(&mut c, &rt, "postgres", pool.clone(), Raw::Postgres(pool)),
        Ok(Err(e)) => skip("PostgreSQL", "POSTGRES_URL", &url, e),
        Err(e) => skip("PostgreSQL", "POSTGRES_URL", &url, e),
    }

    let url = server_url("MYSQL_URL", "mysql://root@127.0.0.1:3306/test");
    let connect = MySqlPoolOptions::new()
        .acquire_timeout(Duration::from_secs(5))
        .connect(&url);
    match rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), connect).await }) {
        Ok(Ok(pool)) => bench_backend(&mut c, &rt, "mysql", pool.clone(), Raw::MySql(pool)),
        Ok(Err(e)) => skip("MariaDB/MySQL", "MYSQL_URL", &url, e),
        Err(e) => skip("MariaDB/MySQL", "MYSQL_URL", &url, e),
    }

    c.final_summary();
}
