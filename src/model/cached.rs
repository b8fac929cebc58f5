//! [`Cached`]: any model with an in-process cache of loaded sessions in front, kept coherent
//! by this process's writes and, across app instances, by an [`Invalidation`] channel.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

use super::{
    Capabilities, Created, SessionModel, SessionRow, Slide, Sweep, UserSession, touch_is_due,
};
use crate::Result;
use crate::invalidation::{CacheControl, Evictions, Fingerprint, Invalidate, Invalidation};
use crate::task::AbortOnDrop;

/// How long an entry is served without a channel ([`Cached::new`]): 1 s.
pub const DEFAULT_LOCAL_CACHE_TTL: Duration = Duration::from_secs(1);

/// How long an entry is served with a channel ([`Cached::with_invalidation`]): 60 s.
pub const DEFAULT_SHARED_CACHE_TTL: Duration = Duration::from_secs(60);

/// How many invalidation counters the cache keeps (see `Ticket`).
const STRIPES: usize = 1024;

/// What one entry costs beside its id and data, in bytes (the entry, its `Arc`, the map slot).
const ENTRY_OVERHEAD: u64 = 128;

/// The bounds and lifetime of a [`Cached`] model's cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    max_entries: usize,
    max_bytes: u64,
    ttl: Option<Duration>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig::new()
    }
}

impl CacheConfig {
    /// At most 10,000 sessions and 64 MiB, each served for [`DEFAULT_LOCAL_CACHE_TTL`] without
    /// a channel and [`DEFAULT_SHARED_CACHE_TTL`] with one.
    pub const fn new() -> Self {
        CacheConfig {
            max_entries: 10_000,
            max_bytes: 64 << 20,
            ttl: None,
        }
    }

    /// Keep at most `n` sessions (at least 1).
    pub const fn with_max_entries(mut self, n: usize) -> Self {
        self.max_entries = if n == 0 { 1 } else { n };
        self
    }

    /// Keep at most `bytes` of ids and data, counting 128 bytes more per entry (at least 1).
    pub const fn with_max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = if bytes == 0 { 1 } else { bytes };
        self
    }

    /// Serve an entry for at most `ttl` after it was loaded, and never past the session's
    /// expiry. Without a channel this is how stale a session can be when another app
    /// instance (or another client of the table) wrote or destroyed it.
    pub const fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// The most sessions kept.
    pub const fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// The most bytes kept.
    pub const fn max_bytes(&self) -> u64 {
        self.max_bytes
    }
}

/// How many loads the cache served and how many went to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CacheStats {
    /// Loads served from the cache.
    pub hits: u64,
    /// Loads that went to the model.
    pub misses: u64,
    /// Sessions in the cache now.
    pub entries: usize,
}

/// A loaded row and the last moment it may be served.
struct Entry {
    row: SessionRow,
    until: DateTime<Utc>,
}

/// Weighs an entry by its bytes, but never less than `floor` (the byte bound over the entry
/// bound), so that one weight bound keeps both.
#[derive(Clone)]
struct Weight {
    floor: u64,
}

impl quick_cache::Weighter<u64, Arc<Entry>> for Weight {
    fn weight(&self, _key: &u64, entry: &Arc<Entry>) -> u64 {
        let bytes = (entry.row.sid.len() + entry.row.data.len()) as u64 + ENTRY_OVERHEAD;
        bytes.max(self.floor).max(1)
    }
}

/// What a load saw before it asked the model: a fill made from the model's answer is kept only
/// if nothing invalidated its session (or everything) in between.
#[derive(Clone, Copy)]
struct Ticket {
    epoch: u64,
    stripe: u64,
}

impl Ticket {
    /// The ticket as it is after this call's own invalidation of its session, and no other:
    /// for keeping the row a write returned, which is the committed state after it.
    fn after_own(self) -> Ticket {
        Ticket {
            stripe: self.stripe.wrapping_add(1),
            ..self
        }
    }
}

/// The entries and the counters that keep them coherent, shared with the channel's task.
struct Entries {
    map: quick_cache::sync::Cache<u64, Arc<Entry>, Weight>,
    /// Raised by every invalidation of a session whose fingerprint falls in the stripe.
    stripes: Box<[AtomicU64]>,
    /// Raised by every invalidation of all sessions and by every change of `blind`.
    epoch: AtomicU64,
    /// The channel may be losing messages: serve nothing, keep nothing.
    blind: AtomicBool,
    /// The channel gave up for good: `blind` stays set.
    stopped: AtomicBool,
    /// Told whenever `blind` changes, for [`Cached::serving`].
    changed: tokio::sync::Notify,
    ttl: TimeDelta,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl Entries {
    fn new(config: &CacheConfig, ttl: Duration, blind: bool) -> Self {
        let floor = config.max_bytes / config.max_entries as u64;
        // The map is split in shards of equal weight, and an entry heavier than a shard is
        // not kept: estimating entries of half a KiB keeps a small cache in few shards.
        let estimate = (config.max_bytes / 512).clamp(1, config.max_entries as u64);
        Entries {
            map: quick_cache::sync::Cache::with_weighter(
                usize::try_from(estimate).unwrap_or(usize::MAX).min(1 << 20),
                config.max_bytes,
                Weight { floor },
            ),
            stripes: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
            epoch: AtomicU64::new(0),
            blind: AtomicBool::new(blind),
            stopped: AtomicBool::new(false),
            changed: tokio::sync::Notify::new(),
            ttl: TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn stripe(&self, key: Fingerprint) -> &AtomicU64 {
        &self.stripes[(key.get() % STRIPES as u64) as usize]
    }

    /// The live entry for `sid`, if one may be served at `now`.
    fn get(&self, key: Fingerprint, sid: &str, now: DateTime<Utc>) -> Option<SessionRow> {
        if self.blind.load(SeqCst) {
            return None;
        }
        let entry = self.map.get(&key.get())?;
        (entry.row.sid == sid && now < entry.until && entry.row.is_live(now))
            .then(|| entry.row.clone())
    }

    /// The expiry of the live entry for `sid` (`Some(None)`: one without expiry), without
    /// copying the row.
    fn expiry(
        &self,
        key: Fingerprint,
        sid: &str,
        now: DateTime<Utc>,
    ) -> Option<Option<DateTime<Utc>>> {
        if self.blind.load(SeqCst) {
            return None;
        }
        let entry = self.map.get(&key.get())?;
        (entry.row.sid == sid && now < entry.until && entry.row.is_live(now))
            .then_some(entry.row.expires)
    }

    fn ticket(&self, key: Fingerprint) -> Ticket {
        Ticket {
            epoch: self.epoch.load(SeqCst),
            stripe: self.stripe(key).load(SeqCst),
        }
    }

    /// Keeps `row`, which the model returned at `now` after `ticket` was taken, unless its
    /// session (or everything) was invalidated since. An invalidation raises its counter
    /// before it removes, and a fill inserts before it checks: whichever comes second undoes
    /// the fill.
    fn fill(&self, key: Fingerprint, ticket: Ticket, row: &SessionRow, now: DateTime<Utc>) {
        if self.blind.load(SeqCst) {
            return;
        }
        let by_ttl = now
            .checked_add_signed(self.ttl)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let until = row.expires.map_or(by_ttl, |e| e.min(by_ttl));
        if until <= now {
            return;
        }
        let entry = Arc::new(Entry {
            row: row.clone(),
            until,
        });
        self.map.insert(key.get(), Arc::clone(&entry));
        let unchanged = ticket.epoch == self.epoch.load(SeqCst)
            && ticket.stripe == self.stripe(key).load(SeqCst)
            && !self.blind.load(SeqCst);
        if !unchanged {
            self.map
                .remove_if(&key.get(), |kept| Arc::ptr_eq(kept, &entry));
        }
    }

    /// Waits until `done` holds, looking again whenever the channel's state changes.
    async fn wait_for(&self, done: impl Fn(&Entries) -> bool) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if done(self) {
                return;
            }
            changed.await;
        }
    }

    fn invalidate(&self, key: Fingerprint) {
        self.stripe(key).fetch_add(1, SeqCst);
        self.map.remove(&key.get());
    }

    fn invalidate_all(&self) {
        self.epoch.fetch_add(1, SeqCst);
        self.map.clear();
    }
}

impl CacheControl for Entries {
    fn evict(&self, key: Fingerprint) {
        self.invalidate(key);
    }

    fn evict_all(&self) {
        self.invalidate_all();
    }

    fn lost(&self) {
        if !self.blind.swap(true, SeqCst) {
            tracing::warn!(
                "session cache: the invalidation channel is down; serving from the database \
                 until it is back"
            );
            self.changed.notify_waiters();
        }
        self.invalidate_all();
    }

    fn live(&self) {
        self.invalidate_all();
        if !self.stopped.load(SeqCst) && self.blind.swap(false, SeqCst) {
            tracing::info!("session cache: the invalidation channel is live; serving again");
            self.changed.notify_waiters();
        }
    }

    fn is_live(&self) -> bool {
        !self.blind.load(SeqCst)
    }

    fn stop(&self) {
        self.stopped.store(true, SeqCst);
        self.lost();
        self.changed.notify_waiters();
    }
}

/// A model with an in-process cache of loaded sessions in front of it: a load of a hot session
/// is a memory lookup instead of a round trip.
///
/// - **Bounded**: by entries and bytes ([`CacheConfig`]); an entry is served for at most the
///   cache's ttl after it was loaded, and never past the session's expiry.
/// - **Writes first, then the cache**: every write (save, update, touch, destroy, clear) goes
///   to the model; once it returned, the entry is dropped here and the change published on the
///   channel. A load that raced with a write never keeps what it read before the write. The
///   update-only save and the insert-only create are the model's own, so they keep their
///   guarantees.
/// - **Across instances**: with [`Cached::with_invalidation`], a write on one instance evicts
///   the entry on every other (on PostgreSQL through `LISTEN`/`NOTIFY`,
///   [`PgNotify`](crate::driver::sqlx::PgNotify)). While the channel is down, or before it is
///   first heard, the cache is empty and every load goes to the model: it never serves blind.
///   Without a channel ([`Cached::new`]), another instance's write is seen once the entry's
///   ttl (1 s by default) has passed: the bound on how stale a session can be.
/// - **Not cached**: `load_and_slide` (the tower-sessions sliding load) needs the row's last
///   write time and always asks the model; count, list and sweeps go to the model too. Rows
///   another client changes by SQL are seen after the ttl, or at once when that client also
///   publishes on the channel.
///
/// Wrap a model and hand it to [`Store::with_model`](crate::Store::with_model).
pub struct Cached<M> {
    inner: M,
    entries: Arc<Entries>,
    channel: Option<Arc<dyn Invalidation>>,
    origin: u64,
    /// The task listening on the channel, which ends with the cache.
    _listener: Option<AbortOnDrop>,
}

impl<M> fmt::Debug for Cached<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cached")
            .field("model", &std::any::type_name::<M>())
            .field("channel", &self.channel)
            .field("ttl", &self.entries.ttl)
            .field("serving", &self.is_serving())
            .field("stats", &self.stats())
            .finish()
    }
}

impl<M: SessionModel> Cached<M> {
    /// `inner` with a cache that only this process's writes invalidate: for one app instance,
    /// or for several that accept a session being served up to the ttl after another instance
    /// wrote or destroyed it (1 s unless [`CacheConfig::with_ttl`] says otherwise).
    pub fn new(inner: M, config: CacheConfig) -> Self {
        let ttl = config.ttl.unwrap_or(DEFAULT_LOCAL_CACHE_TTL);
        Cached {
            inner,
            entries: Arc::new(Entries::new(&config, ttl, false)),
            channel: None,
            origin: crate::random::random_u64(),
            _listener: None,
        }
    }

    /// `inner` with a cache kept coherent across app instances by `channel`: every write here
    /// is published on it, every write published by another instance evicts here. The cache
    /// serves once the channel says it is live, and stops while it is down. Entries are served
    /// for at most 60 s unless [`CacheConfig::with_ttl`] says otherwise, the bound should a
    /// message be lost in a way the channel cannot see.
    ///
    /// The listener runs on the current tokio runtime; outside one, the cache never serves.
    pub fn with_invalidation(inner: M, config: CacheConfig, channel: impl Invalidation) -> Self {
        let ttl = config.ttl.unwrap_or(DEFAULT_SHARED_CACHE_TTL);
        let entries = Arc::new(Entries::new(&config, ttl, true));
        let channel: Arc<dyn Invalidation> = Arc::new(channel);
        let origin = crate::random::random_u64();
        let control: Arc<dyn CacheControl> = Arc::clone(&entries) as Arc<dyn CacheControl>;
        let evictions = Evictions::new(Arc::downgrade(&control), origin);
        drop(control);
        let listener = match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let channel = Arc::clone(&channel);
                Some(AbortOnDrop(
                    runtime
                        .spawn(async move { channel.listen(evictions).await })
                        .abort_handle(),
                ))
            }
            Err(_) => {
                tracing::warn!(
                    "Cached::with_invalidation outside a tokio runtime: the channel cannot be \
                     listened to, so the cache serves nothing"
                );
                None
            }
        };
        Cached {
            inner,
            entries,
            channel: Some(channel),
            origin,
            _listener: listener,
        }
    }
}

impl<M> Cached<M> {
    /// The model under the cache.
    pub fn inner(&self) -> &M {
        &self.inner
    }

    /// Whether the cache serves loads now: always without a channel; with one, while it is live.
    pub fn is_serving(&self) -> bool {
        !self.entries.blind.load(SeqCst)
    }

    /// Waits until the cache serves ([`is_serving`](Cached::is_serving)); at once when it
    /// does. With a channel that is never heard, or that gave up
    /// ([`channel_stopped`](Cached::channel_stopped)), it never returns: put a timeout around it.
    pub async fn serving(&self) {
        self.entries.wait_for(|e| !e.blind.load(SeqCst)).await;
    }

    /// Whether the channel gave up for good, so the cache will never serve: `PgNotify` asked
    /// to listen through a pooler, say (its error is in the log).
    pub fn channel_stopped(&self) -> bool {
        self.entries.stopped.load(SeqCst)
    }

    /// Waits until the channel gives up for good ([`channel_stopped`](Cached::channel_stopped));
    /// at once when it has.
    pub async fn stopped(&self) {
        self.entries.wait_for(|e| e.stopped.load(SeqCst)).await;
    }

    /// Hits, misses and entries so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.entries.hits.load(Relaxed),
            misses: self.entries.misses.load(Relaxed),
            entries: self.entries.map.len(),
        }
    }

    /// Drops every entry of this instance's cache (the others' are theirs).
    pub fn purge(&self) {
        self.entries.invalidate_all();
    }

    /// Drops `key` here, then tells the other instances. A failed message is logged: the
    /// write it follows has committed, and the others drop the entry at its ttl.
    async fn changed(&self, what: Invalidate) {
        match what {
            Invalidate::Session(key) => self.entries.invalidate(key),
            Invalidate::All => self.entries.invalidate_all(),
        }
        if let Some(channel) = &self.channel
            && let Err(err) = channel.publish(self.origin, what).await
        {
            tracing::warn!(
                error = %err,
                "session cache: a write committed but its invalidation could not be published; \
                 other instances may serve the old session until its cache ttl"
            );
        }
    }

    /// After a write that returned `result`: invalidate unless it says nothing changed.
    async fn after_write<T>(&self, key: Fingerprint, result: &Result<T>, changed: fn(&T) -> bool) {
        if result.as_ref().map_or(true, changed) {
            self.changed(Invalidate::Session(key)).await;
        }
    }

    fn hit(&self) {
        self.entries.hits.fetch_add(1, Relaxed);
    }

    fn miss(&self) {
        self.entries.misses.fetch_add(1, Relaxed);
    }
}

#[async_trait]
impl<M: SessionModel> SessionModel for Cached<M> {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn load(&self, sid: &str, now: DateTime<Utc>) -> Result<Option<SessionRow>> {
        let key = Fingerprint::of(sid);
        if let Some(row) = self.entries.get(key, sid, now) {
            self.hit();
            return Ok(Some(row));
        }
        self.miss();
        let ticket = self.entries.ticket(key);
        let row = self.inner.load(sid, now).await?;
        if let Some(row) = &row {
            self.entries.fill(key, ticket, row, now);
        }
        Ok(row)
    }

    async fn create(&self, row: &SessionRow, now: DateTime<Utc>) -> Result<Created> {
        // Nothing to drop or publish: an insert happens only where no row was, and a missing
        // row is never cached.
        self.inner.create(row, now).await
    }

    async fn save(&self, row: &SessionRow, now: DateTime<Utc>) -> Result<()> {
        let result = self.inner.save(row, now).await;
        self.after_write(Fingerprint::of(&row.sid), &result, |_| true)
            .await;
        result
    }

    async fn update(&self, row: &SessionRow, now: DateTime<Utc>) -> Result<bool> {
        let result = self.inner.update(row, now).await;
        self.after_write(Fingerprint::of(&row.sid), &result, |w| *w)
            .await;
        result
    }

    async fn touch(
        &self,
        sid: &str,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
        only_if_before: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        let result = self.inner.touch(sid, expires, now, only_if_before).await;
        self.after_write(Fingerprint::of(sid), &result, |w| *w)
            .await;
        result
    }

    async fn load_and_touch(
        &self,
        sid: &str,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
        only_if_before: Option<DateTime<Utc>>,
    ) -> Result<Option<SessionRow>> {
        let key = Fingerprint::of(sid);
        // A touch the throttle would skip writes nothing: the cached row is the answer.
        if let Some(row) = self.entries.get(key, sid, now)
            && only_if_before.is_some()
            && !touch_is_due(row.expires, only_if_before)
        {
            self.hit();
            return Ok(Some(row));
        }
        self.miss();
        let ticket = self.entries.ticket(key);
        let result = self
            .inner
            .load_and_touch(sid, expires, now, only_if_before)
            .await;
        match &result {
            // The expiry is the one asked for: the touch wrote (or the row had it already).
            Ok(Some(row)) if row.expires == Some(expires) => {
                self.changed(Invalidate::Session(key)).await;
                self.entries.fill(key, ticket.after_own(), row, now);
            }
            Ok(Some(row)) => self.entries.fill(key, ticket, row, now),
            Ok(None) => {}
            Err(_) => self.changed(Invalidate::Session(key)).await,
        }
        result
    }

    async fn load_and_slide(&self, sid: &str, slide: Slide) -> Result<Option<SessionRow>> {
        let key = Fingerprint::of(sid);
        let before = self.entries.expiry(key, sid, slide.now);
        self.miss();
        let ticket = self.entries.ticket(key);
        let result = self.inner.load_and_slide(sid, slide).await;
        match (&result, before) {
            // The expiry did not move: the throttle skipped the write.
            (Ok(Some(row)), Some(before)) if before == row.expires => {
                self.entries.fill(key, ticket, row, slide.now);
            }
            // It may have written: tell the others, then keep the row as it is after.
            (Ok(Some(row)), _) => {
                self.changed(Invalidate::Session(key)).await;
                self.entries.fill(key, ticket.after_own(), row, slide.now);
            }
            (Ok(None), None) => {}
            _ => self.changed(Invalidate::Session(key)).await,
        }
        result
    }

    async fn destroy(&self, sid: &str) -> Result<bool> {
        let result = self.inner.destroy(sid).await;
        self.after_write(Fingerprint::of(sid), &result, |w| *w)
            .await;
        result
    }

    async fn delete_expired(&self, now: DateTime<Utc>, limit: u32) -> Result<u64> {
        // An entry is never served past its row's expiry: nothing cached is swept.
        self.inner.delete_expired(now, limit).await
    }

    async fn delete_all_expired(&self, now: DateTime<Utc>, batch: u32) -> Result<Sweep> {
        self.inner.delete_all_expired(now, batch).await
    }

    async fn count(&self, now: DateTime<Utc>) -> Result<u64> {
        self.inner.count(now).await
    }

    async fn list(&self, now: DateTime<Utc>) -> Result<Vec<SessionRow>> {
        self.inner.list(now).await
    }

    async fn clear(&self) -> Result<u64> {
        let result = self.inner.clear().await;
        self.changed(Invalidate::All).await;
        result
    }

    async fn list_for_user<'a>(
        &self,
        user: &str,
        now: DateTime<Utc>,
        after: Option<&'a str>,
        limit: u32,
    ) -> Result<Vec<UserSession>> {
        self.inner.list_for_user(user, now, after, limit).await
    }

    async fn count_for_user(&self, user: &str, now: DateTime<Utc>) -> Result<u64> {
        self.inner.count_for_user(user, now).await
    }

    /// The model's, then every entry goes, here and on the channel: which sessions the user
    /// had is known to the database only.
    async fn destroy_for_user<'a>(&self, user: &str, except: Option<&'a str>) -> Result<u64> {
        let result = self.inner.destroy_for_user(user, except).await;
        if result.as_ref().is_ok_and(|n| *n > 0) {
            self.changed(Invalidate::All).await;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_keeps_its_bounds_above_zero() {
        let config = CacheConfig::new();
        assert_eq!(
            (config.max_entries(), config.max_bytes()),
            (10_000, 64 << 20)
        );
        let config = config.with_max_entries(0).with_max_bytes(0);
        assert_eq!((config.max_entries(), config.max_bytes()), (1, 1));
        let config = config.with_max_entries(7).with_max_bytes(4096);
        assert_eq!((config.max_entries(), config.max_bytes()), (7, 4096));
        assert_eq!(CacheConfig::default(), CacheConfig::new());
    }

    #[test]
    fn an_entry_weighs_its_bytes_or_the_floor() {
        use quick_cache::Weighter;
        let entry = Arc::new(Entry {
            row: SessionRow::new("abc", "0123456789", None),
            until: DateTime::<Utc>::MAX_UTC,
        });
        assert_eq!(
            Weight { floor: 0 }.weight(&0, &entry),
            3 + 10 + ENTRY_OVERHEAD
        );
        assert_eq!(Weight { floor: 1000 }.weight(&0, &entry), 1000);
    }
}
