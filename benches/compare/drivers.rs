//! Our side of the comparison as workload drivers: sequelstore through its own API
//! ([`Native`]) and through its tower-sessions adapter ([`Tower`]). The floor is in `floor.rs`.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sequelstore::{Created, SessionModel, Store};
use time::OffsetDateTime;
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::session_store::{ExpiredDeletion, SessionStore};

use crate::floor::{an_hour_ago, in_a_day};
use crate::workload::{Driver, Res, Sess};

/// sequelstore through `Store`'s own methods: create, get, update, touch, get_and_touch,
/// destroy, sweep.
pub(crate) struct Native<M>(pub(crate) Store<M>);

impl<M: SessionModel> Driver for Native<M> {
    async fn create(&self, s: &Sess) -> Res<()> {
        match self.0.create(&s.sid, &s.data, Some(in_a_day())).await? {
            Created::Inserted => Ok(()),
            Created::AlreadyExists => Err(format!("id {} already taken", s.sid).into()),
        }
    }

    async fn create_expired(&self, s: &Sess) -> Res<()> {
        self.0.create(&s.sid, &s.data, Some(an_hour_ago())).await?;
        Ok(())
    }

    async fn load(&self, s: &Sess) -> Res<bool> {
        Ok(self.0.get(&s.sid).await?.is_some())
    }

    async fn update(&self, s: &Sess) -> Res<()> {
        if self.0.update(&s.sid, &s.data, Some(in_a_day())).await? {
            Ok(())
        } else {
            Err(format!("update of {}: no such session", s.sid).into())
        }
    }

    async fn touch(&self, s: &Sess) -> Res<()> {
        self.0.touch(&s.sid, Some(in_a_day())).await?;
        Ok(())
    }

    async fn load_touch(&self, s: &Sess) -> Res<bool> {
        Ok(self
            .0
            .get_and_touch(&s.sid, Some(in_a_day()))
            .await?
            .is_some())
    }

    async fn destroy(&self, s: &Sess) -> Res<()> {
        self.0.destroy(&s.sid).await?;
        Ok(())
    }

    async fn sweep(&self) -> Res<()> {
        self.0.sweep().await?;
        Ok(())
    }
}

/// sequelstore through tower-sessions-core 0.15's `SessionStore` on `Store`, as axum's
/// session middleware calls it. tower-sessions has no touch: sliding expiry is a `save` of
/// the record with its new expiry date, as its middleware does.
pub(crate) struct Tower<M>(pub(crate) Store<M>);

fn record(s: &Sess, expiry: DateTime<Utc>) -> Record {
    Record {
        id: Id(s.id),
        data: s
            .data
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<HashMap<_, _>>(),
        expiry_date: to_time(expiry),
    }
}

fn to_time(t: DateTime<Utc>) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.timestamp_millis()) * 1_000_000)
        .expect("a time within a day of now is in range")
}

impl<M: SessionModel> Driver for Tower<M> {
    async fn create(&self, s: &Sess) -> Res<()> {
        let mut r = record(s, in_a_day());
        SessionStore::create(&self.0, &mut r).await?;
        Ok(())
    }

    async fn create_expired(&self, s: &Sess) -> Res<()> {
        let mut r = record(s, an_hour_ago());
        SessionStore::create(&self.0, &mut r).await?;
        Ok(())
    }

    async fn load(&self, s: &Sess) -> Res<bool> {
        Ok(SessionStore::load(&self.0, &Id(s.id)).await?.is_some())
    }

    async fn update(&self, s: &Sess) -> Res<()> {
        SessionStore::save(&self.0, &record(s, in_a_day())).await?;
        Ok(())
    }

    async fn touch(&self, s: &Sess) -> Res<()> {
        SessionStore::save(&self.0, &record(s, in_a_day())).await?;
        Ok(())
    }

    async fn load_touch(&self, s: &Sess) -> Res<bool> {
        let Some(mut r) = SessionStore::load(&self.0, &Id(s.id)).await? else {
            return Ok(false);
        };
        r.expiry_date = to_time(in_a_day());
        SessionStore::save(&self.0, &r).await?;
        Ok(true)
    }

    async fn destroy(&self, s: &Sess) -> Res<()> {
        SessionStore::delete(&self.0, &Id(s.id)).await?;
        Ok(())
    }

    async fn sweep(&self) -> Res<()> {
        ExpiredDeletion::delete_expired(&self.0).await?;
        Ok(())
    }
}

/// How long to wait for a server before calling it unreachable.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
