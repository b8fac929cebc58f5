//! The dialect of MySQL and MariaDB.
//!
//! Times are `DATETIME(6)` holding the UTC wall clock (or the wall clock at the offset the model
//! is given, for a table Sequelize wrote with another `timezone`); `data` is `MEDIUMTEXT`, since
//! `TEXT` caps a session at 64 KiB; `sid` has a binary collation, so ids compare exactly.

use chrono::{DateTime, FixedOffset, Utc};

use crate::sql::{
    Arg, Column, ColumnInfo, Dialect, Param, RawTime, RowLock, StatementBuilder, SweepLock,
};

/// The table, in the sessions table's database, that holds the sweep lock rows on MySQL and
/// MariaDB: one row per sessions table, made on the first sweep.
pub(crate) const LOCK_TABLE: &str = "sequelstore_locks";

/// The MySQL / MariaDB dialect.
#[derive(Debug, Clone, Copy, Default)]
pub struct MySqlDialect;

impl MySqlDialect {
    /// `INDEX <table>_user_idx (user_id, sid)`, in a `CREATE TABLE` or after `ADD`.
    fn user_index_clause(&self, table: &str) -> String {
        format!(
            "INDEX {} ({}, {})",
            self.quote(&format!("{table}_user_idx")),
            self.quote(Column::UserId.name()),
            self.quote(Column::Sid.name())
        )
    }
}

impl Dialect for MySqlDialect {
    fn name(&self) -> &'static str {
        "MySQL"
    }

    fn catalog(&self) -> &'static str {
        "SELECT CAST(COLUMN_NAME AS CHAR), CAST(DATA_TYPE AS CHAR), \
         CAST(IS_NULLABLE = 'YES' AS SIGNED), CAST(COLUMN_DEFAULT IS NOT NULL AS SIGNED), \
         CAST(CHARACTER_OCTET_LENGTH AS SIGNED), CAST(CHARACTER_MAXIMUM_LENGTH AS SIGNED), \
         CAST(COLLATION_NAME AS CHAR) FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?"
    }

    fn quote(&self, ident: &str) -> String {
        format!("`{ident}`")
    }

    fn sid_unique_indexes(&self, table: &str) -> String {
        format!(
            "SELECT COUNT(*) FROM information_schema.STATISTICS s WHERE s.TABLE_SCHEMA = DATABASE() \
             AND s.TABLE_NAME = '{table}' AND s.NON_UNIQUE = 0 AND LOWER(s.COLUMN_NAME) = 'sid' \
             AND (SELECT COUNT(*) FROM information_schema.STATISTICS o \
                  WHERE o.TABLE_SCHEMA = s.TABLE_SCHEMA AND o.TABLE_NAME = s.TABLE_NAME \
                  AND o.INDEX_NAME = s.INDEX_NAME) = 1"
        )
    }

    fn indexes_led_by(&self, table: &str, column: &str) -> String {
        format!(
            "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_NAME = '{table}' AND SEQ_IN_INDEX = 1 AND LOWER(COLUMN_NAME) = LOWER('{column}')"
        )
    }

    fn add_user_index_online(&self, table: &str, column: &str) -> String {
        format!(
            "ALTER TABLE {} ADD INDEX {} ({}, {}), ALGORITHM=INPLACE, LOCK=NONE;",
            self.quote(table),
            self.quote(&format!("{table}_user_idx")),
            self.quote(column),
            self.quote(Column::Sid.name())
        )
    }

    fn add_expires_index_online(&self, table: &str) -> String {
        format!(
            "ALTER TABLE {} ADD INDEX {} ({}), ALGORITHM=INPLACE, LOCK=NONE;",
            self.quote(table),
            self.quote(&format!("{table}_expires_idx")),
            self.quote(Column::Expires.name())
        )
    }

    fn placeholder(&self, _n: usize) -> String {
        "?".to_owned()
    }

    fn numbered_placeholders(&self) -> bool {
        false
    }

    fn column_type(&self, column: Column) -> &'static str {
        match column {
            Column::Sid => {
                "VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY"
            }
            Column::Data => "MEDIUMTEXT",
            Column::Expires => "DATETIME(6) NULL",
            Column::Version => "BIGINT NOT NULL DEFAULT 0",
            Column::CreatedAt | Column::UpdatedAt => "DATETIME(6) NOT NULL",
            Column::UserId => "VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL",
        }
    }

    fn create_table(&self, table: &str, columns: &[Column]) -> Vec<String> {
        let mut ddl: Vec<String> = columns.iter().map(|c| self.column_ddl(*c)).collect();
        ddl.push(format!(
            "INDEX {} ({})",
            self.quote(&format!("{table}_expires_idx")),
            self.quote("expires")
        ));
        if columns.contains(&Column::UserId) {
            ddl.push(self.user_index_clause(table));
        }
        vec![format!(
            "CREATE TABLE IF NOT EXISTS {} ({}) DEFAULT CHARSET = utf8mb4",
            self.quote(table),
            ddl.join(", ")
        )]
    }

    fn add_user_column(&self, table: &str) -> Vec<String> {
        // One statement, so that a second instance's finds both or neither.
        vec![format!(
            "ALTER TABLE {} ADD COLUMN {}, ADD {}",
            self.quote(table),
            self.column_ddl(Column::UserId),
            self.user_index_clause(table)
        )]
    }

    fn check_type(
        &self,
        table: &str,
        column: Column,
        info: &ColumnInfo,
    ) -> Option<(String, String)> {
        let ty = info.data_type.as_str();
        let ok = match column {
            Column::Sid => matches!(ty, "varchar" | "char"),
            Column::Data => matches!(
                ty,
                "text" | "mediumtext" | "longtext" | "varchar" | "json" | "tinytext"
            ),
            Column::Version => matches!(ty, "bigint" | "int"),
            Column::UserId => matches!(ty, "varchar" | "char" | "bigint" | "int"),
            _ => ty == "datetime",
        };
        if ok {
            return None;
        }
        let problem = if column.is_time() && ty == "timestamp" {
            // TIMESTAMP ends in January 2038 (the store writes expiries up to the end of 9999)
            // and converts through the connection's time zone, which the table's time offset
            // cannot know. Converting the column keeps the wall-clock values when the session
            // time zone of the ALTER is the one the rows were written in.
            "has type \"timestamp\", which ends in 2038 and converts through the session time \
             zone; this model needs DATETIME"
                .to_owned()
        } else {
            format!("has type {ty:?}, which this model cannot read or write")
        };
        Some((
            problem,
            format!(
                "ALTER TABLE {} MODIFY {};",
                self.quote(table),
                self.column_ddl(column)
                    .replace(" NOT NULL PRIMARY KEY", " NOT NULL")
            ),
        ))
    }

    fn sid_ignores_case(&self, info: &ColumnInfo) -> bool {
        // `_bin` collations and `binary` compare case exactly; the rest (`_ci`, `_cs`) find
        // `"Abc"` for `"abc"`. (Trailing spaces: `utf8mb4_bin` pads them, so `'abc' = 'abc '`
        // is true there too; `sid_equals` keeps every write exact on any collation, and reads
        // keep only the exact id.)
        info.collation
            .as_deref()
            .is_some_and(|c| !(c.ends_with("_bin") || c == "binary"))
    }

    fn sid_pads_spaces(&self, info: &ColumnInfo) -> bool {
        // MySQL 8's `_0900_` collations, MariaDB's `_nopad_` ones and `binary` do not pad.
        info.collation
            .as_deref()
            .is_some_and(|c| !(c == "binary" || c.contains("_nopad_") || c.contains("_0900_")))
    }

    fn on_conflict_do_nothing(&self) -> Option<String> {
        // INSERT IGNORE would also turn a too-long value into a silent truncation: use a plain
        // INSERT and map the duplicate-key error instead.
        None
    }

    fn excluded(&self, column: &str) -> String {
        format!("VALUES({column})")
    }

    fn upsert(&self, _sid: &str, assignments: &[String]) -> String {
        format!(" ON DUPLICATE KEY UPDATE {}", assignments.join(", "))
    }

    fn delete_expired(&self, b: &mut StatementBuilder<'_>, table: &str, now: Param, limit: Param) {
        let expires = self.quote("expires");
        b.push(&format!(
            "DELETE FROM {} WHERE {expires} <= ",
            self.quote(table)
        ))
        .arg(now)
        .push(&format!(" ORDER BY {expires} LIMIT "))
        .arg(limit);
    }

    fn sid_equals(&self, b: &mut StatementBuilder<'_>, sid: &str, arg: Param) {
        // A table Sequelize made has MariaDB's default collation, which ignores case and
        // trailing spaces: the first test finds the row through the primary key, the second
        // keeps only the exact id.
        b.push(&format!("{sid} = "))
            .arg(arg)
            .push(&format!(" AND {sid} = CAST("))
            .arg(arg)
            .push(" AS BINARY)");
    }

    fn sweep_lock(&self, table: &str) -> SweepLock {
        // MySQL's named locks (GET_LOCK) belong to a connection, and Galera does not
        // replicate them: each node would grant its own. A row of LOCK_TABLE, locked and
        // written in each batch's transaction, is given back by the transaction's end and
        // certified by Galera like any other write.
        let (locks, name) = (self.quote(LOCK_TABLE), format!("'sweep:{table}'"));
        SweepLock::Row(RowLock {
            take: format!("SELECT 1 FROM {locks} WHERE name = {name} FOR UPDATE SKIP LOCKED"),
            exists: format!("SELECT COUNT(*) FROM {locks} WHERE name = {name}"),
            mark: format!("UPDATE {locks} SET taken = taken + 1 WHERE name = {name}"),
            create: vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS {locks} (name VARCHAR(191) NOT NULL PRIMARY KEY, \
                     taken BIGINT NOT NULL DEFAULT 0) ENGINE=InnoDB"
                ),
                format!("INSERT IGNORE INTO {locks} (name) VALUES ({name})"),
            ],
        })
    }

    fn zero_version(&self) -> &'static str {
        "CAST(0 AS SIGNED)"
    }

    fn encode_time(&self, t: DateTime<Utc>, offset: FixedOffset) -> Arg<'static> {
        Arg::Naive(t.with_timezone(&offset).naive_local())
    }

    fn decode_time(
        &self,
        raw: RawTime,
        offset: FixedOffset,
    ) -> Result<Option<DateTime<Utc>>, String> {
        match raw {
            RawTime::Null => Ok(None),
            RawTime::Naive(n) => n
                .and_local_timezone(offset)
                .single()
                .map(|t| Some(t.with_timezone(&Utc)))
                .ok_or_else(|| format!("{n} is not a valid time at offset {offset}")),
            RawTime::Utc(t) => Ok(Some(t)),
            RawTime::Text(s) => crate::sql::parse_time_text(&s).map(Some),
        }
    }
}
