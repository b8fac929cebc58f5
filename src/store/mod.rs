//! [`Store`]: the policy over a [`SessionModel`]: ttl, touch, sweeps of expired sessions,
//! serialization. It knows nothing of SQL; `ops.rs` has the session calls and `sweeper.rs` the
//! background task.

mod ops;
mod sweeper;
mod users;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::clock::{Clock, SystemClock};
use crate::error::redact;
use crate::model::SessionModel;
use crate::serializer::{Json, Serializer, SessionData};
use crate::time::{MAX_EXPIRY, later_by, to_millis};

use sweeper::Sweeper;
pub use users::MAX_USER_PAGE;

/// How long a session lives when the caller gives no expiry: 14 days.
pub const DEFAULT_TTL: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// How often expired sessions are swept unless told otherwise: every 15 minutes.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// How many expired rows one statement of a sweep deletes at most, unless told otherwise.
pub const DEFAULT_SWEEP_BATCH: u32 = 1000;

/// A session as the store hands it out. Its `Debug` shows the id shortened and the data's keys,
/// not their values: the id is what the cookie carries.
#[derive(Clone, PartialEq)]
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

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &redact(&self.id))
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .field("expires", &self.expires)
            .field("version", &self.version)
            .finish()
    }
}

/// How [`Store::update_session`] resolves a write based on a version that is no longer stored.
type Merge = dyn Fn(&SessionData, &SessionData) -> SessionData + Send + Sync;

/// A session store: a [`SessionModel`] plus the policy for it.
///
/// - **ttl**: a session written without an expiry of its own (a cookie's) expires `ttl` after
///   the write; 14 days unless set with [`Store::with_ttl`].
/// - **touch**: [`Store::touch`] slides the expiry; with [`Store::with_touch_after`] a session
///   is written at most once per interval.
/// - **sweeps**: a background task removes expired sessions every 15 minutes (with jitter, in
///   batches), logs failures and tries again at the next tick; [`Store::with_sweep_interval`]
///   changes or turns it off. It stops when the last clone of the store is dropped.
///
/// Cloning is cheap and shares the model and the sweeper task.
pub struct Store<M> {
    model: Arc<M>,
    ttl: Duration,
    touch_after: Option<Duration>,
    sliding: bool,
    max_data_len: Option<usize>,
    serializer: Arc<dyn Serializer>,
    clock: Arc<dyn Clock>,
    sweep_interval: Option<Duration>,
    sweep_batch: u32,
    retries: u32,
    call_timeout: Option<Duration>,
    /// The model's longest id ([`Capabilities::max_sid_len`](crate::Capabilities)), read once.
    max_sid_len: usize,
    merge: Option<Arc<Merge>>,
    sweeper: Arc<Sweeper>,
    /// The key of a session's data that names its user ([`Store::with_user_key`]).
    user_key: Option<Arc<str>>,
    /// Whether the model keeps users ([`Capabilities::user_id`](crate::Capabilities)), read
    /// once.
    user_ids: bool,
}

/// How many ids [`Store::create_with_fresh_id`] draws before giving up. Two random ids of the
/// adapters' sizes (128 bits and more) do not collide in practice: a second draw already means
/// a broken model or random source.
pub const FRESH_ID_ATTEMPTS: usize = 8;

/// How long a store call may take, retries included, before it ends with
/// [`Error::TimedOut`](crate::Error::TimedOut): see [`Store::with_call_timeout`].
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);

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
            sweep_interval: self.sweep_interval,
            sweep_batch: self.sweep_batch,
            retries: self.retries,
            call_timeout: self.call_timeout,
            max_sid_len: self.max_sid_len,
            merge: self.merge.clone(),
            sweeper: Arc::clone(&self.sweeper),
            user_key: self.user_key.clone(),
            user_ids: self.user_ids,
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
            .field("sweep_interval", &self.sweep_interval)
            .field("sweep_batch", &self.sweep_batch)
            .field("retries", &self.retries)
            .field("call_timeout", &self.call_timeout)
            .field("merge", &self.merge.is_some())
            .field("user_key", &self.user_key)
            .finish()
    }
}

impl<M: SessionModel> Store<M> {
    /// A store over any model, a user's own included, with the default policy. The sweeper
    /// task starts now when called inside a tokio runtime, else on the store's first call.
    pub fn with_model(model: M) -> Self {
        let caps = model.capabilities();
        let store = Store {
            model: Arc::new(model),
            ttl: DEFAULT_TTL,
            touch_after: None,
            sliding: false,
            max_data_len: None,
            serializer: Arc::new(Json),
            clock: Arc::new(SystemClock),
            sweep_interval: Some(DEFAULT_SWEEP_INTERVAL),
            sweep_batch: DEFAULT_SWEEP_BATCH,
            retries: crate::RETRIES,
            call_timeout: Some(DEFAULT_CALL_TIMEOUT),
            max_sid_len: caps.max_sid_len,
            merge: None,
            sweeper: Arc::new(Sweeper::default()),
            user_key: None,
            user_ids: caps.user_id,
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
    ///
    /// A touch always writes once half of the session's life has passed, whatever `interval`:
    /// an interval as long as the ttl (or a framework's shorter one) would otherwise let no
    /// touch write, and active sessions would expire. Such an interval is logged as a warning.
    pub fn with_touch_after(mut self, interval: Duration) -> Self {
        if interval >= self.ttl {
            tracing::warn!(
                ?interval,
                ttl = ?self.ttl,
                "with_touch_after is not shorter than the ttl; touches will write once half of \
                 a session's life has passed instead"
            );
        }
        self.touch_after = Some(interval).filter(|d| !d.is_zero());
        self
    }

    /// Slide a session's expiry whenever the tower-sessions adapter loads it
    /// ([`Store::get_and_touch`] with no expiry), honouring [`Store::with_touch_after`]. The
    /// slide keeps the lifetime the session's last write gave it (`expires - updatedAt`): with
    /// `Expiry::OnInactivity(30 min)` a session has 30 minutes from each load, and with
    /// `Expiry::OnSessionEnd` tower-sessions' two weeks; a table without `updatedAt` slides to
    /// now + ttl. Pair it with `OnInactivity` or `OnSessionEnd`, not with a fixed
    /// `Expiry::AtDateTime`, which the store cannot tell from a lifetime. With `OnSessionEnd`
    /// an unchanged session is not written back on every request.
    pub fn with_sliding_expiry(mut self, yes: bool) -> Self {
        self.sliding = yes;
        self
    }

    /// Whether adapters slide the expiry on load ([`Store::with_sliding_expiry`]).
    pub fn sliding_expiry(&self) -> bool {
        self.sliding
    }

    /// Refuse to store a session whose serialized data is longer than `bytes`, with
    /// [`Error::InvalidInput`](crate::Error::InvalidInput).
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
    /// instead of failing with [`Error::Conflict`](crate::Error::Conflict). Without it, conflicts are errors.
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
    /// that clean up elsewhere (see [`Store::sweep`]).
    pub fn with_sweep_interval(mut self, interval: Option<Duration>) -> Self {
        self.sweep_interval = interval.filter(|d| !d.is_zero());
        self.restart_sweeper()
    }

    /// Delete at most `rows` expired sessions per statement when sweeping (default 1000), so a
    /// large sweep never holds long locks.
    pub fn with_sweep_batch(mut self, rows: u32) -> Self {
        self.sweep_batch = rows.max(1);
        self.restart_sweeper()
    }

    /// Run a call that failed with a [transient](crate::ErrorClass::is_transient) error (a
    /// deadlock, a Galera certification failure, a read-only server after a failover, a broken
    /// connection) again up to `retries` times before its error reaches the caller: after 2,
    /// 8, 32, 128 and 512 ms, then every second. The default is [`RETRIES`](crate::RETRIES)
    /// (3, about 42 ms in all); 0 turns retries off. Every call of the store is one the store
    /// can run twice safely: loads, touches, destroys, the upsert and the update-only save
    /// write the same row again, and `create` only inserts. A write whose connection broke
    /// may have been committed before it broke: its retry then finds it (a `create` reports
    /// the id taken, and the adapters draw another).
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// End a store call that has not finished within `limit`, retries included, with
    /// [`Error::TimedOut`](crate::Error::TimedOut) (default [`DEFAULT_CALL_TIMEOUT`], 30 s; `None` waits for ever).
    /// A database can hang a call indefinitely: a PostgreSQL primary whose synchronous standby
    /// is gone blocks every commit, and neither `statement_timeout` nor sqlx's pool timeouts
    /// end that wait. A write that timed out may still be committed later. Sweeps have no such
    /// limit.
    pub fn with_call_timeout(mut self, limit: Option<Duration>) -> Self {
        self.call_timeout = limit.filter(|d| !d.is_zero());
        self
    }

    /// The call timeout in force ([`Store::with_call_timeout`]).
    pub fn call_timeout(&self) -> Option<Duration> {
        self.call_timeout
    }

    /// The retry budget in force ([`Store::with_retries`]).
    pub fn retries(&self) -> u32 {
        self.retries
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

    /// The sweep interval in force; `None` when the task is off.
    pub fn sweep_interval(&self) -> Option<Duration> {
        self.sweep_interval
    }

    /// `now` from the store's clock, to the millisecond (what every backend keeps).
    pub fn now(&self) -> DateTime<Utc> {
        to_millis(self.clock.now())
    }

    /// The expiry a session written now gets: `expires` when given (the cookie's wins),
    /// otherwise now + ttl; never later than [`MAX_EXPIRY`].
    pub fn expiry(&self, expires: Option<DateTime<Utc>>) -> DateTime<Utc> {
        self.expiry_at(self.now(), expires)
    }

    /// The expiry of a session written now that lives `lifetime` (a cookie's max-age, a
    /// framework's ttl) instead of the store's ttl; never later than [`MAX_EXPIRY`].
    pub fn expiry_after(&self, lifetime: Duration) -> DateTime<Utc> {
        later_by(self.now(), lifetime)
    }

    /// [`Store::expiry`] for a write at `now`, so that one call reads the clock once.
    fn expiry_at(&self, now: DateTime<Utc>, expires: Option<DateTime<Utc>>) -> DateTime<Utc> {
        match expires {
            Some(t) => to_millis(t).min(MAX_EXPIRY),
            None => later_by(now, self.ttl),
        }
    }

    /// The throttle condition for a touch at `now` to `expires`: the stored expiry must be
    /// before it. The throttle is at most half of the life the touch gives, so that a session
    /// in use is written before it expires.
    fn throttle_limit(&self, now: DateTime<Utc>, expires: DateTime<Utc>) -> Option<DateTime<Utc>> {
        crate::model::throttle_limit(now, expires, self.touch_after)
    }
}
