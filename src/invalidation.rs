//! How the caches of one table on several app instances tell each other what changed: the
//! [`Invalidation`] channel that a [`Cached`](crate::Cached) model publishes to after each
//! committed write and listens on for the writes of the others.

use std::fmt;
use std::sync::Weak;

use async_trait::async_trait;

use crate::Result;

/// A short, stable digest of a session id (64-bit FNV-1a), the key of the cache and what an
/// invalidation message names instead of the id.
///
/// It is not a secret and not a way back to the id: an id of 128 random bits or more has
/// some 2^64 others with the same fingerprint, so a message read off the channel hands out no
/// cookie. Every instance computes the same fingerprint, whatever its build.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(u64);

impl Fingerprint {
    /// The fingerprint of session id `sid`.
    pub fn of(sid: &str) -> Self {
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut hash = OFFSET;
        for byte in sid.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
        Fingerprint(hash)
    }

    /// The fingerprint as a number.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The fingerprint of that number (as read back from a message).
    pub fn from_u64(n: u64) -> Self {
        Fingerprint(n)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({:016x})", self.0)
    }
}

/// What a message on the channel says changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalidate {
    /// The session with this fingerprint was written or destroyed: drop it.
    Session(Fingerprint),
    /// Every session may have changed (a `clear`): drop them all.
    All,
}

/// A channel over which the caches of one table on several app instances tell each other
/// which sessions changed (PostgreSQL's `LISTEN`/`NOTIFY`: [`PgNotify`](crate::driver::sqlx::PgNotify)).
///
/// A [`Cached`](crate::Cached) model calls [`publish`](Invalidation::publish) after each write
/// has committed, and runs [`listen`](Invalidation::listen) on a task of its own for as long
/// as it lives. The cache serves entries only while the channel says, through
/// [`Evictions::live`], that messages arrive; the channel must call [`Evictions::lost`] as soon
/// as they may not (a dropped connection, a heartbeat that did not come back), and the cache
/// then empties itself and serves from the database until the channel is live again.
#[async_trait]
pub trait Invalidation: Send + Sync + fmt::Debug + 'static {
    /// Tells every other instance's cache that `what` changed; `origin` is the publishing
    /// cache's [`Evictions::origin`], so that listeners can skip their own messages. Returns
    /// once the message is on its way.
    ///
    /// # Errors
    /// The message could not be sent; the write it follows has committed all the same.
    async fn publish(&self, origin: u64, what: Invalidate) -> Result<()>;

    /// Delivers what other instances publish to `cache` until [`Evictions::is_closed`],
    /// reconnecting as needed, and says when messages arrive ([`Evictions::live`]) and when
    /// they may not ([`Evictions::lost`]).
    async fn listen(&self, cache: Evictions);
}

/// What a cache lets its channel do to it. Implemented by the cache itself.
pub(crate) trait CacheControl: Send + Sync {
    fn evict(&self, key: Fingerprint);
    fn evict_all(&self);
    fn lost(&self);
    fn live(&self);
    fn is_live(&self) -> bool;
    fn stop(&self);
}

/// The handle an [`Invalidation`] channel gets on the cache it serves. It does not keep the
/// cache alive: once the cache is dropped every call returns `false` and
/// [`is_closed`](Evictions::is_closed) is true.
pub struct Evictions {
    target: Weak<dyn CacheControl>,
    origin: u64,
}

impl fmt::Debug for Evictions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Evictions")
            .field("origin", &format_args!("{:016x}", self.origin))
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Evictions {
    pub(crate) fn new(target: Weak<dyn CacheControl>, origin: u64) -> Self {
        Evictions { target, origin }
    }

    fn with(&self, f: impl FnOnce(&dyn CacheControl)) -> bool {
        match self.target.upgrade() {
            Some(cache) => {
                f(&*cache);
                true
            }
            None => false,
        }
    }

    /// Drops what `what` names from the cache. `false` once the cache is gone.
    pub fn apply(&self, what: Invalidate) -> bool {
        self.with(|cache| match what {
            Invalidate::Session(key) => cache.evict(key),
            Invalidate::All => cache.evict_all(),
        })
    }

    /// Messages may be lost from now on: the cache empties itself and serves from the
    /// database until [`live`](Evictions::live). `false` once the cache is gone.
    pub fn lost(&self) -> bool {
        self.with(|cache| cache.lost())
    }

    /// Messages arrive (the channel heard its own heartbeat): the cache empties itself once
    /// more, for what it may have missed, and serves again. `false` once the cache is gone.
    pub fn live(&self) -> bool {
        self.with(|cache| cache.live())
    }

    /// Whether the cache serves: [`live`](Evictions::live) was the last word. `false` once the
    /// cache is gone.
    pub fn is_live(&self) -> bool {
        self.target.upgrade().is_some_and(|cache| cache.is_live())
    }

    /// The channel gives up for good (it was told to listen where it must not): the cache
    /// empties itself and never serves again, and says so (`Cached::channel_stopped`).
    /// `false` once the cache is gone.
    pub fn stop(&self) -> bool {
        self.with(|cache| cache.stop())
    }

    /// Whether the cache is gone, so that the channel can stop listening.
    pub fn is_closed(&self) -> bool {
        self.target.strong_count() == 0
    }

    /// The cache's own random id, which it passes to [`Invalidation::publish`].
    pub fn origin(&self) -> u64 {
        self.origin
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A cache that writes down what its channel told it.
    #[derive(Default)]
    struct Told(Mutex<Vec<String>>);

    impl CacheControl for Told {
        fn evict(&self, key: Fingerprint) {
            self.0
                .lock()
                .unwrap()
                .push(format!("evict {:x}", key.get()));
        }
        fn evict_all(&self) {
            self.0.lock().unwrap().push("evict all".into());
        }
        fn lost(&self) {
            self.0.lock().unwrap().push("lost".into());
        }
        fn live(&self) {
            self.0.lock().unwrap().push("live".into());
        }
        fn is_live(&self) -> bool {
            self.0.lock().unwrap().last().is_some_and(|l| l == "live")
        }
        fn stop(&self) {
            self.0.lock().unwrap().push("stop".into());
        }
    }

    #[test]
    fn evictions_reach_the_cache_while_it_lives() {
        let told = Arc::new(Told::default());
        let cache: Arc<dyn CacheControl> = Arc::clone(&told) as Arc<dyn CacheControl>;
        let evictions = Evictions::new(Arc::downgrade(&cache), 0xab);
        assert_eq!(evictions.origin(), 0xab);
        assert!(!evictions.is_closed());
        assert_eq!(
            format!("{evictions:?}"),
            "Evictions { origin: 00000000000000ab, closed: false }"
        );
        assert!(evictions.apply(Invalidate::Session(Fingerprint::from_u64(0x2a))));
        assert!(evictions.apply(Invalidate::All));
        assert!(evictions.lost());
        assert!(!evictions.is_live());
        assert!(evictions.live());
        assert!(evictions.is_live());
        assert!(evictions.stop());
        assert_eq!(
            *told.0.lock().unwrap(),
            ["evict 2a", "evict all", "lost", "live", "stop"]
        );
        drop(cache);
        drop(told);
        assert!(evictions.is_closed());
        assert!(!evictions.apply(Invalidate::All));
        assert!(!evictions.lost());
        assert!(!evictions.live());
        assert!(!evictions.is_live());
        assert!(!evictions.stop());
    }

    #[test]
    fn fingerprints_are_fnv1a_and_stable() {
        // The FNV-1a 64 test vectors: every build of every instance agrees on them.
        assert_eq!(Fingerprint::of("").get(), 0xcbf2_9ce4_8422_2325);
        assert_eq!(Fingerprint::of("a").get(), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(Fingerprint::of("foobar").get(), 0x8594_4171_f739_67e8);
        assert_ne!(Fingerprint::of("abc"), Fingerprint::of("acb"));
        assert_eq!(
            format!("{:?}", Fingerprint::of("a")),
            "Fingerprint(af63dc4c8601ec8c)"
        );
    }
}
