//! PostgreSQL's dialect.
//!
//! Times are `timestamptz`, bound as UTC; `data` is `text`, as Sequelize makes it.

use chrono::{DateTime, FixedOffset, Utc};

use super::{index_on, user_index};
use crate::sql::{Arg, Column, ColumnInfo, Dialect, Param, RawTime, StatementBuilder, SweepLock};

/// The PostgreSQL dialect.
#[derive(Debug, Clone, Copy, Default)]
pub struct PostgresDialect;

impl Dialect for PostgresDialect {
    fn name(&self) -> &'static str {
        "PostgreSQL"
    }

    fn catalog(&self) -> &'static str {
        "SELECT column_name::text, data_type::text, is_nullable = 'YES', \
         column_default IS NOT NULL, character_octet_length::int8, \
         character_maximum_length::int8, NULL::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1"
    }

    fn sid_unique_indexes(&self, table: &str) -> String {
        format!(
            "SELECT COUNT(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0] \
             WHERE n.nspname = current_schema() AND c.relname = '{table}' AND i.indisunique \
             AND i.indnkeyatts = 1 AND lower(a.attname) = 'sid'"
        )
    }

    fn indexes_led_by(&self, table: &str, column: &str) -> String {
        format!(
            "SELECT COUNT(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0] \
             WHERE n.nspname = current_schema() AND c.relname = '{table}' AND i.indisvalid \
             AND lower(a.attname) = lower('{column}')"
        )
    }

    fn add_user_index_online(&self, table: &str, column: &str) -> String {
        format!(
            "CREATE INDEX CONCURRENTLY {} ON {} ({}, {});",
            self.quote(&format!("{table}_user_idx")),
            self.quote(table),
            self.quote(column),
            self.quote(Column::Sid.name())
        )
    }

    fn add_expires_index_online(&self, table: &str) -> String {
        format!(
            "CREATE INDEX CONCURRENTLY {};",
            index_on(self, table, "expires_idx", Column::Expires)
        )
    }

    fn add_user_column(&self, table: &str) -> Vec<String> {
        // Adding a NULL column is instant; the index is built without blocking the table's
        // writes, which on a large table a plain CREATE INDEX would for its whole build.
        vec![
            format!(
                "ALTER TABLE {} ADD COLUMN IF NOT EXISTS {}",
                self.quote(table),
                self.column_ddl(Column::UserId)
            ),
            format!(
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS {}",
                user_index(self, table)
            ),
        ]
    }

    fn placeholder(&self, n: usize) -> String {
        format!("${n}")
    }

    fn column_type(&self, column: Column) -> &'static str {
        match column {
            Column::Sid => "VARCHAR(255) NOT NULL PRIMARY KEY",
            Column::Data => "TEXT",
            Column::Expires => "TIMESTAMPTZ",
            Column::Version => "BIGINT NOT NULL DEFAULT 0",
            Column::CreatedAt | Column::UpdatedAt => "TIMESTAMPTZ NOT NULL",
            Column::UserId => "VARCHAR(255)",
        }
    }

    fn check_type(
        &self,
        table: &str,
        column: Column,
        info: &ColumnInfo,
    ) -> Option<(String, String)> {
        let ty = info.data_type.as_str();
        let (ok, wanted, target) = match column {
            c if c.is_time() => (
                ty == "timestamp with time zone",
                "timestamp with time zone",
                "TIMESTAMPTZ",
            ),
            Column::Version => (ty == "bigint", "bigint", "BIGINT"),
            Column::UserId => (
                matches!(
                    ty,
                    "text" | "character varying" | "character" | "integer" | "bigint"
                ),
                "text, character varying, integer or bigint",
                "VARCHAR(255)",
            ),
            _ => (
                matches!(ty, "text" | "character varying" | "character"),
                "text or character varying",
                "TEXT",
            ),
        };
        if ok {
            return None;
        }
        let (t, c) = (self.quote(table), self.quote(&info.name));
        let using = if column.is_time() && ty == "timestamp without time zone" {
            format!("{c} AT TIME ZONE 'UTC'")
        } else {
            format!("{c}::{}", target.to_ascii_lowercase())
        };
        Some((
            format!("has type {ty:?} where {wanted} is needed"),
            format!("ALTER TABLE {t} ALTER COLUMN {c} TYPE {target} USING {using};"),
        ))
    }

    fn update_returning(&self) -> bool {
        true
    }

    fn writable_cte(&self) -> bool {
        true
    }

    fn sweep_lock(&self, _table: &str) -> SweepLock {
        SweepLock::InStatement
    }

    fn delete_expired(&self, b: &mut StatementBuilder<'_>, table: &str, now: Param, limit: Param) {
        // One statement takes a transaction-scoped advisory lock keyed by schema and table,
        // deletes the batch if it got the lock, and says which: the lock ends with the
        // statement, so neither a cancelled sweep nor PgBouncer's transaction mode (which may
        // run each statement on another server connection) can leave it held. The lock is a
        // one-time filter of the DELETE, evaluated before any row is deleted.
        //
        // The batch's rows are found through the `expires` index and deleted by their address
        // (a TID scan). With `sid IN (SELECT ...)` the planner hash-joined the batch against
        // every expired row of the table, batch after batch. A row updated meanwhile is
        // re-checked in its new version against `expires <= now`: a session touched during
        // the sweep is kept.
        let (t, expires) = (self.quote(table), self.quote(Column::Expires.name()));
        let key = format!("hashtext(current_schema() || '.{table}')");
        b.push(&format!(
            "WITH lock AS MATERIALIZED (SELECT pg_try_advisory_xact_lock({key}) AS got), \
             gone AS (DELETE FROM {t} WHERE (SELECT got FROM lock) \
             AND ctid = ANY(ARRAY(SELECT ctid FROM {t} WHERE {expires} <= "
        ))
        .arg(now)
        .push(" LIMIT ")
        .arg(limit)
        .push(&format!(")) AND {expires} <= "))
        .arg(now)
        .push(
            " RETURNING 1) SELECT (CASE WHEN (SELECT got FROM lock) \
             THEN (SELECT count(*) FROM gone) ELSE -1 END)::int8",
        );
    }

    fn encode_time(&self, t: DateTime<Utc>, _offset: FixedOffset) -> Arg<'static> {
        Arg::Time(t)
    }

    fn decode_time(
        &self,
        raw: RawTime,
        _offset: FixedOffset,
    ) -> Result<Option<DateTime<Utc>>, String> {
        match raw {
            RawTime::Null => Ok(None),
            RawTime::Utc(t) => Ok(Some(t)),
            RawTime::Naive(n) => Ok(Some(n.and_utc())),
            RawTime::Text(s) => crate::sql::parse_time_text(&s).map(Some),
        }
    }
}
