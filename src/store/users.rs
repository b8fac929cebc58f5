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
    /// session without it (or with `null`) belongs to no user. The framework adapters need
    /// nothing more: whatever the application stores under the key lands in the column.
    ///
    /// The model must keep users ([`Capabilities::user_id`](crate::Capabilities::user_id):
    /// `ConnectSession::options(pool).user_id(true)`); where it does not, every write fails
    /// with [`Error::Unsupported`] saying so.
    pub fn with_user_key(mut self, key: impl Into<String>) -> Self {
        let key = key.into();
        if !self.user_ids {
            tracing::error!(
                key,
                "with_user_key on a model that keeps no user id: every write will fail; open \
                 the table with ConnectSession::options(pool).user_id(true)"
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
            Some(Value::String(s)) => s.clone(),
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
