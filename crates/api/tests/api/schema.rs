//! The SQLite and PostgreSQL migrations make the same schema: the same tables, the same
//! columns, the same named indexes.

use tessera_store::Store;
use tessera_testkit::{Backend, TestDb};

async fn schema_of(backend: Backend) -> Option<tessera_store::SchemaDescription> {
    let db = TestDb::new(backend).await?;
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    let schema = store.schema_description().await.unwrap();
    store.close().await;
    Some(schema)
}

#[tokio::test]
async fn the_migrations_of_both_databases_make_the_same_schema() {
    let sqlite = schema_of(Backend::Sqlite).await.unwrap();
    let Some(postgres) = schema_of(Backend::Postgres).await else {
        return;
    };
    assert!(sqlite.tables.len() > 20, "{:?}", sqlite.tables);
    for ((s_table, s_columns), (p_table, p_columns)) in sqlite.tables.iter().zip(&postgres.tables) {
        assert_eq!(s_table, p_table, "tables differ");
        assert_eq!(s_columns, p_columns, "columns of {s_table} differ");
    }
    assert_eq!(
        sqlite.tables.iter().map(|t| &t.0).collect::<Vec<_>>(),
        postgres.tables.iter().map(|t| &t.0).collect::<Vec<_>>()
    );
    assert_eq!(sqlite.indexes, postgres.indexes, "named indexes differ");
}
