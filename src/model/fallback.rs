//! [`Fallback`]: the model asked for, or sessions in memory while its database could not be
//! reached, until it can.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{
    Capabilities, Created, MemoryModel, SessionModel, SessionRow, Slide, Sweep, UserSession,
};
use crate::Result;
use crate::task::AbortOnDrop;

/// Makes the model asked for; tried again while the database cannot be reached.
pub(crate) type MakeModel<M> =
    Box<dyn Fn() -> Pin<Box<dyn Future<Output = Result<M>> + Send>> + Send + Sync>;

/// The first wait before the database is tried again; it doubles up to [`MAX_RETRY_WAIT`].
const FIRST_RETRY_WAIT: Duration = Duration::from_secs(1);

/// The longest wait between two tries of the database.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(30);

/// A model that is the one asked for or, while its database cannot be reached, a
/// [`MemoryModel`]. Made by [`Store::auto_or_memory`](crate::Store::auto_or_memory).
///
/// When the database could not be reached at start-up, sessions are kept in memory and the
/// database is tried again in the background (after 1 s, then twice as long each time, up to
/// every 30 s). Once it answers, the switch is logged and every new session goes to the
/// database; the sessions made in memory meanwhile are still found, written and destroyed
/// there until they expire or are destroyed, and a destroy always reaches both. Memory sessions
/// are this process's only: behind a load balancer another instance does not see them.
pub struct Fallback<M> {
    primary: Arc<OnceLock<M>>,
    memory: MemoryModel,
    /// The task trying the database again, which ends with the model.
    _retry: Option<AbortOnDrop>,
}

impl<M> fmt::Debug for Fallback<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fallback")
            .field("model", &std::any::type_name::<M>())
            .field("in_memory", &self.is_memory())
            .finish()
    }
}

impl<M: SessionModel> Fallback<M> {
    /// Over `model`, which answered.
    pub(crate) fn primary(model: M) -> Self {
        let primary = Arc::new(OnceLock::new());
        let _ = primary.set(model);
        Fallback {
            primary,
            memory: MemoryModel::new(),
            _retry: None,
        }
    }

    /// Sessions in memory for now, while `connect` is tried again in the background until it
    /// makes the model (on the current tokio runtime; outside one, memory for good). An error
    /// other than a lost connection (a bad schema) is logged and tried again too: it may be
    /// fixed while the app runs.
    pub(crate) fn memory_until(connect: MakeModel<M>) -> Self {
        let primary = Arc::new(OnceLock::new());
        let retry = tokio::runtime::Handle::try_current().ok().map(|runtime| {
            let slot = Arc::downgrade(&primary);
            runtime
                .spawn(async move {
                    let mut wait = FIRST_RETRY_WAIT;
                    loop {
                        tokio::time::sleep(wait).await;
                        if slot.strong_count() == 0 {
                            return;
                        }
                        match connect().await {
                            Ok(model) => {
                                if let Some(slot) = slot.upgrade() {
                                    let _ = slot.set(model);
                                    tracing::warn!(
                                        "session database reachable again: new sessions are stored there"
                                    );
                                }
                                return;
                            }
                            Err(err) => tracing::debug!(error = %err, ?wait, "session database still unreachable"),
                        }
                        wait = (wait * 2).min(MAX_RETRY_WAIT);
                    }
                })
                .abort_handle()
        })
        .map(AbortOnDrop);
        Fallback {
            primary,
            memory: MemoryModel::new(),
            _retry: retry,
        }
    }
}

impl<M> Fallback<M> {
    /// Whether new sessions are kept in memory, the database not having answered yet.
    pub fn is_memory(&self) -> bool {
        self.primary.get().is_none()
    }

    /// The model asked for, once its database answered.
    pub fn primary_model(&self) -> Option<&M> {
        self.primary.get()
    }
}

#[async_trait]
impl<M: SessionModel> SessionModel for Fallback<M> {
    fn capabilities(&self) -> Capabilities {
        match self.primary.get() {
            Some(m) => m.capabilities(),
            None => self.memory.capabilities(),
        }
    }

    async fn load(&self, sid: &str, now: DateTime<Utc>) -> Result<Option<SessionRow>> {
        if let Some(m) = self.primary.get()
            && let Some(row) = m.load(sid, now).await?
        {
            return Ok(Some(row));
        }
        self.memory.load(sid, now).await
    }

    async fn create(&self, row: &SessionRow, now: DateTime<Utc>) -> Result<Created> {
        match self.primary.get() {
            // Insert-only across both: an id taken in memory is taken.
            Some(_) if self.memory.holds(&row.sid) => Ok(Created::AlreadyExists),
            Some(m) => m.create(row, now).await,
            None => self.memory.create(row, now).await,
        }
    }

    async fn save(&self, row: &SessionRow, now: DateTime<Utc>) -> Result<()> {
        match self.primary.get() {
            Some(m) if !self.memory.holds(&row.sid) => m.save(row, now).await,
            _ => self.memory.save(row, now).await,
        }
    }

    async fn update(&self, row: &SessionRow, now: DateTime<Utc>) -> Result<bool> {
        if let Some(m) = self.primary.get()
            && m.update(row, now).await?
        {
            return Ok(true);
        }
        self.memory.update(row, now).await
    }

    async fn touch(
        &self,
        sid: &str,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
        only_if_before: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        if let Some(m) = self.primary.get()
            && m.touch(sid, expires, now, only_if_before).await?
        {
            return Ok(true);
        }
        self.memory.touch(sid, expires, now, only_if_before).await
    }

    async fn load_and_touch(
        &self,
        sid: &str,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
        only_if_before: Option<DateTime<Utc>>,
    ) -> Result<Option<SessionRow>> {
        if let Some(m) = self.primary.get()
            && let Some(row) = m.load_and_touch(sid, expires, now, only_if_before).await?
        {
            return Ok(Some(row));
        }
        self.memory
            .load_and_touch(sid, expires, now, only_if_before)
            .await
    }

    async fn load_and_slide(&self, sid: &str, slide: Slide) -> Result<Option<SessionRow>> {
        if let Some(m) = self.primary.get()
            && let Some(row) = m.load_and_slide(sid, slide).await?
        {
            return Ok(Some(row));
        }
        self.memory.load_and_slide(sid, slide).await
    }

    async fn destroy(&self, sid: &str) -> Result<bool> {
        let in_memory = self.memory.destroy(sid).await?;
        let stored = match self.primary.get() {
            Some(m) => m.destroy(sid).await?,
            None => false,
        };
        Ok(in_memory || stored)
    }

    async fn delete_expired(&self, now: DateTime<Utc>, limit: u32) -> Result<u64> {
        let in_memory = self.memory.delete_expired(now, limit).await?;
        match self.primary.get() {
            Some(m) => Ok(in_memory + m.delete_expired(now, limit).await?),
            None => Ok(in_memory),
        }
    }

    async fn delete_all_expired(&self, now: DateTime<Utc>, batch: u32) -> Result<Sweep> {
        let in_memory = self.memory.delete_all_expired(now, batch).await?;
        match self.primary.get() {
            Some(m) => Ok(in_memory.and(m.delete_all_expired(now, batch).await?)),
            None => Ok(in_memory),
        }
    }

    async fn count(&self, now: DateTime<Utc>) -> Result<u64> {
        let in_memory = self.memory.count(now).await?;
        match self.primary.get() {
            Some(m) => Ok(in_memory + m.count(now).await?),
            None => Ok(in_memory),
        }
    }

    async fn list(&self, now: DateTime<Utc>) -> Result<Vec<SessionRow>> {
        let mut rows = self.memory.list(now).await?;
        if let Some(m) = self.primary.get() {
            rows.extend(m.list(now).await?);
        }
        Ok(rows)
    }

    async fn clear(&self) -> Result<u64> {
        let in_memory = self.memory.clear().await?;
        match self.primary.get() {
            Some(m) => Ok(in_memory + m.clear().await?),
            None => Ok(in_memory),
        }
    }

    async fn list_for_user<'a>(
        &self,
        user: &str,
        now: DateTime<Utc>,
        after: Option<&'a str>,
        limit: u32,
    ) -> Result<Vec<UserSession>> {
        let mut found = self.memory.list_for_user(user, now, after, limit).await?;
        if let Some(m) = self.primary.get() {
            found.extend(m.list_for_user(user, now, after, limit).await?);
            found.sort_by(|a, b| a.sid.cmp(&b.sid));
            found.truncate(limit as usize);
        }
        Ok(found)
    }

    async fn count_for_user(&self, user: &str, now: DateTime<Utc>) -> Result<u64> {
        let in_memory = self.memory.count_for_user(user, now).await?;
        match self.primary.get() {
            Some(m) => Ok(in_memory + m.count_for_user(user, now).await?),
            None => Ok(in_memory),
        }
    }

    async fn destroy_for_user<'a>(&self, user: &str, except: Option<&'a str>) -> Result<u64> {
        let in_memory = self.memory.destroy_for_user(user, except).await?;
        match self.primary.get() {
            Some(m) => Ok(in_memory + m.destroy_for_user(user, except).await?),
            None => Ok(in_memory),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn row(sid: &str, data: &str) -> SessionRow {
        SessionRow::new(sid, data, Some(Utc::now() + TimeDelta::hours(1)))
    }

    /// Sessions made in memory during the outage stay there once the database is back: an id
    /// taken in memory is taken, and a save of it goes to memory, not to the database; other
    /// sessions go to the database.
    #[tokio::test(start_paused = true)]
    async fn memory_sessions_stay_in_memory_after_the_database_answers() {
        let fallback =
            Fallback::memory_until(Box::new(|| Box::pin(async { Ok(MemoryModel::new()) })));
        let now = Utc::now();
        let created = fallback.create(&row("early", "{}"), now).await.unwrap();
        assert_eq!(created, Created::Inserted);
        assert!(fallback.is_memory());
        // The paused clock moves on in steps until the retry (due after a second) has run.
        for _ in 0..100 {
            if !fallback.is_memory() {
                break;
            }
            tokio::time::advance(Duration::from_millis(100)).await;
            tokio::task::yield_now().await;
        }
        let primary = fallback
            .primary_model()
            .expect("the retry set the database model");

        assert_eq!(
            fallback
                .create(&row("early", r#"{"b":1}"#), now)
                .await
                .unwrap(),
            Created::AlreadyExists
        );
        fallback
            .save(&row("early", r#"{"a":1}"#), now)
            .await
            .unwrap();
        fallback
            .save(&row("late", r#"{"a":2}"#), now)
            .await
            .unwrap();
        assert_eq!(primary.load("early", now).await.unwrap(), None);
        let early = fallback
            .load("early", now)
            .await
            .unwrap()
            .expect("in memory");
        assert_eq!(early.data, r#"{"a":1}"#);
        let late = primary
            .load("late", now)
            .await
            .unwrap()
            .expect("in the database");
        assert_eq!(late.data, r#"{"a":2}"#);
        assert!(fallback.memory.load("late", now).await.unwrap().is_none());
        let created = fallback.create(&row("new", "{}"), now).await.unwrap();
        assert_eq!(created, Created::Inserted);
        assert!(primary.load("new", now).await.unwrap().is_some());
    }
}
