//! Faults: a PostgreSQL server that the test starts itself (initdb and pg_ctl in a temporary
//! folder, on a free port) is stopped and started again under a store; SQLite files that are
//! locked by another writer or opened read-only; a database that is down at start-up.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use common::db;
use sequelstore::{Error, RusqliteConnection, SessionData, SessionModel, Store};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

fn data(n: i64) -> SessionData {
    SessionData::from_iter([("n".to_string(), n.into())])
}

/// A PostgreSQL server of the test's own, in a temporary folder, on a free port.
struct ThrowawayPg {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
}

impl ThrowawayPg {
    /// Makes and starts the server, or returns `None` (loudly; a failure in CI) when the
    /// PostgreSQL server programs are not installed.
    fn start(test: &str) -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| versions.flatten().map(|v| v.path().join("bin")).next())
            .filter(|bin| bin.join("initdb").exists());
        let Some(bin) = bin else {
            db::unreachable_server("initdb", "/usr/lib/postgresql/*/bin", &"not installed");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(db::unique_table(test));
        std::fs::create_dir_all(&dir).expect("a temporary folder");
        let pg = ThrowawayPg { dir, bin, port };
        if is_root() {
            // initdb refuses to run as root: hand the folder to the postgres user.
            run(Command::new("chown").arg("postgres:postgres").arg(&pg.dir));
        }
        run(pg
            .command("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(pg.data()));
        pg.ctl_start();
        Some(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn ctl_start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        run(self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-o", &options, "-l"])
            .arg(self.dir.join("log"))
            .args(["-w", "start"]));
    }

    fn ctl_stop(&self) {
        run(self.command("pg_ctl").arg("-D").arg(self.data()).args([
            "-m",
            "immediate",
            "-w",
            "stop",
        ]));
    }
}

impl Drop for ThrowawayPg {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("the command starts");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < within,
            "{what} did not happen within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_under_a_store() {
    let Some(pg) = ThrowawayPg::start("pg_restart") else {
        return;
    };
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(1))
        .connect(&pg.url())
        .await
        .expect("the throwaway server answers");
    let store = Store::auto(pool)
        .await
        .unwrap()
        .with_sweep_interval(Some(Duration::from_millis(300)));
    for i in 0..20 {
        store.set(&format!("s{i}"), &data(i), None).await.unwrap();
    }

    pg.ctl_stop();
    let mut connection_errors = 0;
    for i in 0..3 {
        let results = [
            store
                .set(&format!("down{i}"), &data(i), None)
                .await
                .map(|_| ()),
            store.get("s1").await.map(|_| ()),
            store.touch("s2", None).await.map(|_| ()),
        ];
        for result in results {
            let err = result.expect_err("the server is down");
            assert!(
                matches!(err, Error::Sqlx(_)),
                "a typed driver error: {err:?}"
            );
            connection_errors += usize::from(err.is_connection());
        }
    }
    assert!(
        connection_errors > 0,
        "some errors say the connection is the problem"
    );

    pg.ctl_start();
    // The same store, not rebuilt, serves again once the server is back.
    eventually("serving again", Duration::from_secs(20), || async {
        store.get("s1").await.is_ok()
    })
    .await;
    assert_eq!(store.get("s5").await.unwrap().unwrap().data, data(5));
    store.set("after", &data(1), None).await.unwrap();
    assert_eq!(store.length().await.unwrap(), 21);

    // The sweeper lived through the outage and still removes expired rows.
    let past = Utc::now() - TimeDelta::minutes(1);
    store.set("old", &data(0), Some(past)).await.unwrap();
    sweeper_removes(&store, "old", past).await;
}

/// Waits (10 s at most) until the store's sweeper has deleted `sid`, which expired at
/// `expired`: the row is gone, not only filtered out.
async fn sweeper_removes<M: SessionModel>(store: &Store<M>, sid: &str, expired: DateTime<Utc>) {
    eventually(
        "the sweeper removing a row",
        Duration::from_secs(10),
        || async {
            let long_before = expired - TimeDelta::hours(1);
            store
                .model()
                .load(sid, long_before)
                .await
                .unwrap()
                .is_none()
        },
    )
    .await;
}

async fn sqlite_pool(path: &Path, read_only: bool) -> sqlx::SqlitePool {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(!read_only)
        .read_only(read_only)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_millis(100));
    SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .unwrap()
}

/// Holds an exclusive write lock on the file from a second connection until dropped.
fn lock_file(path: &Path) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let path = path.to_owned();
    let handle = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
        locked_tx.send(()).unwrap();
        let _ = release_rx.recv();
        conn.execute_batch("COMMIT").unwrap();
    });
    locked_rx.recv().unwrap();
    (release_tx, handle)
}

async fn locked_file_is_a_typed_error_and_passes<M: SessionModel>(store: Store<M>, path: &Path) {
    store.set("before", &data(1), None).await.unwrap();
    let past = Utc::now() - TimeDelta::minutes(1);
    store.set("old", &data(0), Some(past)).await.unwrap();
    let store = store.with_sweep_interval(Some(Duration::from_millis(100)));

    let (release, holder) = lock_file(path);
    let err = store.set("during", &data(2), None).await.unwrap_err();
    assert!(err.to_string().contains("locked"), "{err}");
    assert!(
        matches!(err, Error::Sqlx(_) | Error::Rusqlite(_)),
        "{err:?}"
    );
    // Readers still read under WAL.
    assert_eq!(store.get("before").await.unwrap().unwrap().data, data(1));
    tokio::time::sleep(Duration::from_millis(400)).await; // sweeps fail meanwhile
    release.send(()).unwrap();
    holder.join().unwrap();

    store.set("after", &data(3), None).await.unwrap();
    sweeper_removes(&store, "old", past).await;
    assert_eq!(
        store.get("during").await.unwrap(),
        None,
        "the failed write left nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlx_sqlite_locked_file() {
    let path = db::temp_sqlite_path("sqlx_locked");
    let store = Store::auto(sqlite_pool(&path, false).await).await.unwrap();
    locked_file_is_a_typed_error_and_passes(store, &path).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rusqlite_locked_file() {
    let path = db::temp_sqlite_path("rusqlite_locked");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.busy_timeout(Duration::from_millis(100)).unwrap();
    let store = Store::auto(RusqliteConnection::new(conn)).await.unwrap();
    locked_file_is_a_typed_error_and_passes(store, &path).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_sqlite_serves_reads_and_refuses_writes() {
    let path = db::temp_sqlite_path("read_only");
    let writer = Store::auto(sqlite_pool(&path, false).await).await.unwrap();
    writer.set("kept", &data(1), None).await.unwrap();

    let reader = Store::discover(sqlite_pool(&path, true).await)
        .await
        .unwrap();
    assert_eq!(reader.get("kept").await.unwrap().unwrap().data, data(1));
    let err = reader.set("new", &data(2), None).await.unwrap_err();
    assert!(err.to_string().contains("readonly"), "{err}");
    let err = reader.destroy("kept").await.unwrap_err();
    assert!(matches!(err, Error::Sqlx(_)), "{err:?}");
    assert_eq!(reader.length().await.unwrap(), 1);

    let conn =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let reader = Store::discover(RusqliteConnection::new(conn))
        .await
        .unwrap();
    assert_eq!(reader.get("kept").await.unwrap().unwrap().data, data(1));
    let err = reader.set("new", &data(2), None).await.unwrap_err();
    assert!(
        matches!(err, Error::Rusqlite(_)) && err.to_string().contains("readonly"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_fallback_when_the_database_is_down_at_start() {
    // Nothing listens on port 1.
    let pool = PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(2))
        .connect_lazy("postgres://postgres@127.0.0.1:1/test")
        .unwrap();
    let store = Store::auto_or_memory(pool).await.unwrap();
    assert!(
        store.model().is_memory(),
        "the store says it keeps sessions in memory"
    );
    store.set("s", &data(1), None).await.unwrap();
    assert_eq!(store.get("s").await.unwrap().unwrap().data, data(1));

    // With the database up, it is used; a schema problem is not hidden behind the fallback.
    let Some(pg) = ThrowawayPg::start("fallback") else {
        return;
    };
    let pool = PgPoolOptions::new().connect(&pg.url()).await.unwrap();
    let store = Store::auto_or_memory(pool.clone()).await.unwrap();
    assert!(!store.model().is_memory());
    sqlx::raw_sql("DROP TABLE \"ConnectSession\"; CREATE TABLE \"ConnectSession\" (sid TEXT PRIMARY KEY, data TEXT)")
        .execute(&pool)
        .await
        .unwrap();
    let err = Store::auto_or_memory(pool).await.unwrap_err();
    assert!(matches!(err, Error::IncompatibleSchema { .. }), "{err:?}");
}

/// Issue 12 item 10: a store that started while its database was down goes back to it. New
/// sessions are kept in memory until the database answers, then go to the database; a session
/// made in memory meanwhile is still served and can be signed out; a destroy reaches both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_fallback_moves_new_sessions_to_the_database_once_it_answers() {
    let Some(pg) = ThrowawayPg::start("fallback_back") else {
        return;
    };
    pg.ctl_stop();
    let pool = PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(2))
        .connect_lazy(&pg.url())
        .unwrap();
    let store = Store::auto_or_memory(pool.clone()).await.unwrap();
    assert!(store.model().is_memory());
    store.set("during", &data(1), None).await.unwrap();

    pg.ctl_start();
    eventually(
        "the store going back to the database",
        Duration::from_secs(90),
        || async { !store.model().is_memory() },
    )
    .await;
    store.set("after", &data(2), None).await.unwrap();
    let (in_table,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM \"ConnectSession\" WHERE sid = 'after'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(in_table, 1, "a new session is stored in the database");
    assert_eq!(store.get("during").await.unwrap().unwrap().data, data(1));
    assert_eq!(store.get("after").await.unwrap().unwrap().data, data(2));
    assert_eq!(store.length().await.unwrap(), 2);
    // Writes of the memory session stay in memory; an id taken there cannot be created anew.
    assert!(store.update("during", &data(3), None).await.unwrap());
    assert_eq!(store.get("during").await.unwrap().unwrap().data, data(3));
    assert_eq!(
        store.create("during", &data(4), None).await.unwrap(),
        sequelstore::Created::AlreadyExists
    );
    assert!(store.destroy("during").await.unwrap());
    assert!(store.get("during").await.unwrap().is_none());
    assert!(store.destroy("after").await.unwrap());
    assert_eq!(store.length().await.unwrap(), 0);
}
