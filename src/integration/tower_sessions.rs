//! [`Store`] as a tower-sessions [`SessionStore`] (axum and any tower stack).
//!
//! Every `Store<M>` is a [`SessionStore`] and an [`ExpiredDeletion`]: hand it to
//! `tower_sessions::SessionManagerLayer::new` as it is.
//!
//! | tower-sessions calls | the store does |
//! |---|---|
//! | [`create`](SessionStore::create) (a new session, or a cycled id) | [`Store::create`]: insert only; on an id collision it draws a new [`Id`] and tries again, never overwriting |
//! | [`save`](SessionStore::save) (a changed session that has an id) | [`Store::update`]: a session deleted or expired meanwhile stays gone, so a request finishing after sign-out does not sign the user back in |
//! | [`load`](SessionStore::load) | [`Store::get`]: an expired session is never returned; with [`Store::with_sliding_expiry`], [`Store::get_and_touch`] with no expiry: the expiry slides by the lifetime tower-sessions gave the session at its last save (`Expiry::OnInactivity` is kept) |
//! | [`delete`](SessionStore::delete) | [`Store::destroy`]: one statement |
//! | [`delete_expired`](ExpiredDeletion::delete_expired) | [`Store::sweep`] |
//!
//! The session data is stored as a JSON object in the `data` column (through the store's
//! serializer) and the record's expiry date in `expires`, to the millisecond. The store's own
//! sweeper removes expired rows, so `continuously_delete_expired` is only needed when it
//! is turned off with [`Store::with_sweep_interval`].
//!
//! [`save`](SessionStore::save) writes only a session that is already stored: tower-sessions
//! itself calls [`create`](SessionStore::create) for a session without an id, which is every
//! new one. A session built by hand with `Session::new(Some(id), ..)` for an id the store has
//! never seen is therefore not written by `save`; build it with `None` instead.
//!
//! # Examples
//!
//! ```
//! use axum::{Router, routing::get};
//! use sequelstore::SqliteStore;
//! use tower_sessions::{Expiry, Session, SessionManagerLayer};
//!
//! async fn counter(session: Session) -> String {
//!     let n: u64 = session.get("n").await.ok().flatten().unwrap_or(0) + 1;
//!     match session.insert("n", n).await {
//!         Ok(()) => format!("visit {n}"),
//!         Err(err) => format!("session error: {err}"),
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let file = std::env::temp_dir().join(format!("sequelstore-doc-{}.db", std::process::id()));
//! # let url = format!("sqlite://{}", file.display());
//! // "sqlite://sessions.db" in an application; the table is created when missing.
//! let store = SqliteStore::connect(&url).await?;
//! let sessions = SessionManagerLayer::new(store)
//!     .with_expiry(Expiry::OnInactivity(time::Duration::hours(1)));
//! let app: Router = Router::new().route("/", get(counter)).layer(sessions);
//! # use tower::ServiceExt;
//! # let res = app.oneshot(axum::http::Request::new(axum::body::Body::empty())).await?;
//! # assert!(res.headers().contains_key("set-cookie"));
//! # let _ = std::fs::remove_file(&file);
//! // axum::serve(tokio::net::TcpListener::bind("127.0.0.1:3000").await?, app).await?;
//! # Ok(())
//! # }
//! ```

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use time::{OffsetDateTime, PrimitiveDateTime};
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::session_store::{self, ExpiredDeletion, SessionStore};

use crate::{Error, SessionData, SessionModel, Store};

/// The store as a tower-sessions session store; see the [module docs](self) for what each
/// method does.
#[cfg_attr(docsrs, doc(cfg(feature = "tower-sessions")))]
#[async_trait]
impl<M> SessionStore for Store<M>
where
    M: SessionModel,
    Store<M>: fmt::Debug,
{
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let data = to_session_data(record);
        let expires = to_chrono(record.expiry_date);
        // The id tower-sessions drew first, then fresh ones while the store finds them taken.
        let mut drawn = Some(record.id);
        let mut last = record.id;
        let fresh_id = || {
            last = drawn.take().unwrap_or_default();
            Ok(last.to_string())
        };
        Store::create_with_fresh_id(self, fresh_id, &data, Some(expires)).await?;
        record.id = last;
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let data = to_session_data(record);
        let written = self
            .update(
                &record.id.to_string(),
                &data,
                Some(to_chrono(record.expiry_date)),
            )
            .await?;
        if !written {
            // Deleted (signed out, cycled) or expired since this request loaded it: keep it gone.
            tracing::debug!("session is no longer stored; not saving it back");
        }
        Ok(())
    }

    async fn load(&self, session_id: &Id) -> session_store::Result<Option<Record>> {
        let sid = session_id.to_string();
        let session = match self.sliding_expiry() {
            true => self.get_and_touch(&sid, None).await?,
            false => self.get(&sid).await?,
        };
        let Some(session) = session else {
            return Ok(None);
        };
        // A row without expiry (written by another client) lives as if written now.
        let expires = session.expires.unwrap_or_else(|| self.expiry(None));
        Ok(Some(Record {
            id: *session_id,
            data: session.data.into_iter().collect(),
            expiry_date: to_time(expires),
        }))
    }

    async fn delete(&self, session_id: &Id) -> session_store::Result<()> {
        self.destroy(&session_id.to_string()).await?;
        Ok(())
    }
}

/// Removes expired sessions with [`Store::sweep`], in batches.
#[cfg_attr(docsrs, doc(cfg(feature = "tower-sessions")))]
#[async_trait]
impl<M> ExpiredDeletion for Store<M>
where
    M: SessionModel,
    Store<M>: fmt::Debug,
{
    async fn delete_expired(&self) -> session_store::Result<()> {
        self.sweep().await?;
        Ok(())
    }
}

/// [`Error::Decode`] becomes `Decode`, [`Error::Encode`] becomes `Encode`, everything else
/// `Backend`; the message is the error's text.
#[cfg_attr(docsrs, doc(cfg(feature = "tower-sessions")))]
impl From<Error> for session_store::Error {
    fn from(err: Error) -> Self {
        match &err {
            Error::Decode { .. } => session_store::Error::Decode(err.to_string()),
            Error::Encode { .. } => session_store::Error::Encode(err.to_string()),
            _ => session_store::Error::Backend(err.to_string()),
        }
    }
}

fn to_session_data(record: &Record) -> SessionData {
    record
        .data
        .iter()
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

/// The same instant, to the millisecond (rounded down). Every `OffsetDateTime` is within
/// chrono's range; the fallback only keeps this total.
fn to_chrono(t: OffsetDateTime) -> DateTime<Utc> {
    let millis = t.unix_timestamp_nanos().div_euclid(1_000_000);
    i64::try_from(millis)
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or(if millis < 0 {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        })
}

/// The same instant, clamped to the range of `time` (years -9999 to 9999).
fn to_time(t: DateTime<Utc>) -> OffsetDateTime {
    let nanos = i128::from(t.timestamp_millis()) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or_else(|_| {
        if nanos < 0 {
            PrimitiveDateTime::MIN.assume_utc()
        } else {
            PrimitiveDateTime::MAX.assume_utc()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_convert_to_the_millisecond() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789)
            .expect("a time in range");
        let c = to_chrono(t);
        assert_eq!(c.timestamp_millis(), 1_700_000_000_123);
        assert_eq!(to_time(c).unix_timestamp_nanos(), 1_700_000_000_123_000_000);
        // Before 1970 rounds down too.
        let t = OffsetDateTime::from_unix_timestamp_nanos(-1_500_000).expect("a time in range");
        assert_eq!(to_chrono(t).timestamp_millis(), -2);
    }

    #[test]
    fn times_out_of_range_clamp() {
        assert_eq!(
            to_time(DateTime::<Utc>::MAX_UTC),
            PrimitiveDateTime::MAX.assume_utc()
        );
        assert_eq!(
            to_time(DateTime::<Utc>::MIN_UTC),
            PrimitiveDateTime::MIN.assume_utc()
        );
        assert_eq!(
            to_chrono(PrimitiveDateTime::MAX.assume_utc()).timestamp(),
            PrimitiveDateTime::MAX.assume_utc().unix_timestamp()
        );
    }

    #[test]
    fn errors_map_by_kind() {
        let decode = Error::Decode {
            sid: "s".into(),
            column: "data",
            source: "bad".into(),
        };
        assert!(matches!(
            session_store::Error::from(decode),
            session_store::Error::Decode(m) if m.contains("bad")
        ));
        let encode = Error::Encode {
            sid: "s".into(),
            source: "nope".into(),
        };
        assert!(matches!(
            session_store::Error::from(encode),
            session_store::Error::Encode(m) if m.contains("nope")
        ));
        assert!(matches!(
            session_store::Error::from(Error::InvalidInput("x".into())),
            session_store::Error::Backend(_)
        ));
    }
}
