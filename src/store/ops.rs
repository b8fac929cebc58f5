//! The session calls of a [`Store`]: get, set, create, update, touch, destroy, all, length,
//! clear and sweep, and how session data becomes a row and back.

use std::future::Future;

use chrono::{DateTime, Utc};

use super::{FRESH_ID_ATTEMPTS, MERGE_ATTEMPTS, Session, Store};
use crate::error::redact;
use crate::model::{Created, SessionModel, SessionRow, Slide, Sweep, check_sid};
use crate::serializer::SessionData;
use crate::{Error, Result};

impl<M: SessionModel> Store<M> {
    /// The live session `sid`, or `None` when there is none or it has expired.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad id; [`Error::Decode`] for a stored session that does not
    /// decode; the model's error.
    pub async fn get(&self, sid: &str) -> Result<Option<Session>> {
        self.ensure_sweeper();
        check_sid(sid, self.max_sid_len)?;
        let now = self.now();
        match self.call(|| self.model.load(sid, now)).await? {
            // A second line of defence: a model that returned an expired row is not believed.
            Some(row) if row.is_live(now) => Ok(Some(self.decode(row)?)),
            _ => Ok(None),
        }
    }

    /// The live session `sid` with its expiry slid, honouring the touch throttle:
    /// [`Store::get`] and [`Store::touch`] in one call. The session comes back with the expiry
    /// it has after the slide.
    ///
    /// - With `Some(expires)`, the expiry slides to `expires`, on PostgreSQL and SQLite in one
    ///   statement.
    /// - With `None`, it slides forward by the session's own lifetime, the one its last write
    ///   gave it (`expires - updatedAt`; [`SessionModel::load_and_slide`]): a session written
    ///   with 30 minutes to live has 30 minutes from each load, and the throttle is at most half
    ///   of those 30 minutes. A row that does not record its last write (a table without
    ///   `updatedAt`, a model that does not keep it) slides to now + the ttl. This is what the
    ///   tower-sessions adapter does with [`Store::with_sliding_expiry`], so a framework's
    ///   `Expiry::OnInactivity` is kept. A load that writes takes a second statement.
    ///
    /// # Errors
    /// As [`Store::get`].
    pub async fn get_and_touch(
        &self,
        sid: &str,
        expires: Option<DateTime<Utc>>,
    ) -> Result<Option<Session>> {
        self.ensure_sweeper();
        check_sid(sid, self.max_sid_len)?;
        let now = self.now();
        let loaded = match expires {
            Some(expires) => {
                let expires = self.expiry_at(now, Some(expires));
                let only_if_before = self.throttle_limit(now, expires);
                self.call(|| self.model.load_and_touch(sid, expires, now, only_if_before))
                    .await?
            }
            None => {
                let slide = Slide::new(now, self.expiry_at(now, None), self.touch_after);
                self.call(|| self.model.load_and_slide(sid, slide)).await?
            }
        };
        match loaded {
            // A second line of defence: a model that returned an expired row is not believed.
            Some(row) if row.is_live(now) => Ok(Some(self.decode(row)?)),
            _ => Ok(None),
        }
    }

    /// Writes session `sid` (insert or replace), expiring at `expires` or after the ttl.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad id or an oversized session; [`Error::Encode`]; the model's error.
    pub async fn set(
        &self,
        sid: &str,
        data: &SessionData,
        expires: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let (row, now) = self.row_now(sid, data, expires)?;
        self.call(|| self.model.save(&row, now)).await
    }

    /// Inserts session `sid` as new; an existing id is reported, never overwritten.
    ///
    /// # Errors
    /// As [`Store::set`].
    pub async fn create(
        &self,
        sid: &str,
        data: &SessionData,
        expires: Option<DateTime<Utc>>,
    ) -> Result<Created> {
        let (row, now) = self.row_now(sid, data, expires)?;
        self.call(|| self.model.create(&row, now)).await
    }

    /// Inserts a new session under an id from `fresh_id`, drawing another id while the model
    /// reports the one drawn as taken, and returns the id it was stored under. This is how
    /// every web adapter creates a session: insert only, never overwriting, with one bound on
    /// the draws ([`FRESH_ID_ATTEMPTS`](crate::FRESH_ID_ATTEMPTS)) so that a model that
    /// reports every id as taken is an error rather than an endless loop.
    ///
    /// # Errors
    /// As [`Store::set`]; the error `fresh_id` returns; [`Error::Backend`] when every id drawn
    /// was taken.
    pub async fn create_with_fresh_id(
        &self,
        mut fresh_id: impl FnMut() -> Result<String> + Send,
        data: &SessionData,
        expires: Option<DateTime<Utc>>,
    ) -> Result<String> {
        for _ in 0..FRESH_ID_ATTEMPTS {
            let sid = fresh_id()?;
            match self.create(&sid, data, expires).await? {
                Created::Inserted => return Ok(sid),
                Created::AlreadyExists => {
                    tracing::debug!("session id collision on create; drawing a new id");
                }
            }
        }
        Err(Error::backend(format!(
            "every one of {FRESH_ID_ATTEMPTS} fresh session ids was reported as taken; \
             the session model's create is not honouring its contract, or the ids are not random"
        )))
    }

    /// Replaces live session `sid` and returns whether there was one: a session destroyed or
    /// expired meanwhile stays gone (a request finishing after logout does not log back in).
    ///
    /// # Errors
    /// As [`Store::set`].
    pub async fn update(
        &self,
        sid: &str,
        data: &SessionData,
        expires: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        let (row, now) = self.row_now(sid, data, expires)?;
        self.call(|| self.model.update(&row, now)).await
    }

    /// Writes `session` back only if the stored version is still `session.version`
    /// (optimistic concurrency), raising the version; returns whether a live session was
    /// written. When someone else wrote it meanwhile, the merge set with
    /// [`Store::with_conflict_merge`] combines the two and the write is tried again; without
    /// one, that is [`Error::Conflict`]. A session without a version (an unversioned model) is
    /// written as [`Store::update`] does.
    ///
    /// # Errors
    /// [`Error::Conflict`], and as [`Store::set`].
    pub async fn update_session(&self, session: &Session) -> Result<bool> {
        let mut now = self.now();
        let expires = self.expiry_at(now, session.expires);
        let mut row = self.encode(&session.id, &session.data, expires, now)?;
        row.version = session.version;
        let mut attempts = 0;
        loop {
            match self.call(|| self.model.update(&row, now)).await {
                Err(Error::Conflict { .. })
                    if self.merge.is_some() && attempts < MERGE_ATTEMPTS =>
                {
                    attempts += 1;
                    let Some(stored) = self.get(&session.id).await? else {
                        return Ok(false);
                    };
                    let merge = self.merge.as_deref().expect("checked in the match guard");
                    let merged = merge(&stored.data, &session.data);
                    now = self.now();
                    row = self.encode(&session.id, &merged, expires, now)?;
                    row.version = stored.version;
                }
                other => return other,
            }
        }
    }

    /// Slides the expiry of live session `sid` to `expires` (or now + ttl), honouring the touch
    /// throttle. Returns whether a write happened: `false` for a missing or expired session and
    /// for a touch the throttle skipped.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad id; the model's error.
    pub async fn touch(&self, sid: &str, expires: Option<DateTime<Utc>>) -> Result<bool> {
        self.ensure_sweeper();
        check_sid(sid, self.max_sid_len)?;
        let now = self.now();
        let expires = self.expiry_at(now, expires);
        let only_if_before = self.throttle_limit(now, expires);
        self.call(|| self.model.touch(sid, expires, now, only_if_before))
            .await
    }

    /// Deletes session `sid` and returns whether there was one.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad id; the model's error.
    pub async fn destroy(&self, sid: &str) -> Result<bool> {
        self.ensure_sweeper();
        check_sid(sid, self.max_sid_len)?;
        self.call(|| self.model.destroy(sid)).await
    }

    /// All live sessions.
    ///
    /// # Errors
    /// [`Error::Decode`] naming the first stored session that does not decode; the model's error.
    pub async fn all(&self) -> Result<Vec<Session>> {
        self.ensure_sweeper();
        let now = self.now();
        let rows = self.call(|| self.model.list(now)).await?;
        rows.into_iter()
            .filter(|row| row.is_live(now))
            .map(|row| self.decode(row))
            .collect()
    }

    /// The number of live sessions.
    ///
    /// # Errors
    /// The model's error.
    pub async fn length(&self) -> Result<u64> {
        self.ensure_sweeper();
        let now = self.now();
        self.call(|| self.model.count(now)).await
    }

    /// Deletes every session, live or expired, and returns how many went.
    ///
    /// # Errors
    /// The model's error.
    pub async fn clear(&self) -> Result<u64> {
        self.ensure_sweeper();
        self.call(|| self.model.clear()).await
    }

    /// Removes all expired sessions now, in batches, and says how many went: for a cron job
    /// when the background task is off. A sweep that finds another app instance sweeping the
    /// same table stops and says so ([`Sweep::lock_busy`]): that instance does the rest.
    ///
    /// # Errors
    /// The model's error; rows deleted by earlier batches stay deleted.
    pub async fn sweep(&self) -> Result<Sweep> {
        self.model
            .delete_all_expired(self.now(), self.sweep_batch)
            .await
    }

    /// The row to write for session `sid` now, expiring at `expires` or after the ttl, and
    /// that `now`: one reading of the clock for the whole call.
    fn row_now(
        &self,
        sid: &str,
        data: &SessionData,
        expires: Option<DateTime<Utc>>,
    ) -> Result<(SessionRow, DateTime<Utc>)> {
        let now = self.now();
        Ok((
            self.encode(sid, data, self.expiry_at(now, expires), now)?,
            now,
        ))
    }

    /// The row for session `sid`, serialized for a row that expires at `expires`.
    /// The row for session `sid`, written at `now` and expiring at `expires`.
    fn encode(
        &self,
        sid: &str,
        data: &SessionData,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<SessionRow> {
        self.ensure_sweeper();
        check_sid(sid, self.max_sid_len)?;
        let text = self
            .serializer
            .serialize(data, expires, now)
            .map_err(|source| Error::Encode {
                sid: sid.to_owned(),
                source,
            })?;
        if let Some(max) = self.max_data_len
            && text.len() > max
        {
            return Err(Error::InvalidInput(format!(
                "session {} is {} bytes serialized, over the store's maximum of {max}; \
                 store less in the session or raise the limit with Store::with_max_data_len",
                redact(sid),
                text.len()
            )));
        }
        let mut row = SessionRow::new(sid, text, Some(expires));
        row.user_id = self.user_of(sid, data)?;
        Ok(row)
    }

    fn decode(&self, row: SessionRow) -> Result<Session> {
        let data = self
            .serializer
            .deserialize(&row.data)
            .map_err(|source| Error::Decode {
                sid: row.sid.clone(),
                column: "data",
                source,
            })?;
        Ok(Session {
            id: row.sid,
            data,
            expires: row.expires,
            version: row.version,
        })
    }
}

impl<M: SessionModel> Store<M> {
    /// Runs `op` under the store's retry budget and call timeout.
    pub(super) async fn call<T, F>(&self, op: impl FnMut() -> F) -> Result<T>
    where
        F: Future<Output = Result<T>>,
    {
        let tried = retrying(self.retries, op);
        match self.call_timeout {
            Some(after) => tokio::time::timeout(after, tried)
                .await
                .unwrap_or(Err(Error::TimedOut { after })),
            None => tried.await,
        }
    }
}

/// Runs `op` again while it fails with a [transient](crate::ErrorClass::is_transient) error (a
/// deadlock, a read-only server, a broken connection), at most `retries` times, pausing as
/// [`Error::retry_within`] says.
async fn retrying<T, F>(retries: u32, mut op: impl FnMut() -> F) -> Result<T>
where
    F: Future<Output = Result<T>>,
{
    let mut attempt = 0;
    loop {
        match op().await {
            Err(err) => {
                attempt += 1;
                let Some(pause) = err.retry_within(attempt, retries) else {
                    return Err(err);
                };
                tracing::debug!(error = %err, attempt, "running a call again after a transient failure");
                tokio::time::sleep(pause).await;
            }
            done => return done,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::{TimeDelta, TimeZone};
    use mockall::predicate::eq;

    use super::*;
    use crate::Clock;
    use crate::model::{MemoryModel, MockSessionModel, mock_model};

    #[derive(Debug)]
    struct Fixed(DateTime<Utc>);

    impl Clock for Fixed {
        fn now(&self) -> DateTime<Utc> {
            self.0
        }
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).single().unwrap()
    }

    fn quiet(mock: MockSessionModel) -> Store<MockSessionModel> {
        Store::with_model(mock)
            .with_sweep_interval(None)
            .with_clock(Fixed(t0()))
    }

    fn data() -> SessionData {
        SessionData::from_iter([("n".to_string(), serde_json::json!(1))])
    }

    #[tokio::test]
    async fn ttl_defaults_to_14_days() {
        let mut mock = mock_model();
        mock.expect_save()
            .withf(|row, now| {
                *now == t0()
                    && row.expires == Some(t0() + TimeDelta::days(14))
                    && row.data == r#"{"n":1}"#
            })
            .times(1)
            .returning(|_, _| Ok(()));
        quiet(mock).set("s", &data(), None).await.unwrap();
    }

    #[tokio::test]
    async fn the_callers_expiry_wins_over_the_ttl() {
        let cookie = t0() + TimeDelta::minutes(5) + TimeDelta::microseconds(1_234_567);
        let mut mock = mock_model();
        mock.expect_save()
            .withf(move |row, _| {
                row.expires == Some(t0() + TimeDelta::minutes(5) + TimeDelta::milliseconds(1234))
            })
            .times(1)
            .returning(|_, _| Ok(()));
        let store = quiet(mock).with_ttl(Duration::from_secs(60));
        store.set("s", &data(), Some(cookie)).await.unwrap();
    }

    #[tokio::test]
    async fn a_custom_ttl_is_used_for_new_expiries() {
        let mut mock = mock_model();
        mock.expect_create()
            .withf(|row, _| row.expires == Some(t0() + TimeDelta::hours(1)))
            .times(1)
            .returning(|_, _| Ok(Created::Inserted));
        let store = quiet(mock).with_ttl(Duration::from_secs(3600));
        assert_eq!(
            store.create("s", &data(), None).await.unwrap(),
            Created::Inserted
        );
    }

    #[tokio::test]
    async fn touch_without_throttle_always_writes() {
        let mut mock = mock_model();
        mock.expect_touch()
            .with(
                eq("s"),
                eq(t0() + TimeDelta::days(14)),
                eq(t0()),
                eq(None::<DateTime<Utc>>),
            )
            .times(1)
            .returning(|_, _, _, _| Ok(true));
        assert!(quiet(mock).touch("s", None).await.unwrap());
    }

    #[tokio::test]
    async fn touch_throttle_asks_the_model_for_a_guarded_update() {
        let mut mock = mock_model();
        let expires = t0() + TimeDelta::hours(1);
        mock.expect_touch()
            .with(
                eq("s"),
                eq(expires),
                eq(t0()),
                eq(Some(expires - TimeDelta::seconds(60))),
            )
            .times(1)
            .returning(|_, _, _, _| Ok(false));
        let store = quiet(mock)
            .with_ttl(Duration::from_secs(3600))
            .with_touch_after(Duration::from_secs(60));
        assert!(!store.touch("s", None).await.unwrap());
    }

    #[tokio::test]
    async fn bad_ids_and_oversized_data_never_reach_the_model() {
        let store = quiet(mock_model()).with_max_data_len(8);
        for sid in ["", &"x".repeat(256)] {
            assert!(matches!(store.get(sid).await, Err(Error::InvalidInput(_))));
            assert!(matches!(
                store.set(sid, &data(), None).await,
                Err(Error::InvalidInput(_))
            ));
            assert!(matches!(
                store.destroy(sid).await,
                Err(Error::InvalidInput(_))
            ));
        }
        let big = SessionData::from_iter([("k".to_string(), serde_json::json!("0123456789"))]);
        let err = store.set("ok", &big, None).await.unwrap_err();
        assert!(err.to_string().contains("with_max_data_len"), "{err}");
    }

    #[tokio::test]
    async fn undecodable_data_is_a_decode_error_naming_the_session() {
        let mut mock = mock_model();
        mock.expect_load()
            .returning(|sid, _| Ok(Some(SessionRow::new(sid, "not json", None))));
        match quiet(mock).get("bad").await {
            Err(Error::Decode { sid, column, .. }) => {
                assert_eq!((sid.as_str(), column), ("bad", "data"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn remove_expired_is_one_sweep_in_the_stores_batches() {
        let mut mock = mock_model();
        mock.expect_delete_all_expired()
            .withf(|now, batch| *now == t0() && *batch == 10)
            .times(1)
            .returning(|_, _| Ok(Sweep::lock_busy(23)));
        let store = quiet(mock).with_sweep_batch(10);
        assert_eq!(store.sweep().await.unwrap(), Sweep::lock_busy(23));
    }

    #[tokio::test]
    async fn a_stale_update_is_refused_without_a_merge() {
        let store = Store::with_model(MemoryModel::new()).with_sweep_interval(None);
        store.set("s", &data(), None).await.unwrap();
        let mut a = store.get("s").await.unwrap().unwrap();
        let mut b = a.clone();
        a.data.insert("a".into(), serde_json::json!(true));
        b.data.insert("b".into(), serde_json::json!(true));
        assert!(store.update_session(&a).await.unwrap());
        let err = store.update_session(&b).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::Conflict {
                    expected: 0,
                    found: 1,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            store
                .get("s")
                .await
                .unwrap()
                .unwrap()
                .data
                .contains_key("a")
        );
    }

    #[tokio::test]
    async fn a_stale_update_is_merged_when_asked() {
        let store = Store::with_model(MemoryModel::new())
            .with_sweep_interval(None)
            .with_conflict_merge(|stored, ours| {
                let mut merged = stored.clone();
                merged.extend(ours.clone());
                merged
            });
        store.set("s", &data(), None).await.unwrap();
        let mut a = store.get("s").await.unwrap().unwrap();
        let mut b = a.clone();
        a.data.insert("a".into(), serde_json::json!(true));
        b.data.insert("b".into(), serde_json::json!(true));
        assert!(store.update_session(&a).await.unwrap());
        assert!(store.update_session(&b).await.unwrap());
        let stored = store.get("s").await.unwrap().unwrap();
        assert!(stored.data.contains_key("a") && stored.data.contains_key("b"));
        assert_eq!(stored.version, Some(2));
        // A session destroyed meanwhile stays destroyed.
        store.destroy("s").await.unwrap();
        assert!(!store.update_session(&stored).await.unwrap());
        assert!(store.get("s").await.unwrap().is_none());
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test(start_paused = true)]
    async fn a_statement_the_database_rolled_back_runs_again_three_times_at_most() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU32, Ordering};

        for (failures, calls, ok) in [(2, 3, true), (3, 4, true), (9, 4, false)] {
            let seen = Arc::new(AtomicU32::new(0));
            let counter = Arc::clone(&seen);
            let mut mock = mock_model();
            mock.expect_save().returning(move |_, _| {
                if counter.fetch_add(1, Ordering::SeqCst) < failures {
                    Err(crate::error::deadlock_for_tests())
                } else {
                    Ok(())
                }
            });
            let result = quiet(mock).set("s", &data(), None).await;
            assert_eq!(result.is_ok(), ok, "{failures} failures: {result:?}");
            assert_eq!(seen.load(Ordering::SeqCst), calls, "{failures} failures");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_retry_budget_is_the_stores() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU32, Ordering};

        for (retries, calls) in [(0, 1), (1, 2), (6, 7)] {
            let seen = Arc::new(AtomicU32::new(0));
            let counter = Arc::clone(&seen);
            let mut mock = mock_model();
            mock.expect_destroy().returning(move |_| {
                counter.fetch_add(1, Ordering::SeqCst);
                Err(crate::error::deadlock_for_tests())
            });
            let store = quiet(mock).with_retries(retries);
            assert_eq!(store.retries(), retries);
            assert!(store.destroy("s").await.unwrap_err().is_retryable());
            assert_eq!(seen.load(Ordering::SeqCst), calls, "budget {retries}");
        }
    }

    #[tokio::test]
    async fn other_errors_are_not_run_again() {
        let mut mock = mock_model();
        mock.expect_destroy()
            .times(1)
            .returning(|_| Err(Error::backend("the disk is full")));
        assert!(quiet(mock).destroy("s").await.is_err());
    }

    /// A clock the test moves.
    #[derive(Debug, Clone)]
    struct Moving(std::sync::Arc<std::sync::Mutex<DateTime<Utc>>>);

    impl Moving {
        fn at(t: DateTime<Utc>) -> Self {
            Moving(std::sync::Arc::new(std::sync::Mutex::new(t)))
        }

        fn set(&self, t: DateTime<Utc>) {
            *self.0.lock().unwrap() = t;
        }
    }

    impl Clock for Moving {
        fn now(&self) -> DateTime<Utc> {
            *self.0.lock().unwrap()
        }
    }

    #[tokio::test]
    async fn a_throttle_as_long_as_the_ttl_still_keeps_a_session_in_use_alive() {
        let clock = Moving::at(t0());
        let store = Store::with_model(MemoryModel::new())
            .with_sweep_interval(None)
            .with_clock(clock.clone())
            .with_ttl(Duration::from_secs(600))
            .with_touch_after(Duration::from_secs(3600));
        store.set("s", &data(), None).await.unwrap();
        // Used every 4 minutes for an hour: each touch past half the life (5 minutes) writes.
        for minute in (4..=60).step_by(4) {
            clock.set(t0() + TimeDelta::minutes(minute));
            assert!(
                store.get_and_touch("s", None).await.unwrap().is_some(),
                "alive at minute {minute}"
            );
        }
        // Touched at minute 60 at the latest, written at 56 at the latest: 10 minutes on, gone.
        clock.set(t0() + TimeDelta::minutes(72));
        assert!(store.get("s").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn the_throttle_limit_is_at_most_half_the_life_of_the_touch() {
        let mut mock = mock_model();
        let expires = t0() + TimeDelta::minutes(10);
        mock.expect_touch()
            .with(
                eq("s"),
                eq(expires),
                eq(t0()),
                eq(Some(t0() + TimeDelta::minutes(5))),
            )
            .times(1)
            .returning(|_, _, _, _| Ok(true));
        let store = quiet(mock)
            .with_ttl(Duration::from_secs(600))
            .with_touch_after(Duration::from_secs(3600));
        assert!(store.touch("s", None).await.unwrap());
    }

    #[tokio::test]
    async fn an_expired_row_from_the_model_is_never_served() {
        let mut mock = mock_model();
        let gone = t0() - TimeDelta::seconds(1);
        mock.expect_load()
            .returning(move |sid, _| Ok(Some(SessionRow::new(sid, "{}", Some(gone)))));
        mock.expect_load_and_touch()
            .returning(move |sid, _, _, _| Ok(Some(SessionRow::new(sid, "{}", Some(gone)))));
        mock.expect_load_and_slide()
            .returning(move |sid, _| Ok(Some(SessionRow::new(sid, "{}", Some(gone)))));
        mock.expect_list().returning(move |_| {
            Ok(vec![
                SessionRow::new("old", "{}", Some(gone)),
                SessionRow::new("live", "{}", None),
            ])
        });
        let store = quiet(mock);
        assert!(store.get("old").await.unwrap().is_none());
        assert!(store.get_and_touch("old", None).await.unwrap().is_none());
        let later = Some(t0() + TimeDelta::days(1));
        assert!(store.get_and_touch("old", later).await.unwrap().is_none());
        let all = store.all().await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].id, "live");
    }

    #[tokio::test]
    async fn get_and_touch_hands_back_the_touched_session() {
        let mut mock = mock_model();
        let later = t0() + TimeDelta::days(14);
        let given = t0() + TimeDelta::days(1);
        mock.expect_load_and_touch()
            .with(
                eq("s"),
                eq(given),
                eq(t0()),
                eq(Some(given - TimeDelta::minutes(1))),
            )
            .times(1)
            .returning(move |sid, expires, _, _| {
                Ok(Some(SessionRow::new(sid, r#"{"n":1}"#, Some(expires))))
            });
        // Without an expiry, the slide keeps the row's own lifetime, now + ttl where unknown.
        let slide = Slide::new(t0(), later, Some(Duration::from_secs(60)));
        mock.expect_load_and_slide()
            .with(eq("s"), eq(slide))
            .times(1)
            .returning(move |sid, _| Ok(Some(SessionRow::new(sid, r#"{"n":1}"#, Some(later)))));
        let store = quiet(mock).with_touch_after(Duration::from_secs(60));
        let session = store.get_and_touch("s", None).await.unwrap().unwrap();
        assert_eq!((session.id.as_str(), session.expires), ("s", Some(later)));
        assert_eq!(session.data, data());
        let session = store
            .get_and_touch("s", Some(given))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(session.expires, Some(given));
    }

    #[tokio::test]
    async fn create_with_fresh_id_returns_the_id_it_stored_under() {
        let mut mock = mock_model();
        mock.expect_create().returning(|row, _| {
            Ok(match row.sid.as_str() {
                "taken" => Created::AlreadyExists,
                _ => Created::Inserted,
            })
        });
        let mut ids = vec!["free", "taken"];
        let id = quiet(mock)
            .create_with_fresh_id(|| Ok(ids.pop().unwrap().to_owned()), &data(), None)
            .await
            .unwrap();
        assert_eq!(id, "free");
    }

    #[tokio::test]
    async fn create_with_fresh_id_gives_up_after_its_attempts() {
        let mut mock = mock_model();
        mock.expect_create()
            .times(FRESH_ID_ATTEMPTS)
            .returning(|_, _| Ok(Created::AlreadyExists));
        let mut n = 0;
        let err = quiet(mock)
            .create_with_fresh_id(
                || {
                    n += 1;
                    Ok(format!("id-{n}"))
                },
                &data(),
                None,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Backend(_)), "{err}");
        assert_eq!(n, FRESH_ID_ATTEMPTS);
    }

    #[tokio::test]
    async fn update_says_whether_a_live_session_was_written() {
        for written in [true, false] {
            let mut mock = mock_model();
            mock.expect_update().returning(move |_, _| Ok(written));
            assert_eq!(
                quiet(mock).update("s", &data(), None).await.unwrap(),
                written
            );
        }
    }

    #[tokio::test]
    async fn a_merge_is_tried_a_bounded_number_of_times() {
        let mut mock = mock_model();
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = std::sync::Arc::clone(&calls);
        mock.expect_update().returning(move |row, _| {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err(Error::Conflict {
                sid: row.sid.clone(),
                expected: row.version.unwrap_or(0),
                found: 99,
            })
        });
        mock.expect_load()
            .returning(|sid, _| Ok(Some(SessionRow::new(sid, "{}", None).with_version(99))));
        let store = quiet(mock).with_conflict_merge(|stored, _| stored.clone());
        let session = Session {
            id: "s".into(),
            data: data(),
            expires: None,
            version: Some(1),
        };
        let err = store.update_session(&session).await.unwrap_err();
        assert!(matches!(err, Error::Conflict { .. }), "{err}");
        assert_eq!(
            calls.load(std::sync::atomic::Ordering::SeqCst),
            MERGE_ATTEMPTS + 1
        );
    }

    #[tokio::test]
    async fn all_and_clear_report_what_is_there() {
        let store = Store::with_model(MemoryModel::new()).with_sweep_interval(None);
        store.set("a", &data(), None).await.unwrap();
        store.set("b", &data(), None).await.unwrap();
        let mut ids: Vec<String> = store
            .all()
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect();
        ids.sort();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(store.clear().await.unwrap(), 2);
        assert_eq!(store.clear().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn data_exactly_at_the_limit_is_stored() {
        let store = Store::with_model(MemoryModel::new())
            .with_sweep_interval(None)
            .with_max_data_len(r#"{"n":1}"#.len());
        store.set("s", &data(), None).await.unwrap();
        let more = SessionData::from_iter([("n".to_string(), serde_json::json!(10))]);
        assert!(matches!(
            store.set("s", &more, None).await,
            Err(Error::InvalidInput(_))
        ));
    }

    #[test]
    fn the_getters_report_the_policy_in_force() {
        let store = Store::with_model(MemoryModel::new())
            .with_sweep_interval(None)
            .with_ttl(Duration::from_secs(600))
            .with_touch_after(Duration::from_secs(60))
            .with_sliding_expiry(true);
        assert_eq!(store.ttl(), Duration::from_secs(600));
        assert_eq!(store.touch_after(), Some(Duration::from_secs(60)));
        assert!(store.sliding_expiry());
        assert_eq!(store.sweep_interval(), None);
        let shown = format!("{store:?}");
        assert!(
            shown.contains("ttl: 600s") && shown.contains("MemoryModel"),
            "{shown}"
        );
        // A zero throttle is none.
        let store = store.with_touch_after(Duration::ZERO);
        assert_eq!(store.touch_after(), None);
    }

    /// Counts the warnings logged while it is the thread's subscriber.
    #[derive(Default)]
    struct Warnings(std::sync::atomic::AtomicUsize);

    impl tracing::Subscriber for Warnings {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            if *event.metadata().level() == tracing::Level::WARN {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    /// How many warnings building a store with `ttl` and then `touch_after` logs.
    fn warnings_for(ttl: u64, touch_after: u64) -> usize {
        let warnings = std::sync::Arc::new(Warnings::default());
        tracing::subscriber::with_default(std::sync::Arc::clone(&warnings), || {
            let _store = Store::with_model(MemoryModel::new())
                .with_sweep_interval(None)
                .with_ttl(Duration::from_secs(ttl))
                .with_touch_after(Duration::from_secs(touch_after));
        });
        warnings.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    #[test]
    fn a_throttle_not_shorter_than_the_ttl_is_warned_about() {
        assert_eq!(warnings_for(600, 599), 0, "shorter than the ttl");
        assert_eq!(warnings_for(600, 600), 1, "as long as the ttl");
        assert_eq!(warnings_for(600, 3600), 1, "longer than the ttl");
    }
}
