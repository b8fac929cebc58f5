//! The session cache (`Cached`): what it serves, what it never keeps, its bounds, and its
//! coherence across app instances: through a channel of the test's own (whose link the test
//! cuts and restores), through PostgreSQL's `LISTEN`/`NOTIFY` (`PgNotify`, whose listening
//! connection the test kills), and by the ttl alone on SQLite and MariaDB.

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use common::{db, t0};
use sequelstore::{
    CacheConfig, Cached, ConnectSession, Created, Evictions, Invalidate, Invalidation, MemoryModel,
    SessionModel, SessionRow, Sweep,
};
use tokio::sync::{Notify, broadcast, watch};
use tokio::time::Instant;

fn row(sid: &str, data: &str, expires: DateTime<Utc>) -> SessionRow {
    SessionRow::new(sid, data, Some(expires))
}

fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

fn hour_ttl() -> CacheConfig {
    CacheConfig::new().with_ttl(Duration::from_secs(3600))
}

/// Waits until `done` holds, for at most a minute (generous: this is a condition, not a
/// timing), looking again every 2 ms: the conditions are another instance's state, which
/// nothing here can be told of.
async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut again = tokio::time::interval(Duration::from_millis(2));
    while !done().await {
        assert!(Instant::now() < deadline, "waited a minute for: {what}");
        again.tick().await;
    }
}

// ---------------------------------------------------------------------------------------------
// One model shared by several caches, as one table is shared by several app instances.

/// A model shared by several caches, whose loads a test can hold after they read the row.
#[derive(Debug, Clone, Default)]
struct Shared {
    rows: Arc<MemoryModel>,
    hold: Option<Arc<Hold>>,
}

/// Holds a load between reading the row and returning it.
#[derive(Debug, Default)]
struct Hold {
    read: Notify,
    go: Notify,
}

#[async_trait]
impl SessionModel for Shared {
    fn capabilities(&self) -> sequelstore::Capabilities {
        self.rows.capabilities()
    }
    async fn load(&self, sid: &str, now: DateTime<Utc>) -> sequelstore::Result<Option<SessionRow>> {
        let row = self.rows.load(sid, now).await?;
        if let Some(hold) = &self.hold {
            hold.read.notify_one();
            hold.go.notified().await;
        }
        Ok(row)
    }
    async fn create(&self, row: &SessionRow, now: DateTime<Utc>) -> sequelstore::Result<Created> {
        self.rows.create(row, now).await
    }
    async fn save(&self, row: &SessionRow, now: DateTime<Utc>) -> sequelstore::Result<()> {
        self.rows.save(row, now).await
    }
    async fn update(&self, row: &SessionRow, now: DateTime<Utc>) -> sequelstore::Result<bool> {
        self.rows.update(row, now).await
    }
    async fn touch(
        &self,
        sid: &str,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
        only_if_before: Option<DateTime<Utc>>,
    ) -> sequelstore::Result<bool> {
        self.rows.touch(sid, expires, now, only_if_before).await
    }
    async fn destroy(&self, sid: &str) -> sequelstore::Result<bool> {
        self.rows.destroy(sid).await
    }
    async fn delete_expired(&self, now: DateTime<Utc>, limit: u32) -> sequelstore::Result<u64> {
        self.rows.delete_expired(now, limit).await
    }
    async fn delete_all_expired(
        &self,
        now: DateTime<Utc>,
        batch: u32,
    ) -> sequelstore::Result<Sweep> {
        self.rows.delete_all_expired(now, batch).await
    }
    async fn count(&self, now: DateTime<Utc>) -> sequelstore::Result<u64> {
        self.rows.count(now).await
    }
    async fn list(&self, now: DateTime<Utc>) -> sequelstore::Result<Vec<SessionRow>> {
        self.rows.list(now).await
    }
    async fn clear(&self) -> sequelstore::Result<u64> {
        self.rows.clear().await
    }
}

/// A channel of the test's own: one broadcast for every instance, and per instance a link the
/// test can cut (messages to it are then lost, and it says so) and restore.
#[derive(Debug, Clone)]
struct Bus {
    messages: broadcast::Sender<(u64, Invalidate)>,
    published: Arc<std::sync::atomic::AtomicUsize>,
}

#[derive(Debug)]
struct Link {
    bus: broadcast::Sender<(u64, Invalidate)>,
    up: watch::Receiver<bool>,
    published: Arc<std::sync::atomic::AtomicUsize>,
}

impl Bus {
    fn new() -> Self {
        Bus {
            messages: broadcast::channel(1024).0,
            published: Arc::default(),
        }
    }

    /// A channel for one instance, and the switch of its link (up to start with).
    fn link(&self) -> (Link, watch::Sender<bool>) {
        let (switch, up) = watch::channel(true);
        let link = Link {
            bus: self.messages.clone(),
            up,
            published: Arc::clone(&self.published),
        };
        (link, switch)
    }
}

#[async_trait]
impl Invalidation for Link {
    async fn publish(&self, origin: u64, what: Invalidate) -> sequelstore::Result<()> {
        self.published
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _ = self.bus.send((origin, what));
        Ok(())
    }

    async fn listen(&self, cache: Evictions) {
        let mut up = self.up.clone();
        let mut messages = self.bus.subscribe();
        if *up.borrow_and_update() {
            cache.live();
        }
        loop {
            tokio::select! {
                changed = up.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let open = *up.borrow_and_update();
                    let still = if open { cache.live() } else { cache.lost() };
                    if !still {
                        return;
                    }
                }
                message = messages.recv() => match message {
                    // A cut link loses what is sent meanwhile.
                    Ok(_) if !*up.borrow() => {}
                    Ok((from, what)) if from != cache.origin() => {
                        if !cache.apply(what) {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if !cache.lost() || !cache.live() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }
}

async fn serving<M: SessionModel>(cache: &Cached<M>) {
    tokio::time::timeout(Duration::from_secs(60), cache.serving())
        .await
        .expect("the cache's channel is heard within a minute");
}

// ---------------------------------------------------------------------------------------------
// One instance

#[tokio::test]
async fn a_hot_session_is_served_from_memory_for_at_most_the_ttl() {
    let shared = Shared::default();
    let cache = Cached::new(
        shared.clone(),
        CacheConfig::new().with_ttl(Duration::from_secs(10)),
    );
    let now = t0();
    cache
        .save(&row("s", r#"{"n":1}"#, now + secs(3600)), now)
        .await
        .unwrap();
    assert_eq!(
        cache.load("s", now).await.unwrap().unwrap().data,
        r#"{"n":1}"#
    );
    // Another client writes the table: the cache does not know.
    shared
        .rows
        .save(&row("s", r#"{"n":2}"#, now + secs(3600)), now)
        .await
        .unwrap();
    let served = cache.load("s", now + secs(9)).await.unwrap().unwrap();
    assert_eq!(
        served.data, r#"{"n":1}"#,
        "served from memory within the ttl"
    );
    assert_eq!((cache.stats().hits, cache.stats().misses), (1, 1));
    let served = cache.load("s", now + secs(10)).await.unwrap().unwrap();
    assert_eq!(
        served.data, r#"{"n":2}"#,
        "loaded again once the ttl is over"
    );
    // `purge` drops what this instance holds, whatever its age.
    shared
        .rows
        .save(&row("s", r#"{"n":3}"#, now + secs(3600)), now)
        .await
        .unwrap();
    assert_eq!(
        cache.load("s", now + secs(11)).await.unwrap().unwrap().data,
        r#"{"n":2}"#
    );
    cache.purge();
    assert_eq!(cache.stats().entries, 0);
    assert_eq!(
        cache.load("s", now + secs(11)).await.unwrap().unwrap().data,
        r#"{"n":3}"#
    );
}

#[tokio::test]
async fn its_debug_output_shows_the_state_and_no_session() {
    let cache = Cached::new(MemoryModel::new(), hour_ttl());
    let now = t0();
    let sid = "a-secret-session-id-of-some-length";
    cache
        .save(&row(sid, "{}", now + secs(60)), now)
        .await
        .unwrap();
    assert!(cache.load(sid, now).await.unwrap().is_some());
    assert!(cache.load(sid, now).await.unwrap().is_some());
    let shown = format!("{cache:?}");
    for part in [
        "Cached",
        "MemoryModel",
        "serving: true",
        "hits: 1",
        "misses: 1",
        "entries: 1",
    ] {
        assert!(shown.contains(part), "{part} in {shown}");
    }
    assert!(!shown.contains("secret"), "{shown}");
}

#[tokio::test]
async fn an_entry_never_outlives_its_session() {
    let cache = Cached::new(MemoryModel::new(), hour_ttl());
    let now = t0();
    cache
        .save(&row("s", "{}", now + secs(5)), now)
        .await
        .unwrap();
    assert!(cache.load("s", now).await.unwrap().is_some());
    assert!(cache.load("s", now + secs(4)).await.unwrap().is_some());
    assert_eq!(cache.stats().hits, 1);
    assert_eq!(cache.load("s", now + secs(5)).await.unwrap(), None);
    assert_eq!(cache.load("s", now + secs(6)).await.unwrap(), None);
}

#[tokio::test]
async fn writes_through_the_cache_are_seen_at_once() {
    let cache = Cached::new(MemoryModel::new(), hour_ttl());
    let now = t0();
    let later = now + secs(3600);
    cache.save(&row("s", "1", later), now).await.unwrap();
    assert_eq!(cache.load("s", now).await.unwrap().unwrap().data, "1");
    assert!(cache.update(&row("s", "2", later), now).await.unwrap());
    assert_eq!(cache.load("s", now).await.unwrap().unwrap().data, "2");
    cache.save(&row("s", "3", later), now).await.unwrap();
    assert_eq!(cache.load("s", now).await.unwrap().unwrap().data, "3");
    assert!(cache.touch("s", later + secs(60), now, None).await.unwrap());
    let touched = cache.load("s", now).await.unwrap().unwrap();
    assert_eq!(touched.expires, Some(later + secs(60)));
    assert!(cache.destroy("s").await.unwrap());
    assert_eq!(cache.load("s", now).await.unwrap(), None);
    cache.save(&row("t", "4", later), now).await.unwrap();
    assert!(cache.load("t", now).await.unwrap().is_some());
    assert_eq!(cache.clear().await.unwrap(), 1);
    assert_eq!(cache.load("t", now).await.unwrap(), None);
}

#[tokio::test]
async fn a_throttled_touch_that_is_not_due_is_answered_from_memory() {
    let cache = Cached::new(MemoryModel::new(), hour_ttl());
    let now = t0();
    cache
        .save(&row("s", "{}", now + secs(600)), now)
        .await
        .unwrap();
    assert!(cache.load("s", now).await.unwrap().is_some());
    let hits = cache.stats().hits;
    // Not due: the stored expiry is after the throttle's limit.
    let row = cache
        .load_and_touch("s", now + secs(660), now + secs(60), Some(now + secs(300)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.expires, Some(now + secs(600)));
    assert_eq!(cache.stats().hits, hits + 1);
    // Due: it writes, and the next load sees the new expiry.
    let row = cache
        .load_and_touch("s", now + secs(900), now + secs(300), Some(now + secs(700)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.expires, Some(now + secs(900)));
    // The row the touch returned is kept: the next load is a hit with the new expiry.
    let hits = cache.stats().hits;
    let loaded = cache.load("s", now + secs(300)).await.unwrap().unwrap();
    assert_eq!(loaded.expires, Some(now + secs(900)));
    assert_eq!(cache.stats().hits, hits + 1);
}

/// A load that read the row before a destroy committed, and returns after it, must not leave
/// what it read in the cache: sign-out sticks even against a slower request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_racing_a_destroy_never_keeps_what_it_read() {
    let hold = Arc::new(Hold::default());
    let shared = Shared {
        rows: Arc::default(),
        hold: None,
    };
    let now = t0();
    shared
        .rows
        .save(&row("s", "{}", now + secs(3600)), now)
        .await
        .unwrap();
    let held = Cached::new(
        Shared {
            rows: Arc::clone(&shared.rows),
            hold: Some(Arc::clone(&hold)),
        },
        hour_ttl(),
    );
    let held = Arc::new(held);
    let slow = {
        let held = Arc::clone(&held);
        tokio::spawn(async move { held.load("s", now).await.unwrap() })
    };
    hold.read.notified().await;
    // The load has read the row; the destroy commits and evicts meanwhile.
    assert!(held.destroy("s").await.unwrap());
    hold.go.notify_one();
    assert!(
        slow.await.unwrap().is_some(),
        "the slow load read it before"
    );
    hold.go.notify_one(); // lets the next load through
    assert_eq!(
        held.load("s", now).await.unwrap(),
        None,
        "and did not keep it"
    );
    assert_eq!(held.stats().entries, 0);
}

#[tokio::test]
async fn the_cache_keeps_to_its_bounds() {
    let now = t0();
    let few = Cached::new(MemoryModel::new(), hour_ttl().with_max_entries(10));
    for i in 0..100 {
        let sid = format!("s{i}");
        few.save(&row(&sid, "{}", now + secs(3600)), now)
            .await
            .unwrap();
        assert!(few.load(&sid, now).await.unwrap().is_some());
    }
    assert!((1..=10).contains(&few.stats().entries), "{:?}", few.stats());
    let small = Cached::new(MemoryModel::new(), hour_ttl().with_max_bytes(8 * 1024));
    let data = format!(r#"{{"blob":"{}"}}"#, "x".repeat(1000));
    for i in 0..100 {
        let sid = format!("s{i}");
        small
            .save(&row(&sid, &data, now + secs(3600)), now)
            .await
            .unwrap();
        assert_eq!(small.load(&sid, now).await.unwrap().unwrap().data, data);
    }
    assert!(
        (1..=7).contains(&small.stats().entries),
        "at most 8 KiB of 1 KiB entries: {:?}",
        small.stats()
    );
}

// ---------------------------------------------------------------------------------------------
// Several instances, one channel

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_instance_evicts_on_the_others() {
    let bus = Bus::new();
    let shared = Shared::default();
    let (link_a, _a) = bus.link();
    let (link_b, _b) = bus.link();
    let a = Cached::with_invalidation(shared.clone(), hour_ttl(), link_a);
    let b = Cached::with_invalidation(shared.clone(), hour_ttl(), link_b);
    serving(&a).await;
    serving(&b).await;
    let now = t0();
    let later = now + secs(3600);
    a.save(&row("s", "1", later), now).await.unwrap();
    // b serves it from memory, once a's message about its own write (which may come after
    // b's first load) has come and gone.
    let cached_on_b = async |data: &str| {
        until("b serves the session from memory", async || {
            let hits = b.stats().hits;
            assert_eq!(b.load("s", now).await.unwrap().unwrap().data, data);
            b.stats().hits > hits
        })
        .await;
    };
    cached_on_b("1").await;
    assert!(a.update(&row("s", "2", later), now).await.unwrap());
    until("b drops the updated session", async || {
        b.load("s", now).await.unwrap().unwrap().data == "2"
    })
    .await;
    cached_on_b("2").await;
    assert!(a.touch("s", later + secs(60), now, None).await.unwrap());
    until("b drops the touched session", async || {
        b.load("s", now).await.unwrap().unwrap().expires == Some(later + secs(60))
    })
    .await;
    cached_on_b("2").await;
    assert!(a.destroy("s").await.unwrap());
    until("b drops the destroyed session", async || {
        b.load("s", now).await.unwrap().is_none()
    })
    .await;
    for _ in 0..100 {
        assert_eq!(b.load("s", now).await.unwrap(), None, "sign-out sticks");
    }
    a.save(&row("t", "3", later), now).await.unwrap();
    until("b serves t from memory", async || {
        let hits = b.stats().hits;
        assert!(b.load("t", now).await.unwrap().is_some());
        b.stats().hits > hits
    })
    .await;
    a.clear().await.unwrap();
    until("b drops everything after a clear", async || {
        b.load("t", now).await.unwrap().is_none()
    })
    .await;
}

impl Bus {
    fn published(&self) -> usize {
        self.published.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The sliding loads publish when they wrote, and only then, and keep the row they return.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_writes_are_published_and_their_rows_kept() {
    let bus = Bus::new();
    let (link, _up) = bus.link();
    let cache = Cached::with_invalidation(MemoryModel::new(), hour_ttl(), link);
    serving(&cache).await;
    let now = t0();
    let hit = async |sid: &str, at: DateTime<Utc>| {
        let hits = cache.stats().hits;
        let row = cache.load(sid, at).await.unwrap();
        (row.and_then(|r| r.expires), cache.stats().hits == hits + 1)
    };
    cache
        .save(&row("s", "{}", now + secs(600)), now)
        .await
        .unwrap();
    assert_eq!(bus.published(), 1, "a save");
    assert_eq!(hit("s", now).await, (Some(now + secs(600)), false));
    // A throttled touch that is not due, from memory.
    let throttled = cache
        .load_and_touch("s", now + secs(610), now + secs(10), Some(now + secs(310)))
        .await
        .unwrap();
    assert_eq!(throttled.unwrap().expires, Some(now + secs(600)));
    // A slide that is not due: asked of the model, nothing written, nothing published.
    let slide = |at| sequelstore::Slide::new(at, at + secs(600), Some(Duration::from_secs(300)));
    let slid = cache
        .load_and_slide("s", slide(now + secs(10)))
        .await
        .unwrap();
    assert_eq!(slid.unwrap().expires, Some(now + secs(600)));
    assert_eq!(
        cache.load_and_slide("nobody", slide(now)).await.unwrap(),
        None
    );
    assert_eq!(bus.published(), 1, "nothing written since the save");
    assert_eq!(
        hit("s", now + secs(10)).await,
        (Some(now + secs(600)), true)
    );
    // The same throttled touch with nothing cached: asked of the model, which writes nothing.
    cache.purge();
    let throttled = cache
        .load_and_touch("s", now + secs(610), now + secs(10), Some(now + secs(310)))
        .await
        .unwrap();
    assert_eq!(throttled.unwrap().expires, Some(now + secs(600)));
    assert_eq!(bus.published(), 1, "a touch the throttle skipped");
    assert_eq!(
        hit("s", now + secs(10)).await,
        (Some(now + secs(600)), true)
    );
    // A touch with no throttle writes: published, and its row kept.
    let touched = cache
        .load_and_touch("s", now + secs(700), now + secs(20), None)
        .await
        .unwrap();
    assert_eq!(touched.unwrap().expires, Some(now + secs(700)));
    assert_eq!(bus.published(), 2, "the touch");
    assert_eq!(
        hit("s", now + secs(20)).await,
        (Some(now + secs(700)), true)
    );
    // A slide that is due writes: published, and its row kept.
    let slid = cache
        .load_and_slide("s", slide(now + secs(400)))
        .await
        .unwrap();
    let expires = slid.unwrap().expires;
    assert!(expires > Some(now + secs(700)), "{expires:?}");
    assert_eq!(bus.published(), 3, "the slide");
    assert_eq!(hit("s", now + secs(400)).await, (expires, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_whose_channel_is_down_serves_nothing() {
    let bus = Bus::new();
    let shared = Shared::default();
    let (link_a, _a) = bus.link();
    let (link_b, switch_b) = bus.link();
    let a = Cached::with_invalidation(shared.clone(), hour_ttl(), link_a);
    let b = Cached::with_invalidation(shared.clone(), hour_ttl(), link_b);
    serving(&a).await;
    serving(&b).await;
    let now = t0();
    a.save(&row("s", "{}", now + secs(3600)), now)
        .await
        .unwrap();
    until("b keeps the session", async || {
        b.load("s", now).await.unwrap().is_some() && b.stats().entries == 1
    })
    .await;

    // The link goes down, and a destroy on a is published while b cannot hear it.
    switch_b.send(false).unwrap();
    until("b knows its channel is down", async || !b.is_serving()).await;
    assert_eq!(b.stats().entries, 0, "b emptied itself");
    assert!(a.destroy("s").await.unwrap());
    let misses = b.stats().misses;
    assert_eq!(b.load("s", now).await.unwrap(), None, "b asks the model");
    a.save(&row("t", "{}", now + secs(3600)), now)
        .await
        .unwrap();
    for _ in 0..10 {
        assert!(b.load("t", now).await.unwrap().is_some());
    }
    assert_eq!(b.stats().misses, misses + 11, "nothing served while down");
    assert_eq!(b.stats().entries, 0, "and nothing kept");

    // Back up: b serves again, and a destroy on a reaches it.
    switch_b.send(true).unwrap();
    serving(&b).await;
    assert!(b.load("t", now).await.unwrap().is_some());
    assert!(b.load("t", now).await.unwrap().is_some());
    assert!(a.destroy("t").await.unwrap());
    until("b drops t", async || {
        b.load("t", now).await.unwrap().is_none()
    })
    .await;
}

#[tokio::test]
async fn a_channel_never_heard_serves_nothing() {
    let bus = Bus::new();
    let (link, switch) = bus.link();
    switch.send(false).unwrap();
    let cache = Cached::with_invalidation(MemoryModel::new(), hour_ttl(), link);
    let now = t0();
    cache
        .save(&row("s", "{}", now + secs(60)), now)
        .await
        .unwrap();
    for _ in 0..5 {
        assert!(cache.load("s", now).await.unwrap().is_some());
        tokio::task::yield_now().await;
    }
    assert!(!cache.is_serving());
    assert_eq!((cache.stats().hits, cache.stats().entries), (0, 0));
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL: LISTEN/NOTIFY

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use sequelstore::PgNotify;
    use sqlx::PgPool;
    use sqlx::postgres::PgConnectOptions;

    /// Two app instances on one table, each with its own pool and its own listener (named so
    /// that the test can find its connection).
    struct Pair {
        a: Cached<ConnectSession<PgPool>>,
        b: Cached<ConnectSession<PgPool>>,
        b_listener: String,
        table: String,
        pool: PgPool,
    }

    async fn pair(test: &str) -> Option<Pair> {
        let pool = db::postgres().await?;
        let table = db::unique_table(test);
        let b_listener = format!("{table}_b");
        let instance = async |name: String| {
            let pool = PgPool::connect_with(pool.connect_options().as_ref().clone())
                .await
                .unwrap();
            let model = ConnectSession::auto_table(pool.clone(), &table)
                .await
                .unwrap();
            let options: PgConnectOptions = pool
                .connect_options()
                .as_ref()
                .clone()
                .application_name(&name);
            let channel = PgNotify::new(&pool, &table)
                .with_listen_options(options)
                .with_heartbeat(Duration::from_millis(100));
            let cache = Cached::with_invalidation(model, hour_ttl(), channel);
            serving(&cache).await;
            cache
        };
        let a = instance(format!("{table}_a")).await;
        let b = instance(b_listener.clone()).await;
        Some(Pair {
            a,
            b,
            b_listener,
            table,
            pool,
        })
    }

    impl Pair {
        async fn finish(self) {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP TABLE \"{}\"",
                self.table
            )))
            .execute(&self.pool)
            .await
            .unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_destroy_on_one_instance_evicts_on_the_other() {
        let Some(p) = pair("cache_pg_destroy").await else {
            return;
        };
        let now = Utc::now();
        let later = now + secs(3600);
        for i in 0..20 {
            let sid = format!("s{i}");
            p.a.save(&row(&sid, r#"{"n":1}"#, later), now)
                .await
                .unwrap();
            until("b serves the session from memory", async || {
                let hits = p.b.stats().hits;
                assert!(p.b.load(&sid, now).await.unwrap().is_some());
                p.b.stats().hits > hits
            })
            .await;
            assert!(
                p.a.update(&row(&sid, r#"{"n":2}"#, later), now)
                    .await
                    .unwrap()
            );
            until("b sees the update", async || {
                p.b.load(&sid, now).await.unwrap().unwrap().data == r#"{"n":2}"#
            })
            .await;
            assert!(p.a.destroy(&sid).await.unwrap());
            until("b drops the destroyed session", async || {
                p.b.load(&sid, now).await.unwrap().is_none()
            })
            .await;
            for _ in 0..10 {
                assert_eq!(p.b.load(&sid, now).await.unwrap(), None, "sign-out sticks");
            }
        }
        p.finish().await;
    }

    /// A dropped cache takes its listening connection with it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_cache_stops_listening() {
        let Some(p) = pair("cache_pg_drop").await else {
            return;
        };
        let (pool, name, table) = (p.pool.clone(), p.b_listener.clone(), p.table.clone());
        let listeners = async || -> i64 {
            sqlx::query_as::<_, (i64,)>(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            )
            .bind(&name)
            .fetch_one(&pool)
            .await
            .unwrap()
            .0
        };
        assert_eq!(listeners().await, 1);
        let Pair { a, b, .. } = p;
        drop(b);
        until("b's listener is gone", async || listeners().await == 0).await;
        drop(a);
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE \"{table}\"")))
            .execute(&pool)
            .await
            .unwrap();
    }

    /// The listening connection of b is killed: b stops serving until it listens again, and a
    /// destroy on a meanwhile (whose message b cannot hear) is never undone by b's cache.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lost_listener_never_serves_blind() {
        let Some(p) = pair("cache_pg_lost").await else {
            return;
        };
        let now = Utc::now();
        let later = now + secs(3600);
        for round in 0..3 {
            let sid = format!("s{round}");
            p.a.save(&row(&sid, "{}", later), now).await.unwrap();
            assert!(p.b.load(&sid, now).await.unwrap().is_some());
            let killed: (i64,) = sqlx::query_as(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE application_name = $1",
            )
            .bind(&p.b_listener)
            .fetch_one(&p.pool)
            .await
            .unwrap();
            assert_eq!(killed.0, 1, "b's listener is found and killed");
            assert!(p.a.destroy(&sid).await.unwrap());
            until(
                "b knows its listener was lost, or has heard the destroy",
                async || !p.b.is_serving() || p.b.stats().entries == 0,
            )
            .await;
            assert_eq!(p.b.load(&sid, now).await.unwrap(), None);
            serving(&p.b).await;
            for _ in 0..10 {
                assert_eq!(p.b.load(&sid, now).await.unwrap(), None);
            }
        }
        p.finish().await;
    }
}

/// A TCP relay in front of PostgreSQL that can freeze: every connection open at that moment
/// goes silent for good (its bytes held in both directions, nothing closed), as behind a
/// network that drops packets; connections made after the thaw work.
#[cfg(feature = "postgres")]
mod freezer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::watch;

    pub(super) struct Freezer {
        pub(super) port: u16,
        /// Whether frozen, and the generation of the connections that may still talk.
        state: watch::Sender<(bool, u64)>,
    }

    impl Freezer {
        pub(super) fn freeze(&self) {
            self.state.send_modify(|(frozen, generation)| {
                *frozen = true;
                *generation += 1;
            });
        }

        pub(super) fn thaw(&self) {
            self.state.send_modify(|(frozen, _)| *frozen = false);
        }
    }

    async fn pump(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        mut state: watch::Receiver<(bool, u64)>,
        born: u64,
    ) {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let Ok(n) = from.read(&mut buf).await else {
                return;
            };
            let open = state
                .wait_for(|&(frozen, generation)| !frozen && generation == born)
                .await
                .is_ok();
            if n == 0 || !open {
                return;
            }
            if to.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    }

    pub(super) async fn start(upstream: (String, u16)) -> Freezer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (state, watch) = watch::channel((false, 0));
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect((upstream.0.as_str(), upstream.1)).await else {
                    continue;
                };
                let born = watch.borrow().1;
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, watch.clone(), born));
                tokio::spawn(pump(sr, cw, watch.clone(), born));
            }
        });
        Freezer { port, state }
    }
}

/// B listens through a relay that freezes: no error, no closed connection, just silence for
/// good. B's heartbeat goes unheard, so B stops serving and listens again on a new connection
/// (without that, it would wait on the silent one for ever); a destroy on A while B could not
/// hear it is never served by B.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_silent_listener_stops_the_cache_and_is_replaced() {
    use sequelstore::PgNotify;
    let Some(pool) = db::postgres().await else {
        return;
    };
    let table = db::unique_table("cache_pg_silent");
    let options = pool.connect_options().as_ref().clone();
    let relay = freezer::start((options.get_host().to_owned(), options.get_port())).await;
    let model = |pool: sqlx::PgPool| {
        let table = table.clone();
        async move { ConnectSession::auto_table(pool, &table).await.unwrap() }
    };
    let a = Cached::with_invalidation(
        model(pool.clone()).await,
        hour_ttl(),
        PgNotify::new(&pool, &table).with_heartbeat(Duration::from_millis(50)),
    );
    let through_relay = options.clone().host("127.0.0.1").port(relay.port);
    let b = Cached::with_invalidation(
        model(pool.clone()).await,
        hour_ttl(),
        PgNotify::new(&pool, &table)
            .with_listen_options(through_relay)
            .with_listen_through_proxy(true)
            .with_heartbeat(Duration::from_millis(50)),
    );
    serving(&a).await;
    serving(&b).await;
    let now = Utc::now();
    for round in 0..2 {
        let sid = format!("s{round}");
        a.save(&row(&sid, "{}", now + secs(3600)), now)
            .await
            .unwrap();
        until("b keeps the session", async || {
            b.load(&sid, now).await.unwrap().is_some() && b.stats().entries > 0
        })
        .await;
        relay.freeze();
        assert!(a.destroy(&sid).await.unwrap());
        until("b notices the silence", async || !b.is_serving()).await;
        assert_eq!(b.load(&sid, now).await.unwrap(), None);
        relay.thaw();
        serving(&b).await;
        for _ in 0..10 {
            assert_eq!(b.load(&sid, now).await.unwrap(), None, "sign-out sticks");
        }
    }
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE \"{table}\"")))
        .execute(&pool)
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// SQLite and MariaDB: no channel, the ttl is the bound

/// Two instances with caches of their own on one table: a destroy on a is seen on b once b's
/// entry is older than the ttl, and not before (the documented bound).
async fn the_ttl_bounds_staleness<M: SessionModel>(a: M, b: M) {
    let config = CacheConfig::new().with_ttl(Duration::from_secs(5));
    let (a, b) = (Cached::new(a, config), Cached::new(b, config));
    let now = Utc::now();
    a.save(&row("s", "{}", now + secs(3600)), now)
        .await
        .unwrap();
    assert!(b.load("s", now).await.unwrap().is_some());
    assert!(a.destroy("s").await.unwrap());
    assert_eq!(a.load("s", now).await.unwrap(), None, "at once on a");
    assert!(
        b.load("s", now + secs(4)).await.unwrap().is_some(),
        "still on b within its ttl"
    );
    assert_eq!(
        b.load("s", now + secs(5)).await.unwrap(),
        None,
        "gone at the ttl"
    );
}

#[tokio::test]
async fn sqlite_the_ttl_bounds_staleness() {
    let url = db::temp_sqlite_url("cache_ttl");
    let pool = |url: String| async move {
        <sqlx::SqlitePool as sequelstore::ConnectUrl>::connect_url(&url)
            .await
            .unwrap()
    };
    let a = ConnectSession::auto(pool(url.clone()).await).await.unwrap();
    let b = ConnectSession::auto(pool(url).await).await.unwrap();
    the_ttl_bounds_staleness(a, b).await;
}

#[cfg(feature = "mysql")]
#[tokio::test]
async fn mysql_the_ttl_bounds_staleness() {
    let Some(pool) = db::mysql().await else {
        return;
    };
    let table = db::unique_table("cache_ttl");
    let a = ConnectSession::auto_table(pool.clone(), &table)
        .await
        .unwrap();
    let b = ConnectSession::discover_table(pool.clone(), &table)
        .await
        .unwrap();
    the_ttl_bounds_staleness(a, b).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE `{table}`")))
        .execute(&pool)
        .await
        .unwrap();
}
