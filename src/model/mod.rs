//! The [`SessionModel`] trait, which says how sessions are persisted, the row type it moves,
//! and the models that are not SQL: [`MemoryModel`], [`Fallback`] and `Cached`.

#[cfg(feature = "cache")]
mod cached;
mod defaults;
mod fallback;
mod memory;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[cfg(feature = "cache")]
pub use cached::{
    CacheConfig, CacheStats, Cached, DEFAULT_LOCAL_CACHE_TTL, DEFAULT_SHARED_CACHE_TTL,
};
pub(crate) use defaults::throttle_limit;
pub use defaults::{
    Slide, delete_expired_in_batches, load_then_slide, load_then_touch, slide_loaded, touch_is_due,
};
pub use fallback::Fallback;
pub use memory::MemoryModel;

use crate::{Error, Result};

/// The longest session id a store accepts: what the default tables hold (`sid VARCHAR(255)`).
pub const MAX_SID_LEN: usize = 255;

/// Checks that `sid` is an id the model can hold: not empty, at most `max` characters (its
/// [`Capabilities::max_sid_len`]).
pub(crate) fn check_sid(sid: &str, max: usize) -> Result<()> {
    if sid.is_empty() {
        return Err(Error::InvalidInput("session id is empty".into()));
    }
    // A character takes at least a byte: an id no longer in bytes than `max` fits unchecked.
    if sid.len() <= max {
        return Ok(());
    }
    let len = sid.chars().count();
    if len > max {
        return Err(Error::InvalidInput(format!(
            "session id is {len} characters long; the sessions table's sid column holds at \
             most {max} (widen it to VARCHAR(255) to hold the ids of every framework)"
        )));
    }
    Ok(())
}

/// One stored session as a model sees it: the id, the serialized data and the expiry.
///
/// A model stores `data` as it is given; what it means is the store's serializer's business.
/// Its `Debug` shows the id shortened and the data's length only.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionRow {
    /// The session id (the `sid` column).
    pub sid: String,
    /// The serialized session (the `data` column).
    pub data: String,
    /// When the session expires; `None` never expires (a row written that way by another client).
    pub expires: Option<DateTime<Utc>>,
    /// For a model whose [`Capabilities::version`] is true: on a loaded row, the stored version;
    /// on a row passed to [`SessionModel::update`], the version the write is based on (`None`:
    /// write whatever is stored).
    pub version: Option<i64>,
}

impl std::fmt::Debug for SessionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRow")
            .field("sid", &crate::redact(&self.sid))
            .field("data", &format_args!("<{} bytes>", self.data.len()))
            .field("expires", &self.expires)
            .field("version", &self.version)
            .finish()
    }
}

impl SessionRow {
    /// A row with the given id, data and expiry, and no version.
    pub fn new(
        sid: impl Into<String>,
        data: impl Into<String>,
        expires: Option<DateTime<Utc>>,
    ) -> Self {
        SessionRow {
            sid: sid.into(),
            data: data.into(),
            expires,
            version: None,
        }
    }

    /// The same row based on stored version `version`, for optimistic concurrency.
    pub fn with_version(mut self, version: i64) -> Self {
        self.version = Some(version);
        self
    }

    /// Whether the row is live at `now`: no expiry, or an expiry after `now`.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.expires.is_none_or(|e| e > now)
    }
}

/// The optional columns a model has. A store and its adapters use a feature only where the
/// model says it has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// The model keeps a version number per row, raised by every write of the data, and
    /// refuses an [`update`](SessionModel::update) based on another version (optimistic
    /// concurrency).
    pub version: bool,
    /// The longest session id the model can store, in characters: a store refuses longer ids
    /// before they reach the model. At most [`MAX_SID_LEN`].
    pub max_sid_len: usize,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities::NONE
    }
}

impl Capabilities {
    /// No optional columns, ids up to [`MAX_SID_LEN`].
    pub const NONE: Capabilities = Capabilities {
        version: false,
        max_sid_len: MAX_SID_LEN,
    };

    /// The same, with ids up to `chars` characters (never more than [`MAX_SID_LEN`]).
    pub const fn with_max_sid_len(mut self, chars: usize) -> Self {
        self.max_sid_len = if chars < MAX_SID_LEN {
            chars
        } else {
            MAX_SID_LEN
        };
        self
    }

    /// The same, with a version column.
    pub const fn with_version(mut self, yes: bool) -> Self {
        self.version = yes;
        self
    }
}

/// A mock model whose capabilities are the defaults, as a store reads them once.
#[cfg(test)]
pub(crate) fn mock_model() -> MockSessionModel {
    let mut mock = MockSessionModel::new();
    mock.expect_capabilities().returning(|| Capabilities::NONE);
    mock
}

/// What [`SessionModel::create`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// The row was inserted.
    Inserted,
    /// A row with that id already exists (live or expired); nothing was written.
    AlreadyExists,
}

/// What one sweep ([`SessionModel::delete_all_expired`], `Store::sweep`) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sweep {
    /// How many expired rows it deleted.
    pub removed: u64,
    /// Whether it stopped because another app instance held the sweep lock: that instance is
    /// sweeping the same table, so nothing is lost by stopping. `removed` counts the batches
    /// this one deleted before.
    pub lock_busy: bool,
}

impl Sweep {
    /// A sweep that ran to its end, deleting `removed` rows.
    pub fn finished(removed: u64) -> Self {
        Sweep {
            removed,
            lock_busy: false,
        }
    }

    /// A sweep that found the sweep lock held by another instance after deleting `removed`
    /// rows.
    pub fn lock_busy(removed: u64) -> Self {
        Sweep {
            removed,
            lock_busy: true,
        }
    }

    /// Both sweeps together: rows added up; busy if either was.
    #[must_use]
    pub fn and(self, other: Sweep) -> Sweep {
        Sweep {
            removed: self.removed + other.removed,
            lock_busy: self.lock_busy || other.lock_busy,
        }
    }
}

/// How sessions are persisted: one table (or map) of rows keyed by session id.
///
/// A model knows nothing of policy: the store decides expiries and passes the application
/// clock's `now` into every call, so a model never reads a clock of its own. Times are UTC
/// and a model may keep them to the millisecond only; stores truncate to milliseconds.
///
/// # The contract
///
/// Every model, the built-in ones included, must hold to this; the conformance suite in
/// `tests/common` checks it on each backend.
///
/// - A row is *live* at `now` when its expiry is `None` or later than `now`, and *expired* when
///   its expiry is at or before `now`. Expired rows may still be in the table until they are
///   deleted, but no method except [`delete_expired`](SessionModel::delete_expired) and
///   [`clear`](SessionModel::clear) acts on them, and none returns them.
/// - Each method is one atomic step: a concurrent writer sees the row before or after it, never
///   half of it. Where the database allows, it is one statement and one round trip.
///
/// Implement it for your own table and pass it to [`Store::with_model`](crate::Store::with_model);
/// everything the built-in models use is public.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait SessionModel: Send + Sync + 'static {
    /// The optional columns this model has. Defaults to none.
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
    }

    /// The live row with id `sid`, or `None` when there is none or it has expired.
    ///
    /// # Errors
    /// A backend failure, or [`Error::Decode`](crate::Error::Decode) for a row that does not decode.
    async fn load(&self, sid: &str, now: DateTime<Utc>) -> Result<Option<SessionRow>>;

    /// Inserts `row` as a new session. When any row with that id exists, live or expired,
    /// it is left as it is and [`Created::AlreadyExists`] is returned: create never overwrites.
    /// Of many concurrent creates of one id, exactly one inserts.
    ///
    /// # Errors
    /// A backend failure.
    async fn create(&self, row: &SessionRow, now: DateTime<Utc>) -> Result<Created>;

    /// Writes `row`, inserting it or replacing the stored data and expiry, in one atomic
    /// statement (an upsert). The creation time of an existing row is kept; a versioned model
    /// raises the version of an existing row (a new row starts at 0) and ignores `row.version`.
    ///
    /// # Errors
    /// A backend failure.
    async fn save(&self, row: &SessionRow, now: DateTime<Utc>) -> Result<()>;

    /// Replaces the data and expiry of the *live* row with `row.sid`, and returns whether
    /// there was one. A missing or expired row stays missing or expired: a session destroyed
    /// meanwhile is not brought back.
    ///
    /// A versioned model given `row.version = Some(v)` writes only when the stored version is
    /// `v`, and then raises it by one, in the same statement.
    ///
    /// # Errors
    /// [`Error::Conflict`](crate::Error::Conflict) when the live row has another version than
    /// `row.version` (someone else wrote it since it was read); a backend failure.
    async fn update(&self, row: &SessionRow, now: DateTime<Utc>) -> Result<bool>;

    /// Sets the expiry of the live row `sid` to `expires` and returns whether a row was
    /// changed. A missing or expired row is left alone (`false`). The data and the version
    /// are not changed, so a touch never conflicts with a concurrent update.
    ///
    /// With `only_if_before`, the row is changed only when its stored expiry is before that
    /// time (the touch throttle); the check is part of the same update, with no read before it.
    /// A row skipped by the throttle also gives `false`.
    ///
    /// # Errors
    /// A backend failure.
    async fn touch(
        &self,
        sid: &str,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
        only_if_before: Option<DateTime<Utc>>,
    ) -> Result<bool>;

    /// Loads the live row `sid` and slides its expiry to `expires` (subject to `only_if_before`,
    /// as [`touch`](SessionModel::touch)), returning the row as it is after the touch: a
    /// request with sliding expiry in one call. Where the database allows, one statement
    /// (`UPDATE ... RETURNING`); a throttled touch that is not due writes nothing.
    ///
    /// The default loads, then touches when due: correct for any model, in two round trips.
    ///
    /// # Errors
    /// As [`load`](SessionModel::load) and [`touch`](SessionModel::touch).
    async fn load_and_touch(
        &self,
        sid: &str,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
        only_if_before: Option<DateTime<Utc>>,
    ) -> Result<Option<SessionRow>> {
        load_then_touch(self, sid, expires, now, only_if_before).await
    }

    /// Loads the live row `sid` and slides its expiry forward by the lifetime its last write
    /// gave it ([`Slide`]: `now + (expires - last write)`, with the throttle measured against
    /// that lifetime), returning the row as it is after: the load of a web framework that
    /// decides a session's lifetime itself (tower-sessions' `Expiry::OnInactivity`), so that a
    /// slide keeps the framework's rule instead of stretching the session to the store's ttl.
    /// A missing or expired row is `None` and stays so.
    ///
    /// The default loads, then slides to [`Slide::fallback`] with one touch when due
    /// ([`load_then_slide`]): it cannot know when a row was last written. A model that records it
    /// (as `ConnectSession` does in `updatedAt`) overrides this to slide by it.
    ///
    /// # Errors
    /// As [`load`](SessionModel::load) and [`touch`](SessionModel::touch).
    async fn load_and_slide(&self, sid: &str, slide: Slide) -> Result<Option<SessionRow>> {
        load_then_slide(self, sid, &slide).await
    }

    /// Deletes the row `sid`, live or expired, and returns whether there was one.
    ///
    /// # Errors
    /// A backend failure.
    async fn destroy(&self, sid: &str) -> Result<bool>;

    /// Deletes at most `limit` expired rows (expiry at or before `now`) and returns how many
    /// went. A row that a concurrent writer makes live meanwhile is not deleted. Callers loop
    /// until fewer than `limit` go; rows with no expiry are never deleted.
    ///
    /// # Errors
    /// A backend failure.
    async fn delete_expired(&self, now: DateTime<Utc>, limit: u32) -> Result<u64>;

    /// Deletes every expired row, in statements of at most `batch` rows each, and says how
    /// many went and whether it stopped because another app instance holds the sweep lock:
    /// one sweep. A row made live meanwhile is kept; rows with no expiry are never deleted.
    ///
    /// The default calls [`delete_expired`](SessionModel::delete_expired) until a batch comes
    /// back short ([`delete_expired_in_batches`]); a model may do the same with less overhead,
    /// as `ConnectSession` does with a lock per batch.
    ///
    /// # Errors
    /// A backend failure; rows deleted by earlier batches stay deleted.
    async fn delete_all_expired(&self, now: DateTime<Utc>, batch: u32) -> Result<Sweep> {
        delete_expired_in_batches(self, now, batch).await
    }

    /// The number of live rows.
    ///
    /// # Errors
    /// A backend failure.
    async fn count(&self, now: DateTime<Utc>) -> Result<u64>;

    /// All live rows, in no particular order.
    ///
    /// # Errors
    /// A backend failure, or [`Error::Decode`](crate::Error::Decode) for a row that does not decode.
    async fn list(&self, now: DateTime<Utc>) -> Result<Vec<SessionRow>>;

    /// Deletes every row, live or expired, and returns how many went.
    ///
    /// # Errors
    /// A backend failure.
    async fn clear(&self) -> Result<u64>;
}
