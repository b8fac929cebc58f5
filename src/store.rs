//! [`Store`]: the policy over a [`SessionModel`]: ttl, touch, removal of expired sessions,
//! serialization. It knows nothing of SQL.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use tokio::task::JoinHandle;

use crate::clock::{Clock, SystemClock};
use crate::connect_session::{Backend, Connect, ConnectSession, DEFAULT_BATCH};
use crate::error::redact;
use crate::memory::{Fallback, MemoryModel};
use crate::model::{Created, SessionModel, SessionRow};
use crate::serializer::{Json, Serializer, SessionData};
use crate::sql::MAX_SID_LEN;
use crate::{Error, Result};

/// How long a session lives when the caller gives no expiry: 14 days.
pub const DEFAULT_TTL: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// The latest expiry a store writes: the end of year 9999, which every database's time type
/// holds (MySQL's `DATETIME` ends there). A longer ttl is cut to it.
pub const LATEST: DateTime<Utc> = match DateTime::from_timestamp(253_402_300_799, 999_000_000) {
    Some(t) => t,
    None => panic!("the end of 9999 is a valid time"),
};

/// How often expired sessions are removed unless told otherwise: every 15 minutes.
pub const DEFAULT_CLEANUP_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// A session as the store hands it out.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Session {
    /// The session id.
    pub id: String,
    /// The session's data.
    pub data: SessionData,
    /// When it expires; `None` for a row written without expiry by another client.
    pub expires: Option<DateTime<Utc>>,
    /// The stored version, when the model keeps versions: pass the session back to
    /// [`Store::update_session`] to write it only if nobody else wrote it meanwhile.
    pub version: Option<i64>,
}

/// How [`Store::update_session`] resolves a write based on a version that is no longer stored.
type Merge = dyn Fn(&SessionData, &SessionData) -> SessionData + Send + Sync;

/// A session store: a [`SessionModel`] plus the policy for it.
///
/// - **ttl**: a session written without an expiry of its own (a cookie's) expires `ttl` after
///   the write; 14 days unless set with [`Store::with_ttl`].
/// - **touch**: [`Store::touch`] slides the expiry; with [`Store::with_touch_after`] a session
///   is written at most once per interval.
/// - **cleanup**: a background task removes expired sessions every 15 minutes (with jitter, in
///   batches), logs failures and tries again at the next tick; [`Store::with_cleanup_interval`]
///   changes or turns it off. It stops when the last clone of the store is dropped.
///
/// Cloning is cheap and shares the model and the cleanup task.
pub struct Store<M> {
    model: Arc<M>,
    ttl: Duration,
    touch_after: Option<Duration>,
    sliding: bool,
    max_data_len: Option<usize>,
    serializer: Arc<dyn Serializer>,
    clock: Arc<dyn Clock>,
    cleanup_interval: Option<Duration>,
    cleanup_batch: u32,
    merge: Option<Arc<Merge>>,
    sweeper: Arc<Sweeper>,
}

/// How many times [`Store::update_session`] merges and tries again before giving up.
const MERGE_ATTEMPTS: usize = 8;

impl<M> Clone for Store<M> {
    fn clone(&self) -> Self {
        Store {
            model: Arc::clone(&self.model),
            ttl: self.ttl,
            touch_after: self.touch_after,
            sliding: self.sliding,
            max_data_len: self.max_data_len,
            serializer: Arc::clone(&self.serializer),
            clock: Arc::clone(&self.clock),
            cleanup_interval: self.cleanup_interval,
            cleanup_batch: self.cleanup_batch,
            merge: self.merge.clone(),
            sweeper: Arc::clone(&self.sweeper),
        }
    }
}

impl<M> fmt::Debug for Store<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("model", &std::any::type_name::<M>())
            .field("ttl", &self.ttl)
            .field("touch_after", &self.touch_after)
            .field("sliding", &self.sliding)
            .field("max_data_len", &self.max_data_len)
            .field("serializer", &self.serializer)
            .field("clock", &self.clock)
            .field("cleanup_interval", &self.cleanup_interval)
            .field("cleanup_batch", &self.cleanup_batch)
            .field("merge", &self.merge.is_some())
            .finish()
    }
}

impl<B: Backend> Store<ConnectSession<B>> {
    /// Creates the `ConnectSession` table when missing and returns a store over it.
    /// `backend` is the application's pool: `SqlitePool`, `PgPool`, `MySqlPool` or a
    /// `RusqliteConnection`.
    ///
    /// # Errors
    /// As [`ConnectSession::auto`].
    pub async fn auto(backend: B) -> Result<Self> {
        Ok(Store::with_model(ConnectSession::auto(backend).await?))
    }

    /// Finds an existing `ConnectSession` or `ConnectSessions` table and returns a store over it.
    ///
    /// # Errors
    /// As [`ConnectSession::discover`]: the error names the table, the column and the fix.
    pub async fn discover(backend: B) -> Result<Self> {
        Ok(Store::with_model(ConnectSession::discover(backend).await?))
    }

    /// [`Store::auto`] for a table of another name.
    ///
    /// # Errors
    /// As [`ConnectSession::auto_table`].
    pub async fn auto_table(backend: B, table: &str) -> Result<Self> {
        Ok(Store::with_model(
            ConnectSession::auto_table(backend, table).await?,
        ))
    }

    /// [`Store::discover`] for a table of another name.
    ///
    /// # Errors
    /// As [`ConnectSession::discover_table`].
    pub async fn discover_table(backend: B, table: &str) -> Result<Self> {
        Ok(Store::with_model(
            ConnectSession::discover_table(backend, table).await?,
        ))
    }

    /// Like [`Store::auto`], but when the database cannot be reached at start-up the store
    /// keeps sessions in memory instead, and logs a warning; [`Fallback::is_memory`] tells which.
    /// Any other error (a bad schema, say) is still returned.
    ///
    /// # Errors
    /// As [`Store::auto`], except connection failures.
    pub async fn auto_or_memory(backend: B) -> Result<Store<Fallback<ConnectSession<B>>>> {
        let model = match ConnectSession::auto(backend).await {
            Ok(model) => Fallback::Primary(model),
            Err(err) if err.is_connection() => {
                tracing::warn!(error = %err, "session database unreachable; keeping sessions in memory, they will not survive a restart");
                Fallback::Memory(MemoryModel::new())
            }
            Err(err) => return Err(err),
        };
        Ok(Store::with_model(model))
    }
}

impl<B: Connect> Store<ConnectSession<B>> {
    /// Opens a connection to `url` itself and then works as [`Store::auto`]: for when the
    /// application has no pool of its own. SQLite files are opened with WAL,
    /// `synchronous=NORMAL` and a busy timeout, and created when missing.
    ///
    /// # Errors
    /// The driver's error when the URL is bad or the database cannot be reached; then as
    /// [`Store::auto`].
    pub async fn connect(url: &str) -> Result<Self> {
        Store::auto(B::connect(url).await?).await
    }
}

impl<M: SessionModel> Store<M> {
    /// A store over any model, a user's own included, with the default policy. The cleanup
    /// task starts now when called inside a tokio runtime, else on the store's first call.
    pub fn with_model(model: M) -> Self {
        let store = Store {
            model: Arc::new(model),
            ttl: DEFAULT_TTL,
            touch_after: None,
            sliding: false,
            max_data_len: None,
            serializer: Arc::new(Json),
            clock: Arc::new(SystemClock),
            cleanup_interval: Some(DEFAULT_CLEANUP_INTERVAL),
            cleanup_batch: DEFAULT_BATCH,
            merge: None,
            sweeper: Arc::new(Sweeper::default()),
        };
        store.start_sweeper_if_in_runtime();
        store
    }

    /// How long a session lives when written without an expiry of its own.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Touch a session at most once per `interval`: a touch whose new expiry is less than
    /// `interval` past the stored one writes nothing (connect-mongo's `touchAfter`). The check
    /// is inside the same UPDATE, so a skipped touch costs one statement and no write.
    pub fn with_touch_after(mut self, interval: Duration) -> Self {
        self.touch_after = Some(interval).filter(|d| !d.is_zero());
        self
    }

    /// Slide a session's expiry to now + ttl whenever a web adapter loads it, in the same
    /// statement as the load where the database allows ([`Store::get_and_touch`]) and honouring
    /// [`Store::with_touch_after`]. With tower-sessions, pair it with `Expiry::OnSessionEnd`
    /// so that an unchanged session is not written back on every request.
    pub fn with_sliding_expiry(mut self, yes: bool) -> Self {
        self.sliding = yes;
        self
    }

    /// Whether adapters slide the expiry on load ([`Store::with_sliding_expiry`]).
    pub fn sliding_expiry(&self) -> bool {
        self.sliding
    }

    /// Refuse to store a session whose serialized data is longer than `bytes`, with
    /// [`Error::InvalidInput`].
    pub fn with_max_data_len(mut self, bytes: usize) -> Self {
        self.max_data_len = Some(bytes);
        self
    }

    /// Store session data with `serializer` instead of JSON.
    pub fn with_serializer(mut self, serializer: impl Serializer) -> Self {
        self.serializer = Arc::new(serializer);
        self
    }

    /// When [`Store::update_session`] finds that someone else wrote the session since it was
    /// read, call `merge(stored, ours)` and write its result (based on the stored version)
    /// instead of failing with [`Error::Conflict`]. Without it, conflicts are errors.
    pub fn with_conflict_merge(
        mut self,
        merge: impl Fn(&SessionData, &SessionData) -> SessionData + Send + Sync + 'static,
    ) -> Self {
        self.merge = Some(Arc::new(merge));
        self
    }

    /// Read `now` from `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self.restart_sweeper()
    }

    /// Remove expired sessions every `interval` (with up to 10% jitter, so that app instances
    /// sharing a database do not sweep at once); `None` turns the task off, for deployments
    /// that clean up elsewhere (see [`Store::remove_expired`]).
    pub fn with_cleanup_interval(mut self, interval: Option<Duration>) -> Self {
        self.cleanup_interval = interval.filter(|d| !d.is_zero());
        self.restart_sweeper()
    }

    /// Delete at most `rows` expired sessions per statement when sweeping (default 1000), so a
    /// large sweep never holds long locks.
    pub fn with_cleanup_batch(mut self, rows: u32) -> Self {
        self.cleanup_batch = rows.max(1);
        self.restart_sweeper()
    }

    fn restart_sweeper(mut self) -> Self {
        self.sweeper = Arc::new(Sweeper::default());
        self.start_sweeper_if_in_runtime();
        self
    }

    /// Stops the cleanup task now, for a graceful shutdown; it does not start again for this
    /// store or its clones. (It also stops by itself when the last clone is dropped.)
    pub fn stop_cleanup(&self) {
        match self.sweeper.handle.get() {
            Some(task) => task.abort(),
            // Not started (outside a runtime): make sure it never starts.
            None => {
                let _ = self.sweeper.handle.set(AbortOnDrop(None));
            }
        }
    }

    /// The model under this store.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The ttl in force.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The touch throttle in force, if any.
    pub fn touch_after(&self) -> Option<Duration> {
        self.touch_after
    }

    /// The cleanup interval in force; `None` when the task is off.
    pub fn cleanup_interval(&self) -> Option<Duration> {
        self.cleanup_interval
    }

    /// `now` from the store's clock, to the millisecond (what every backend keeps).
    pub fn now(&self) -> DateTime<Utc> {
        to_millis(self.clock.now())
    }

    /// The expiry a session written now gets: `expires` when given (the cookie's wins),
    /// otherwise now + ttl; never later than [`LATEST`].
    pub fn expiry(&self, expires: Option<DateTime<Utc>>) -> DateTime<Utc> {
        self.expiry_at(self.now(), expires)
    }

    /// [`Store::expiry`] for a write at `now`, so that one call reads the clock once.
    fn expiry_at(&self, now: DateTime<Utc>, expires: Option<DateTime<Utc>>) -> DateTime<Utc> {
        match expires {
            Some(t) => to_millis(t).min(LATEST),
            None => later_by(now, delta(self.ttl)),
        }
    }

    /// The live session `sid`, or `None` when there is none or it has expired.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad id; [`Error::Decode`] for a stored session that does not
    /// decode; the model's error.
    pub async fn get(&self, sid: &str) -> Result<Option<Session>> {
        self.ensure_sweeper();
        check_sid(sid)?;
        match self.model.load(sid, self.now()).await? {
            Some(row) => Ok(Some(self.decode(row)?)),
            None => Ok(None),
        }
    }

    /// The live session `sid` with its expiry slid to `expires` (or now + ttl), honouring the
    /// touch throttle: [`Store::get`] and [`Store::touch`] in one call, and on PostgreSQL and
    /// SQLite in one statement. The session comes back with the expiry it has after the touch.
    ///
    /// # Errors
    /// As [`Store::get`].
    pub async fn get_and_touch(
        &self,
        sid: &str,
        expires: Option<DateTime<Utc>>,
    ) -> Result<Option<Session>> {
        self.ensure_sweeper();
        check_sid(sid)?;
        let now = self.now();
        let expires = self.expiry_at(now, expires);
        let only_if_before = self.throttle_limit(expires);
        match self
            .model
            .load_and_touch(sid, expires, now, only_if_before)
            .await?
        {
            Some(row) => Ok(Some(self.decode(row)?)),
            None => Ok(None),
        }
    }

    /// The throttle condition for a touch to `expires`: the stored expiry must be before it.
    fn throttle_limit(&self, expires: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.touch_after.map(|after| {
            expires
                .checked_sub_signed(delta(after))
                .unwrap_or(DateTime::<Utc>::MIN_UTC)
        })
    }

    /// Writes session `sid` (insert or replace), expiring at `expires` or after the ttl.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad id or an oversized session; [`Error::Encode`]; the model's error.
    pub async fn set(
        &self,
        sid: &str,
        data: &SessionData,
        expires: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let now = self.now();
        let row = self.encode(sid, data, self.expiry_at(now, expires))?;
        self.model.save(&row, now).await
    }

    /// Inserts session `sid` as new; an existing id is reported, never overwritten.
    ///
    /// # Errors
    /// As [`Store::set`].
    pub async fn create(
        &self,
        sid: &str,
        data: &SessionData,
        expires: Option<DateTime<Utc>>,
    ) -> Result<Created> {
        let now = self.now();
        let row = self.encode(sid, data, self.expiry_at(now, expires))?;
        self.model.create(&row, now).await
    }

    /// Replaces live session `sid` and returns whether there was one: a session destroyed or
    /// expired meanwhile stays gone (a request finishing after logout does not log back in).
    ///
    /// # Errors
    /// As [`Store::set`].
    pub async fn update(
        &self,
        sid: &str,
        data: &SessionData,
        expires: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        let now = self.now();
        let row = self.encode(sid, data, self.expiry_at(now, expires))?;
        self.model.update(&row, now).await
    }

    /// Writes `session` back only if the stored version is still `session.version`
    /// (optimistic concurrency), raising the version; returns whether a live session was
    /// written. When someone else wrote it meanwhile, the merge set with
    /// [`Store::with_conflict_merge`] combines the two and the write is tried again; without
    /// one, that is [`Error::Conflict`]. A session without a version (an unversioned model) is
    /// written as [`Store::update`] does.
    ///
    /// # Errors
    /// [`Error::Conflict`], and as [`Store::set`].
    pub async fn update_session(&self, session: &Session) -> Result<bool> {
        let mut now = self.now();
        let expires = self.expiry_at(now, session.expires);
        let mut row = self.encode(&session.id, &session.data, expires)?;
        row.version = session.version;
        let mut attempts = 0;
        loop {
            match self.model.update(&row, now).await {
                Err(Error::Conflict { .. })
                    if self.merge.is_some() && attempts < MERGE_ATTEMPTS =>
                {
                    attempts += 1;
                    let Some(stored) = self.get(&session.id).await? else {
                        return Ok(false);
                    };
                    let merge = self.merge.as_deref().expect("checked in the match guard");
                    let merged = merge(&stored.data, &session.data);
                    row = self.encode(&session.id, &merged, expires)?;
                    row.version = stored.version;
                    now = self.now();
                }
                other => return other,
            }
        }
    }

    /// Slides the expiry of live session `sid` to `expires` (or now + ttl), honouring the touch
    /// throttle. Returns whether a write happened: `false` for a missing or expired session and
    /// for a touch the throttle skipped.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad id; the model's error.
    pub async fn touch(&self, sid: &str, expires: Option<DateTime<Utc>>) -> Result<bool> {
        self.ensure_sweeper();
        check_sid(sid)?;
        let now = self.now();
        let expires = self.expiry_at(now, expires);
        let only_if_before = self.throttle_limit(expires);
        self.model.touch(sid, expires, now, only_if_before).await
    }

    /// Deletes session `sid` and returns whether there was one.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad id; the model's error.
    pub async fn destroy(&self, sid: &str) -> Result<bool> {
        self.ensure_sweeper();
        check_sid(sid)?;
        self.model.destroy(sid).await
    }

    /// All live sessions.
    ///
    /// # Errors
    /// [`Error::Decode`] naming the first stored session that does not decode; the model's error.
    pub async fn all(&self) -> Result<Vec<Session>> {
        self.ensure_sweeper();
        let rows = self.model.list(self.now()).await?;
        rows.into_iter().map(|row| self.decode(row)).collect()
    }

    /// The number of live sessions.
    ///
    /// # Errors
    /// The model's error.
    pub async fn length(&self) -> Result<u64> {
        self.ensure_sweeper();
        self.model.count(self.now()).await
    }

    /// Deletes every session, live or expired, and returns how many went.
    ///
    /// # Errors
    /// The model's error.
    pub async fn clear(&self) -> Result<u64> {
        self.ensure_sweeper();
        self.model.clear().await
    }

    /// Removes all expired sessions now, in batches, and returns how many went: for a cron job
    /// when the background task is off.
    ///
    /// # Errors
    /// The model's error; rows deleted by earlier batches stay deleted.
    pub async fn remove_expired(&self) -> Result<u64> {
        self.model
            .delete_all_expired(self.now(), self.cleanup_batch)
            .await
    }

    /// The row for session `sid`, serialized for a row that expires at `expires`.
    fn encode(&self, sid: &str, data: &SessionData, expires: DateTime<Utc>) -> Result<SessionRow> {
        self.ensure_sweeper();
        check_sid(sid)?;
        let text = self
            .serializer
            .serialize(data, Some(expires))
            .map_err(|source| Error::Encode {
                sid: sid.to_owned(),
                source,
            })?;
        if let Some(max) = self.max_data_len
            && text.len() > max
        {
            return Err(Error::InvalidInput(format!(
                "session {} is {} bytes serialized, over the store's maximum of {max}; \
                 store less in the session or raise the limit with Store::with_max_data_len",
                redact(sid),
                text.len()
            )));
        }
        Ok(SessionRow::new(sid, text, Some(expires)))
    }

    fn decode(&self, row: SessionRow) -> Result<Session> {
        let data = self
            .serializer
            .deserialize(&row.data)
            .map_err(|e| Error::Decode {
                sid: row.sid.clone(),
                column: "data",
                message: e.to_string(),
            })?;
        Ok(Session {
            id: row.sid,
            data,
            expires: row.expires,
            version: row.version,
        })
    }

    fn ensure_sweeper(&self) {
        if self.sweeper.handle.get().is_none() {
            self.start_sweeper_if_in_runtime();
        }
    }

    fn start_sweeper_if_in_runtime(&self) {
        let Some(interval) = self.cleanup_interval else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        self.sweeper.handle.get_or_init(|| {
            let task = run_sweeper(
                Arc::downgrade(&self.model),
                Arc::clone(&self.clock),
                interval,
                self.cleanup_batch,
            );
            AbortOnDrop(Some(runtime.spawn(task)))
        });
    }
}

/// The cleanup task of a store and its clones; aborted when the last of them is dropped.
#[derive(Debug, Default)]
struct Sweeper {
    handle: OnceLock<AbortOnDrop>,
}

#[derive(Debug)]
struct AbortOnDrop(Option<JoinHandle<()>>);

impl AbortOnDrop {
    fn abort(&self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.abort();
    }
}

async fn run_sweeper<M: SessionModel>(
    model: Weak<M>,
    clock: Arc<dyn Clock>,
    interval: Duration,
    batch: u32,
) {
    // The first sweep comes at a random point within the first interval, so that instances
    // started together spread out; then every interval, give or take 10%.
    let mut delay = interval.mul_f64(random_unit());
    loop {
        tokio::time::sleep(delay).await;
        let Some(model) = model.upgrade() else { return };
        match model
            .delete_all_expired(to_millis(clock.now()), batch)
            .await
        {
            Ok(0) => tracing::trace!("session cleanup: nothing expired"),
            Ok(n) => tracing::debug!(removed = n, "session cleanup"),
            Err(err) => {
                tracing::warn!(error = %err, "session cleanup failed; trying again next interval")
            }
        }
        drop(model);
        delay = interval.mul_f64(0.9 + 0.2 * random_unit());
    }
}

/// A number in [0, 1) from the process's random hasher keys: enough to spread sweeps apart,
/// not for anything secret.
fn random_unit() -> f64 {
    let bits = RandomState::new().hash_one(std::time::Instant::now());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

fn check_sid(sid: &str) -> Result<()> {
    if sid.is_empty() {
        return Err(Error::InvalidInput("session id is empty".into()));
    }
    if sid.chars().count() > MAX_SID_LEN {
        return Err(Error::InvalidInput(format!(
            "session id is {} characters long; the sid column holds at most {MAX_SID_LEN}",
            sid.chars().count()
        )));
    }
    Ok(())
}

fn to_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::milliseconds(1)).unwrap_or(t)
}

/// `now + delta`, never later than [`LATEST`] (nor past the end of chrono's range).
pub(crate) fn later_by(now: DateTime<Utc>, delta: TimeDelta) -> DateTime<Utc> {
    now.checked_add_signed(delta)
        .map_or(LATEST, |t| t.min(LATEST))
}

/// A `std` duration as chrono's, saturating.
pub(crate) fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use chrono::TimeZone;
    use mockall::predicate::eq;

    use super::*;
    use crate::MemoryModel;
    use crate::model::MockSessionModel;

    #[derive(Debug)]
    struct Fixed(DateTime<Utc>);

    impl Clock for Fixed {
        fn now(&self) -> DateTime<Utc> {
            self.0
        }
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).single().unwrap()
    }

    fn quiet(mock: MockSessionModel) -> Store<MockSessionModel> {
        Store::with_model(mock)
            .with_cleanup_interval(None)
            .with_clock(Fixed(t0()))
    }

    fn data() -> SessionData {
        SessionData::from_iter([("n".to_string(), serde_json::json!(1))])
    }

    #[tokio::test]
    async fn ttl_defaults_to_14_days() {
        let mut mock = MockSessionModel::new();
        mock.expect_save()
            .withf(|row, now| {
                *now == t0()
                    && row.expires == Some(t0() + TimeDelta::days(14))
                    && row.data == r#"{"n":1}"#
            })
            .times(1)
            .returning(|_, _| Ok(()));
        quiet(mock).set("s", &data(), None).await.unwrap();
    }

    #[tokio::test]
    async fn the_callers_expiry_wins_over_the_ttl() {
        let cookie = t0() + TimeDelta::minutes(5) + TimeDelta::microseconds(1_234_567);
        let mut mock = MockSessionModel::new();
        mock.expect_save()
            .withf(move |row, _| {
                row.expires == Some(t0() + TimeDelta::minutes(5) + TimeDelta::milliseconds(1234))
            })
            .times(1)
            .returning(|_, _| Ok(()));
        let store = quiet(mock).with_ttl(Duration::from_secs(60));
        store.set("s", &data(), Some(cookie)).await.unwrap();
    }

    #[tokio::test]
    async fn a_custom_ttl_is_used_for_new_expiries() {
        let mut mock = MockSessionModel::new();
        mock.expect_create()
            .withf(|row, _| row.expires == Some(t0() + TimeDelta::hours(1)))
            .times(1)
            .returning(|_, _| Ok(Created::Inserted));
        let store = quiet(mock).with_ttl(Duration::from_secs(3600));
        assert_eq!(
            store.create("s", &data(), None).await.unwrap(),
            Created::Inserted
        );
    }

    #[tokio::test]
    async fn touch_without_throttle_always_writes() {
        let mut mock = MockSessionModel::new();
        mock.expect_touch()
            .with(
                eq("s"),
                eq(t0() + TimeDelta::days(14)),
                eq(t0()),
                eq(None::<DateTime<Utc>>),
            )
            .times(1)
            .returning(|_, _, _, _| Ok(true));
        assert!(quiet(mock).touch("s", None).await.unwrap());
    }

    #[tokio::test]
    async fn touch_throttle_asks_the_model_for_a_guarded_update() {
        let mut mock = MockSessionModel::new();
        let expires = t0() + TimeDelta::hours(1);
        mock.expect_touch()
            .with(
                eq("s"),
                eq(expires),
                eq(t0()),
                eq(Some(expires - TimeDelta::seconds(60))),
            )
            .times(1)
            .returning(|_, _, _, _| Ok(false));
        let store = quiet(mock)
            .with_ttl(Duration::from_secs(3600))
            .with_touch_after(Duration::from_secs(60));
        assert!(!store.touch("s", None).await.unwrap());
    }

    #[tokio::test]
    async fn bad_ids_and_oversized_data_never_reach_the_model() {
        let store = quiet(MockSessionModel::new()).with_max_data_len(8);
        for sid in ["", &"x".repeat(256)] {
            assert!(matches!(store.get(sid).await, Err(Error::InvalidInput(_))));
            assert!(matches!(
                store.set(sid, &data(), None).await,
                Err(Error::InvalidInput(_))
            ));
            assert!(matches!(
                store.destroy(sid).await,
                Err(Error::InvalidInput(_))
            ));
        }
        let big = SessionData::from_iter([("k".to_string(), serde_json::json!("0123456789"))]);
        let err = store.set("ok", &big, None).await.unwrap_err();
        assert!(err.to_string().contains("with_max_data_len"), "{err}");
    }

    #[tokio::test]
    async fn undecodable_data_is_a_decode_error_naming_the_session() {
        let mut mock = MockSessionModel::new();
        mock.expect_load()
            .returning(|sid, _| Ok(Some(SessionRow::new(sid, "not json", None))));
        match quiet(mock).get("bad").await {
            Err(Error::Decode { sid, column, .. }) => {
                assert_eq!((sid.as_str(), column), ("bad", "data"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn remove_expired_is_one_sweep_in_the_stores_batches() {
        let mut mock = MockSessionModel::new();
        mock.expect_delete_all_expired()
            .withf(|now, batch| *now == t0() && *batch == 10)
            .times(1)
            .returning(|_, _| Ok(23));
        let store = quiet(mock).with_cleanup_batch(10);
        assert_eq!(store.remove_expired().await.unwrap(), 23);
    }

    #[tokio::test]
    async fn batches_are_deleted_until_one_comes_back_short() {
        let mut mock = MockSessionModel::new();
        let calls = Arc::new(AtomicU32::new(0));
        let seen = Arc::clone(&calls);
        mock.expect_delete_expired()
            .withf(|now, limit| *now == t0() && *limit == 10)
            .returning(move |_, _| {
                let n = seen.fetch_add(1, Ordering::SeqCst);
                Ok(if n < 2 { 10 } else { 3 })
            });
        let removed = crate::model::delete_expired_in_batches(&mock, t0(), 10).await;
        assert_eq!(removed.unwrap(), 23);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    fn counting_sweeps(fail_first: u32) -> (MockSessionModel, Arc<AtomicU32>) {
        let mut mock = MockSessionModel::new();
        let calls = Arc::new(AtomicU32::new(0));
        let seen = Arc::clone(&calls);
        mock.expect_delete_all_expired().returning(move |_, _| {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            if n < fail_first {
                Err(Error::backend("database is down"))
            } else {
                Ok(0)
            }
        });
        (mock, calls)
    }

    #[tokio::test(start_paused = true)]
    async fn cleanup_runs_every_interval_by_default() {
        let (mock, calls) = counting_sweeps(0);
        let store = Store::with_model(mock);
        assert_eq!(store.cleanup_interval(), Some(DEFAULT_CLEANUP_INTERVAL));
        // First sweep within the first interval, then every 15 minutes ± 10%.
        tokio::time::sleep(Duration::from_secs(15 * 60 + 1)).await;
        assert!(calls.load(Ordering::SeqCst) >= 1);
        tokio::time::sleep(Duration::from_secs(5 * 15 * 60)).await;
        let n = calls.load(Ordering::SeqCst);
        assert!((5..=7).contains(&n), "{n} sweeps in 90 minutes");
    }

    #[tokio::test(start_paused = true)]
    async fn cleanup_interval_is_configurable() {
        let (mock, calls) = counting_sweeps(0);
        let _store = Store::with_model(mock).with_cleanup_interval(Some(Duration::from_secs(10)));
        tokio::time::sleep(Duration::from_secs(101)).await;
        let n = calls.load(Ordering::SeqCst);
        assert!(
            (9..=12).contains(&n),
            "{n} sweeps in 101 s at a 10 s interval"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn cleanup_can_be_turned_off() {
        let mut mock = MockSessionModel::new();
        mock.expect_delete_expired().never();
        let store = Store::with_model(mock).with_cleanup_interval(None);
        tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
        assert_eq!(store.cleanup_interval(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn cleanup_survives_a_failing_model_and_recovers() {
        let (mock, calls) = counting_sweeps(3);
        let _store = Store::with_model(mock).with_cleanup_interval(Some(Duration::from_secs(10)));
        tokio::time::sleep(Duration::from_secs(61)).await;
        let n = calls.load(Ordering::SeqCst);
        assert!(n >= 5, "the task went on after 3 failures: {n} sweeps");
    }

    #[tokio::test(start_paused = true)]
    async fn cleanup_stops_when_the_last_store_is_dropped() {
        let (mock, calls) = counting_sweeps(0);
        let store = Store::with_model(mock).with_cleanup_interval(Some(Duration::from_secs(10)));
        let clone = store.clone();
        drop(store);
        tokio::time::sleep(Duration::from_secs(31)).await;
        let while_cloned = calls.load(Ordering::SeqCst);
        assert!(while_cloned >= 2, "a clone keeps the task: {while_cloned}");
        drop(clone);
        tokio::time::sleep(Duration::from_secs(100)).await;
        assert_eq!(calls.load(Ordering::SeqCst), while_cloned);
    }

    #[tokio::test(start_paused = true)]
    async fn stop_cleanup_stops_the_task_for_every_clone() {
        let (mut mock, calls) = counting_sweeps(0);
        mock.expect_count().returning(|_| Ok(0));
        let store = Store::with_model(mock).with_cleanup_interval(Some(Duration::from_secs(10)));
        let clone = store.clone();
        tokio::time::sleep(Duration::from_secs(25)).await;
        let before = calls.load(Ordering::SeqCst);
        assert!(before >= 2);
        store.stop_cleanup();
        // A call through a clone must not start it again.
        clone.length().await.unwrap();
        tokio::time::sleep(Duration::from_secs(100)).await;
        assert_eq!(calls.load(Ordering::SeqCst), before);
    }

    #[test]
    fn a_store_made_outside_a_runtime_starts_cleanup_on_first_use() {
        let (mock, calls) = counting_sweeps(0);
        let mut mock = mock;
        mock.expect_count().returning(|_| Ok(0));
        let store = Store::with_model(mock).with_cleanup_interval(Some(Duration::from_secs(10)));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            store.length().await.unwrap();
            tokio::time::sleep(Duration::from_secs(25)).await;
        });
        assert!(calls.load(Ordering::SeqCst) >= 2);
    }

    #[tokio::test]
    async fn a_stale_update_is_refused_without_a_merge() {
        let store = Store::with_model(MemoryModel::new()).with_cleanup_interval(None);
        store.set("s", &data(), None).await.unwrap();
        let mut a = store.get("s").await.unwrap().unwrap();
        let mut b = a.clone();
        a.data.insert("a".into(), serde_json::json!(true));
        b.data.insert("b".into(), serde_json::json!(true));
        assert!(store.update_session(&a).await.unwrap());
        let err = store.update_session(&b).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::Conflict {
                    expected: 0,
                    found: 1,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            store
                .get("s")
                .await
                .unwrap()
                .unwrap()
                .data
                .contains_key("a")
        );
    }

    #[tokio::test]
    async fn a_stale_update_is_merged_when_asked() {
        let store = Store::with_model(MemoryModel::new())
            .with_cleanup_interval(None)
            .with_conflict_merge(|stored, ours| {
                let mut merged = stored.clone();
                merged.extend(ours.clone());
                merged
            });
        store.set("s", &data(), None).await.unwrap();
        let mut a = store.get("s").await.unwrap().unwrap();
        let mut b = a.clone();
        a.data.insert("a".into(), serde_json::json!(true));
        b.data.insert("b".into(), serde_json::json!(true));
        assert!(store.update_session(&a).await.unwrap());
        assert!(store.update_session(&b).await.unwrap());
        let stored = store.get("s").await.unwrap().unwrap();
        assert!(stored.data.contains_key("a") && stored.data.contains_key("b"));
        assert_eq!(stored.version, Some(2));
        // A session destroyed meanwhile stays destroyed.
        store.destroy("s").await.unwrap();
        assert!(!store.update_session(&stored).await.unwrap());
        assert!(store.get("s").await.unwrap().is_none());
    }
}
