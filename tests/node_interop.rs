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
use sequelstore::{Backend, ConnectSession, ExpressJson, SessionData, SessionModel, Store};
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
/// either side are never served by ours and each side's cleanup removes the other's.
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
        .with_cleanup_interval(None);
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

    // Each side's cleanup removes the other's expired rows: Node's first (Rust's expired row
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
        store.remove_expired().await.unwrap(),
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
    let pool = <sqlx::SqlitePool as sequelstore::Connect>::connect(&format!(
        "sqlite://{}",
        path.display()
    ))
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
