//! What a model gets for free: [`load_then_touch`] and [`delete_expired_in_batches`], the
//! default bodies of two [`SessionModel`] methods, written over the others.

use chrono::{DateTime, Utc};

use super::{SessionModel, SessionRow, Sweep};
use crate::Result;

/// Whether a throttled touch would write a row whose expiry is `stored`: always without a
/// throttle, and for a row without expiry; otherwise when `stored` is before `only_if_before`.
pub fn touch_is_due(stored: Option<DateTime<Utc>>, only_if_before: Option<DateTime<Utc>>) -> bool {
    match (stored, only_if_before) {
        (Some(stored), Some(limit)) => stored < limit,
        _ => true,
    }
}

/// [`SessionModel::load_and_touch`] in two steps, for any model: load, then touch when due.
/// A model that cannot do both in one statement on some database calls this there.
///
/// # Errors
/// As [`SessionModel::load`] and [`SessionModel::touch`].
pub async fn load_then_touch<M: SessionModel + ?Sized>(
    model: &M,
    sid: &str,
    expires: DateTime<Utc>,
    now: DateTime<Utc>,
    only_if_before: Option<DateTime<Utc>>,
) -> Result<Option<SessionRow>> {
    let Some(mut row) = model.load(sid, now).await? else {
        return Ok(None);
    };
    if touch_is_due(row.expires, only_if_before)
        && model.touch(sid, expires, now, only_if_before).await?
    {
        row.expires = Some(expires);
    }
    Ok(Some(row))
}

/// [`SessionModel::delete_all_expired`] for any model: [`SessionModel::delete_expired`] until a
/// batch comes back short, letting other tasks run in between.
///
/// # Errors
/// The model's error; rows deleted by earlier batches stay deleted.
pub async fn delete_expired_in_batches<M: SessionModel + ?Sized>(
    model: &M,
    now: DateTime<Utc>,
    batch: u32,
) -> Result<Sweep> {
    let batch = batch.max(1);
    let mut total = 0;
    loop {
        let n = model.delete_expired(now, batch).await?;
        total += n;
        if n < u64::from(batch) {
            return Ok(Sweep::finished(total));
        }
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use chrono::TimeZone;

    use super::*;
    use crate::model::MockSessionModel;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).single().unwrap()
    }

    #[tokio::test]
    async fn batches_are_deleted_until_one_comes_back_short() {
        let mut mock = MockSessionModel::new();
        let calls = Arc::new(AtomicU32::new(0));
        let seen = Arc::clone(&calls);
        mock.expect_delete_expired()
            .withf(|now, limit| *now == t0() && *limit == 10)
            .returning(move |_, _| {
                let n = seen.fetch_add(1, Ordering::SeqCst);
                Ok(if n < 2 { 10 } else { 3 })
            });
        let removed = delete_expired_in_batches(&mock, t0(), 10).await;
        assert_eq!(removed.unwrap(), Sweep::finished(23));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}
