//! The store on a SeaORM 2 `DatabaseConnection`, on SQLite (a fresh file), PostgreSQL and
//! MariaDB: `Store::auto` and `Store::discover` over the pool inside the connection, proof that
//! it is that pool and not a second one, and the conformance suite over
//! `ConnectSession<SeaOrmBackend>` with its raw SQL sent through SeaORM.

mod common;

use std::sync::Arc;

use common::{Ctx, RawSql, db};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use sequelstore::{Backend, ConnectSession, Error, SessionData, Store, sqlx};
use sequelstore::{SeaOrmBackend, SeaOrmStore};
use serde_json::json;

/// The database kinds the tests run on, one module each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sqlite,
    Postgres,
    MySql,
}

impl Kind {
    /// A SeaORM connection to this kind's test database; `None` (after saying so loudly, or a
    /// panic under `CI=true`) when the server cannot be reached.
    async fn connect(self, test: &str) -> Option<DatabaseConnection> {
        let (name, url) = match self {
            // `mode=rwc`: SeaORM, unlike `sequelstore::Connect`, does not create missing files.
            Kind::Sqlite => {
                let url = format!("{}?mode=rwc", db::temp_sqlite_url(test));
                let db = Database::connect(&url).await;
                return Some(db.unwrap_or_else(|e| panic!("SeaORM opens {url}: {e}")));
            }
            Kind::Postgres => (
                "PostgreSQL",
                db::server_url("POSTGRES_URL", db::DEFAULT_POSTGRES_URL),
            ),
            Kind::MySql => (
                "MariaDB/MySQL",
                db::server_url("MYSQL_URL", db::DEFAULT_MYSQL_URL),
            ),
        };
        match Database::connect(&url).await {
            Ok(db) => Some(db),
            Err(err) => {
                db::unreachable_server(name, &url, &err);
                None
            }
        }
    }

    /// The name `Dialect::name` gives this kind.
    fn dialect_name(self) -> &'static str {
        match self {
            Kind::Sqlite => "SQLite",
            Kind::Postgres => "PostgreSQL",
            Kind::MySql => "MySQL",
        }
    }

    fn quote(self) -> fn(&str) -> String {
        match self {
            Kind::Sqlite | Kind::Postgres => |s| format!("\"{s}\""),
            Kind::MySql => |s| format!("`{s}`"),
        }
    }

    /// An SQL expression for one hour ago, in the form `ConnectSession` stores times.
    fn hour_ago(self) -> &'static str {
        match self {
            Kind::Sqlite => "strftime('%Y-%m-%d %H:%M:%f +00:00', 'now', '-1 hour')",
            Kind::Postgres => "now() - interval '1 hour'",
            Kind::MySql => "UTC_TIMESTAMP(6) - INTERVAL 1 HOUR",
        }
    }
}

/// Raw SQL sent through the SeaORM connection, not through the store.
fn raw(db: &DatabaseConnection) -> RawSql {
    let db = db.clone();
    Arc::new(move |sql: String| {
        let db = db.clone();
        Box::pin(async move {
            db.execute_unprepared(&sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        })
    })
}

/// The `data` column of session `sid`, read by SeaORM itself.
async fn data_via_sea_orm(
    db: &DatabaseConnection,
    kind: Kind,
    table: &str,
    sid: &str,
) -> Option<serde_json::Value> {
    let q = kind.quote();
    let sql = format!(
        "SELECT {} FROM {} WHERE {} = '{sid}'",
        q("data"),
        q(table),
        q("sid")
    );
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("SeaORM runs the SELECT")?;
    let text: String = row.try_get("", "data").expect("data is text");
    Some(serde_json::from_str(&text).expect("data is JSON"))
}

fn ann() -> SessionData {
    let mut data = SessionData::new();
    data.insert("user".into(), json!("ann"));
    data.insert("visits".into(), json!(3));
    data
}

async fn auto_shares_the_connection_pool(kind: Kind) {
    let Some(db) = kind.connect("sea_orm_auto").await else {
        return;
    };
    let table = db::unique_table("sea_orm_auto");
    let backend = SeaOrmBackend::new(&db).expect("a sqlx-backed connection");
    let store: SeaOrmStore = Store::auto_table(backend, &table).await.unwrap();
    assert_eq!(
        store.model().backend().dialect().name(),
        kind.dialect_name()
    );
    assert_eq!(store.model().table(), table);

    store.set("sid-1", &ann(), None).await.unwrap();
    assert_eq!(store.get("sid-1").await.unwrap().unwrap().data, ann());
    // The application's SeaORM queries see what the store wrote...
    assert_eq!(
        data_via_sea_orm(&db, kind, &table, "sid-1").await,
        Some(serde_json::Value::Object(ann()))
    );
    // ...and the store sees what they write.
    let q = kind.quote();
    raw(&db)(format!(
        "UPDATE {} SET {} = '{{\"user\":\"bob\"}}' WHERE {} = 'sid-1'",
        q(&table),
        q("data"),
        q("sid")
    ))
    .await;
    let got = store.get("sid-1").await.unwrap().unwrap();
    assert_eq!(got.data.get("user"), Some(&json!("bob")));
    assert!(store.destroy("sid-1").await.unwrap());
    assert_eq!(data_via_sea_orm(&db, kind, &table, "sid-1").await, None);

    // One pool, not two: closing the SeaORM connection closes the store's pool too.
    raw(&db)(format!("DROP TABLE {}", q(&table))).await;
    db.close_by_ref().await.unwrap();
    match store.get("sid-1").await {
        Err(Error::Sqlx(sqlx::Error::PoolClosed)) => {}
        other => panic!("expected the shared pool to be closed, got {other:?}"),
    }
}

async fn discover_uses_the_table_made_through_sea_orm(kind: Kind) {
    let Some(db) = kind.connect("sea_orm_discover").await else {
        return;
    };
    let table = db::unique_table("sea_orm_discover");
    let backend = SeaOrmBackend::try_from(&db).expect("a sqlx-backed connection");

    // No table yet: the error carries the DDL, which the application runs with SeaORM (as
    // a migration would).
    let ddl = match Store::discover_table(backend.clone(), &table).await {
        Err(Error::TableNotFound { tried, ddl }) => {
            assert_eq!(tried, vec![table.clone()]);
            ddl
        }
        other => panic!("expected TableNotFound, got {other:?}"),
    };
    for statement in ddl.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        db.execute_unprepared(statement).await.unwrap();
    }

    let store = Store::discover_table(backend, &table).await.unwrap();
    assert_eq!(store.model().table(), table);
    store.set("sid-2", &ann(), None).await.unwrap();
    assert_eq!(store.get("sid-2").await.unwrap().unwrap().data, ann());
    assert_eq!(
        data_via_sea_orm(&db, kind, &table, "sid-2").await,
        Some(serde_json::Value::Object(ann()))
    );
    // A second store discovered on a clone of the connection sees the same session.
    let again = Store::discover_table(SeaOrmBackend::new(&db.clone()).unwrap(), &table)
        .await
        .unwrap();
    assert_eq!(again.get("sid-2").await.unwrap().unwrap().data, ann());
    assert_eq!(store.length().await.unwrap(), 1);
    raw(&db)(format!("DROP TABLE {}", kind.quote()(&table))).await;
}

/// The conformance suite's context: `ConnectSession` on the connection's pool, raw SQL
/// through SeaORM.
async fn make(kind: Kind, test: &str) -> Option<Ctx<ConnectSession<SeaOrmBackend>>> {
    let db = kind.connect(test).await?;
    let table = db::unique_table(test);
    let model = ConnectSession::auto_table(SeaOrmBackend::new(&db).unwrap(), &table)
        .await
        .unwrap();
    Some(Ctx {
        model: Arc::new(model),
        table,
        raw: Some(raw(&db)),
        quote: kind.quote(),
        hour_ago: kind.hour_ago(),
    })
}

/// Instantiates every test above, and the conformance suite, for one database kind.
macro_rules! on_database {
    ($($module:ident => $kind:expr),* $(,)?) => {
        $(
            mod $module {
                use super::*;

                const KIND: Kind = $kind;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn auto_shares_the_connection_pool() {
                    super::auto_shares_the_connection_pool(KIND).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn discover_uses_the_table_made_through_sea_orm() {
                    super::discover_uses_the_table_made_through_sea_orm(KIND).await;
                }

                async fn make(test: &str) -> Option<Ctx<ConnectSession<SeaOrmBackend>>> {
                    super::make(KIND, test).await
                }

                sequelstore::conformance_tests!(make);
            }
        )*
    };
}

on_database! {
    sqlite => Kind::Sqlite,
    postgres => Kind::Postgres,
    mysql => Kind::MySql,
}

#[test]
fn a_connection_without_a_sqlx_pool_is_refused() {
    let disconnected = DatabaseConnection::default();
    match SeaOrmBackend::new(&disconnected) {
        Err(Error::Misconfigured(message)) => {
            assert!(
                message.contains("sea_orm::Database::connect"),
                "the message says what to do: {message}"
            );
        }
        other => panic!("expected Misconfigured, got {other:?}"),
    }
    assert!(matches!(
        SeaOrmBackend::try_from(&disconnected),
        Err(Error::Misconfigured(_))
    ));
}
