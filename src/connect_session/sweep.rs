//! Deleting expired rows: in batches, each under the dialect's sweep lock, or on SQLite by
//! walking the table in `rowid` order.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::ConnectSession;
use super::statements::RowidSweep;
use crate::Result;
use crate::model::Sweep;
use crate::sql::{Arg, Args, Backend, Param, Repeat, SweepLock};

impl<B: Backend> ConnectSession<B> {
    /// Deletes expired rows `limit` at a time, once or until a batch comes back short
    /// (`repeat`), each batch under the dialect's sweep lock; on a SQLite table with a
    /// `rowid`, by walking the table ([`ConnectSession::sweep_by_rowid`]).
    ///
    /// The lock is taken per batch and ends with the batch's statement or transaction, so
    /// nothing is left held when a sweep is cancelled between or inside batches. A batch
    /// that finds it held ends the sweep: another instance is sweeping this table. A batch the
    /// database rolled back (a deadlock with a request's write, a Galera certification
    /// failure) runs again, a bounded number of times; the batches before it stay deleted.
    pub(super) async fn sweep(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        repeat: Repeat,
    ) -> Result<Sweep> {
        if let Some(walk) = &self.stmts.rowid_sweep {
            return self
                .sweep_by_rowid(walk, now, limit, repeat)
                .await
                .map(Sweep::finished);
        }
        let args = Args::new()
            .with(Param::Now, self.time(now))
            .with(Param::Limit, Arg::Int(i64::from(limit)));
        let stmt = &self.stmts.delete_expired;
        let sweep_started = Instant::now();
        let (mut total, mut retry) = (0, 0);
        loop {
            let started = Instant::now();
            let ran = match &self.stmts.sweep_lock {
                SweepLock::Row(lock) => self.backend.execute_row_locked(lock, stmt, &args).await,
                // A negative count: another instance holds the lock.
                SweepLock::InStatement => self
                    .backend
                    .fetch_count(stmt, &args)
                    .await
                    .map(|n| u64::try_from(n).ok()),
                _ => self.write(stmt, &args).await.map(Some),
            };
            match ran {
                Ok(Some(n)) => {
                    retry = 0;
                    total += n;
                    if !repeat.again_after(n) {
                        return Ok(Sweep::finished(total));
                    }
                    let pause = pause_after(sweep_started.elapsed(), started.elapsed());
                    if pause.is_zero() {
                        tokio::task::yield_now().await;
                    } else {
                        tokio::time::sleep(pause).await;
                    }
                }
                Ok(None) => {
                    tracing::debug!(table = %self.table.name, removed = total, "sweep stopped: another instance holds the sweep lock");
                    return Ok(Sweep::lock_busy(total));
                }
                Err(err) => {
                    retry += 1;
                    let Some(pause) = err.retry_after(retry) else {
                        return Err(err);
                    };
                    tracing::debug!(error = %err, retry, "sweep batch rolled back; running it again");
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }

    /// [`ConnectSession::sweep`] walking the table by `rowid`: each batch finds the expired row
    /// that comes after the next `limit` (a read, beside other readers), then deletes the
    /// expired rows before it in one write whose `rowid` range bounds how long it holds the
    /// write lock. When there is no such row, one last write deletes the rest and the sweep
    /// ends: a sweep of up to `limit` rows is one read and one write.
    async fn sweep_by_rowid(
        &self,
        walk: &RowidSweep,
        now: DateTime<Utc>,
        limit: u32,
        repeat: Repeat,
    ) -> Result<u64> {
        let mut args = Args::new()
            .with(Param::Now, self.time(now))
            .with(Param::Skip, Arg::Int(i64::from(limit.max(1))));
        let mut total = 0;
        let mut after = i64::MIN;
        loop {
            args.set(Param::After, Arg::Int(after));
            let upto = self.backend.fetch_count(&walk.next, &args).await?;
            if upto == after {
                // No more than `limit` expired rows are left: delete them and stop.
                return Ok(total + self.write(&walk.tail, &args).await?);
            }
            args.set(Param::Upto, Arg::Int(upto));
            total += self.write(&walk.range, &args).await?;
            if repeat == Repeat::Once {
                return Ok(total);
            }
            // The row at `upto` starts the next batch; `upto` is more than `limit` past
            // `after`, so every turn moves on.
            after = upto - 1;
            tokio::task::yield_now().await;
        }
    }
}

/// How long a sweep that has run for `so_far` leaves the database to requests after a full
/// batch that took `took`: nothing in its first [`UNPACED`], so that the usual sweep (every 15
/// minutes, a few thousand rows) runs straight through; after that as long as the batch took,
/// so that a long sweep (a backlog of a million rows) takes about half of the database's time,
/// not all of it (BENCHMARKS.md, the 1,000,000-row sweep, has the effect on requests' p99).
fn pause_after(so_far: Duration, took: Duration) -> Duration {
    if so_far < UNPACED {
        Duration::ZERO
    } else {
        took
    }
}

/// How long a sweep runs before it starts pausing between batches.
const UNPACED: Duration = Duration::from_millis(100);
