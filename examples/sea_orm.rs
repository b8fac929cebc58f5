//! Sessions on the SeaORM connection your application already has: one
//! `sea_orm::DatabaseConnection`, one pool, three ways in.
//!
//! Run with: cargo run --example sea_orm --features sea-orm
//!
//! It opens `sea_orm_example.db` in the current folder, or the database `DATABASE_URL` names
//! (`postgres://postgres@127.0.0.1:5432/test`, `mysql://root@127.0.0.1:3306/test`, ...), and:
//!
//! 1. `Store::auto` creates the `ConnectSession` table when missing and writes a session,
//!    which the application then counts with a SeaORM query of its own;
//! 2. `Store::discover` finds that table, as it would find one made by Sequelize, and reads
//!    the session back;
//! 3. `Store::with_model` runs a model of the application's own: sessions in `app_sessions`,
//!    with expiries as Unix milliseconds, written with SeaORM's query builder so that the
//!    same code speaks SQLite, PostgreSQL and MySQL.
//!
//! All three run on the pool inside the one `DatabaseConnection`; no second pool is opened.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use sea_orm::sea_query::{
    ColumnDef, Expr, ExprTrait, Index, OnConflict, Query, SelectStatement, Table,
};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, QueryResult,
    SqlErr,
};
use sequelstore::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sequelstore::{Created, Error, Result, SessionData, SessionModel, SessionRow, Store};
use sequelstore::{SeaOrmBackend, SeaOrmStore};
use serde_json::json;

const TABLE: &str = "app_sessions";

/// The application's own session model, on a clone of its `DatabaseConnection`.
#[derive(Debug, Clone)]
struct AppSessions {
    db: DatabaseConnection,
}

fn millis(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(|t| t.timestamp_millis())
}

/// Live at `now`: no expiry, or one after `now`.
fn live(now: DateTime<Utc>) -> Expr {
    Expr::col("expires_at")
        .is_null()
        .or(Expr::col("expires_at").gt(now.timestamp_millis()))
}

fn expired(now: DateTime<Utc>) -> Expr {
    Expr::col("expires_at").lte(now.timestamp_millis())
}

fn select() -> SelectStatement {
    Query::select()
        .columns(["id", "payload", "expires_at"])
        .from(TABLE)
        .to_owned()
}

fn decode(row: &QueryResult) -> Result<SessionRow> {
    let id: String = row.try_get("", "id").map_err(Error::backend)?;
    let payload: String = row.try_get("", "payload").map_err(Error::backend)?;
    let expires = match row
        .try_get::<Option<i64>>("", "expires_at")
        .map_err(Error::backend)?
    {
        None => None,
        Some(ms) => Some(Utc.timestamp_millis_opt(ms).single().ok_or_else(|| {
            Error::decode(id.clone(), "expires_at", format!("{ms} is not a time"))
        })?),
    };
    Ok(SessionRow::new(id, payload, expires))
}

impl AppSessions {
    /// Creates `app_sessions` and its index on `expires_at` when missing (in a real
    /// application, a migration does this).
    async fn new(db: DatabaseConnection) -> Result<Self, DbErr> {
        let mut create = Table::create()
            .table(TABLE)
            .if_not_exists()
            .col(
                ColumnDef::new("id")
                    .string_len(255)
                    .not_null()
                    .primary_key(),
            )
            .col(ColumnDef::new("payload").text().not_null())
            .col(ColumnDef::new("expires_at").big_integer().null())
            .to_owned();
        let index = Index::create()
            .name("app_sessions_expires_at")
            .table(TABLE)
            .col("expires_at")
            .if_not_exists()
            .to_owned();
        // MySQL has no CREATE INDEX IF NOT EXISTS; there the index goes inside CREATE TABLE.
        if db.get_database_backend() == DbBackend::MySql {
            create.index(&mut index.clone());
            db.execute(&create).await?;
        } else {
            db.execute(&create).await?;
            db.execute(&index).await?;
        }
        Ok(AppSessions { db })
    }
}

#[async_trait]
impl SessionModel for AppSessions {
    async fn load(&self, sid: &str, now: DateTime<Utc>) -> Result<Option<SessionRow>> {
        let query = select()
            .and_where(Expr::col("id").eq(sid))
            .and_where(live(now))
            .to_owned();
        let row = self.db.query_one(&query).await.map_err(Error::backend)?;
        row.as_ref().map(decode).transpose()
    }

    async fn create(&self, row: &SessionRow, _now: DateTime<Utc>) -> Result<Created> {
        let insert = Query::insert()
            .into_table(TABLE)
            .columns(["id", "payload", "expires_at"])
            .values([
                row.sid.as_str().into(),
                row.data.as_str().into(),
                millis(row.expires).into(),
            ])
            .map_err(Error::backend)?
            .to_owned();
        // A plain INSERT: of concurrent creates, the database lets one through.
        match self.db.execute(&insert).await {
            Ok(_) => Ok(Created::Inserted),
            Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Ok(Created::AlreadyExists)
            }
            Err(err) => Err(Error::backend(err)),
        }
    }

    async fn save(&self, row: &SessionRow, _now: DateTime<Utc>) -> Result<()> {
        let upsert = Query::insert()
            .into_table(TABLE)
            .columns(["id", "payload", "expires_at"])
            .values([
                row.sid.as_str().into(),
                row.data.as_str().into(),
                millis(row.expires).into(),
            ])
            .map_err(Error::backend)?
            .on_conflict(
                OnConflict::column("id")
                    .update_columns(["payload", "expires_at"])
                    .to_owned(),
            )
            .to_owned();
        self.db.execute(&upsert).await.map_err(Error::backend)?;
        Ok(())
    }

    async fn update(&self, row: &SessionRow, now: DateTime<Utc>) -> Result<bool> {
        let update = Query::update()
            .table(TABLE)
            .values([
                ("payload", row.data.as_str().into()),
                ("expires_at", millis(row.expires).into()),
            ])
            .and_where(Expr::col("id").eq(row.sid.as_str()))
            .and_where(live(now))
            .to_owned();
        let done = self.db.execute(&update).await.map_err(Error::backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn touch(
        &self,
        sid: &str,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
        only_if_before: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        let mut update = Query::update()
            .table(TABLE)
            .value("expires_at", expires.timestamp_millis())
            .and_where(Expr::col("id").eq(sid))
            .and_where(live(now))
            .to_owned();
        if let Some(limit) = only_if_before {
            update.and_where(
                Expr::col("expires_at")
                    .is_null()
                    .or(Expr::col("expires_at").lt(limit.timestamp_millis())),
            );
        }
        let done = self.db.execute(&update).await.map_err(Error::backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn destroy(&self, sid: &str) -> Result<bool> {
        let delete = Query::delete()
            .from_table(TABLE)
            .and_where(Expr::col("id").eq(sid))
            .to_owned();
        let done = self.db.execute(&delete).await.map_err(Error::backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_expired(&self, now: DateTime<Utc>, limit: u32) -> Result<u64> {
        let mut delete = Query::delete()
            .from_table(TABLE)
            .and_where(expired(now))
            .to_owned();
        // MySQL has DELETE ... LIMIT but refuses a subquery on the same table; PostgreSQL is
        // the other way round, and SQLite takes the subquery.
        if self.db.get_database_backend() == DbBackend::MySql {
            delete.limit(u64::from(limit));
        } else {
            let batch = Query::select()
                .column("id")
                .from(TABLE)
                .and_where(expired(now))
                .limit(u64::from(limit))
                .to_owned();
            delete.and_where(Expr::col("id").in_subquery(batch));
        }
        let done = self.db.execute(&delete).await.map_err(Error::backend)?;
        Ok(done.rows_affected())
    }

    async fn count(&self, now: DateTime<Utc>) -> Result<u64> {
        let query = Query::select()
            .expr_as(Expr::cust("COUNT(*)"), "n")
            .from(TABLE)
            .and_where(live(now))
            .to_owned();
        let row = self.db.query_one(&query).await.map_err(Error::backend)?;
        let n = match row {
            Some(row) => row.try_get::<i64>("", "n").map_err(Error::backend)?,
            None => 0,
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn list(&self, now: DateTime<Utc>) -> Result<Vec<SessionRow>> {
        let query = select().and_where(live(now)).to_owned();
        let rows = self.db.query_all(&query).await.map_err(Error::backend)?;
        rows.iter().map(decode).collect()
    }

    async fn clear(&self) -> Result<u64> {
        let delete = Query::delete().from_table(TABLE).to_owned();
        let done = self.db.execute(&delete).await.map_err(Error::backend)?;
        Ok(done.rows_affected())
    }
}

/// How many rows `table` has, asked through SeaORM, as the rest of the application would.
async fn rows_in(db: &DatabaseConnection, table: &'static str) -> Result<i64, DbErr> {
    let query = Query::select()
        .expr_as(Expr::cust("COUNT(*)"), "n")
        .from(table)
        .to_owned();
    match db.query_one(&query).await? {
        Some(row) => row.try_get("", "n"),
        None => Ok(0),
    }
}

#[tokio::main]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "sqlite://sea_orm_example.db?mode=rwc".to_owned());

    // The application's connection. For SQLite, SeaORM's default is a single connection with
    // the default journal; a few connections in WAL mode serve a web application better (the
    // SQLite settings are ignored for other databases).
    let mut options = ConnectOptions::new(url.as_str());
    options.max_connections(5).map_sqlx_sqlite_opts(|o| {
        o.journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
    });
    let db = Database::connect(options).await?;
    println!("SeaORM connected: {:?}", db.get_database_backend());

    let mut data = SessionData::new();
    data.insert("user".into(), json!("ann"));
    data.insert("cart".into(), json!(["tea", "cups"]));

    // 1. auto: the `ConnectSession` table is created when missing.
    let store: SeaOrmStore = Store::auto(SeaOrmBackend::new(&db)?)
        .await?
        .with_ttl(Duration::from_secs(60 * 60));
    store.set("sea-orm-auto", &data, None).await?;
    println!(
        "auto:       wrote a session; ConnectSession has {} row(s), counted by SeaORM",
        rows_in(&db, "ConnectSession").await?
    );

    // 2. discover: the table as Sequelize (or step 1) left it, checked column by column.
    let found = Store::discover(SeaOrmBackend::new(&db)?).await?;
    let session = found
        .get("sea-orm-auto")
        .await?
        .ok_or("the session from step 1 is there")?;
    println!(
        "discover:   {} -> {:?} (table {})",
        session.id,
        session.data,
        found.model().table()
    );
    found.destroy("sea-orm-auto").await?;

    // 3. with_model: the application's own table and model, on the same connection.
    let own = Store::with_model(AppSessions::new(db.clone()).await?)
        .with_touch_after(Duration::from_secs(60));
    own.set("sea-orm-own", &data, None).await?;
    let session = own
        .get("sea-orm-own")
        .await?
        .ok_or("the session just written is there")?;
    println!("with_model: {} -> {:?}", session.id, session.data);
    println!(
        "with_model: touched: {} (false: the throttle skipped a write that was not due)",
        own.touch("sea-orm-own", None).await?
    );
    println!(
        "with_model: {TABLE} has {} row(s), counted by SeaORM",
        rows_in(&db, TABLE).await?
    );
    own.destroy("sea-orm-own").await?;
    println!(
        "with_model: after destroy: {:?}",
        own.get("sea-orm-own").await?
    );

    db.close().await?;
    Ok(())
}
