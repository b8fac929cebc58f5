//! The reliability suite: races, bad rows and bad input, and several app instances sweeping
//! one table while a workload runs. Written once, instantiated per SQL backend with
//! `reliability_tests!`.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashSet;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use sequelstore::{
    Backend, ConnectSession, Error, SessionData, SessionModel, SessionRow, Store, Sweep,
};

use super::RawSql;

/// Several connections (pools) to one database, as several app instances would have, and a
/// table for the test.
pub struct RelCtx<B> {
    pub backends: Vec<B>,
    pub table: String,
    pub raw: RawSql,
    pub quote: fn(&str) -> String,
}

impl<B: Backend + Clone> RelCtx<B> {
    /// Instances on `backends`, a fresh table name for `test`, raw SQL through the first.
    pub fn new(
        backends: Vec<B>,
        test: &str,
        raw: impl FnOnce(&B) -> RawSql,
        quote: fn(&str) -> String,
    ) -> Self {
        RelCtx {
            raw: raw(&backends[0]),
            backends,
            table: super::db::unique_table(test),
            quote,
        }
    }

    pub async fn store(&self, i: usize) -> Store<ConnectSession<B>> {
        Store::auto_table(self.backends[i % self.backends.len()].clone(), &self.table)
            .await
            .unwrap()
            .with_sweep_interval(None)
    }

    pub async fn finish(self) {
        (self.raw)(format!("DROP TABLE {}", (self.quote)(&self.table))).await;
    }
}

/// Instantiates the suite: `$make` takes the test's name and returns `Option<RelCtx<B>>`.
#[macro_export]
macro_rules! reliability_tests {
    ($make:path) => {
        $crate::reliability_tests!(@each $make;
            touch_and_update_racing_destroy_never_resurrect,
            touch_racing_updates_loses_no_data,
            corrupt_rows_are_typed_errors_and_spare_the_others,
            ids_and_payloads_are_checked_before_any_write,
            four_instances_sweep_together_under_load,
            a_cancelled_sweep_leaves_no_lock_behind
        );
    };
    (@each $make:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                if let Some(ctx) = $make(stringify!($name)).await {
                    common::reliability::$name(&ctx).await;
                    ctx.finish().await;
                }
            }
        )*
    };
}

fn data(n: i64) -> SessionData {
    SessionData::from_iter([("n".to_string(), n.into())])
}

pub async fn touch_and_update_racing_destroy_never_resurrect<B: Backend + Clone>(ctx: &RelCtx<B>) {
    let store = ctx.store(0).await;
    for round in 0..20 {
        let sid = format!("race-{round}");
        store.set(&sid, &data(0), None).await.unwrap();
        let mut tasks = Vec::new();
        for k in 0..8 {
            let (store, sid) = (store.clone(), sid.clone());
            tasks.push(tokio::spawn(async move {
                match k % 3 {
                    0 => store.touch(&sid, None).await.map(|_| ()),
                    1 => store.update(&sid, &data(k), None).await.map(|_| ()),
                    _ => store.destroy(&sid).await.map(|_| ()),
                }
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        // A destroy ran; whatever ran after it must not have brought the session back.
        assert!(store.get(&sid).await.unwrap().is_none(), "round {round}");
        let late = store.update(&sid, &data(99), None).await.unwrap();
        assert!(!late && !store.touch(&sid, None).await.unwrap());
        assert!(store.get(&sid).await.unwrap().is_none(), "round {round}");
    }
}

pub async fn touch_racing_updates_loses_no_data<B: Backend + Clone>(ctx: &RelCtx<B>) {
    let store = ctx.store(0).await;
    store.set("busy", &data(0), None).await.unwrap();
    let mut tasks = Vec::new();
    for k in 1..=40 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            if k % 2 == 0 {
                assert!(store.update("busy", &data(k), None).await.unwrap());
            } else {
                assert!(store.touch("busy", None).await.unwrap());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let got = store.get("busy").await.unwrap().expect("still there");
    let n = got.data["n"].as_i64().unwrap();
    assert!(
        n > 0 && n % 2 == 0,
        "the data is one of the updates, not lost to a touch: {n}"
    );
    assert!(got.expires.unwrap() > Utc::now() + TimeDelta::days(13));
}

pub async fn corrupt_rows_are_typed_errors_and_spare_the_others<B: Backend + Clone>(
    ctx: &RelCtx<B>,
) {
    let store = ctx.store(0).await;
    store.set("good", &data(1), None).await.unwrap();
    let model = store.model();
    for (sid, text) in [
        ("notjson", "this is not json"),
        ("array", "[1,2,3]"),
        ("empty", ""),
    ] {
        model
            .save(
                &SessionRow::new(sid, text, Some(Utc::now() + TimeDelta::hours(1))),
                Utc::now(),
            )
            .await
            .unwrap();
        match store.get(sid).await {
            Err(Error::Decode {
                sid: got, column, ..
            }) => {
                assert_eq!((got.as_str(), column), (sid, "data"));
            }
            other => panic!("{sid}: expected a decode error, got {other:?}"),
        }
    }
    // A NULL in data, written by another client.
    (ctx.raw)(format!(
        "UPDATE {} SET {} = NULL WHERE {} = 'empty'",
        (ctx.quote)(&ctx.table),
        (ctx.quote)("data"),
        (ctx.quote)("sid")
    ))
    .await;
    assert!(matches!(
        store.get("empty").await,
        Err(Error::Decode { column: "data", .. })
    ));
    // The others are untouched and served; the bad ones can be destroyed.
    assert_eq!(store.get("good").await.unwrap().unwrap().data, data(1));
    assert_eq!(store.length().await.unwrap(), 4);
    assert!(matches!(store.all().await, Err(Error::Decode { .. })));
    for sid in ["notjson", "array", "empty"] {
        assert!(store.destroy(sid).await.unwrap());
    }
    assert_eq!(store.all().await.unwrap().len(), 1);
}

pub async fn ids_and_payloads_are_checked_before_any_write<B: Backend + Clone>(ctx: &RelCtx<B>) {
    let store = ctx.store(0).await.with_max_data_len(64 * 1024);
    store.set("keep", &data(7), None).await.unwrap();
    let longest = "ż".repeat(255);
    store.set(&longest, &data(1), None).await.unwrap();
    assert_eq!(store.get(&longest).await.unwrap().unwrap().data, data(1));
    for bad in [String::new(), "ż".repeat(256)] {
        for err in [
            store.get(&bad).await.map(|_| ()).unwrap_err(),
            store.set(&bad, &data(1), None).await.unwrap_err(),
            store.touch(&bad, None).await.map(|_| ()).unwrap_err(),
            store.destroy(&bad).await.map(|_| ()).unwrap_err(),
        ] {
            assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
        }
    }
    let big = SessionData::from_iter([("blob".to_string(), "x".repeat(70 * 1024).into())]);
    let err = store.set("keep", &big, None).await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidInput(ref m) if m.contains("keep")),
        "{err:?}"
    );
    assert_eq!(
        store.get("keep").await.unwrap().unwrap().data,
        data(7),
        "nothing else lost"
    );
    assert_eq!(store.length().await.unwrap(), 2);
}

/// Four app instances on one table: all sweep at once, in small batches, while a workload
/// creates, updates, touches and destroys sessions. No errors, no deadlock, every expired
/// row goes and no live row does.
pub async fn four_instances_sweep_together_under_load<B: Backend + Clone>(ctx: &RelCtx<B>) {
    let mut stores = Vec::new();
    for i in 0..4 {
        stores.push(ctx.store(i).await.with_sweep_batch(25));
    }
    let past = Utc::now() - TimeDelta::hours(1);
    let expired = 1200;
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = stores[w].clone();
            tokio::spawn(async move {
                for i in (w..expired).step_by(4) {
                    store
                        .set(&format!("old-{i}"), &data(0), Some(past))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }

    let load = {
        let stores = stores.clone();
        tokio::spawn(async move {
            let mut live = HashSet::new();
            for i in 0..300 {
                let store = &stores[i % 4];
                let sid = format!("live-{i}");
                store.set(&sid, &data(i as i64), None).await.unwrap();
                live.insert(sid.clone());
                if i % 3 == 0 {
                    assert!(store.touch(&sid, None).await.unwrap());
                }
                if i % 5 == 0 {
                    assert!(store.update(&sid, &data(-1), None).await.unwrap());
                }
                if i % 7 == 0 {
                    assert!(store.destroy(&sid).await.unwrap());
                    live.remove(&sid);
                }
            }
            live
        })
    };
    let sweepers: Vec<_> = stores
        .iter()
        .cloned()
        .map(|store| {
            tokio::spawn(async move {
                let mut removed = 0;
                for _ in 0..30 {
                    removed += store.sweep().await.unwrap().removed;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                removed
            })
        })
        .collect();
    let mut removed = 0;
    for s in sweepers {
        removed += s.await.unwrap();
    }
    let live = load.await.unwrap();
    removed += stores[0].sweep().await.unwrap().removed;
    assert_eq!(removed, expired as u64, "every expired row removed once");
    assert_eq!(stores[1].length().await.unwrap(), live.len() as u64);
    for sid in &live {
        assert!(
            stores[2].get(sid).await.unwrap().is_some(),
            "{sid} is live and must stay"
        );
    }
    let left = stores[3]
        .model()
        .count(past - TimeDelta::hours(1))
        .await
        .unwrap();
    assert_eq!(left, live.len() as u64, "no expired row left behind");
}

/// Issue 11 item 1: a sweep cancelled anywhere (a timeout around `sweep`, a shutdown) must not
/// leave the sweep lock held, where it made every instance skip every sweep. 100 sweeps of one
/// instance are cancelled at points 0 to 10 ms into their run; then another instance's sweep
/// must get the lock and remove what is expired.
pub async fn a_cancelled_sweep_leaves_no_lock_behind<B: Backend + Clone>(ctx: &RelCtx<B>) {
    let a = ctx.store(0).await.with_sweep_batch(10);
    let b = ctx.store(1).await;
    let past = Utc::now() - TimeDelta::hours(1);
    let mut n = 0;
    let mut cancelled = 0;
    for round in 0..100u64 {
        for _ in 0..20 {
            a.set(&format!("old-{n}"), &data(0), Some(past))
                .await
                .unwrap();
            n += 1;
        }
        let run = tokio::time::timeout(Duration::from_micros(200 * (round % 50)), a.sweep());
        cancelled += usize::from(run.await.is_err());
    }
    // SQLite's sweeps take no lock, and rusqlite's finish within one poll.
    if ctx.backends[0].dialect().name() != "SQLite" {
        assert!(
            cancelled > 0,
            "no sweep was cancelled: the test tests nothing"
        );
    }
    for i in 0..30 {
        b.set(&format!("late-{i}"), &data(0), Some(past))
            .await
            .unwrap();
    }
    // A cancelled sweep's transaction is rolled back when its connection goes back to the
    // pool, in the background: wait for that (30 s at most), not for a fixed time.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let done = loop {
        let done = b.sweep().await.unwrap();
        if !done.lock_busy {
            break done;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "every sweep of another instance found the lock held: a cancelled sweep left it behind"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(done.removed >= 30, "{done:?}");
    assert_eq!(
        b.sweep().await.unwrap(),
        Sweep::finished(0),
        "nothing expired is left"
    );
    assert_eq!(a.sweep().await.unwrap(), Sweep::finished(0));
}
