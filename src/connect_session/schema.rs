//! Reading a table's shape from the catalog, checking it, and the DDL that makes it.

use chrono::FixedOffset;

use super::{Table, UserColumn};
use crate::sql::{
    Args, Backend, Column, ColumnInfo, Dialect, StatementBuilder, validate_identifier,
};
use crate::{Error, Result};

/// What a table must have beyond the required columns: the options `auto` makes and
/// `discover` insists on.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Wanted {
    /// A `version` column.
    pub(super) version: bool,
    /// A user column.
    pub(super) user: bool,
}

impl Wanted {
    /// The columns of a new table with what is wanted.
    fn columns(self) -> Vec<Column> {
        let mut columns = Column::table_columns(self.version).to_vec();
        if self.user {
            columns.push(Column::UserId);
        }
        columns
    }
}

/// Creates table `name` with its `expires` index when missing, and adds the `version` column
/// and the user column (with its index) when wanted and missing. Safe to run from several app
/// instances at once.
pub(super) async fn create<B: Backend>(backend: &B, name: &str, wanted: Wanted) -> Result<()> {
    let d = backend.dialect();
    // An existing table is left as it is but for the wanted columns: building an index on a
    // large table is a long DDL (blocking writes, on PostgreSQL), so a missing one is reported
    // by `find` with the statement that builds it online.
    if backend.columns(name).await?.is_empty() {
        for ddl in d.create_table(name, &wanted.columns()) {
            run_ddl_tolerating_races(backend, name, &ddl, None).await?;
        }
    }
    if wanted.version && column(&backend.columns(name).await?, Column::Version).is_none() {
        let ddl = format!(
            "ALTER TABLE {} ADD COLUMN {}",
            d.quote(name),
            d.column_ddl(Column::Version)
        );
        run_ddl_tolerating_races(backend, name, &ddl, Some(Column::Version)).await?;
    }
    if wanted.user && user_column(&backend.columns(name).await?).is_none() {
        for ddl in d.add_user_column(name) {
            run_ddl_tolerating_races(backend, name, &ddl, Some(Column::UserId)).await?;
        }
    }
    Ok(())
}

/// Runs `ddl`; when it fails, but `table` exists and has what `ddl` was to add (`adds`),
/// another instance starting at the same moment got there first, which is success for us too.
async fn run_ddl_tolerating_races<B: Backend>(
    backend: &B,
    table: &str,
    ddl: &str,
    adds: Option<Column>,
) -> Result<()> {
    let Err(err) = backend.run_ddl(ddl).await else {
        return Ok(());
    };
    let columns = backend.columns(table).await?;
    let added = match adds {
        None => true,
        Some(Column::UserId) => user_column(&columns).is_some(),
        Some(role) => column(&columns, role).is_some(),
    };
    if columns.is_empty() || !added {
        return Err(err);
    }
    tracing::debug!(table, error = %err, "DDL failed but another instance made the table; going on");
    Ok(())
}

/// The first of `names` that is a table, checked and with its shape read.
///
/// # Errors
/// [`Error::InvalidIdentifier`] for a bad name; [`Error::TableNotFound`] with the DDL to run
/// when none is a table; [`Error::IncompatibleSchema`] when a column cannot be used.
pub(super) async fn find<B: Backend>(backend: &B, names: &[&str], wanted: Wanted) -> Result<Table> {
    let d = backend.dialect();
    for name in names {
        validate_identifier(name)?;
        let columns = backend.columns(name).await?;
        if columns.is_empty() {
            continue;
        }
        let mut table = inspect(d, name, &columns, wanted)?;
        check_sid_is_unique(backend, name).await?;
        warn_of_a_narrow_sid(&table);
        table.expires_index_fix = missing_expires_index(backend, name).await?;
        table.user_index_fix = missing_user_index(backend, &table).await?;
        table.sweep_by_rowid = d.sweeps_by_rowid() && has_rowid(backend, name).await;
        return Ok(table);
    }
    let first = names.first().copied().unwrap_or(super::DEFAULT_TABLE);
    let ddl = d.create_table(first, &wanted.columns());
    Err(Error::TableNotFound {
        tried: names.iter().map(|n| n.to_string()).collect(),
        ddl: ddl.join(";\n") + ";",
    })
}

/// Refuses a table whose `sid` is not unique on its own (no primary key or unique index on
/// it alone): `create` would then insert a second row under a taken id.
async fn check_sid_is_unique<B: Backend>(backend: &B, table: &str) -> Result<()> {
    let d = backend.dialect();
    let mut count = StatementBuilder::new(d);
    count.push(&d.sid_unique_indexes(table));
    if backend.fetch_count(&count.build(), &Args::new()).await? > 0 {
        return Ok(());
    }
    Err(Error::IncompatibleSchema {
        table: table.to_owned(),
        column: Column::Sid.name().to_owned(),
        problem: "is not unique (no primary key or unique index on it alone), so two sessions \
                  could be stored under one id"
            .into(),
        fix: d.make_sid_unique(table),
    })
}

/// A `sid` narrower than the 64 characters of actix-session's keys works for tower-sessions (22)
/// and express-session (32) ids, so it is used, with a warning naming the fix: longer ids are
/// refused by the store before they reach the table.
fn warn_of_a_narrow_sid(table: &Table) {
    if let Some(chars) = table.sid_max.filter(|n| *n < 64) {
        tracing::warn!(
            table = %table.name,
            chars,
            "the sid column holds fewer than the 64 characters of actix-session's keys; longer \
             ids are refused: widen it to VARCHAR(255) to hold every framework's"
        );
    }
}

/// The statement that adds the `expires` index where sweeps use one and `table` has none.
async fn missing_expires_index<B: Backend>(backend: &B, table: &str) -> Result<Option<String>> {
    let d = backend.dialect();
    if !d.index_expires() {
        return Ok(None);
    }
    let mut count = StatementBuilder::new(d);
    count.push(&d.expires_indexes(table));
    if backend.fetch_count(&count.build(), &Args::new()).await? > 0 {
        return Ok(None);
    }
    let fix = d.add_expires_index_online(table);
    tracing::warn!(
        table,
        fix = %fix,
        "the sessions table has no index on expires: every sweep batch reads the whole table; \
         run the statement given to add one without blocking writes"
    );
    Ok(Some(fix))
}

/// The statement that adds the `(user, sid)` index where `table` has a user column that leads
/// no index (a Sequelize table with `userId`, or an index whose build failed): without it each
/// per-user call reads the whole table.
async fn missing_user_index<B: Backend>(backend: &B, table: &Table) -> Result<Option<String>> {
    let Some(user) = &table.user else {
        return Ok(None);
    };
    let d = backend.dialect();
    let mut count = StatementBuilder::new(d);
    count.push(&d.indexes_led_by(&table.name, &user.name));
    if backend.fetch_count(&count.build(), &Args::new()).await? > 0 {
        return Ok(None);
    }
    let fix = d.add_user_index_online(&table.name, &user.name);
    tracing::warn!(
        table = %table.name,
        fix = %fix,
        "the user column of the sessions table leads no index: every per-user call reads the \
         whole table; run the statement given to add one without blocking writes"
    );
    Ok(Some(fix))
}

/// Whether `table` has a `rowid`: SQLite tables do unless made `WITHOUT ROWID`, where
/// selecting it fails. Any failure means no, and the sweep goes by `sid` instead.
async fn has_rowid<B: Backend>(backend: &B, table: &str) -> bool {
    let mut probe = StatementBuilder::new(backend.dialect());
    probe.push(&format!(
        "SELECT COUNT(*) FROM (SELECT rowid FROM {} LIMIT 0)",
        backend.dialect().quote(table)
    ));
    match backend.fetch_count(&probe.build(), &Args::new()).await {
        Ok(_) => true,
        Err(err) => {
            tracing::debug!(table, error = %err, "no rowid; sweeping by sid");
            false
        }
    }
}

/// The column of the catalog's `columns` that plays `role` (names compare without case, as
/// MySQL and SQLite do).
fn column(columns: &[ColumnInfo], role: Column) -> Option<&ColumnInfo> {
    columns
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(role.name()))
}

/// The user column of `columns`: `user_id`, or `userId` as Sequelize names a field
/// `userId` (names compare without case).
fn user_column(columns: &[ColumnInfo]) -> Option<&ColumnInfo> {
    columns.iter().find(|c| {
        c.name.eq_ignore_ascii_case(Column::UserId.name()) || c.name.eq_ignore_ascii_case("userId")
    })
}

/// UTC as an offset: the time offset of a table unless told otherwise.
pub(super) fn utc() -> FixedOffset {
    FixedOffset::east_opt(0).expect("zero is a valid offset")
}

/// Checks a table's columns against what the model needs and returns its shape.
fn inspect(d: &dyn Dialect, name: &str, columns: &[ColumnInfo], wanted: Wanted) -> Result<Table> {
    let find = |role: Column| column(columns, role);
    let incompatible = |column: &str, problem: String, fix: String| Error::IncompatibleSchema {
        table: name.to_owned(),
        column: column.to_owned(),
        problem,
        fix,
    };
    let all = Column::table_columns(true);
    let mut data_max = None;
    for &role in all {
        let required = match role {
            Column::Sid | Column::Data | Column::Expires => true,
            Column::Version => wanted.version,
            _ => false,
        };
        match find(role) {
            None if !required => {}
            None => {
                return Err(incompatible(
                    role.name(),
                    "is missing".into(),
                    format!(
                        "ALTER TABLE {} ADD COLUMN {};",
                        d.quote(name),
                        d.column_ddl(role)
                    ),
                ));
            }
            Some(info) => {
                if let Some((problem, fix)) = d.check_type(name, role, info) {
                    return Err(incompatible(&info.name, problem, fix));
                }
                if role == Column::Data {
                    data_max = info.max_len.and_then(|n| usize::try_from(n).ok());
                }
            }
        }
    }
    // A user column is used only when asked for: every write sets it, and a table shared with
    // an app that fills it itself (Sequelize's `extendDefaultFields`) must not lose it to a
    // store that was not told about users.
    let user = match user_column(columns).filter(|_| wanted.user) {
        Some(info) => {
            if let Some((problem, fix)) = d.check_type(name, Column::UserId, info) {
                return Err(incompatible(&info.name, problem, fix));
            }
            Some(UserColumn {
                name: info.name.clone(),
                is_int: info.data_type.contains("int"),
            })
        }
        None if wanted.user => {
            return Err(incompatible(
                Column::UserId.name(),
                "is missing".into(),
                d.add_user_column(name).join(";\n") + ";",
            ));
        }
        None => None,
    };
    let known = |info: &&ColumnInfo| {
        all.iter().any(|c| info.name.eq_ignore_ascii_case(c.name()))
            || user.as_ref().is_some_and(|u| u.name == info.name)
    };
    if let Some(extra) = columns
        .iter()
        .filter(|info| !known(info))
        .find(|info| !info.nullable && !info.has_default)
    {
        return Err(incompatible(
            &extra.name,
            "is NOT NULL with no default, and this model does not write it".into(),
            "give it a default, or let it be NULL; or write a model of your own that fills it \
             (see examples/custom_model.rs)"
                .into(),
        ));
    }
    Ok(Table {
        name: name.to_owned(),
        has_created_at: find(Column::CreatedAt).is_some(),
        has_updated_at: find(Column::UpdatedAt).is_some(),
        has_version: find(Column::Version).is_some(),
        data_max,
        sweep_by_rowid: false,
        sid_ignores_case: find(Column::Sid).is_some_and(|info| d.sid_ignores_case(info)),
        sid_pads_spaces: find(Column::Sid).is_some_and(|info| d.sid_pads_spaces(info)),
        expires_index_fix: None,
        user_index_fix: None,
        user,
        sid_max: find(Column::Sid)
            .and_then(|info| info.max_chars)
            .and_then(|n| usize::try_from(n).ok()),
    })
}
