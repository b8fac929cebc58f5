//! [`MemoryModel`]: sessions in a map in this process, for development and tests, and the
//! reference the SQL models are held to.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Capabilities, Created, SessionModel, SessionRow, touch_is_due};
use crate::{Error, Result};

/// A [`SessionModel`] that keeps sessions in memory, in this process only.
///
/// It holds to the same contract as the SQL models and is the reference they are tested
/// against. It keeps versions (see [`Capabilities::version`]). Sessions are lost
/// when the process ends and are not shared between instances.
#[derive(Debug, Default)]
pub struct MemoryModel {
    rows: Mutex<HashMap<String, SessionRow>>,
}

impl MemoryModel {
    /// An empty model.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a row with id `sid` is here, live or expired.
    pub(crate) fn holds(&self, sid: &str) -> bool {
        self.rows().contains_key(sid)
    }

    fn rows(&self) -> MutexGuard<'_, HashMap<String, SessionRow>> {
        // Every critical section below leaves the map consistent, so a panic elsewhere while the
        // lock was held cannot have broken it: go on with the data.
        self.rows.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl SessionModel for MemoryModel {
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE.with_version(true)
    }

    async fn load(&self, sid: &str, now: DateTime<Utc>) -> Result<Option<SessionRow>> {
        Ok(self.rows().get(sid).filter(|r| r.is_live(now)).cloned())
    }

    async fn create(&self, row: &SessionRow, _now: DateTime<Utc>) -> Result<Created> {
        let mut rows = self.rows();
        if rows.contains_key(&row.sid) {
            return Ok(Created::AlreadyExists);
        }
        rows.insert(row.sid.clone(), stored(row, 0));
        Ok(Created::Inserted)
    }

    async fn save(&self, row: &SessionRow, _now: DateTime<Utc>) -> Result<()> {
        let mut rows = self.rows();
        let version = rows
            .get(&row.sid)
            .and_then(|r| r.version)
            .map_or(0, |v| v + 1);
        rows.insert(row.sid.clone(), stored(row, version));
        Ok(())
    }

    async fn update(&self, row: &SessionRow, now: DateTime<Utc>) -> Result<bool> {
        let mut rows = self.rows();
        let Some(current) = rows.get_mut(&row.sid).filter(|r| r.is_live(now)) else {
            return Ok(false);
        };
        let found = current.version.unwrap_or(0);
        if let Some(expected) = row.version
            && expected != found
        {
            return Err(Error::Conflict {
                sid: row.sid.clone(),
                expected,
                found,
            });
        }
        *current = stored(row, found + 1);
        Ok(true)
    }

    async fn touch(
        &self,
        sid: &str,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
        only_if_before: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        let mut rows = self.rows();
        let Some(stored) = rows.get_mut(sid).filter(|r| r.is_live(now)) else {
            return Ok(false);
        };
        let due = touch_is_due(stored.expires, only_if_before);
        if due {
            stored.expires = Some(expires);
        }
        Ok(due)
    }

    async fn destroy(&self, sid: &str) -> Result<bool> {
        Ok(self.rows().remove(sid).is_some())
    }

    async fn delete_expired(&self, now: DateTime<Utc>, limit: u32) -> Result<u64> {
        let mut rows = self.rows();
        let doomed: Vec<String> = rows
            .values()
            .filter(|r| !r.is_live(now))
            .take(limit as usize)
            .map(|r| r.sid.clone())
            .collect();
        for sid in &doomed {
            rows.remove(sid);
        }
        Ok(doomed.len() as u64)
    }

    async fn count(&self, now: DateTime<Utc>) -> Result<u64> {
        Ok(self.rows().values().filter(|r| r.is_live(now)).count() as u64)
    }

    async fn list(&self, now: DateTime<Utc>) -> Result<Vec<SessionRow>> {
        Ok(self
            .rows()
            .values()
            .filter(|r| r.is_live(now))
            .cloned()
            .collect())
    }

    async fn clear(&self) -> Result<u64> {
        let mut rows = self.rows();
        let n = rows.len() as u64;
        rows.clear();
        Ok(n)
    }
}

/// `row` as stored at `version`.
fn stored(row: &SessionRow, version: i64) -> SessionRow {
    let mut row = row.clone();
    row.version = Some(version);
    row
}
