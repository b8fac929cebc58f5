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
    /// The user the session belongs to (the `user_id` column), for a model whose
    /// [`Capabilities::user_id`] is true: on a written row, what the store read from the
    /// session's data under its user key (`None`: no user); on a loaded row, `None`. A model
    /// without the column ignores it.
    pub user_id: Option<String>,
}

impl std::fmt::Debug for SessionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRow")
            .field("sid", &crate::redact(&self.sid))
            .field("data", &format_args!("<{} bytes>", self.data.len()))
            .field("expires", &self.expires)
            .field("version", &self.version)
            .field("user_id", &self.user_id.as_ref().map(|_| "<set>"))
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
            user_id: None,
        }
    }

    /// The same row, belonging to user `user_id`.
    pub fn with_user_id(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
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
    /// The model keeps the user a session belongs to ([`SessionRow::user_id`]) in a column of
    /// its own, with an index, and answers the per-user calls
    /// ([`list_for_user`](SessionModel::list_for_user),
    /// [`count_for_user`](SessionModel::count_for_user),
    /// [`destroy_for_user`](SessionModel::destroy_for_user)).
    pub user_id: bool,
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
        user_id: false,
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

    /// The same, with a user column.
    pub const fn with_user_id(mut self, yes: bool) -> Self {
        self.user_id = yes;
        self
    }
}

/// The longest user id a store accepts: what the default `user_id VARCHAR(255)` holds.
pub const MAX_USER_ID_LEN: usize = 255;

/// Checks that `user` is a user id the models can hold: not empty, at most
/// [`MAX_USER_ID_LEN`] characters.
pub(crate) fn check_user_id(user: &str) -> Result<()> {
    if user.is_empty() {
        return Err(Error::InvalidInput("user id is empty".into()));
    }
    if user.len() > MAX_USER_ID_LEN && user.chars().count() > MAX_USER_ID_LEN {
        return Err(Error::InvalidInput(format!(
            "user id is {} characters long; the user_id column holds at most {MAX_USER_ID_LEN}",
            user.chars().count()
        )));
    }
    Ok(())
}

/// One session of a user, as [`SessionModel::list_for_user`] lists it: when it was made, last
/// written and when it expires, without its data. Its `Debug` shows the id shortened.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserSession {
    /// The session id.
    pub sid: String,
    /// When the session was made (`createdAt`), where the model keeps it.
    pub created: Option<DateTime<Utc>>,
    /// When the session was last written, touches included (`updatedAt`), where the model
    /// keeps it.
    pub written: Option<DateTime<Utc>>,
    /// When it expires; `None` never expires.
    pub expires: Option<DateTime<Utc>>,
}

impl UserSession {
    /// A listed session.
    pub fn new(
        sid: impl Into<String>,
        created: Option<DateTime<Utc>>,
        written: Option<DateTime<Utc>>,
        expires: Option<DateTime<Utc>>,
    ) -> Self {
        UserSession {
            sid: sid.into(),
            created,
            written,
            expires,
        }
    }
}

impl std::fmt::Debug for UserSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserSession")
            .field("sid", &crate::redact(&self.sid))
            .field("created", &self.created)
            .field("written", &self.written)
            .field("expires", &self.expires)
            .finish()
    }
}

/// The error of a per-user call on a model without a user column: what to do about it.
pub fn no_user_column(model: &str) -> Error {
    Error::Unsupported(format!(
        "{model} keeps no user id per session (its Capabilities::user_id is false), so \
         sessions cannot be stored or found by user; give the model a user column (the \
         model's docs say how), or use one whose capabilities have user_id"
    ))
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

    /// The live sessions of user `user` whose ids sort after `after` (all of them when
    /// `None`), in the order of their ids, at most `limit`: a page. Pass the last id of a
    /// page as `after` to get the next. One indexed statement where the database allows.
    ///
    /// The default refuses: a model without a user column cannot find sessions by user.
    ///
    /// # Errors
    /// [`Error::Unsupported`](crate::Error::Unsupported) when the model keeps no user id
    /// ([`Capabilities::user_id`]); a backend failure; [`Error::Decode`](crate::Error::Decode)
    /// for a row whose times do not decode.
    async fn list_for_user<'a>(
        &self,
        user: &str,
        now: DateTime<Utc>,
        after: Option<&'a str>,
        limit: u32,
    ) -> Result<Vec<UserSession>> {
        let _ = (user, now, after, limit);
        Err(no_user_column(std::any::type_name::<Self>()))
    }

    /// The number of live sessions of user `user`.
    ///
    /// The default refuses, as [`list_for_user`](SessionModel::list_for_user).
    ///
    /// # Errors
    /// As [`list_for_user`](SessionModel::list_for_user).
    async fn count_for_user(&self, user: &str, now: DateTime<Utc>) -> Result<u64> {
        let _ = (user, now);
        Err(no_user_column(std::any::type_name::<Self>()))
    }

    /// Deletes every session of user `user`, live or expired, but the one with id `except`
    /// when given (the session making the request: "sign out the other devices"), in one
    /// statement, and returns how many went.
    ///
    /// The default refuses, as [`list_for_user`](SessionModel::list_for_user).
    ///
    /// # Errors
    /// [`Error::Unsupported`](crate::Error::Unsupported) as
    /// [`list_for_user`](SessionModel::list_for_user); a backend failure.
    async fn destroy_for_user<'a>(&self, user: &str, except: Option<&'a str>) -> Result<u64> {
        let _ = (user, except);
        Err(no_user_column(std::any::type_name::<Self>()))
    }

    /// Deletes every row, live or expired, and returns how many went.
    ///
    /// # Errors
    /// A backend failure.
    async fn clear(&self) -> Result<u64>;
}
