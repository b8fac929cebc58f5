//! A PostgreSQL failover under a running store (issue 11, item 4), on the primary and
//! synchronous standby that `scripts/cluster/pg-pair.sh start DIR` starts (`PG_PAIR_DIR`,
//! `PG_PRIMARY_PORT`, `PG_STANDBY_PORT`). The store's pool reaches the primary through a TCP
//! proxy the test moves to the standby once it is promoted, as a DNS name or a virtual IP moves
//! in production (sqlx 0.9 takes one host per URL, so a multi-host URL with
//! `target_session_attrs` is not an option). The test changes the pair for good (the old
//! primary is gone): it is the only one on it.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::db;
use sequelstore::{ConnectSession, Error, ErrorClass, SessionData, Store};
use sqlx::PgPool;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, Notify, watch};

/// A TCP proxy on 127.0.0.1 whose target the test moves; moving it drops every connection
/// made to the old target.
struct Proxy {
    port: u16,
    target: Arc<AtomicU16>,
    moved: watch::Sender<u64>,
}

impl Proxy {
    async fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let target = Arc::new(AtomicU16::new(target));
        let (moved, _) = watch::channel(0u64);
        let (t, m) = (Arc::clone(&target), moved.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let to = t.load(Ordering::SeqCst);
                let mut moved = m.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(("127.0.0.1", to)).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = moved.changed() => {}
                    }
                });
            }
        });
        Proxy {
            port,
            target,
            moved,
        }
    }

    fn move_to(&self, target: u16) {
        self.target.store(target, Ordering::SeqCst);
        self.moved.send_modify(|n| *n += 1);
    }
}

fn pair_script(action: &str, dir: &str) -> String {
    let out = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/cluster/pg-pair.sh"
        ))
        .args([action, dir])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "pg-pair.sh {action} failed: {stderr}");
    stderr
}

fn port(var: &str) -> u16 {
    std::env::var(var)
        .unwrap_or_else(|_| panic!("{var} is not set"))
        .parse()
        .unwrap()
}

fn data(v: i64) -> SessionData {
    SessionData::from_iter([("v".to_string(), v.into())])
}

fn value(session: Option<sequelstore::Session>) -> Option<i64> {
    session.map(|s| s.data["v"].as_i64().unwrap())
}

/// What a session may hold now, given the calls acknowledged and those that failed (a failed
/// write may or may not have been committed). `None` is "no session".
#[derive(Debug, Default)]
struct Ledger {
    allowed: HashMap<String, Vec<Option<i64>>>,
}

impl Ledger {
    fn acked(&mut self, sid: &str, state: Option<i64>) {
        self.allowed.insert(sid.to_owned(), vec![state]);
    }

    fn maybe(&mut self, sid: &str, state: Option<i64>) {
        self.allowed
            .entry(sid.to_owned())
            .or_insert_with(|| vec![None])
            .push(state);
    }

    fn check(&self, sid: &str, seen: Option<i64>) {
        let allowed = &self.allowed[sid];
        assert!(
            allowed.contains(&seen),
            "session {sid} holds {seen:?}; only {allowed:?} were possible"
        );
    }
}

#[derive(Debug, Default)]
struct Failures {
    at: Vec<(Instant, ErrorClass)>,
    untyped: Vec<String>,
}

impl Failures {
    fn record(&mut self, err: &Error) {
        match err.class() {
            ErrorClass::Other => self.untyped.push(format!("{err:?}")),
            class => self.at.push((Instant::now(), class)),
        }
    }
}

/// One task's workload on sessions of its own: create, load, update, touch, destroy.
/// How far the workload has got: session cycles (create to destroy) that met no error, in
/// all and since the proxy moved; `progress` is told at each one.
#[derive(Debug, Default)]
struct Progress {
    clean: AtomicUsize,
    clean_after_move: AtomicUsize,
    moved: AtomicBool,
    progress: Notify,
}

impl Progress {
    /// Waits (60 s at most) until `count` says `enough`.
    async fn wait_for(&self, what: &str, count: impl Fn(&Progress) -> usize, enough: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let told = self.progress.notified();
            if count(self) >= enough {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                tokio::time::timeout(left, told).await.is_ok(),
                "{what}: {} of {enough} in 60 s",
                count(self)
            );
        }
    }
}

async fn work(
    store: Store<ConnectSession<PgPool>>,
    task: usize,
    stop: Arc<AtomicBool>,
    failures: Arc<Mutex<Failures>>,
    progress: Arc<Progress>,
) -> (Ledger, u64) {
    let mut ledger = Ledger::default();
    let mut calls = 0u64;
    let mut n = 0i64;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let sid = format!("t{task}-{n}");
        let after_move = progress.moved.load(Ordering::SeqCst);
        let mut clean = true;
        calls += 1;
        match store.create(&sid, &data(n), None).await {
            Ok(sequelstore::Created::Inserted) => ledger.acked(&sid, Some(n)),
            // A fresh id is taken only by this call's own first attempt, committed before its
            // connection broke: the store's retry found it.
            Ok(sequelstore::Created::AlreadyExists) => ledger.acked(&sid, Some(n)),
            Err(err) => {
                ledger.maybe(&sid, Some(n));
                failures.lock().await.record(&err);
                continue;
            }
        }
        for step in 0..4 {
            calls += 1;
            let result = match step {
                0 => store.get(&sid).await.map(|s| ledger.check(&sid, value(s))),
                1 => match store.update(&sid, &data(-n), None).await {
                    Ok(true) => {
                        ledger.acked(&sid, Some(-n));
                        Ok(())
                    }
                    Ok(false) => panic!("{sid}: a live session was not updated"),
                    Err(err) => {
                        ledger.maybe(&sid, Some(-n));
                        Err(err)
                    }
                },
                2 => store.touch(&sid, None).await.map(|_| ()),
                _ if n % 2 == 0 => match store.destroy(&sid).await {
                    Ok(_) => {
                        ledger.acked(&sid, None);
                        Ok(())
                    }
                    Err(err) => {
                        ledger.maybe(&sid, None);
                        Err(err)
                    }
                },
                _ => Ok(()),
            };
            if let Err(err) = result {
                clean = false;
                failures.lock().await.record(&err);
            }
        }
        if clean {
            progress.clean.fetch_add(1, Ordering::SeqCst);
            if after_move {
                progress.clean_after_move.fetch_add(1, Ordering::SeqCst);
            }
            progress.progress.notify_waiters();
        }
    }
    (ledger, calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failover_under_load_loses_no_acknowledged_write() {
    let Some(dir) = db::cluster_url("PG_PAIR_DIR", "pg-pair.sh") else {
        return;
    };
    let (primary, standby) = (port("PG_PRIMARY_PORT"), port("PG_STANDBY_PORT"));
    let proxy = Proxy::start(primary).await;
    let url = format!("postgres://postgres@127.0.0.1:{}/test", proxy.port);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&url)
        .await
        .expect("the pair's primary, through the proxy: is the pair started afresh?");
    let model = ConnectSession::options(pool.clone())
        .table(db::unique_table("failover"))
        .auto()
        .await
        .unwrap();
    let store = Store::with_model(model)
        .with_sweep_interval(None)
        .with_call_timeout(Some(Duration::from_secs(2)));

    // With the synchronous standby gone, every commit waits for it: a call must end after the
    // store's call timeout, with a typed error. PostgreSQL commits the write once a standby is
    // back (its wait was cancelled on the client's side only).
    pair_script("stop-standby", &dir);
    let started = Instant::now();
    let err = store.set("while-alone", &data(1), None).await.unwrap_err();
    let waited = started.elapsed();
    assert!(matches!(err, Error::TimedOut { .. }), "{err:?}");
    assert!(waited < Duration::from_secs(10), "{waited:?}");
    eprintln!("with the standby gone, a write ended after {waited:?}: {err}");
    pair_script("start-standby", &dir);
    let deadline = Instant::now() + Duration::from_secs(60);
    while store.get("while-alone").await.ok().flatten().is_none() {
        assert!(
            Instant::now() < deadline,
            "the timed-out write never landed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("the timed-out write was committed once the standby was back");

    // 16 tasks under load; the primary is killed and the standby promoted.
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Failures::default()));
    let progress = Arc::new(Progress::default());
    let tasks: Vec<_> = (0..16)
        .map(|task| {
            tokio::spawn(work(
                store.clone(),
                task,
                Arc::clone(&stop),
                Arc::clone(&failures),
                Arc::clone(&progress),
            ))
        })
        .collect();
    // The kill comes once the workload is in full swing: 300 session cycles done.
    progress
        .wait_for(
            "session cycles before the kill",
            |p| p.clean.load(Ordering::SeqCst),
            300,
        )
        .await;
    let killed = Instant::now();
    let dir2 = dir.clone();
    let promoted = tokio::task::spawn_blocking(move || pair_script("promote", &dir2))
        .await
        .unwrap();
    proxy.move_to(standby);
    progress.moved.store(true, Ordering::SeqCst);
    let moved = killed.elapsed();
    // Run on until the store, on the new primary, has served 300 session cycles begun after
    // the move without an error.
    progress
        .wait_for(
            "clean session cycles after the failover",
            |p| p.clean_after_move.load(Ordering::SeqCst),
            300,
        )
        .await;
    stop.store(true, Ordering::SeqCst);
    let mut ledger = Ledger::default();
    let mut calls = 0;
    for task in tasks {
        let (part, n) = task.await.unwrap();
        ledger.allowed.extend(part.allowed);
        calls += n;
    }
    let failures = failures.lock().await;
    assert!(
        failures.untyped.is_empty(),
        "untyped errors: {:?}",
        failures.untyped
    );
    let window = failures
        .at
        .iter()
        .map(|(t, _)| t.saturating_duration_since(killed))
        .max()
        .unwrap_or_default();
    let mut by_class: HashMap<String, usize> = HashMap::new();
    for (_, class) in &failures.at {
        *by_class.entry(format!("{class:?}")).or_default() += 1;
    }
    eprintln!(
        "{calls} calls; {} failed, all typed ({by_class:?}); the last {window:?} after the kill; \
         the proxy moved {moved:?} after the kill; {}",
        failures.at.len(),
        promoted.trim()
    );
    assert!(window < Duration::from_secs(30), "errors for {window:?}");

    // Every acknowledged write is on the new primary, and no destroyed session came back.
    for sid in ledger.allowed.keys() {
        ledger.check(sid, value(store.get(sid).await.unwrap()));
    }
    eprintln!(
        "{} sessions checked on the new primary",
        ledger.allowed.len()
    );
}
