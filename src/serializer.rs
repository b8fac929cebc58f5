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
    /// The text to store for `data`, for a row written at `now` (the store's clock) that
    /// expires at `expires`.
    ///
    /// # Errors
    /// Whatever the format cannot represent; the store reports it as `Error::Encode`.
    fn serialize(
        &self,
        data: &SessionData,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
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
    fn serialize(
        &self,
        data: &SessionData,
        _expires: DateTime<Utc>,
        _now: DateTime<Utc>,
    ) -> Result<String, BoxError> {
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
/// On write, a `cookie` object already in the data (one Express wrote) is kept as Express made
/// it: its `originalMaxAge` (Express's `cookie.maxAge`) is never changed, and its `expires` is
/// the row's expiry when it has a max-age, `null` when it has none (a browser-session cookie).
/// express-session rebuilds the cookie from that object on every load, so the Express app's
/// cookie settings survive a write from Rust. A session without one (written with
/// `Store::set`) gets a cookie for the row's lifetime: `{"originalMaxAge": ms until the expiry,
/// "expires": the expiry, "httpOnly": true, "path": "/"}`, on the store's clock. On read the data
/// comes back whole, `cookie` included. The `expires` column stays the truth for expiry.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExpressJson;

impl Serializer for ExpressJson {
    fn serialize(
        &self,
        data: &SessionData,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<String, BoxError> {
        let at = json!(expires.to_rfc3339_opts(SecondsFormat::Millis, true));
        let cookie = match data.get("cookie") {
            // Express's own (or the layer's): its max-age is Express's setting and stays; a
            // cookie with one expires with the row, one without stays a browser-session cookie.
            Some(Value::Object(c)) => {
                let mut cookie = c.clone();
                let has_max_age = cookie
                    .get("originalMaxAge")
                    .is_some_and(|age| !age.is_null());
                cookie.insert("expires".into(), if has_max_age { at } else { Value::Null });
                cookie
            }
            // A session written without one (`Store::set`): a cookie for the row's lifetime.
            _ => SessionData::from_iter([
                (
                    "originalMaxAge".to_string(),
                    json!((expires - now).num_milliseconds().max(0)),
                ),
                ("expires".to_string(), at),
                ("httpOnly".to_string(), Value::Bool(true)),
                ("path".to_string(), json!("/")),
            ]),
        };
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

    fn t(hours: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_900_000_000, 0).expect("a valid time") + TimeDelta::hours(hours)
    }

    #[test]
    fn express_json_puts_a_cookie_first_and_keeps_expresss_own() {
        let data = SessionData::from_iter([("user".to_string(), json!("ann"))]);
        let text = ExpressJson.serialize(&data, t(1), t(0)).unwrap();
        assert!(text.starts_with(r#"{"cookie":{"#), "{text}");
        let back = ExpressJson.deserialize(&text).unwrap();
        assert_eq!(back["user"], json!("ann"));
        assert_eq!(back["cookie"]["httpOnly"], json!(true));
        // Written without a cookie: one for the row's lifetime, on the store's clock.
        assert_eq!(back["cookie"]["originalMaxAge"], json!(3_600_000));
        assert_eq!(
            back["cookie"]["expires"],
            json!(t(1).to_rfc3339_opts(SecondsFormat::Millis, true))
        );

        // Express's browser-session cookie stays one, whatever the row's expiry.
        let mut from_express = back.clone();
        from_express["cookie"]["sameSite"] = json!("lax");
        from_express["cookie"]["originalMaxAge"] = Value::Null;
        let text = ExpressJson.serialize(&from_express, t(2), t(1)).unwrap();
        let back = ExpressJson.deserialize(&text).unwrap();
        assert_eq!(back["cookie"]["sameSite"], json!("lax"));
        assert_eq!(back["cookie"]["expires"], Value::Null);
    }

    #[test]
    fn an_express_max_age_is_kept_and_its_expiry_follows_the_row() {
        let mut data = SessionData::new();
        data.insert(
            "cookie".into(),
            json!({"originalMaxAge": 3_600_000, "expires": "2030-01-01T00:00:00.000Z",
                   "httpOnly": true, "path": "/"}),
        );
        let text = ExpressJson.serialize(&data, t(24 * 14), t(0)).unwrap();
        let back = ExpressJson.deserialize(&text).unwrap();
        assert_eq!(back["cookie"]["originalMaxAge"], json!(3_600_000));
        assert_eq!(
            back["cookie"]["expires"],
            json!(t(24 * 14).to_rfc3339_opts(SecondsFormat::Millis, true))
        );
    }
}
