//! One session cookie for an Express app and a Rust app behind the same domain: a tower
//! [`Layer`] (usable from axum) that reads and writes express-session's signed `connect.sid`
//! cookie over a [`Store`], so that a user signed in on one side is signed in on the other while
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
//! | carries a cookie signed by one of the secrets, for a live session | loads it with [`Store::get_and_touch`] (the store's touch throttle applies) and hands it to the handler |
//! | carries no cookie, an unsigned or tampered one, or one for an unknown or expired session | hands the handler a new, empty session; never an error page |
//! | a new session stays empty | nothing is stored and no cookie is sent (express-session's `saveUninitialized: false`) |
//! | a new session got data | it is inserted under a fresh id (24 random bytes, base64url: 32 characters, as express-session's), never overwriting a row; the signed cookie is set |
//! | a loaded session was changed | it is written back only if it is still stored ([`Store::update`]): a request that finishes after a sign-out does not sign the user back in |
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
//! let sessions = ExpressSessionLayer::new(store, "keyboard cat")
//!     .with_secrets(["keyboard cat", "the secret before it"])
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

use std::fmt::{self, Write as _};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum_core::extract::FromRequestParts;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::Sha256;
use tower_layer::Layer;
use tower_service::Service;

use crate::serializer::ExpressJson;
use crate::{Created, Error, Result, SessionData, SessionModel, Store};

/// express-session's cookie name unless told otherwise.
pub const DEFAULT_COOKIE_NAME: &str = "connect.sid";

/// The key of express-session's own cookie object in a stored session.
const COOKIE_KEY: &str = "cookie";

/// Random bytes in a session id: express-session's `uid(24)`.
const SID_BYTES: usize = 24;

/// How many fresh ids are drawn for a new session before giving up; a collision of two random
/// 192-bit ids does not happen, so this only turns a broken model into an error.
const MAX_CREATE_ATTEMPTS: usize = 8;

type HmacSha256 = Hmac<Sha256>;

// ---------------------------------------------------------------------------------------------
// The signature

/// cookie-signature's `sign`: `value` + `.` + the base64 (standard alphabet, padding removed)
/// HMAC-SHA256 of `value` under `secret`. A string secret is its UTF-8 bytes, as in Node.
///
/// # Examples
///
/// ```
/// use sequelstore::integration::express::sign;
/// assert_eq!(
///     sign("hello", "tobiiscool"),
///     "hello.DGDUkGlIkCzPz+C0B064FNgHdEjox7ch8tOBGslZ5QI"
/// );
/// ```
pub fn sign(value: &str, secret: impl AsRef<[u8]>) -> String {
    let tag = keyed(secret.as_ref(), value).finalize().into_bytes();
    format!("{value}.{}", STANDARD_NO_PAD.encode(tag))
}

/// cookie-signature's `unsign`, over a list of secrets as express-session tries them: the value
/// before the last `.` when what follows is its signature under any of `secrets`, else `None`.
/// The signature is compared in constant time.
///
/// # Examples
///
/// ```
/// use sequelstore::integration::express::unsign;
/// let signed = "hello.DGDUkGlIkCzPz+C0B064FNgHdEjox7ch8tOBGslZ5QI";
/// assert_eq!(unsign(signed, &["new", "tobiiscool"]).as_deref(), Some("hello"));
/// assert_eq!(unsign(signed, &["luna"]), None);
/// ```
pub fn unsign<S: AsRef<[u8]>>(signed: &str, secrets: &[S]) -> Option<String> {
    let (value, signature) = signed.rsplit_once('.')?;
    // Canonical base64 without padding only (the decoder refuses `=` and stray trailing bits),
    // so a signature verifies exactly when its text equals the one cookie-signature computes.
    let tag = STANDARD_NO_PAD.decode(signature).ok()?;
    secrets
        .iter()
        .any(|secret| keyed(secret.as_ref(), value).verify_slice(&tag).is_ok())
        .then(|| value.to_owned())
}

/// The value express-session puts in its cookie for session `sid`: `s:` + [`sign`], URL-encoded
/// as the `cookie` module does (`s%3A…`).
///
/// # Examples
///
/// ```
/// use sequelstore::integration::express::sign_cookie;
/// assert_eq!(
///     sign_cookie("a.b.c", "keyboard cat"),
///     "s%3Aa.b.c.G8ReS2HiYVtvMBGFvZUGp5RaCauWFLUTjnnTm%2FEQ2aE"
/// );
/// ```
pub fn sign_cookie(sid: &str, secret: impl AsRef<[u8]>) -> String {
    encode_uri_component(&format!("s:{}", sign(sid, secret)))
}

/// The session id in express-session's cookie value `value` (as sent, URL-encoded or not),
/// when it is signed (`s:`) by one of `secrets`; `None` for an unsigned or tampered value.
///
/// # Examples
///
/// ```
/// use sequelstore::integration::express::unsign_cookie;
/// let wire = "s%3Aa.b.c.G8ReS2HiYVtvMBGFvZUGp5RaCauWFLUTjnnTm%2FEQ2aE";
/// assert_eq!(unsign_cookie(wire, &["keyboard cat"]).as_deref(), Some("a.b.c"));
/// let raw = "s:a.b.c.G8ReS2HiYVtvMBGFvZUGp5RaCauWFLUTjnnTm/EQ2aE";
/// assert_eq!(unsign_cookie(raw, &["keyboard cat"]).as_deref(), Some("a.b.c"));
/// assert_eq!(unsign_cookie("a.b.c", &["keyboard cat"]), None);
/// ```
pub fn unsign_cookie<S: AsRef<[u8]>>(value: &str, secrets: &[S]) -> Option<String> {
    let decoded = decode_uri_component(value);
    unsign(decoded.strip_prefix("s:")?, secrets)
}

fn keyed(secret: &[u8], value: &str) -> HmacSha256 {
    let mut mac =
        <HmacSha256 as Mac>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(value.as_bytes());
    mac
}

/// JavaScript's `encodeURIComponent`.
fn encode_uri_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The `cookie` module's decoding: `decodeURIComponent` when there is a `%`, and the text as it
/// is when that fails (a bad escape, or bytes that are not UTF-8).
fn decode_uri_component(text: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    fn decode(text: &str) -> Option<String> {
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            if b == b'%' {
                let hi = hex(*bytes.get(i + 1)?)?;
                let lo = hex(*bytes.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            } else {
                out.push(b);
                i += 1;
            }
        }
        String::from_utf8(out).ok()
    }
    if text.contains('%') {
        decode(text).unwrap_or_else(|| text.to_owned())
    } else {
        text.to_owned()
    }
}

/// The value of the first cookie called `name` in the request's `Cookie` headers, as the
/// `cookie` module's `parse` finds it: pairs split at `;`, blanks and tabs trimmed, one pair of
/// surrounding double quotes removed, the first occurrence of a name kept.
fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().find_map(|line| {
        let line = String::from_utf8_lossy(line.as_bytes());
        line.split(';').find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            if key.trim_matches([' ', '\t']) != name {
                return None;
            }
            let value = value.trim_matches([' ', '\t']);
            let unquoted = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            Some(unquoted.to_owned())
        })
    })
}

/// A fresh session id as express-session makes them: 24 random bytes from the operating
/// system, base64url without padding.
fn fresh_sid() -> Result<String> {
    let mut bytes = [0u8; SID_BYTES];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::backend(format!("no random bytes for a session id: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

// ---------------------------------------------------------------------------------------------
// Configuration

/// The cookie's `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// `SameSite=Strict`.
    Strict,
    /// `SameSite=Lax`.
    Lax,
    /// `SameSite=None` (browsers require `Secure` with it).
    None,
}

impl SameSite {
    fn as_str(self) -> &'static str {
        match self {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        }
    }
}

#[derive(Clone)]
struct Config {
    secrets: Vec<Vec<u8>>,
    name: String,
    path: String,
    domain: Option<String>,
    http_only: bool,
    secure: bool,
    same_site: Option<SameSite>,
    max_age: Option<Duration>,
    rolling: bool,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("secrets", &format_args!("[{} hidden]", self.secrets.len()))
            .field("name", &self.name)
            .field("path", &self.path)
            .field("domain", &self.domain)
            .field("http_only", &self.http_only)
            .field("secure", &self.secure)
            .field("same_site", &self.same_site)
            .field("max_age", &self.max_age)
            .field("rolling", &self.rolling)
            .finish()
    }
}

impl Config {
    /// The expiry of a row written now: now + max-age when the cookie has one, else the
    /// store's ttl.
    fn row_expiry<M: SessionModel>(&self, store: &Store<M>) -> DateTime<Utc> {
        let by_cookie = self
            .max_age
            .map(|age| crate::store::later_by(store.now(), crate::store::delta(age)));
        store.expiry(by_cookie)
    }

    /// express-session's cookie object for a session made here; `ExpressJson` fills in
    /// `originalMaxAge` and `expires` when it writes the row.
    fn cookie_object(&self) -> Value {
        let mut cookie = SessionData::new();
        cookie.insert("originalMaxAge".into(), Value::Null);
        cookie.insert("expires".into(), Value::Null);
        if self.secure {
            cookie.insert("secure".into(), Value::Bool(true));
        }
        cookie.insert("httpOnly".into(), Value::Bool(self.http_only));
        if let Some(domain) = &self.domain {
            cookie.insert("domain".into(), json!(domain));
        }
        cookie.insert("path".into(), json!(self.path));
        if let Some(same_site) = self.same_site {
            cookie.insert(
                "sameSite".into(),
                json!(same_site.as_str().to_ascii_lowercase()),
            );
        }
        Value::Object(cookie)
    }

    /// `Set-Cookie` for session `sid`, attributes in the order express-session writes them.
    fn set_cookie(&self, sid: &str, expires: Option<DateTime<Utc>>) -> Option<HeaderValue> {
        let value = sign_cookie(sid, self.secrets.first()?);
        self.header(&value, expires.filter(|_| self.max_age.is_some()))
    }

    /// `Set-Cookie` that removes the cookie, as Express's `res.clearCookie` does.
    fn clear_cookie(&self) -> Option<HeaderValue> {
        self.header("", Some(DateTime::<Utc>::UNIX_EPOCH))
    }

    fn header(&self, value: &str, expires: Option<DateTime<Utc>>) -> Option<HeaderValue> {
        let mut line = format!("{}={value}", self.name);
        if let Some(domain) = &self.domain {
            let _ = write!(line, "; Domain={domain}");
        }
        let _ = write!(line, "; Path={}", self.path);
        if let Some(t) = expires {
            let _ = write!(line, "; Expires={}", t.format("%a, %d %b %Y %H:%M:%S GMT"));
        }
        if self.http_only {
            line.push_str("; HttpOnly");
        }
        if self.secure {
            line.push_str("; Secure");
        }
        if let Some(same_site) = self.same_site {
            let _ = write!(line, "; SameSite={}", same_site.as_str());
        }
        match HeaderValue::from_str(&line) {
            Ok(value) => Some(value),
            Err(err) => {
                tracing::error!(error = %err, "the session cookie is not a valid header; not sent");
                None
            }
        }
    }
}

/// A cookie name as the `cookie` module accepts it: an RFC 7230 token.
fn is_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// An attribute value that cannot break the `Set-Cookie` line: visible ASCII and blanks, no `;`.
fn is_attribute_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b';')
}

// ---------------------------------------------------------------------------------------------
// The layer

/// A tower [`Layer`] that gives each request the express-session session named by its signed
/// cookie, as an [`ExpressSession`], and stores it after the response; see the
/// [module docs](self).
///
/// Defaults are express-session's: cookie `connect.sid`, `Path=/`, `HttpOnly`, no `Secure`, no
/// `SameSite`, no max-age (a browser-session cookie; the row lives for the store's ttl), not
/// rolling.
///
/// Unlike express-session, the layer does not skip requests outside the cookie's path: put it
/// on the routes the cookie covers.
pub struct ExpressSessionLayer<M> {
    store: Store<M>,
    config: Arc<Config>,
}

impl<M> Clone for ExpressSessionLayer<M> {
    fn clone(&self) -> Self {
        ExpressSessionLayer {
            store: self.store.clone(),
            config: Arc::clone(&self.config),
        }
    }
}

impl<M> fmt::Debug for ExpressSessionLayer<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExpressSessionLayer")
            .field("store", &self.store)
            .field("config", &self.config)
            .finish()
    }
}

impl<M: SessionModel> ExpressSessionLayer<M> {
    /// A layer over `store` signing cookies with `secret` (the Express app's `secret`).
    /// It writes through a copy of `store` set to the `ExpressJson` serializer, so that the
    /// rows carry the `cookie` object express-session needs; the store's other settings (ttl,
    /// touch throttle, size limit, clock) stay as they are.
    pub fn new(store: Store<M>, secret: impl AsRef<[u8]>) -> Self {
        ExpressSessionLayer {
            store: store.with_serializer(ExpressJson),
            config: Arc::new(Config {
                secrets: vec![secret.as_ref().to_vec()],
                name: DEFAULT_COOKIE_NAME.to_owned(),
                path: "/".to_owned(),
                domain: None,
                http_only: true,
                secure: false,
                same_site: None,
                max_age: None,
                rolling: false,
            }),
        }
    }

    /// All the secrets, as express-session's `secret` array: the first signs new cookies, a
    /// signature under any of them is accepted. Rotate by putting the new secret first and
    /// keeping the old ones until their cookies have expired. An empty list changes nothing.
    pub fn with_secrets<S: AsRef<[u8]>>(mut self, secrets: impl IntoIterator<Item = S>) -> Self {
        let secrets: Vec<Vec<u8>> = secrets.into_iter().map(|s| s.as_ref().to_vec()).collect();
        if secrets.is_empty() {
            tracing::warn!(
                "ExpressSessionLayer::with_secrets got no secret; keeping the ones it had"
            );
        } else {
            self.config_mut().secrets = secrets;
        }
        self
    }

    /// The cookie's name (express-session's `name`); `connect.sid` by default. A name that is
    /// not a cookie token (letters, digits and ``!#$%&'*+-.^_`|~``) is refused with a warning
    /// and the previous name kept.
    pub fn with_cookie_name(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        if is_cookie_name(&name) {
            self.config_mut().name = name;
        } else {
            tracing::warn!(name = %name, "not a valid cookie name; keeping the previous one");
        }
        self
    }

    /// The cookie's `Path`; `/` by default. A path with `;` or control characters is refused
    /// with a warning and the previous one kept.
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        if is_attribute_value(&path) && !path.is_empty() {
            self.config_mut().path = path;
        } else {
            tracing::warn!(path = %path, "not a valid cookie path; keeping the previous one");
        }
        self
    }

    /// The cookie's `Domain`; none by default (the cookie goes to the host that set it). A
    /// domain with `;` or control characters is refused with a warning.
    pub fn with_domain(mut self, domain: impl Into<String>) -> Self {
        let domain = domain.into();
        if is_attribute_value(&domain) && !domain.is_empty() {
            self.config_mut().domain = Some(domain);
        } else {
            tracing::warn!(domain = %domain, "not a valid cookie domain; ignored");
        }
        self
    }

    /// Whether the cookie is `HttpOnly`; yes by default.
    pub fn with_http_only(mut self, http_only: bool) -> Self {
        self.config_mut().http_only = http_only;
        self
    }

    /// Whether the cookie is `Secure` (sent over HTTPS only); no by default. Unlike
    /// express-session, the layer sets the cookie even on a request that came over plain HTTP:
    /// behind a proxy it cannot tell.
    pub fn with_secure(mut self, secure: bool) -> Self {
        self.config_mut().secure = secure;
        self
    }

    /// The cookie's `SameSite`; none by default.
    pub fn with_same_site(mut self, same_site: SameSite) -> Self {
        self.config_mut().same_site = Some(same_site);
        self
    }

    /// The cookie's max-age (express-session's `cookie.maxAge`): the cookie gets `Expires` and
    /// each row expires this long after it is written or touched. Without it (the default) the
    /// cookie lasts for the browser session and rows for the store's ttl.
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.config_mut().max_age = Some(max_age);
        self
    }

    /// Send the cookie on every response for a session, with its expiry renewed
    /// (express-session's `rolling`); off by default.
    pub fn with_rolling(mut self, rolling: bool) -> Self {
        self.config_mut().rolling = rolling;
        self
    }

    /// The store the layer writes through (set to `ExpressJson`).
    pub fn store(&self) -> &Store<M> {
        &self.store
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }
}

impl<S, M> Layer<S> for ExpressSessionLayer<M> {
    type Service = ExpressSessionService<S, M>;

    fn layer(&self, inner: S) -> Self::Service {
        ExpressSessionService {
            inner,
            store: self.store.clone(),
            config: Arc::clone(&self.config),
        }
    }
}

/// The service [`ExpressSessionLayer`] wraps around the application; see the
/// [module docs](self).
pub struct ExpressSessionService<S, M> {
    inner: S,
    store: Store<M>,
    config: Arc<Config>,
}

impl<S: Clone, M> Clone for ExpressSessionService<S, M> {
    fn clone(&self) -> Self {
        ExpressSessionService {
            inner: self.inner.clone(),
            store: self.store.clone(),
            config: Arc::clone(&self.config),
        }
    }
}

impl<S: fmt::Debug, M> fmt::Debug for ExpressSessionService<S, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExpressSessionService")
            .field("inner", &self.inner)
            .field("store", &self.store)
            .field("config", &self.config)
            .finish()
    }
}

impl<S, M, ReqBody, ResBody> Service<Request<ReqBody>> for ExpressSessionService<S, M>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    M: SessionModel,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        // The clone that was polled ready is the one to call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let store = self.store.clone();
        let config = Arc::clone(&self.config);
        Box::pin(async move {
            let sid = cookie_value(req.headers(), &config.name)
                .and_then(|value| unsign_cookie(&value, &config.secrets));
            let state = match load(&store, &config, sid).await {
                Ok(state) => state,
                Err(err) => {
                    tracing::error!(error = %err, "session could not be loaded");
                    return Ok(internal_error());
                }
            };
            let session = ExpressSession(Arc::new(Mutex::new(state)));
            req.extensions_mut().insert(session.clone());
            let mut res = inner.call(req).await?;
            match finish(&store, &config, &session).await {
                Ok(Some(cookie)) => {
                    res.headers_mut().append(header::SET_COOKIE, cookie);
                }
                Ok(None) => {}
                Err(err) => {
                    tracing::error!(error = %err, "session could not be saved");
                    return Ok(internal_error());
                }
            }
            Ok(res)
        })
    }
}

fn internal_error<B: Default>() -> Response<B> {
    let mut res = Response::new(B::default());
    *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    res
}

/// The session the cookie names, or a new one when it names none that is live.
async fn load<M: SessionModel>(
    store: &Store<M>,
    config: &Config,
    sid: Option<String>,
) -> Result<State> {
    let Some(sid) = sid else {
        return Ok(State::default());
    };
    match store
        .get_and_touch(&sid, Some(config.row_expiry(store)))
        .await
    {
        Ok(Some(session)) => {
            let mut data = session.data;
            let cookie = data.remove(COOKIE_KEY);
            Ok(State {
                id: Some(session.id),
                doomed: None,
                cookie,
                original: data.clone(),
                data,
                expires: session.expires,
            })
        }
        Ok(None) => Ok(State::default()),
        // An id the store refuses (too long) or a row it cannot read: start afresh rather than
        // fail every request this browser makes until the cookie expires.
        Err(err @ (Error::InvalidInput(_) | Error::Decode { .. })) => {
            tracing::warn!(error = %err, "session cookie names an unusable session; starting a new one");
            Ok(State::default())
        }
        Err(err) => Err(err),
    }
}

/// Stores what the handler did and returns the `Set-Cookie` to send, if any.
async fn finish<M: SessionModel>(
    store: &Store<M>,
    config: &Config,
    session: &ExpressSession,
) -> Result<Option<HeaderValue>> {
    let state = session.lock().clone();
    if let Some(old) = &state.doomed {
        store.destroy(old).await?;
    }
    let changed = state.data != state.original;
    let payload = |cookie: Option<Value>| {
        let mut out = SessionData::new();
        out.insert(
            COOKIE_KEY.to_owned(),
            cookie.unwrap_or_else(|| config.cookie_object()),
        );
        out.extend(state.data.clone());
        out
    };
    match state.id {
        Some(id) if changed => {
            let expires = config.row_expiry(store);
            if !store
                .update(&id, &payload(state.cookie.clone()), Some(expires))
                .await?
            {
                tracing::debug!("session was destroyed or expired meanwhile; not saving it back");
                return Ok(None);
            }
            Ok((config.rolling || config.max_age.is_some())
                .then(|| config.set_cookie(&id, Some(expires)))
                .flatten())
        }
        Some(id) => Ok(config
            .rolling
            .then(|| config.set_cookie(&id, state.expires))
            .flatten()),
        None if !state.data.is_empty() => {
            let expires = config.row_expiry(store);
            let data = payload(state.cookie.clone());
            for _ in 0..MAX_CREATE_ATTEMPTS {
                let id = fresh_sid()?;
                match store.create(&id, &data, Some(expires)).await? {
                    Created::Inserted => return Ok(config.set_cookie(&id, Some(expires))),
                    Created::AlreadyExists => {
                        tracing::debug!("session id collision on create; drawing a new id");
                    }
                }
            }
            Err(Error::backend(format!(
                "every one of {MAX_CREATE_ATTEMPTS} fresh session ids was reported as taken; \
                 the session model's create is not honouring its contract"
            )))
        }
        None if state.doomed.is_some() => Ok(config.clear_cookie()),
        None => Ok(None),
    }
}

// ---------------------------------------------------------------------------------------------
// The handle

/// What a request does to its session.
#[derive(Debug, Clone, Default)]
struct State {
    /// The stored session this request works on; `None` for a new one.
    id: Option<String>,
    /// A stored session to delete after the response (destroyed, regenerated, or an old id).
    doomed: Option<String>,
    /// express-session's cookie object as loaded.
    cookie: Option<Value>,
    /// The data as the handler leaves it, without the cookie object.
    data: SessionData,
    /// The data as loaded: a session whose data still equals it is not written.
    original: SessionData,
    /// The stored expiry after the touch on load.
    expires: Option<DateTime<Utc>>,
}

/// The session of one request, put in the request's extensions by [`ExpressSessionLayer`] and
/// extracted in axum handlers by type. Clones share the session. What the handler leaves in
/// it when the response is made is stored; changes made after that are not.
///
/// The key `cookie` belongs to express-session's cookie object, which the layer keeps out of
/// the data: [`ExpressSession::insert`] refuses it.
#[derive(Clone)]
pub struct ExpressSession(Arc<Mutex<State>>);

/// Shows the id shortened (it is what the cookie carries) and the keys, not the values.
impl fmt::Debug for ExpressSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("ExpressSession")
            .field("id", &state.id.as_deref().map(crate::redact))
            .field("keys", &state.data.keys().collect::<Vec<_>>())
            .field("destroying", &state.doomed.as_deref().map(crate::redact))
            .finish()
    }
}

impl ExpressSession {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The session's id: the id of the stored session this request loaded, or `None` for a
    /// new session, which gets its id when it is stored after the response.
    pub fn id(&self) -> Option<String> {
        self.lock().id.clone()
    }

    /// The value under `key` as a `T`; `Ok(None)` when there is none.
    ///
    /// # Errors
    /// The value is not a `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, serde_json::Error> {
        self.get_value(key).map(serde_json::from_value).transpose()
    }

    /// The JSON value under `key`.
    pub fn get_value(&self, key: &str) -> Option<Value> {
        self.lock().data.get(key).cloned()
    }

    /// Puts `value` under `key` and returns the value that was there.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for the key `cookie` (express-session's own); [`Error::Encode`]
    /// when `value` does not serialize to JSON.
    pub fn insert<T: Serialize>(&self, key: &str, value: T) -> Result<Option<Value>> {
        if key == COOKIE_KEY {
            return Err(Error::InvalidInput(
                "the session key `cookie` holds express-session's cookie object; \
                 store the value under another key"
                    .into(),
            ));
        }
        let value = serde_json::to_value(value).map_err(|e| Error::Encode {
            sid: self.id().unwrap_or_default(),
            source: Box::new(e),
        })?;
        Ok(self.lock().data.insert(key.to_owned(), value))
    }

    /// Removes the value under `key` and returns it.
    pub fn remove(&self, key: &str) -> Option<Value> {
        self.lock().data.remove(key)
    }

    /// Removes every value; the session (and its cookie) stays.
    pub fn clear(&self) {
        self.lock().data.clear();
    }

    /// A copy of the session's data (without express-session's cookie object).
    pub fn data(&self) -> SessionData {
        self.lock().data.clone()
    }

    /// Whether the session holds no data.
    pub fn is_empty(&self) -> bool {
        self.lock().data.is_empty()
    }

    /// Gives the session a new id and keeps its data: after the response the old row is
    /// deleted and the data stored under a fresh id with a new cookie. Call it when a user
    /// signs in, against session fixation.
    pub fn cycle_id(&self) {
        let mut state = self.lock();
        if let Some(old) = state.id.take() {
            state.doomed = Some(old);
        }
        state.original.clear();
    }

    /// Deletes the session: after the response the row is deleted and the cookie cleared.
    /// Values inserted afterwards start a new session, as after [`ExpressSession::regenerate`].
    pub fn destroy(&self) {
        let mut state = self.lock();
        if let Some(old) = state.id.take() {
            state.doomed = Some(old);
        }
        state.cookie = None;
        state.data.clear();
        state.original.clear();
        state.expires = None;
    }

    /// express-session's `regenerate`: the stored session is deleted and this request goes on
    /// with a new, empty one, stored under a fresh id if it gets data (else the cookie is
    /// cleared).
    pub fn regenerate(&self) {
        self.destroy();
    }
}

/// Takes the session [`ExpressSessionLayer`] put in the request.
impl<S: Send + Sync> FromRequestParts<S> for ExpressSession {
    /// `500 Internal Server Error` when the layer is missing.
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<ExpressSession>().cloned().ok_or((
            StatusCode::INTERNAL_SERVER_ERROR,
            "ExpressSession needs ExpressSessionLayer around this route",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Computed by express-session 1.19.0's dependencies (cookie-signature 1.0.7, cookie 0.7.2)
    // in Node: `cookie.serialize('connect.sid', 's:' + signature.sign(sid, 'keyboard cat'),
    // {path: '/', httpOnly: true, expires: new Date(Date.UTC(2030, 0, 2, 3, 4, 5)),
    // sameSite: 'lax', secure: true, domain: 'example.com'})`.
    const NODE_A: &str = "connect.sid=s%3AzJ1qKbWQ3xVnCX0mVhYlYbW9cQ3xq3bT.Kk39JmnY5c97ym4JYYZfk0jABIwVv0JRt28eOw85Vlo; Domain=example.com; Path=/; Expires=Wed, 02 Jan 2030 03:04:05 GMT; HttpOnly; Secure; SameSite=Lax";
    const NODE_B: &str = "connect.sid=s%3Aa.b.c.G8ReS2HiYVtvMBGFvZUGp5RaCauWFLUTjnnTm%2FEQ2aE; Domain=example.com; Path=/; Expires=Wed, 02 Jan 2030 03:04:05 GMT; HttpOnly; Secure; SameSite=Lax";

    fn config() -> Config {
        Config {
            secrets: vec![b"keyboard cat".to_vec()],
            name: DEFAULT_COOKIE_NAME.into(),
            path: "/".into(),
            domain: Some("example.com".into()),
            http_only: true,
            secure: true,
            same_site: Some(SameSite::Lax),
            max_age: Some(Duration::from_secs(60)),
            rolling: false,
        }
    }

    #[test]
    fn cookie_signature_known_answers() {
        // cookie-signature's own tests.
        assert_eq!(
            sign("hello", "tobiiscool"),
            "hello.DGDUkGlIkCzPz+C0B064FNgHdEjox7ch8tOBGslZ5QI"
        );
        assert_ne!(
            sign("hello", "luna"),
            "hello.DGDUkGlIkCzPz+C0B064FNgHdEjox7ch8tOBGslZ5QI"
        );
        let key = [0xA0, 0xAB, 0xBC, 0x0C];
        assert_eq!(
            sign("hello", key),
            "hello.hIvljrKw5oOZtHHSq5u+MlL27cgnPKX77y7F+x5r1to"
        );
        assert_eq!(
            unsign("hello.hIvljrKw5oOZtHHSq5u+MlL27cgnPKX77y7F+x5r1to", &[key]).as_deref(),
            Some("hello")
        );
        let signed = sign("hello", "tobiiscool");
        assert_eq!(unsign(&signed, &["tobiiscool"]).as_deref(), Some("hello"));
        assert_eq!(unsign(&signed, &["luna"]), None);
    }

    #[test]
    fn malformed_signatures_are_refused_as_cookie_signature_does() {
        let pwd = "actual sekrit password";
        assert_eq!(unsign("fake unsigned data", &[pwd]), None);
        let val = sign("real data", pwd);
        for bad in [
            format!("garbage{val}"),
            format!("garbage.{val}"),
            format!("{val}.garbage"),
            format!("{val}garbage"),
            // cookie-signature compares the whole text: padding makes it another text.
            format!("{val}="),
            String::new(),
            ".".into(),
        ] {
            assert_eq!(unsign(&bad, &[pwd]), None, "{bad}");
        }
        assert_eq!(unsign(&val, &[] as &[&str]), None);
    }

    #[test]
    fn set_cookie_matches_express_byte_for_byte() {
        let expires = DateTime::parse_from_rfc3339("2030-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let c = config();
        let a = c
            .set_cookie("zJ1qKbWQ3xVnCX0mVhYlYbW9cQ3xq3bT", Some(expires))
            .unwrap();
        assert_eq!(a.to_str().unwrap(), NODE_A);
        let b = c.set_cookie("a.b.c", Some(expires)).unwrap();
        assert_eq!(b.to_str().unwrap(), NODE_B);
    }

    #[test]
    fn cookies_are_found_as_the_cookie_module_finds_them() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1;b ; connect.sid = \"s%3Ax\" ; connect.sid=second"),
        );
        assert_eq!(
            cookie_value(&headers, "connect.sid").as_deref(),
            Some("s%3Ax")
        );
        assert_eq!(cookie_value(&headers, "b"), None);
        // A second Cookie header is read after the first.
        headers.append(header::COOKIE, HeaderValue::from_static("other=z"));
        assert_eq!(cookie_value(&headers, "other").as_deref(), Some("z"));
    }

    #[test]
    fn decoding_follows_decode_uri_component_and_falls_back_to_the_text() {
        assert_eq!(decode_uri_component("s%3Aab%2F%2Bc"), "s:ab/+c");
        assert_eq!(decode_uri_component("plain+text"), "plain+text");
        assert_eq!(decode_uri_component("%E2%82%AC"), "€");
        for bad in ["%E0%A4%A", "%", "%zz", "%+1", "%FF"] {
            assert_eq!(decode_uri_component(bad), bad);
        }
        assert_eq!(encode_uri_component("s:a+b/c=é"), "s%3Aa%2Bb%2Fc%3D%C3%A9");
        assert_eq!(encode_uri_component("-_.!~*'()"), "-_.!~*'()");
    }

    #[test]
    fn fresh_ids_look_like_express_sessions() {
        let a = fresh_sid().unwrap();
        let b = fresh_sid().unwrap();
        assert_eq!(a.len(), 32);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_ne!(a, b);
    }

    #[test]
    fn bad_cookie_names_and_attributes_are_refused() {
        assert!(is_cookie_name("connect.sid"));
        assert!(!is_cookie_name(""));
        assert!(!is_cookie_name("a b"));
        assert!(!is_cookie_name("a=b"));
        assert!(!is_cookie_name("a;b"));
        assert!(is_attribute_value("/app path"));
        assert!(!is_attribute_value("/a;b"));
        assert!(!is_attribute_value("/a\nb"));
    }

    #[test]
    fn secrets_and_whole_ids_stay_out_of_debug_output() {
        let text = format!("{:?}", config());
        assert!(!text.contains("keyboard"), "{text}");
        assert!(text.contains("1 hidden"), "{text}");
        let session = ExpressSession(Arc::new(Mutex::new(State {
            id: Some("abcdefghijkl".into()),
            data: SessionData::from_iter([("user".to_string(), json!("ann"))]),
            ..State::default()
        })));
        let text = format!("{session:?}");
        assert!(
            !text.contains("abcdefghijkl") && !text.contains("ann"),
            "{text}"
        );
        assert!(text.contains("user"), "{text}");
    }
}
