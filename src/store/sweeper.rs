//! The sweeper: the background task that deletes a store's expired sessions every interval.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use tokio::task::JoinHandle;

use super::Store;
use crate::clock::Clock;
use crate::model::SessionModel;
use crate::time::to_millis;

impl<M: SessionModel> Store<M> {
    pub(super) fn restart_sweeper(mut self) -> Self {
        self.sweeper = Arc::new(Sweeper::default());
        self.start_sweeper_if_in_runtime();
        self
    }

    /// Stops the sweeper task now, for a graceful shutdown; it does not start again for this
    /// store or its clones. (It also stops by itself when the last clone is dropped.)
    pub fn stop_sweeper(&self) {
        match self.sweeper.handle.get() {
            Some(task) => task.abort(),
            // Not started (outside a runtime): make sure it never starts.
            None => {
                let _ = self.sweeper.handle.set(AbortOnDrop(None));
            }
        }
    }

    pub(super) fn start_sweeper_if_in_runtime(&self) {
        let Some(interval) = self.sweep_interval else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        self.sweeper.handle.get_or_init(|| {
            let task = run_sweeper(
                Arc::downgrade(&self.model),
                Arc::clone(&self.clock),
                interval,
                self.sweep_batch,
            );
            AbortOnDrop(Some(runtime.spawn(task)))
        });
    }
}

/// The sweeper of a store and its clones; aborted when the last of them is dropped.
#[derive(Debug, Default)]
pub(super) struct Sweeper {
    pub(super) handle: OnceLock<AbortOnDrop>,
}

#[derive(Debug)]
pub(super) struct AbortOnDrop(Option<JoinHandle<()>>);

impl AbortOnDrop {
    fn abort(&self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.abort();
    }
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
        match model
            .delete_all_expired(to_millis(clock.now()), batch)
            .await
        {
            Ok(0) => tracing::trace!("session sweep: nothing expired"),
            Ok(n) => tracing::debug!(removed = n, "session sweep"),
            Err(err) => {
                tracing::warn!(error = %err, "session sweep failed; trying again next interval")
            }
        }
        drop(model);
        delay = interval.mul_f64(0.9 + 0.2 * random_unit());
    }
}

/// A number in [0, 1) from the process's random hasher keys: enough to spread sweeps apart,
/// not for anything secret.
fn random_unit() -> f64 {
    let bits = RandomState::new().hash_one(std::time::Instant::now());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::Error;
    use crate::model::MockSessionModel;
    use crate::store::DEFAULT_SWEEP_INTERVAL;

    fn counting_sweeps(fail_first: u32) -> (MockSessionModel, Arc<AtomicU32>) {
        let mut mock = MockSessionModel::new();
        let calls = Arc::new(AtomicU32::new(0));
        let seen = Arc::clone(&calls);
        mock.expect_delete_all_expired().returning(move |_, _| {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            if n < fail_first {
                Err(Error::backend("database is down"))
            } else {
                Ok(0)
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
        let mut mock = MockSessionModel::new();
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
}
