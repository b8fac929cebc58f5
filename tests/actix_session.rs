//! actix-session over `Store`, in process with `actix_web::test`: on sqlx SQLite always, on
//! PostgreSQL and MariaDB when their features are on (skipped loudly when unreachable, failed
//! under `CI=true`). Each case is written once, as a generic function, and `actix_suite!`
//! instantiates it per backend.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_http::Request;
use actix_session::config::{PersistentSession, TtlExtensionPolicy};
use actix_session::{Session, SessionMiddleware};
use actix_web::body::MessageBody;
use actix_web::cookie::{Cookie, CookieJar, Key, time};
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use actix_web::{App, HttpResponse, web};
use chrono::{DateTime, TimeDelta, Utc};
use sequelstore::{Clock, SessionModel, SessionRow, Store};
use serde_json::json;
use tokio::sync::Notify;

use common::db;

/// The session ttl every test app gives actix-session.
const TTL_HOURS: i64 = 2;

/// A clock the test moves by hand.
#[derive(Debug, Clone)]
struct TestClock(Arc<Mutex<DateTime<Utc>>>);

impl TestClock {
    fn new() -> Self {
        TestClock(Arc::new(Mutex::new(Utc::now())))
    }

    fn advance(&self, by: TimeDelta) {
        *self.0.lock().expect("clock lock") += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock lock")
    }
}

/// Lets a test hold the `/slow` handler after it has loaded and changed the session.
#[derive(Debug, Default)]
struct Gate {
    loaded: Notify,
    go: Notify,
}

/// What a case gets: a store on its own table with a hand-moved clock, the cookie key, and the
/// gate for `/slow`.
struct Fixture<M> {
    store: Store<M>,
    clock: TestClock,
    key: Key,
    gate: Arc<Gate>,
    drop_table: Option<Pin<Box<dyn Future<Output = ()>>>>,
}

impl<M: SessionModel> Fixture<M> {
    fn new(store: Store<M>, drop_table: Option<Pin<Box<dyn Future<Output = ()>>>>) -> Self {
        let clock = TestClock::new();
        Fixture {
            store: store.with_clock(clock.clone()),
            clock,
            key: Key::generate(),
            gate: Arc::default(),
            drop_table,
        }
    }

    /// Rows in the table, expired ones included.
    async fn rows(&self) -> u64 {
        let long_ago = self.store.now() - TimeDelta::days(365);
        self.store
            .model()
            .count(long_ago)
            .await
            .expect("count rows")
    }

    /// Drops a server table after a passing case; a failing one leaves it for a look.
    async fn finish(self) {
        if let Some(drop_table) = self.drop_table {
            drop_table.await;
        }
    }
}

fn lifecycle() -> PersistentSession {
    PersistentSession::default().session_ttl(time::Duration::hours(TTL_HOURS))
}

/// The test app: `SessionMiddleware` over `$store` with the fixture's key, and the routes below.
macro_rules! init_app {
    ($fx:expr, $store:expr, $lifecycle:expr) => {
        test::init_service(
            App::new()
                .app_data(web::Data::from(Arc::clone(&$fx.gate)))
                .wrap(
                    SessionMiddleware::builder($store.clone(), $fx.key.clone())
                        .session_lifecycle($lifecycle)
                        .build(),
                )
                .configure(routes),
        )
        .await
    };
    ($fx:expr) => {
        init_app!($fx, $fx.store, lifecycle())
    };
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/login/{name}", web::post().to(login))
        .route("/whoami", web::get().to(whoami))
        .route("/visit", web::get().to(visit))
        .route("/slow", web::get().to(slow))
        .route("/logout", web::post().to(logout))
        .route("/renew", web::post().to(renew));
}

async fn login(session: Session, name: web::Path<String>) -> actix_web::Result<HttpResponse> {
    session.insert("user", name.into_inner())?;
    Ok(HttpResponse::Ok().body("signed in"))
}

async fn whoami(session: Session) -> actix_web::Result<String> {
    Ok(session
        .get::<String>("user")?
        .unwrap_or_else(|| "anonymous".into()))
}

async fn count_visit(session: &Session) -> actix_web::Result<String> {
    let visits = session.get::<u64>("visits")?.unwrap_or(0) + 1;
    session.insert("visits", visits)?;
    Ok(visits.to_string())
}

async fn visit(session: Session) -> actix_web::Result<String> {
    count_visit(&session).await
}

/// Changes the session, then waits for the test before answering (and so before the
/// middleware writes the session back).
async fn slow(session: Session, gate: web::Data<Gate>) -> actix_web::Result<String> {
    let visits = count_visit(&session).await?;
    gate.loaded.notify_one();
    gate.go.notified().await;
    Ok(visits)
}

async fn logout(session: Session) -> HttpResponse {
    session.purge();
    HttpResponse::Ok().body("signed out")
}

async fn renew(session: Session) -> HttpResponse {
    session.renew();
    HttpResponse::Ok().body("renewed")
}

/// A response as the tests look at it.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    body: String,
    /// The session cookie the response sets, if it sets one.
    cookie: Option<Cookie<'static>>,
}

async fn send<S, B>(app: &S, req: TestRequest) -> Reply
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let res = test::call_service(app, req.to_request()).await;
    let status = res.status();
    let cookie = res
        .response()
        .cookies()
        .find(|c| c.name() == "id")
        .map(|c| c.into_owned());
    let body = String::from_utf8(test::read_body(res).await.to_vec()).expect("utf-8 body");
    Reply {
        status,
        body,
        cookie,
    }
}

fn get(path: &str, cookie: &Cookie<'static>) -> TestRequest {
    TestRequest::get().uri(path).cookie(cookie.clone())
}

fn post(path: &str, cookie: Option<&Cookie<'static>>) -> TestRequest {
    let req = TestRequest::post().uri(path);
    match cookie {
        Some(cookie) => req.cookie(cookie.clone()),
        None => req,
    }
}

/// Signs in as `name` on a fresh session and returns its cookie.
async fn sign_in<S, B>(app: &S, name: &str) -> Cookie<'static>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let reply = send(app, post(&format!("/login/{name}"), None)).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    reply.cookie.expect("signing in sets the session cookie")
}

/// A session cookie holding `value`, encrypted with `key` as actix-session's default
/// (private) cookies are.
fn sealed(key: &Key, value: String) -> Cookie<'static> {
    let mut jar = CookieJar::new();
    jar.private_mut(key).add(Cookie::new("id", value));
    jar.get("id").expect("just added").clone()
}

// ---- The cases, written once. ----

/// The cookie carries the session from request to request; the row holds a JSON object of
/// actix-session's strings, under a 64-character random key, expiring after the middleware's ttl.
async fn session_survives_across_requests<M: SessionModel>(fx: &Fixture<M>) {
    let app = init_app!(fx);
    let alice = sign_in(&app, "alice").await;

    assert_eq!(send(&app, get("/whoami", &alice)).await.body, "alice");
    assert_eq!(send(&app, get("/visit", &alice)).await.body, "1");
    assert_eq!(send(&app, get("/visit", &alice)).await.body, "2");
    assert_eq!(send(&app, get("/whoami", &alice)).await.body, "alice");
    let anonymous = send(&app, TestRequest::get().uri("/whoami")).await;
    assert_eq!(anonymous.body, "anonymous");
    assert!(
        anonymous.cookie.is_none(),
        "an untouched fresh session is not stored"
    );

    let sessions = fx.store.all().await.expect("list sessions");
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let session = &sessions[0];
    assert_eq!(session.id.len(), 64, "{:?}", session.id);
    assert!(session.id.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(
        serde_json::Value::Object(session.data.clone()),
        json!({"user": "\"alice\"", "visits": "2"})
    );
    assert_eq!(
        session.expires,
        Some(fx.store.now() + TimeDelta::hours(TTL_HOURS)),
        "the middleware's ttl, not the store's"
    );
}

/// Past its expiry a session is not loaded, even though its row is still there: the same cookie
/// gets a fresh, empty session under a new key.
async fn expired_cookie_starts_a_fresh_session<M: SessionModel>(fx: &Fixture<M>) {
    let app = init_app!(fx);
    let alice = sign_in(&app, "alice").await;
    assert_eq!(send(&app, get("/whoami", &alice)).await.body, "alice");

    fx.clock
        .advance(TimeDelta::hours(TTL_HOURS) + TimeDelta::seconds(1));
    assert_eq!(fx.rows().await, 1, "the expired row is still in the table");
    assert_eq!(send(&app, get("/whoami", &alice)).await.body, "anonymous");

    let fresh = send(&app, get("/visit", &alice)).await;
    assert_eq!((fresh.status, fresh.body.as_str()), (StatusCode::OK, "1"));
    let fresh = fresh.cookie.expect("the fresh session gets a cookie");
    assert_eq!(send(&app, get("/whoami", &fresh)).await.body, "anonymous");
    assert_eq!(send(&app, get("/visit", &fresh)).await.body, "2");
    assert_eq!(fx.store.length().await.expect("length"), 1);
    assert_eq!(
        fx.rows().await,
        2,
        "the expired row was left alone, not revived"
    );
}

/// A request that loaded the session before a sign-out and writes it back after must not bring
/// it back: not under its old key, and not under a new one.
async fn sign_out_sticks_against_a_slower_request<M: SessionModel>(fx: &Fixture<M>) {
    let app = init_app!(fx);
    let alice = sign_in(&app, "alice").await;

    let (slow, signed_out) = tokio::join!(send(&app, get("/slow", &alice)), async {
        fx.gate.loaded.notified().await;
        let reply = send(&app, post("/logout", Some(&alice))).await;
        fx.gate.go.notify_one();
        reply
    });

    assert_eq!(signed_out.status, StatusCode::OK, "{signed_out:?}");
    assert_eq!(
        signed_out.cookie.as_ref().map(|c| c.value()),
        Some(""),
        "sign-out removes the cookie"
    );
    assert_eq!(
        (slow.status, slow.body.as_str()),
        (StatusCode::OK, "1"),
        "the slow request still gets its answer"
    );
    assert_eq!(fx.rows().await, 0, "no row, under any key");
    assert_eq!(send(&app, get("/whoami", &alice)).await.body, "anonymous");
    if let Some(cookie) = &slow.cookie {
        assert_eq!(send(&app, get("/whoami", cookie)).await.body, "anonymous");
    }
}

/// `renew()` moves the data to a new key and the old key stops working.
async fn renewal_moves_the_data_and_retires_the_old_key<M: SessionModel>(fx: &Fixture<M>) {
    let app = init_app!(fx);
    let old = sign_in(&app, "alice").await;
    assert_eq!(send(&app, get("/visit", &old)).await.body, "1");
    let old_ids: Vec<String> = fx
        .store
        .all()
        .await
        .expect("all")
        .into_iter()
        .map(|s| s.id)
        .collect();

    let renewed = send(&app, post("/renew", Some(&old))).await;
    assert_eq!(renewed.status, StatusCode::OK, "{renewed:?}");
    let new = renewed.cookie.expect("renewal sets a new cookie");

    assert_eq!(send(&app, get("/whoami", &new)).await.body, "alice");
    assert_eq!(send(&app, get("/visit", &new)).await.body, "2");
    assert_eq!(send(&app, get("/whoami", &old)).await.body, "anonymous");
    let new_ids: Vec<String> = fx
        .store
        .all()
        .await
        .expect("all")
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(new_ids.len(), 1, "{new_ids:?}");
    assert_ne!(new_ids, old_ids);
    assert_eq!(fx.rows().await, 1, "the old row is gone, not just expired");
}

/// With the middleware extending the ttl on every request, `update_ttl` slides the expiry and
/// keeps a session alive past its first expiry.
async fn ttl_extension_keeps_a_session_alive<M: SessionModel>(fx: &Fixture<M>) {
    let app = init_app!(
        fx,
        fx.store,
        lifecycle().session_ttl_extension_policy(TtlExtensionPolicy::OnEveryRequest)
    );
    let alice = sign_in(&app, "alice").await;
    let first = fx.store.now() + TimeDelta::hours(TTL_HOURS);

    fx.clock.advance(TimeDelta::hours(1));
    assert_eq!(send(&app, get("/whoami", &alice)).await.body, "alice");
    let sessions = fx.store.all().await.expect("all");
    assert_eq!(
        sessions[0].expires,
        Some(fx.store.now() + TimeDelta::hours(TTL_HOURS))
    );

    fx.clock
        .advance(TimeDelta::hours(TTL_HOURS) - TimeDelta::minutes(30));
    assert!(fx.store.now() > first);
    assert_eq!(send(&app, get("/whoami", &alice)).await.body, "alice");
}

/// The store's sweeper removes expired rows and leaves live ones.
async fn sweeper_removes_expired_rows<M: SessionModel>(fx: &Fixture<M>) {
    let store = fx
        .store
        .clone()
        .with_sweep_interval(Some(Duration::from_millis(100)));
    let app = init_app!(fx, store, lifecycle());
    for name in ["ann", "bob", "cy"] {
        sign_in(&app, name).await;
    }
    assert_eq!(fx.rows().await, 3);

    fx.clock
        .advance(TimeDelta::hours(TTL_HOURS) + TimeDelta::seconds(1));
    let dee = sign_in(&app, "dee").await;
    let mut rows = fx.rows().await;
    for _ in 0..200 {
        if rows == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        rows = fx.rows().await;
    }
    assert_eq!(rows, 1, "the three expired rows are swept within 10 s");
    assert_eq!(send(&app, get("/whoami", &dee)).await.body, "dee");
}

/// A cookie that fails the crypto check, names no stored session, or holds a key the store
/// cannot hold gives a fresh session, never an error page; the real session is untouched.
async fn bad_cookies_start_fresh_sessions<M: SessionModel>(fx: &Fixture<M>) {
    let app = init_app!(fx);
    let alice = sign_in(&app, "alice").await;

    let mut tampered = alice.clone();
    let mut value = tampered.value().to_owned().into_bytes();
    let last = value.len() - 2;
    value[last] = if value[last] == b'A' { b'B' } else { b'A' };
    tampered.set_value(String::from_utf8(value).expect("ascii"));

    let bad = [
        ("tampered", tampered),
        (
            "sealed with another key",
            sealed(&Key::generate(), "A".repeat(64)),
        ),
        ("unknown key", sealed(&fx.key, "A".repeat(64))),
        ("empty key", sealed(&fx.key, String::new())),
        ("overlong key", sealed(&fx.key, "x".repeat(300))),
    ];
    for (what, cookie) in &bad {
        let who = send(&app, get("/whoami", cookie)).await;
        assert_eq!(
            (who.status, who.body.as_str()),
            (StatusCode::OK, "anonymous"),
            "{what}"
        );
        let visit = send(&app, get("/visit", cookie)).await;
        assert_eq!(
            (visit.status, visit.body.as_str()),
            (StatusCode::OK, "1"),
            "{what}"
        );
        let fresh = visit.cookie.expect("the fresh session gets a cookie");
        assert_eq!(send(&app, get("/visit", &fresh)).await.body, "2", "{what}");
    }
    assert_eq!(send(&app, get("/whoami", &alice)).await.body, "alice");
    assert_eq!(
        fx.store.length().await.expect("length"),
        1 + bad.len() as u64
    );
}

/// A stored session that does not decode gives an empty session under the same key (what
/// actix-session does for a deserialization error), not an error page; writing it replaces the
/// bad row.
async fn undecodable_row_is_an_empty_session<M: SessionModel>(fx: &Fixture<M>) {
    let app = init_app!(fx);
    let sid = "B".repeat(64);
    let expires = fx.store.now() + TimeDelta::hours(1);
    fx.store
        .model()
        .save(
            &SessionRow::new(&sid, "not json", Some(expires)),
            fx.store.now(),
        )
        .await
        .expect("write a bad row");
    let cookie = sealed(&fx.key, sid.clone());

    let who = send(&app, get("/whoami", &cookie)).await;
    assert_eq!(
        (who.status, who.body.as_str()),
        (StatusCode::OK, "anonymous")
    );
    let visit = send(&app, get("/visit", &cookie)).await;
    assert_eq!((visit.status, visit.body.as_str()), (StatusCode::OK, "1"));
    assert_eq!(send(&app, get("/visit", &cookie)).await.body, "2");
    let session = fx
        .store
        .get(&sid)
        .await
        .expect("decodes now")
        .expect("live");
    assert_eq!(
        serde_json::Value::Object(session.data),
        json!({"visits": "2"})
    );
}

// ---- Backends. ----

/// A store over a fresh table `table` that keeps users, filled from the app's `user` key.
async fn with_users<B: sequelstore::Backend>(
    backend: B,
    table: &str,
) -> Store<sequelstore::ConnectSession<B>> {
    let model = sequelstore::ConnectSession::options(backend)
        .table(table)
        .user_id(true)
        .auto()
        .await
        .expect("a fresh table");
    Store::with_model(model).with_user_key("user")
}

async fn sqlite(test: &str) -> Option<Fixture<sequelstore::ConnectSession<sqlx::SqlitePool>>> {
    let pool = db::sqlite(test).await;
    let store = with_users(pool, &db::unique_table(test)).await;
    Some(Fixture::new(store, None))
}

#[cfg(feature = "postgres")]
async fn postgres(test: &str) -> Option<Fixture<sequelstore::ConnectSession<sqlx::PgPool>>> {
    let pool = db::postgres().await?;
    let table = db::unique_table(test);
    let store = with_users(pool.clone(), &table).await;
    Some(Fixture::new(store, Some(drop_table(pool, table))))
}

#[cfg(feature = "mysql")]
async fn mysql(test: &str) -> Option<Fixture<sequelstore::ConnectSession<sqlx::MySqlPool>>> {
    let pool = db::mysql().await?;
    let table = db::unique_table(test);
    let store = with_users(pool.clone(), &table).await;
    Some(Fixture::new(store, Some(drop_table(pool, table))))
}

/// The same backends with a cache in front of the model: of the process's own on SQLite and
/// MariaDB, kept coherent by `LISTEN`/`NOTIFY` on PostgreSQL (waited for until it serves).
#[cfg(feature = "cache")]
mod cached {
    use super::*;
    use sequelstore::{CacheConfig, Cached, ConnectSession};

    fn config() -> CacheConfig {
        CacheConfig::new().with_ttl(std::time::Duration::from_secs(3600))
    }

    pub(super) async fn sqlite(
        test: &str,
    ) -> Option<Fixture<Cached<ConnectSession<sqlx::SqlitePool>>>> {
        let pool = db::sqlite(test).await;
        let model = ConnectSession::auto_table(pool, &db::unique_table(test))
            .await
            .expect("a table on a fresh SQLite file");
        Some(Fixture::new(
            Store::with_model(Cached::new(model, config())),
            None,
        ))
    }

    #[cfg(feature = "mysql")]
    pub(super) async fn mysql(
        test: &str,
    ) -> Option<Fixture<Cached<ConnectSession<sqlx::MySqlPool>>>> {
        let pool = db::mysql().await?;
        let table = db::unique_table(test);
        let model = ConnectSession::auto_table(pool.clone(), &table)
            .await
            .expect("a table on MariaDB");
        let store = Store::with_model(Cached::new(model, config()));
        Some(Fixture::new(store, Some(drop_table(pool, table))))
    }

    #[cfg(feature = "postgres")]
    pub(super) async fn postgres(
        test: &str,
    ) -> Option<Fixture<Cached<ConnectSession<sqlx::PgPool>>>> {
        let pool = db::postgres().await?;
        let table = db::unique_table(test);
        let model = ConnectSession::auto_table(pool.clone(), &table)
            .await
            .expect("a table on PostgreSQL");
        let channel = sequelstore::PgNotify::new(&pool, &table);
        let model = Cached::with_invalidation(model, config(), channel);
        tokio::time::timeout(std::time::Duration::from_secs(60), model.serving())
            .await
            .expect("the cache's channel is heard within a minute");
        Some(Fixture::new(
            Store::with_model(model),
            Some(drop_table(pool, table)),
        ))
    }
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
fn drop_table<DB: sqlx::Database>(
    pool: sqlx::Pool<DB>,
    table: String,
) -> Pin<Box<dyn Future<Output = ()>>>
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
{
    Box::pin(async move {
        // unique_table names are lowercase letters, digits and underscores: no quoting needed.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP TABLE {table}")))
            .execute(&pool)
            .await
            .expect("drop the test table");
    })
}

/// Issue 14: actix-session stores each value as its JSON text (`"\"alice\""`); the user
/// column gets the user itself, so the app lists and signs out a user's sessions by its own
/// id, and signing out the other sessions leaves the current one and other users alone.
async fn users_are_found_by_the_id_the_app_stores<M: SessionModel>(fx: &Fixture<M>) {
    let app = init_app!(fx);
    let laptop = sign_in(&app, "alice").await;
    let phone = sign_in(&app, "alice").await;
    let bob = sign_in(&app, "bob").await;
    assert_eq!(fx.store.count_user_sessions("alice").await.unwrap(), 2);
    assert_eq!(fx.store.count_user_sessions("\"alice\"").await.unwrap(), 0);
    let sessions = fx.store.all().await.unwrap();
    let id_of = |user: &str| {
        sessions
            .iter()
            .filter(|s| s.data["user"] == format!("\"{user}\""))
            .map(|s| s.id.clone())
            .collect::<Vec<_>>()
    };
    let alices = id_of("alice");
    let listed = fx.store.user_sessions("alice", None, 10).await.unwrap();
    let mut listed: Vec<String> = listed.into_iter().map(|s| s.sid).collect();
    listed.sort();
    let mut want = alices.clone();
    want.sort();
    assert_eq!(listed, want);
    // Keep one; which cookie it is, the sign-out shows.
    let keep = &alices[0];
    assert_eq!(
        fx.store
            .destroy_other_user_sessions("alice", keep)
            .await
            .unwrap(),
        1
    );
    let mut still = vec![
        send(&app, get("/whoami", &laptop)).await.body,
        send(&app, get("/whoami", &phone)).await.body,
    ];
    still.sort();
    assert_eq!(still, ["alice", "anonymous"]);
    assert_eq!(send(&app, get("/whoami", &bob)).await.body, "bob");
}

mod users {
    #[actix_web::test]
    async fn on_sqlite() {
        let fx = super::sqlite("users_sqlite").await.unwrap();
        super::users_are_found_by_the_id_the_app_stores(&fx).await;
        fx.finish().await;
    }

    #[cfg(feature = "postgres")]
    #[actix_web::test]
    async fn on_postgres() {
        if let Some(fx) = super::postgres("users_postgres").await {
            super::users_are_found_by_the_id_the_app_stores(&fx).await;
            fx.finish().await;
        }
    }

    #[cfg(feature = "mysql")]
    #[actix_web::test]
    async fn on_mysql() {
        if let Some(fx) = super::mysql("users_mysql").await {
            super::users_are_found_by_the_id_the_app_stores(&fx).await;
            fx.finish().await;
        }
    }
}

/// One `#[actix_web::test]` per case, for the backend `$backend` (a function above).
macro_rules! actix_suite {
    ($name:ident, $make:path) => {
        mod $name {
            actix_suite!(@cases $make:
                session_survives_across_requests,
                expired_cookie_starts_a_fresh_session,
                sign_out_sticks_against_a_slower_request,
                renewal_moves_the_data_and_retires_the_old_key,
                ttl_extension_keeps_a_session_alive,
                sweeper_removes_expired_rows,
                bad_cookies_start_fresh_sessions,
                undecodable_row_is_an_empty_session,
            );
        }
    };
    (@cases $make:path: $($case:ident,)*) => {
        $(
            #[actix_web::test]
            async fn $case() {
                if let Some(fx) = $make(stringify!($case)).await {
                    super::$case(&fx).await;
                    fx.finish().await;
                }
            }
        )*
    };
}

actix_suite!(sqlite, super::sqlite);
#[cfg(feature = "postgres")]
actix_suite!(postgres, super::postgres);
#[cfg(feature = "mysql")]
actix_suite!(mysql, super::mysql);
#[cfg(feature = "cache")]
actix_suite!(cached_sqlite, super::cached::sqlite);
#[cfg(all(feature = "cache", feature = "postgres"))]
actix_suite!(cached_postgres, super::cached::postgres);
#[cfg(all(feature = "cache", feature = "mysql"))]
actix_suite!(cached_mysql, super::cached::mysql);
