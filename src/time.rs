//! Expiry arithmetic: the latest time every backend can store, millisecond truncation, and
//! `now + duration` that never passes either.

use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

/// The latest expiry a store writes: the last millisecond of the year 9999, which every
/// database's time type holds (MySQL's `DATETIME` ends there). A longer ttl is cut to it.
pub const MAX_EXPIRY: DateTime<Utc> = match DateTime::from_timestamp(253_402_300_799, 999_000_000) {
    Some(t) => t,
    None => panic!("the end of 9999 is a valid time"),
};

/// `t` to the millisecond (rounded down): what every backend keeps.
pub(crate) fn to_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::milliseconds(1)).unwrap_or(t)
}

/// `now + by`, never later than [`MAX_EXPIRY`] (nor past the end of chrono's range).
pub(crate) fn later_by(now: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    let by = TimeDelta::from_std(by).unwrap_or(TimeDelta::MAX);
    now.checked_add_signed(by)
        .map_or(MAX_EXPIRY, |t| t.min(MAX_EXPIRY))
}

/// `t - by`, or the earliest time chrono has when that is before it.
pub(crate) fn earlier_by(t: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(by)
        .ok()
        .and_then(|by| t.checked_sub_signed(by))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_900_000_000, 123_456_789).expect("a valid time")
    }

    #[test]
    fn later_by_adds_and_stops_at_the_latest_storable_time() {
        let base = to_millis(t0());
        assert_eq!(
            later_by(base, Duration::from_millis(1500)),
            base + TimeDelta::milliseconds(1500)
        );
        assert_eq!(later_by(base, Duration::MAX), MAX_EXPIRY);
        assert_eq!(
            later_by(base, Duration::from_secs(9000 * 366 * 86_400)),
            MAX_EXPIRY
        );
        assert_eq!(later_by(MAX_EXPIRY, Duration::ZERO), MAX_EXPIRY);
        assert_eq!(MAX_EXPIRY.to_rfc3339(), "9999-12-31T23:59:59.999+00:00");
    }

    #[test]
    fn earlier_by_subtracts_and_saturates() {
        assert_eq!(
            earlier_by(t0(), Duration::from_secs(60)),
            t0() - TimeDelta::seconds(60)
        );
        assert_eq!(earlier_by(t0(), Duration::MAX), DateTime::<Utc>::MIN_UTC);
    }

    #[test]
    fn times_are_cut_to_the_millisecond() {
        assert_eq!(to_millis(t0()).timestamp_subsec_nanos(), 123_000_000);
        assert_eq!(to_millis(t0()).timestamp(), t0().timestamp());
    }
}
