//! [`PgBouncerPool`]: a `PgPool` whose statements are safe behind a pooler in transaction mode.
//!
//! A pooler in transaction mode (PgBouncer's `pool_mode = transaction`, and the poolers of
//! managed PostgreSQL services) hands each transaction to whatever server connection is free.
//! sqlx prepares every statement it binds arguments to, named or unnamed, and runs it in a
//! second round trip after a `Sync`: the pooler may send that second part to another server,
//! which has no such statement, or a statement of that name prepared by another client for
//! other SQL. So this backend sends each statement once, in the simple query protocol, with its
//! values written into the text as typed literals: one round trip, one implicit transaction,
//! one server connection, and nothing left prepared on it.
//!
//! The values cannot escape their literal. Text goes in dollar quotes whose tag does not occur
//! in the value (PostgreSQL reads a dollar-quoted string up to the first copy of its tag, with
//! no escapes at all, whatever `standard_conforming_strings` says), integers and times are
//! printed by Rust in digits and punctuation only, and every literal is cast to the type sqlx
//! would have bound, so the statement means what the prepared one means.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;
use sqlx::postgres::{PgPool, Postgres};

use super::SqlxDatabase;
use crate::sql::dialect::PostgresDialect;
use crate::sql::{Arg, Args, Backend, ColumnInfo, ConnectUrl, Dialect, RawRow, Statement};
use crate::{Error, Result};

/// A `PgPool` for PostgreSQL reached through PgBouncer (or another pooler) in transaction mode:
/// every statement is sent unprepared, in one round trip (see the module docs).
///
/// ```no_run
/// # async fn run() -> sequelstore::Result<()> {
/// use sequelstore::{ConnectSession, PgBouncerPool, Store};
///
/// let pool = sqlx::PgPool::connect("postgres://app@pgbouncer:6432/app").await?;
/// let store = Store::with_model(
///     ConnectSession::options(PgBouncerPool::new(pool)).auto().await?,
/// );
/// # Ok(()) }
/// ```
///
/// Directly on PostgreSQL a plain `PgPool` is faster for repeated statements (it parses each
/// once per connection); this one is as correct there as behind a pooler.
#[derive(Debug, Clone)]
pub struct PgBouncerPool {
    pool: PgPool,
}

impl PgBouncerPool {
    /// Wraps `pool`, whose URL points at the pooler.
    pub fn new(pool: PgPool) -> Self {
        PgBouncerPool { pool }
    }

    /// The pool inside.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// `stmt`'s SQL with each `$n` replaced by the `n`th bound value as a typed literal.
///
/// # Errors
/// [`Error::InvalidInput`] for text holding a NUL character, which PostgreSQL stores in no text
/// column (and which would end the query string of the simple protocol);
/// [`Error::Internal`] for a missing parameter.
fn inline(stmt: &Statement, args: &Args<'_>) -> Result<String> {
    let values = stmt.bound(args).collect::<Result<Vec<_>>>()?;
    inline_sql(stmt.sql(), &values)
}

/// `sql` with each `$n` replaced by `values[n - 1]` as a typed literal.
fn inline_sql(sql: &str, values: &[&Arg<'_>]) -> Result<String> {
    let mut out = String::with_capacity(sql.len() + 64);
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let Some(value) = after[..digits]
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| values.get(i))
        else {
            return Err(Error::Internal(format!(
                "a statement has a `$` that is no parameter: {sql:.60}"
            )));
        };
        literal(&mut out, value)?;
        rest = &after[digits..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Writes `arg` as a literal of the type the prepared statement binds it as.
fn literal(out: &mut String, arg: &Arg<'_>) -> Result<()> {
    match arg {
        Arg::Null => out.push_str(" NULL::timestamptz"),
        Arg::NullText => out.push_str(" NULL::text"),
        Arg::NullInt => out.push_str(" NULL::int8"),
        Arg::Str(s) => text(out, s)?,
        Arg::String(s) => text(out, s)?,
        Arg::Int(i) => out.push_str(&format!(" ({i})::int8")),
        Arg::Time(t) => time(out, *t),
        Arg::Naive(n) => time(out, n.and_utc()),
    }
    Ok(())
}

fn time(out: &mut String, t: DateTime<Utc>) {
    out.push_str(&format!(
        " '{}'::timestamptz",
        t.format("%Y-%m-%d %H:%M:%S%.6f+00")
    ));
}

/// `s` in dollar quotes, with a tag whose first copy in `s` followed by the tag is the closing
/// one: neither inside `s` nor begun by its last characters.
fn text(out: &mut String, s: &str) -> Result<()> {
    if s.contains('\0') {
        return Err(Error::InvalidInput(
            "text with a NUL character cannot be stored in PostgreSQL".into(),
        ));
    }
    let mut n = 0u32;
    let tag = loop {
        let tag = match n {
            0 => "$s$".to_owned(),
            n => format!("$s{n}$"),
        };
        let closed = format!("{s}{tag}");
        if closed.find(&tag) == Some(s.len()) {
            break tag;
        }
        n += 1;
    };
    out.push(' ');
    out.push_str(&tag);
    out.push_str(s);
    out.push_str(&tag);
    out.push_str("::text");
    Ok(())
}

#[async_trait]
impl Backend for PgBouncerPool {
    fn dialect(&self) -> &'static dyn Dialect {
        &PostgresDialect
    }

    async fn execute(&self, stmt: &Statement, args: &Args<'_>) -> Result<u64> {
        let sql = inline(stmt, args)?;
        let done = sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn fetch_rows(&self, stmt: &Statement, args: &Args<'_>) -> Result<Vec<RawRow>> {
        let sql = inline(stmt, args)?;
        let rows = sqlx::raw_sql(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        super::raw_rows::<Postgres>(&rows)
    }

    async fn fetch_count(&self, stmt: &Statement, args: &Args<'_>) -> Result<i64> {
        let sql = inline(stmt, args)?;
        let row = sqlx::raw_sql(AssertSqlSafe(sql))
            .fetch_one(&self.pool)
            .await?;
        Ok(Postgres::decode_int(&row, 0)?)
    }

    async fn columns(&self, table: &str) -> Result<Vec<ColumnInfo>> {
        let sql = inline_sql(PostgresDialect.catalog(), &[&Arg::Str(table)])?;
        let rows = sqlx::raw_sql(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Postgres::decode_column(row).map_err(Error::from))
            .collect()
    }

    async fn run_ddl(&self, sql: &str) -> Result<()> {
        self.pool.run_ddl(sql).await
    }

    fn is_unique_violation(&self, err: &Error) -> bool {
        self.pool.is_unique_violation(err)
    }
}

#[async_trait]
impl ConnectUrl for PgBouncerPool {
    async fn connect_url(url: &str) -> Result<Self> {
        Ok(PgBouncerPool::new(PgPool::connect_url(url).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_text(value: &str) -> String {
        inline_sql("SELECT $1", &[&Arg::Str(value)]).unwrap()
    }

    #[test]
    fn text_cannot_end_its_literal_early() {
        assert_eq!(one_text("abc"), "SELECT  $s$abc$s$::text");
        assert_eq!(one_text("it's"), "SELECT  $s$it's$s$::text");
        // The tag inside, and the tag begun by the value's last characters.
        assert_eq!(one_text("a$s$b"), "SELECT  $s1$a$s$b$s1$::text");
        assert_eq!(one_text("x$s"), "SELECT  $s1$x$s$s1$::text");
        assert_eq!(one_text("x$"), "SELECT  $s$x$$s$::text");
        assert_eq!(one_text("$s$ $s1$ $s"), "SELECT  $s2$$s$ $s1$ $s$s2$::text");
        assert_eq!(one_text(""), "SELECT  $s$$s$::text");
    }

    #[test]
    fn a_statement_gets_its_arguments_by_name() {
        use crate::sql::{Param, StatementBuilder};

        let mut b = StatementBuilder::new(&PostgresDialect);
        b.push("SELECT ")
            .arg(Param::Sid)
            .push(", ")
            .arg(Param::Limit);
        let stmt = b.build();
        let args = Args::new()
            .with(Param::Limit, Arg::Int(7))
            .with(Param::Sid, Arg::Str("abc"));
        assert_eq!(
            inline(&stmt, &args).unwrap(),
            "SELECT  $s$abc$s$::text,  (7)::int8"
        );
        let missing = inline(&stmt, &Args::new().with(Param::Sid, Arg::Str("abc")));
        assert!(matches!(missing, Err(Error::Internal(_))), "{missing:?}");
    }

    #[test]
    fn text_with_a_nul_is_refused() {
        let refused = inline_sql("SELECT $1", &[&Arg::Str("a\0b")]);
        assert!(matches!(refused, Err(Error::InvalidInput(_))));
    }

    #[test]
    fn every_kind_of_value_is_typed_and_placed() {
        let t = DateTime::from_timestamp_millis(1_767_225_600_123).unwrap();
        let values = [
            &Arg::Null,
            &Arg::Int(-5),
            &Arg::Time(t),
            &Arg::Naive(t.naive_utc()),
        ];
        assert_eq!(
            inline_sql("SELECT $1, $2, $3, $4, $2", &values).unwrap(),
            "SELECT  NULL::timestamptz,  (-5)::int8,  '2026-01-01 00:00:00.123000+00'::timestamptz,  \
             '2026-01-01 00:00:00.123000+00'::timestamptz,  (-5)::int8"
        );
    }

    #[test]
    fn a_dollar_that_is_no_parameter_is_a_bug() {
        for sql in ["SELECT $2", "SELECT $", "SELECT $0", "SELECT $x"] {
            let refused = inline_sql(sql, &[&Arg::Int(1)]);
            assert!(matches!(refused, Err(Error::Internal(_))), "{sql}");
        }
    }
}
