//! `staleness [--tries N] [--quick]`: how long after a committed destroy on one app instance
//! another can still return the session from its cache, on PostgreSQL with `LISTEN`/`NOTIFY`.
//!
//! Two instances, each with a pool, a cache and a listening connection of its own, in one
//! process. Each try: instance A saves a session; B loads it until B serves it from memory; A
//! destroys it; from the moment A's destroy returns (the DELETE and the NOTIFY committed), B
//! loads it again and again until B answers none. The figure is that wait: 0 when B's first
//! load after the destroy already answered none.

use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use sequelstore::{Cached, ConnectSession, PgNotify, SessionModel, SessionRow};

use crate::workload::{Args, Res};
use crate::{cache_config, pg_pool};

/// The longest a try may take before the run fails: far over any bound worth stating.
const GIVE_UP: Duration = Duration::from_secs(10);

pub(crate) async fn staleness(args: &Args) -> Res<()> {
    let tries = match args.rest.iter().position(|a| a == "--tries") {
        Some(i) => args
            .rest
            .get(i + 1)
            .ok_or("--tries needs a value")?
            .parse()?,
        None if args.quick => 1_000,
        None => 10_000,
    };
    let url = args.server_url();
    let table = format!("bench_staleness_{}", std::process::id());
    let instance = async || -> Res<Cached<ConnectSession<sequelstore::sqlx::PgPool>>> {
        let pool = pg_pool(&url, 4).await?;
        let model = ConnectSession::auto_table(pool.clone(), &table).await?;
        let cache = Cached::with_invalidation(model, cache_config(), PgNotify::new(&pool, &table));
        tokio::time::timeout(GIVE_UP, cache.serving())
            .await
            .map_err(|_| "the cache's LISTEN channel was not heard")?;
        Ok(cache)
    };
    let a = instance().await?;
    let b = instance().await?;
    let now = Utc::now();
    let later = now + TimeDelta::hours(1);
    let mut waits = Vec::with_capacity(tries);
    let mut stale = 0usize;
    let started = Instant::now();
    for i in 0..tries {
        let sid = format!("staleness-{i:08}-{:016x}", rand_u64(i as u64));
        a.save(
            &SessionRow::new(&sid, r#"{"user":"ann"}"#, Some(later)),
            now,
        )
        .await?;
        // B holds the session: a load it answered from memory.
        let held = Instant::now();
        loop {
            let hits = b.stats().hits;
            b.load(&sid, now)
                .await?
                .ok_or("B does not find the session")?;
            if b.stats().hits > hits {
                break;
            }
            if held.elapsed() > GIVE_UP {
                return Err("B never served the session from memory".into());
            }
        }
        a.destroy(&sid).await?;
        let destroyed = Instant::now();
        let mut loads = 0u32;
        while b.load(&sid, now).await?.is_some() {
            loads += 1;
            if destroyed.elapsed() > GIVE_UP {
                return Err(format!("B still serves a destroyed session after {GIVE_UP:?}").into());
            }
            tokio::task::yield_now().await;
        }
        waits.push(if loads == 0 {
            Duration::ZERO
        } else {
            destroyed.elapsed()
        });
        stale += usize::from(loads > 0);
    }
    let total = started.elapsed();
    waits.sort();
    let at = |q: f64| waits[((waits.len() as f64 * q) as usize).min(waits.len() - 1)];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "staleness after a committed destroy, PostgreSQL LISTEN/NOTIFY, {tries} tries in {:.1} s: \
         B served the destroyed session at least once in {stale} ({:.1}%); wait median {:.0} us, \
         p99 {:.0} us, p99.9 {:.0} us, worst {:.0} us",
        total.as_secs_f64(),
        stale as f64 * 100.0 / tries as f64,
        us(at(0.5)),
        us(at(0.99)),
        us(at(0.999)),
        us(waits[waits.len() - 1]),
    );
    let p999 = at(0.999);
    println!(
        "{} staleness p99.9 {:.1} ms, target under 50 ms",
        if p999 < Duration::from_millis(50) {
            "MET"
        } else {
            "MISSED"
        },
        us(p999) / 1e3
    );
    let pool = pg_pool(&url, 1).await?;
    sequelstore::sqlx::query(sequelstore::sqlx::AssertSqlSafe(format!(
        "DROP TABLE IF EXISTS \"{table}\""
    )))
    .execute(&pool)
    .await?;
    Ok(())
}

/// A spread of ids, as random ones would be (splitmix64).
fn rand_u64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
