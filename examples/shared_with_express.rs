//! Run with: cargo run --example shared_with_express --features express
//!
//! The axum half of the shared-session example; the Express half is examples/express/server.js.
//! Both use the `ConnectSessions` table in `shared.db` (in the folder the Rust app runs from;
//! the Express app finds it at `../../shared.db`) and the `connect.sid` cookie signed with the
//! same secret (`SESSION_SECRETS`, comma-separated, the first signs; "change me" by default).
//!
//! ```text
//! (cd examples/express && npm ci && node server.js) &   # Express on http://127.0.0.1:3001
//! cargo run --example shared_with_express --features express   # axum on http://127.0.0.1:3000
//! curl -c jar -b jar -d name=ann http://127.0.0.1:3001/login   # sign in on Express...
//! curl -c jar -b jar http://127.0.0.1:3000/                    # ...and axum knows ann
//! ```
//!
//! Cookies belong to a host, not a port, so a browser sends the one cookie to both. Signing in
//! or out on either side is seen by the other; the visit counter is shared too.

use std::time::Duration;

use axum::Router;
use axum::extract::Form;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use sequelstore::integration::express::{ExpressSession, ExpressSessionLayer, SameSite};
use sequelstore::sqlx::SqlitePool;
use sequelstore::{ConnectSession, ConnectUrl, SqliteStore, Store};
use serde::Deserialize;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // WAL, synchronous=NORMAL and a busy timeout, as the store opens SQLite files itself.
    let pool = SqlitePool::connect_url("sqlite://shared.db").await?;
    // The table Sequelize makes for the ConnectSession model; made here if Express has not yet.
    let model = match ConnectSession::discover_table(pool.clone(), "ConnectSessions").await {
        Ok(model) => model,
        Err(sequelstore::Error::TableNotFound { .. }) => {
            ConnectSession::auto_table(pool, "ConnectSessions").await?
        }
        Err(err) => return Err(err.into()),
    };
    let store: SqliteStore = Store::with_model(model)
        .with_ttl(Duration::from_secs(3600))
        .with_touch_after(Duration::from_secs(60));
    let secrets: Vec<String> = std::env::var("SESSION_SECRETS")
        .unwrap_or_else(|_| "change me".into())
        .split(',')
        .map(str::to_owned)
        .collect();
    let sessions = ExpressSessionLayer::new(store, &secrets[0])?
        .with_secrets(&secrets)?
        .with_max_age(Duration::from_secs(3600))
        .with_same_site(SameSite::Lax);

    let app = Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .layer(sessions);
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("axum on http://127.0.0.1:{port}");
    axum::serve(listener, app).await?;
    Ok(())
}

fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' | '<' | '>' | '"' | '\'' => format!("&#{};", c as u32),
            c => c.to_string(),
        })
        .collect()
}

async fn home(session: ExpressSession) -> Response {
    let user: Option<String> = session.get("user").ok().flatten();
    match user {
        Some(user) => {
            let visits = session.get::<u64>("visits").ok().flatten().unwrap_or(0) + 1;
            if session.insert("visits", visits).is_err() {
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
            Html(format!(
                "<h1>axum</h1><p>Signed in as {}, visit {visits}.</p>\
                 <form method=\"post\" action=\"/logout\"><button>Sign out</button></form>",
                escape(&user)
            ))
            .into_response()
        }
        None => Html(
            "<h1>axum</h1><p>Not signed in.</p><form method=\"post\" action=\"/login\">\
             <input name=\"name\" placeholder=\"any name\"><button>Sign in</button></form>",
        )
        .into_response(),
    }
}

#[derive(Deserialize)]
struct Login {
    name: String,
}

async fn login(session: ExpressSession, Form(form): Form<Login>) -> Response {
    let name = form.name.trim();
    if name.is_empty() {
        return (StatusCode::BAD_REQUEST, "a name, please").into_response();
    }
    // A new id on sign-in, as express-session's regenerate does.
    session.regenerate();
    if session.insert("user", name).is_err() || session.insert("visits", 0).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    Redirect::to("/").into_response()
}

async fn logout(session: ExpressSession) -> Redirect {
    session.destroy();
    Redirect::to("/")
}
