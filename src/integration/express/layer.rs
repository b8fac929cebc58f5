//! [`ExpressSessionLayer`] and the service it wraps around an application: what a request does
//! to its session, from the cookie it brings to the `Set-Cookie` it gets.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderValue, Request, Response, StatusCode, header};
use serde_json::Value;
use tower_layer::Layer;
use tower_service::Service;

use super::cookie::{Config, SameSite, cookie_value, is_attribute_value, is_cookie_name};
use super::session::{ExpressSession, State};
use super::signature::unsign_cookie;
use super::{COOKIE_KEY, DEFAULT_COOKIE_NAME};
use crate::serializer::ExpressJson;
use crate::{Error, Result, SessionData, SessionModel, Store};

/// `secrets` as the layer keeps them, when there is at least one and none is empty.
fn checked_secrets<S: AsRef<[u8]>>(secrets: impl IntoIterator<Item = S>) -> Result<Vec<Vec<u8>>> {
    let secrets: Vec<Vec<u8>> = secrets.into_iter().map(|s| s.as_ref().to_vec()).collect();
    if secrets.is_empty() {
        return Err(Error::InvalidInput(
            "ExpressSessionLayer needs at least one secret: the Express app's `secret`".into(),
        ));
    }
    if let Some(n) = secrets.iter().position(Vec::is_empty) {
        return Err(Error::InvalidInput(format!(
            "secret {} of {} is empty; express-session refuses an empty secret, and a cookie \
             signed with the empty key is one anybody can make: use the Express app's `secret`",
            n + 1,
            secrets.len()
        )));
    }
    Ok(secrets)
}

/// Random bytes in a session id: express-session's `uid(24)`.
const SID_BYTES: usize = 24;

/// A tower [`Layer`] that gives each request the express-session session named by its signed
/// cookie, as an [`ExpressSession`], and stores it after the response; see the
/// [module docs](super).
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
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an empty secret, which express-session refuses too: a cookie
    /// signed with the empty key is one anybody can make.
    pub fn new(store: Store<M>, secret: impl AsRef<[u8]>) -> Result<Self> {
        let secrets = checked_secrets([secret])?;
        Ok(ExpressSessionLayer {
            store: store.with_serializer(ExpressJson),
            config: Arc::new(Config {
                secrets,
                name: DEFAULT_COOKIE_NAME.to_owned(),
                path: "/".to_owned(),
                domain: None,
                http_only: true,
                secure: false,
                same_site: None,
                max_age: None,
                rolling: false,
            }),
        })
    }

    /// All the secrets, as express-session's `secret` array: the first signs new cookies, a
    /// signature under any of them is accepted. Rotate by putting the new secret first and
    /// keeping the old ones until their cookies have expired.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an empty list or an empty secret in it.
    pub fn with_secrets<S: AsRef<[u8]>>(
        mut self,
        secrets: impl IntoIterator<Item = S>,
    ) -> Result<Self> {
        self.config_mut().secrets = checked_secrets(secrets)?;
        Ok(self)
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
/// [module docs](super).
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
            let id = store
                .create_with_fresh_id(fresh_sid, &data, Some(expires))
                .await?;
            Ok(config.set_cookie(&id, Some(expires)))
        }
        None if state.doomed.is_some() => Ok(config.clear_cookie()),
        None => Ok(None),
    }
}

/// A fresh session id as express-session makes them: 24 random bytes from the operating
/// system, base64url without padding.
fn fresh_sid() -> Result<String> {
    let mut bytes = [0u8; SID_BYTES];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::backend(format!("no random bytes for a session id: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn an_empty_secret_is_refused() {
        assert!(checked_secrets(["a", "b"]).is_ok());
        for bad in [vec![""], vec!["a", ""], vec![]] {
            let err = checked_secrets(bad.clone()).unwrap_err();
            assert!(matches!(err, Error::InvalidInput(_)), "{bad:?}: {err}");
        }
    }
}
