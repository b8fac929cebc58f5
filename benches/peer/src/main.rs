//! The comparison workload on tower-sessions-sqlx-store 0.15 (`SqliteStore`, `PostgresStore`,
//! `MySqlStore`), through tower-sessions-core 0.14's `SessionStore`: the peer column of
//! `benches/compare.sh`. The workload is `benches/compare/workload.rs`, compiled in here too.
//!
//! Run by compare.sh; by hand:
//! `cargo run --release --manifest-path benches/peer/Cargo.toml -- --backend sqlite --quick`

// Shared with benches/compare; the id as text is used on that side only.
#[allow(dead_code)]
#[path = "../../compare/workload.rs"]
mod workload;

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::MySqlPoolOptions;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use time::OffsetDateTime;
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::{ExpiredDeletion, SessionStore};
use tower_sessions_sqlx_store::{MySqlStore, PostgresStore, SqliteStore};

use workload::{Args, Driver, Res, Sess};

/// A tower-sessions 0.14 store as a workload driver. tower-sessions has no touch: sliding
/// expiry is a `save` of the record with its new expiry date, as its middleware does.
struct Peer<S>(S);

fn record(s: &Sess, expiry: OffsetDateTime) -> Record {
    Record {
        id: Id(s.id),
        data: s
            .data
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<HashMap<_, _>>(),
        expiry_date: expiry,
    }
}

fn in_a_day() -> OffsetDateTime {
    OffsetDateTime::now_utc() + Duration::from_secs(86_400)
}

impl<S: SessionStore + ExpiredDeletion> Driver for Peer<S> {
    async fn create(&self, s: &Sess) -> Res<()> {
        let mut r = record(s, in_a_day());
        self.0.create(&mut r).await?;
        Ok(())
    }

    async fn create_expired(&self, s: &Sess) -> Res<()> {
        let mut r = record(s, OffsetDateTime::now_utc() - Duration::from_secs(3600));
        self.0.create(&mut r).await?;
        Ok(())
    }

    async fn load(&self, s: &Sess) -> Res<bool> {
        Ok(self.0.load(&Id(s.id)).await?.is_some())
    }

    async fn update(&self, s: &Sess) -> Res<()> {
        self.0.save(&record(s, in_a_day())).await?;
        Ok(())
    }

    async fn touch(&self, s: &Sess) -> Res<()> {
        self.0.save(&record(s, in_a_day())).await?;
        Ok(())
    }

    async fn load_touch(&self, s: &Sess) -> Res<bool> {
        let Some(mut r) = self.0.load(&Id(s.id)).await? else {
            return Ok(false);
        };
        r.expiry_date = in_a_day();
        self.0.save(&r).await?;
        Ok(true)
    }

    async fn destroy(&self, s: &Sess) -> Res<()> {
        self.0.delete(&Id(s.id)).await?;
        Ok(())
    }

    async fn sweep(&self) -> Res<()> {
        self.0.delete_expired().await?;
        Ok(())
    }
}

#[tokio::main]
async fn main() {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("peer: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(args).await {
        eprintln!("peer: {e}");
        std::process::exit(1);
    }
}

async fn run(mut args: Args) -> Res<()> {
    args.store = "tower-sessions-sqlx-store".into();
    args.api = "tower-sessions-0.14".into();
    let pid = std::process::id();
    match args.backend.as_str() {
        "sqlite" => {
            let path = args.sqlite_path("peer");
            let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5));
            let pool = SqlitePoolOptions::new()
                .max_connections(args.pool)
                .connect_with(options)
                .await?;
            let store = SqliteStore::new(pool.clone()).with_table_name(format!("peer_{pid}"))?;
            store.migrate().await?;
            let settle_pool = pool.clone();
            let settle: workload::Settle = Box::new(move || {
                let pool = settle_pool.clone();
                Box::pin(async move {
                    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                        .execute(&pool)
                        .await?;
                    Ok(())
                })
            });
            let result = workload::run_and_report(Peer(store), &args, Some(settle)).await;
            pool.close().await;
            workload::remove_sqlite(&path);
            result
        }
        "postgres" => {
            let pool = PgPoolOptions::new()
                .max_connections(args.pool)
                .connect(&args.server_url())
                .await?;
            let schema = format!("peer_{pid}");
            let store = PostgresStore::new(pool.clone())
                .with_schema_name(&schema)?
                .with_table_name("session")?;
            store.migrate().await?;
            let result = workload::run_and_report(Peer(store), &args, None).await;
            sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
                .execute(&pool)
                .await?;
            result
        }
        "mysql" => {
            let pool = MySqlPoolOptions::new()
                .max_connections(args.pool)
                .connect(&args.server_url())
                .await?;
            // MySqlStore keeps its table in a database ("schema") of its own.
            let schema = format!("peer_{pid}");
            let store = MySqlStore::new(pool.clone())
                .with_schema_name(&schema)?
                .with_table_name("session")?;
            store.migrate().await?;
            let result = workload::run_and_report(Peer(store), &args, None).await;
            sqlx::query(&format!("DROP DATABASE `{schema}`"))
                .execute(&pool)
                .await?;
            result
        }
        other => Err(format!("unknown backend {other:?}").into()),
    }
}
