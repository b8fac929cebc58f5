//! The crate's one error type.

/// A boxed error from a serializer or a user's own model.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How many times a statement that failed with a [retryable](Error::is_retryable) error is run
/// again (after 2, 8 and 32 ms) before its error reaches the caller.
pub const RETRIES: u32 = 3;

/// Result with [`enum@Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A session id as messages show it: its first four characters, enough to tell sessions apart
/// in a log without putting the secret that a cookie carries there.
pub fn redact(sid: &str) -> String {
    let shown: String = sid.chars().take(4).collect();
    if shown.len() < sid.len() {
        format!("{shown:?}…")
    } else {
        format!("{shown:?}")
    }
}

/// Everything that can go wrong in a store or a model.
///
/// Each variant says what a caller can do about it; match on the variant, not the message.
/// Messages and `Debug` show session ids shortened (see [`redact`]); the fields hold them whole.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A table or column name is not a plain SQL identifier, so it cannot be used safely.
    #[error(
        "invalid identifier {name:?}: {reason}; use 1 to 50 ASCII letters, digits or underscores, starting with a letter or underscore"
    )]
    InvalidIdentifier {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// No sessions table was found where one was looked for.
    #[error("no sessions table found (looked for {}); create one with:\n{ddl}\nor use Store::auto, which creates it", .tried.join(", "))]
    TableNotFound {
        /// The table names looked for, in order.
        tried: Vec<String>,
        /// The DDL that creates a suitable table.
        ddl: String,
    },

    /// A table exists but a column the model needs is missing or of a type it cannot use.
    #[error("table {table:?} cannot be used: column {column:?} {problem}; fix it with:\n{fix}")]
    IncompatibleSchema {
        /// The table.
        table: String,
        /// The column at fault.
        column: String,
        /// What is wrong with it.
        problem: String,
        /// The SQL that fixes it.
        fix: String,
    },

    /// A stored row could not be decoded (bad time text, data the serializer rejects, a wrong type).
    ///
    /// Only this row is affected; other sessions are still served. Destroying the session removes it.
    #[error("session {}: stored {column} does not decode: {source}", redact(.sid))]
    Decode {
        /// The session id of the row, when known.
        sid: String,
        /// The column that failed.
        column: &'static str,
        /// What the decoder said: the serializer's own error for `data`, a message for a time.
        #[source]
        source: BoxError,
    },

    /// The session data could not be serialized for storage.
    #[error("session {}: data does not serialize: {source}", redact(.sid))]
    Encode {
        /// The session id.
        sid: String,
        /// The serializer's error.
        #[source]
        source: BoxError,
    },

    /// An update based on one version of a session found another stored: someone else wrote
    /// the session since it was read. Load it again, apply the change to what is stored, and
    /// update again (or let the store merge: `Store::with_conflict_merge`).
    #[error(
        "session {} was changed by someone else: the update was based on version {expected} but version {found} is stored; reload and apply the change again",
        redact(.sid)
    )]
    Conflict {
        /// The session id.
        sid: String,
        /// The version the update was based on.
        expected: i64,
        /// The version stored.
        found: i64,
    },

    /// The caller passed something the store refuses (an empty or oversized id, an oversized
    /// payload). Only the caller's input: adapters read it as "no such session".
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// The store was set up with something it cannot work with (a SeaORM connection that holds
    /// no sqlx pool, say). The message says what to pass instead; it is not about one request.
    #[error("misconfigured: {0}")]
    Misconfigured(String),

    /// A bug in this crate or in a model built on its public SQL items: a statement was run
    /// without a parameter it needs. Nothing was sent to the database. Please report it.
    #[error("internal error (a bug; please report it): {0}")]
    Internal(String),

    /// The database said no, or could not be reached (sqlx).
    #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
    #[cfg_attr(
        docsrs,
        doc(cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql")))
    )]
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),

    /// The database said no (rusqlite).
    #[cfg(feature = "rusqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "rusqlite")))]
    #[error("database error: {0}")]
    Rusqlite(#[from] rusqlite::Error),

    /// A user's own model, or a background task, failed with an error of its own.
    #[error("backend error: {0}")]
    Backend(#[source] BoxError),
}

/// As derived, but with session ids shortened: a `{:?}` of an error in a log must not hand out
/// a live cookie.
impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::InvalidIdentifier { name, reason } => f
                .debug_struct("InvalidIdentifier")
                .field("name", name)
                .field("reason", reason)
                .finish(),
            Error::TableNotFound { tried, ddl } => f
                .debug_struct("TableNotFound")
                .field("tried", tried)
                .field("ddl", ddl)
                .finish(),
            Error::IncompatibleSchema {
                table,
                column,
                problem,
                fix,
            } => f
                .debug_struct("IncompatibleSchema")
                .field("table", table)
                .field("column", column)
                .field("problem", problem)
                .field("fix", fix)
                .finish(),
            Error::Decode {
                sid,
                column,
                source,
            } => f
                .debug_struct("Decode")
                .field("sid", &redact(sid))
                .field("column", column)
                .field("source", source)
                .finish(),
            Error::Encode { sid, source } => f
                .debug_struct("Encode")
                .field("sid", &redact(sid))
                .field("source", source)
                .finish(),
            Error::Conflict {
                sid,
                expected,
                found,
            } => f
                .debug_struct("Conflict")
                .field("sid", &redact(sid))
                .field("expected", expected)
                .field("found", found)
                .finish(),
            Error::InvalidInput(m) => f.debug_tuple("InvalidInput").field(m).finish(),
            Error::Misconfigured(m) => f.debug_tuple("Misconfigured").field(m).finish(),
            Error::Internal(m) => f.debug_tuple("Internal").field(m).finish(),
            #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
            Error::Sqlx(e) => f.debug_tuple("Sqlx").field(e).finish(),
            #[cfg(feature = "rusqlite")]
            Error::Rusqlite(e) => f.debug_tuple("Rusqlite").field(e).finish(),
            Error::Backend(e) => f.debug_tuple("Backend").field(e).finish(),
        }
    }
}

impl Error {
    /// A [`Error::Backend`] from any error, for implementors of [`crate::SessionModel`].
    pub fn backend(err: impl Into<BoxError>) -> Self {
        Error::Backend(err.into())
    }

    /// A [`Error::Decode`] of `column` in session `sid`'s row, for implementors of
    /// [`crate::SessionModel`]: `source` is the decoder's error or a message.
    pub fn decode(
        sid: impl Into<String>,
        column: &'static str,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Decode {
            sid: sid.into(),
            column,
            source: source.into(),
        }
    }

    /// Whether the database refused this one statement in a way that a new run of it may pass:
    /// a deadlock or a serialization failure (SQLSTATE `40001`, which MySQL and MariaDB give
    /// for deadlock 1213, and PostgreSQL's `40P01`). The database rolled the statement back
    /// whole, so running it again neither repeats nor loses a write.
    pub fn is_retryable(&self) -> bool {
        match self {
            #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
            Error::Sqlx(sqlx::Error::Database(db)) => {
                matches!(db.code().as_deref(), Some("40001" | "40P01"))
            }
            _ => false,
        }
    }

    /// How long to wait before run `attempt` (1 for the first retry) of a statement that
    /// failed with this error, or `None` when it is not to be run again: the error is not
    /// [retryable](Error::is_retryable), or [`RETRIES`] retries were made already.
    pub fn retry_after(&self, attempt: u32) -> Option<std::time::Duration> {
        (self.is_retryable() && attempt <= RETRIES)
            .then(|| std::time::Duration::from_millis(2 << (2 * attempt.saturating_sub(1))))
    }

    /// Whether this error means the database could not be reached or the connection broke,
    /// as opposed to a refusal of this one request. Such errors usually pass when retried.
    pub fn is_connection(&self) -> bool {
        match self {
            #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
            Error::Sqlx(e) => matches!(
                e,
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::WorkerCrashed
                    | sqlx::Error::Tls(_)
            ),
            _ => false,
        }
    }
}

/// A deadlock error as sqlx reports one, for tests of what retries it.
#[cfg(all(test, feature = "sqlite"))]
pub(crate) fn deadlock_for_tests() -> Error {
    tests::refused("40001")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "sqlite")]
    #[derive(Debug)]
    struct Refused(&'static str);

    #[cfg(feature = "sqlite")]
    impl std::fmt::Display for Refused {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "refused with SQLSTATE {}", self.0)
        }
    }

    #[cfg(feature = "sqlite")]
    impl std::error::Error for Refused {}

    #[cfg(feature = "sqlite")]
    impl sqlx::error::DatabaseError for Refused {
        fn message(&self) -> &str {
            "refused"
        }

        fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
            Some(self.0.into())
        }

        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }

        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }

        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }

        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    #[cfg(feature = "sqlite")]
    pub(super) fn refused(code: &'static str) -> Error {
        Error::Sqlx(sqlx::Error::Database(Box::new(Refused(code))))
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn deadlocks_and_serialization_failures_are_retried_three_times() {
        for code in ["40001", "40P01"] {
            let err = refused(code);
            assert!(err.is_retryable(), "{code}");
            let pauses: Vec<_> = (1..=4).map(|n| err.retry_after(n)).collect();
            assert_eq!(
                pauses,
                [2, 8, 32]
                    .map(|ms| Some(std::time::Duration::from_millis(ms)))
                    .into_iter()
                    .chain([None])
                    .collect::<Vec<_>>()
            );
        }
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn other_refusals_are_not_retried() {
        // A unique violation, a read-only server, a syntax error.
        for code in ["23505", "25006", "42601", "HY000"] {
            assert!(!refused(code).is_retryable(), "{code}");
            assert_eq!(refused(code).retry_after(1), None);
        }
        assert!(!Error::InvalidInput("x".into()).is_retryable());
        assert!(!Error::backend("down").is_retryable());
    }

    #[test]
    fn debug_output_shows_no_whole_session_id() {
        let sid = "0123456789abcdefghijklmnopqrstuvwxyz";
        for err in [
            Error::decode(sid, "data", "not json"),
            Error::Encode {
                sid: sid.into(),
                source: "no".into(),
            },
            Error::Conflict {
                sid: sid.into(),
                expected: 1,
                found: 2,
            },
        ] {
            let shown = format!("{err:?} {err:#?} {err}");
            assert!(!shown.contains(sid), "{shown}");
            assert!(shown.contains("\"0123\"…"), "{shown}");
        }
        let row = crate::SessionRow::new(sid, r#"{"secret":"value"}"#, None);
        let raw = crate::sql::RawRow::new(sid.into(), Some("x".into()), crate::sql::RawTime::Null);
        let arg = crate::sql::Arg::Str(sid);
        let session = crate::Session {
            id: sid.into(),
            data: crate::SessionData::from_iter([("user".to_owned(), "secret".into())]),
            expires: None,
            version: None,
        };
        let shown = format!("{row:?} {raw:?} {arg:?} {session:?}");
        assert!(shown.contains("user"), "the keys are shown: {shown}");
        assert!(!shown.contains(sid) && !shown.contains("secret"), "{shown}");
    }

    #[test]
    fn redact_shows_four_characters_and_says_when_it_cut() {
        assert_eq!(redact("abcd"), "\"abcd\"");
        assert_eq!(redact("abcde"), "\"abcd\"…");
        assert_eq!(redact("żółwie"), "\"żółw\"…");
        assert_eq!(redact(""), "\"\"");
    }
}
