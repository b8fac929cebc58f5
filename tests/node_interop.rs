//! One live sessions table shared with the Express app sequelstore replaces: the real Node
//! packages (Sequelize 6.37.8, connect-session-sequelize 8.0.6, express-session 1.19.0, pinned in
//! tests/node/package.json, installed by `npm ci` in tests/node) on one side, a `Store` found by
//! `discover` on the other, on SQLite, PostgreSQL and MariaDB. Node runs with
//! `TZ=Pacific/Chatham` (UTC+12:45/+13:45) to catch local-time mistakes on either side.
//!
//! Without tests/node/node_modules the tests say so loudly, and fail when `CI=true`.

mod common;

use std::path::PathBuf;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use common::db;
use sequelstore::{
    Backend, ConnectSession, ConnectUrl, ExpressJson, SessionData, SessionModel, Store,
};
use serde_json::{Value, json};

/// Runs tests/node/interop.js with a list of operations against one database.
struct Node {
    env: Vec<(&'static str, String)>,
}

fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node")
}

impl Node {
    fn new(env: Vec<(&'static str, String)>) -> Option<Self> {
        if !node_dir()
            .join("node_modules/connect-session-sequelize")
            .exists()
        {
            db::unreachable_server(
                "The Node packages",
                "tests/node/node_modules",
                &"not installed; run `npm ci` in tests/node",
            );
            return None;
        }
        Some(Node { env })
    }

    async fn run(&self, ops: Value) -> Vec<Value> {
        let out = tokio::process::Command::new("node")
            .arg("interop.js")
            .arg(ops.to_string())
            .current_dir(node_dir())
            .env("TZ", "Pacific/Chatham")
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .await
            .expect("node runs");
        assert!(
            out.status.success(),
            "node failed on {ops}:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("node prints a JSON array")
    }
}

/// A session as express-session hands it to its store: the cookie object, then the app's data.
fn express_session(user: &str, expires: DateTime<Utc>) -> Value {
    json!({
        "cookie": {
            "originalMaxAge": 3_600_000,
            "expires": iso(expires),
            "httpOnly": true,
            "path": "/"
        },
        "user": user
    })
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse(v: &Value) -> DateTime<Utc> {
    let text = v.as_str().unwrap_or_else(|| panic!("a time, got {v}"));
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// Whether two times agree to `precision` (Sequelize keeps whole seconds on MariaDB).
fn close(a: DateTime<Utc>, b: DateTime<Utc>, precision: TimeDelta) -> bool {
    (a - b).abs() < precision
}

fn user(d: &SessionData) -> &str {
    d.get("user").and_then(Value::as_str).unwrap_or("")
}

/// The whole exchange, written once: Node makes the table and writes sessions; Rust discovers
/// it and reads, writes, touches and destroys them; Node sees each change; expired rows of
/// either side are never served by ours and each side's sweeps remove the other's.
async fn shared_table<B: Backend + Clone>(node: Node, backend: B, precision: TimeDelta) {
    let now = Utc::now();
    let hour = TimeDelta::hours(1);
    let synced = node
        .run(json!([
            {"op": "sync"},
            {"op": "set", "sid": "node-live", "session": express_session("ann", now + hour)},
            {"op": "set", "sid": "node-expired", "session": express_session("old", now - hour)},
        ]))
        .await;
    assert_eq!(synced[0], "ConnectSessions");

    let store = Store::discover(backend)
        .await
        .expect("discover finds the table Sequelize made")
        .with_serializer(ExpressJson)
        .with_sweep_interval(None);
    assert_eq!(store.model().table(), "ConnectSessions");

    // Node's rows, read by Rust: the expires column is the truth; expired ones are not served.
    let live = store
        .get("node-live")
        .await
        .unwrap()
        .expect("Node's live session");
    assert_eq!(user(&live.data), "ann");
    assert!(live.data["cookie"].is_object());
    assert!(
        close(live.expires.unwrap(), now + hour, precision),
        "{:?}",
        live.expires
    );
    assert_eq!(store.get("node-expired").await.unwrap(), None);
    assert_eq!(store.length().await.unwrap(), 1);

    // Rust's rows, read by Node and accepted by express-session.
    let data = SessionData::from_iter([("user".to_string(), json!("rust"))]);
    let rust_expires = now + hour * 2;
    store
        .set("rust-live", &data, Some(rust_expires))
        .await
        .unwrap();
    store
        .set("rust-expired", &data, Some(now - hour))
        .await
        .unwrap();
    let seen = node
        .run(json!([{"op": "get", "sid": "rust-live"}, {"op": "row", "sid": "rust-live"}]))
        .await;
    assert_eq!(seen[0]["data"]["user"], "rust");
    assert!(close(
        parse(&seen[0]["cookieExpires"]),
        rust_expires,
        TimeDelta::seconds(1)
    ));
    assert!(
        close(parse(&seen[1]["expires"]), rust_expires, precision),
        "{}",
        seen[1]
    );
    assert!(seen[1]["createdAt"].is_string() && seen[1]["updatedAt"].is_string());
    if let Some(text) = seen[1]["expiresText"].as_str() {
        // SQLite: exactly Sequelize's own text form, so Node's `<` comparisons hold.
        let want = rust_expires
            .format("%Y-%m-%d %H:%M:%S%.3f +00:00")
            .to_string();
        assert_eq!(text, want);
    }

    // Rust touches Node's session; Node sees the new expiry.
    let slid = now + hour * 3;
    assert!(store.touch("node-live", Some(slid)).await.unwrap());
    let row = node.run(json!([{"op": "row", "sid": "node-live"}])).await;
    assert!(
        close(parse(&row[0]["expires"]), slid, precision),
        "{}",
        row[0]
    );

    // Node touches Rust's session; Rust sees the new expiry (the column, not data.cookie).
    let node_slid = now + hour * 4;
    node.run(json!([
        {"op": "touch", "sid": "rust-live", "session": express_session("rust", node_slid)}
    ]))
    .await;
    let got = store.get("rust-live").await.unwrap().unwrap();
    assert!(
        close(got.expires.unwrap(), node_slid, precision),
        "{:?}",
        got.expires
    );

    // Each side destroys a session of the other's, and the other sees it gone.
    assert!(store.destroy("node-live").await.unwrap());
    node.run(json!([{"op": "destroy", "sid": "rust-live"}]))
        .await;
    let gone = node.run(json!([{"op": "get", "sid": "node-live"}])).await;
    assert_eq!(gone[0], Value::Null);
    assert_eq!(store.get("rust-live").await.unwrap(), None);

    // Each side's sweeps remove the other's expired rows: Node's first (Rust's expired row
    // goes, and Node's own), then Rust's, of a row Node wrote expired.
    node.run(json!([{"op": "clearExpired"}])).await;
    let left = node
        .run(json!([
            {"op": "row", "sid": "rust-expired"},
            {"op": "row", "sid": "node-expired"},
            {"op": "set", "sid": "node-expired-2", "session": express_session("old", now - hour)},
        ]))
        .await;
    assert_eq!(left[..2], [Value::Null, Value::Null]);
    assert_eq!(
        store.get("node-expired-2").await.unwrap(),
        None,
        "never served"
    );
    assert_eq!(
        store.sweep().await.unwrap().removed,
        1,
        "Node's expired row"
    );
    let left = node
        .run(json!([{"op": "row", "sid": "node-expired-2"}, {"op": "length"}]))
        .await;
    assert_eq!(left, vec![Value::Null, json!(0)]);
    assert_eq!(
        store.model().count(now - hour * 10).await.unwrap(),
        0,
        "nothing left, live or expired"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_table_shared_with_node() {
    let path = db::temp_sqlite_path("node_sqlite");
    let Some(node) = Node::new(vec![
        ("DIALECT", "sqlite".into()),
        ("STORAGE", path.display().to_string()),
    ]) else {
        return;
    };
    let pool = sqlx::SqlitePool::connect_url(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    shared_table(node, pool, TimeDelta::milliseconds(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_table_shared_with_node() {
    let Some((pool, drop, schema)) = db::postgres_isolated_named("node_pg").await else {
        return;
    };
    let Some(node) = Node::new(vec![
        ("DIALECT", "postgres".into()),
        (
            "DB_URL",
            db::server_url("POSTGRES_URL", db::DEFAULT_POSTGRES_URL),
        ),
        ("PG_SCHEMA", schema),
    ]) else {
        return;
    };
    shared_table(node, pool.clone(), TimeDelta::milliseconds(1)).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
        .execute(&pool)
        .await
        .unwrap();
}

fn mysql_url(database: &str) -> String {
    let url = db::server_url("MYSQL_URL", db::DEFAULT_MYSQL_URL);
    let base = url.rsplit_once('/').map_or(url.as_str(), |(base, _)| base);
    format!("{base}/{database}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_table_shared_with_node() {
    let Some((pool, drop, name)) = db::mysql_isolated_named("node_my").await else {
        return;
    };
    let Some(node) = Node::new(vec![
        ("DIALECT", "mysql".into()),
        ("DB_URL", mysql_url(&name)),
    ]) else {
        return;
    };
    // Sequelize keeps whole seconds in a MariaDB DATETIME.
    shared_table(node, pool.clone(), TimeDelta::seconds(1)).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
        .execute(&pool)
        .await
        .unwrap();
}

/// A MariaDB table that Sequelize wrote with `timezone: '+05:30'` holds local wall-clock
/// times; telling the store that offset reads and writes them right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_table_written_with_another_sequelize_timezone() {
    let Some((pool, drop, name)) = db::mysql_isolated_named("node_tz").await else {
        return;
    };
    let Some(node) = Node::new(vec![
        ("DIALECT", "mysql".into()),
        ("DB_URL", mysql_url(&name)),
        ("SEQUELIZE_TZ", "+05:30".into()),
    ]) else {
        return;
    };
    let now = Utc::now();
    let expires = now + TimeDelta::hours(1);
    node.run(json!([
        {"op": "sync"},
        {"op": "set", "sid": "india", "session": express_session("ravi", expires)},
    ]))
    .await;
    let offset = chrono::FixedOffset::east_opt(5 * 3600 + 1800).unwrap();
    let model = ConnectSession::options(pool.clone())
        .time_offset(offset)
        .discover()
        .await
        .unwrap();
    let store = Store::with_model(model).with_serializer(ExpressJson);
    let got = store.get("india").await.unwrap().expect("live");
    assert!(
        close(got.expires.unwrap(), expires, TimeDelta::seconds(1)),
        "{:?}",
        got.expires
    );
    let later = now + TimeDelta::hours(2);
    assert!(store.touch("india", Some(later)).await.unwrap());
    let row = node.run(json!([{"op": "row", "sid": "india"}])).await;
    assert!(
        close(parse(&row[0]["expires"]), later, TimeDelta::seconds(1)),
        "{}",
        row[0]
    );
    // Without the offset the same row reads 5 h 30 off: the option is what makes it right.
    let naive = Store::discover(pool.clone()).await.unwrap();
    let off = naive.get("india").await.unwrap().unwrap().expires.unwrap();
    assert!(
        close(off, later + TimeDelta::minutes(330), TimeDelta::seconds(1)),
        "{off}"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
        .execute(&pool)
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// One cookie for both: a real express-session app (tests/node/express_server.js) and the
// ExpressSessionLayer, on one SQLite file.

/// A GET over a plain TCP connection: the status, the `name=value` of a Set-Cookie, the body.
async fn http_get(port: u16, path: &str, cookie: Option<&str>) -> (u16, Option<String>, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("the Express app listens");
    let cookie = cookie.map_or(String::new(), |c| format!("Cookie: {c}\r\n"));
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{cookie}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head[9..12].parse().expect("a status code");
    let set_cookie = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("Set-Cookie: ")
                .or_else(|| l.strip_prefix("set-cookie: "))
        })
        .map(|v| v.split(';').next().unwrap_or_default().to_owned());
    (status, set_cookie, body.to_owned())
}

/// A request through the Rust app.
async fn rust_get(
    app: &axum::Router,
    path: &str,
    cookie: Option<&str>,
) -> (u16, Option<String>, String) {
    use tower::ServiceExt;
    let mut request = axum::http::Request::get(path);
    if let Some(c) = cookie {
        request = request.header("cookie", c);
    }
    let response = app
        .clone()
        .oneshot(request.body(axum::body::Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().to_owned());
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    (
        status,
        set_cookie,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

fn rust_app(store: Store<ConnectSession<sqlx::SqlitePool>>, secrets: &[&str]) -> axum::Router {
    use axum::extract::Path;
    use axum::routing::get;
    use sequelstore::integration::express::{ExpressSession, ExpressSessionLayer};
    async fn login(session: ExpressSession, Path(name): Path<String>) -> String {
        session.regenerate();
        session.insert("user", &name).unwrap();
        format!("user:{name}")
    }
    async fn whoami(session: ExpressSession) -> String {
        let user: Option<String> = session.get("user").ok().flatten();
        format!("user:{}", user.as_deref().unwrap_or("-"))
    }
    async fn visit(session: ExpressSession) -> String {
        let n: u64 = session.get("visits").ok().flatten().unwrap_or(0) + 1;
        session.insert("visits", n).unwrap();
        format!("visits:{n}")
    }
    async fn logout(session: ExpressSession) -> &'static str {
        session.destroy();
        "bye"
    }
    axum::Router::new()
        .route("/login/{name}", get(login))
        .route("/whoami", get(whoami))
        .route("/logout", get(logout))
        .route("/visit", get(visit))
        .layer(
            ExpressSessionLayer::new(store, secrets[0])
                .unwrap()
                .with_secrets(secrets.iter().copied())
                .unwrap(),
        )
}

/// The last character of a cookie's signature changed.
fn tampered(cookie: &str) -> String {
    let mut c = cookie.to_owned();
    let last = c.pop().expect("a cookie");
    c.push(if last == 'A' { 'B' } else { 'A' });
    c
}

/// The Express app of `express_server.js` on SQLite file `path`, with secrets "new secret" and
/// "old secret" and `MAX_AGE_MS` when given, started and listening; and its port.
async fn start_express(
    path: &std::path::Path,
    max_age_ms: Option<&str>,
) -> (tokio::process::Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let mut command = tokio::process::Command::new("node");
    command
        .arg("express_server.js")
        .current_dir(node_dir())
        .env("TZ", "Pacific/Chatham")
        .env("DIALECT", "sqlite")
        .env("STORAGE", path)
        .env("PORT", port.to_string())
        .env("SESSION_SECRETS", "new secret,old secret")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true);
    if let Some(ms) = max_age_ms {
        command.env("MAX_AGE_MS", ms);
    }
    let mut express = command.spawn().expect("node starts");
    let mut out = tokio::io::BufReader::new(express.stdout.take().unwrap());
    let mut line = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        tokio::io::AsyncBufReadExt::read_line(&mut out, &mut line),
    )
    .await
    .expect("the Express app starts within 30 s")
    .unwrap();
    assert_eq!(line.trim(), "listening");
    (express, port)
}

/// The `Set-Cookie` line (whole, with its attributes) of a GET to the Express app, if any.
async fn express_set_cookie(port: u16, path: &str, cookie: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("the Express app listens");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nCookie: {cookie}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, _) = response.split_once("\r\n\r\n").expect("an HTTP response");
    head.lines().find_map(|l| {
        l.strip_prefix("Set-Cookie: ")
            .or_else(|| l.strip_prefix("set-cookie: "))
            .map(str::to_owned)
    })
}

/// Issue 12 item 1: the Express app's cookie settings survive a write from Rust. The Rust
/// layer here has no max-age and the store's ttl is 14 days; before, `ExpressJson` wrote
/// `originalMaxAge` and `expires` from that, so Express then sent a 14-day persistent cookie.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn express_cookie_settings_survive_a_rust_write() {
    for (max_age, case) in [(Some("none"), "browser-session"), (None, "one-hour")] {
        let path = db::temp_sqlite_path(&format!("node_cookie_{}", case.replace('-', "_")));
        let Some(_node) = Node::new(vec![]) else {
            return;
        };
        let (_express, port) = start_express(&path, max_age).await;
        let pool = sqlx::SqlitePool::connect_url(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let store = Store::discover(pool.clone()).await.unwrap();
        let table = store.model().table().to_owned();
        let app = rust_app(store, &["new secret", "old secret"]);

        let (_, cookie, _) = http_get(port, "/login/ann", None).await;
        let cookie = cookie.expect("express-session sets connect.sid");
        let read_row = || async {
            let row: (String,) =
                sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT data FROM \"{table}\"")))
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            serde_json::from_str::<Value>(&row.0).unwrap()
        };
        // What Express wrote. Its `originalMaxAge` is `expires - Date.now()` read a moment
        // after `expires` was set, so on a busy machine it is 3599999 rather than 3600000:
        // the check below compares with this row, not with a constant.
        let written_by_express = read_row().await;
        // A change made by the Rust app, written through ExpressJson.
        assert_eq!(rust_get(&app, "/visit", Some(&cookie)).await.2, "visits:1");
        let stored = read_row().await;
        let express_set = express_set_cookie(port, "/visit", &cookie).await;
        match case {
            "browser-session" => {
                assert_eq!(stored["cookie"]["originalMaxAge"], Value::Null, "{stored}");
                assert_eq!(stored["cookie"]["expires"], Value::Null, "{stored}");
                // A changed session with a browser-session cookie: Express sends no cookie
                // (it would send one with `Expires` if the stored cookie had an expiry).
                assert_eq!(express_set, None, "case {case}");
            }
            _ => {
                let original = &written_by_express["cookie"]["originalMaxAge"];
                let ms = original.as_i64().expect("Express wrote a number");
                assert!(
                    (3_500_000..=3_600_000).contains(&ms),
                    "Express's own maxAge: {written_by_express}"
                );
                assert_eq!(&stored["cookie"]["originalMaxAge"], original, "{stored}");
                let line = express_set.expect("a changed session with a max-age: a cookie");
                let expires = line
                    .split("; ")
                    .find_map(|a| a.strip_prefix("Expires="))
                    .expect("an Expires attribute");
                let expires = DateTime::parse_from_rfc2822(&expires.replace("GMT", "+0000"))
                    .expect("an HTTP date")
                    .with_timezone(&Utc);
                let hour = Utc::now() + TimeDelta::hours(1);
                assert!(
                    (expires - hour).num_seconds().abs() < 120,
                    "Express's cookie expires in an hour, not the Rust ttl: {line}"
                );
            }
        }
        assert_eq!(http_get(port, "/whoami", Some(&cookie)).await.2, "user:ann");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_cookie_works_on_express_and_on_rust() {
    let path = db::temp_sqlite_path("node_cookie");
    let Some(_node) = Node::new(vec![]) else {
        return;
    };
    let (_express, port) = start_express(&path, None).await;

    let pool = sqlx::SqlitePool::connect_url(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let store = Store::discover(pool)
        .await
        .unwrap()
        .with_serializer(ExpressJson);
    let app = rust_app(store, &["new secret", "old secret"]);

    // Signed in on Express: the Rust app knows the user from the same cookie.
    let (status, ann, body) = http_get(port, "/login/ann", None).await;
    assert_eq!((status, body.as_str()), (200, "user:ann"));
    let ann = ann.expect("express-session sets connect.sid");
    assert!(ann.starts_with("connect.sid=s%3A"), "{ann}");
    assert_eq!(rust_get(&app, "/whoami", Some(&ann)).await.2, "user:ann");

    // Signed in on Rust: Express knows the user from the layer's cookie.
    let (_, bob, body) = rust_get(&app, "/login/bob", None).await;
    assert_eq!(body, "user:bob");
    let bob = bob.expect("the layer sets connect.sid");
    assert_eq!(http_get(port, "/whoami", Some(&bob)).await.2, "user:bob");

    // A cookie signed with the old secret still works on both (rotation).
    let sid = sequelstore::integration::express::unsign_cookie(
        ann.trim_start_matches("connect.sid="),
        &["new secret"],
    )
    .expect("the Express cookie verifies with the Rust helper");
    let old = format!(
        "connect.sid={}",
        sequelstore::integration::express::sign_cookie(&sid, "old secret")
    );
    assert_eq!(http_get(port, "/whoami", Some(&old)).await.2, "user:ann");
    assert_eq!(rust_get(&app, "/whoami", Some(&old)).await.2, "user:ann");

    // A tampered signature is a fresh session on both sides, not an error.
    for cookie in [tampered(&ann), tampered(&bob)] {
        assert_eq!(
            http_get(port, "/whoami", Some(&cookie)).await,
            (200, None, "user:-".into())
        );
        let (status, _, body) = rust_get(&app, "/whoami", Some(&cookie)).await;
        assert_eq!((status, body.as_str()), (200, "user:-"));
    }

    // Signing out on one side signs out on the other.
    assert_eq!(http_get(port, "/logout", Some(&ann)).await.2, "bye");
    assert_eq!(rust_get(&app, "/whoami", Some(&ann)).await.2, "user:-");
    assert_eq!(rust_get(&app, "/logout", Some(&bob)).await.2, "bye");
    assert_eq!(http_get(port, "/whoami", Some(&bob)).await.2, "user:-");
}
