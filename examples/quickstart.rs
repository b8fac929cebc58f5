//! A session round trip on a SQLite file, with the crate's defaults.
//!
//! Run with: `cargo run --example quickstart`
//!
//! It creates `quickstart.db` in the current folder (the `ConnectSession` table),
//! writes a session, reads it back, slides its expiry, lists and counts the live sessions,
//! and destroys it. Run it twice: the file is reused, not recreated.

use std::time::Duration;

use sequelstore::{SessionData, SqliteStore};
use serde_json::json;

#[tokio::main]
async fn main() -> sequelstore::Result<()> {
    // The store opens the file itself (WAL, synchronous=NORMAL, a busy timeout) and creates the
    // table when missing. With a pool of your own, use `Store::auto(pool)` instead.
    let store = SqliteStore::connect("sqlite://quickstart.db")
        .await?
        .with_ttl(Duration::from_secs(60 * 60))
        .with_touch_after(Duration::from_secs(60));

    let mut data = SessionData::new();
    data.insert("user".into(), json!("ann"));
    data.insert("visits".into(), json!(1));
    store.set("quickstart-session", &data, None).await?;

    let session = store
        .get("quickstart-session")
        .await?
        .expect("just written");
    println!("read back: {} -> {:?}", session.id, session.data);
    println!("expires:   {:?}", session.expires);

    // Within a minute of the last write the touch throttle skips the write.
    let touched = store.touch("quickstart-session", None).await?;
    println!("touched:   {touched} (false: the throttle skipped a write that was not due)");

    println!("live sessions: {}", store.length().await?);
    println!("destroyed: {}", store.destroy("quickstart-session").await?);
    println!(
        "after destroy: {:?}",
        store.get("quickstart-session").await?
    );
    println!("expired rows removed now: {}", store.sweep().await?.removed);
    Ok(())
}
