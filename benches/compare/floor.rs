//! The floor of the comparison: what a person writes by hand with sqlx for a table of the
//! `ConnectSession` shape ([`Floor`]). Used by `benches/compare` and by the criterion benches.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use sequelstore::SessionData;
use sequelstore::sqlx::{self, AssertSqlSafe, MySqlPool, PgPool, Row, SqlitePool};

use crate::workload::{Driver, Res, Sess};

pub(crate) fn an_hour_ago() -> DateTime<Utc> {
    Utc::now() - TimeDelta::hours(1)
}

pub(crate) fn in_a_day() -> DateTime<Utc> {
    Utc::now() + TimeDelta::days(1)
}

/// The floor: what a person writes by hand with sqlx for a table of the `ConnectSession`
/// shape. One upsert (create and update), one select by primary key with an expiry filter,
/// one update (touch), one delete, one ranged delete (the sweep, unbatched). A request with
/// sliding expiry is the select and then the update.
pub(crate) struct Floor {
    pool: FloorPool,
    upsert: Arc<str>,
    select: Arc<str>,
    update: Arc<str>,
    delete: Arc<str>,
    sweep: Arc<str>,
}

pub(crate) enum FloorPool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
    MySql(MySqlPool),
}

/// SQLite keeps times as text in Sequelize's form, which sorts in time order.
fn sqlite_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3f +00:00").to_string()
}

fn sql(s: &Arc<str>) -> AssertSqlSafe<Arc<str>> {
    AssertSqlSafe(Arc::clone(s))
}

impl Floor {
    /// The floor on `table`, which has the `ConnectSession` columns (made by the caller).
    pub(crate) fn new(pool: FloorPool, table: &str) -> Floor {
        let numbered = |n: usize| match pool {
            FloorPool::Sqlite(_) => format!("?{n}"),
            FloorPool::Postgres(_) => format!("${n}"),
            FloorPool::MySql(_) => "?".to_owned(),
        };
        let (p1, p2, p3, p4) = (numbered(1), numbered(2), numbered(3), numbered(4));
        let (upsert, t) = match pool {
            FloorPool::MySql(_) => (
                format!(
                    "INSERT INTO `{table}` (sid, data, expires, createdAt, updatedAt) \
                     VALUES (?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE data = VALUES(data), \
                     expires = VALUES(expires), updatedAt = VALUES(updatedAt)"
                ),
                format!("`{table}`"),
            ),
            _ => (
                format!(
                    "INSERT INTO \"{table}\" (sid, data, expires, \"createdAt\", \"updatedAt\") \
                     VALUES ({p1}, {p2}, {p3}, {p4}, {p4}) ON CONFLICT (sid) DO UPDATE SET \
                     data = excluded.data, expires = excluded.expires, \
                     \"updatedAt\" = excluded.\"updatedAt\""
                ),
                format!("\"{table}\""),
            ),
        };
        let updated_at = match pool {
            FloorPool::MySql(_) => "updatedAt",
            _ => "\"updatedAt\"",
        };
        Floor {
            upsert: upsert.into(),
            select: format!("SELECT data, expires FROM {t} WHERE sid = {p1} AND expires > {p2}")
                .into(),
            update: format!(
                "UPDATE {t} SET expires = {p1}, {updated_at} = {p2} WHERE sid = {p3} AND expires > {}",
                if matches!(pool, FloorPool::MySql(_)) {
                    "?".to_owned()
                } else {
                    p2.clone()
                }
            )
            .into(),
            delete: format!("DELETE FROM {t} WHERE sid = {p1}").into(),
            sweep: format!("DELETE FROM {t} WHERE expires <= {p1}").into(),
            pool,
        }
    }

    /// The upsert: create and update.
    pub(crate) async fn upsert(
        &self,
        sid: &str,
        data: &SessionData,
        expires: DateTime<Utc>,
    ) -> Res<()> {
        let data = serde_json::to_string(data)?;
        let now = Utc::now();
        match &self.pool {
            FloorPool::Sqlite(pool) => {
                sqlx::query(sql(&self.upsert))
                    .bind(sid)
                    .bind(data)
                    .bind(sqlite_time(expires))
                    .bind(sqlite_time(now))
                    .execute(pool)
                    .await?;
            }
            FloorPool::Postgres(pool) => {
                sqlx::query(sql(&self.upsert))
                    .bind(sid)
                    .bind(data)
                    .bind(expires)
                    .bind(now)
                    .execute(pool)
                    .await?;
            }
            FloorPool::MySql(pool) => {
                sqlx::query(sql(&self.upsert))
                    .bind(sid)
                    .bind(data)
                    .bind(expires.naive_utc())
                    .bind(now.naive_utc())
                    .bind(now.naive_utc())
                    .execute(pool)
                    .await?;
            }
        }
        Ok(())
    }

    /// The select of a live row by id, its data decoded; whether there was one.
    pub(crate) async fn select(&self, sid: &str) -> Res<bool> {
        let now = Utc::now();
        let data: Option<String> = match &self.pool {
            FloorPool::Sqlite(pool) => sqlx::query(sql(&self.select))
                .bind(sid)
                .bind(sqlite_time(now))
                .fetch_optional(pool)
                .await?
                .map(|row| {
                    let _expires: String = row.try_get(1)?;
                    row.try_get(0)
                })
                .transpose()?,
            FloorPool::Postgres(pool) => sqlx::query(sql(&self.select))
                .bind(sid)
                .bind(now)
                .fetch_optional(pool)
                .await?
                .map(|row| {
                    let _expires: DateTime<Utc> = row.try_get(1)?;
                    row.try_get(0)
                })
                .transpose()?,
            FloorPool::MySql(pool) => sqlx::query(sql(&self.select))
                .bind(sid)
                .bind(now.naive_utc())
                .fetch_optional(pool)
                .await?
                .map(|row| {
                    let _expires: chrono::NaiveDateTime = row.try_get(1)?;
                    row.try_get_unchecked(0)
                })
                .transpose()?,
        };
        match data {
            Some(text) => {
                let _data: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(&text)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// The update of a live row's expiry (touch); rows changed.
    pub(crate) async fn slide(&self, sid: &str, expires: DateTime<Utc>) -> Res<u64> {
        let now = Utc::now();
        let done = match &self.pool {
            FloorPool::Sqlite(pool) => sqlx::query(sql(&self.update))
                .bind(sqlite_time(expires))
                .bind(sqlite_time(now))
                .bind(sid)
                .execute(pool)
                .await?
                .rows_affected(),
            FloorPool::Postgres(pool) => sqlx::query(sql(&self.update))
                .bind(expires)
                .bind(now)
                .bind(sid)
                .execute(pool)
                .await?
                .rows_affected(),
            FloorPool::MySql(pool) => sqlx::query(sql(&self.update))
                .bind(expires.naive_utc())
                .bind(now.naive_utc())
                .bind(sid)
                .bind(now.naive_utc())
                .execute(pool)
                .await?
                .rows_affected(),
        };
        Ok(done)
    }

    /// The delete by id.
    pub(crate) async fn delete(&self, sid: &str) -> Res<u64> {
        let done = match &self.pool {
            FloorPool::Sqlite(pool) => sqlx::query(sql(&self.delete))
                .bind(sid)
                .execute(pool)
                .await?
                .rows_affected(),
            FloorPool::Postgres(pool) => sqlx::query(sql(&self.delete))
                .bind(sid)
                .execute(pool)
                .await?
                .rows_affected(),
            FloorPool::MySql(pool) => sqlx::query(sql(&self.delete))
                .bind(sid)
                .execute(pool)
                .await?
                .rows_affected(),
        };
        Ok(done)
    }

    async fn run_sweep(&self, now: DateTime<Utc>) -> Res<u64> {
        let done = match &self.pool {
            FloorPool::Sqlite(pool) => sqlx::query(sql(&self.sweep))
                .bind(sqlite_time(now))
                .execute(pool)
                .await?
                .rows_affected(),
            FloorPool::Postgres(pool) => sqlx::query(sql(&self.sweep))
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected(),
            FloorPool::MySql(pool) => sqlx::query(sql(&self.sweep))
                .bind(now.naive_utc())
                .execute(pool)
                .await?
                .rows_affected(),
        };
        Ok(done)
    }

    /// The floor's sweep: every expired row in one statement, as of `now`.
    pub(crate) async fn sweep_at(&self, now: DateTime<Utc>) -> Res<u64> {
        self.run_sweep(now).await
    }
}

impl Driver for Floor {
    async fn create(&self, s: &Sess) -> Res<()> {
        self.upsert(&s.sid, &s.data, in_a_day()).await
    }

    async fn create_expired(&self, s: &Sess) -> Res<()> {
        self.upsert(&s.sid, &s.data, an_hour_ago()).await
    }

    async fn load(&self, s: &Sess) -> Res<bool> {
        self.select(&s.sid).await
    }

    async fn update(&self, s: &Sess) -> Res<()> {
        self.upsert(&s.sid, &s.data, in_a_day()).await
    }

    async fn touch(&self, s: &Sess) -> Res<()> {
        self.slide(&s.sid, in_a_day()).await?;
        Ok(())
    }

    async fn load_touch(&self, s: &Sess) -> Res<bool> {
        if !self.select(&s.sid).await? {
            return Ok(false);
        }
        self.slide(&s.sid, in_a_day()).await?;
        Ok(true)
    }

    async fn destroy(&self, s: &Sess) -> Res<()> {
        self.delete(&s.sid).await?;
        Ok(())
    }

    async fn sweep(&self) -> Res<()> {
        self.run_sweep(Utc::now()).await?;
        Ok(())
    }
}
