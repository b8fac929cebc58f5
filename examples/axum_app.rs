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
//! curl -c jar -b jar -X POST http://127.0.0.1:3000/logout         # sign out
//! ```
//!
//! Sessions expire after an hour without a visit; the store's own task removes expired rows
//! every minute.

use std::time::Duration;

use axum::Router;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use sequelstore::{SessionModel, SqliteStore, Store};
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
        return serve(sequelstore::PgStore::connect(&url).await?, port).await;
        #[cfg(not(feature = "postgres"))]
        return Err(
            "DATABASE_URL is PostgreSQL: run with --features tower-sessions,postgres".into(),
        );
    }
    if url.starts_with("mysql:") || url.starts_with("mariadb:") {
        #[cfg(feature = "mysql")]
        return serve(sequelstore::MySqlStore::connect(&url).await?, port).await;
        #[cfg(not(feature = "mysql"))]
        return Err("DATABASE_URL is MySQL: run with --features tower-sessions,mysql".into());
    }
    serve(SqliteStore::connect(&url).await?, port).await
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
    let sessions = SessionManagerLayer::new(store.clone())
        // Plain HTTP on localhost; keep the default (Secure cookies) behind HTTPS.
        .with_secure(false)
        .with_expiry(Expiry::OnInactivity(time::Duration::hours(1)));
    let app = Router::new()
        .route("/", get(home::<M>))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .with_state(store)
        .layer(sessions);

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://127.0.0.1:{port}");
    axum::serve(listener, app).await?;
    Ok(())
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
         <form method=\"post\" action=\"/logout\"><button>Sign out</button></form>",
        escape(&name)
    )))
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
