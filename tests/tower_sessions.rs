//! The tower-sessions adapter, through axum and tower-sessions' own middleware, in process
//! (`Router` + `oneshot`), on sqlx SQLite always and on PostgreSQL and MariaDB/MySQL when their
//! features are on and the servers answer.
//!
//! Each case is written once, as a generic async fn over the store's backend, and
//! `backend_suite!` instantiates every case per backend.

use std::fmt::Display;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{Request, Response, StatusCode, header};
use axum::routing::get;
use chrono::Utc;
use sequelstore::{Backend, ConnectSession, SessionData, SessionModel, Store};
use tokio::sync::Notify;
use tower::ServiceExt;
use tower_sessions::session::{Id, Record};
use tower_sessions::{ExpiredDeletion, Expiry, Session, SessionManagerLayer, SessionStore};

// Only the database helpers of the shared test module: nothing else of it is needed here.
mod common {
    #[path = "db.rs"]
    pub mod db;
}

use common::db;

/// A `ConnectSession` store over backend `B`.
type SqlStore<B> = Store<ConnectSession<B>>;

/// A model over a table of a [`Raw`] backend: the default model, or it behind a cache.
trait OnTable: SessionModel {
    type Raw: Raw;
    fn table(&self) -> &str;
    fn backend(&self) -> &Self::Raw;
}

impl<B: Raw> OnTable for ConnectSession<B> {
    type Raw = B;
    fn table(&self) -> &str {
        ConnectSession::table(self)
    }
    fn backend(&self) -> &B {
        ConnectSession::backend(self)
    }
}

#[cfg(feature = "cache")]
impl<B: Raw> OnTable for sequelstore::Cached<ConnectSession<B>> {
    type Raw = B;
    fn table(&self) -> &str {
        self.inner().table()
    }
    fn backend(&self) -> &B {
        self.inner().backend()
    }
}

// ---------------------------------------------------------------------------------------------
// Backends

/// What the cases need beyond the store: the raw row count of the table (expired rows included)
/// and dropping the table at the end.
trait Raw: Backend + Sized {
    async fn rows(&self, table: &str) -> i64;
    async fn drop_table(&self, table: &str);
}

macro_rules! raw_sqlx {
    ($pool:ty) => {
        impl Raw for $pool {
            async fn rows(&self, table: &str) -> i64 {
                // Test tables are lowercase letters, digits and underscores: no quoting needed.
                let sql = format!("SELECT COUNT(*) FROM {table}");
                sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
                    .fetch_one(self)
                    .await
                    .expect("the table can be counted")
            }

            async fn drop_table(&self, table: &str) {
                let sql = format!("DROP TABLE IF EXISTS {table}");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(self)
                    .await
                    .expect("the table can be dropped");
            }
        }
    };
}

raw_sqlx!(sqlx::SqlitePool);
#[cfg(feature = "postgres")]
raw_sqlx!(sqlx::PgPool);
#[cfg(feature = "mysql")]
raw_sqlx!(sqlx::MySqlPool);

/// A store over a fresh table, with the background sweeper off so that expired rows stay until
/// a case removes them.
async fn store_over<B: Raw>(backend: B, test: &str) -> SqlStore<B> {
    let table = db::unique_table(test);
    Store::auto_table(backend, &table)
        .await
        .expect("the sessions table is created")
        .with_sweep_interval(None)
}

async fn sqlite(test: &str) -> Option<SqlStore<sqlx::SqlitePool>> {
    Some(store_over(db::sqlite(test).await, test).await)
}

#[cfg(feature = "postgres")]
async fn postgres(test: &str) -> Option<SqlStore<sqlx::PgPool>> {
    Some(store_over(db::postgres().await?, test).await)
}

#[cfg(feature = "mysql")]
async fn mysql(test: &str) -> Option<SqlStore<sqlx::MySqlPool>> {
    Some(store_over(db::mysql().await?, test).await)
}

/// The same store with a cache in front of its model: of this process's own on SQLite and
/// MariaDB, kept coherent by `LISTEN`/`NOTIFY` on PostgreSQL (waited for until it serves).
#[cfg(feature = "cache")]
mod cached {
    use super::*;
    use sequelstore::{CacheConfig, Cached};

    type CachedStore<B> = Store<Cached<ConnectSession<B>>>;

    fn config() -> CacheConfig {
        CacheConfig::new().with_ttl(Duration::from_secs(3600))
    }

    async fn local<B: Raw>(backend: B, test: &str) -> CachedStore<B> {
        let table = db::unique_table(test);
        let model = ConnectSession::auto_table(backend, &table)
            .await
            .expect("the sessions table is created");
        Store::with_model(Cached::new(model, config())).with_sweep_interval(None)
    }

    pub(super) async fn sqlite(test: &str) -> Option<CachedStore<sqlx::SqlitePool>> {
        Some(local(db::sqlite(test).await, test).await)
    }

    #[cfg(feature = "mysql")]
    pub(super) async fn mysql(test: &str) -> Option<CachedStore<sqlx::MySqlPool>> {
        Some(local(db::mysql().await?, test).await)
    }

    #[cfg(feature = "postgres")]
    pub(super) async fn postgres(test: &str) -> Option<CachedStore<sqlx::PgPool>> {
        let pool = db::postgres().await?;
        let table = db::unique_table(test);
        let model = ConnectSession::auto_table(pool.clone(), &table)
            .await
            .expect("the sessions table is created");
        let channel = sequelstore::PgNotify::new(&pool, &table);
        let model = Cached::with_invalidation(model, config(), channel);
        tokio::time::timeout(Duration::from_secs(60), model.serving())
            .await
            .expect("the cache's channel is heard within a minute");
        Some(Store::with_model(model).with_sweep_interval(None))
    }
}

/// One `#[tokio::test]` per case for the backend made by `$make`.
macro_rules! backend_suite {
    ($backend:ident, $make:path) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::OnTable;
            backend_suite!(@cases $make:
                session_survives_across_requests,
                first_save_of_a_new_session_keeps_later_changes,
                expired_session_cookie_starts_a_fresh_session,
                sign_out_sticks_against_a_slower_request,
                cycle_id_moves_the_data_and_retires_the_old_id,
                sweeper_removes_expired_rows,
                expired_deletion_removes_expired_rows,
                tampered_or_unknown_cookie_is_a_fresh_session,
                create_never_overwrites_and_save_never_inserts,
                sliding_expiry_slides_on_load_without_a_write_back,
                sliding_expiry_keeps_the_frameworks_inactivity_timeout,
            );
        }
    };
    (@cases $make:path: $($case:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() {
            if let Some(store) = $make(stringify!($case)).await {
                let table = store.model().table().to_owned();
                let backend = store.model().backend().clone();
                super::cases::$case(store).await;
                super::Raw::drop_table(&backend, &table).await;
            }
        }
    )*};
}

backend_suite!(sqlite, super::sqlite);
#[cfg(feature = "postgres")]
backend_suite!(postgres, super::postgres);
#[cfg(feature = "mysql")]
backend_suite!(mysql, super::mysql);
#[cfg(feature = "cache")]
backend_suite!(cached_sqlite, super::cached::sqlite);
#[cfg(all(feature = "cache", feature = "postgres"))]
backend_suite!(cached_postgres, super::cached::postgres);
#[cfg(all(feature = "cache", feature = "mysql"))]
backend_suite!(cached_mysql, super::cached::mysql);

// ---------------------------------------------------------------------------------------------
// The application under test

/// Lets a case hold a request between loading its session and finishing.
#[derive(Clone, Default)]
struct Gate {
    loaded: Arc<Notify>,
    go: Arc<Notify>,
}

type HandlerResult = Result<String, (StatusCode, String)>;

fn fail(err: impl Display) -> (StatusCode, String) {
    (StatusCode::INTERNAL_SERVER_ERROR, err.to_string())
}

async fn login(session: Session, Path(name): Path<String>) -> HandlerResult {
    session.insert("user", &name).await.map_err(fail)?;
    Ok(format!("signed in as {name}"))
}

async fn whoami(session: Session) -> HandlerResult {
    let user: Option<String> = session.get("user").await.map_err(fail)?;
    Ok(format!("user:{}", user.as_deref().unwrap_or("-")))
}

async fn incr(session: Session) -> HandlerResult {
    let n = session.get::<u64>("n").await.map_err(fail)?.unwrap_or(0) + 1;
    session.insert("n", n).await.map_err(fail)?;
    Ok(n.to_string())
}

async fn logout(session: Session) -> HandlerResult {
    session.flush().await.map_err(fail)?;
    Ok("signed out".into())
}

async fn cycle(session: Session) -> HandlerResult {
    session.cycle_id().await.map_err(fail)?;
    Ok("cycled".into())
}

/// Reads the session, waits for the case to let it go, then changes it: the slow request.
async fn slow_incr(State(gate): State<Gate>, session: Session) -> HandlerResult {
    let n = session.get::<u64>("n").await.map_err(fail)?.unwrap_or(0) + 1;
    gate.loaded.notify_one();
    gate.go.notified().await;
    session.insert("n", n).await.map_err(fail)?;
    Ok(n.to_string())
}

/// Saves a new session in the middle of the request, then changes it again.
async fn save_twice(session: Session) -> HandlerResult {
    session.insert("a", 1).await.map_err(fail)?;
    session.save().await.map_err(fail)?;
    session.insert("b", 2).await.map_err(fail)?;
    Ok("saved".into())
}

async fn value(session: Session, Path(key): Path<String>) -> HandlerResult {
    let value = session.get_value(&key).await.map_err(fail)?;
    Ok(format!(
        "{key}={}",
        value.map_or("none".into(), |v| v.to_string())
    ))
}

fn app<S: SessionStore + Clone>(store: S, expiry: Expiry, gate: Gate) -> Router {
    let sessions = SessionManagerLayer::new(store)
        .with_secure(false)
        .with_expiry(expiry);
    Router::new()
        .route("/login/{name}", get(login))
        .route("/whoami", get(whoami))
        .route("/incr", get(incr))
        .route("/logout", get(logout))
        .route("/cycle", get(cycle))
        .route("/slow_incr", get(slow_incr))
        .route("/save_twice", get(save_twice))
        .route("/value/{key}", get(value))
        .with_state(gate)
        .layer(sessions)
}

fn hour() -> Expiry {
    Expiry::OnInactivity(time::Duration::hours(1))
}

/// What came back from one request.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    /// The `id=<value>` pair of a session cookie set by the response, if one was set (and not
    /// removed).
    cookie: Option<String>,
    /// Whether the response removed the session cookie.
    removed: bool,
    body: String,
}

async fn reply(res: Response<Body>) -> Reply {
    let status = res.status();
    let mut cookie = None;
    let mut removed = false;
    for value in res.headers().get_all(header::SET_COOKIE) {
        let text = value.to_str().expect("Set-Cookie is ASCII");
        let Some(pair) = text.split(';').next().filter(|p| p.starts_with("id=")) else {
            continue;
        };
        if text.contains("Max-Age=0") {
            removed = true;
        } else {
            cookie = Some(pair.to_owned());
        }
    }
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .expect("the body is read");
    Reply {
        status,
        cookie,
        removed,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn request(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut req = Request::get(path);
    if let Some(cookie) = cookie {
        req = req.header(header::COOKIE, cookie);
    }
    req.body(Body::empty()).expect("a valid request")
}

async fn send(app: &Router, path: &str, cookie: Option<&str>) -> Reply {
    let res = app
        .clone()
        .oneshot(request(path, cookie))
        .await
        .expect("the router is infallible");
    reply(res).await
}

/// Sends a request that must succeed and returns its reply.
async fn ok(app: &Router, path: &str, cookie: Option<&str>) -> Reply {
    let r = send(app, path, cookie).await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
    r
}

/// Signs in as `name` and returns the session cookie pair.
async fn sign_in(app: &Router, name: &str) -> String {
    ok(app, &format!("/login/{name}"), None)
        .await
        .cookie
        .expect("signing in sets a session cookie")
}

/// The session id in an `id=<value>` pair.
fn sid(cookie: &str) -> &str {
    cookie.strip_prefix("id=").expect("an id= cookie")
}

fn data(value: serde_json::Value) -> SessionData {
    match value {
        serde_json::Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The cases, written once

mod cases {
    use super::*;

    pub(super) async fn session_survives_across_requests<M: OnTable>(store: Store<M>) {
        let table = store.model().table().to_owned();
        let app = app(store.clone(), hour(), Gate::default());

        let before = Utc::now();
        let c1 = sign_in(&app, "alice").await;
        assert_eq!(ok(&app, "/whoami", Some(&c1)).await.body, "user:alice");

        // Stored as a JSON object, with the cookie's expiry to the millisecond.
        let stored = store
            .get(sid(&c1))
            .await
            .expect("get")
            .expect("the session is stored");
        assert_eq!(stored.data, data(serde_json::json!({ "user": "alice" })));
        let expires = stored.expires.expect("an expiry is stored");
        assert!(
            expires >= before + chrono::Duration::minutes(59),
            "{expires}"
        );
        assert!(
            expires <= Utc::now() + chrono::Duration::minutes(61),
            "{expires}"
        );
        assert_eq!(expires.timestamp_subsec_nanos() % 1_000_000, 0);

        // Changes are saved under the same id.
        let r = ok(&app, "/incr", Some(&c1)).await;
        assert_eq!(r.body, "1");
        assert_eq!(r.cookie.as_deref(), Some(c1.as_str()));
        assert_eq!(ok(&app, "/incr", Some(&c1)).await.body, "2");
        assert_eq!(ok(&app, "/whoami", Some(&c1)).await.body, "user:alice");

        // Another client is someone else.
        let other = ok(&app, "/whoami", None).await;
        assert_eq!(other.body, "user:-");
        assert_eq!(other.cookie, None, "an untouched session is not stored");

        assert_eq!(store.length().await.expect("length"), 1);
        assert_eq!(store.model().backend().rows(&table).await, 1);
    }

    pub(super) async fn first_save_of_a_new_session_keeps_later_changes<M: OnTable>(
        store: Store<M>,
    ) {
        let app = app(store.clone(), hour(), Gate::default());
        // A new session saved by the handler (create), then changed again (save).
        let c = ok(&app, "/save_twice", None)
            .await
            .cookie
            .expect("a session cookie");
        assert_eq!(ok(&app, "/value/a", Some(&c)).await.body, "a=1");
        assert_eq!(ok(&app, "/value/b", Some(&c)).await.body, "b=2");
        let stored = store.get(sid(&c)).await.expect("get").expect("stored");
        assert_eq!(stored.data, data(serde_json::json!({ "a": 1, "b": 2 })));
    }

    pub(super) async fn expired_session_cookie_starts_a_fresh_session<M: OnTable>(store: Store<M>) {
        let table = store.model().table().to_owned();
        let short = Expiry::OnInactivity(time::Duration::seconds(3));
        let app = app(store.clone(), short, Gate::default());

        let c1 = sign_in(&app, "alice").await;
        let expires = store
            .get(sid(&c1))
            .await
            .expect("get")
            .expect("live right after signing in")
            .expires
            .expect("an expiry");
        let wait = (expires - Utc::now() + chrono::Duration::milliseconds(300))
            .to_std()
            .unwrap_or_default();
        tokio::time::sleep(wait).await;

        // The row is still there (no sweep ran) but is never loaded.
        assert_eq!(store.model().backend().rows(&table).await, 1);
        let id = Id::from_str(sid(&c1)).expect("a tower-sessions id");
        assert_eq!(SessionStore::load(&store, &id).await.expect("load"), None);

        let r = ok(&app, "/whoami", Some(&c1)).await;
        assert_eq!(r.body, "user:-");
        let r = ok(&app, "/incr", Some(&c1)).await;
        assert_eq!(r.body, "1", "the old data is not carried over");
        let c2 = r.cookie.expect("the fresh session gets a cookie");
        assert_ne!(c2, c1, "the fresh session has a new id");
        assert_eq!(store.length().await.expect("length"), 1);
        assert_eq!(store.model().backend().rows(&table).await, 2);
    }

    pub(super) async fn sign_out_sticks_against_a_slower_request<M: OnTable>(store: Store<M>) {
        let table = store.model().table().to_owned();
        let gate = Gate::default();
        let app = app(store.clone(), hour(), gate.clone());
        let c1 = sign_in(&app, "alice").await;
        assert_eq!(ok(&app, "/incr", Some(&c1)).await.body, "1");

        // Request A loads the session and is held...
        let slow = tokio::spawn({
            let app = app.clone();
            let c1 = c1.clone();
            async move { send(&app, "/slow_incr", Some(&c1)).await }
        });
        tokio::time::timeout(Duration::from_secs(20), gate.loaded.notified())
            .await
            .expect("the slow request loads its session");

        // ...while request B signs out.
        let out = ok(&app, "/logout", Some(&c1)).await;
        assert!(out.removed, "signing out removes the cookie");
        assert_eq!(store.get(sid(&c1)).await.expect("get"), None);

        // A finishes after B, and tower-sessions saves A's copy of the session.
        gate.go.notify_one();
        let a = tokio::time::timeout(Duration::from_secs(20), slow)
            .await
            .expect("the slow request finishes")
            .expect("the slow request does not panic");
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        assert_eq!(a.body, "2");

        // The sign-out stands.
        assert_eq!(store.get(sid(&c1)).await.expect("get"), None);
        assert_eq!(store.model().backend().rows(&table).await, 0);
        assert_eq!(ok(&app, "/whoami", Some(&c1)).await.body, "user:-");
    }

    pub(super) async fn cycle_id_moves_the_data_and_retires_the_old_id<M: OnTable>(
        store: Store<M>,
    ) {
        let table = store.model().table().to_owned();
        let app = app(store.clone(), hour(), Gate::default());
        let c1 = sign_in(&app, "alice").await;

        let c2 = ok(&app, "/cycle", Some(&c1))
            .await
            .cookie
            .expect("cycling sets a new cookie");
        assert_ne!(c2, c1);

        assert_eq!(ok(&app, "/whoami", Some(&c2)).await.body, "user:alice");
        assert_eq!(store.get(sid(&c1)).await.expect("get"), None);
        let moved = store.get(sid(&c2)).await.expect("get").expect("stored");
        assert_eq!(moved.data, data(serde_json::json!({ "user": "alice" })));
        assert_eq!(store.model().backend().rows(&table).await, 1);

        assert_eq!(ok(&app, "/whoami", Some(&c1)).await.body, "user:-");
    }

    pub(super) async fn sweeper_removes_expired_rows<M: OnTable>(store: Store<M>) {
        let table = store.model().table().to_owned();
        let store = store.with_sweep_interval(Some(Duration::from_millis(200)));
        let short = app(
            store.clone(),
            Expiry::OnInactivity(time::Duration::seconds(1)),
            Gate::default(),
        );
        let long = app(store.clone(), hour(), Gate::default());

        for name in ["a", "b", "c"] {
            sign_in(&short, name).await;
        }
        let keep = sign_in(&long, "keeper").await;
        let raw = store.model().backend();
        assert_eq!(raw.rows(&table).await, 4);

        // The short sessions expire after a second; the task runs every 200 ms.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while raw.rows(&table).await > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(raw.rows(&table).await, 1, "the expired rows are removed");
        assert_eq!(ok(&long, "/whoami", Some(&keep)).await.body, "user:keeper");
    }

    pub(super) async fn expired_deletion_removes_expired_rows<M: OnTable>(store: Store<M>) {
        let table = store.model().table().to_owned();
        let now = time::OffsetDateTime::now_utc();
        let mut ids = Vec::new();
        for (i, offset) in [-60, -1, 3600].into_iter().enumerate() {
            let mut record = Record {
                id: Id::default(),
                data: [("i".to_owned(), serde_json::json!(i))].into(),
                expiry_date: now + time::Duration::seconds(offset),
            };
            SessionStore::create(&store, &mut record)
                .await
                .expect("create");
            ids.push(record.id);
        }
        let raw = store.model().backend();
        assert_eq!(raw.rows(&table).await, 3);

        ExpiredDeletion::delete_expired(&store)
            .await
            .expect("delete_expired");

        assert_eq!(raw.rows(&table).await, 1);
        let live = SessionStore::load(&store, &ids[2])
            .await
            .expect("load")
            .expect("the live session stays");
        assert_eq!(live.data.get("i"), Some(&serde_json::json!(2)));
    }

    pub(super) async fn tampered_or_unknown_cookie_is_a_fresh_session<M: OnTable>(store: Store<M>) {
        let app = app(store.clone(), hour(), Gate::default());
        let c1 = sign_in(&app, "alice").await;
        let real = sid(&c1);

        // The real id with its first character changed: well formed, but no such session.
        let mut flipped: Vec<char> = real.chars().collect();
        flipped[0] = if flipped[0] == 'A' { 'B' } else { 'A' };
        let flipped: String = flipped.into_iter().collect();
        let cookies = [
            format!("id={flipped}"),
            format!("id={}", Id::default()),
            format!("id={real}x"),
            format!("id={}", &real[1..]),
            "id=not-a-session-id".to_owned(),
            "id=".to_owned(),
            format!("id={}", "A".repeat(500)),
        ];
        for cookie in &cookies {
            let r = ok(&app, "/whoami", Some(cookie)).await;
            assert_eq!(r.body, "user:-", "{cookie}");
            let r = ok(&app, "/incr", Some(cookie)).await;
            assert_eq!(r.body, "1", "{cookie}");
            let fresh = r.cookie.expect("a fresh session gets a cookie");
            assert_ne!(&fresh, cookie);
            assert_ne!(fresh, c1);
        }

        // The real session is untouched.
        assert_eq!(ok(&app, "/whoami", Some(&c1)).await.body, "user:alice");
        let stored = store.get(real).await.expect("get").expect("stored");
        assert_eq!(stored.data, data(serde_json::json!({ "user": "alice" })));
        let expected = u64::try_from(cookies.len() + 1).expect("a small count");
        assert_eq!(store.length().await.expect("length"), expected);
    }

    pub(super) async fn create_never_overwrites_and_save_never_inserts<M: OnTable>(
        store: Store<M>,
    ) {
        let table = store.model().table().to_owned();
        let app = app(store.clone(), hour(), Gate::default());
        let c1 = sign_in(&app, "alice").await;
        let taken = Id::from_str(sid(&c1)).expect("a tower-sessions id");
        let expiry_date = time::OffsetDateTime::now_utc() + time::Duration::hours(1);

        // Creating under a taken id draws a new one and leaves the stored session alone.
        let mut record = Record {
            id: taken,
            data: [("user".to_owned(), serde_json::json!("mallory"))].into(),
            expiry_date,
        };
        SessionStore::create(&store, &mut record)
            .await
            .expect("create");
        assert_ne!(record.id, taken, "a new id was drawn");
        let original = SessionStore::load(&store, &taken)
            .await
            .expect("load")
            .expect("stored");
        assert_eq!(original.data.get("user"), Some(&serde_json::json!("alice")));
        let created = SessionStore::load(&store, &record.id)
            .await
            .expect("load")
            .expect("stored");
        assert_eq!(
            created.data.get("user"),
            Some(&serde_json::json!("mallory"))
        );
        assert_eq!(created.id, record.id);
        assert_eq!(
            created.expiry_date.unix_timestamp_nanos() / 1_000_000,
            expiry_date.unix_timestamp_nanos() / 1_000_000,
            "the expiry round-trips to the millisecond"
        );

        // Saving a session the store does not hold writes nothing.
        let unknown = Record {
            id: Id::default(),
            data: [("user".to_owned(), serde_json::json!("ghost"))].into(),
            expiry_date,
        };
        SessionStore::save(&store, &unknown).await.expect("save");
        assert_eq!(
            SessionStore::load(&store, &unknown.id).await.expect("load"),
            None
        );

        // Deleting is idempotent.
        SessionStore::delete(&store, &taken).await.expect("delete");
        SessionStore::delete(&store, &taken)
            .await
            .expect("delete again");
        assert_eq!(
            SessionStore::load(&store, &taken).await.expect("load"),
            None
        );
        assert_eq!(store.model().backend().rows(&table).await, 1);
    }

    /// With `with_sliding_expiry`, loading a session slides its expiry forward by the time
    /// since its last write, keeping the lifetime tower-sessions gave it; with
    /// `Expiry::OnSessionEnd`, tower-sessions writes nothing back for a request that changes
    /// nothing.
    pub(super) async fn sliding_expiry_slides_on_load_without_a_write_back<M: OnTable>(
        store: Store<M>,
    ) {
        let clock = Shifted::default();
        let store = store
            .with_ttl(std::time::Duration::from_secs(3600))
            .with_clock(clock.clone())
            .with_sliding_expiry(true);
        let app = app(store.clone(), Expiry::OnSessionEnd, Gate::default());
        let c = sign_in(&app, "carol").await;
        let signed_in = store.get(sid(&c)).await.expect("get").expect("stored");

        // An hour later the session is loaded: its expiry moves an hour on, to the lifetime
        // tower-sessions gave it (two weeks from the last write), not to the store's ttl.
        clock.advance(chrono::Duration::hours(1));
        let r = ok(&app, "/whoami", Some(&c)).await;
        assert_eq!(r.body, "user:carol");
        let stored = store.get(sid(&c)).await.expect("get").expect("stored");
        let moved = stored.expires.expect("an expiry") - signed_in.expires.expect("an expiry");
        assert!(
            (moved - chrono::Duration::hours(1)).num_seconds().abs() < 60,
            "moved by {moved}"
        );
        assert_eq!(stored.data, data(serde_json::json!({ "user": "carol" })));
    }

    /// Issue 12 item 8: with `Expiry::OnInactivity(30 min)` and sliding expiry, each load gives
    /// the session 30 more minutes, not the store's 14-day ttl, so a stolen cookie dies 30
    /// minutes after its last use, in the store as in the browser.
    pub(super) async fn sliding_expiry_keeps_the_frameworks_inactivity_timeout<M: OnTable>(
        store: Store<M>,
    ) {
        let clock = Shifted::default();
        let store = store
            .with_clock(clock.clone())
            .with_touch_after(std::time::Duration::from_secs(60))
            .with_sliding_expiry(true);
        assert_eq!(store.ttl(), std::time::Duration::from_secs(14 * 24 * 3600));
        let half_hour = Expiry::OnInactivity(time::Duration::minutes(30));
        let app = app(store.clone(), half_hour, Gate::default());
        let c = sign_in(&app, "dora").await;

        // Used every 20 minutes for two hours: alive, and never more than 30 minutes to live.
        for _ in 0..6 {
            clock.advance(chrono::Duration::minutes(20));
            let now = store.now();
            assert_eq!(ok(&app, "/whoami", Some(&c)).await.body, "user:dora");
            let stored = store.get(sid(&c)).await.expect("get").expect("stored");
            let left = stored.expires.expect("an expiry") - now;
            assert!(
                left <= chrono::Duration::minutes(31) && left >= chrono::Duration::minutes(29),
                "{left} to live"
            );
        }
        // Left alone for 31 minutes: gone, for the cookie's holder too.
        clock.advance(chrono::Duration::minutes(31));
        assert!(store.get(sid(&c)).await.expect("get").is_none());
        assert_eq!(ok(&app, "/whoami", Some(&c)).await.body, "user:-");
    }
}

/// The system clock moved forward by a settable amount: the store's idea of now, without
/// waiting.
#[derive(Clone, Debug, Default)]
struct Shifted(Arc<std::sync::Mutex<chrono::Duration>>);

impl Shifted {
    fn advance(&self, by: chrono::Duration) {
        let mut shift = self.0.lock().expect("the clock's lock is not poisoned");
        *shift += by;
    }
}

impl sequelstore::Clock for Shifted {
    fn now(&self) -> chrono::DateTime<Utc> {
        Utc::now() + *self.0.lock().expect("the clock's lock is not poisoned")
    }
}

/// Issue 14: what the application puts under the store's user key lands in the user column,
/// with no adapter API: a user signed in from two clients has two sessions, listed with their
/// times; signing out the other sessions from one client signs the other out, and leaves
/// another user alone.
mod users {
    use super::*;

    async fn store_with_users<B: Raw>(backend: B, test: &str) -> SqlStore<B> {
        let table = db::unique_table(test);
        let model = ConnectSession::options(backend)
            .table(&table)
            .user_id(true)
            .auto()
            .await
            .expect("the sessions table is created");
        Store::with_model(model)
            .with_sweep_interval(None)
            .with_user_key("user")
    }

    async fn sign_out_the_other_sessions<B: Raw>(store: SqlStore<B>) {
        let app = app(store.clone(), hour(), Gate::default());
        let laptop = sign_in(&app, "alice").await;
        let phone = sign_in(&app, "alice").await;
        let bob = sign_in(&app, "bob").await;
        let listed = store.user_sessions("alice", None, 10).await.unwrap();
        let mut ids: Vec<&str> = listed.iter().map(|s| s.sid.as_str()).collect();
        ids.sort_unstable();
        let mut want = vec![sid(&laptop), sid(&phone)];
        want.sort_unstable();
        assert_eq!(ids, want);
        assert!(
            listed
                .iter()
                .all(|s| s.created.is_some() && s.expires.is_some())
        );
        assert_eq!(store.count_user_sessions("bob").await.unwrap(), 1);

        let gone = store
            .destroy_other_user_sessions("alice", sid(&laptop))
            .await
            .unwrap();
        assert_eq!(gone, 1);
        assert_eq!(ok(&app, "/whoami", Some(&laptop)).await.body, "user:alice");
        assert_eq!(ok(&app, "/whoami", Some(&phone)).await.body, "user:-");
        assert_eq!(ok(&app, "/whoami", Some(&bob)).await.body, "user:bob");

        // Signing out clears the session's user, whatever is left of it.
        ok(&app, "/logout", Some(&laptop)).await;
        assert_eq!(store.count_user_sessions("alice").await.unwrap(), 0);
        let table = store.model().table().to_owned();
        Raw::drop_table(store.model().backend(), &table).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_sqlite() {
        let test = "users_sqlite";
        sign_out_the_other_sessions(store_with_users(db::sqlite(test).await, test).await).await;
    }

    #[cfg(feature = "postgres")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_postgres() {
        let Some(pool) = db::postgres().await else {
            return;
        };
        sign_out_the_other_sessions(store_with_users(pool, "users_postgres").await).await;
    }

    #[cfg(feature = "mysql")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_mysql() {
        let Some(pool) = db::mysql().await else {
            return;
        };
        sign_out_the_other_sessions(store_with_users(pool, "users_mysql").await).await;
    }
}
