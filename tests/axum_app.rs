//! The example app (`examples/axum_app.rs`, the README's first command) in process: signed in
//! from two cookie jars under one name, "your sessions" lists both and marks the current one;
//! "sign out the other sessions" signs the other jar out, and it is gone from the list.

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/axum_app.rs"]
mod example;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// A browser's cookie jar of one cookie: the session's.
#[derive(Default)]
struct Jar(Option<String>);

impl Jar {
    async fn send(
        &mut self,
        app: &axum::Router,
        method: &str,
        path: &str,
        form: &str,
    ) -> (StatusCode, String) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(cookie) = &self.0 {
            req = req.header(header::COOKIE, cookie);
        }
        if !form.is_empty() {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let res = app
            .clone()
            .oneshot(req.body(Body::from(form.to_owned())).unwrap())
            .await
            .unwrap();
        if let Some(set) = res.headers().get(header::SET_COOKIE) {
            let pair = set.to_str().unwrap().split(';').next().unwrap().to_owned();
            self.0 = Some(pair);
        }
        let status = res.status();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }
}

/// The rows of the sessions table on the page, and how many are marked as this one.
fn rows(page: &str) -> (usize, usize) {
    let table = page.split("id=\"sessions\"").nth(1).unwrap_or("");
    let table = table.split("</table>").next().unwrap_or("");
    (
        table.matches("<tr><td>").count(),
        table.matches("this one").count(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn your_sessions_lists_them_and_signs_the_others_out() {
    let db = std::env::temp_dir().join(format!("sequelstore-axum-app-{}.db", std::process::id()));
    let url = format!("sqlite://{}", db.display());
    let store = example::open::<sqlx::SqlitePool>(&url).await.unwrap();
    let app = example::app(store.with_sweep_interval(None));

    let (mut laptop, mut phone, mut other) = (Jar::default(), Jar::default(), Jar::default());
    assert_eq!(
        laptop.send(&app, "POST", "/login", "name=alice").await.0,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        phone.send(&app, "POST", "/login", "name=alice").await.0,
        StatusCode::SEE_OTHER
    );
    other.send(&app, "POST", "/login", "name=bob").await;

    let (status, page) = laptop.send(&app, "GET", "/sessions", "").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("alice</b>: 2 session(s)"), "{page}");
    assert_eq!(rows(&page), (2, 1), "{page}");

    let (status, _) = laptop.send(&app, "POST", "/sessions/others", "").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, page) = laptop.send(&app, "GET", "/sessions", "").await;
    assert_eq!(rows(&page), (1, 1), "{page}");
    let (_, home) = phone.send(&app, "GET", "/", "").await;
    assert!(
        home.contains("Sign in"),
        "the other jar is signed out: {home}"
    );
    let (_, home) = other.send(&app, "GET", "/", "").await;
    assert!(home.contains("Signed in as <b>bob</b>"), "{home}");
    let (_, page) = phone.send(&app, "GET", "/sessions", "").await;
    assert!(
        !page.contains("id=\"sessions\""),
        "a signed-out jar has no list"
    );

    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}
