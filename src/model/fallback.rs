//! [`Fallback`]: the model asked for, or sessions in memory when its database was down at
//! start-up.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Capabilities, Created, MemoryModel, SessionModel, SessionRow};
use crate::Result;

/// A model that is either the one asked for or, when its database could not be reached at
/// start-up, a [`MemoryModel`]. Made by [`Store::auto_or_memory`](crate::Store::auto_or_memory).
#[derive(Debug)]
pub enum Fallback<M> {
    /// The model asked for.
    Primary(M),
    /// Sessions in memory, because the database was down when the store started.
    Memory(MemoryModel),
}

impl<M> Fallback<M> {
    /// Whether sessions are kept in memory instead of the database.
    pub fn is_memory(&self) -> bool {
        matches!(self, Fallback::Memory(_))
    }

    fn get(&self) -> &dyn SessionModel
    where
        M: SessionModel,
    {
        match self {
            Fallback::Primary(m) => m,
            Fallback::Memory(m) => m,
        }
    }
}

#[async_trait]
impl<M: SessionModel> SessionModel for Fallback<M> {
    fn capabilities(&self) -> Capabilities {
        self.get().capabilities()
    }

    async fn load(&self, sid: &str, now: DateTime<Utc>) -> Result<Option<SessionRow>> {
        self.get().load(sid, now).await
    }

    async fn create(&self, row: &SessionRow, now: DateTime<Utc>) -> Result<Created> {
        self.get().create(row, now).await
    }

    async fn save(&self, row: &SessionRow, now: DateTime<Utc>) -> Result<()> {
        self.get().save(row, now).await
    }

    async fn update(&self, row: &SessionRow, now: DateTime<Utc>) -> Result<bool> {
        self.get().update(row, now).await
    }

    async fn touch(
        &self,
        sid: &str,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
        only_if_before: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        self.get().touch(sid, expires, now, only_if_before).await
    }

    async fn load_and_touch(
        &self,
        sid: &str,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
        only_if_before: Option<DateTime<Utc>>,
    ) -> Result<Option<SessionRow>> {
        self.get()
            .load_and_touch(sid, expires, now, only_if_before)
            .await
    }

    async fn destroy(&self, sid: &str) -> Result<bool> {
        self.get().destroy(sid).await
    }

    async fn delete_expired(&self, now: DateTime<Utc>, limit: u32) -> Result<u64> {
        self.get().delete_expired(now, limit).await
    }

    async fn delete_all_expired(&self, now: DateTime<Utc>, batch: u32) -> Result<u64> {
        self.get().delete_all_expired(now, batch).await
    }

    async fn count(&self, now: DateTime<Utc>) -> Result<u64> {
        self.get().count(now).await
    }

    async fn list(&self, now: DateTime<Utc>) -> Result<Vec<SessionRow>> {
        self.get().list(now).await
    }

    async fn clear(&self) -> Result<u64> {
        self.get().clear().await
    }
}
