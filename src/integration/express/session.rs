//! [`ExpressSession`]: the handle a handler gets to its request's session, and its axum
//! extractor.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum_core::extract::FromRequestParts;
use chrono::{DateTime, Utc};
use http::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::COOKIE_KEY;
use crate::{Error, Result, SessionData};

/// What a request does to its session.
#[derive(Debug, Clone, Default)]
pub(super) struct State {
    /// The stored session this request works on; `None` for a new one.
    pub(super) id: Option<String>,
    /// A stored session to delete after the response (destroyed, regenerated, or an old id).
    pub(super) doomed: Option<String>,
    /// express-session's cookie object as loaded.
    pub(super) cookie: Option<Value>,
    /// The data as the handler leaves it, without the cookie object.
    pub(super) data: SessionData,
    /// The data as loaded: a session whose data still equals it is not written.
    pub(super) original: SessionData,
    /// The stored expiry after the touch on load.
    pub(super) expires: Option<DateTime<Utc>>,
}

/// The session of one request, put in the request's extensions by [`ExpressSessionLayer`](super::ExpressSessionLayer) and
/// extracted in axum handlers by type. Clones share the session. What the handler leaves in
/// it when the response is made is stored; changes made after that are not.
///
/// The key `cookie` belongs to express-session's cookie object, which the layer keeps out of
/// the data: [`ExpressSession::insert`] refuses it.
#[derive(Clone)]
pub struct ExpressSession(pub(super) Arc<Mutex<State>>);

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
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
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

/// Takes the session [`ExpressSessionLayer`](super::ExpressSessionLayer) put in the request.
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
    use serde_json::json;

    use super::*;

    #[test]
    fn whole_ids_and_values_stay_out_of_debug_output() {
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
