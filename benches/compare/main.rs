//! sequelstore side by side with hand-written sqlx (the floor) and tower-sessions-sqlx-store
//! (the peer, built and run as its own program from `benches/peer`).
//!
//! Run with: `benches/compare.sh --quick` (a minute or two) or `benches/compare.sh` (10,000
//! sessions, three alternating rounds). The script builds this program and the peer in release
//! mode, runs each store in a process of its own (so peak memory is per store), alternating
//! them, and then calls `compare report` for the table and `target/bench-compare.json`.
//!
//! Subcommands (the first argument; cargo's `--bench` is ignored):
//! - `run --backend sqlite|postgres|mysql --store sequelstore|floor [--api native|tower-sessions|lean]
//!   [--quick] [--sessions N] [--pool N] [--out FILE]`: the workload on one store.
//! - `report [--json FILE] FILE...`: merges run files into the table.
//! - `probe --backend B`: exit 0 when the server answers, 3 when it does not.
//! - `amplification --backend B`: writes with and without the touch throttle.
//! - `sweep-1m [--quick]`: a sweep of 1,000,000 expired rows on PostgreSQL under load.
//! - `staleness [--tries N] [--quick]`: how long after a committed destroy on one instance
//!   another's cache still returns the session (PostgreSQL, `LISTEN`/`NOTIFY`).

mod drivers;
mod extra;
mod floor;
mod lean;
mod report;
mod staleness;
mod workload;

use std::str::FromStr;
use std::time::Duration;

use sequelstore::sqlx::mysql::MySqlPoolOptions;
use sequelstore::sqlx::postgres::PgPoolOptions;
use sequelstore::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sequelstore::sqlx::{self, AssertSqlSafe, MySqlPool, PgPool, SqlitePool};
use sequelstore::{Backend, CacheConfig, Cached, ConnectSession, PgNotify, SessionModel, Store};

use drivers::{CONNECT_TIMEOUT, Native, Tower};
use floor::{Floor, FloorPool};
use lean::LeanFloor;
use workload::{Args, Res};

#[tokio::main]
async fn main() {
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    argv.retain(|a| a != "--bench");
    let command = if argv.first().is_some_and(|a| !a.starts_with("--")) {
        argv.remove(0)
    } else {
        "run".to_owned()
    };
    let result = match Args::parse(argv) {
        Ok(args) => match command.as_str() {
            "run" => run(args).await,
            "report" => report::report(&args.rest),
            "probe" => probe(&args).await,
            "amplification" => extra::amplification(&args).await,
            "sweep-1m" => extra::sweep_1m(&args).await,
            "staleness" => staleness::staleness(&args).await,
            other => Err(format!("unknown command {other:?}").into()),
        },
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        eprintln!("compare {command}: {e}");
        std::process::exit(1);
    }
}

/// The same pool settings for every store: `max` connections; SQLite files in WAL mode with
/// `synchronous=NORMAL` and a 5 second busy timeout.
pub(crate) async fn sqlite_pool(path: &std::path::Path, max: u32) -> Res<SqlitePool> {
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5));
    Ok(SqlitePoolOptions::new()
        .max_connections(max)
        .connect_with(options)
        .await?)
}

pub(crate) async fn pg_pool(url: &str, max: u32) -> Res<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect(url)
        .await?)
}

pub(crate) async fn mysql_pool(url: &str, max: u32) -> Res<MySqlPool> {
    Ok(MySqlPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect(url)
        .await?)
}

/// Exit 3 (with a loud message) when the server of `--backend` does not answer.
async fn probe(args: &Args) -> Res<()> {
    let url = args.server_url();
    let reached = match args.backend.as_str() {
        "sqlite" => return Ok(()),
        "postgres" => tokio::time::timeout(CONNECT_TIMEOUT, pg_pool(&url, 1))
            .await
            .map_err(|_| "timed out".into())
            .and_then(|r| r)
            .map(|_| ()),
        "mysql" => tokio::time::timeout(CONNECT_TIMEOUT, mysql_pool(&url, 1))
            .await
            .map_err(|_| "timed out".into())
            .and_then(|r| r)
            .map(|_| ()),
        other => return Err(format!("unknown backend {other:?}").into()),
    };
    if let Err(e) = reached {
        eprintln!(
            "!!! SKIPPING {}: {url} is unreachable ({e}); set {} to run it",
            args.backend,
            if args.backend == "postgres" {
                "POSTGRES_URL"
            } else {
                "MYSQL_URL"
            }
        );
        std::process::exit(3);
    }
    Ok(())
}

/// The workload on sequelstore (`--api native` or `tower-sessions`) or the floor.
async fn run(mut args: Args) -> Res<()> {
    let pid = std::process::id();
    if args.api.is_empty() {
        args.api = if args.store == "floor" {
            "sqlx".into()
        } else {
            "native".into()
        };
    }
    let table = format!("bench_{}_{pid}", args.store);
    match args.backend.as_str() {
        "sqlite" => {
            let path = args.sqlite_path(&args.store);
            let pool = sqlite_pool(&path, args.pool).await?;
            let result = run_on(pool.clone(), &table, &args, FloorPool::Sqlite).await;
            pool.close().await;
            workload::remove_sqlite(&path);
            result
        }
        "postgres" => {
            let pool = pg_pool(&args.server_url(), args.pool).await?;
            let result = run_on(pool.clone(), &table, &args, FloorPool::Postgres).await;
            drop_table(&pool, &format!("DROP TABLE IF EXISTS \"{table}\"")).await;
            result
        }
        "mysql" => {
            let pool = mysql_pool(&args.server_url(), args.pool).await?;
            let result = run_on(pool.clone(), &table, &args, FloorPool::MySql).await;
            drop_table(&pool, &format!("DROP TABLE IF EXISTS `{table}`")).await;
            result
        }
        other => Err(format!("unknown backend {other:?}").into()),
    }
}

async fn drop_table<DB>(pool: &sqlx::Pool<DB>, ddl: &str)
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
{
    if let Err(e) = sqlx::raw_sql(AssertSqlSafe(ddl.to_owned()))
        .execute(pool)
        .await
    {
        eprintln!("could not drop the bench table ({ddl}): {e}");
    }
}

async fn run_on<B: Backend + Clone + CacheOn>(
    pool: B,
    table: &str,
    args: &Args,
    floor_pool: impl FnOnce(B) -> FloorPool,
) -> Res<()> {
    let settle = (pool.dialect().name() == "SQLite").then(|| {
        let pool = pool.clone();
        Box::new(move || {
            let pool = pool.clone();
            Box::pin(async move {
                pool.run_ddl("PRAGMA wal_checkpoint(TRUNCATE)").await?;
                Ok(())
            }) as std::pin::Pin<Box<dyn std::future::Future<Output = Res<()>> + Send>>
        }) as workload::Settle
    });
    if (args.store.as_str(), args.api.as_str()) == ("floor", "lean") {
        let floor = LeanFloor::create(floor_pool(pool), table).await?;
        return workload::run_and_report(floor, args, settle).await;
    }
    // Every other table is made by sequelstore's DDL, so all have the same shape and index.
    let model = ConnectSession::auto_table(pool.clone(), table).await?;
    match (args.store.as_str(), args.api.as_str()) {
        ("floor", _) => {
            let floor = Floor::new(floor_pool(pool), table);
            workload::run_and_report(floor, args, settle).await
        }
        ("sequelstore", "native") => {
            workload::run_and_report(Native(quiet_store(model)), args, settle).await
        }
        ("sequelstore", "tower-sessions") => {
            workload::run_and_report(Tower(quiet_store(model)), args, settle).await
        }
        // Issue 14: the same store on the table with a user column and its index added, filled
        // from the payload's `user_id` on every write.
        ("sequelstore", "users") => {
            let model = ConnectSession::options(pool.clone())
                .table(table)
                .user_id(true)
                .auto()
                .await?;
            let store = quiet_store(model).with_user_key("user_id");
            workload::run_and_report(Native(store), args, settle).await
        }
        ("sequelstore", "cached") => {
            let model = B::cached(model, &pool, table).await?;
            workload::run_and_report(Native(quiet_store(model)), args, settle).await
        }
        (store, api) => Err(format!("unknown store/api {store}/{api}").into()),
    }
}

/// How each backend's store is cached for `--api cached`: with PostgreSQL's `LISTEN`/`NOTIFY`
/// (waited for until it serves), and with a cache of the process's own elsewhere. Entries live
/// 60 s, longer than a run's load phases.
pub(crate) trait CacheOn: Backend + Sized {
    async fn cached(
        model: ConnectSession<Self>,
        _pool: &Self,
        _table: &str,
    ) -> Res<Cached<ConnectSession<Self>>> {
        Ok(Cached::new(model, cache_config()))
    }
}

pub(crate) fn cache_config() -> CacheConfig {
    CacheConfig::new()
        .with_max_entries(100_000)
        .with_ttl(Duration::from_secs(60))
}

impl CacheOn for SqlitePool {}

impl CacheOn for MySqlPool {}

impl CacheOn for PgPool {
    async fn cached(
        model: ConnectSession<Self>,
        pool: &Self,
        table: &str,
    ) -> Res<Cached<ConnectSession<Self>>> {
        let channel = PgNotify::new(pool, table);
        let cached = Cached::with_invalidation(model, cache_config(), channel);
        tokio::time::timeout(CONNECT_TIMEOUT, cached.serving())
            .await
            .map_err(|_| "the cache's LISTEN channel was not heard")?;
        Ok(cached)
    }
}

/// A store with the background sweep off: the workload sweeps when it means to.
pub(crate) fn quiet_store<M: SessionModel>(model: M) -> Store<M> {
    Store::with_model(model).with_sweep_interval(None)
}
