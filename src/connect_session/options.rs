//! [`TableOptions`]: how a [`ConnectSession`] finds or makes its table, and the shorthands
//! `ConnectSession::auto` and `ConnectSession::discover` over it.

use chrono::FixedOffset;

use super::schema::Wanted;
use super::{ConnectSession, DEFAULT_TABLE, SEQUELIZE_TABLE, schema};
use crate::Result;
use crate::sql::{Backend, validate_identifier};

/// How to find or make the table of a [`ConnectSession`]: its name, whether it keeps a
/// version column, and the offset of its wall-clock times. Made by [`ConnectSession::options`].
#[derive(Debug)]
pub struct TableOptions<B> {
    backend: B,
    table: Option<String>,
    wanted: Wanted,
    offset: FixedOffset,
}

impl<B: Backend> TableOptions<B> {
    /// Use the table `name` instead of the default names.
    pub fn table(mut self, name: impl Into<String>) -> Self {
        self.table = Some(name.into());
        self
    }

    /// Keep a `version` column for optimistic concurrency: [`Store::auto`](crate::Store::auto)
    /// creates it (adding it to an existing table), and updates based on an older version are
    /// refused with [`Error::Conflict`](crate::Error::Conflict). [`TableOptions::discover`] uses the column when it is
    /// there, whether or not this is set, and fails when it is set and the column is missing.
    pub fn versioned(mut self, yes: bool) -> Self {
        self.wanted.version = yes;
        self
    }

    /// Keep the user each session belongs to in a `user_id` column, with an index on
    /// `(user_id, sid)`, for the per-user calls ([`Store::user_sessions`](crate::Store::user_sessions)
    /// and the others): [`Store::auto`](crate::Store::auto) creates both (adding them to an
    /// existing table). With it, [`TableOptions::discover`] uses a column named `user_id` or
    /// `userId` (Sequelize's `extendDefaultFields`), and fails when there is none; without it
    /// such a column is left alone (never written), so that an app that fills it itself keeps
    /// what it wrote. The store fills the column on every write from
    /// its user key ([`Store::with_user_key`](crate::Store::with_user_key)).
    pub fn user_id(mut self, yes: bool) -> Self {
        self.wanted.user = yes;
        self
    }

    /// Read and write wall-clock `DATETIME` columns at `offset` instead of UTC, for a MySQL
    /// table written by Sequelize with another `timezone` setting. PostgreSQL and SQLite times
    /// carry their zone, so there it changes nothing.
    pub fn time_offset(mut self, offset: FixedOffset) -> Self {
        self.offset = offset;
        self
    }

    /// Creates the table (default `ConnectSession`) and its `expires` index when missing,
    /// adds the `version` column when asked for and missing, and returns a model over it.
    /// Safe to run from several app instances at once.
    ///
    /// # Errors
    /// [`Error::InvalidIdentifier`](crate::Error::InvalidIdentifier) for a bad name; the backend's error when the DDL fails;
    /// [`Error::IncompatibleSchema`](crate::Error::IncompatibleSchema) when a table of that name exists with columns this model
    /// cannot use, naming the column and the fix.
    pub async fn auto(self) -> Result<ConnectSession<B>> {
        let name = self.table.clone().unwrap_or_else(|| DEFAULT_TABLE.into());
        validate_identifier(&name)?;
        schema::create(&self.backend, &name, self.wanted).await?;
        self.discover_among(&[&name]).await
    }

    /// Finds the table (by default `ConnectSession`, else `ConnectSessions`), checks its
    /// columns and returns a model over it.
    ///
    /// # Errors
    /// [`Error::InvalidIdentifier`](crate::Error::InvalidIdentifier) for a bad name; [`Error::TableNotFound`](crate::Error::TableNotFound) with the DDL to
    /// run when there is no table; [`Error::IncompatibleSchema`](crate::Error::IncompatibleSchema) naming the column and the fix
    /// when one cannot be used.
    pub async fn discover(self) -> Result<ConnectSession<B>> {
        match self.table.clone() {
            Some(name) => self.discover_among(&[&name]).await,
            None => self.discover_among(&[DEFAULT_TABLE, SEQUELIZE_TABLE]).await,
        }
    }

    async fn discover_among(self, names: &[&str]) -> Result<ConnectSession<B>> {
        let table = schema::find(&self.backend, names, self.wanted).await?;
        Ok(ConnectSession::over(self.backend, table, self.offset))
    }
}

impl<B: Backend> ConnectSession<B> {
    /// Options for finding or making the table; end with [`TableOptions::auto`] or
    /// [`TableOptions::discover`].
    pub fn options(backend: B) -> TableOptions<B> {
        TableOptions {
            backend,
            table: None,
            wanted: Wanted::default(),
            offset: schema::utc(),
        }
    }

    /// Creates the table `ConnectSession` and its `expires` index when missing, and returns a
    /// model over it. Safe to run from several app instances at once.
    ///
    /// # Errors
    /// As [`TableOptions::auto`].
    pub async fn auto(backend: B) -> Result<Self> {
        Self::options(backend).auto().await
    }

    /// [`ConnectSession::auto`] for a table of another name.
    ///
    /// # Errors
    /// As [`TableOptions::auto`].
    pub async fn auto_table(backend: B, table: &str) -> Result<Self> {
        Self::options(backend).table(table).auto().await
    }

    /// Finds an existing table named `ConnectSession`, or else `ConnectSessions` (Sequelize's
    /// plural), checks its columns and returns a model over it.
    ///
    /// # Errors
    /// As [`TableOptions::discover`].
    pub async fn discover(backend: B) -> Result<Self> {
        Self::options(backend).discover().await
    }

    /// [`ConnectSession::discover`] for a table of another name.
    ///
    /// # Errors
    /// As [`TableOptions::discover`].
    pub async fn discover_table(backend: B, table: &str) -> Result<Self> {
        Self::options(backend).table(table).discover().await
    }
}
