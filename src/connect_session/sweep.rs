//! Deleting expired rows: in batches under the dialect's sweep lock, or on SQLite by walking
//! the table in `rowid` order.

use chrono::{DateTime, Utc};

use super::ConnectSession;
use super::statements::RowidSweep;
use crate::Result;
use crate::model::delete_expired_in_batches;
use crate::sql::{Arg, Args, Backend, Param, Repeat};

impl<B: Backend> ConnectSession<B> {
    /// Deletes expired rows `limit` at a time, once or until a batch comes back short
    /// (`repeat`), all under the dialect's sweep lock, taken once; on a SQLite table with a
    /// `rowid`, by walking the table ([`ConnectSession::sweep_by_rowid`]).
    pub(super) async fn sweep(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        repeat: Repeat,
    ) -> Result<u64> {
        if let Some(walk) = &self.stmts.rowid_sweep {
            return self.sweep_by_rowid(walk, now, limit, repeat).await;
        }
        let args = Args::new()
            .with(Param::Now, self.time(now))
            .with(Param::Limit, Arg::Int(i64::from(limit)));
        let stmt = &self.stmts.delete_expired;
        match (&self.stmts.sweep_lock, repeat) {
            (Some(lock), _) => match self
                .backend
                .execute_locked(lock, stmt, &args, repeat)
                .await?
            {
                Some(removed) => Ok(removed),
                // Another instance is sweeping this table right now: leave it to that one.
                None => {
                    tracing::debug!(table = %self.table.name, "sweep skipped: another instance holds the sweep lock");
                    Ok(0)
                }
            },
            (None, Repeat::Once) => self.write(stmt, &args).await,
            (None, Repeat::WhileFull { .. }) => delete_expired_in_batches(self, now, limit).await,
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
