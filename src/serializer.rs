//! How session data becomes the text in the `data` column, and back: the original package's
//! `transform` option.

use std::fmt::Debug;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::BoxError;

/// The data of one session: a JSON object, as express-session and tower-sessions keep it.
pub type SessionData = serde_json::Map<String, Value>;

/// Turns session data into stored text and back. JSON ([`Json`]) unless the store is given another.
pub trait Serializer: Send + Sync + Debug + 'static {
    /// The text to store for `data`, for a row that expires at `expires`.
    ///
    /// # Errors
    /// Whatever the format cannot represent; the store reports it as `Error::Encode`.
    fn serialize(
        &self,
        data: &SessionData,
        expires: Option<DateTime<Utc>>,
    ) -> Result<String, BoxError>;

    /// The data stored as `text`.
    ///
    /// # Errors
    /// Text that is not in this format; the store reports it as `Error::Decode`.
    fn deserialize(&self, text: &str) -> Result<SessionData, BoxError>;
}

/// Session data as a JSON object: readable by SQL and by any other client.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl Serializer for Json {
    fn serialize(&self, data: &SessionData, _: Option<DateTime<Utc>>) -> Result<String, BoxError> {
        Ok(serde_json::to_string(data)?)
    }

    fn deserialize(&self, text: &str) -> Result<SessionData, BoxError> {
        Ok(serde_json::from_str(text)?)
    }
}

/// Session data as express-session keeps it, for a table shared with an Express app: a JSON
/// object whose first key is a `cookie` object (`originalMaxAge`, `expires`, `httpOnly`,
/// `path`), which express-session needs on every session it loads.
///
/// On write, a `cookie` object already in the data (one Express wrote) is kept, with its
/// `expires` and `originalMaxAge` set to the row's expiry; a session without one gets
/// `{"originalMaxAge": ms, "expires": ISO time, "httpOnly": true, "path": "/"}`. On read the data
/// comes back whole, `cookie` included. The `expires` column stays the truth for expiry.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExpressJson;

impl Serializer for ExpressJson {
    fn serialize(
        &self,
        data: &SessionData,
        expires: Option<DateTime<Utc>>,
    ) -> Result<String, BoxError> {
        let mut cookie = match data.get("cookie") {
            Some(Value::Object(c)) => c.clone(),
            _ => SessionData::from_iter([
                ("originalMaxAge".to_string(), Value::Null),
                ("expires".to_string(), Value::Null),
                ("httpOnly".to_string(), Value::Bool(true)),
                ("path".to_string(), json!("/")),
            ]),
        };
        let (max_age, at) = match expires {
            Some(t) => (
                json!((t - Utc::now()).num_milliseconds().max(0)),
                json!(t.to_rfc3339_opts(SecondsFormat::Millis, true)),
            ),
            None => (Value::Null, Value::Null),
        };
        cookie.insert("originalMaxAge".into(), max_age);
        cookie.insert("expires".into(), at);
        // serde_json keeps keys sorted unless told otherwise; write `cookie` first by hand, as
        // express-session does, then the application's fields.
        let mut out = String::from("{\"cookie\":");
        out.push_str(&serde_json::to_string(&cookie)?);
        for (key, value) in data.iter().filter(|(k, _)| k.as_str() != "cookie") {
            out.push(',');
            out.push_str(&serde_json::to_string(key)?);
            out.push(':');
            out.push_str(&serde_json::to_string(value)?);
        }
        out.push('}');
        Ok(out)
    }

    fn deserialize(&self, text: &str) -> Result<SessionData, BoxError> {
        Ok(serde_json::from_str(text)?)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    #[test]
    fn express_json_puts_a_cookie_first_and_keeps_expresss_own() {
        let expires = Utc::now() + TimeDelta::hours(1);
        let data = SessionData::from_iter([("user".to_string(), json!("ann"))]);
        let text = ExpressJson.serialize(&data, Some(expires)).unwrap();
        assert!(text.starts_with(r#"{"cookie":{"#), "{text}");
        let back = ExpressJson.deserialize(&text).unwrap();
        assert_eq!(back["user"], json!("ann"));
        assert_eq!(back["cookie"]["httpOnly"], json!(true));
        assert_eq!(
            back["cookie"]["expires"],
            json!(expires.to_rfc3339_opts(SecondsFormat::Millis, true))
        );

        let mut from_express = back.clone();
        from_express["cookie"]["sameSite"] = json!("lax");
        let later = expires + TimeDelta::hours(1);
        let text = ExpressJson.serialize(&from_express, Some(later)).unwrap();
        let back = ExpressJson.deserialize(&text).unwrap();
        assert_eq!(back["cookie"]["sameSite"], json!("lax"));
        assert_eq!(
            back["cookie"]["expires"],
            json!(later.to_rfc3339_opts(SecondsFormat::Millis, true))
        );
    }
}
