//! A model of your own: sessions in your table, with a `user_id` column the default model
//! does not have, so that you can list or end every session of one user.
//!
//! Run with: `cargo run --example custom_model`
//!
//! The table `app_sessions (id, payload, expires_at, user_id)` keeps expiries as Unix
//! milliseconds. The model fills `user_id` from the session's `"user_id"` field when it
//! writes. It uses only public items of the crate, as any model of yours can.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use sequelstore::sqlx::{self, Row, SqlitePool};
use sequelstore::{Created, Error, Result, SessionData, SessionModel, SessionRow, Store};
use serde_json::json;

#[derive(Debug, Clone)]
struct AppSessions {
    pool: SqlitePool,
}

fn millis(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(|t| t.timestamp_millis())
}

fn user_of(data: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(data).ok()?;
    value.get("user_id")?.as_str().map(str::to_owned)
}

fn decode(row: &sqlx::sqlite::SqliteRow) -> Result<SessionRow> {
    let id: String = row.try_get("id")?;
    let expires = match row.try_get::<Option<i64>, _>("expires_at")? {
        None => None,
        Some(ms) => Some(Utc.timestamp_millis_opt(ms).single().ok_or_else(|| {
            Error::decode(id.clone(), "expires_at", format!("{ms} is not a time"))
        })?),
    };
    Ok(SessionRow::new(
        id,
        row.try_get::<String, _>("payload")?,
        expires,
    ))
}

impl AppSessions {
    async fn new(pool: SqlitePool) -> Result<Self> {
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS app_sessions (
                 id TEXT PRIMARY KEY, payload TEXT NOT NULL, expires_at INTEGER, user_id TEXT);
             CREATE INDEX IF NOT EXISTS app_sessions_expires ON app_sessions (expires_at);
             CREATE INDEX IF NOT EXISTS app_sessions_user ON app_sessions (user_id);",
        )
        .execute(&pool)
        .await?;
        Ok(AppSessions { pool })
    }

    /// What the extra column is for: every live session of one user...
    async fn sessions_of(&self, user: &str, now: DateTime<Utc>) -> Result<Vec<SessionRow>> {
        let rows = sqlx::query(
            "SELECT * FROM app_sessions WHERE user_id = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
        )
        .bind(user)
        .bind(now.timestamp_millis())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode).collect()
    }

    /// ...and signing one user out everywhere.
    async fn end_sessions_of(&self, user: &str) -> Result<u64> {
        let done = sqlx::query("DELETE FROM app_sessions WHERE user_id = ?1")
            .bind(user)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl SessionModel for AppSessions {
    async fn load(&self, sid: &str, now: DateTime<Utc>) -> Result<Option<SessionRow>> {
        let row = sqlx::query(
            "SELECT * FROM app_sessions WHERE id = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
        )
        .bind(sid)
        .bind(now.timestamp_millis())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(decode).transpose()
    }

    async fn create(&self, row: &SessionRow, _now: DateTime<Utc>) -> Result<Created> {
        let done = sqlx::query(
            "INSERT INTO app_sessions (id, payload, expires_at, user_id) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&row.sid)
        .bind(&row.data)
        .bind(millis(row.expires))
        .bind(user_of(&row.data))
        .execute(&self.pool)
        .await?;
        Ok(if done.rows_affected() == 1 {
            Created::Inserted
        } else {
            Created::AlreadyExists
        })
    }

    async fn save(&self, row: &SessionRow, _now: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "INSERT INTO app_sessions (id, payload, expires_at, user_id) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO UPDATE SET payload = excluded.payload,
                 expires_at = excluded.expires_at, user_id = excluded.user_id",
        )
        .bind(&row.sid)
        .bind(&row.data)
        .bind(millis(row.expires))
        .bind(user_of(&row.data))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn update(&self, row: &SessionRow, now: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE app_sessions SET payload = ?2, expires_at = ?3, user_id = ?4
             WHERE id = ?1 AND (expires_at IS NULL OR expires_at > ?5)",
        )
        .bind(&row.sid)
        .bind(&row.data)
        .bind(millis(row.expires))
        .bind(user_of(&row.data))
        .bind(now.timestamp_millis())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn touch(
        &self,
        sid: &str,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
        only_if_before: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE app_sessions SET expires_at = ?2
             WHERE id = ?1 AND (expires_at IS NULL OR expires_at > ?3)
               AND (?4 IS NULL OR expires_at IS NULL OR expires_at < ?4)",
        )
        .bind(sid)
        .bind(expires.timestamp_millis())
        .bind(now.timestamp_millis())
        .bind(millis(only_if_before))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn destroy(&self, sid: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM app_sessions WHERE id = ?1")
            .bind(sid)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_expired(&self, now: DateTime<Utc>, limit: u32) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM app_sessions WHERE id IN (SELECT id FROM app_sessions
                 WHERE expires_at <= ?1 LIMIT ?2) AND expires_at <= ?1",
        )
        .bind(now.timestamp_millis())
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn count(&self, now: DateTime<Utc>) -> Result<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM app_sessions WHERE expires_at IS NULL OR expires_at > ?1",
        )
        .bind(now.timestamp_millis())
        .fetch_one(&self.pool)
        .await?;
        Ok(n.max(0) as u64)
    }

    async fn list(&self, now: DateTime<Utc>) -> Result<Vec<SessionRow>> {
        let rows =
            sqlx::query("SELECT * FROM app_sessions WHERE expires_at IS NULL OR expires_at > ?1")
                .bind(now.timestamp_millis())
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(decode).collect()
    }

    async fn clear(&self) -> Result<u64> {
        let done = sqlx::query("DELETE FROM app_sessions")
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let pool = SqlitePool::connect("sqlite://custom_model.db?mode=rwc").await?;
    let model = AppSessions::new(pool).await?;
    let store = Store::with_model(model).with_ttl(Duration::from_secs(3600));

    for (sid, user) in [("s1", "ann"), ("s2", "ann"), ("s3", "bob")] {
        let data = SessionData::from_iter([("user_id".to_string(), json!(user))]);
        store.set(sid, &data, None).await?;
    }
    let ann = store.model().sessions_of("ann", store.now()).await?;
    println!(
        "ann has {} sessions: {:?}",
        ann.len(),
        ann.iter().map(|r| &r.sid).collect::<Vec<_>>()
    );
    println!(
        "signed ann out everywhere: {} sessions",
        store.model().end_sessions_of("ann").await?
    );
    println!("s1 now: {:?}", store.get("s1").await?.map(|s| s.id));
    println!("live sessions left: {}", store.length().await?);
    store.clear().await?;
    Ok(())
}
