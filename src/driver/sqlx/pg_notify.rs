//! [`PgNotify`]: PostgreSQL's `LISTEN`/`NOTIFY` as the [`Invalidation`] channel of a
//! session cache.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use tokio::sync::{Mutex, Notify};
use tokio::time::Instant;

use crate::Result;
use crate::invalidation::{Evictions, Fingerprint, Invalidate, Invalidation};
use crate::task::AbortOnDrop;

/// How often the listener sends itself a heartbeat unless told otherwise: every second.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(1);

/// How many heartbeats may go unheard before the channel counts as lost.
const MISSED_HEARTBEATS: u32 = 3;

/// The longest wait between two tries to listen again.
const MAX_RECONNECT_WAIT: Duration = Duration::from_secs(5);

/// PostgreSQL's `LISTEN`/`NOTIFY` as the invalidation channel of a
/// [`Cached`](crate::Cached) model: one channel per table, each write published with
/// `pg_notify` after it committed, and one listening connection per app instance.
///
/// A message names the session by its [`Fingerprint`], never by its id. The listener sends
/// itself a heartbeat every second and counts the channel as live only while it hears it: a
/// dropped connection, or three heartbeats unheard (a silent network failure), puts the cache
/// out of service, and the listener listens again on a new connection until the heartbeat is
/// heard again.
///
/// The listener needs a connection of its own straight to PostgreSQL: it uses the pool's
/// connect options unless [`PgNotify::with_listen_options`] gives others (the server behind
/// PgBouncer, say). Before it listens it asks the server for its port
/// (`inet_server_port()`): on another port than the one connected to, it is talking to a
/// pooler, and it refuses (logged as an error; the cache then never serves), because a `LISTEN`
/// through PgBouncer in transaction mode stays on a server connection that the pooler lends to
/// other clients, whose queries then fail on the notifications. A session-level proxy, or a
/// port mapping (Docker's `-p 5433:5432`), on another port is allowed with
/// [`PgNotify::with_listen_through_proxy`]; a pooler on the same
/// port as the server (on another host), or one reached through a Unix socket, cannot be told
/// apart this way. Publishing goes through the pool, unprepared, so a pool that reaches
/// PostgreSQL through PgBouncer (`PgBouncerPool::pool`) can publish.
pub struct PgNotify {
    pool: PgPool,
    listen: PgConnectOptions,
    channel: String,
    heartbeat: Duration,
    through_proxy: bool,
}

impl fmt::Debug for PgNotify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgNotify")
            .field("channel", &self.channel)
            .field("heartbeat", &self.heartbeat)
            .finish()
    }
}

/// A pool of one connection that is never closed for idleness, for one listener: each
/// listening connection gets a pool of its own, so that one dropped as silent is closed with
/// its pool instead of being handed out again.
fn listen_pool(options: PgConnectOptions) -> PgPool {
    PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(Duration::from_secs(10))
        .connect_lazy_with(options)
}

impl PgNotify {
    /// The channel of `table` (the name the model uses, as `ConnectSession::table` gives it),
    /// published through `pool` and listened to on a connection made with the pool's options.
    pub fn new(pool: &PgPool, table: &str) -> Self {
        let options = pool.connect_options().as_ref().clone();
        PgNotify {
            pool: pool.clone(),
            listen: options,
            channel: format!("sequelstore_{:016x}", Fingerprint::of(table).get()),
            heartbeat: DEFAULT_HEARTBEAT,
            through_proxy: false,
        }
    }

    /// Listen on a connection made with `options` instead of the pool's: for a pool that
    /// reaches PostgreSQL through PgBouncer in transaction mode, give the server's own address.
    pub fn with_listen_options(mut self, options: PgConnectOptions) -> Self {
        self.listen = options;
        self
    }

    /// Send the heartbeat every `every` instead of every second; three unheard put the cache
    /// out of service. Shorter finds a silent failure sooner, for a `pg_notify` per beat.
    pub fn with_heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = every.max(Duration::from_millis(10));
        self
    }

    /// The channel's name: `sequelstore_` and the table name's fingerprint in hex.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Listen through a proxy on another port than the server's (one that keeps a client's
    /// server connection for the whole session, as HAProxy does), which the listener refuses
    /// otherwise: see [`PgNotify`].
    pub fn with_listen_through_proxy(mut self, yes: bool) -> Self {
        self.through_proxy = yes;
        self
    }

    /// A listener on the channel, or what stopped it.
    async fn subscribe(&self) -> std::result::Result<PgListener, Refused> {
        let mut listener = PgListener::connect_with(&listen_pool(self.listen.clone())).await?;
        listener.ignore_pool_close_event(true);
        // Report a lost connection at once rather than after reconnecting: messages sent
        // meanwhile are gone, and the cache must know.
        listener.eager_reconnect(false);
        if !self.through_proxy {
            self.check_direct(&mut listener).await?;
        }
        listener.listen(&self.channel).await?;
        Ok(listener)
    }

    /// Refuses a listening connection whose server is on another port than the one connected
    /// to: a pooler such as PgBouncer in transaction mode, where `LISTEN` would stay on a server
    /// connection the pooler then lends to other clients, and their queries fail on the
    /// notifications (sqlx: "unexpected message: NotificationResponse").
    async fn check_direct(&self, listener: &mut PgListener) -> std::result::Result<(), Refused> {
        let options = &self.listen;
        if options.get_socket().is_some() {
            return Ok(());
        }
        let row = sqlx::raw_sql(sqlx::AssertSqlSafe("SELECT inet_server_port()".to_owned()))
            .fetch_one(&mut *listener)
            .await?;
        let server_port: Option<i32> = sqlx::Row::try_get(&row, 0)?;
        match server_port {
            Some(port) if port != i32::from(options.get_port()) => Err(Refused::Proxy(format!(
                "the session cache's listener connects to port {} but the server there says it \
                 is on port {port}: a pooler (PgBouncer in transaction mode would hand the \
                 LISTEN to other clients, whose queries then fail). The cache will not serve. \
                 Give PgNotify::with_listen_options the server's own address, or call \
                 with_listen_through_proxy(true) for a port mapping or a proxy that keeps one \
                 server connection per client",
                options.get_port()
            ))),
            _ => Ok(()),
        }
    }
}

/// Whether `text` can be written into a string literal as it is: the channel names and
/// payloads this file makes (hex digits, letters, `_`, `*` and spaces) always can.
fn plain(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'*' | b' '))
}

/// Sends `payload` on `channel`, as one unprepared statement: it works through PgBouncer in
/// transaction mode too, where a prepared one would not (a `NOTIFY` is delivered at commit,
/// whichever server connection ran it).
async fn notify(pool: &PgPool, channel: &str, payload: String) -> Result<()> {
    if !plain(channel) || !plain(&payload) {
        return Err(crate::Error::Internal(format!(
            "invalidation message of {} bytes on a channel of {} bytes is not plain text",
            payload.len(),
            channel.len()
        )));
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SELECT pg_notify('{channel}', '{payload}')"
    )))
    .execute(pool)
    .await?;
    Ok(())
}

/// Why the listener did not listen.
enum Refused {
    /// A connection or query error: tried again.
    Sqlx(sqlx::Error),
    /// The connection goes through a pooler: never tried again.
    Proxy(String),
}

impl From<sqlx::Error> for Refused {
    fn from(err: sqlx::Error) -> Self {
        Refused::Sqlx(err)
    }
}

/// What a message says, read back from its payload: `<origin> <what>` in hex.
#[derive(Debug, PartialEq, Eq)]
enum Message {
    Heartbeat { origin: u64 },
    Invalidate { origin: u64, what: Invalidate },
}

fn payload(origin: u64, what: Option<Invalidate>) -> String {
    match what {
        None => format!("{origin:016x} beat"),
        Some(Invalidate::All) => format!("{origin:016x} *"),
        Some(Invalidate::Session(key)) => format!("{origin:016x} {:016x}", key.get()),
    }
}

fn parse(payload: &str) -> Option<Message> {
    let (origin, what) = payload.split_once(' ')?;
    let origin = u64::from_str_radix(origin, 16).ok()?;
    Some(match what {
        "beat" => Message::Heartbeat { origin },
        "*" => Message::Invalidate {
            origin,
            what: Invalidate::All,
        },
        key => Message::Invalidate {
            origin,
            what: Invalidate::Session(Fingerprint::from_u64(u64::from_str_radix(key, 16).ok()?)),
        },
    })
}

#[async_trait]
impl Invalidation for PgNotify {
    async fn publish(&self, origin: u64, what: Invalidate) -> Result<()> {
        notify(&self.pool, &self.channel, payload(origin, Some(what))).await
    }

    async fn listen(&self, cache: Evictions) {
        let origin = cache.origin();
        let cache = Arc::new(cache);
        let heard = Arc::new(Mutex::new(Instant::now()));
        // Told by the heartbeat task to drop a listening connection that has gone silent.
        let silent = Arc::new(Notify::new());
        // The heartbeat: sent through the pool, heard (or not) by the listener below.
        let beat = {
            let (cache, heard, silent) =
                (Arc::clone(&cache), Arc::clone(&heard), Arc::clone(&silent));
            let (pool, channel, every) = (self.pool.clone(), self.channel.clone(), self.heartbeat);
            tokio::spawn(async move {
                loop {
                    if cache.is_closed() {
                        return;
                    }
                    if let Err(err) = notify(&pool, &channel, payload(origin, None)).await {
                        tracing::debug!(error = %err, "session cache: heartbeat not sent");
                    }
                    tokio::time::sleep(every).await;
                    let quiet = heard.lock().await.elapsed();
                    if quiet > every * MISSED_HEARTBEATS {
                        if cache.is_live() {
                            tracing::warn!(
                                ?quiet,
                                "session cache: no heartbeat heard on the invalidation channel; \
                                 listening again on a new connection"
                            );
                        }
                        cache.lost();
                        silent.notify_waiters();
                    }
                }
            })
        };
        let _beat = AbortOnDrop(beat.abort_handle());
        let mut wait = Duration::from_millis(50);
        while !cache.is_closed() {
            let mut listener = match self.subscribe().await {
                Ok(listener) => listener,
                Err(Refused::Proxy(why)) => {
                    tracing::error!("{why}");
                    cache.stop();
                    return;
                }
                Err(Refused::Sqlx(err)) => {
                    cache.lost();
                    tracing::debug!(error = %err, ?wait, "session cache: cannot listen yet");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(MAX_RECONNECT_WAIT);
                    continue;
                }
            };
            wait = Duration::from_millis(50);
            // A new connection gets the heartbeat's full grace before it counts as silent.
            *heard.lock().await = Instant::now();
            loop {
                // Dropping a receive half-way is safe here: the connection is dropped with it.
                let received = tokio::select! {
                    received = listener.try_recv() => received,
                    () = silent.notified() => break,
                };
                let message = match received {
                    Ok(Some(message)) => message,
                    Ok(None) | Err(_) => break,
                };
                match parse(message.payload()) {
                    Some(Message::Heartbeat { origin: from }) if from == origin => {
                        *heard.lock().await = Instant::now();
                        if !cache.is_live() && !cache.live() {
                            return;
                        }
                    }
                    Some(Message::Invalidate { origin: from, what })
                        if from != origin && !cache.apply(what) =>
                    {
                        return;
                    }
                    _ => {}
                }
            }
            drop(listener);
            if !cache.lost() {
                return;
            }
            tracing::debug!("session cache: the listening connection dropped; listening again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_read_back() {
        let key = Fingerprint::of("sid");
        for what in [None, Some(Invalidate::All), Some(Invalidate::Session(key))] {
            let read = parse(&payload(7, what)).expect("a payload of ours");
            match (read, what) {
                (Message::Heartbeat { origin }, None) => assert_eq!(origin, 7),
                (Message::Invalidate { origin, what: got }, Some(sent)) => {
                    assert_eq!((origin, got), (7, sent));
                }
                (read, what) => panic!("{read:?} from {what:?}"),
            }
        }
        for junk in ["", "beat", "zz beat", "7", "7 nothex", "7  "] {
            assert_eq!(parse(junk), None, "{junk:?}");
        }
        let key = Fingerprint::of("x");
        for what in [None, Some(Invalidate::All), Some(Invalidate::Session(key))] {
            assert!(plain(&payload(u64::MAX, what)));
        }
        assert!(plain("sequelstore_0123456789abcdef"));
        for quoted in ["a'b", "a\\b", "a;b", "é"] {
            assert!(!plain(quoted), "{quoted:?}");
        }
    }
}
