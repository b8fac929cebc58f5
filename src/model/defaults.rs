//! What a model gets for free: [`load_then_touch`], [`load_then_slide`] (with
//! [`slide_loaded`]) and [`delete_expired_in_batches`], the default bodies of three
//! [`SessionModel`] methods, written over the others, and [`Slide`], the rule of a load that slides by a session's own lifetime.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{SessionModel, SessionRow, Sweep};
use crate::Result;
use crate::time::{earlier_by, later_by};

/// How [`SessionModel::load_and_slide`] moves a session's expiry: forward by the lifetime its
/// last write gave it, so that a session a framework wrote with 30 minutes to live has 30
/// minutes from each load, not the store's ttl.
///
/// The lifetime is the stored expiry minus the time of the last write (Sequelize's `updatedAt`,
/// which every write and touch sets). A row that does not record its last write, or has no
/// expiry, slides to [`fallback`](Slide::fallback) instead. A slide never passes
/// [`MAX_EXPIRY`](crate::MAX_EXPIRY).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Slide {
    /// The application clock's `now`.
    pub now: DateTime<Utc>,
    /// Where a row whose lifetime is unknown slides to: `now` + the store's ttl.
    pub fallback: DateTime<Utc>,
    /// The touch throttle: a row is written only once this much of its lifetime has passed
    /// since its last write, and never later than half-way through it.
    pub touch_after: Option<Duration>,
}

impl Slide {
    /// A slide at `now`, to `fallback` where the lifetime is unknown, with the throttle
    /// `touch_after`.
    pub fn new(now: DateTime<Utc>, fallback: DateTime<Utc>, touch_after: Option<Duration>) -> Self {
        Slide {
            now,
            fallback,
            touch_after,
        }
    }

    /// Where a row with expiry `expires`, last written at `written`, slides to.
    pub fn target(
        &self,
        expires: Option<DateTime<Utc>>,
        written: Option<DateTime<Utc>>,
    ) -> DateTime<Utc> {
        match (expires, written) {
            (Some(expires), Some(written)) if expires > written => {
                let lifetime = (expires - written).to_std().unwrap_or(Duration::ZERO);
                later_by(self.now, lifetime)
            }
            _ => self.fallback,
        }
    }

    /// The throttle of a slide to `to`, as [`SessionModel::touch`] takes it: the stored expiry
    /// must be before this time. The throttle is at most half of the life the slide gives, so
    /// that a session in use is written before it expires.
    pub fn only_if_before(&self, to: DateTime<Utc>) -> Option<DateTime<Utc>> {
        throttle_limit(self.now, to, self.touch_after)
    }
}

/// The throttle condition for a touch at `now` to `expires` with `touch_after`: the stored
/// expiry must be before it. It is at most half of the life the touch gives.
pub(crate) fn throttle_limit(
    now: DateTime<Utc>,
    expires: DateTime<Utc>,
    touch_after: Option<Duration>,
) -> Option<DateTime<Utc>> {
    touch_after.map(|after| {
        let life = (expires - now).to_std().unwrap_or(Duration::ZERO);
        earlier_by(expires, after.min(life / 2))
    })
}

/// [`SessionModel::load_and_slide`] for a model that does not know when a row was last
/// written: load, then slide to [`Slide::fallback`] with one touch when due.
///
/// # Errors
/// As [`SessionModel::load`] and [`SessionModel::touch`].
pub async fn load_then_slide<M: SessionModel + ?Sized>(
    model: &M,
    sid: &str,
    slide: &Slide,
) -> Result<Option<SessionRow>> {
    match model.load(sid, slide.now).await? {
        Some(row) => Ok(Some(slide_loaded(model, row, None, slide).await?)),
        None => Ok(None),
    }
}

/// The rest of [`SessionModel::load_and_slide`] once the live row is loaded, for any model:
/// slide `row` by [`Slide`]'s rule when the throttle says it is due, with one
/// [`touch`](SessionModel::touch), and return it as it is after. `written` is when the row was
/// last written, where the model knows it; `None` slides to [`Slide::fallback`].
///
/// # Errors
/// As [`SessionModel::touch`].
pub async fn slide_loaded<M: SessionModel + ?Sized>(
    model: &M,
    mut row: SessionRow,
    written: Option<DateTime<Utc>>,
    slide: &Slide,
) -> Result<SessionRow> {
    let to = slide.target(row.expires, written);
    let limit = slide.only_if_before(to);
    if touch_is_due(row.expires, limit) && model.touch(&row.sid, to, slide.now, limit).await? {
        row.expires = Some(to);
    }
    Ok(row)
}

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
