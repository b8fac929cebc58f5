//! The sweeper: the background task that deletes a store's expired sessions every interval.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use tokio::task::JoinHandle;

use super::Store;
use crate::clock::Clock;
use crate::model::SessionModel;
use crate::task::AbortOnDrop;
use crate::time::to_millis;

impl<M: SessionModel> Store<M> {
    /// Starts the family's sweeper again with this store's settings (a builder changed them),
    /// unless it was stopped: one sweeper per model, whichever clone set what last.
    pub(super) fn restart_sweeper(self) -> Self {
        {
            let mut state = self.sweeper.lock();
            if !matches!(*state, State::Stopped) {
                *state = State::Idle;
                self.sweeper.settled.store(false, Ordering::Release);
            }
        }
        self.start_sweeper_if_in_runtime();
        self
    }

    /// Stops the sweeper task now, for a graceful shutdown; it does not start again for this
    /// store, its clones or stores built from them. (It also stops by itself when the last
    /// clone is dropped.)
    pub fn stop_sweeper(&self) {
        // Dropping the running task's guard aborts it.
        *self.sweeper.lock() = State::Stopped;
        self.sweeper.settled.store(true, Ordering::Release);
    }

    /// Starts the sweeper when it is due to run and has not started: on the first call made
    /// inside a runtime by a store built outside one.
    pub(super) fn ensure_sweeper(&self) {
        if !self.sweeper.settled.load(Ordering::Acquire) {
            self.start_sweeper_if_in_runtime();
        }
    }

    pub(super) fn start_sweeper_if_in_runtime(&self) {
        let mut state = self.sweeper.lock();
        if !matches!(*state, State::Idle) {
            return;
        }
        let Some(interval) = self.sweep_interval else {
            self.sweeper.settled.store(true, Ordering::Release);
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let task = run_sweeper(
            Arc::downgrade(&self.model),
            Arc::clone(&self.clock),
            interval,
            self.sweep_batch,
        );
        *state = State::Running(AbortOnDrop(runtime.spawn(task).abort_handle()));
        self.sweeper.settled.store(true, Ordering::Release);
    }
}

/// The sweeper of a store, its clones and the stores built from them; its task is aborted when
/// the last of them is dropped.
#[derive(Debug, Default)]
pub(super) struct Sweeper {
    state: Mutex<State>,
    /// Set once the state needs no more attention from the session calls (running, stopped or
    /// off), so that they do not take the lock.
    settled: AtomicBool,
}

impl Sweeper {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change of the state is one assignment: a panic elsewhere cannot leave it torn.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug, Default)]
enum State {
    /// Not started: no runtime yet, or the settings changed.
    #[default]
    Idle,
    /// The task, aborted when this state is replaced or dropped.
    Running(#[allow(dead_code, reason = "held for its Drop, which aborts the task")] AbortOnDrop),
    /// `stop_sweeper` was called: never again.
    Stopped,
}

async fn run_sweeper<M: SessionModel>(
    model: Weak<M>,
    clock: Arc<dyn Clock>,
    interval: Duration,
    batch: u32,
) {
    // The first sweep comes at a random point within the first interval, so that instances
    // started together spread out; then every interval, give or take 10%.
    let mut delay = interval.mul_f64(random_unit());
    loop {
        tokio::time::sleep(delay).await;
        let Some(model) = model.upgrade() else { return };
        let now = to_millis(clock.now());
        // Each sweep is a task of its own, so that a model that panics fails one sweep, not
        // the sweeper; and aborted with the sweeper, which the guard sees to.
        let sweep: JoinHandle<_> =
            tokio::spawn(async move { model.delete_all_expired(now, batch).await });
        let _abort_with_the_sweeper = AbortOnDrop(sweep.abort_handle());
        match sweep.await {
            Ok(Ok(done)) if done.lock_busy => {
                tracing::debug!(
                    removed = done.removed,
                    "session sweep left to the instance that holds the sweep lock"
                )
            }
            Ok(Ok(done)) if done.removed == 0 => tracing::trace!("session sweep: nothing expired"),
            Ok(Ok(done)) => tracing::debug!(removed = done.removed, "session sweep"),
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "session sweep failed; trying again next interval")
            }
            Err(err) if err.is_panic() => {
                tracing::error!("session sweep panicked; trying again next interval")
            }
            Err(_) => return,
        }
        delay = interval.mul_f64(0.9 + 0.2 * random_unit());
    }
}

/// A number in [0, 1) from the process's random hasher keys: enough to spread sweeps apart,
/// not for anything secret.
fn random_unit() -> f64 {
    let bits = crate::random::random_u64();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use super::*;
    use crate::Error;
    use crate::model::{MockSessionModel, mock_model};
    use crate::store::DEFAULT_SWEEP_INTERVAL;

    fn counting_sweeps(fail_first: u32) -> (MockSessionModel, Arc<AtomicU32>) {
        let mut mock = mock_model();
        let calls = Arc::new(AtomicU32::new(0));
        let seen = Arc::clone(&calls);
        mock.expect_delete_all_expired().returning(move |_, _| {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            if n < fail_first {
                Err(Error::backend("database is down"))
            } else {
                Ok(crate::Sweep::finished(0))
            }
        });
        (mock, calls)
    }

    #[tokio::test(start_paused = true)]
    async fn sweeps_run_every_interval_by_default() {
        let (mock, calls) = counting_sweeps(0);
        let store = Store::with_model(mock);
        assert_eq!(store.sweep_interval(), Some(DEFAULT_SWEEP_INTERVAL));
        // First sweep within the first interval, then every 15 minutes ± 10%.
        tokio::time::sleep(Duration::from_secs(15 * 60 + 1)).await;
        assert!(calls.load(Ordering::SeqCst) >= 1);
        tokio::time::sleep(Duration::from_secs(5 * 15 * 60)).await;
        let n = calls.load(Ordering::SeqCst);
        assert!((5..=7).contains(&n), "{n} sweeps in 90 minutes");
    }

    #[tokio::test(start_paused = true)]
    async fn sweep_interval_is_configurable() {
        let (mock, calls) = counting_sweeps(0);
        let _store = Store::with_model(mock).with_sweep_interval(Some(Duration::from_secs(10)));
        tokio::time::sleep(Duration::from_secs(101)).await;
        let n = calls.load(Ordering::SeqCst);
        assert!(
            (9..=12).contains(&n),
            "{n} sweeps in 101 s at a 10 s interval"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn sweeps_can_be_turned_off() {
        let mut mock = mock_model();
        mock.expect_delete_expired().never();
        let store = Store::with_model(mock).with_sweep_interval(None);
        tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
        assert_eq!(store.sweep_interval(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn sweeper_survives_a_failing_model_and_recovers() {
        let (mock, calls) = counting_sweeps(3);
        let _store = Store::with_model(mock).with_sweep_interval(Some(Duration::from_secs(10)));
        tokio::time::sleep(Duration::from_secs(61)).await;
        let n = calls.load(Ordering::SeqCst);
        assert!(n >= 5, "the task went on after 3 failures: {n} sweeps");
    }

    #[tokio::test(start_paused = true)]
    async fn sweeper_stops_when_the_last_store_is_dropped() {
        let (mock, calls) = counting_sweeps(0);
        let store = Store::with_model(mock).with_sweep_interval(Some(Duration::from_secs(10)));
        let clone = store.clone();
        drop(store);
        tokio::time::sleep(Duration::from_secs(31)).await;
        let while_cloned = calls.load(Ordering::SeqCst);
        assert!(while_cloned >= 2, "a clone keeps the task: {while_cloned}");
        drop(clone);
        tokio::time::sleep(Duration::from_secs(100)).await;
        assert_eq!(calls.load(Ordering::SeqCst), while_cloned);
    }

    #[tokio::test(start_paused = true)]
    async fn stop_sweeper_stops_the_task_for_every_clone() {
        let (mut mock, calls) = counting_sweeps(0);
        mock.expect_count().returning(|_| Ok(0));
        let store = Store::with_model(mock).with_sweep_interval(Some(Duration::from_secs(10)));
        let clone = store.clone();
        tokio::time::sleep(Duration::from_secs(25)).await;
        let before = calls.load(Ordering::SeqCst);
        assert!(before >= 2);
        store.stop_sweeper();
        // A call through a clone must not start it again.
        clone.length().await.unwrap();
        tokio::time::sleep(Duration::from_secs(100)).await;
        assert_eq!(calls.load(Ordering::SeqCst), before);
    }

    #[test]
    fn a_store_made_outside_a_runtime_starts_its_sweeper_on_first_use() {
        let (mock, calls) = counting_sweeps(0);
        let mut mock = mock;
        mock.expect_count().returning(|_| Ok(0));
        let store = Store::with_model(mock).with_sweep_interval(Some(Duration::from_secs(10)));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            store.length().await.unwrap();
            tokio::time::sleep(Duration::from_secs(25)).await;
        });
        assert!(calls.load(Ordering::SeqCst) >= 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_builder_on_a_clone_reconfigures_the_one_sweeper() {
        let mut mock = mock_model();
        let batches = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&batches);
        mock.expect_delete_all_expired().returning(move |_, batch| {
            seen.lock().unwrap().push(batch);
            Ok(crate::Sweep::finished(0))
        });
        let store = Store::with_model(mock).with_sweep_interval(Some(Duration::from_secs(10)));
        let other = store.clone().with_sweep_batch(5);
        tokio::time::sleep(Duration::from_secs(101)).await;
        let batches = batches.lock().unwrap().clone();
        assert!(
            (9..=12).contains(&batches.len()),
            "one sweeper, not two: {} sweeps in 101 s",
            batches.len()
        );
        assert!(batches.iter().all(|b| *b == 5), "{batches:?}");
        drop((store, other));
    }

    /// A model whose first two sweeps panic (a mock cannot: its lock is poisoned by the
    /// first panic); everything else is a `MemoryModel`'s.
    #[derive(Debug, Default)]
    struct PanicsTwice {
        sweeps: AtomicU32,
        inner: crate::MemoryModel,
    }

    #[async_trait::async_trait]
    impl SessionModel for PanicsTwice {
        async fn load(
            &self,
            sid: &str,
            now: chrono::DateTime<chrono::Utc>,
        ) -> crate::Result<Option<crate::SessionRow>> {
            self.inner.load(sid, now).await
        }

        async fn create(
            &self,
            row: &crate::SessionRow,
            now: chrono::DateTime<chrono::Utc>,
        ) -> crate::Result<crate::Created> {
            self.inner.create(row, now).await
        }

        async fn save(
            &self,
            row: &crate::SessionRow,
            now: chrono::DateTime<chrono::Utc>,
        ) -> crate::Result<()> {
            self.inner.save(row, now).await
        }

        async fn update(
            &self,
            row: &crate::SessionRow,
            now: chrono::DateTime<chrono::Utc>,
        ) -> crate::Result<bool> {
            self.inner.update(row, now).await
        }

        async fn touch(
            &self,
            sid: &str,
            expires: chrono::DateTime<chrono::Utc>,
            now: chrono::DateTime<chrono::Utc>,
            only_if_before: Option<chrono::DateTime<chrono::Utc>>,
        ) -> crate::Result<bool> {
            self.inner.touch(sid, expires, now, only_if_before).await
        }

        async fn destroy(&self, sid: &str) -> crate::Result<bool> {
            self.inner.destroy(sid).await
        }

        async fn delete_expired(
            &self,
            now: chrono::DateTime<chrono::Utc>,
            limit: u32,
        ) -> crate::Result<u64> {
            self.inner.delete_expired(now, limit).await
        }

        async fn delete_all_expired(
            &self,
            now: chrono::DateTime<chrono::Utc>,
            batch: u32,
        ) -> crate::Result<crate::Sweep> {
            if self.sweeps.fetch_add(1, Ordering::SeqCst) < 2 {
                panic!("a model with a bug");
            }
            self.inner.delete_all_expired(now, batch).await
        }

        async fn count(&self, now: chrono::DateTime<chrono::Utc>) -> crate::Result<u64> {
            self.inner.count(now).await
        }

        async fn list(
            &self,
            now: chrono::DateTime<chrono::Utc>,
        ) -> crate::Result<Vec<crate::SessionRow>> {
            self.inner.list(now).await
        }

        async fn clear(&self) -> crate::Result<u64> {
            self.inner.clear().await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_sweep_is_logged_and_the_next_one_runs() {
        let store = Store::with_model(PanicsTwice::default())
            .with_sweep_interval(Some(Duration::from_secs(10)));
        tokio::time::sleep(Duration::from_secs(61)).await;
        let n = store.model().sweeps.load(Ordering::SeqCst);
        assert!(n >= 5, "the sweeper went on after two panics: {n} sweeps");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stopped_sweeper_stays_stopped_whatever_the_builders() {
        let (mock, calls) = counting_sweeps(0);
        let store = Store::with_model(mock).with_sweep_interval(Some(Duration::from_secs(10)));
        store.stop_sweeper();
        let rebuilt = store
            .clone()
            .with_sweep_batch(3)
            .with_sweep_interval(Some(Duration::from_secs(5)));
        tokio::time::sleep(Duration::from_secs(100)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        drop(rebuilt);
    }

    #[test]
    fn a_sweeper_stopped_outside_a_runtime_never_starts() {
        let (mut mock, calls) = counting_sweeps(0);
        mock.expect_count().returning(|_| Ok(0));
        let store = Store::with_model(mock).with_sweep_interval(Some(Duration::from_secs(10)));
        store.stop_sweeper();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            store.length().await.unwrap();
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn the_defaults_are_fifteen_minutes_and_a_thousand_rows() {
        assert_eq!(DEFAULT_SWEEP_INTERVAL, Duration::from_secs(15 * 60));
        assert_eq!(crate::store::DEFAULT_SWEEP_BATCH, 1000);
        assert_eq!(
            crate::store::DEFAULT_TTL,
            Duration::from_secs(14 * 24 * 3600)
        );
    }

    /// The jitter that spreads instances' sweeps apart is a number in [0, 1) that differs
    /// from call to call: a constant would start every instance's sweeps together.
    #[test]
    fn the_jitter_is_spread_over_zero_to_one() {
        let draws: Vec<f64> = (0..200).map(|_| random_unit()).collect();
        assert!(draws.iter().all(|d| (0.0..1.0).contains(d)), "{draws:?}");
        let low = draws.iter().filter(|d| **d < 0.5).count();
        // 200 fair draws land below one half between 40 and 160 times (8.5 standard deviations
        // either side) but for odds below one in 10^15; a constant lands 0 or 200 times.
        assert!((40..=160).contains(&low), "{low} of 200 below 0.5");
    }
}
