//! [`MemoryModel`]: sessions in a map in this process, for development and tests, and the
//! reference the SQL models are held to.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Capabilities, Created, SessionModel, SessionRow, Slide, UserSession, touch_is_due};
use crate::{Error, Result};

/// A [`SessionModel`] that keeps sessions in memory, in this process only.
///
/// It holds to the same contract as the SQL models and is the reference they are tested
/// against. It keeps versions and users (see [`Capabilities`]). Sessions are lost
/// when the process ends and are not shared between instances.
#[derive(Debug, Default)]
pub struct MemoryModel {
    rows: Mutex<HashMap<String, Stored>>,
}

/// A stored row, when it was made and when it was last written (created, saved, updated or
/// touched).
#[derive(Debug)]
struct Stored {
    row: SessionRow,
    created: DateTime<Utc>,
    written: DateTime<Utc>,
}

impl Stored {
    fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.row.is_live(now)
    }
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

    fn rows(&self) -> MutexGuard<'_, HashMap<String, Stored>> {
        // Every critical section below leaves the map consistent, so a panic elsewhere while the
        // lock was held cannot have broken it: go on with the data.
        self.rows.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl SessionModel for MemoryModel {
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE.with_version(true).with_user_id(true)
    }

    async fn load(&self, sid: &str, now: DateTime<Utc>) -> Result<Option<SessionRow>> {
        Ok(self
            .rows()
            .get(sid)
            .filter(|r| r.is_live(now))
            .map(|r| loaded(&r.row)))
    }

    async fn create(&self, row: &SessionRow, now: DateTime<Utc>) -> Result<Created> {
        let mut rows = self.rows();
        if rows.contains_key(&row.sid) {
            return Ok(Created::AlreadyExists);
        }
        rows.insert(row.sid.clone(), stored(row, 0, now, now));
        Ok(Created::Inserted)
    }

    async fn save(&self, row: &SessionRow, now: DateTime<Utc>) -> Result<()> {
        let mut rows = self.rows();
        let (version, created) = rows.get(&row.sid).map_or((0, now), |r| {
            (r.row.version.map_or(0, |v| v + 1), r.created)
        });
        rows.insert(row.sid.clone(), stored(row, version, created, now));
        Ok(())
    }

    async fn update(&self, row: &SessionRow, now: DateTime<Utc>) -> Result<bool> {
        let mut rows = self.rows();
        let Some(current) = rows.get_mut(&row.sid).filter(|r| r.is_live(now)) else {
            return Ok(false);
        };
        let found = current.row.version.unwrap_or(0);
        if let Some(expected) = row.version
            && expected != found
        {
            return Err(Error::Conflict {
                sid: row.sid.clone(),
                expected,
                found,
            });
        }
        *current = stored(row, found + 1, current.created, now);
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
        let due = touch_is_due(stored.row.expires, only_if_before);
        if due {
            stored.row.expires = Some(expires);
            stored.written = now;
        }
        Ok(due)
    }

    async fn load_and_slide(&self, sid: &str, slide: Slide) -> Result<Option<SessionRow>> {
        let mut rows = self.rows();
        let Some(stored) = rows.get_mut(sid).filter(|r| r.is_live(slide.now)) else {
            return Ok(None);
        };
        let to = slide.target(stored.row.expires, Some(stored.written));
        if touch_is_due(stored.row.expires, slide.only_if_before(to)) {
            stored.row.expires = Some(to);
            stored.written = slide.now;
        }
        Ok(Some(loaded(&stored.row)))
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
            .map(|r| r.row.sid.clone())
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
            .map(|r| loaded(&r.row))
            .collect())
    }

    async fn list_for_user<'a>(
        &self,
        user: &str,
        now: DateTime<Utc>,
        after: Option<&'a str>,
        limit: u32,
    ) -> Result<Vec<UserSession>> {
        let rows = self.rows();
        let mut found: Vec<&Stored> = rows
            .values()
            .filter(|r| r.is_live(now) && r.row.user_id.as_deref() == Some(user))
            .filter(|r| after.is_none_or(|after| r.row.sid.as_str() > after))
            .collect();
        found.sort_by(|a, b| a.row.sid.cmp(&b.row.sid));
        Ok(found
            .into_iter()
            .take(limit as usize)
            .map(|r| {
                UserSession::new(
                    r.row.sid.clone(),
                    Some(r.created),
                    Some(r.written),
                    r.row.expires,
                )
            })
            .collect())
    }

    async fn count_for_user(&self, user: &str, now: DateTime<Utc>) -> Result<u64> {
        Ok(self
            .rows()
            .values()
            .filter(|r| r.is_live(now) && r.row.user_id.as_deref() == Some(user))
            .count() as u64)
    }

    async fn destroy_for_user<'a>(&self, user: &str, except: Option<&'a str>) -> Result<u64> {
        let mut rows = self.rows();
        let before = rows.len();
        rows.retain(|sid, r| {
            r.row.user_id.as_deref() != Some(user) || except == Some(sid.as_str())
        });
        Ok((before - rows.len()) as u64)
    }

    async fn clear(&self) -> Result<u64> {
        let mut rows = self.rows();
        let n = rows.len() as u64;
        rows.clear();
        Ok(n)
    }
}

/// `row` as stored at `version`, made at `created` and written at `now`.
fn stored(row: &SessionRow, version: i64, created: DateTime<Utc>, now: DateTime<Utc>) -> Stored {
    let mut row = row.clone();
    row.version = Some(version);
    Stored {
        row,
        created,
        written: now,
    }
}

/// `row` as a load returns it: loads do not say whose a session is.
fn loaded(row: &SessionRow) -> SessionRow {
    let mut row = row.clone();
    row.user_id = None;
    row
}
