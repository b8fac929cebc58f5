//! Where a store's `now` comes from.

use std::fmt::Debug;

use chrono::{DateTime, Utc};

/// The application clock a store reads `now` from; every time written or compared in SQL comes
/// from it, never from the database server's clock.
pub trait Clock: Send + Sync + Debug + 'static {
    /// The current time, in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
