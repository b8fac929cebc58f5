//! The conformance suite of the [`SessionModel`] contract, for checking a model of your own
//! the way this crate checks its own models (feature `testing`).
//!
//! Each test is a public async function taking a [`Ctx`]; [`conformance_tests!`](crate::conformance_tests)
//! writes one `#[test]` per function, each on a fresh model from a function you give:
//!
//! ```
//! use sequelstore::MemoryModel;
//! use sequelstore::testing::Ctx;
//!
//! // Called once per test with the test's name: make a fresh model (a table of its own, say),
//! // or return None to skip (a server that cannot be reached).
//! async fn make(_test: &str) -> Option<Ctx<MemoryModel>> {
//!     Some(Ctx::new(MemoryModel::new()))
//! }
//!
//! sequelstore::conformance_tests!(make);
//! # fn main() {}
//! ```
//!
//! A SQL model can pass a way to run SQL on its table ([`Ctx::raw`]), so that the suite also
//! checks rows another client wrote. The tests panic on a breach of the contract, as tests do;
//! nothing here is for production code.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use crate::{Created, SessionModel, SessionRow, Slide, Sweep};

/// Runs `test` to the end on a runtime of its own with two worker threads, so that the
/// suite's concurrent calls really run at once; what each generated `#[test]` does.
pub fn run(test: impl Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime for the test")
        .block_on(test);
}

/// Runs raw SQL on the backend under test, bypassing the model.
pub type RawSql = Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// What a conformance test gets: the model, and for SQL backends a way to write rows straight
/// into its table.
pub struct Ctx<M> {
    /// The model under test.
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

impl<M> std::fmt::Debug for Ctx<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("model", &std::any::type_name::<M>())
            .field("table", &self.table)
            .field("raw", &self.raw.is_some())
            .finish_non_exhaustive()
    }
}

impl<M> Ctx<M> {
    /// A context for a model with no SQL table under it (or one the suite may not write to
    /// directly): the tests that write rows by SQL are skipped.
    pub fn new(model: M) -> Self {
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

/// Instantiates the conformance suite as `#[test]` functions in the calling module: `$make` is
/// an async fn taking the test's name and returning `Option<Ctx<M>>` (`None` to skip, when a
/// server cannot be reached, say). See the [`testing`](crate::testing) module.
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
            load_and_slide_keeps_the_rows_own_lifetime,
            versions_count_writes_not_touches,
            users_are_listed_counted_and_destroyed,
            writes_set_and_clear_the_user
        );
    };
    (@each $make:path; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::testing::run(async {
                    if let Some(ctx) = $make(stringify!($name)).await {
                        $crate::testing::$name(&ctx).await;
                        ctx.finish().await;
                    }
                });
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

/// `n` seconds.
pub fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

/// A row with `expires` and no version.
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

/// `load` of an id never stored is `None`.
pub async fn load_missing_is_none<M: SessionModel>(ctx: &Ctx<M>) {
    assert_eq!(load(ctx, "nobody", t0()).await, None);
}

/// What `save` wrote, `load` returns.
pub async fn save_then_load_round_trips<M: SessionModel>(ctx: &Ctx<M>) {
    let r = row("a", r#"{"n":1}"#, t0() + secs(60));
    ctx.model.save(&r, t0()).await.unwrap();
    assert_eq!(load(ctx, "a", t0()).await, Some(r));
}

/// `load` filters expired rows out, and does not delete them.
pub async fn load_never_returns_expired<M: SessionModel>(ctx: &Ctx<M>) {
    let r = row("old", "{}", t0() - secs(1));
    ctx.model.save(&r, t0() - secs(100)).await.unwrap();
    assert_eq!(load(ctx, "old", t0()).await, None);
    // Still there, and live at an earlier time: load filters, it does not delete.
    assert_eq!(load(ctx, "old", t0() - secs(2)).await, Some(r));
}

/// A row whose expiry is exactly `now` is expired; a millisecond later it was live.
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

/// `create` never overwrites a row with the same id.
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

/// `create` does not take over an expired row's id either.
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

/// Of many concurrent creates of one id, exactly one inserts.
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

/// `save` inserts a new row and replaces an existing one.
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

/// `update` writes a live row only: a missing or expired one stays so.
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

/// An update after a destroy does not bring the session back.
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

/// `touch` slides the expiry of a live row, and leaves missing and expired ones alone.
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

/// A throttled touch writes only when the stored expiry is before the limit.
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

/// `destroy` says whether a row went, live or expired.
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

/// `delete_expired` deletes at most `limit` expired rows and never a live one.
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

/// `count` and `list` see live rows only.
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

/// `clear` deletes every row, live or expired, and says how many.
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

/// Data and ids come back byte for byte: quotes, SQL, Unicode, 200 KB, case.
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
        Err(crate::Error::Conflict {
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

/// Load-and-slide by the row's own lifetime: a row written with 30 minutes to live gets 30
/// minutes from each slide (not the fallback), the throttle is measured against those 30
/// minutes and never passes half of them, and missing and expired rows stay so.
pub async fn load_and_slide_keeps_the_rows_own_lifetime<M: SessionModel>(ctx: &Ctx<M>) {
    let m = &ctx.model;
    let min = |n: i64| secs(60 * n);
    let fortnight = min(14 * 24 * 60);
    let slide = |at: TimeDelta, touch_after: Option<i64>| {
        let now = t0() + at;
        let touch_after = touch_after.map(|n| std::time::Duration::from_secs(60 * n as u64));
        Slide::new(now, now + fortnight, touch_after)
    };
    let stored = |at: TimeDelta| async move { load(ctx, "sl", t0() + at).await.map(|r| r.expires) };
    m.save(&row("sl", r#"{"k":1}"#, t0() + min(30)), t0())
        .await
        .unwrap();

    // No throttle: ten minutes on, 30 minutes from now.
    let got = m.load_and_slide("sl", slide(min(10), None)).await.unwrap();
    let got = got.expect("the row is live");
    assert_eq!(
        (got.data.as_str(), got.expires),
        (r#"{"k":1}"#, Some(t0() + min(40)))
    );
    assert_eq!(stored(min(10)).await, Some(Some(t0() + min(40))));

    // Throttled at 5 minutes: due 10 minutes after the last write, not due one minute after.
    let got = m
        .load_and_slide("sl", slide(min(20), Some(5)))
        .await
        .unwrap();
    assert_eq!(got.map(|r| r.expires), Some(Some(t0() + min(50))));
    let got = m
        .load_and_slide("sl", slide(min(21), Some(5)))
        .await
        .unwrap();
    assert_eq!(got.map(|r| r.expires), Some(Some(t0() + min(50))));
    assert_eq!(stored(min(21)).await, Some(Some(t0() + min(50))));

    // A throttle of an hour on a 30-minute life writes once half of it (15 minutes) has passed.
    let got = m
        .load_and_slide("sl", slide(min(34), Some(60)))
        .await
        .unwrap();
    assert_eq!(got.map(|r| r.expires), Some(Some(t0() + min(50))));
    let got = m
        .load_and_slide("sl", slide(min(36), Some(60)))
        .await
        .unwrap();
    assert_eq!(got.map(|r| r.expires), Some(Some(t0() + min(66))));

    // A write gives the row a new lifetime, which the next slide keeps.
    m.save(&row("sl", r#"{"k":2}"#, t0() + min(37)), t0() + min(36))
        .await
        .unwrap();
    let got = m
        .load_and_slide("sl", slide(min(36) + secs(30), None))
        .await
        .unwrap();
    assert_eq!(
        got.map(|r| r.expires),
        Some(Some(t0() + min(37) + secs(30)))
    );

    // A row whose last write is not before its expiry (written by an instance whose clock is
    // ahead) has no lifetime to keep: it slides to the fallback.
    for written in [min(40), min(45)] {
        m.save(&row("ahead", "{}", t0() + min(40)), t0() + written)
            .await
            .unwrap();
        let got = m
            .load_and_slide("ahead", slide(min(1), None))
            .await
            .unwrap();
        let fallback = t0() + min(1) + fortnight;
        assert_eq!(got.map(|r| r.expires), Some(Some(fallback)), "{written}");
    }

    assert_eq!(
        m.load_and_slide("none", slide(min(0), None)).await.unwrap(),
        None
    );
    m.save(&row("old", "{}", t0() - secs(1)), t0() - min(30))
        .await
        .unwrap();
    for touch_after in [None, Some(5)] {
        let got = m.load_and_slide("old", slide(min(0), touch_after)).await;
        assert_eq!(got.unwrap(), None);
    }
    assert_eq!(load(ctx, "old", t0()).await, None, "not revived");
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
    assert_eq!(
        ctx.model.delete_all_expired(t0(), 10).await.unwrap(),
        Sweep::finished(25)
    );
    assert_eq!(
        ctx.model.delete_all_expired(t0(), 10).await.unwrap(),
        Sweep::finished(0)
    );
    assert_eq!(ctx.model.count(t0() - secs(1000)).await.unwrap(), 4);
}

/// The ids of a listing.
fn ids(listed: &[crate::UserSession]) -> Vec<&str> {
    listed.iter().map(|s| s.sid.as_str()).collect()
}

/// On a model that keeps users: a user's live sessions are listed by id, a page at a time,
/// with their times, and counted; destroying all but one, then all, deletes that user's rows
/// only (expired ones too). On a model that does not: every per-user call is
/// [`Error::Unsupported`](crate::Error::Unsupported), and nothing is deleted.
pub async fn users_are_listed_counted_and_destroyed<M: SessionModel>(ctx: &Ctx<M>) {
    let m = &ctx.model;
    let later = t0() + secs(600);
    let owned = |sid: &str, user: &str| row(sid, "{}", later).with_user_id(user);
    for sid in ["a3", "a1", "a2"] {
        m.save(&owned(sid, "alice"), t0() - secs(10)).await.unwrap();
    }
    let gone = row("a0", "{}", t0() - secs(1)).with_user_id("alice");
    m.save(&gone, t0() - secs(20)).await.unwrap();
    m.create(&owned("b1", "bob"), t0()).await.unwrap();
    m.save(&row("n1", "{}", later), t0()).await.unwrap();
    if !m.capabilities().user_id {
        let refused = |r: Result<(), crate::Error>| {
            assert!(
                matches!(r, Err(crate::Error::Unsupported(ref msg)) if msg.contains("user_id")),
                "{r:?}"
            );
        };
        refused(m.list_for_user("alice", t0(), None, 10).await.map(drop));
        refused(m.count_for_user("alice", t0()).await.map(drop));
        refused(m.destroy_for_user("alice", None).await.map(drop));
        refused(m.destroy_for_user("alice", Some("a1")).await.map(drop));
        assert_eq!(m.count(t0()).await.unwrap(), 5, "nothing was deleted");
        return;
    }
    let all = m.list_for_user("alice", t0(), None, 10).await.unwrap();
    assert_eq!(ids(&all), ["a1", "a2", "a3"], "live ones, by id");
    for s in &all {
        assert_eq!(s.expires, Some(later));
        assert!(s.created.is_none_or(|c| c == t0() - secs(10)), "{s:?}");
        assert!(s.written.is_none_or(|w| w == t0() - secs(10)), "{s:?}");
    }
    let page = m.list_for_user("alice", t0(), None, 2).await.unwrap();
    assert_eq!(ids(&page), ["a1", "a2"]);
    let next = m.list_for_user("alice", t0(), Some("a2"), 2).await.unwrap();
    assert_eq!(ids(&next), ["a3"]);
    assert!(
        m.list_for_user("alice", t0(), Some("a3"), 2)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        ids(&m.list_for_user("bob", t0(), None, 10).await.unwrap()),
        ["b1"]
    );
    assert!(
        m.list_for_user("carol", t0(), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(m.count_for_user("alice", t0()).await.unwrap(), 3);
    assert_eq!(m.count_for_user("bob", t0()).await.unwrap(), 1);
    assert_eq!(
        m.count_for_user("Alice", t0()).await.unwrap(),
        0,
        "user ids are exact"
    );

    // A touch is a write: the listing shows it.
    m.touch("a3", later + secs(60), t0() + secs(5), None)
        .await
        .unwrap();
    let a3 = m.list_for_user("alice", t0(), Some("a2"), 1).await.unwrap();
    assert_eq!(a3[0].expires, Some(later + secs(60)));
    assert!(a3[0].written.is_none_or(|w| w == t0() + secs(5)), "{a3:?}");
    assert!(a3[0].created.is_none_or(|c| c == t0() - secs(10)), "{a3:?}");

    assert_eq!(
        m.destroy_for_user("alice", Some("a2")).await.unwrap(),
        3,
        "a1, a3 and the expired a0"
    );
    assert_eq!(
        ids(&m.list_for_user("alice", t0(), None, 10).await.unwrap()),
        ["a2"]
    );
    assert!(load(ctx, "a1", t0()).await.is_none());
    assert!(load(ctx, "a2", t0()).await.is_some());
    assert!(load(ctx, "b1", t0()).await.is_some());
    assert!(load(ctx, "n1", t0()).await.is_some());
    assert_eq!(m.destroy_for_user("alice", None).await.unwrap(), 1);
    assert_eq!(m.destroy_for_user("alice", None).await.unwrap(), 0);
    assert_eq!(m.count_for_user("alice", t0()).await.unwrap(), 0);
    assert_eq!(
        m.count(t0()).await.unwrap(),
        2,
        "bob's and the one without a user"
    );
}

/// Each write sets the user column to the row's user: a save or an update moves a session to
/// another user or to none; a touch leaves it; a load does not say whose a session is.
pub async fn writes_set_and_clear_the_user<M: SessionModel>(ctx: &Ctx<M>) {
    let m = &ctx.model;
    if !m.capabilities().user_id {
        let r = row("s", "{}", t0() + secs(60)).with_user_id("alice");
        m.save(&r, t0()).await.unwrap();
        assert_eq!(
            load(ctx, "s", t0()).await.map(|r| r.data),
            Some("{}".to_owned()),
            "a model without users stores the row and ignores its user"
        );
        return;
    }
    let later = t0() + secs(60);
    let count = |user: &'static str| async move { m.count_for_user(user, t0()).await.unwrap() };
    // First without a user, so that each statement is prepared with a NULL user: PostgreSQL
    // keeps the type of a statement's first arguments.
    m.save(&row("s", "{}", later), t0()).await.unwrap();
    m.create(&row("t", "{}", later), t0()).await.unwrap();
    assert!(m.update(&row("t", "{}", later), t0()).await.unwrap());
    m.save(&row("s", "{}", later).with_user_id("alice"), t0())
        .await
        .unwrap();
    assert_eq!(count("alice").await, 1);
    let loaded = m.load("s", t0()).await.unwrap().unwrap();
    assert_eq!(loaded.user_id, None, "loads do not read the user");
    assert!(
        m.update(&row("s", "{}", later).with_user_id("bob"), t0())
            .await
            .unwrap()
    );
    assert_eq!((count("alice").await, count("bob").await), (0, 1));
    m.touch("s", later + secs(1), t0(), None).await.unwrap();
    assert_eq!(count("bob").await, 1, "a touch keeps the user");
    m.save(&row("s", "{}", later), t0()).await.unwrap();
    assert_eq!(count("bob").await, 0, "a save without a user clears it");
    m.save(&row("s", "{}", later).with_user_id("42"), t0())
        .await
        .unwrap();
    assert_eq!(count("42").await, 1);
    assert!(m.destroy("s").await.unwrap());
    assert_eq!(count("42").await, 0);
}
