//! [`Statement`] and [`StatementBuilder`]: SQL text with the named parameters its placeholders
//! bind, and [`Args`], the values a call gives those names.

use std::fmt;
use std::sync::Arc;

use super::{Arg, Dialect};
use crate::{Error, Result};

/// A named parameter of a session statement. A statement records which names its
/// placeholders take; a call gives values by name in [`Args`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Param {
    /// The session id.
    Sid,
    /// The serialized data.
    Data,
    /// The expiry written.
    Expires,
    /// The application clock's `now`.
    Now,
    /// A bound: the throttle limit of a touch, or the row count of a sweep batch.
    Limit,
    /// The version an update is based on.
    Version,
    /// Where a `rowid` walk goes on from (exclusive).
    After,
    /// How many expired rows a `rowid` walk steps over.
    Skip,
    /// Where a `rowid` batch ends (exclusive).
    Upto,
    /// The user a session belongs to.
    User,
}

impl Param {
    /// Every name, in slot order.
    const ALL: [Param; 10] = [
        Param::Sid,
        Param::Data,
        Param::Expires,
        Param::Now,
        Param::Limit,
        Param::Version,
        Param::After,
        Param::Skip,
        Param::Upto,
        Param::User,
    ];

    /// How many names there are.
    const COUNT: usize = Param::ALL.len();

    /// The name as messages show it.
    pub fn name(self) -> &'static str {
        match self {
            Param::Sid => "sid",
            Param::Data => "data",
            Param::Expires => "expires",
            Param::Now => "now",
            Param::Limit => "limit",
            Param::Version => "version",
            Param::After => "after",
            Param::Skip => "skip",
            Param::Upto => "upto",
            Param::User => "user",
        }
    }

    fn slot(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The values of one call's parameters, by name. A parameter that is not set is not NULL: a
/// statement that needs it fails with [`Error::Internal`] before it reaches the database.
#[derive(Clone, Default, PartialEq)]
pub struct Args<'a> {
    values: [Option<Arg<'a>>; Param::COUNT],
}

impl<'a> Args<'a> {
    /// No values.
    pub fn new() -> Self {
        Args::default()
    }

    /// The same, with `param` set to `value`.
    pub fn with(mut self, param: Param, value: Arg<'a>) -> Self {
        self.set(param, value);
        self
    }

    /// Sets `param` to `value`.
    pub fn set(&mut self, param: Param, value: Arg<'a>) {
        self.values[param.slot()] = Some(value);
    }

    /// The value of `param`, when set.
    pub fn get(&self, param: Param) -> Option<&Arg<'a>> {
        self.values[param.slot()].as_ref()
    }

    /// The same values, owning their text: for a statement that runs on a task of its own.
    pub fn to_owned_args(&self) -> Args<'static> {
        Args {
            values: self.values.clone().map(|value| value.map(Arg::into_owned)),
        }
    }
}

/// Shows which names are set, not their values: a session id is a secret.
impl fmt::Debug for Args<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(Param::ALL.iter().filter(|p| self.get(**p).is_some()))
            .finish()
    }
}

/// A statement with the names its placeholders bind, in placeholder order.
#[derive(Debug, Clone)]
pub struct Statement {
    sql: Arc<str>,
    params: Box<[Param]>,
}

impl Statement {
    /// The SQL text.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The SQL text, shared.
    pub fn shared_sql(&self) -> Arc<str> {
        Arc::clone(&self.sql)
    }

    /// The names the placeholders bind, in placeholder order.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// The values to bind, in placeholder order, taken from `args` by name.
    ///
    /// # Errors
    /// Each item is [`Error::Internal`] when `args` lacks a name the statement needs: the
    /// model that called it has a bug.
    pub fn bound<'s, 'a>(
        &'s self,
        args: &'s Args<'a>,
    ) -> impl Iterator<Item = Result<&'s Arg<'a>>> + 's {
        self.params.iter().map(move |&param| {
            args.get(param).ok_or_else(|| {
                Error::Internal(format!(
                    "a statement needs the parameter `{param}`, which its caller did not give: \
                     {:.60}",
                    self.sql
                ))
            })
        })
    }
}

/// Writes a [`Statement`], numbering placeholders as the dialect wants.
#[derive(Debug)]
pub struct StatementBuilder<'d> {
    dialect: &'d dyn Dialect,
    sql: String,
    params: Vec<Param>,
}

impl<'d> StatementBuilder<'d> {
    /// An empty statement in `dialect`.
    pub fn new(dialect: &'d dyn Dialect) -> Self {
        StatementBuilder {
            dialect,
            sql: String::new(),
            params: Vec::new(),
        }
    }

    /// The dialect being written.
    pub fn dialect(&self) -> &'d dyn Dialect {
        self.dialect
    }

    /// Appends SQL text.
    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Appends a placeholder for `param`. With numbered placeholders, a second use of one name
    /// reuses its number.
    pub fn arg(&mut self, param: Param) -> &mut Self {
        let n = match self.params.iter().position(|&p| p == param) {
            Some(pos) if self.dialect.numbered_placeholders() => pos + 1,
            _ => {
                self.params.push(param);
                self.params.len()
            }
        };
        let placeholder = self.dialect.placeholder(n);
        self.sql.push_str(&placeholder);
        self
    }

    /// The finished statement.
    pub fn build(self) -> Statement {
        Statement {
            sql: self.sql.into(),
            params: self.params.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::dialect::{MySqlDialect, PostgresDialect};

    #[test]
    fn owned_args_keep_every_value() {
        let now = chrono::Utc::now();
        let sid = String::from("abc");
        let args = Args::new()
            .with(Param::Sid, Arg::Str(&sid))
            .with(Param::Data, Arg::String("d".into()))
            .with(Param::Limit, Arg::Int(7))
            .with(Param::Now, Arg::Time(now))
            .with(Param::Expires, Arg::Naive(now.naive_utc()))
            .with(Param::Version, Arg::Null);
        let owned = args.to_owned_args();
        drop(sid);
        assert_eq!(owned.get(Param::Sid), Some(&Arg::String("abc".into())));
        assert_eq!(owned.get(Param::Data), Some(&Arg::String("d".into())));
        assert_eq!(owned.get(Param::Limit), Some(&Arg::Int(7)));
        assert_eq!(owned.get(Param::Now), Some(&Arg::Time(now)));
        assert_eq!(
            owned.get(Param::Expires),
            Some(&Arg::Naive(now.naive_utc()))
        );
        assert_eq!(owned.get(Param::Version), Some(&Arg::Null));
        assert_eq!(owned.get(Param::After), None);
    }

    fn statement(d: &dyn Dialect) -> Statement {
        let mut b = StatementBuilder::new(d);
        b.push("UPDATE t SET a = ")
            .arg(Param::Expires)
            .push(" WHERE sid = ")
            .arg(Param::Sid)
            .push(" AND b > ")
            .arg(Param::Expires);
        b.build()
    }

    #[test]
    fn a_name_used_twice_is_one_placeholder_where_they_are_numbered() {
        let pg = statement(&PostgresDialect);
        assert_eq!(pg.sql(), "UPDATE t SET a = $1 WHERE sid = $2 AND b > $1");
        assert_eq!(pg.params(), [Param::Expires, Param::Sid]);
        let my = statement(&MySqlDialect);
        assert_eq!(my.sql(), "UPDATE t SET a = ? WHERE sid = ? AND b > ?");
        assert_eq!(my.params(), [Param::Expires, Param::Sid, Param::Expires]);
    }

    #[test]
    fn values_bind_by_name_in_placeholder_order() {
        let args = Args::new()
            .with(Param::Sid, Arg::Str("s"))
            .with(Param::Expires, Arg::Int(7))
            .with(Param::Limit, Arg::Int(99));
        let stmt = statement(&MySqlDialect);
        let bound: Vec<_> = stmt
            .bound(&args)
            .collect::<Result<_>>()
            .expect("every name is set");
        assert_eq!(bound, [&Arg::Int(7), &Arg::Str("s"), &Arg::Int(7)]);
    }

    #[test]
    fn a_missing_name_is_an_internal_error_not_a_null() {
        let args = Args::new().with(Param::Sid, Arg::Str("secret-session-id"));
        let err = statement(&PostgresDialect)
            .bound(&args)
            .find_map(Result::err)
            .expect("expires is missing");
        assert!(
            matches!(&err, Error::Internal(m) if m.contains("`expires`")),
            "{err}"
        );
        // The values set are not shown, only their names.
        let shown = format!("{args:?}");
        assert_eq!(shown, "{Sid}");
    }
}
