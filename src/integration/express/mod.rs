//! One session cookie for an Express app and a Rust app behind the same domain: a tower
//! [`Layer`](tower_layer::Layer) (usable from axum) that reads and writes express-session's signed `connect.sid`
//! cookie over a [`Store`](crate::Store), so that a user signed in on one side is signed in on the other while
//! an application moves from Express to Rust.
//!
//! # The cookie
//!
//! express-session (1.19, with cookie-signature 1.0 and cookie 0.7) sends
//! `connect.sid=s%3A<sid>.<signature>`: `s:` + the session id + `.` + the base64 (standard
//! alphabet, no padding) HMAC-SHA256 of the id under the first secret, URL-encoded as
//! `encodeURIComponent` does. It accepts a signature under any of its secrets, so a secret is
//! rotated by putting the new one first and keeping the old ones after it. The layer does the
//! same: [`ExpressSessionLayer::with_secrets`] takes the same list in the same order. The cookie
//! is read encoded (`s%3A…`) or raw (`s:…`); when the `Cookie` header holds the name twice, the
//! first wins, as in Express. [`sign`], [`unsign`], [`sign_cookie`] and [`unsign_cookie`] are the
//! same algorithm for other tools and tests.
//!
//! # What a request does
//!
//! | the request | the layer |
//! |---|---|
//! | carries a cookie signed by one of the secrets, for a live session | loads it with [`Store::get_and_touch`](crate::Store::get_and_touch) (the store's touch throttle applies) and hands it to the handler |
//! | carries no cookie, an unsigned or tampered one, or one for an unknown or expired session | hands the handler a new, empty session; never an error page |
//! | a new session stays empty | nothing is stored and no cookie is sent (express-session's `saveUninitialized: false`) |
//! | a new session got data | it is inserted under a fresh id (24 random bytes, base64url: 32 characters, as express-session's), never overwriting a row; the signed cookie is set |
//! | a loaded session was changed | it is written back only if it is still stored ([`Store::update`](crate::Store::update)): a request that finishes after a sign-out does not sign the user back in |
//! | a loaded session is unchanged | nothing more: it was touched when loaded |
//! | the handler called [`ExpressSession::destroy`] | the row is deleted and the cookie cleared |
//! | the store fails (not a bad cookie: the database) | `500 Internal Server Error` with an empty body, logged |
//!
//! For a loaded session the cookie is sent again when [`ExpressSessionLayer::with_rolling`] is
//! on, or when the session changed and the cookie has a max-age, as express-session does.
//!
//! # The stored data
//!
//! Rows are written through the store, so its serializer, `max_data_len` and ttl apply. The
//! layer works on a copy of the store set to the `ExpressJson` serializer: a JSON object whose
//! first key is a `cookie` object, which express-session needs in every session it loads.
//! Handlers do not see that `cookie` key: the layer keeps the one it loaded (so attributes
//! Express put there survive) and writes it back, and gives a new session one built from the
//! layer's cookie attributes. The `expires` column is the truth for expiry on both sides.
//! A row's expiry is now + the cookie's max-age when one is set, else now + the store's ttl.
//!
//! # Examples
//!
//! ```
//! use axum::{Router, routing::get};
//! use sequelstore::SqliteStore;
//! use sequelstore::integration::express::{ExpressSession, ExpressSessionLayer};
//!
//! async fn counter(session: ExpressSession) -> String {
//!     let n: u64 = session.get("n").ok().flatten().unwrap_or(0) + 1;
//!     match session.insert("n", n) {
//!         Ok(_) => format!("visit {n}"),
//!         Err(err) => format!("session error: {err}"),
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let file = std::env::temp_dir().join(format!("sequelstore-express-doc-{}.db", std::process::id()));
//! # let url = format!("sqlite://{}", file.display());
//! // The table the Express app's connect-session-sequelize store uses.
//! let store = SqliteStore::connect(&url).await?;
//! // The Express app's `secret` list, in the same order: the first signs, any verifies.
//! let sessions = ExpressSessionLayer::new(store, "keyboard cat")?
//!     .with_secrets(["keyboard cat", "the secret before it"])?
//!     .with_max_age(std::time::Duration::from_secs(24 * 3600));
//! let app: Router = Router::new().route("/", get(counter)).layer(sessions);
//! # use tower::ServiceExt;
//! # let res = app.oneshot(axum::http::Request::new(axum::body::Body::empty())).await?;
//! # assert!(res.headers()["set-cookie"].to_str()?.starts_with("connect.sid=s%3A"));
//! # let _ = std::fs::remove_file(&file);
//! // axum::serve(tokio::net::TcpListener::bind("127.0.0.1:3000").await?, app).await?;
//! # Ok(())
//! # }
//! ```
//!
//! Without axum, the handle is in the request's extensions:
//! `req.extensions().get::<ExpressSession>()`.

mod cookie;
mod layer;
mod session;
mod signature;

pub use cookie::SameSite;
pub use layer::{ExpressSessionLayer, ExpressSessionService};
pub use session::ExpressSession;
pub use signature::{sign, sign_cookie, unsign, unsign_cookie};

/// express-session's cookie name unless told otherwise.
pub const DEFAULT_COOKIE_NAME: &str = "connect.sid";

/// The key of express-session's own cookie object in a stored session.
const COOKIE_KEY: &str = "cookie";
