//! The [`Store`] constructors that make a [`ConnectSession`] on the way: `Store::auto`,
//! `Store::discover`, `Store::connect` and their variants.

use super::ConnectSession;
use crate::model::{Fallback, MemoryModel};
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
    /// keeps sessions in memory instead, and logs a warning; [`Fallback::is_memory`] tells which.
    /// Any other error (a bad schema, say) is still returned.
    ///
    /// # Errors
    /// As [`Store::auto`], except connection failures.
    pub async fn auto_or_memory(backend: B) -> Result<Store<Fallback<ConnectSession<B>>>> {
        let model = match ConnectSession::auto(backend).await {
            Ok(model) => Fallback::Primary(model),
            Err(err) if err.is_connection() => {
                tracing::warn!(error = %err, "session database unreachable; keeping sessions in memory, they will not survive a restart");
                Fallback::Memory(MemoryModel::new())
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
