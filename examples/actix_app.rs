//! Run with: cargo run --example actix_app --features actix-session
//!
//! A small actix-web app whose sessions live in SQL: the SQLite file `sessions.db` by default,
//! or the database at `DATABASE_URL` (`postgres://...` with `--features actix-session,postgres`,
//! `mysql://...` with `--features actix-session,mysql`). Listens on 127.0.0.1:8080; `PORT`
//! overrides. Plain HTML, usable from curl:
//!
//! ```text
//! curl -c jar -b jar -d name=alice http://127.0.0.1:8080/login   # sign in
//! curl -c jar -b jar http://127.0.0.1:8080/                      # visit counter, live sessions
//! curl -c jar -b jar -X POST http://127.0.0.1:8080/logout         # sign out
//! ```

use std::time::Duration;

use actix_session::config::PersistentSession;
use actix_session::{Session, SessionMiddleware};
use actix_web::cookie::{Key, time};
use actix_web::http::header;
use actix_web::{App, HttpResponse, HttpServer, web};
use sequelstore::{SessionModel, SqliteStore, Store};
use serde::Deserialize;

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://sessions.db".into());
    let port = match std::env::var("PORT") {
        Ok(p) => p
            .parse()
            .map_err(|_| format!("PORT={p:?} is not a port number"))?,
        Err(_) => 8080,
    };

    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        #[cfg(feature = "postgres")]
        return serve(sequelstore::PgStore::connect(&url).await?, port).await;
        #[cfg(not(feature = "postgres"))]
        return Err(
            "DATABASE_URL is PostgreSQL: run with --features actix-session,postgres".into(),
        );
    }
    if url.starts_with("mysql:") || url.starts_with("mariadb:") {
        #[cfg(feature = "mysql")]
        return serve(sequelstore::MySqlStore::connect(&url).await?, port).await;
        #[cfg(not(feature = "mysql"))]
        return Err("DATABASE_URL is MySQL: run with --features actix-session,mysql".into());
    }
    serve(SqliteStore::connect(&url).await?, port).await
}

async fn serve<M: SessionModel>(
    store: Store<M>,
    port: u16,
) -> Result<(), Box<dyn std::error::Error>> {
    // Sweep expired sessions every minute (the default is every 15), so the count on the page
    // visibly drops once sessions expire.
    let store = store.with_sweep_interval(Some(Duration::from_secs(60)));
    // A real app reads its key from configuration; a new key on each start signs everybody out.
    let key = Key::generate();
    println!("listening on http://127.0.0.1:{port}/");

    let data = web::Data::new(store.clone());
    HttpServer::new(move || {
        let sessions = SessionMiddleware::builder(store.clone(), key.clone())
            // Plain HTTP for this demo; keep secure cookies (the default) behind HTTPS.
            .cookie_secure(false)
            .session_lifecycle(PersistentSession::default().session_ttl(time::Duration::hours(1)))
            .build();
        App::new()
            .app_data(data.clone())
            .wrap(sessions)
            .route("/", web::get().to(home::<M>))
            .route("/login", web::post().to(login))
            .route("/logout", web::post().to(logout))
    })
    .bind(("127.0.0.1", port))?
    .run()
    .await?;
    Ok(())
}

/// The visit counter for a signed-in user, the sign-in form otherwise; both show how many live
/// sessions the store holds.
async fn home<M: SessionModel>(
    session: Session,
    store: web::Data<Store<M>>,
) -> actix_web::Result<HttpResponse> {
    let user = session.get::<String>("user").ok().flatten();
    let body = match user {
        Some(user) => {
            let visits = session.get::<u64>("visits").ok().flatten().unwrap_or(0) + 1;
            session.insert("visits", visits)?;
            format!(
                "<p>Hello, {}. This is visit {visits} of this session.</p>\n\
                 <form method=\"post\" action=\"/logout\"><button>Sign out</button></form>\n",
                escape(&user)
            )
        }
        None => "<p>You are not signed in.</p>\n\
                 <form method=\"post\" action=\"/login\">\
                 <input name=\"name\" placeholder=\"any name\"> <button>Sign in</button></form>\n"
            .to_owned(),
    };
    let live = store.length().await.map_err(|err| {
        eprintln!("counting sessions failed: {err}");
        actix_web::error::ErrorInternalServerError("the session store is unavailable")
    })?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!doctype html>\n<title>sessions</title>\n{body}<p>Live sessions in the store: {live}</p>\n"
        )))
}

#[derive(Deserialize)]
struct SignIn {
    name: String,
}

/// Signs in under any non-empty name, with a new session key (no session fixation).
async fn login(session: Session, form: web::Form<SignIn>) -> actix_web::Result<HttpResponse> {
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Ok(HttpResponse::BadRequest()
            .content_type("text/plain; charset=utf-8")
            .body("name must be 1 to 64 characters\n"));
    }
    session.renew();
    session.insert("user", name)?;
    session.insert("visits", 0u64)?;
    Ok(see_home())
}

/// Signs out: the session is deleted from the store and the cookie removed.
async fn logout(session: Session) -> HttpResponse {
    session.purge();
    see_home()
}

fn see_home() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/"))
        .finish()
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
