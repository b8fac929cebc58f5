//! How session data becomes the text in the `data` column, and back: the original package's
//! `transform` option.

use std::fmt::Debug;

use crate::BoxError;

/// The data of one session: a JSON object, as express-session and tower-sessions keep it.
pub type SessionData = serde_json::Map<String, serde_json::Value>;

/// Turns session data into stored text and back. JSON ([`Json`]) unless the store is given another.
pub trait Serializer: Send + Sync + Debug + 'static {
    /// The text to store for `data`.
    ///
    /// # Errors
    /// Whatever the format cannot represent; the store reports it as `Error::Encode`.
    fn serialize(&self, data: &SessionData) -> Result<String, BoxError>;

    /// The data stored as `text`.
    ///
    /// # Errors
    /// Text that is not in this format; the store reports it as `Error::Decode`.
    fn deserialize(&self, text: &str) -> Result<SessionData, BoxError>;
}

/// Session data as a JSON object: readable by SQL, by express-session and by any other client.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl Serializer for Json {
    fn serialize(&self, data: &SessionData) -> Result<String, BoxError> {
        Ok(serde_json::to_string(data)?)
    }

    fn deserialize(&self, text: &str) -> Result<SessionData, BoxError> {
        Ok(serde_json::from_str(text)?)
    }
}
