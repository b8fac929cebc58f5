//! The express-session cookie layer, in process (axum `Router` + `oneshot`) over a SQLite file.
//!
//! Cookies are checked against the express-session algorithm written out here with `hmac`
//! directly (`express_cookie`, `verify_express_cookie`), not against the crate's own `sign`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{Request, Response, StatusCode, header};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use chrono::{TimeDelta, Utc};
use hmac::{Hmac, Mac};
use sequelstore::integration::express::{ExpressSession, ExpressSessionLayer, SameSite};
use sequelstore::{ConnectSession, SessionData, Store};
use sha2::Sha256;
use tokio::sync::Notify;
use tower::ServiceExt;

#[path = "common/db.rs"]
mod db;

type SqliteStore = Store<ConnectSession<sqlx::SqlitePool>>;

const SECRET: &str = "keyboard cat";

// ---------------------------------------------------------------------------------------------
// express-session's cookie, written out independently

/// `connect.sid`'s value as express-session 1.19 sends it: `s:` + sid + `.` + base64 (no
/// padding) of HMAC-SHA256(secret, sid), then `encodeURIComponent`.
fn express_cookie(sid: &str, secret: &str) -> String {
    let raw = format!("s:{sid}.{}", signature(sid, secret));
    let mut out = String::new();
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn signature(sid: &str, secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(sid.as_bytes());
    STANDARD_NO_PAD.encode(mac.finalize().into_bytes())
}

/// The sid in a `connect.sid` value when `secret` signed it, checked as express-session does.
fn verify_express_cookie(value: &str, secret: &str) -> Option<String> {
    let decoded = percent_decode(value);
    let signed = decoded.strip_prefix("s:")?;
    let dot = signed.rfind('.')?;
    let sid = &signed[..dot];
    (signed[dot + 1..] == signature(sid, secret)).then(|| sid.to_owned())
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

// ---------------------------------------------------------------------------------------------
// The application under test

#[derive(Clone, Default)]
struct Gate {
    loaded: Arc<Notify>,
    go: Arc<Notify>,
}

async fn whoami(session: ExpressSession) -> String {
    let user: Option<String> = session.get("user").unwrap();
    format!("user:{}", user.as_deref().unwrap_or("-"))
}

async fn login(session: ExpressSession, Path(name): Path<String>) -> String {
    session.insert("user", &name).unwrap();
    format!("signed in as {name}")
}

async fn incr(session: ExpressSession) -> String {
    let n = session.get::<u64>("n").unwrap().unwrap_or(0) + 1;
    session.insert("n", n).unwrap();
    n.to_string()
}

async fn logout(session: ExpressSession) -> &'static str {
    session.destroy();
    "signed out"
}

async fn cycle(session: ExpressSession) -> &'static str {
    session.cycle_id();
    "cycled"
}

async fn keys(session: ExpressSession) -> String {
    let refused = session.insert("cookie", 1).is_err();
    let keys: Vec<String> = session.data().keys().cloned().collect();
    format!("{} refused:{refused}", keys.join(","))
}

/// Reads the session, waits for the test to let it go, then changes it: the slow request.
async fn slow_incr(State(gate): State<Gate>, session: ExpressSession) -> String {
    let n = session.get::<u64>("n").unwrap().unwrap_or(0) + 1;
    gate.loaded.notify_one();
    gate.go.notified().await;
    session.insert("n", n).unwrap();
    n.to_string()
}

fn app(layer: ExpressSessionLayer<ConnectSession<sqlx::SqlitePool>>, gate: Gate) -> Router {
    Router::new()
        .route("/whoami", get(whoami))
        .route("/login/{name}", get(login))
        .route("/incr", get(incr))
        .route("/logout", get(logout))
        .route("/cycle", get(cycle))
        .route("/keys", get(keys))
        .route("/slow", get(slow_incr))
        .with_state(gate)
        .layer(layer)
}

async fn store(test: &str) -> SqliteStore {
    let table = db::unique_table(test);
    Store::auto_table(db::sqlite(test).await, &table)
        .await
        .expect("the sessions table is created")
        .with_sweep_interval(None)
}

async fn call(app: &Router, path: &str, cookie: Option<&str>) -> Response<Body> {
    let mut req = Request::get(path);
    if let Some(cookie) = cookie {
        req = req.header(header::COOKIE, cookie);
    }
    app.clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

async fn body(res: Response<Body>) -> String {
    let bytes = http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap()
        .to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// The `Set-Cookie` headers of a response.
fn set_cookies(res: &Response<Body>) -> Vec<String> {
    res.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The `connect.sid` value a response sets, if it sets one.
fn connect_sid(res: &Response<Body>) -> Option<String> {
    set_cookies(res).iter().find_map(|line| {
        let pair = line.split(';').next()?;
        pair.strip_prefix("connect.sid=").map(str::to_owned)
    })
}

fn cookie_header(value: &str) -> String {
    format!("connect.sid={value}")
}

async fn raw_data(store: &SqliteStore, sid: &str) -> Option<String> {
    let sql = format!("SELECT data FROM {} WHERE sid = ?", store.model().table());
    sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql))
        .bind(sid)
        .fetch_optional(store.model().backend())
        .await
        .unwrap()
}

fn user(name: &str) -> SessionData {
    SessionData::from_iter([("user".to_string(), serde_json::json!(name))])
}

// ---------------------------------------------------------------------------------------------
// Cases

#[tokio::test]
async fn a_session_survives_across_requests() {
    let store = store("express_round_trip").await;
    let app = app(
        ExpressSessionLayer::new(store.clone(), SECRET).unwrap(),
        Gate::default(),
    );

    let first = call(&app, "/incr", None).await;
    assert_eq!(first.status(), StatusCode::OK);
    let value = connect_sid(&first).expect("a new session with data sets the cookie");
    assert_eq!(body(first).await, "1");
    let sid = verify_express_cookie(&value, SECRET).expect("signed as express-session signs");

    let second = call(&app, "/incr", Some(&cookie_header(&value))).await;
    assert_eq!(
        connect_sid(&second),
        None,
        "an existing session keeps its cookie"
    );
    assert_eq!(body(second).await, "2");

    let stored = raw_data(&store, &sid).await.expect("the session is stored");
    assert!(stored.starts_with(r#"{"cookie":{"#), "{stored}");
    assert_eq!(store.get(&sid).await.unwrap().unwrap().data["n"], 2);
}

#[tokio::test]
async fn a_cookie_made_by_the_express_algorithm_is_accepted_encoded_or_raw() {
    let store = store("express_independent").await;
    let app = app(
        ExpressSessionLayer::new(store.clone(), SECRET).unwrap(),
        Gate::default(),
    );
    let sid = "chosen-by-the-test.with.dots";
    store.set(sid, &user("ann"), None).await.unwrap();

    let encoded = express_cookie(sid, SECRET);
    assert!(encoded.starts_with("s%3Achosen-by-the-test.with.dots."));
    let res = call(&app, "/whoami", Some(&cookie_header(&encoded))).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body(res).await, "user:ann");

    let raw = percent_decode(&encoded);
    assert!(raw.starts_with("s:"));
    let header = format!("other=1; connect.sid={raw}; last=2");
    assert_eq!(
        body(call(&app, "/whoami", Some(&header)).await).await,
        "user:ann"
    );
}

#[tokio::test]
async fn the_layers_cookie_verifies_with_the_express_algorithm() {
    let store = store("express_set_cookie").await;
    let layer = ExpressSessionLayer::new(store.clone(), SECRET)
        .unwrap()
        .with_max_age(Duration::from_secs(3600))
        .with_same_site(SameSite::Lax);
    let app = app(layer, Gate::default());

    let res = call(&app, "/login/ann", None).await;
    let line = set_cookies(&res).pop().expect("a cookie is set");
    let value = connect_sid(&res).unwrap();
    assert!(value.starts_with("s%3A"), "{value}");
    let sid = verify_express_cookie(&value, SECRET).expect("the signature verifies");
    assert_eq!(sid.len(), 32, "24 random bytes, base64url");
    assert!(
        sid.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert!(verify_express_cookie(&value, "another secret").is_none());
    assert!(line.contains("; Path=/; Expires="), "{line}");
    assert!(line.ends_with("GMT; HttpOnly; SameSite=Lax"), "{line}");

    let session = store
        .get(&sid)
        .await
        .unwrap()
        .expect("stored under that id");
    assert_eq!(session.data["user"], "ann");
    assert_eq!(session.data["cookie"]["httpOnly"], true);
    assert_eq!(session.data["cookie"]["sameSite"], "lax");
    let expires = session.expires.unwrap();
    let in_an_hour = Utc::now() + TimeDelta::hours(1);
    assert!(
        (expires - in_an_hour).abs() < TimeDelta::minutes(1),
        "{expires}"
    );
}

#[tokio::test]
async fn a_rotated_secret_is_still_accepted_and_new_cookies_use_the_first() {
    let store = store("express_rotation").await;
    let layer = ExpressSessionLayer::new(store.clone(), "new secret")
        .unwrap()
        .with_secrets(["new secret", SECRET])
        .unwrap()
        .with_rolling(true);
    let app = app(layer, Gate::default());
    store.set("sid-old", &user("ann"), None).await.unwrap();

    let old = cookie_header(&express_cookie("sid-old", SECRET));
    let res = call(&app, "/whoami", Some(&old)).await;
    let value = connect_sid(&res).expect("rolling sends the cookie again");
    assert_eq!(body(res).await, "user:ann");
    assert_eq!(
        verify_express_cookie(&value, "new secret").as_deref(),
        Some("sid-old")
    );
    assert!(verify_express_cookie(&value, SECRET).is_none());

    let dropped = cookie_header(&express_cookie("sid-old", "a secret no longer listed"));
    assert_eq!(
        body(call(&app, "/whoami", Some(&dropped)).await).await,
        "user:-"
    );
}

#[tokio::test]
async fn bad_cookies_and_dead_sessions_are_a_fresh_session_not_an_error() {
    let store = store("express_bad_cookies").await;
    let app = app(
        ExpressSessionLayer::new(store.clone(), SECRET).unwrap(),
        Gate::default(),
    );
    store.set("live", &user("ann"), None).await.unwrap();
    let past = Utc::now() - TimeDelta::minutes(1);
    store
        .set("expired", &user("bob"), Some(past))
        .await
        .unwrap();

    let good = express_cookie("live", SECRET);
    // Flip one character of the signature.
    let mut tampered = good.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let cases = [
        ("tampered signature", tampered),
        (
            "another id under the signature",
            good.replacen("live", "evil", 1),
        ),
        ("unsigned id", "live".to_string()),
        ("s: without a signature", "s%3Alive".to_string()),
        ("padded signature", format!("{good}%3D")),
        ("unknown id", express_cookie("nobody", SECRET)),
        ("expired session", express_cookie("expired", SECRET)),
        ("overlong id", express_cookie(&"x".repeat(300), SECRET)),
        ("bad escape", "s%3Alive.%ZZ".to_string()),
        ("empty", String::new()),
    ];
    for (what, value) in cases {
        let res = call(&app, "/whoami", Some(&cookie_header(&value))).await;
        assert_eq!(res.status(), StatusCode::OK, "{what}");
        assert!(
            set_cookies(&res).is_empty(),
            "{what}: an empty new session is not stored"
        );
        assert_eq!(body(res).await, "user:-", "{what}");
    }

    // A change under a bad cookie starts a new session; the one it pointed at is untouched.
    let res = call(
        &app,
        "/incr",
        Some(&cookie_header(&express_cookie("expired", SECRET))),
    )
    .await;
    let value = connect_sid(&res).expect("the new session gets a cookie");
    let sid = verify_express_cookie(&value, SECRET).unwrap();
    assert_ne!(sid, "expired");
    assert_eq!(body(res).await, "1");
    assert_eq!(store.get("live").await.unwrap().unwrap().data, user("ann"));
}

#[tokio::test]
async fn sign_out_sticks_against_a_slower_request() {
    let store = store("express_logout_race").await;
    let gate = Gate::default();
    let app = app(
        ExpressSessionLayer::new(store.clone(), SECRET).unwrap(),
        gate.clone(),
    );

    let res = call(&app, "/login/ann", None).await;
    let cookie = cookie_header(&connect_sid(&res).unwrap());
    let sid = verify_express_cookie(&connect_sid(&res).unwrap(), SECRET).unwrap();

    let slow = tokio::spawn({
        let app = app.clone();
        let cookie = cookie.clone();
        async move { call(&app, "/slow", Some(&cookie)).await }
    });
    gate.loaded.notified().await;

    let out = call(&app, "/logout", Some(&cookie)).await;
    assert_eq!(out.status(), StatusCode::OK);
    let cleared = set_cookies(&out).pop().expect("sign-out clears the cookie");
    assert!(
        cleared.starts_with("connect.sid=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT"),
        "{cleared}"
    );
    assert!(store.get(&sid).await.unwrap().is_none());

    gate.go.notify_one();
    let slow = slow.await.unwrap();
    assert_eq!(slow.status(), StatusCode::OK);
    assert!(
        set_cookies(&slow).is_empty(),
        "no cookie for a session that is gone"
    );
    assert!(
        raw_data(&store, &sid).await.is_none(),
        "the slow request did not bring the session back"
    );
    assert_eq!(
        body(call(&app, "/whoami", Some(&cookie)).await).await,
        "user:-"
    );
}

#[tokio::test]
async fn cycle_id_moves_the_data_to_a_fresh_id() {
    let store = store("express_cycle").await;
    let app = app(
        ExpressSessionLayer::new(store.clone(), SECRET).unwrap(),
        Gate::default(),
    );
    let res = call(&app, "/login/ann", None).await;
    let old_value = connect_sid(&res).unwrap();
    let old = verify_express_cookie(&old_value, SECRET).unwrap();

    let res = call(&app, "/cycle", Some(&cookie_header(&old_value))).await;
    let new_value = connect_sid(&res).expect("a cycled session gets a new cookie");
    let new = verify_express_cookie(&new_value, SECRET).unwrap();
    assert_ne!(new, old);
    assert!(store.get(&old).await.unwrap().is_none());
    assert_eq!(store.get(&new).await.unwrap().unwrap().data["user"], "ann");
    let res = call(&app, "/whoami", Some(&cookie_header(&new_value))).await;
    assert_eq!(body(res).await, "user:ann");
}

#[tokio::test]
async fn an_unchanged_session_is_touched_within_the_stores_throttle() {
    let store = store("express_touch").await;
    let app = app(
        ExpressSessionLayer::new(store.clone(), SECRET).unwrap(),
        Gate::default(),
    );
    let soon = Utc::now() + TimeDelta::hours(1);
    store.set("s", &user("ann"), Some(soon)).await.unwrap();
    let cookie = cookie_header(&express_cookie("s", SECRET));

    let res = call(&app, "/whoami", Some(&cookie)).await;
    assert!(set_cookies(&res).is_empty());
    let slid = store.get("s").await.unwrap().unwrap().expires.unwrap();
    assert!(
        slid > Utc::now() + TimeDelta::days(13),
        "slid to the ttl: {slid}"
    );

    // With a throttle of a day, a session that slid an hour ago is not written again.
    let throttled = store
        .clone()
        .with_touch_after(Duration::from_secs(24 * 3600));
    let app = self::app(
        ExpressSessionLayer::new(throttled, SECRET).unwrap(),
        Gate::default(),
    );
    let before = Utc::now() + TimeDelta::days(14) - TimeDelta::hours(1);
    store.set("s", &user("ann"), Some(before)).await.unwrap();
    let stored = store.get("s").await.unwrap().unwrap().expires.unwrap();
    call(&app, "/whoami", Some(&cookie)).await;
    assert_eq!(
        store.get("s").await.unwrap().unwrap().expires.unwrap(),
        stored
    );
}

#[tokio::test]
async fn expresss_cookie_object_is_kept_out_of_the_data_and_written_back() {
    let store = store("express_cookie_object").await;
    let app = app(
        ExpressSessionLayer::new(store.clone(), SECRET).unwrap(),
        Gate::default(),
    );
    // A session as express-session and connect-session-sequelize store it.
    let mut data = user("ann");
    data.insert(
        "cookie".into(),
        serde_json::json!({
            "originalMaxAge": 86_400_000, "expires": "2030-01-02T03:04:05.000Z",
            "httpOnly": true, "path": "/", "sameSite": "strict",
        }),
    );
    store.set("from-express", &data, None).await.unwrap();
    let cookie = cookie_header(&express_cookie("from-express", SECRET));

    let res = call(&app, "/keys", Some(&cookie)).await;
    assert_eq!(body(res).await, "user refused:true");
    call(&app, "/incr", Some(&cookie)).await;
    let stored = store.get("from-express").await.unwrap().unwrap().data;
    assert_eq!(stored["n"], 1);
    assert_eq!(
        stored["cookie"]["sameSite"], "strict",
        "Express's attributes survive"
    );
    let text = raw_data(&store, "from-express").await.unwrap();
    assert!(text.starts_with(r#"{"cookie":{"#), "{text}");
}

#[tokio::test]
async fn a_failing_database_is_a_500_not_a_fresh_session() {
    let store = store("express_db_down").await;
    let app = app(
        ExpressSessionLayer::new(store.clone(), SECRET).unwrap(),
        Gate::default(),
    );
    store.set("s", &user("ann"), None).await.unwrap();
    store.model().backend().close().await;
    let res = call(
        &app,
        "/whoami",
        Some(&cookie_header(&express_cookie("s", SECRET))),
    )
    .await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    // Without a cookie nothing is loaded; storing the new session fails the same way.
    let res = call(&app, "/incr", None).await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(set_cookies(&res).is_empty());
}

#[tokio::test]
async fn the_extractor_without_the_layer_is_a_500() {
    let app: Router = Router::new().route("/whoami", get(whoami));
    let res = app
        .oneshot(Request::get("/whoami").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

/// express-session refuses a falsy secret; so does the layer, for `new` and for any entry of
/// `with_secrets`, with a message that says which and why.
#[tokio::test]
async fn an_empty_secret_is_refused() {
    let store = store("express_empty_secret").await;
    match ExpressSessionLayer::new(store.clone(), "") {
        Err(sequelstore::Error::InvalidInput(m)) => assert!(m.contains("empty"), "{m}"),
        other => panic!("an empty secret was accepted: {other:?}"),
    }
    let layer = ExpressSessionLayer::new(store.clone(), SECRET).unwrap();
    match layer.with_secrets([SECRET, ""]) {
        Err(sequelstore::Error::InvalidInput(m)) => assert!(m.contains("secret 2 of 2"), "{m}"),
        other => panic!("an empty secret in the list was accepted: {other:?}"),
    }
    let layer = ExpressSessionLayer::new(store, SECRET).unwrap();
    assert!(layer.with_secrets(Vec::<&str>::new()).is_err());
}
