//! Run with: cargo run --example axum_app --features tower-sessions
//!
//! A small axum app whose sessions live in SQL through tower-sessions: the SQLite file
//! `sessions.db` in the current folder by default, or the database at `DATABASE_URL`
//! (`postgres://...` with `--features tower-sessions,postgres`, `mysql://...` with
//! `--features tower-sessions,mysql`). Listens on 127.0.0.1:3000; `PORT` overrides.
//! Plain HTML, usable from a browser or curl:
//!
//! ```text
//! curl -c jar -b jar -d name=alice http://127.0.0.1:3000/login   # sign in
//! curl -c jar -b jar http://127.0.0.1:3000/                      # visit counter, live sessions
//! curl -c jar -b jar http://127.0.0.1:3000/sessions              # your sessions
//! curl -c jar -b jar -X POST http://127.0.0.1:3000/sessions/others # sign out the others
//! curl -c jar -b jar -X POST http://127.0.0.1:3000/logout         # sign out
//! ```
//!
//! Sessions expire after an hour without a visit; the store's own task removes expired rows
//! every minute. The table keeps each session's user (the name signed in with, under the
//! session's `name` key), so "your sessions" lists every browser signed in under that name and
//! can sign the others out.

use std::time::Duration;

use axum::Router;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use sequelstore::{ConnectSession, ConnectUrl, SessionModel, Store};
use serde::Deserialize;
use tower_sessions::{Expiry, Session, SessionManagerLayer, SessionStore};

const NAME: &str = "name";
const VISITS: &str = "visits";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://sessions.db".into());
    let port = match std::env::var("PORT") {
        Ok(p) => p
            .parse()
            .map_err(|_| format!("PORT={p:?} is not a port number"))?,
        Err(_) => 3000,
    };

    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        #[cfg(feature = "postgres")]
        return serve(open::<sqlx::PgPool>(&url).await?, port).await;
        #[cfg(not(feature = "postgres"))]
        return Err(
            "DATABASE_URL is PostgreSQL: run with --features tower-sessions,postgres".into(),
        );
    }
    if url.starts_with("mysql:") || url.starts_with("mariadb:") {
        #[cfg(feature = "mysql")]
        return serve(open::<sqlx::MySqlPool>(&url).await?, port).await;
        #[cfg(not(feature = "mysql"))]
        return Err("DATABASE_URL is MySQL: run with --features tower-sessions,mysql".into());
    }
    serve(open::<sqlx::SqlitePool>(&url).await?, port).await
}

/// A store on the database at `url` whose table keeps each session's user, filled from the
/// session's `name`: `auto` adds the `user_id` column and its index to an older table.
pub async fn open<B: ConnectUrl>(url: &str) -> sequelstore::Result<Store<ConnectSession<B>>> {
    let model = ConnectSession::options(B::connect_url(url).await?)
        .user_id(true)
        .auto()
        .await?;
    Ok(Store::with_model(model).with_user_key(NAME))
}

/// Serves the app on any store: the three backends differ only in their store type.
async fn serve<M: SessionModel>(
    store: Store<M>,
    port: u16,
) -> Result<(), Box<dyn std::error::Error>>
where
    Store<M>: SessionStore,
{
    // The store removes expired sessions itself (every 15 minutes unless told otherwise).
    let store = store.with_sweep_interval(Some(Duration::from_secs(60)));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://127.0.0.1:{port}");
    axum::serve(listener, app(store)).await?;
    Ok(())
}

/// The app's routes over `store`, behind tower-sessions' layer.
pub fn app<M: SessionModel>(store: Store<M>) -> Router
where
    Store<M>: SessionStore,
{
    let layer = SessionManagerLayer::new(store.clone())
        // Plain HTTP on localhost; keep the default (Secure cookies) behind HTTPS.
        .with_secure(false)
        .with_expiry(Expiry::OnInactivity(time::Duration::hours(1)));
    Router::new()
        .route("/", get(home::<M>))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/sessions", get(sessions::<M>))
        .route("/sessions/others", post(sign_out_others::<M>))
        .with_state(store)
        .layer(layer)
}

async fn home<M: SessionModel>(
    State(store): State<Store<M>>,
    session: Session,
) -> Result<Html<String>, AppError> {
    let Some(name) = session.get::<String>(NAME).await? else {
        let live = store.length().await?;
        return Ok(page(&format!(
            "<form method=\"post\" action=\"/login\">\
             <label>Your name <input name=\"name\" autofocus></label> \
             <button>Sign in</button></form>\
             <p>Live sessions in the store: {live}</p>"
        )));
    };
    let visits = session.get::<u64>(VISITS).await?.unwrap_or(0) + 1;
    session.insert(VISITS, visits).await?;
    let live = store.length().await?;
    Ok(page(&format!(
        "<p>Signed in as <b>{}</b>.</p>\
         <p>Visits: {visits}</p>\
         <p>Live sessions in the store: {live}</p>\
         <p><a href=\"/sessions\">Your sessions</a></p>\
         <form method=\"post\" action=\"/logout\"><button>Sign out</button></form>",
        escape(&name)
    )))
}

/// Every live session of the signed-in user, this one marked, with a button that signs the
/// others out.
async fn sessions<M: SessionModel>(
    State(store): State<Store<M>>,
    session: Session,
) -> Result<Response, AppError> {
    let (Some(name), Some(current)) = (session.get::<String>(NAME).await?, session.id()) else {
        return Ok(Redirect::to("/").into_response());
    };
    let current = current.to_string();
    let mut rows = String::new();
    for s in store.user_sessions(&name, None, 100).await? {
        let this = if s.sid == current { "this one" } else { "" };
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{this}</td></tr>",
            when(s.created),
            when(s.written),
            when(s.expires)
        ));
    }
    let count = store.count_user_sessions(&name).await?;
    Ok(page(&format!(
        "<p>Signed in as <b>{}</b>: {count} session(s).</p>\
         <table border=\"1\" id=\"sessions\"><tr><th>Signed in</th><th>Last seen</th>\
         <th>Expires</th><th></th></tr>{rows}</table>\
         <form method=\"post\" action=\"/sessions/others\">\
         <button>Sign out the other sessions</button></form>\
         <p><a href=\"/\">Home</a></p>",
        escape(&name)
    ))
    .into_response())
}

/// Signs out every other session of the signed-in user: the recipe after a password change.
async fn sign_out_others<M: SessionModel>(
    State(store): State<Store<M>>,
    session: Session,
) -> Result<Redirect, AppError> {
    if let (Some(name), Some(current)) = (session.get::<String>(NAME).await?, session.id()) {
        store
            .destroy_other_user_sessions(&name, &current.to_string())
            .await?;
    }
    Ok(Redirect::to("/sessions"))
}

/// A time as the page shows it, to the second.
fn when(t: Option<DateTime<Utc>>) -> String {
    t.map_or("-".into(), |t| {
        t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
    })
}

#[derive(Deserialize)]
struct LoginForm {
    name: String,
}

async fn login(session: Session, Form(form): Form<LoginForm>) -> Result<Response, AppError> {
    let name: String = form.name.trim().chars().take(40).collect();
    if name.is_empty() {
        return Ok((
            StatusCode::BAD_REQUEST,
            page("<p>Give a name.</p><p><a href=\"/\">Back</a></p>"),
        )
            .into_response());
    }
    // A new id on sign-in, so that an id planted before it is worth nothing after.
    session.cycle_id().await?;
    session.insert(NAME, name).await?;
    session.insert(VISITS, 0u64).await?;
    Ok(Redirect::to("/").into_response())
}

async fn logout(session: Session) -> Result<Redirect, AppError> {
    session.flush().await?;
    Ok(Redirect::to("/"))
}

fn page(body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>sequelstore + axum</title>\
         </head><body><h1>sequelstore + axum</h1>{body}</body></html>\n"
    ))
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Any failure of the session layer or the store, shown as a 500 page.
struct AppError(String);

impl From<tower_sessions::session::Error> for AppError {
    fn from(err: tower_sessions::session::Error) -> Self {
        AppError(err.to_string())
    }
}

impl From<sequelstore::Error> for AppError {
    fn from(err: sequelstore::Error) -> Self {
        AppError(err.to_string())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        eprintln!("error: {}", self.0);
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            page(&format!("<p>Something went wrong: {}</p>", escape(&self.0))),
        )
            .into_response()
    }
}
