//! The [`Store`] constructors that make a [`ConnectSession`] on the way: `Store::auto`,
//! `Store::discover`, `Store::connect` and their variants.

use super::ConnectSession;
use crate::model::Fallback;
use crate::sql::{Backend, ConnectUrl};
use crate::{Result, Store};

impl<B: Backend> Store<ConnectSession<B>> {
    /// Creates the `ConnectSession` table when missing and returns a store over it.
    /// `backend` is the application's pool: `SqlitePool`, `PgPool`, `MySqlPool` or a
    /// `RusqliteConnection`.
    ///
    /// # Errors
    /// As [`ConnectSession::auto`].
    pub async fn auto(backend: B) -> Result<Self> {
        Ok(Store::with_model(ConnectSession::auto(backend).await?))
    }

    /// Finds an existing `ConnectSession` or `ConnectSessions` table and returns a store over it.
    ///
    /// # Errors
    /// As [`ConnectSession::discover`]: the error names the table, the column and the fix.
    pub async fn discover(backend: B) -> Result<Self> {
        Ok(Store::with_model(ConnectSession::discover(backend).await?))
    }

    /// [`Store::auto`] for a table of another name.
    ///
    /// # Errors
    /// As [`ConnectSession::auto_table`].
    pub async fn auto_table(backend: B, table: &str) -> Result<Self> {
        Ok(Store::with_model(
            ConnectSession::auto_table(backend, table).await?,
        ))
    }

    /// [`Store::discover`] for a table of another name.
    ///
    /// # Errors
    /// As [`ConnectSession::discover_table`].
    pub async fn discover_table(backend: B, table: &str) -> Result<Self> {
        Ok(Store::with_model(
            ConnectSession::discover_table(backend, table).await?,
        ))
    }

    /// Like [`Store::auto`], but when the database cannot be reached at start-up the store
    /// keeps new sessions in memory instead, logs a warning, and tries the database again in
    /// the background (after 1 s, doubling up to every 30 s); once it answers, new sessions go
    /// there and the switch is logged ([`Fallback`] says what happens to the sessions made
    /// meanwhile; [`Fallback::is_memory`] tells which is in use). Any other error at start-up
    /// (a bad schema, say) is returned.
    ///
    /// # Errors
    /// As [`Store::auto`], except connection failures.
    pub async fn auto_or_memory(backend: B) -> Result<Store<Fallback<ConnectSession<B>>>>
    where
        B: Clone,
    {
        let model = match ConnectSession::auto(backend.clone()).await {
            Ok(model) => Fallback::primary(model),
            Err(err) if err.is_connection() => {
                tracing::warn!(
                    error = %err,
                    "session database unreachable; keeping new sessions in memory (this process \
                     only, lost on restart) and trying the database again in the background"
                );
                Fallback::memory_until(Box::new(move || {
                    let backend = backend.clone();
                    Box::pin(ConnectSession::auto(backend))
                }))
            }
            Err(err) => return Err(err),
        };
        Ok(Store::with_model(model))
    }
}

impl<B: ConnectUrl> Store<ConnectSession<B>> {
    /// Opens a connection to `url` itself and then works as [`Store::auto`]: for when the
    /// application has no pool of its own. SQLite files are opened with WAL,
    /// `synchronous=NORMAL` and a busy timeout, and created when missing.
    ///
    /// # Errors
    /// The driver's error when the URL is bad or the database cannot be reached; then as
    /// [`Store::auto`].
    pub async fn connect(url: &str) -> Result<Self> {
        Store::auto(B::connect_url(url).await?).await
    }
}
