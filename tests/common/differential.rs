//! Differential testing: random sequences of operations, with a clock the test moves, run on a
//! backend and on the in-memory model side by side. Any difference in what they return fails
//! the test, and proptest prints the shrunk sequence. `SEQUELSTORE_LONG=1` runs many more cases.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;

use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use sequelstore::{Error, MemoryModel, SessionModel, SessionRow, Slide};

use super::{Ctx, t0};

const SIDS: [&str; 4] = ["a", "b", "C", "c"];

#[derive(Debug, Clone)]
pub enum Op {
    Load(usize),
    Create(usize, u8, i64),
    Save(usize, u8, i64),
    Update(usize, u8, i64, Option<i64>),
    Touch(usize, i64, Option<i64>),
    LoadAndTouch(usize, i64, Option<i64>),
    /// Load and slide by the row's own lifetime: the fallback and the throttle, in seconds.
    LoadAndSlide(usize, i64, Option<u64>),
    Destroy(usize),
    DeleteExpired,
    Count,
    List,
    Clear,
    /// The live sessions of a user (`USERS`), listed whole, counted, or destroyed (all but
    /// one of `SIDS`, or all); rows are written with the user their data picks (`user_of`).
    ListUser(usize),
    CountUser(usize),
    DestroyUser(usize, Option<usize>),
    /// Move the clock forward by this many seconds.
    Advance(i64),
}

const USERS: [&str; 2] = ["u1", "u2"];

/// The user of a row written with data `d`: most rows have one, some none.
fn user_of(d: u8) -> Option<&'static str> {
    match d {
        0 | 1 => Some(USERS[0]),
        2 => Some(USERS[1]),
        _ => None,
    }
}

fn op() -> impl Strategy<Value = Op> {
    let sid = 0..SIDS.len();
    let data = 0u8..4;
    let ttl = -5i64..30;
    prop_oneof![
        3 => sid.clone().prop_map(Op::Load),
        2 => (sid.clone(), data.clone(), ttl.clone()).prop_map(|(s, d, t)| Op::Create(s, d, t)),
        3 => (sid.clone(), data.clone(), ttl.clone()).prop_map(|(s, d, t)| Op::Save(s, d, t)),
        3 => (sid.clone(), data, ttl.clone(), proptest::option::of(0i64..4))
            .prop_map(|(s, d, t, v)| Op::Update(s, d, t, v)),
        2 => (sid.clone(), ttl, proptest::option::of(-5i64..30)).prop_map(|(s, t, th)| Op::Touch(s, t, th)),
        2 => (sid.clone(), -5i64..30, proptest::option::of(-5i64..30))
            .prop_map(|(s, t, th)| Op::LoadAndTouch(s, t, th)),
        2 => (sid.clone(), 1i64..30, proptest::option::of(0u64..30))
            .prop_map(|(s, t, th)| Op::LoadAndSlide(s, t, th)),
        1 => sid.prop_map(Op::Destroy),
        1 => Just(Op::DeleteExpired),
        1 => Just(Op::Count),
        1 => Just(Op::List),
        1 => Just(Op::Clear),
        1 => (0..USERS.len()).prop_map(Op::ListUser),
        1 => (0..USERS.len()).prop_map(Op::CountUser),
        1 => (0..USERS.len(), proptest::option::of(0..SIDS.len()))
            .prop_map(|(u, keep)| Op::DestroyUser(u, keep)),
        2 => (1i64..15).prop_map(Op::Advance),
    ]
}

/// A row as compared: sid, data, expiry, version.
type Flat = (String, String, Option<DateTime<Utc>>, Option<i64>);

/// A listed session as compared: sid, created, written, expires.
type Listed = (
    String,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

/// What an operation returned, in a form that compares across models.
#[derive(Debug, PartialEq)]
enum Out {
    Row(Option<Flat>),
    Rows(Vec<Flat>),
    /// A user's sessions: sid, created, written, expires.
    Listed(Vec<Listed>),
    Flag(bool),
    Count(u64),
    Conflict(i64, i64),
    Unit,
}

fn flat(r: SessionRow, versions: bool) -> Flat {
    (r.sid, r.data, r.expires, r.version.filter(|_| versions))
}

async fn apply<M: SessionModel + ?Sized>(
    m: &M,
    op: &Op,
    now: DateTime<Utc>,
    versions: bool,
    users: bool,
) -> Result<Out, Error> {
    let s = |i: &usize| SIDS[*i];
    let row = |i: &usize, d: &u8, t: &i64| {
        let mut row = SessionRow::new(
            SIDS[*i],
            format!(r#"{{"d":{d}}}"#),
            Some(now + TimeDelta::seconds(*t)),
        );
        row.user_id = user_of(*d).map(str::to_owned);
        row
    };
    Ok(match op {
        Op::Load(i) => Out::Row(m.load(s(i), now).await?.map(|r| flat(r, versions))),
        Op::Create(i, d, t) => {
            Out::Flag(m.create(&row(i, d, t), now).await? == sequelstore::Created::Inserted)
        }
        Op::Save(i, d, t) => {
            m.save(&row(i, d, t), now).await?;
            Out::Unit
        }
        Op::Update(i, d, t, v) => {
            let mut r = row(i, d, t);
            r.version = v.filter(|_| versions);
            match m.update(&r, now).await {
                Ok(b) => Out::Flag(b),
                Err(Error::Conflict {
                    expected, found, ..
                }) => Out::Conflict(expected, found),
                Err(e) => return Err(e),
            }
        }
        Op::Touch(i, t, throttle) => Out::Flag(
            m.touch(
                s(i),
                now + TimeDelta::seconds(*t),
                now,
                throttle.map(|th| now + TimeDelta::seconds(th)),
            )
            .await?,
        ),
        Op::LoadAndTouch(i, t, throttle) => Out::Row(
            m.load_and_touch(
                s(i),
                now + TimeDelta::seconds(*t),
                now,
                throttle.map(|th| now + TimeDelta::seconds(th)),
            )
            .await?
            .map(|r| flat(r, versions)),
        ),
        Op::LoadAndSlide(i, fallback, throttle) => {
            let touch_after = throttle.map(std::time::Duration::from_secs);
            let slide = Slide::new(now, now + TimeDelta::seconds(*fallback), touch_after);
            Out::Row(
                m.load_and_slide(s(i), slide)
                    .await?
                    .map(|r| flat(r, versions)),
            )
        }
        Op::Destroy(i) => Out::Flag(m.destroy(s(i)).await?),
        Op::DeleteExpired => Out::Count(m.delete_expired(now, 1000).await?),
        Op::Count => Out::Count(m.count(now).await?),
        Op::List => {
            let mut rows: Vec<_> = m
                .list(now)
                .await?
                .into_iter()
                .map(|r| flat(r, versions))
                .collect();
            rows.sort();
            Out::Rows(rows)
        }
        Op::Clear => Out::Count(m.clear().await?),
        // A model without users refuses these (the conformance suite checks how).
        Op::ListUser(_) | Op::CountUser(_) | Op::DestroyUser(..) if !users => Out::Unit,
        Op::ListUser(u) => {
            let mut listed: Vec<_> = m
                .list_for_user(USERS[*u], now, None, 1000)
                .await?
                .into_iter()
                .map(|s| (s.sid, s.created, s.written, s.expires))
                .collect();
            // Pages follow the column's collation; compared whole, in one order.
            listed.sort();
            Out::Listed(listed)
        }
        Op::CountUser(u) => Out::Count(m.count_for_user(USERS[*u], now).await?),
        Op::DestroyUser(u, keep) => {
            Out::Count(m.destroy_for_user(USERS[*u], keep.map(|i| SIDS[i])).await?)
        }
        Op::Advance(_) => Out::Unit,
    })
}

/// Runs the differential test against the model `make` returns (after clearing it per case).
pub fn run<M, F, Fut>(make: F)
where
    M: SessionModel,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Option<Ctx<M>>>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let Some(ctx) = rt.block_on(make()) else {
        return;
    };
    let versions = ctx.model.capabilities().version;
    let users = ctx.model.capabilities().user_id;
    let long = std::env::var("SEQUELSTORE_LONG").is_ok_and(|v| v == "1");
    let config = Config {
        cases: if long { 1000 } else { 64 },
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let ops = proptest::collection::vec(op(), 1..48);
    let result = runner.run(&ops, |ops| {
        rt.block_on(async {
            ctx.model
                .clear()
                .await
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let reference = MemoryModel::new();
            let mut now = t0();
            for (step, op) in ops.iter().enumerate() {
                if let Op::Advance(secs) = op {
                    now += TimeDelta::seconds(*secs);
                    continue;
                }
                let want = apply(&reference, op, now, versions, users).await;
                let got = apply(&*ctx.model, op, now, versions, users).await;
                let (want, got) = (format!("{want:?}"), format!("{got:?}"));
                prop_assert_eq!(got, want, "step {} {:?}", step, op);
            }
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("the backend and the in-memory model differ: {e}");
    }
    rt.block_on(ctx.finish());
}

/// One `#[test]` running the differential test on `$make`'s model.
#[macro_export]
macro_rules! differential_test {
    ($make:path) => {
        #[test]
        fn behaves_like_the_in_memory_model() {
            common::differential::run(|| $make("differential"));
        }
    };
}
