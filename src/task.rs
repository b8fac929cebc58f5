//! Background tasks that end with their owner.

use tokio::task::AbortHandle;

/// Aborts a spawned task when dropped: held by whatever the task works for (a store's
/// sweeper, a cache's listener, a model's reconnection), so that the task ends with it.
#[derive(Debug)]
pub(crate) struct AbortOnDrop(pub(crate) AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
