//! The lean floor: the smallest table and statements a person would write by hand for sessions,
//! with nothing of Sequelize's shape. `(sid PRIMARY KEY, data BLOB/BYTEA, expires)` with an
//! index on the expiry, which is an integer Unix time on SQLite, `TIMESTAMPTZ` on PostgreSQL and
//! `DATETIME(6)` on MariaDB/MySQL; a load selects only `data` and decodes it into a
//! `HashMap<String, serde_json::Value>`. This is the floor of the outside harness that issue 13
//! reports; the `ConnectSession`-shaped floor (`floor.rs`) runs beside it, so that a gap between
//! the two is the table's shape, and a gap to this one is what a user's request pays.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sequelstore::sqlx::{self, AssertSqlSafe, Row};

use crate::floor::{FloorPool, an_hour_ago, in_a_day};
use crate::workload::{Driver, Res, Sess};

/// The lean floor on its own table (made by [`LeanFloor::create`]).
pub(crate) struct LeanFloor {
    pool: FloorPool,
    upsert: Arc<str>,
    select: Arc<str>,
    update: Arc<str>,
    delete: Arc<str>,
    sweep: Arc<str>,
}

fn sql(s: &Arc<str>) -> AssertSqlSafe<Arc<str>> {
    AssertSqlSafe(Arc::clone(s))
}

impl LeanFloor {
    /// Makes the lean table `table` and returns the floor on it.
    pub(crate) async fn create(pool: FloorPool, table: &str) -> Res<LeanFloor> {
        let (ddl, upsert, p) = match &pool {
            FloorPool::Sqlite(_) => (
                format!(
                    "CREATE TABLE \"{table}\" (sid TEXT PRIMARY KEY NOT NULL, data BLOB NOT NULL, \
                     expires INTEGER NOT NULL); \
                     CREATE INDEX \"{table}_expires\" ON \"{table}\" (expires)"
                ),
                format!(
                    "INSERT INTO \"{table}\" (sid, data, expires) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (sid) DO UPDATE SET data = excluded.data, expires = excluded.expires"
                ),
                ["?1", "?2", "?3"],
            ),
            FloorPool::Postgres(_) => (
                format!(
                    "CREATE TABLE \"{table}\" (sid TEXT PRIMARY KEY, data BYTEA NOT NULL, \
                     expires TIMESTAMPTZ NOT NULL); \
                     CREATE INDEX \"{table}_expires\" ON \"{table}\" (expires)"
                ),
                format!(
                    "INSERT INTO \"{table}\" (sid, data, expires) VALUES ($1, $2, $3) \
                     ON CONFLICT (sid) DO UPDATE SET data = excluded.data, expires = excluded.expires"
                ),
                ["$1", "$2", "$3"],
            ),
            FloorPool::MySql(_) => (
                format!(
                    "CREATE TABLE `{table}` (sid VARCHAR(255) PRIMARY KEY, data MEDIUMBLOB NOT NULL, \
                     expires DATETIME(6) NOT NULL, INDEX (expires))"
                ),
                format!(
                    "INSERT INTO `{table}` (sid, data, expires) VALUES (?, ?, ?) \
                     ON DUPLICATE KEY UPDATE data = VALUES(data), expires = VALUES(expires)"
                ),
                ["?", "?", "?"],
            ),
        };
        match &pool {
            FloorPool::Sqlite(p) => drop(
                sqlx::raw_sql(AssertSqlSafe(ddl))
                    .execute(p)
                    .await?
                    .rows_affected(),
            ),
            FloorPool::Postgres(p) => drop(
                sqlx::raw_sql(AssertSqlSafe(ddl))
                    .execute(p)
                    .await?
                    .rows_affected(),
            ),
            FloorPool::MySql(p) => drop(
                sqlx::raw_sql(AssertSqlSafe(ddl))
                    .execute(p)
                    .await?
                    .rows_affected(),
            ),
        }
        let t = match &pool {
            FloorPool::MySql(_) => format!("`{table}`"),
            _ => format!("\"{table}\""),
        };
        let [p1, p2, p3] = p;
        Ok(LeanFloor {
            upsert: upsert.into(),
            select: format!("SELECT data FROM {t} WHERE sid = {p1} AND expires > {p2}").into(),
            update: format!("UPDATE {t} SET expires = {p1} WHERE sid = {p2} AND expires > {p3}")
                .into(),
            delete: format!("DELETE FROM {t} WHERE sid = {p1}").into(),
            sweep: format!("DELETE FROM {t} WHERE expires <= {p1}").into(),
            pool,
        })
    }

    async fn upsert(&self, s: &Sess, expires: DateTime<Utc>) -> Res<()> {
        let data = serde_json::to_vec(&s.data)?;
        match &self.pool {
            FloorPool::Sqlite(p) => sqlx::query(sql(&self.upsert))
                .bind(&s.sid)
                .bind(data)
                .bind(expires.timestamp())
                .execute(p)
                .await?
                .rows_affected(),
            FloorPool::Postgres(p) => sqlx::query(sql(&self.upsert))
                .bind(&s.sid)
                .bind(data)
                .bind(expires)
                .execute(p)
                .await?
                .rows_affected(),
            FloorPool::MySql(p) => sqlx::query(sql(&self.upsert))
                .bind(&s.sid)
                .bind(data)
                .bind(expires.naive_utc())
                .execute(p)
                .await?
                .rows_affected(),
        };
        Ok(())
    }

    async fn select(&self, sid: &str) -> Res<bool> {
        let now = Utc::now();
        let data: Option<Vec<u8>> = match &self.pool {
            FloorPool::Sqlite(p) => sqlx::query(sql(&self.select))
                .bind(sid)
                .bind(now.timestamp())
                .fetch_optional(p)
                .await?
                .map(|r| r.try_get(0))
                .transpose()?,
            FloorPool::Postgres(p) => sqlx::query(sql(&self.select))
                .bind(sid)
                .bind(now)
                .fetch_optional(p)
                .await?
                .map(|r| r.try_get(0))
                .transpose()?,
            FloorPool::MySql(p) => sqlx::query(sql(&self.select))
                .bind(sid)
                .bind(now.naive_utc())
                .fetch_optional(p)
                .await?
                .map(|r| r.try_get(0))
                .transpose()?,
        };
        match data {
            Some(bytes) => {
                let _data: HashMap<String, serde_json::Value> = serde_json::from_slice(&bytes)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn slide(&self, sid: &str, expires: DateTime<Utc>) -> Res<()> {
        let now = Utc::now();
        match &self.pool {
            FloorPool::Sqlite(p) => sqlx::query(sql(&self.update))
                .bind(expires.timestamp())
                .bind(sid)
                .bind(now.timestamp())
                .execute(p)
                .await?
                .rows_affected(),
            FloorPool::Postgres(p) => sqlx::query(sql(&self.update))
                .bind(expires)
                .bind(sid)
                .bind(now)
                .execute(p)
                .await?
                .rows_affected(),
            FloorPool::MySql(p) => sqlx::query(sql(&self.update))
                .bind(expires.naive_utc())
                .bind(sid)
                .bind(now.naive_utc())
                .execute(p)
                .await?
                .rows_affected(),
        };
        Ok(())
    }

    /// Every expired row in one statement, as of `now`.
    pub(crate) async fn sweep_at(&self, now: DateTime<Utc>) -> Res<u64> {
        let done = match &self.pool {
            FloorPool::Sqlite(p) => sqlx::query(sql(&self.sweep))
                .bind(now.timestamp())
                .execute(p)
                .await?
                .rows_affected(),
            FloorPool::Postgres(p) => sqlx::query(sql(&self.sweep))
                .bind(now)
                .execute(p)
                .await?
                .rows_affected(),
            FloorPool::MySql(p) => sqlx::query(sql(&self.sweep))
                .bind(now.naive_utc())
                .execute(p)
                .await?
                .rows_affected(),
        };
        Ok(done)
    }
}

impl Driver for LeanFloor {
    async fn create(&self, s: &Sess) -> Res<()> {
        self.upsert(s, in_a_day()).await
    }

    async fn create_expired(&self, s: &Sess) -> Res<()> {
        self.upsert(s, an_hour_ago()).await
    }

    async fn load(&self, s: &Sess) -> Res<bool> {
        self.select(&s.sid).await
    }

    async fn update(&self, s: &Sess) -> Res<()> {
        self.upsert(s, in_a_day()).await
    }

    async fn touch(&self, s: &Sess) -> Res<()> {
        self.slide(&s.sid, in_a_day()).await
    }

    async fn load_touch(&self, s: &Sess) -> Res<bool> {
        if !self.select(&s.sid).await? {
            return Ok(false);
        }
        self.slide(&s.sid, in_a_day()).await?;
        Ok(true)
    }

    async fn destroy(&self, s: &Sess) -> Res<()> {
        match &self.pool {
            FloorPool::Sqlite(p) => sqlx::query(sql(&self.delete))
                .bind(&s.sid)
                .execute(p)
                .await?
                .rows_affected(),
            FloorPool::Postgres(p) => sqlx::query(sql(&self.delete))
                .bind(&s.sid)
                .execute(p)
                .await?
                .rows_affected(),
            FloorPool::MySql(p) => sqlx::query(sql(&self.delete))
                .bind(&s.sid)
                .execute(p)
                .await?
                .rows_affected(),
        };
        Ok(())
    }

    async fn sweep(&self) -> Res<()> {
        self.sweep_at(Utc::now()).await?;
        Ok(())
    }
}
