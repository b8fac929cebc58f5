//! [`Store`] as an actix-session [`SessionStore`]: actix-web sessions kept in SQL.
//!
//! Every `Store<M>` is a `SessionStore` for actix-session 0.11, whatever its model: pass it to
//! [`SessionMiddleware`](actix_session::SessionMiddleware) as it is.
//!
//! ```no_run
//! # #[cfg(feature = "sqlite")]
//! #[actix_web::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     use actix_session::{Session, SessionMiddleware};
//!     use actix_web::{App, HttpServer, cookie::Key, web};
//!     use sequelstore::SqliteStore;
//!
//!     let store = SqliteStore::connect("sqlite://sessions.db").await?;
//!     // Read the key from your configuration: a new one each start logs everybody out.
//!     let key = Key::generate();
//!     HttpServer::new(move || {
//!         App::new()
//!             .wrap(SessionMiddleware::new(store.clone(), key.clone()))
//!             .route("/", web::get().to(|session: Session| async move {
//!                 let visits = session.get::<u64>("visits").ok().flatten().unwrap_or(0) + 1;
//!                 session.insert("visits", visits).ok();
//!                 format!("visit {visits}")
//!             }))
//!     })
//!     .bind(("127.0.0.1", 8080))?
//!     .run()
//!     .await?;
//!     Ok(())
//! }
//! # #[cfg(not(feature = "sqlite"))]
//! # fn main() {}
//! ```
//!
//! # What it guarantees
//!
//! - **Keys**: a new session gets a key of 64 random alphanumeric characters from actix-session's
//!   own generator (a CSPRNG seeded from the operating system), inserted with [`Store::create`],
//!   which never overwrites: on the (astronomically unlikely) clash another key is drawn.
//! - **Expiry**: the ttl actix-session passes becomes an explicit expiry, `now + ttl` on the
//!   store's clock, so the store's own [`Store::with_ttl`] does not apply to these sessions. A
//!   session past its expiry is never loaded, whether or not the sweeper has removed it yet.
//! - **No resurrection**: an update writes only a session that is still there
//!   ([`Store::update`]). When a session was deleted (signed out, renewed, expired) while a slower
//!   request held it, that request's changes are dropped and its cookie names no session, so
//!   the next request starts a fresh one. (actix-session's Redis store instead saves such changes
//!   under a new key, which would sign the user back in with the old data.)
//! - **Keep-alive**: [`update_ttl`](SessionStore::update_ttl) slides the expiry with
//!   [`Store::touch`], so [`Store::with_touch_after`] throttles those writes.
//! - **Bad cookies**: a key the store cannot hold (empty, or longer than the `sid` column) names
//!   no session; the middleware starts a fresh one instead of failing the request.
//!
//! # Stored form
//!
//! actix-session hands over its state as a map of JSON-encoded strings. The `data` column holds
//! it as a JSON object of those strings, e.g. `{"user":"\"alice\"","visits":"3"}`. Reading a row
//! written by another client, a value that is not a string is passed to actix-session as its
//! JSON text, so `{"visits":3}` reads as `visits = 3`.
//!
//! # Errors
//!
//! A database failure becomes [`LoadError::Other`], [`SaveError::Other`] or
//! [`UpdateError::Other`] (actix-session answers 500 and logs it); a stored session that does
//! not decode becomes [`LoadError::Deserialization`], which actix-session answers with an empty
//! session under the same key. Error messages never contain the session key.

use std::collections::HashMap;

use actix_session::storage::{
    LoadError, SaveError, SessionKey, SessionStore, UpdateError, generate_session_key,
};
use actix_web::cookie::time::Duration;
use serde_json::Value;

use crate::{Error, SessionData, SessionModel, Store};

/// actix-session's session state: value strings are JSON-encoded by actix-session.
type SessionState = HashMap<String, String>;

impl<M: SessionModel> SessionStore for Store<M> {
    /// The live session `session_key`; `None` when it is missing, expired or not a key the
    /// store could hold.
    async fn load(&self, session_key: &SessionKey) -> Result<Option<SessionState>, LoadError> {
        match self.get(session_key.as_ref()).await {
            Ok(session) => Ok(session.map(|s| to_state(s.data))),
            // An empty or overlong key names no session: a fresh one, not an error page.
            Err(Error::InvalidInput(_)) => Ok(None),
            Err(err @ Error::Decode { .. }) => Err(LoadError::Deserialization(redacted(
                err,
                session_key.as_ref(),
                "the stored session does not decode",
            ))),
            Err(err) => Err(LoadError::Other(redacted(
                err,
                session_key.as_ref(),
                "loading the session from the store failed",
            ))),
        }
    }

    /// Inserts `session_state` as a new session under a fresh random key, expiring after `ttl`.
    async fn save(
        &self,
        session_state: SessionState,
        ttl: &Duration,
    ) -> Result<SessionKey, SaveError> {
        let data = to_data(session_state);
        let expires = self.expiry_after(std_duration(ttl));
        let fresh_key = || Ok(String::from(generate_session_key()));
        match self
            .create_with_fresh_id(fresh_key, &data, Some(expires))
            .await
        {
            Ok(key) => SessionKey::try_from(key).map_err(|e| {
                SaveError::Other(anyhow::anyhow!(e).context("a generated session key was refused"))
            }),
            // The message shows the key shortened; the key itself is not in the chain.
            Err(err @ Error::Encode { .. }) => Err(SaveError::Serialization(
                anyhow::Error::new(err).context("the session does not serialize"),
            )),
            Err(err) => Err(SaveError::Other(
                anyhow::Error::new(err).context("saving a new session failed"),
            )),
        }
    }

    /// Replaces the data of live session `session_key` and slides its expiry to `now + ttl`.
    ///
    /// A session that is gone (deleted by a concurrent sign-out or renewal, or expired) stays
    /// gone: nothing is written and the same key is returned, which names no session, so the
    /// client's next request starts a fresh one.
    async fn update(
        &self,
        session_key: SessionKey,
        session_state: SessionState,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let data = to_data(session_state);
        let expires = self.expiry_after(std_duration(ttl));
        // The inherent, update-only `Store::update`, not this trait method.
        match Store::update(self, session_key.as_ref(), &data, Some(expires)).await {
            Ok(true) => Ok(session_key),
            Ok(false) => {
                tracing::debug!(
                    "session was deleted or expired while this request held it; its changes are dropped"
                );
                Ok(session_key)
            }
            Err(err @ Error::Encode { .. }) => Err(UpdateError::Serialization(redacted(
                err,
                session_key.as_ref(),
                "the session does not serialize",
            ))),
            Err(err) => Err(UpdateError::Other(redacted(
                err,
                session_key.as_ref(),
                "updating the session failed",
            ))),
        }
    }

    /// Slides the expiry of live session `session_key` to `now + ttl` ([`Store::touch`]); a
    /// missing or expired session is left alone.
    async fn update_ttl(&self, session_key: &SessionKey, ttl: &Duration) -> anyhow::Result<()> {
        let expires = self.expiry_after(std_duration(ttl));
        match self.touch(session_key.as_ref(), Some(expires)).await {
            Ok(_) | Err(Error::InvalidInput(_)) => Ok(()),
            Err(err) => Err(redacted(
                err,
                session_key.as_ref(),
                "extending the session's expiry failed",
            )),
        }
    }

    /// Deletes session `session_key`; deleting a missing session is not an error.
    async fn delete(&self, session_key: &SessionKey) -> anyhow::Result<()> {
        match self.destroy(session_key.as_ref()).await {
            Ok(_) | Err(Error::InvalidInput(_)) => Ok(()),
            Err(err) => Err(redacted(
                err,
                session_key.as_ref(),
                "deleting the session failed",
            )),
        }
    }
}

/// `err` as an anyhow error under `context`, without the session key in any of its messages.
///
/// Some of the store's errors name the session id, which is the secret the cookie carries, and
/// actix-session logs what it is given. When `key` appears in the error's chain, the chain is
/// flattened into one message with the key replaced; otherwise `err` is kept as it is, so it
/// can still be downcast. Keys shorter than 16 characters are not ones this adapter issues and
/// are left alone, so that a one-letter cookie does not garble the message.
fn redacted(err: Error, key: &str, context: &'static str) -> anyhow::Error {
    let mut chain = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(e) = source {
        chain.push_str(": ");
        chain.push_str(&e.to_string());
        source = e.source();
    }
    if key.len() >= 16 && chain.contains(key) {
        anyhow::anyhow!(chain.replace(key, "[session key]")).context(context)
    } else {
        anyhow::Error::new(err).context(context)
    }
}

/// actix-session's state as stored data: a JSON object of the same strings.
fn to_data(state: SessionState) -> SessionData {
    state
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect()
}

/// Stored data as actix-session's state: strings as they are, any other value as its JSON text
/// (what actix-session would have stored for it).
fn to_state(data: SessionData) -> SessionState {
    data.into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k, v)
        })
        .collect()
}

/// actix-session's ttl as a `std` duration: zero (a session that is already expired) for a ttl
/// of zero or less.
fn std_duration(ttl: &Duration) -> std::time::Duration {
    std::time::Duration::try_from(*ttl).unwrap_or(std::time::Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_convert_to_std_durations() {
        assert_eq!(
            std_duration(&Duration::milliseconds(90_500)),
            std::time::Duration::from_millis(90_500)
        );
        assert_eq!(
            std_duration(&Duration::MAX).as_secs(),
            Duration::MAX.whole_seconds().unsigned_abs()
        );
    }

    #[test]
    fn a_non_positive_ttl_is_zero() {
        for ttl in [Duration::ZERO, Duration::seconds(-5), Duration::MIN] {
            assert_eq!(std_duration(&ttl), std::time::Duration::ZERO);
        }
    }

    #[test]
    fn errors_never_show_the_session_key() {
        let key = "k".repeat(64);
        let err = Error::Decode {
            sid: key.clone(),
            column: "data",
            source: "expected value at line 1 column 1".into(),
        };
        let err = redacted(err, &key, "ctx");
        let shown = format!("{err:?} {err:#}");
        assert!(!shown.contains(&key), "{shown}");
        assert!(shown.contains("column 1"), "{shown}");

        // An error whose text holds the key whole (a model of the user's own, say) is
        // flattened with the key replaced.
        let err = Error::InvalidInput(format!("no session {key} here"));
        let shown = format!("{:#}", redacted(err, &key, "ctx"));
        assert!(
            !shown.contains(&key) && shown.contains("[session key]"),
            "{shown}"
        );

        let err = Error::InvalidInput("nothing secret".into());
        let kept = redacted(err, &key, "ctx");
        assert!(matches!(
            kept.downcast_ref::<Error>(),
            Some(Error::InvalidInput(_))
        ));
    }

    #[test]
    fn state_round_trips_as_an_object_of_strings() {
        let state: SessionState = [
            ("user".to_owned(), "\"alice\"".to_owned()),
            ("visits".to_owned(), "3".to_owned()),
        ]
        .into();
        let data = to_data(state.clone());
        assert_eq!(
            Value::Object(data.clone()),
            serde_json::json!({"user": "\"alice\"", "visits": "3"})
        );
        assert_eq!(to_state(data), state);
    }

    #[test]
    fn non_string_values_read_as_their_json_text() {
        let serde_json::Value::Object(data) =
            serde_json::json!({"visits": 3, "tags": ["a"], "user": "\"bob\""})
        else {
            unreachable!("json! of an object is an object")
        };
        let state = to_state(data);
        assert_eq!(state["visits"], "3");
        assert_eq!(state["tags"], "[\"a\"]");
        assert_eq!(state["user"], "\"bob\"");
    }
}
