//! The crate's one error type.

/// A boxed error from a serializer or a user's own model.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How many times, by default, a call that failed with a [transient](ErrorClass::is_transient)
/// error is run again (after 2, 8 and 32 ms) before its error reaches the caller
/// (`Store::with_retries` sets another budget).
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

    /// The model cannot do what was asked (a per-user call on a table without a user
    /// column); the message says what would make it able to.
    #[error("not supported: {0}")]
    Unsupported(String),

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

    /// The database did not answer a store call within the store's call timeout
    /// (`Store::with_call_timeout`): a server that hangs, or a primary waiting for a synchronous
    /// standby that is gone. A write may still be committed after this error: PostgreSQL
    /// commits a write whose wait for its standby was cancelled.
    #[error(
        "the database did not answer within {after:?}; a write may still be committed (the limit is Store::with_call_timeout)"
    )]
    TimedOut {
        /// The limit that passed.
        after: std::time::Duration,
    },
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
            Error::Unsupported(m) => f.debug_tuple("Unsupported").field(m).finish(),
            Error::Internal(m) => f.debug_tuple("Internal").field(m).finish(),
            #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
            Error::Sqlx(e) => f.debug_tuple("Sqlx").field(e).finish(),
            #[cfg(feature = "rusqlite")]
            Error::Rusqlite(e) => f.debug_tuple("Rusqlite").field(e).finish(),
            Error::Backend(e) => f.debug_tuple("Backend").field(e).finish(),
            Error::TimedOut { after } => f.debug_struct("TimedOut").field("after", after).finish(),
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

    /// What kind of failure this is: see [`ErrorClass`].
    pub fn class(&self) -> ErrorClass {
        match self {
            #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
            Error::Sqlx(e) => sqlx_class(e),
            Error::TimedOut { .. } => ErrorClass::ConnectionLost,
            _ => ErrorClass::Other,
        }
    }

    /// Whether the database rolled this one statement back in a way that a new run of it may
    /// pass ([`ErrorClass::Retryable`]): a deadlock or a serialization failure (SQLSTATE
    /// `40001`, which MySQL and MariaDB give for deadlock 1213, and PostgreSQL's `40P01`), a
    /// Galera certification failure (1213) or Group Replication rollback at commit (3101), or a
    /// Galera node that is not ready (1047). Running it again neither repeats nor loses a write.
    pub fn is_retryable(&self) -> bool {
        self.class() == ErrorClass::Retryable
    }

    /// Whether the server refused a write because it takes none ([`ErrorClass::ReadOnly`]): a
    /// standby, or a primary demoted by a failover (SQLSTATE `25006`; MySQL 1290, 1792, 1836).
    pub fn is_read_only(&self) -> bool {
        self.class() == ErrorClass::ReadOnly
    }

    /// Whether this error means the database could not be reached or the connection broke
    /// ([`ErrorClass::ConnectionLost`]), as opposed to a refusal of this one request. Such
    /// errors usually pass when retried.
    pub fn is_connection(&self) -> bool {
        self.class() == ErrorClass::ConnectionLost
    }

    /// How long to wait before run `attempt` (1 for the first retry) of a statement that
    /// failed with this error, or `None` when it is not to be run again: the error is not
    /// [transient](ErrorClass::is_transient), or [`RETRIES`] retries were made already.
    pub fn retry_after(&self, attempt: u32) -> Option<std::time::Duration> {
        self.retry_within(attempt, RETRIES)
    }

    /// As [`Error::retry_after`], with a budget of `retries` retries: the pauses are 2 ms, 8 ms,
    /// 32 ms, then 128 ms, 512 ms and 1 s from there on.
    pub fn retry_within(&self, attempt: u32, retries: u32) -> Option<std::time::Duration> {
        let worth_it = self.class().is_transient() && !self.is_pool_timeout();
        (worth_it && attempt >= 1 && attempt <= retries).then(|| {
            let ms = 2u64 << attempt.saturating_sub(1).saturating_mul(2).min(20);
            std::time::Duration::from_millis(ms.min(1000))
        })
    }

    /// A pool that gave no connection within its acquire timeout, or a call that ran out of
    /// its time, has waited long already: it is not waited on again.
    fn is_pool_timeout(&self) -> bool {
        match self {
            #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
            Error::Sqlx(sqlx::Error::PoolTimedOut) => true,
            Error::TimedOut { .. } => true,
            _ => false,
        }
    }
}

/// The kinds of failure a caller may act on differently; [`Error::class`] says which one an
/// error is. RELIABILITY.md lists the codes behind each and what the store does with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorClass {
    /// The database rolled this one statement back (a deadlock, a serialization or
    /// certification failure, a cluster node that is not ready): a new run may pass.
    Retryable,
    /// The server takes no writes (a standby, or a primary demoted by a failover). The
    /// connection that answered so is closed, not given back to the pool: the next one may
    /// reach the new primary.
    ReadOnly,
    /// The database could not be reached, or the connection broke. A write may or may not have
    /// been committed.
    ConnectionLost,
    /// Anything else: a refusal of this request (bad input, a schema problem, a unique
    /// violation, a decode error) that the same call would meet again.
    Other,
}

impl ErrorClass {
    /// Whether a call that failed so may pass when made again shortly: every class but
    /// [`ErrorClass::Other`]. The store retries such failures of the calls it can run twice
    /// safely, within its retry budget (`Store::with_retries`).
    pub fn is_transient(self) -> bool {
        self != ErrorClass::Other
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
fn sqlx_class(err: &sqlx::Error) -> ErrorClass {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Tls(_) => ErrorClass::ConnectionLost,
        sqlx::Error::Database(db) => {
            let code = db.code();
            let code = code.as_deref().unwrap_or("");
            match (code, mysql_number(db.as_ref())) {
                ("40001" | "40P01", _) | (_, Some(1213 | 3101 | 1047)) => ErrorClass::Retryable,
                ("25006", _) | (_, Some(1290 | 1792 | 1836)) => ErrorClass::ReadOnly,
                // PostgreSQL's connection exceptions and shutdowns (a server going away).
                ("57P01" | "57P02" | "57P03", _) => ErrorClass::ConnectionLost,
                (c, _) if c.starts_with("08") => ErrorClass::ConnectionLost,
                _ => ErrorClass::Other,
            }
        }
        _ => ErrorClass::Other,
    }
}

/// The MySQL error number of a MySQL or MariaDB error.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
fn mysql_number(db: &dyn sqlx::error::DatabaseError) -> Option<u16> {
    #[cfg(feature = "mysql")]
    if let Some(e) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return Some(e.number());
    }
    let _ = db;
    None
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
        // A unique violation, a syntax error, a MySQL error of no class.
        for code in ["23505", "42601", "HY000"] {
            assert_eq!(refused(code).class(), ErrorClass::Other, "{code}");
            assert!(!refused(code).is_retryable(), "{code}");
            assert!(!refused(code).is_read_only(), "{code}");
            assert!(!refused(code).is_connection(), "{code}");
            assert_eq!(refused(code).retry_after(1), None);
        }
        for err in [Error::InvalidInput("x".into()), Error::backend("down")] {
            assert_eq!(err.class(), ErrorClass::Other);
            assert_eq!(err.retry_after(1), None);
        }
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn read_only_servers_and_lost_connections_are_classed_and_retried() {
        let read_only = refused("25006");
        assert_eq!(read_only.class(), ErrorClass::ReadOnly);
        assert!(read_only.is_read_only() && !read_only.is_retryable());
        for code in ["57P01", "57P03", "08006", "08S01"] {
            assert_eq!(refused(code).class(), ErrorClass::ConnectionLost, "{code}");
            assert!(refused(code).is_connection(), "{code}");
        }
        let io = Error::Sqlx(sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into()));
        assert_eq!(io.class(), ErrorClass::ConnectionLost);
        for err in [read_only, io, refused("57P01")] {
            assert_eq!(
                err.retry_after(1),
                Some(std::time::Duration::from_millis(2))
            );
            assert_eq!(err.retry_after(4), None);
        }
        // A pool that gave no connection in its timeout, or a call past the store's call
        // timeout, has waited long enough.
        let timed_out = Error::Sqlx(sqlx::Error::PoolTimedOut);
        assert!(timed_out.is_connection());
        assert_eq!(timed_out.retry_after(1), None);
        let call = Error::TimedOut {
            after: std::time::Duration::from_secs(30),
        };
        assert_eq!(call.class(), ErrorClass::ConnectionLost);
        assert_eq!(call.retry_after(1), None);
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn a_larger_retry_budget_backs_off_to_a_second() {
        let err = refused("40001");
        let pauses: Vec<_> = (0..=8)
            .map(|n| err.retry_within(n, 7).map(|d| d.as_millis()))
            .collect();
        let expected = [
            None,
            Some(2),
            Some(8),
            Some(32),
            Some(128),
            Some(512),
            Some(1000),
            Some(1000),
            None,
        ];
        assert_eq!(pauses, expected);
        assert_eq!(
            err.retry_within(1, 0),
            None,
            "a budget of 0 turns retries off"
        );
        assert_eq!(
            err.retry_within(u32::MAX, u32::MAX),
            Some(std::time::Duration::from_secs(1))
        );
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
