//! The conformance suite for the `SessionModel` contract, written once and instantiated per
//! backend with `conformance_tests!`, and the helpers tests share.
#![allow(dead_code, unreachable_pub)]

pub mod db;
pub mod differential;
pub mod reliability;
pub mod schema;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use sequelstore::{Backend, ConnectSession, Created, SessionModel, SessionRow};

/// Runs raw SQL on the backend under test, bypassing the model.
pub type RawSql = Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// What a conformance test gets: the model, and for SQL backends a way to write rows straight
/// into its table.
pub struct Ctx<M> {
    pub model: Arc<M>,
    /// The table's name, for raw SQL.
    pub table: String,
    /// Runs raw SQL; `None` for the in-memory model.
    pub raw: Option<RawSql>,
    /// Quotes an identifier for raw SQL.
    pub quote: fn(&str) -> String,
    /// An SQL expression for a time one hour ago, in the form the table stores.
    pub hour_ago: &'static str,
}

impl<M> Ctx<M> {
    pub fn memory(model: M) -> Self {
        Ctx {
            model: Arc::new(model),
            table: String::new(),
            raw: None,
            quote: |s| s.to_owned(),
            hour_ago: "",
        }
    }

    /// Drops the table (when there is one), so servers do not collect test tables. Called at
    /// the end of a passing test; a failing one leaves its table for a look.
    pub async fn finish(self) {
        if let Some(raw) = &self.raw {
            raw(format!("DROP TABLE {}", (self.quote)(&self.table))).await;
        }
    }
}

/// A `Ctx` over a fresh `ConnectSession` table (plain or versioned) on `backend`.
pub async fn table_ctx<B: Backend + Clone>(
    backend: B,
    test: &str,
    versioned: bool,
    raw: RawSql,
    quote: fn(&str) -> String,
    hour_ago: &'static str,
) -> Ctx<ConnectSession<B>> {
    let table = db::unique_table(test);
    let model = ConnectSession::options(backend)
        .table(&table)
        .versioned(versioned)
        .auto()
        .await
        .unwrap();
    assert_eq!(model.capabilities().version, versioned);
    Ctx {
        model: Arc::new(model),
        table,
        raw: Some(raw),
        quote,
        hour_ago,
    }
}

/// Raw SQL on a sqlx pool.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub fn raw_sqlx<DB: sqlx::Database>(pool: &sqlx::Pool<DB>) -> RawSql
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
{
    let pool = pool.clone();
    Arc::new(move |sql: String| {
        let pool = pool.clone();
        Box::pin(async move {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
                .execute(&pool)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        })
    })
}

/// Every suite for one backend: `$make_with(test, versioned)` makes a `Ctx`, `$make_schema`
/// a `SchemaCtx`, `$make_rel` a `RelCtx`. Runs the conformance suite on plain and versioned
/// tables, the differential test on both, the schema suite and the reliability suite.
#[macro_export]
macro_rules! backend_suites {
    ($backend:ty, $make_with:path, $make_schema:path, $make_rel:path) => {
        async fn make(test: &str) -> Option<common::Ctx<sequelstore::ConnectSession<$backend>>> {
            $make_with(test, false).await
        }

        async fn make_versioned(
            test: &str,
        ) -> Option<common::Ctx<sequelstore::ConnectSession<$backend>>> {
            $make_with(test, true).await
        }

        $crate::conformance_tests!(make);

        mod versioned {
            use super::*;
            $crate::conformance_tests!(make_versioned);
            $crate::differential_test!(make_versioned);
        }

        mod plain {
            use super::*;
            $crate::differential_test!(make);
        }

        mod schema {
            use super::*;
            $crate::schema_tests!($make_schema);
        }

        mod reliability {
            use super::*;
            $crate::reliability_tests!($make_rel);
        }
    };
}

/// Instantiates the suite: `$make` is an async fn taking the test's name and returning
/// `Option<Ctx<M>>` (`None` when its server cannot be reached outside CI).
#[macro_export]
macro_rules! conformance_tests {
    ($make:path) => {
        $crate::conformance_tests!(@each $make;
            load_missing_is_none,
            save_then_load_round_trips,
            load_never_returns_expired,
            expiry_boundary_is_expired,
            create_is_insert_only,
            create_does_not_take_over_an_expired_row,
            concurrent_creates_have_one_winner,
            save_is_an_upsert,
            update_changes_only_live_rows,
            update_after_destroy_stays_destroyed,
            touch_slides_live_rows_only,
            touch_throttle_is_part_of_the_update,
            destroy_reports_whether_there_was_a_row,
            delete_expired_works_in_bounded_batches,
            delete_all_expired_is_one_whole_sweep,
            count_and_list_see_live_rows_only,
            clear_removes_everything,
            data_round_trips_exactly,
            rows_written_by_sql_obey_the_contract,
            versions_refuse_stale_updates,
            load_and_touch_slides_in_one_call,
            versions_count_writes_not_touches
        );
    };
    (@each $make:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(ctx) = $make(stringify!($name)).await {
                    common::$name(&ctx).await;
                    ctx.finish().await;
                }
            }
        )*
    };
}

/// A fixed `now`, to the millisecond, so expected times compare exactly on every backend.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 5, 6, 7, 8, 9)
        .single()
        .expect("valid")
        + TimeDelta::milliseconds(123)
}

pub fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

pub fn row(sid: &str, data: &str, expires: DateTime<Utc>) -> SessionRow {
    SessionRow::new(sid, data, Some(expires))
}

/// The row stored for `sid`, without its version (compared on its own in the version tests).
pub async fn load<M: SessionModel>(
    ctx: &Ctx<M>,
    sid: &str,
    now: DateTime<Utc>,
) -> Option<SessionRow> {
    let row = ctx.model.load(sid, now).await.unwrap();
    row.map(|mut r| {
        assert_eq!(r.version.is_some(), ctx.model.capabilities().version);
        r.version = None;
        r
    })
}

/// The live rows, without versions.
pub async fn list<M: SessionModel>(ctx: &Ctx<M>, now: DateTime<Utc>) -> Vec<SessionRow> {
    let rows = ctx.model.list(now).await.unwrap();
    rows.into_iter()
        .map(|mut r| {
            r.version = None;
            r
        })
        .collect()
}

pub async fn load_missing_is_none<M: SessionModel>(ctx: &Ctx<M>) {
    assert_eq!(load(ctx, "nobody", t0()).await, None);
}

pub async fn save_then_load_round_trips<M: SessionModel>(ctx: &Ctx<M>) {
    let r = row("a", r#"{"n":1}"#, t0() + secs(60));
    ctx.model.save(&r, t0()).await.unwrap();
    assert_eq!(load(ctx, "a", t0()).await, Some(r));
}

pub async fn load_never_returns_expired<M: SessionModel>(ctx: &Ctx<M>) {
    let r = row("old", "{}", t0() - secs(1));
    ctx.model.save(&r, t0() - secs(100)).await.unwrap();
    assert_eq!(load(ctx, "old", t0()).await, None);
    // Still there, and live at an earlier time: load filters, it does not delete.
    assert_eq!(load(ctx, "old", t0() - secs(2)).await, Some(r));
}

pub async fn expiry_boundary_is_expired<M: SessionModel>(ctx: &Ctx<M>) {
    ctx.model
        .save(&row("edge", "{}", t0()), t0() - secs(10))
        .await
        .unwrap();
    assert_eq!(load(ctx, "edge", t0()).await, None);
    assert!(
        load(ctx, "edge", t0() - TimeDelta::milliseconds(1))
            .await
            .is_some()
    );
    assert_eq!(ctx.model.count(t0()).await.unwrap(), 0);
    assert_eq!(ctx.model.delete_expired(t0(), 10).await.unwrap(), 1);
}

pub async fn create_is_insert_only<M: SessionModel>(ctx: &Ctx<M>) {
    let first = row("c", r#"{"who":"first"}"#, t0() + secs(60));
    assert_eq!(
        ctx.model.create(&first, t0()).await.unwrap(),
        Created::Inserted
    );
    let second = row("c", r#"{"who":"second"}"#, t0() + secs(120));
    assert_eq!(
        ctx.model.create(&second, t0()).await.unwrap(),
        Created::AlreadyExists
    );
    assert_eq!(load(ctx, "c", t0()).await, Some(first));
}

pub async fn create_does_not_take_over_an_expired_row<M: SessionModel>(ctx: &Ctx<M>) {
    let old = row("x", r#"{"old":true}"#, t0() - secs(5));
    ctx.model.save(&old, t0() - secs(50)).await.unwrap();
    let new = row("x", r#"{"new":true}"#, t0() + secs(60));
    assert_eq!(
        ctx.model.create(&new, t0()).await.unwrap(),
        Created::AlreadyExists
    );
    assert_eq!(load(ctx, "x", t0()).await, None);
    assert_eq!(load(ctx, "x", t0() - secs(10)).await, Some(old));
}

pub async fn concurrent_creates_have_one_winner<M: SessionModel>(ctx: &Ctx<M>) {
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let model = Arc::clone(&ctx.model);
            tokio::spawn(async move {
                let r = row("race", &format!(r#"{{"i":{i}}}"#), t0() + secs(60));
                (i, model.create(&r, t0()).await.unwrap())
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        let (i, outcome) = t.await.unwrap();
        if outcome == Created::Inserted {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let stored = load(ctx, "race", t0()).await.unwrap();
    assert_eq!(stored.data, format!(r#"{{"i":{}}}"#, winners[0]));
}

pub async fn save_is_an_upsert<M: SessionModel>(ctx: &Ctx<M>) {
    ctx.model
        .save(&row("u", r#"{"v":1}"#, t0() + secs(10)), t0())
        .await
        .unwrap();
    let second = row("u", r#"{"v":2}"#, t0() + secs(20));
    ctx.model.save(&second, t0() + secs(1)).await.unwrap();
    assert_eq!(load(ctx, "u", t0()).await, Some(second));
    // Saving over an expired row writes it anew.
    ctx.model
        .save(&row("e", "{}", t0() - secs(1)), t0() - secs(9))
        .await
        .unwrap();
    let revived = row("e", r#"{"v":3}"#, t0() + secs(5));
    ctx.model.save(&revived, t0()).await.unwrap();
    assert_eq!(load(ctx, "e", t0()).await, Some(revived));
    assert_eq!(ctx.model.count(t0()).await.unwrap(), 2);
}

pub async fn update_changes_only_live_rows<M: SessionModel>(ctx: &Ctx<M>) {
    let missing = row("m", "{}", t0() + secs(10));
    assert!(!ctx.model.update(&missing, t0()).await.unwrap());
    assert_eq!(load(ctx, "m", t0()).await, None, "update must not insert");

    let old = row("dead", r#"{"v":"old"}"#, t0() - secs(1));
    ctx.model.save(&old, t0() - secs(10)).await.unwrap();
    assert!(
        !ctx.model
            .update(&row("dead", r#"{"v":"new"}"#, t0() + secs(60)), t0())
            .await
            .unwrap()
    );
    assert_eq!(
        load(ctx, "dead", t0()).await,
        None,
        "update must not revive"
    );
    assert_eq!(load(ctx, "dead", t0() - secs(2)).await, Some(old));

    ctx.model
        .save(&row("live", r#"{"v":1}"#, t0() + secs(10)), t0())
        .await
        .unwrap();
    let new = row("live", r#"{"v":2}"#, t0() + secs(30));
    assert!(ctx.model.update(&new, t0()).await.unwrap());
    assert_eq!(load(ctx, "live", t0()).await, Some(new));
}

pub async fn update_after_destroy_stays_destroyed<M: SessionModel>(ctx: &Ctx<M>) {
    let r = row("logout", r#"{"user":"ann"}"#, t0() + secs(60));
    ctx.model.create(&r, t0()).await.unwrap();
    assert!(ctx.model.destroy("logout").await.unwrap());
    // A slower request that loaded the session before the logout now writes it back.
    assert!(!ctx.model.update(&r, t0()).await.unwrap());
    assert!(
        !ctx.model
            .touch("logout", t0() + secs(99), t0(), None)
            .await
            .unwrap()
    );
    assert_eq!(load(ctx, "logout", t0()).await, None);
}

pub async fn touch_slides_live_rows_only<M: SessionModel>(ctx: &Ctx<M>) {
    ctx.model
        .save(&row("t", r#"{"k":1}"#, t0() + secs(10)), t0())
        .await
        .unwrap();
    assert!(
        ctx.model
            .touch("t", t0() + secs(100), t0(), None)
            .await
            .unwrap()
    );
    let got = load(ctx, "t", t0()).await.unwrap();
    assert_eq!(got.expires, Some(t0() + secs(100)));
    assert_eq!(got.data, r#"{"k":1}"#, "touch keeps the data");

    assert!(
        !ctx.model
            .touch("none", t0() + secs(100), t0(), None)
            .await
            .unwrap()
    );
    assert_eq!(load(ctx, "none", t0()).await, None, "touch must not insert");

    ctx.model
        .save(&row("gone", "{}", t0() - secs(1)), t0() - secs(5))
        .await
        .unwrap();
    assert!(
        !ctx.model
            .touch("gone", t0() + secs(100), t0(), None)
            .await
            .unwrap()
    );
    assert_eq!(load(ctx, "gone", t0()).await, None, "touch must not revive");
}

pub async fn touch_throttle_is_part_of_the_update<M: SessionModel>(ctx: &Ctx<M>) {
    let stored = t0() + secs(100);
    ctx.model
        .save(&row("th", "{}", stored), t0())
        .await
        .unwrap();
    // Stored expiry is not before the limit: skipped, nothing written.
    let skipped = ctx
        .model
        .touch("th", t0() + secs(150), t0(), Some(stored))
        .await
        .unwrap();
    assert!(!skipped);
    assert_eq!(load(ctx, "th", t0()).await.unwrap().expires, Some(stored));
    // Stored expiry is before the limit: written.
    let limit = stored + TimeDelta::milliseconds(1);
    assert!(
        ctx.model
            .touch("th", t0() + secs(150), t0(), Some(limit))
            .await
            .unwrap()
    );
    assert_eq!(
        load(ctx, "th", t0()).await.unwrap().expires,
        Some(t0() + secs(150))
    );
}

pub async fn destroy_reports_whether_there_was_a_row<M: SessionModel>(ctx: &Ctx<M>) {
    assert!(!ctx.model.destroy("d").await.unwrap());
    ctx.model
        .save(&row("d", "{}", t0() - secs(1)), t0() - secs(2))
        .await
        .unwrap();
    assert!(
        ctx.model.destroy("d").await.unwrap(),
        "destroy removes expired rows too"
    );
    assert!(!ctx.model.destroy("d").await.unwrap());
}

pub async fn delete_expired_works_in_bounded_batches<M: SessionModel>(ctx: &Ctx<M>) {
    for i in 0..25 {
        let r = row(&format!("exp{i}"), "{}", t0() - secs(i + 1));
        ctx.model.save(&r, t0() - secs(100)).await.unwrap();
    }
    for i in 0..5 {
        let r = row(&format!("live{i}"), "{}", t0() + secs(i + 1));
        ctx.model.save(&r, t0()).await.unwrap();
    }
    let forever = SessionRow::new("forever", "{}", None);
    ctx.model.save(&forever, t0()).await.unwrap();

    assert_eq!(ctx.model.delete_expired(t0(), 10).await.unwrap(), 10);
    assert_eq!(ctx.model.delete_expired(t0(), 10).await.unwrap(), 10);
    assert_eq!(ctx.model.delete_expired(t0(), 10).await.unwrap(), 5);
    assert_eq!(ctx.model.delete_expired(t0(), 10).await.unwrap(), 0);
    assert_eq!(ctx.model.count(t0()).await.unwrap(), 6);
    assert_eq!(load(ctx, "forever", t0()).await, Some(forever));
    // Nothing expired is left: even far in the past they are gone.
    assert_eq!(ctx.model.count(t0() - secs(1000)).await.unwrap(), 6);
}

pub async fn count_and_list_see_live_rows_only<M: SessionModel>(ctx: &Ctx<M>) {
    assert_eq!(ctx.model.count(t0()).await.unwrap(), 0);
    assert!(list(ctx, t0()).await.is_empty());
    ctx.model
        .save(&row("l1", r#"{"a":1}"#, t0() + secs(5)), t0())
        .await
        .unwrap();
    ctx.model
        .save(&row("l2", r#"{"a":2}"#, t0() + secs(6)), t0())
        .await
        .unwrap();
    ctx.model
        .save(&row("l3", r#"{"a":3}"#, t0() - secs(6)), t0())
        .await
        .unwrap();
    assert_eq!(ctx.model.count(t0()).await.unwrap(), 2);
    let mut listed = list(ctx, t0()).await;
    listed.sort_by(|a, b| a.sid.cmp(&b.sid));
    assert_eq!(
        listed,
        vec![
            row("l1", r#"{"a":1}"#, t0() + secs(5)),
            row("l2", r#"{"a":2}"#, t0() + secs(6))
        ]
    );
}

pub async fn clear_removes_everything<M: SessionModel>(ctx: &Ctx<M>) {
    ctx.model
        .save(&row("k1", "{}", t0() + secs(5)), t0())
        .await
        .unwrap();
    ctx.model
        .save(&row("k2", "{}", t0() - secs(5)), t0())
        .await
        .unwrap();
    assert_eq!(ctx.model.clear().await.unwrap(), 2);
    assert_eq!(ctx.model.count(t0() - secs(100)).await.unwrap(), 0);
    assert_eq!(ctx.model.clear().await.unwrap(), 0);
}

pub async fn data_round_trips_exactly<M: SessionModel>(ctx: &Ctx<M>) {
    let big = "x".repeat(200_000);
    let text =
        format!(r#"{{"quote":"it's \"q\" ; DROP TABLE x; --","unicode":"żółw 🐢","big":"{big}"}}"#);
    let sid = "Case-Sensitive id with spaces and 'quotes'";
    let r = row(sid, &text, t0() + secs(5));
    ctx.model.save(&r, t0()).await.unwrap();
    assert_eq!(load(ctx, sid, t0()).await, Some(r));
    assert_eq!(
        load(ctx, &sid.to_lowercase(), t0()).await,
        None,
        "ids compare exactly"
    );
}

/// Rows written by plain SQL, as another client would, with expiries in the table's own
/// format: an expired one is never served nor counted and is swept; a live one is served.
pub async fn rows_written_by_sql_obey_the_contract<M: SessionModel>(ctx: &Ctx<M>) {
    let Some(raw) = &ctx.raw else { return };
    let q = ctx.quote;
    let now = Utc::now();
    let insert = |sid: &str, expires: &str| {
        format!(
            "INSERT INTO {} ({}, {}, {}, {}, {}) VALUES ('{sid}', '{{\"by\":\"sql\"}}', {expires}, {stamp}, {stamp})",
            q(&ctx.table),
            q("sid"),
            q("data"),
            q("expires"),
            q("createdAt"),
            q("updatedAt"),
            stamp = ctx.hour_ago,
        )
    };
    raw(insert("sql-expired", ctx.hour_ago)).await;
    raw(insert("sql-no-expiry", "NULL")).await;
    assert_eq!(load(ctx, "sql-expired", now).await, None);
    assert_eq!(
        ctx.model.count(now).await.unwrap(),
        1,
        "only the row with no expiry is live"
    );
    let listed = list(ctx, now).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].sid, "sql-no-expiry");
    assert_eq!(listed[0].expires, None);
    assert!(
        !ctx.model
            .touch("sql-expired", now + secs(60), now, None)
            .await
            .unwrap()
    );
    assert_eq!(ctx.model.delete_expired(now, 100).await.unwrap(), 1);
    assert!(ctx.model.destroy("sql-no-expiry").await.unwrap());
}

/// Optimistic concurrency: an update based on an older version is refused with a distinct
/// error and changes nothing.
pub async fn versions_refuse_stale_updates<M: SessionModel>(ctx: &Ctx<M>) {
    if !ctx.model.capabilities().version {
        return;
    }
    ctx.model
        .create(&row("v", r#"{"n":0}"#, t0() + secs(60)), t0())
        .await
        .unwrap();
    let read = ctx.model.load("v", t0()).await.unwrap().unwrap();
    assert_eq!(read.version, Some(0));
    // Two requests read version 0; the first writes, the second must not overwrite it.
    let first = row("v", r#"{"n":1}"#, t0() + secs(60)).with_version(0);
    assert!(ctx.model.update(&first, t0()).await.unwrap());
    let stale = row("v", r#"{"n":2}"#, t0() + secs(60)).with_version(0);
    match ctx.model.update(&stale, t0()).await {
        Err(sequelstore::Error::Conflict {
            sid,
            expected,
            found,
        }) => {
            assert_eq!((sid.as_str(), expected, found), ("v", 0, 1));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let stored = ctx.model.load("v", t0()).await.unwrap().unwrap();
    assert_eq!(
        (stored.data.as_str(), stored.version),
        (r#"{"n":1}"#, Some(1))
    );
    // A versioned update of a missing session is a plain "not there", not a conflict.
    assert!(
        !ctx.model
            .update(&row("nope", "{}", t0() + secs(9)).with_version(0), t0())
            .await
            .unwrap()
    );
    // Without a version, update writes whatever is stored, and still raises it.
    assert!(
        ctx.model
            .update(&row("v", r#"{"n":3}"#, t0() + secs(60)), t0())
            .await
            .unwrap()
    );
    assert_eq!(
        ctx.model.load("v", t0()).await.unwrap().unwrap().version,
        Some(2)
    );
}

/// Saves raise the version, touches do not (a touch never conflicts with an update).
pub async fn versions_count_writes_not_touches<M: SessionModel>(ctx: &Ctx<M>) {
    if !ctx.model.capabilities().version {
        return;
    }
    let version = |ctx: &Ctx<M>| {
        let model = Arc::clone(&ctx.model);
        async move { model.load("w", t0()).await.unwrap().unwrap().version }
    };
    ctx.model
        .save(&row("w", "{}", t0() + secs(60)), t0())
        .await
        .unwrap();
    assert_eq!(version(ctx).await, Some(0));
    ctx.model
        .save(&row("w", r#"{"a":1}"#, t0() + secs(60)), t0())
        .await
        .unwrap();
    assert_eq!(version(ctx).await, Some(1));
    assert!(
        ctx.model
            .touch("w", t0() + secs(90), t0(), None)
            .await
            .unwrap()
    );
    assert_eq!(version(ctx).await, Some(1));
    let based_on_1 = row("w", r#"{"a":2}"#, t0() + secs(90)).with_version(1);
    assert!(ctx.model.update(&based_on_1, t0()).await.unwrap());
    assert_eq!(version(ctx).await, Some(2));
}

/// Load-and-slide: the row comes back with its new expiry; a throttled touch that is not due
/// returns the row as stored and writes nothing; missing and expired rows stay so.
pub async fn load_and_touch_slides_in_one_call<M: SessionModel>(ctx: &Ctx<M>) {
    let m = &ctx.model;
    m.save(&row("lt", r#"{"k":1}"#, t0() + secs(10)), t0())
        .await
        .unwrap();
    let got = m
        .load_and_touch("lt", t0() + secs(100), t0(), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.data.as_str(), got.expires),
        (r#"{"k":1}"#, Some(t0() + secs(100)))
    );
    assert_eq!(
        load(ctx, "lt", t0()).await.unwrap().expires,
        Some(t0() + secs(100))
    );

    // Throttled, not due: the stored expiry (100) is not before the limit (90).
    let got = m
        .load_and_touch("lt", t0() + secs(120), t0(), Some(t0() + secs(90)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.expires, Some(t0() + secs(100)));
    assert_eq!(
        load(ctx, "lt", t0()).await.unwrap().expires,
        Some(t0() + secs(100))
    );
    // Throttled, due.
    let got = m
        .load_and_touch("lt", t0() + secs(130), t0(), Some(t0() + secs(101)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.expires, Some(t0() + secs(130)));
    assert_eq!(
        load(ctx, "lt", t0()).await.unwrap().expires,
        Some(t0() + secs(130))
    );

    assert_eq!(
        m.load_and_touch("none", t0() + secs(9), t0(), None)
            .await
            .unwrap(),
        None
    );
    m.save(&row("old", "{}", t0() - secs(1)), t0() - secs(5))
        .await
        .unwrap();
    for limit in [None, Some(t0() + secs(50))] {
        assert_eq!(
            m.load_and_touch("old", t0() + secs(9), t0(), limit)
                .await
                .unwrap(),
            None
        );
    }
    assert_eq!(load(ctx, "old", t0()).await, None, "not revived");
    assert_eq!(m.count(t0()).await.unwrap(), 1);
}

/// One sweep in small batches removes every expired row and no other.
pub async fn delete_all_expired_is_one_whole_sweep<M: SessionModel>(ctx: &Ctx<M>) {
    for i in 0..25 {
        let r = row(&format!("exp{i}"), "{}", t0() - secs(i + 1));
        ctx.model.save(&r, t0() - secs(100)).await.unwrap();
    }
    for i in 0..3 {
        let r = row(&format!("live{i}"), "{}", t0() + secs(i + 1));
        ctx.model.save(&r, t0()).await.unwrap();
    }
    ctx.model
        .save(&SessionRow::new("forever", "{}", None), t0())
        .await
        .unwrap();
    assert_eq!(ctx.model.delete_all_expired(t0(), 10).await.unwrap(), 25);
    assert_eq!(ctx.model.delete_all_expired(t0(), 10).await.unwrap(), 0);
    assert_eq!(ctx.model.count(t0() - secs(1000)).await.unwrap(), 4);
}
