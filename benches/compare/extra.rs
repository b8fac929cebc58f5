//! Two measurements beside the workload: write amplification with and without the touch
//! throttle, and a sweep of 1,000,000 expired rows on PostgreSQL under load.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sequelstore::sqlx::{self, AssertSqlSafe, Row};
use sequelstore::{Clock, ConnectSession, SessionModel, Store};

use crate::floor::{Floor, FloorPool};
use crate::workload::{self, Args, Res, Rng};
use crate::{mysql_pool, pg_pool, quiet_store, sqlite_pool};

/// A clock the measurement moves by hand.
#[derive(Debug, Clone)]
struct SimClock(Arc<AtomicI64>);

impl SimClock {
    fn new() -> Self {
        SimClock(Arc::new(AtomicI64::new(Utc::now().timestamp_millis())))
    }

    fn advance(&self, d: Duration) {
        self.0.fetch_add(d.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Clock for SimClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.0.load(Ordering::SeqCst))
            .expect("a simulated time near now is in range")
    }
}

const REQUESTS: usize = 1_000;
const THROTTLE: Duration = Duration::from_secs(60);

/// Counts row writes with the database's own counter, on a pool of one connection.
enum Counter {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool, String),
    MySql(sqlx::MySqlPool),
}

impl Counter {
    async fn read(&self) -> Res<i64> {
        Ok(match self {
            // Rows changed by this connection (the pool has one).
            Counter::Sqlite(pool) => sqlx::query("SELECT total_changes()")
                .fetch_one(pool)
                .await?
                .try_get(0)?,
            // Row updates in the table's statistics, once this backend has flushed them.
            Counter::Postgres(pool, table) => {
                sqlx::query("SELECT pg_stat_force_next_flush()")
                    .execute(pool)
                    .await?;
                let mut last = -1;
                for _ in 0..20 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let n: i64 = sqlx::query(
                        "SELECT COALESCE(n_tup_upd, 0) FROM pg_stat_user_tables WHERE relname = $1",
                    )
                    .bind(table.as_str())
                    .fetch_optional(pool)
                    .await?
                    .map(|r| r.try_get(0))
                    .transpose()?
                    .unwrap_or(0);
                    if n == last {
                        break;
                    }
                    last = n;
                }
                last
            }
            // Row updates made by this session (the pool has one connection).
            Counter::MySql(pool) => {
                let v: String = sqlx::query("SHOW SESSION STATUS LIKE 'Handler_update'")
                    .fetch_one(pool)
                    .await?
                    .try_get_unchecked(1)?;
                v.parse()?
            }
        })
    }
}

/// 1,000 requests to one unchanged session, a simulated second apart, with the touch throttle
/// (60 s) and without: writes counted by `touch` returning true, and by the database.
pub(crate) async fn amplification(args: &Args) -> Res<()> {
    let pid = std::process::id();
    println!(
        "\nWrite amplification on {}: {REQUESTS} requests, one per simulated second, to one unchanged session\n",
        args.backend
    );
    println!(
        "| backend | call | throttle | requests | touch() returned true | rows written (database counter) |"
    );
    println!("|---|---|---|--:|--:|--:|");
    let mut writes = Vec::new();
    for (i, throttle) in [None, Some(THROTTLE)].into_iter().enumerate() {
        for call in ["touch", "get_and_touch"] {
            let table = format!("amp_{pid}_{i}_{}", call.len());
            let path = args.sqlite_path(&table);
            let counter = match args.backend.as_str() {
                "sqlite" => Counter::Sqlite(sqlite_pool(&path, 1).await?),
                "postgres" => {
                    Counter::Postgres(pg_pool(&args.server_url(), 1).await?, table.clone())
                }
                "mysql" => Counter::MySql(mysql_pool(&args.server_url(), 1).await?),
                other => return Err(format!("unknown backend {other:?}").into()),
            };
            let clock = SimClock::new();
            let (true_count, counted) = match &counter {
                Counter::Sqlite(pool) => {
                    let model = ConnectSession::auto_table(pool.clone(), &table).await?;
                    requests(model, &clock, throttle, call, &counter).await?
                }
                Counter::Postgres(pool, _) => {
                    let model = ConnectSession::auto_table(pool.clone(), &table).await?;
                    let r = requests(model, &clock, throttle, call, &counter).await?;
                    sqlx::raw_sql(AssertSqlSafe(format!("DROP TABLE \"{table}\"")))
                        .execute(pool)
                        .await?;
                    r
                }
                Counter::MySql(pool) => {
                    let model = ConnectSession::auto_table(pool.clone(), &table).await?;
                    let r = requests(model, &clock, throttle, call, &counter).await?;
                    sqlx::raw_sql(AssertSqlSafe(format!("DROP TABLE `{table}`")))
                        .execute(pool)
                        .await?;
                    r
                }
            };
            workload::remove_sqlite(&path);
            println!(
                "| {} | {call} | {} | {REQUESTS} | {} | {counted} |",
                args.backend,
                throttle.map_or("off".to_owned(), |d| format!("{} s", d.as_secs())),
                true_count.map_or("-".to_owned(), |n| n.to_string()),
            );
            writes.push((call, throttle.is_some(), true_count, counted));
        }
    }
    for call in ["touch", "get_and_touch"] {
        let get = |throttled: bool| {
            writes
                .iter()
                .find(|w| w.0 == call && w.1 == throttled)
                .map(|w| (w.2, w.3))
        };
        if let (Some((t_off, db_off)), Some((t_on, db_on))) = (get(false), get(true)) {
            let by_touch = match (t_off, t_on) {
                (Some(off), Some(on)) if on > 0 => format!("{:.1}x", off as f64 / on as f64),
                _ => "-".to_owned(),
            };
            let by_db = if db_on > 0 {
                format!("{:.1}x", db_off as f64 / db_on as f64)
            } else {
                "-".to_owned()
            };
            println!(
                "\n{} {call}: the throttle writes {by_touch} fewer times by touch()'s count, {by_db} by the database's (target: >= 10x)",
                args.backend
            );
        }
    }
    Ok(())
}

/// Runs the requests on a store over `model` and returns (touch() true count, rows written
/// by the database's counter).
async fn requests<M: SessionModel>(
    model: M,
    clock: &SimClock,
    throttle: Option<Duration>,
    call: &str,
    counter: &Counter,
) -> Res<(Option<u64>, i64)> {
    let mut store = quiet_store(model)
        .with_clock(clock.clone())
        .with_ttl(Duration::from_secs(3600));
    if let Some(t) = throttle {
        store = store.with_touch_after(t);
    }
    let mut rng = Rng::new(7);
    let data = workload::session_data(&mut rng, 0);
    store.set("amplification", &data, None).await?;
    let before = counter.read().await?;
    let mut true_count = 0u64;
    for _ in 0..REQUESTS {
        clock.advance(Duration::from_secs(1));
        if call == "touch" {
            true_count += u64::from(store.touch("amplification", None).await?);
        } else if store.get_and_touch("amplification", None).await?.is_none() {
            return Err("the session went missing".into());
        }
    }
    let after = counter.read().await?;
    Ok(((call == "touch").then_some(true_count), after - before))
}

/// Latencies of a request loop (16 tasks, `get_and_touch` on random live sessions) until
/// `stop` is set.
async fn load_loop<M: SessionModel>(
    store: Store<M>,
    live: usize,
    stop: Arc<AtomicBool>,
) -> Res<(Vec<u64>, Duration)> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..16u64 {
        let (store, stop) = (store.clone(), Arc::clone(&stop));
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(t + 1);
            let mut lat = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let sid = format!("live-{}", rng.below(live) + 1);
                let t0 = Instant::now();
                store.get_and_touch(&sid, None).await?;
                lat.push(t0.elapsed().as_nanos() as u64);
            }
            Ok::<_, workload::BoxError>(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok((all, start.elapsed()))
}

/// A candidate for `Store`'s sweep, through the public model API: the same batches as
/// `sweep`, with a pause after each as long as the batch took, so the sweep takes at
/// most half of the database's write capacity while requests are served.
async fn paced_sweep<M: SessionModel>(store: &Store<M>) -> Res<u64> {
    let batch = 1000u32;
    let mut total = 0;
    loop {
        let t = Instant::now();
        let n = store.model().delete_expired(store.now(), batch).await?;
        total += n;
        if n < u64::from(batch) {
            return Ok(total);
        }
        tokio::time::sleep(t.elapsed()).await;
    }
}

fn summary(mut lat: Vec<u64>, wall: Duration) -> (f64, f64, f64, f64) {
    lat.sort_unstable();
    let p = |q: usize| lat[(lat.len() * q / 100).min(lat.len() - 1)] as f64 / 1000.0;
    let max = *lat.last().unwrap_or(&0) as f64 / 1000.0;
    (lat.len() as f64 / wall.as_secs_f64(), p(50), p(99), max)
}

/// A sweep of 1,000,000 expired rows (200,000 with `--quick`) among 10,000 live ones on
/// PostgreSQL, while 16 tasks serve requests: the requests' p99 during the sweep against
/// without it, for `sweep` (batches of 1000) and for the floor's single DELETE.
pub(crate) async fn sweep_1m(args: &Args) -> Res<()> {
    let mut args = args.clone();
    args.backend = "postgres".into();
    let expired: i64 = if args.quick { 200_000 } else { 1_000_000 };
    let live: i64 = 10_000;
    let baseline_for = Duration::from_secs(if args.quick { 5 } else { 10 });
    let pool = pg_pool(&args.server_url(), 20).await?;
    let table = format!("sweep_{}", std::process::id());
    let model = ConnectSession::auto_table(pool.clone(), &table).await?;
    let store = quiet_store(model);
    let mut rng = Rng::new(11);
    let data = serde_json::to_string(&workload::session_data(&mut rng, 0))?;

    let insert = |prefix: &str, when: &str, n: i64| {
        format!(
            "INSERT INTO \"{table}\" (sid, expires, data, \"createdAt\", \"updatedAt\") \
             SELECT '{prefix}-' || g, now() {when}, $1, now(), now() FROM generate_series(1, {n}) g"
        )
    };
    sqlx::query(AssertSqlSafe(insert("live", "+ interval '1 day'", live)))
        .bind(&data)
        .execute(&pool)
        .await?;

    println!(
        "\nSweep of {expired} expired rows among {live} live ones on PostgreSQL, 16 tasks calling get_and_touch meanwhile\n"
    );
    println!(
        "| sweep | rows | sweep s | rows/s | requests/s before | p50 us before | p99 us before | requests/s during | p50 us during | p99 us during | max us during | p99 during / before |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    let floor = Floor::new(FloorPool::Postgres(pool.clone()), &table);
    let variants = [
        "sweep (batches of 1000)",
        "paced: batches of 1000, a pause as long as each batch",
        "floor: one DELETE",
    ];
    for which in variants {
        let t = Instant::now();
        sqlx::query(AssertSqlSafe(insert(
            "dead",
            "- interval '1 hour'",
            expired,
        )))
        .bind(&data)
        .execute(&pool)
        .await?;
        sqlx::raw_sql(AssertSqlSafe(format!("VACUUM ANALYZE \"{table}\"")))
            .execute(&pool)
            .await?;
        eprintln!("  inserted {expired} expired rows in {:.1?}", t.elapsed());

        // Without the sweep.
        let stop = Arc::new(AtomicBool::new(false));
        let handle = tokio::spawn(load_loop(store.clone(), live as usize, Arc::clone(&stop)));
        tokio::time::sleep(baseline_for).await;
        stop.store(true, Ordering::Relaxed);
        let (lat, wall) = handle.await??;
        let before = summary(lat, wall);

        // During the sweep.
        let stop = Arc::new(AtomicBool::new(false));
        let handle = tokio::spawn(load_loop(store.clone(), live as usize, Arc::clone(&stop)));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let t = Instant::now();
        let removed = if which.starts_with("floor") {
            floor.sweep_at(Utc::now()).await?
        } else if which.starts_with("paced") {
            paced_sweep(&store).await?
        } else {
            store.sweep().await?.removed
        };
        let took = t.elapsed();
        stop.store(true, Ordering::Relaxed);
        let (lat, wall) = handle.await??;
        let during = summary(lat, wall);
        if removed != expired as u64 {
            return Err(format!("{which} removed {removed} rows, not {expired}").into());
        }
        println!(
            "| {which} | {removed} | {:.1} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} |",
            took.as_secs_f64(),
            removed as f64 / took.as_secs_f64(),
            before.0,
            before.1,
            before.2,
            during.0,
            during.1,
            during.2,
            during.3,
            during.2 / before.2
        );
    }
    sqlx::raw_sql(AssertSqlSafe(format!("DROP TABLE \"{table}\"")))
        .execute(&pool)
        .await?;
    println!("\ntarget: p99 during the sweep <= 2x the p99 without it");
    Ok(())
}
