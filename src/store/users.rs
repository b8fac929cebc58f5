//! The per-user calls of a [`Store`]: the user key that fills a session's user column, and
//! listing, counting and destroying a user's sessions.

use serde_json::Value;

use super::Store;
use crate::model::{SessionModel, UserSession, check_sid, check_user_id, no_user_column};
use crate::serializer::SessionData;
use crate::{Error, Result};

/// The most sessions one call of [`Store::user_sessions`] returns: a page.
pub const MAX_USER_PAGE: u32 = 1000;

impl<M: SessionModel> Store<M> {
    /// Fill each session's user column from `key` of its data on every write: a top-level key
    /// (`"user_id"`), or a JSON pointer when it starts with `/` (`"/passport/user"`, where
    /// Passport keeps an Express app's user). The value must be a string or a number; a
    /// session without it (or with `null`) belongs to no user. A string that is itself the
    /// JSON text of a string (`"\"alice\""`, as actix-session stores every value) counts as
    /// that string. The framework adapters need
    /// nothing more: whatever the application stores under the key lands in the column.
    ///
    /// The model must keep users ([`Capabilities::user_id`](crate::Capabilities::user_id));
    /// where it does not, every write fails with [`Error::Unsupported`] saying so.
    pub fn with_user_key(mut self, key: impl Into<String>) -> Self {
        let key = key.into();
        if !self.user_ids {
            tracing::error!(
                key,
                "with_user_key on a model that keeps no user id (its Capabilities::user_id is \
                 false): every write will fail; give the model a user column"
            );
        }
        self.user_key = Some(key.into());
        self
    }

    /// The user key in force ([`Store::with_user_key`]).
    pub fn user_key(&self) -> Option<&str> {
        self.user_key.as_deref()
    }

    /// The user `data` belongs to, read from the user key; `None` without a key or a user.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the value under the key is not a string or a number, or
    /// is an empty or oversized id; [`Error::Unsupported`] when the model keeps no users.
    pub(super) fn user_of(&self, sid: &str, data: &SessionData) -> Result<Option<String>> {
        let Some(key) = self.user_key.as_deref() else {
            return Ok(None);
        };
        if !self.user_ids {
            return Err(no_user_column(std::any::type_name::<M>()));
        }
        let value = lookup(data, key);
        let user = match value {
            None | Some(Value::Null) => return Ok(None),
            // actix-session keeps each value as its JSON text: `"\"alice\""` is alice.
            Some(Value::String(s)) => quoted(s).unwrap_or_else(|| s.clone()),
            Some(Value::Number(n)) => n.to_string(),
            Some(other) => {
                return Err(Error::InvalidInput(format!(
                    "session {}: the user key {key:?} holds {}, where a user id (a string or a \
                     number) is needed",
                    crate::redact(sid),
                    kind(other)
                )));
            }
        };
        check_user_id(&user).map_err(|err| match err {
            Error::InvalidInput(m) => Error::InvalidInput(format!(
                "session {}: under the user key {key:?}: {m}",
                crate::redact(sid)
            )),
            other => other,
        })?;
        Ok(Some(user))
    }

    /// The live sessions of user `user`, in the order of their ids, at most `limit` (and at
    /// most [`MAX_USER_PAGE`]) of them, starting after the id `after`: pass the last id of a
    /// page to get the next. Each has its creation time, last write and expiry; which of them
    /// is the request's own, compare with its id.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an empty or oversized user id; [`Error::Unsupported`] when
    /// the model keeps no users; the model's error.
    pub async fn user_sessions(
        &self,
        user: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<UserSession>> {
        self.ensure_sweeper();
        check_user_id(user)?;
        if let Some(after) = after {
            check_sid(after, self.max_sid_len)?;
        }
        let now = self.now();
        let limit = limit.min(MAX_USER_PAGE);
        let mut found = self
            .call(|| self.model.list_for_user(user, now, after, limit))
            .await?;
        found.retain(|s| s.expires.is_none_or(|e| e > now));
        Ok(found)
    }

    /// How many live sessions user `user` has.
    ///
    /// # Errors
    /// As [`Store::user_sessions`].
    pub async fn count_user_sessions(&self, user: &str) -> Result<u64> {
        self.ensure_sweeper();
        check_user_id(user)?;
        let now = self.now();
        self.call(|| self.model.count_for_user(user, now)).await
    }

    /// Deletes every session of user `user` ("sign out everywhere") and returns how many
    /// went.
    ///
    /// # Errors
    /// As [`Store::user_sessions`].
    pub async fn destroy_user_sessions(&self, user: &str) -> Result<u64> {
        self.ensure_sweeper();
        check_user_id(user)?;
        self.call(|| self.model.destroy_for_user(user, None)).await
    }

    /// Deletes every session of user `user` but `keep` (the request's own: "sign out the
    /// other devices", and what to do after a password change) and returns how many went.
    ///
    /// # Errors
    /// As [`Store::user_sessions`], and [`Error::InvalidInput`] for a bad `keep`.
    pub async fn destroy_other_user_sessions(&self, user: &str, keep: &str) -> Result<u64> {
        self.ensure_sweeper();
        check_user_id(user)?;
        check_sid(keep, self.max_sid_len)?;
        self.call(|| self.model.destroy_for_user(user, Some(keep)))
            .await
    }
}

/// The value under `key` of `data`: a top-level key, or a JSON pointer (RFC 6901) when it
/// starts with `/`.
fn lookup<'a>(data: &'a SessionData, key: &str) -> Option<&'a Value> {
    let Some(pointer) = key.strip_prefix('/') else {
        return data.get(key);
    };
    let mut parts = pointer
        .split('/')
        .map(|part| part.replace("~1", "/").replace("~0", "~"));
    let mut value = data.get(&parts.next()?)?;
    for part in parts {
        value = match value {
            Value::Object(map) => map.get(&part)?,
            Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value)
}

/// The string whose JSON text `s` is, when `s` is one (`"alice"` in quotes): the form in
/// which actix-session stores a string.
fn quoted(s: &str) -> Option<String> {
    if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        serde_json::from_str(s).ok()
    } else {
        None
    }
}

/// What a JSON value is, for a message.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::MemoryModel;

    fn data(value: Value) -> SessionData {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("the tests pass objects"),
        }
    }

    fn store() -> Store<MemoryModel> {
        Store::with_model(MemoryModel::new())
            .with_sweep_interval(None)
            .with_user_key("user")
    }

    #[tokio::test]
    async fn the_user_key_fills_the_user_of_each_write() {
        let store = store();
        store
            .set("a", &data(json!({"user": "ann"})), None)
            .await
            .unwrap();
        store
            .set("b", &data(json!({"user": 42})), None)
            .await
            .unwrap();
        store
            .set("c", &data(json!({"user": null})), None)
            .await
            .unwrap();
        store
            .set("d", &data(json!({"other": "ann"})), None)
            .await
            .unwrap();
        store
            .create("e", &data(json!({"user": "ann"})), None)
            .await
            .unwrap();
        assert_eq!(store.count_user_sessions("ann").await.unwrap(), 2);
        assert_eq!(store.count_user_sessions("42").await.unwrap(), 1);
        assert!(
            store
                .update("a", &data(json!({"user": "bob"})), None)
                .await
                .unwrap()
        );
        assert_eq!(store.count_user_sessions("ann").await.unwrap(), 1);
        assert_eq!(store.count_user_sessions("bob").await.unwrap(), 1);
        assert_eq!(store.user_key(), Some("user"));
    }

    #[tokio::test]
    async fn a_pointer_reaches_into_the_data() {
        let store = store().with_user_key("/passport/user");
        let passport = data(json!({"passport": {"user": "ann"}, "user": "not this"}));
        store.set("a", &passport, None).await.unwrap();
        let listed = data(json!({"passport": {"user": ["x", 7]}}));
        let arrays = store.clone().with_user_key("/passport/user/1");
        arrays.set("b", &listed, None).await.unwrap();
        let escaped = store.clone().with_user_key("/a~1b/c~0d");
        escaped
            .set("c", &data(json!({"a/b": {"c~d": "eve"}})), None)
            .await
            .unwrap();
        store
            .set("d", &data(json!({"passport": "flat"})), None)
            .await
            .unwrap();
        assert_eq!(store.count_user_sessions("ann").await.unwrap(), 1);
        assert_eq!(store.count_user_sessions("not this").await.unwrap(), 0);
        assert_eq!(store.count_user_sessions("7").await.unwrap(), 1);
        assert_eq!(store.count_user_sessions("eve").await.unwrap(), 1);
        assert_eq!(store.length().await.unwrap(), 4, "d has no user");
    }

    #[tokio::test]
    async fn a_user_that_is_not_an_id_is_refused_and_nothing_is_written() {
        const SID: &str = "a-secret-session-id";
        let store = store();
        store
            .set(SID, &data(json!({"user": "ann"})), None)
            .await
            .unwrap();
        let long = "u".repeat(crate::model::MAX_USER_ID_LEN + 1);
        for (bad, says) in [
            (json!({"user": true}), "a boolean"),
            (json!({"user": ["ann"]}), "an array"),
            (json!({"user": {"id": 1}}), "an object"),
            (json!({"user": ""}), "empty"),
            (json!({"user": long}), "at most 255"),
        ] {
            let err = store.set(SID, &data(bad), None).await.unwrap_err();
            assert!(
                matches!(&err, Error::InvalidInput(m) if m.contains(says) && m.contains("user key")),
                "{err}"
            );
            assert!(!err.to_string().contains(SID), "{err}");
        }
        let kept = store.get(SID).await.unwrap().unwrap();
        assert_eq!(kept.data["user"], "ann", "the stored session is untouched");
        assert_eq!(store.count_user_sessions("ann").await.unwrap(), 1);
    }

    #[tokio::test]
    async fn bad_arguments_are_refused_before_the_model() {
        let store = store();
        for err in [
            store.user_sessions("", None, 10).await.unwrap_err(),
            store.user_sessions("ann", Some(""), 10).await.unwrap_err(),
            store.count_user_sessions("").await.unwrap_err(),
            store.destroy_user_sessions("").await.unwrap_err(),
            store
                .destroy_other_user_sessions("ann", "")
                .await
                .unwrap_err(),
            store
                .destroy_other_user_sessions("", "a")
                .await
                .unwrap_err(),
        ] {
            assert!(matches!(err, Error::InvalidInput(_)), "{err}");
        }
    }

    #[tokio::test]
    async fn a_page_is_at_most_the_maximum() {
        let store = store();
        let n = MAX_USER_PAGE + 5;
        for i in 0..n {
            let sid = format!("s{i:05}");
            store
                .set(&sid, &data(json!({"user": "ann"})), None)
                .await
                .unwrap();
        }
        let page = store.user_sessions("ann", None, u32::MAX).await.unwrap();
        assert_eq!(page.len(), MAX_USER_PAGE as usize);
        let last = page.last().map(|s| s.sid.clone()).unwrap();
        let rest = store.user_sessions("ann", Some(&last), 100).await.unwrap();
        assert_eq!(rest.len(), 5);
        assert_eq!(
            store.count_user_sessions("ann").await.unwrap(),
            u64::from(n)
        );
        assert_eq!(
            store
                .destroy_other_user_sessions("ann", &last)
                .await
                .unwrap(),
            u64::from(n - 1)
        );
        assert_eq!(store.destroy_user_sessions("ann").await.unwrap(), 1);
    }

    #[test]
    fn a_string_holding_a_json_string_is_that_string() {
        assert_eq!(quoted("\"alice\""), Some("alice".to_owned()));
        assert_eq!(quoted("\"a\\\"b\""), Some("a\"b".to_owned()));
        for plain in ["alice", "42", "\"", "\"open", "close\"", "\"a\"b\"", ""] {
            assert_eq!(quoted(plain), None, "{plain}");
        }
    }

    #[tokio::test]
    async fn an_expired_session_from_the_model_is_never_listed() {
        let now = chrono::Utc::now();
        let mut mock = crate::model::mock_model();
        mock.expect_list_for_user().returning(move |_, now, _, _| {
            let at = |s: i64| Some(now + chrono::TimeDelta::seconds(s));
            Ok(vec![
                UserSession::new("gone", None, None, at(-1)),
                UserSession::new("edge", None, None, at(0)),
                UserSession::new("live", None, None, at(1)),
                UserSession::new("forever", None, None, None),
            ])
        });
        #[derive(Debug)]
        struct At(chrono::DateTime<chrono::Utc>);
        impl crate::clock::Clock for At {
            fn now(&self) -> chrono::DateTime<chrono::Utc> {
                self.0
            }
        }
        let store = Store::with_model(mock)
            .with_sweep_interval(None)
            .with_clock(At(crate::time::to_millis(now)));
        let listed = store.user_sessions("ann", None, 10).await.unwrap();
        let ids: Vec<&str> = listed.iter().map(|s| s.sid.as_str()).collect();
        assert_eq!(ids, ["live", "forever"]);
    }

    #[tokio::test]
    async fn a_user_key_on_a_model_without_users_fails_every_write_saying_why() {
        let mut mock = crate::model::mock_model();
        mock.expect_save().never();
        let store = Store::with_model(mock)
            .with_sweep_interval(None)
            .with_retries(0)
            .with_user_key("user");
        let err = store
            .set("a", &data(json!({"user": "ann"})), None)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Unsupported(m) if m.contains("Capabilities::user_id")),
            "{err}"
        );
    }
}
